"""Drivers of the PostgreSQL reliability and concurrency runs, shared by tests and benchmarks.

tests/test_pg_reliability.py runs them at small counts and asserts on their
figures; benchmarks/crash_pg.py (the full 200 kills) and benchmarks/bench_pg.py
(concurrent writers) run them at full counts and record the figures.  Every
writer is a real process (``pg_writer.py`` next to this file); the server is a
:class:`pgcluster.Cluster` or any server the caller names.

Each driver returns a dict of figures and *counts* what went wrong instead of
asserting, so that a script can print the figures of a bad run too; the callers
assert ``problems(figures) == []``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from store_workers import histories

from fireflow.store import checkpoint, verify
from fireflow.store.postgres import PostgresStore
from fireflow.ticket import fold

HERE = Path(__file__).resolve().parent
WRITER = HERE / "pg_writer.py"
T0 = datetime(2022, 12, 12, 9, tzinfo=timezone(timedelta(hours=8)))
KILL_APP = "fireflow-kill-writer"


def spawn(mode: str, conninfo: str, schema: str, *args: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]))}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, str(WRITER), mode, conninfo, schema, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "R":
        out, err = proc.communicate(timeout=60)
        raise RuntimeError(f"worker did not start: {line!r} {out!r} {err[-2000:]!r}")


def go(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


def last_json(proc: subprocess.Popen[str], timeout: float = 900) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed (exit {proc.returncode}): {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def new_schema(conninfo: str, schema: str) -> None:
    """Drop ``schema`` if it exists and create the store's tables in it."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    PostgresStore(conninfo, schema=schema).close()


def facts(conninfo: str, schema: str, bounds: dict[str, set[int]] | None) -> dict[str, Any]:
    """Fast checks straight on the tables: positions, gaps, duplicates, partial batches."""
    s = sql.Identifier(schema)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        count, top, ids = conn.execute(
            sql.SQL(
                "SELECT COUNT(*), MAX(position), COUNT(DISTINCT event_id) FROM {}.events"
            ).format(s)
        ).fetchone()
        per_ticket = conn.execute(
            sql.SQL(
                "SELECT ticket_id, COUNT(*), MIN(seq), MAX(seq) FROM {}.events GROUP BY ticket_id"
            ).format(s)
        ).fetchall()
        head = conn.execute(sql.SQL("SELECT next FROM {}.fireflow_head").format(s)).fetchone()
    gaps = sum(1 for _, n, lo, hi in per_ticket if lo != 1 or hi != n)
    partial = 0 if bounds is None else sum(1 for t, n, _, _ in per_ticket if n not in bounds[t])
    return {
        "count": count,
        "position_gaps": 0 if count == 0 else int(top + 1 != count),
        "head_mismatch": int(head[0] != count),
        "duplicates": count - ids,
        "gaps": gaps,
        "partial": partial,
        "versions": {t: n for t, n, _, _ in per_ticket},
    }


