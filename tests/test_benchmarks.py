"""The benchmark scripts run (tiny sizes) and report what they promise; no duration is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=600,
        check=False,
    )


def test_store_benchmark_checks_its_replayed_states(tmp_path):
    out = run(
        "bench_store.py",
        "--json",
        FIREFLOW_BENCH_SINGLE="20",
        FIREFLOW_BENCH_BATCHED="300",
        FIREFLOW_BENCH_REPLAY="700",
        FIREFLOW_BENCH_DIR=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    replay = res["replay"]
    assert replay["events"] == 700
    assert replay["states_ok"] is True
    assert replay["ratio"] > 0
    assert {"raw_read", "read_all_decode", "replay", "replay_evolve"} <= set(replay)
    assert res["batched"]["fireflow"]["events"] == 300
    assert list(tmp_path.iterdir()) == []  # the files are removed


def test_simulator_benchmark_reports_a_size():
    out = run("bench_sim.py", "--json", FIREFLOW_BENCH_SIM_TICKETS="150")
    assert out.returncode == 0, out.stderr
    (size,) = json.loads(out.stdout)["sizes"]
    assert size["tickets"] > 0
    assert size["events"] > size["tickets"]


def test_floor_benchmark_runs_and_bad_settings_are_refused():
    out = run("bench_floor.py", FIREFLOW_BENCH_FLOOR_CALLS="300")
    assert out.returncode == 0, out.stderr
    assert "us/event" in out.stdout
    assert "8,855,584" in out.stdout
    bad = run("bench_floor.py", FIREFLOW_BENCH_FLOOR_CALLS="zero")
    assert bad.returncode == 2
    assert "FIREFLOW_BENCH_FLOOR_CALLS" in bad.stderr


def test_shard_benchmark_quick_runs_every_configuration_with_one_digest():
    out = run("bench_shard.py", "--quick", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert [r["config"] for r in res["runs"]] == ["1", "2", "dask2"]
    assert res["digests_agree"] is True
    assert len({r["digest"] for r in res["runs"]}) == 1
    assert all(r["events"] > r["tickets"] > 0 for r in res["runs"])
    assert [len(r["worker_peaks"]) for r in res["runs"]] == [0, 2, 2]
    assert all(r["parent_peak"] > 0 for r in res["runs"])


def test_breakdown_benchmark_accounts_for_every_event():
    out = run("bench_breakdown.py", "--json", FIREFLOW_BENCH_BREAKDOWN_COMMUNITIES="15")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["events"] > res["tickets"] > 0
    # every command the run handed to the engine is timed under its trigger
    assert sum(k["events"] for k in res["by_trigger"].values()) == res["events"]
    assert {"report", "route", "set_deadline"} <= set(res["by_trigger"])
    assert len(res["parts_us_per_event"]) == 6
    assert all(v >= 0 for v in res["parts_us_per_event"].values())
    bad = run("bench_breakdown.py", FIREFLOW_BENCH_BREAKDOWN_COMMUNITIES="-3")
    assert bad.returncode == 2


def test_guard_compares_two_trees_and_exits_by_its_threshold():
    out = run(
        "bench_guard.py", "--baseline", "HEAD", "--rounds", "1", "--communities", "8",
        "--repeats", "1", "--json",
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    res = json.loads(out.stdout)
    for section in ("sim", "decide"):
        row = res[section]
        # the same workload ran on both sides: the same number of events
        assert row["events_baseline"] == row["events_tree"] > 0
        assert row["ratio"] == row["tree_us_per_event"] / row["baseline_us_per_event"]
    slower = [s for s in ("sim", "decide") if res[s]["ratio"] > 1 + res["threshold"]]
    assert res["slower"] == slower
    assert out.returncode == (1 if slower else 0)
    bad = run("bench_guard.py", "--baseline", "no-such-commit-anywhere")
    assert bad.returncode == 2
    assert "no-such-commit-anywhere" in bad.stderr
