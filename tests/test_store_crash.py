"""The SQLite store under crashes and concurrent writers, in real processes.

Each test prints a one-line summary of its figures (read them with ``pytest -s``).
``FIREFLOW_FULL=1`` runs the full counts (kill -9: 200 runs; 4 writers: 250
wins each; two duplicate writers: 600 tickets); CI runs small counts.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from store_workers import histories

from fireflow.store import SQLiteStore, checkpoint, verify
from fireflow.ticket import fold

FULL = bool(os.environ.get("FIREFLOW_FULL"))
WRITER = Path(__file__).resolve().parent / "store_workers" / "writer.py"
T0 = datetime(2022, 12, 12, 9, tzinfo=timezone(timedelta(hours=8)))

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "R":
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"worker did not start: {line!r} {out!r} {err!r}")


def start_together(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait until every worker is ready, start them at once, return each one's last JSON line."""
    for p in procs:
        wait_ready(p)
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def sql_checks(db: Path, bounds: dict[str, set[int]]) -> dict[str, int | bool]:
    """Fast checks straight on the file: integrity, positions, gaps, partial batches."""
    con = sqlite3.connect(db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        count, top = con.execute("SELECT COUNT(*), MAX(position) FROM events").fetchone()
        per_ticket = con.execute(
            "SELECT ticket_id, COUNT(*), MIN(seq), MAX(seq) FROM events GROUP BY ticket_id"
        ).fetchall()
    finally:
        con.close()
    gaps = sum(1 for _, n, lo, hi in per_ticket if lo != 1 or hi != n)
    partial = sum(1 for tid, n, _, _ in per_ticket if n not in bounds[tid])
    return {
        "integrity": integrity,
        "count": count,
        "position_gaps": 0 if count == 0 else int(top + 1 != count),
        "gaps": gaps,
        "partial": partial,
        "versions": {tid: n for tid, n, _, _ in per_ticket},
    }


def test_kill9_mid_append_loses_nothing_and_leaves_no_partial_batch(tmp_path):
    runs = 200 if FULL else 20
    n_tickets = 10_000
    db = tmp_path / "kill.db"
    SQLiteStore(db).close()
    bounds = histories.boundaries(n_tickets)
    shapes = list(histories.shapes(n_tickets))
    rng = random.Random(2022)
    in_flight = in_flight_committed = partial = gaps = acked_lost = bad_integrity = 0
    finished = replayed_after_crash = 0
    cp = None
    for run in range(runs):
        proc = spawn("kill", str(db), str(n_tickets))
        wait_ready(proc)
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode in (-signal.SIGKILL, 0), err
        lines = out.split()
        assert "PARTIAL" not in lines, out
        assert "NOT-REPLAYED" not in lines, out
        finished += "F" in lines
        began = [int(x) for tag, x in itertools.pairwise(lines) if tag == "B"]
        acked = [int(x) for tag, x in itertools.pairwise(lines) if tag == "D"]
        replayed_after_crash += run > 0
        facts = sql_checks(db, bounds)
        bad_integrity += not facts["integrity"]
        partial += facts["partial"]
        gaps += facts["gaps"] + facts["position_gaps"]
        versions = facts["versions"]
        for i in acked:
            k, _, hi = shapes[i]
            if versions.get(histories.ticket_id(k), 0) < hi:
                acked_lost += 1
        if began and (not acked or began[-1] != acked[-1]):
            in_flight += 1
            k, _, hi = shapes[began[-1]]
            in_flight_committed += versions.get(histories.ticket_id(k), 0) >= hi
        if run % 10 == 9 or run == runs - 1:
            with SQLiteStore(db, create=False) as store:
                report = verify(store, cp)
                assert report.ok, report.problems
                cp = checkpoint(store, T0 + timedelta(minutes=run))
    count = facts["count"]
    print(
        f"\nkill9: runs={runs} killed_mid_append={in_flight} "
        f"(committed {in_flight_committed}, rolled back {in_flight - in_flight_committed}) "
        f"partial={partial} gaps={gaps} acked_lost={acked_lost} "
        f"integrity={'ok' if not bad_integrity else f'{bad_integrity} BAD'} events={count} "
        f"resent_after_crash={replayed_after_crash} (all replayed) verify=ok"
    )
    assert finished == 0, "the schedule ran out: give the writer more tickets"
    assert (partial, gaps, acked_lost, bad_integrity) == (0, 0, 0, 0)
    assert in_flight > 0


def test_four_writers_on_one_ticket_one_winner_per_version(tmp_path):
    writers, wins = 4, (250 if FULL else 25)
    db = tmp_path / "race.db"
    setup = histories.race_setup()
    with SQLiteStore(db) as store:
        store.append("RACE", setup, 0)
    procs = [spawn("race", str(db), str(w), str(wins)) for w in range(writers)]
    results = start_together(procs)
    for r in results:
        assert r["other"] == [], r["other"]
        assert r["raw_sqlite"] == 0
        assert len(r["wins"]) == wins
    with SQLiteStore(db, create=False) as store:
        events = store.read("RACE")
        report = verify(store)
        assert store.integrity_check() == ["ok"]
    assert report.ok, report.problems
    claimed = [(seq, eid) for r in results for seq, eid in r["wins"]]
    stored = [(e.seq, e.event_id) for e in events[len(setup) :]]
    per_version: dict[int, int] = {}
    for seq, _ in claimed:
        per_version[seq] = per_version.get(seq, 0) + 1
    assert [e.seq for e in events] == list(range(1, len(setup) + writers * wins + 1))
    assert set(per_version.values()) == {1}, "two writers won the same version"
    assert sorted(claimed) == stored, "a won append is missing, or an unclaimed one is stored"
    assert len({e.event_id for e in events}) == len(events)
    state = fold(events)  # every event was decided on the state its predecessor left
    assert state.version == len(events)
    conflicts = sum(r["conflicts"] for r in results)
    print(
        f"\nconcurrency: writers={writers} appends={writers * wins} versions={len(events)} "
        f"winners_per_version=1 lost=0 duplicated=0 conflicts={conflicts} "
        f"busy_retries={sum(r['busy_retries'] for r in results)} "
        f"store_busy={sum(r['store_busy'] for r in results)} "
        f"raw_busy={sum(r['raw_sqlite'] for r in results)} fold=ok verify=ok"
    )


def test_two_processes_sending_the_same_batches_store_each_event_once(tmp_path):
    n_tickets = 600 if FULL else 60
    db = tmp_path / "dup.db"
    SQLiteStore(db).close()
    procs = [spawn("dup", str(db), str(w), str(n_tickets)) for w in range(2)]
    results = start_together(procs)
    batches = list(histories.schedule(n_tickets))
    events = sum(len(b) for _, _, b in batches)
    for r in results:
        assert r["other"] == [], r["other"]
    appended = sum(r["appended"] for r in results)
    replayed = sum(r["replayed"] for r in results)
    with SQLiteStore(db, create=False) as store:
        stored = store.count()
        report = verify(store)
        ids = [s.event.event_id for s in store.read_all()]
    assert report.ok, report.problems
    assert appended == len(batches)
    assert replayed == len(batches)
    assert stored == events == len(set(ids)) == sum(r["events_appended"] for r in results)
    print(
        f"\nidempotency (2 processes): batches={len(batches)} events={events} "
        f"submitted={2 * events} stored={stored} duplicates=0 "
        f"appended={appended} replayed={replayed}"
    )