def _wait_gone(conninfo: str, application: str, timeout: float = 60) -> None:
    """Wait until no session of ``application`` is left (a killed client's backend has ended)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while time.monotonic() < deadline:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s",
                (application,),
            ).fetchone()
            if n == 0:
                return
            time.sleep(0.005)
    raise RuntimeError(f"the killed writer's session is still there after {timeout} s")


def kill_runs(
    conninfo: str,
    schema: str,
    runs: int,
    *,
    n_tickets: int = 10_000,
    seed: int = 2022,
    max_sleep: float = 0.06,
    verify_every: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Kill a writer process with SIGKILL mid-append ``runs`` times; check after each kill."""
    h = histories
    new_schema(conninfo, schema)
    writer_conninfo = f"{conninfo} application_name={KILL_APP}"
    bounds = h.boundaries(n_tickets)
    shapes = list(h.shapes(n_tickets))
    rng = random.Random(seed)
    fig = {
        "runs": runs, "killed_mid_append": 0, "in_flight_committed": 0, "partial": 0,
        "gaps": 0, "duplicates": 0, "acked": 0, "acked_lost": 0, "resent_after_crash": 0,
        "not_replayed": 0, "finished": 0, "verifies": 0, "verify_failed": 0, "events": 0,
    }  # fmt: skip
    cp = None
    t_start = time.monotonic()
    for run in range(runs):
        proc = spawn("kill", writer_conninfo, schema, n_tickets)
        wait_ready(proc)
        time.sleep(rng.uniform(0.0, max_sleep))
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if proc.returncode not in (-signal.SIGKILL, 0):
            raise RuntimeError(f"writer failed (exit {proc.returncode}): {err[-2000:]}")
        lines = out.split()
        fig["partial"] += "PARTIAL" in lines
        fig["not_replayed"] += "NOT-REPLAYED" in lines
        fig["finished"] += "F" in lines
        fig["resent_after_crash"] += run > 0
        began = [int(x) for tag, x in itertools.pairwise(lines) if tag == "B"]
        acked = [int(x) for tag, x in itertools.pairwise(lines) if tag == "D"]
        _wait_gone(conninfo, KILL_APP)  # the killed client's transaction has ended
        f = facts(conninfo, schema, bounds)
        fig["partial"] += f["partial"]
        fig["gaps"] += f["gaps"] + f["position_gaps"] + f["head_mismatch"]
        fig["duplicates"] += f["duplicates"]
        versions = f["versions"]
        fig["acked"] += len(acked)
        for i in acked:
            k, _, hi = shapes[i]
            if versions.get(h.ticket_id(k), 0) < hi:
                fig["acked_lost"] += 1
        if began and (not acked or began[-1] != acked[-1]):
            fig["killed_mid_append"] += 1
            k, _, hi = shapes[began[-1]]
            fig["in_flight_committed"] += versions.get(h.ticket_id(k), 0) >= hi
        if run % verify_every == verify_every - 1 or run == runs - 1:
            with PostgresStore(conninfo, schema=schema, readonly=True) as store:
                report = verify(store, cp)
                fig["verifies"] += 1
                fig["verify_failed"] += not report.ok
                cp = checkpoint(store, T0 + timedelta(minutes=run))
        fig["events"] = f["count"]
        if progress:
            progress(run + 1)
    fig["seconds"] = time.monotonic() - t_start
    return fig


def kill_problems(fig: dict[str, Any]) -> list[str]:
    bad = [k for k in ("partial", "gaps", "duplicates", "acked_lost", "not_replayed",
                       "verify_failed", "finished") if fig[k]]  # fmt: skip
    if fig["killed_mid_append"] == 0:
        bad.append("no kill landed mid-append")
    return bad


def race_run(conninfo: str, schema: str, writers: int, wins: int) -> dict[str, Any]:
    """``writers`` processes append to one ticket until each has won ``wins`` versions."""
    h = histories
    new_schema(conninfo, schema)
    setup = h.race_setup()
    with PostgresStore(conninfo, schema=schema) as store:
        store.append("RACE", setup, 0)
    procs = [spawn("race", conninfo, schema, w, wins) for w in range(writers)]
    for p in procs:
        wait_ready(p)
    t0 = time.monotonic()
    go(procs)
    results = [last_json(p) for p in procs]
    seconds = time.monotonic() - t0
    with PostgresStore(conninfo, schema=schema, readonly=True) as store:
        events = store.read("RACE")
        report = verify(store)
    claimed = [(seq, eid) for r in results for seq, eid in r["wins"]]
    stored = [(e.seq, e.event_id) for e in events[len(setup) :]]
    per_version: dict[int, int] = {}
    for seq, _ in claimed:
        per_version[seq] = per_version.get(seq, 0) + 1
    state = fold(events)  # every event was decided on the state its predecessor left
    return {
        "writers": writers,
        "appends": len(claimed),
        "versions": len(events),
        "seconds": seconds,
        "conflicts": sum(r["conflicts"] for r in results),
        "store_busy": sum(r["store_busy"] for r in results),
        "raw_psycopg": sum(r["raw_psycopg"] for r in results),
        "other": [o for r in results for o in r["other"]],
        "short_writers": sum(len(r["wins"]) != wins for r in results),
        "seqs_ok": [e.seq for e in events] == list(range(1, len(setup) + writers * wins + 1)),
        "max_winners_per_version": max(per_version.values(), default=0),
        "claims_match_store": sorted(claimed) == stored,
        "ids_unique": len({e.event_id for e in events}) == len(events),
        "fold_version_ok": state.version == len(events),
        "verify_ok": report.ok,
    }


