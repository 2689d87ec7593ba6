"""benchmarks/bench_service.py at a tiny size reports what it promises (no duration asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(ops: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_service.py"), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "FIREFLOW_BENCH_SERVICE_OPS": ops},
        cwd=ROOT,
        timeout=600,
        check=False,
    )


def test_service_benchmark_reports_every_level_and_loses_nothing():
    out = _run("8")
    assert out.returncode == 0, out.stderr + out.stdout[-2000:]
    res = json.loads(out.stdout)
    assert res["ok"] is True
    assert [lv["clients"] for lv in res["levels"]] == [1, 4, 16]
    for lv in res["levels"]:
        for what in ("commands", "views"):
            figures = lv[what]
            assert figures["http"]["ops"] > 0
            assert figures["in_process"]["ops"] == figures["http"]["ops"]
            assert figures["http"]["p50_ms"] <= figures["http"]["p99_ms"]
            assert figures["ratio"] > 0


def test_a_bad_size_is_refused():
    assert _run("0").returncode == 2
