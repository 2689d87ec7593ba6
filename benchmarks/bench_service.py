"""The cost of HTTP: the service's commands/s and view queries/s against the same calls in-process.

Run from the repository root with the project's environment (the ``server`` extra)::

    python benchmarks/bench_service.py            # 1, 4 and 16 clients, 200 operations each
    python benchmarks/bench_service.py --json     # the figures as JSON
    FIREFLOW_BENCH_SERVICE_OPS=20 python benchmarks/bench_service.py --json   # a smoke run

What runs: ``fireflow serve`` in its own process on 127.0.0.1 (a free port, an SQLite store
in a temporary folder, a real token), and N client threads with their own httpx
connection.  Each concurrency level runs

* **commands**: ``punish`` (a self-loop on a fire-lane ticket, R-ROUTE-LANE-FIRE) posted by
  the fire brigade, each client on its own ticket (no conflicts), a fresh ``command_id``
  per request;
* **views**: ``GET /tickets?town=...&limit=50``;

and the same operations in-process (:class:`fireflow.service.engine.Engine` on its own
SQLite store, the same number of threads).  Per level: operations per second, p50 and p99
latency in milliseconds, and the ratio in-process/HTTP of the throughputs (the cost of HTTP,
JSON and authentication).  Correctness is checked, not timed: every command must be
accepted and stored once (exit 1 otherwise).  All figures come from one run on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pendulum

from fireflow import load_plan
from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore

LEVELS = (1, 4, 16)
TOWN = "金峰镇"
AT = pendulum.datetime(2022, 3, 22, 10, tz="Asia/Shanghai")


def _report(ticket_id: str) -> dict:
    return {
        "kind": "report",
        "command_id": f"r-{ticket_id}",
        "community": "金峰小区",
        "town": TOWN,
        "category": "fire_lane_vehicle",
        "subtype": "private_car",
        "location": "inside",
        "source": "patrol",
        "at": "2022-03-21T10:00:00+08:00",
    }


def _setup_steps(ticket_id: str) -> list[dict]:
    return [
        _report(ticket_id),
        {"kind": "route", "command_id": f"rt-{ticket_id}", "at": "2022-03-21T10:05:00+08:00"},
        {"kind": "set_deadline", "command_id": f"d-{ticket_id}", "at": "2022-03-21T10:10:00+08:00"},
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run(clients: int, ops: int, op: Callable[[int, int], float]) -> dict:
    """``clients`` threads each doing ``ops // clients`` operations; op returns its latency."""
    per = max(1, ops // clients)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        mine = [op(i, k) for k in range(per)]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "ops": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 2),
    }


def _timed(call: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    ops = int(os.environ.get("FIREFLOW_BENCH_SERVICE_OPS", "200"))
    if ops < 1:
        print("FIREFLOW_BENCH_SERVICE_OPS must be at least 1", file=sys.stderr)
        return 2
    plan = load_plan("changle-2022")
    failures: list[str] = []
    out: dict = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "ops_per_level": ops,
        "levels": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "FIREFLOW_DATABASE_URL"}
        cli = [sys.executable, "-m", "fireflow.cli", "serve"]
        state = ["--state-dir", str(folder / "state")]
        token = subprocess.run(
            [*cli, "token", "create", "--agency", "fire", *state],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        ).stdout.strip()
        town = subprocess.run(
            [*cli, "token", "create", "--agency", "town", *state],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        ).stdout.strip()
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                *cli,
                "--port",
                str(port),
                "--store",
                str(folder / "http.sqlite"),
                *state,
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        engine = Engine(SQLiteStore(folder / "inproc.sqlite"), plan)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            tickets = [f"B-{i}" for i in range(max(LEVELS))]
            with httpx.Client(
                base_url=base,
                headers={"Authorization": f"Bearer {town}"},
                trust_env=False,
                timeout=60,
            ) as c:
                for t in tickets:
                    for body in _setup_steps(t):
                        r = c.post(f"/tickets/{t}/commands", json=body)
                        if r.status_code not in (200, 201):
                            failures.append(f"setup {t}: {r.status_code}")
            for t in tickets:
                for body in _setup_steps(t):
                    engine.execute(t, {**body, "actor": {"agency": "town"}})
            sessions = [
                httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {token}"},
                    trust_env=False,
                    timeout=60,
                )
                for _ in range(max(LEVELS))
            ]
            sent = 0
            for level in LEVELS:
                tag = f"L{level}"

                def http_command(i: int, k: int, tag: str = tag) -> float:
                    body = {"kind": "punish", "command_id": f"{tag}-{i}-{k}", "at": AT.isoformat()}
                    t0 = time.perf_counter()
                    r = sessions[i].post(f"/tickets/B-{i}/commands", json=body)
                    took = time.perf_counter() - t0
                    if r.status_code != 201:
                        failures.append(f"{tag}-{i}-{k}: {r.status_code}")
                    return took

                def http_view(i: int, k: int) -> float:
                    t0 = time.perf_counter()
                    r = sessions[i].get("/tickets", params={"town": TOWN, "limit": 50})
                    took = time.perf_counter() - t0
                    if r.status_code != 200:
                        failures.append(f"view: {r.status_code}")
                    return took

                def local_command(i: int, k: int, tag: str = tag) -> float:
                    body = {
                        "kind": "punish",
                        "command_id": f"{tag}-{i}-{k}",
                        "at": AT,
                        "actor": {"agency": "fire"},
                    }
                    return _timed(lambda: engine.execute(f"B-{i}", body))

                def local_view(i: int, k: int) -> float:
                    return _timed(lambda: engine.tickets(town=TOWN, limit=50))

                commands = _run(level, ops, http_command)
                sent += commands["ops"]
                views = _run(level, ops, http_view)
                local_commands = _run(level, ops, local_command)
                local_views = _run(level, ops, local_view)
                out["levels"].append(
                    {
                        "clients": level,
                        "commands": {
                            "http": commands,
                            "in_process": local_commands,
                            "ratio": round(
                                local_commands["per_second"] / commands["per_second"], 2
                            ),
                        },
                        "views": {
                            "http": views,
                            "in_process": local_views,
                            "ratio": round(local_views["per_second"] / views["per_second"], 2),
                        },
                    }
                )
            for s in sessions:
                s.close()
            stored = sum(1 for _ in SQLiteStore(folder / "http.sqlite", readonly=True).read_all())
            expected = 3 * len(tickets) + sent
            if stored != expected:
                failures.append(f"stored {stored} events, expected {expected}")
        finally:
            server.terminate()
            server.wait(timeout=30)
            engine.close()
    out["ok"] = not failures
    out["failures"] = failures[:20]
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(f"fireflow service benchmark: {ops} operations per level, {os.cpu_count()} CPUs")
        print(
            f"{'clients':>7} {'what':<9} {'HTTP/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'local/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6}"
        )
        for lv in out["levels"]:
            for what in ("commands", "views"):
                h, loc = lv[what]["http"], lv[what]["in_process"]
                print(
                    f"{lv['clients']:>7} {what:<9} {h['per_second']:>9} {h['p50_ms']:>8} "
                    f"{h['p99_ms']:>8} {loc['per_second']:>9} {loc['p50_ms']:>8} "
                    f"{loc['p99_ms']:>8} {lv[what]['ratio']:>6}"
                )
        for f in failures[:20]:
            print("✗", f)
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