def race_problems(fig: dict[str, Any]) -> list[str]:
    bad = [k for k in ("seqs_ok", "claims_match_store", "ids_unique", "fold_version_ok",
                       "verify_ok") if not fig[k]]  # fmt: skip
    bad += [k for k in ("raw_psycopg", "short_writers") if fig[k]]
    if fig["other"]:
        bad.append(f"other: {fig['other'][:3]}")
    if fig["max_winners_per_version"] != 1:
        bad.append("more than one winner for a version")
    return bad


def expected_versions(writers: int, n_tickets: int) -> dict[str, int]:
    h = histories
    t = h.templates()
    return {
        f"W{w:02d}-{k:05d}": len(t[k % len(t)]) for w in range(writers) for k in range(n_tickets)
    }


def flood_run(conninfo: str, schema: str, writers: int, n_tickets: int) -> dict[str, Any]:
    """``writers`` processes append their own ``n_tickets`` tickets each, all at once."""
    new_schema(conninfo, schema)
    procs = [spawn("flood", conninfo, schema, w, n_tickets) for w in range(writers)]
    for p in procs:
        wait_ready(p)
    go(procs)
    results = [last_json(p) for p in procs]
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    expected = expected_versions(writers, n_tickets)
    f = facts(conninfo, schema, None)
    with PostgresStore(conninfo, schema=schema, readonly=True) as store:
        report = verify(store)
    events = sum(r["events"] for r in results)
    total = sum(expected.values())
    return {
        "writers": writers,
        "tickets": writers * n_tickets,
        "batches": sum(r["batches"] for r in results),
        "events": events,
        "seconds": seconds,
        "events_per_second": events / seconds,
        "batches_per_second": sum(r["batches"] for r in results) / seconds,
        "lost": total - f["count"] + f["duplicates"],
        "duplicated": f["duplicates"],
        "replayed": sum(r["replayed"] for r in results),
        "versions_ok": f["versions"] == expected,
        "positions_ok": f["position_gaps"] == 0 and f["head_mismatch"] == 0 and f["gaps"] == 0,
        "verify_ok": report.ok,
        "other": [o for r in results for o in r["other"]],
    }


def rawflood_run(
    conninfo: str, schema: str, source: str, writers: int, n_tickets: int
) -> dict[str, Any]:
    """The baseline of :func:`flood_run`: the rows it stored, inserted raw by as many writers."""
    new_schema(conninfo, schema)
    procs = [spawn("rawflood", conninfo, schema, w, n_tickets, source) for w in range(writers)]
    for p in procs:
        wait_ready(p)
    go(procs)
    results = [last_json(p) for p in procs]
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    f = facts(conninfo, schema, None)
    events = sum(r["events"] for r in results)
    return {
        "writers": writers,
        "events": events,
        "stored": f["count"],
        "seconds": seconds,
        "events_per_second": events / seconds,
        "batches_per_second": sum(r["batches"] for r in results) / seconds,
    }


def flood_problems(fig: dict[str, Any]) -> list[str]:
    bad = [k for k in ("versions_ok", "positions_ok", "verify_ok") if not fig[k]]
    bad += [k for k in ("lost", "duplicated", "replayed") if fig[k]]
    if fig["other"]:
        bad.append(f"other: {fig['other'][:3]}")
    return bad


class _Reader(threading.Thread):
    """Collects a restart writer's ``D`` lines while it runs."""

    def __init__(self, proc: subprocess.Popen[str], acked: list[int], lock: threading.Lock):
        super().__init__(daemon=True)
        self.proc, self.acked, self.lock = proc, acked, lock
        self.last = ""

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("D "):
                with self.lock:
                    self.acked.append(1)
            elif line.strip():
                self.last = line


def restart_run(
    cluster: Any,
    schema: str,
    writers: int,
    n_tickets: int,
    *,
    restarts: int = 1,
    down_seconds: float = 1.0,
) -> dict[str, Any]:
    """Writers append while the server is stopped hard (``-m immediate``) and started again.

    ``cluster`` has ``conninfo``, ``stop_immediate()`` and ``start()``.  The stops
    fall at evenly spaced counts of acknowledged batches; before each stop a
    checkpoint is taken, and at the end the store must verify against the first.
    """
    conninfo = cluster.conninfo
    new_schema(conninfo, schema)
    procs = [spawn("restart", conninfo, schema, w, n_tickets) for w in range(writers)]
    for p in procs:
        wait_ready(p)
    lock = threading.Lock()
    acked: list[int] = []
    readers = [_Reader(p, acked, lock) for p in procs]
    for r in readers:
        r.start()
    expected = expected_versions(writers, n_tickets)
    total_batches = sum(1 for _ in _batch_count(writers, n_tickets))
    go(procs)
    checkpoints = []
    acked_at_stop = []
    down_total = 0.0
    for i in range(restarts):
        target = total_batches * (i + 1) // (restarts + 2)
        while True:
            with lock:
                n = len(acked)
            if n >= target or not any(p.poll() is None for p in procs):
                break
            time.sleep(0.002)
        with PostgresStore(conninfo, schema=schema, readonly=True) as store:
            checkpoints.append(checkpoint(store, T0 + timedelta(minutes=i)))
        with lock:
            acked_at_stop.append(len(acked))
        t0 = time.monotonic()
        cluster.stop_immediate()
        time.sleep(down_seconds)
        cluster.start()
        down_total += time.monotonic() - t0
    errors = []
    for p in procs:
        assert p.stdin is not None
        assert p.stderr is not None
        p.stdin.close()
        errors.append(p.stderr.read())  # to the end: the worker has exited
        p.stderr.close()
        p.wait(timeout=900)
    for r in readers:
        r.join(timeout=60)
    results = []
    for p, r, err in zip(procs, readers, errors, strict=True):
        assert p.stdout is not None
        p.stdout.close()
        if p.returncode != 0:
            raise RuntimeError(f"worker failed (exit {p.returncode}): {err[-2000:]}")
        results.append(json.loads(r.last))
    f = facts(conninfo, schema, None)
    with PostgresStore(conninfo, schema=schema, readonly=True) as store:
        reports = [verify(store, cp) for cp in checkpoints] or [verify(store)]
    return {
        "writers": writers,
        "restarts": restarts,
        "down_seconds": down_total,
        "batches": total_batches,
        "acked_before_each_stop": acked_at_stop,
        "acked": len(acked),
        "events": f["count"],
        "expected_events": sum(expected.values()),
        "unavailable": sum(r["unavailable"] for r in results),
        "writers_that_saw_unavailable": sum(r["unavailable"] > 0 for r in results),
        "in_doubt": sum(r["in_doubt"] for r in results),
        "in_doubt_committed": sum(r["in_doubt_committed"] for r in results),
        "reconnects": sum(r["reconnects"] for r in results),
        "raw_psycopg": sum(r["raw_psycopg"] for r in results),
        "other": [o for r in results for o in r["other"]],
        "duplicated": f["duplicates"],
        "lost": sum(expected.values()) - f["count"] + f["duplicates"],
        "versions_ok": f["versions"] == expected,
        "positions_ok": f["position_gaps"] == 0 and f["head_mismatch"] == 0 and f["gaps"] == 0,
        "verify_ok": all(r.ok for r in reports),
    }


def _batch_count(writers: int, n_tickets: int) -> Any:
    h = histories
    t = h.templates()
    for _w in range(writers):
        for k in range(n_tickets):
            yield from h.cuts(k, len(t[k % len(t)]))


def restart_problems(fig: dict[str, Any]) -> list[str]:
    bad = [k for k in ("versions_ok", "positions_ok", "verify_ok") if not fig[k]]
    bad += [k for k in ("lost", "duplicated", "raw_psycopg") if fig[k]]
    if fig["acked"] != fig["batches"]:
        bad.append("not every batch was acknowledged in the end")
    if fig["other"]:
        bad.append(f"other: {fig['other'][:3]}")
    if fig["unavailable"] == 0:
        bad.append("no writer saw the server go away (the stop came too late)")
    return bad
