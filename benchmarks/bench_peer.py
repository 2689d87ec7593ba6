"""Benchmark: fireflow's SQLite store against eventsourcing's SQLite recorder, same workload.

Run from the repository root (needs the ``benchmarks`` extra:
``pip install 'fireflow[benchmarks]'``, which brings eventsourcing 9.x):

    python benchmarks/bench_peer.py            # 12,500 tickets x 8 events, aligned table
    python benchmarks/bench_peer.py --json     # one JSON object instead
    python benchmarks/bench_peer.py --quick    # 500 tickets, 200 single appends (smoke)

The workload: ``FIREFLOW_BENCH_PEER_TICKETS`` tickets (default 12,500) of 8 real
events each (a full lifecycle made once by the Ticket engine, with photos, copied
to new ticket ids before any timing).  Both sides write the same bytes per event:
fireflow's canonical JSON (``canonical_bytes``), which eventsourcing stores as a
``StoredEvent`` (originator id = ticket id, version = seq, topic = the event kind,
state = the bytes).  On both sides the time includes making those bytes from the
``Event``.  Reads decode each row into a fireflow ``Event`` with the same decoder
(``fireflow.store.chain.decode_event``) and fold the states with ``fold_all`` /
``fold``, so both sides end with the same states (checked).

Durable settings, both sides: one SQLite file in WAL mode with
``synchronous=FULL`` (fireflow sets it; eventsourcing's ``SQLiteDatastore``
switches the file to WAL and keeps SQLite's default, FULL, which the benchmark
reads back and reports), one transaction per append call.

Sections (best of 3, the sides taking turns; gc off while timing):

1. batched appends: one call per ticket with its 8 events (``store.append`` /
   ``recorder.insert_events``);
2. whole-log replay: every event in the global order, decoded and folded into
   every ticket's state (``store.read_all`` / ``recorder.select_notifications``
   in pages of 1,000);
3. per-ticket loads: ``store.read`` / ``recorder.select_events`` of about
   2,000 tickets (every ``n``-th), decoded and folded;
4. single appends: ``FIREFLOW_BENCH_PEER_SINGLE`` events (default 2,000), one
   call and one commit each.

Ratios are eventsourcing seconds / fireflow seconds: above 1.0, fireflow is
ahead.  Exit status 0 (targets reported, not asserted), 1 when the states
differ, 2 for a bad setting or a missing eventsourcing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
from _common import env_int

import fireflow
from fireflow import Ticket, load_plan
from fireflow.events import canonical_bytes
from fireflow.store import SQLiteStore
from fireflow.store.chain import decode_event
from fireflow.ticket import fold, fold_all

REPEATS = 3
PAGE = 1000
LOADS = 2000
SH = ZoneInfo("Asia/Shanghai")

GUARANTEES = {
    "fireflow": [
        "checks every event (ids, kinds, times, text policy) before writing",
        "optimistic concurrency per ticket (expected version)",
        "a SHA-256 chain per ticket and over the whole log, verifiable",
        "retried event ids accepted once (idempotent appends)",
        "canonical bytes: the same event is the same bytes everywhere",
        "one global order (position) for replay and subscriptions",
    ],
    "eventsourcing": [
        "optimistic concurrency per aggregate (primary key on id and version)",
        "one global order (notification id = rowid) for replay and subscriptions",
        "stores whatever bytes it is given: no checks, no hash chain, no idempotent retry",
    ],
}


def history(plan):
    """One full lifecycle, 8 events, made by the engine (ticket id ``T``)."""
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    day = timedelta(days=1)
    t = Ticket("T", plan)
    t.command(
        "report", at, "town", "李", community="金峰小区", town="金峰镇",
        category="evacuation_blocked", subtype="ebike_charging", location="inside",
        source="town_inspection", description="楼道堆物，电动车充电",
        evidence=[{"kind": "photo_before", "sha256": "b" * 64}],
    )  # fmt: skip
    t.command("route", at, "town", "李科长")
    t.command("set_deadline", at, "town")
    t.command("rectify", at + day, "property", "陈经理")
    t.command("apply_reinspection", at + day, "property")
    parts = [{"agency": "housing", "person": "张"}]
    t.command("recheck_pass", at + day, "town", participants=parts)
    t.command("sign_off", at + 2 * day, "town", "王", signers=parts)
    t.command(
        "archive", at + 2 * day, "town", evidence=[{"kind": "photo_after", "sha256": "a" * 64}]
    )
    assert len(t.events) == 8, len(t.events)
    return t.events


def restamp(events, tid):
    return [attrs.evolve(e, ticket_id=tid, event_id=f"{tid}/{e.seq}") for e in events]


def timed(fn, arg):
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn(arg)
        return time.perf_counter() - t0, result
    finally:
        gc.enable()


class Sides:
    """Fresh files for each side; every call of a side gets its own new file."""

    def __init__(self, root):
        self.root = Path(tempfile.mkdtemp(prefix="fireflow-peer-", dir=root))
        self.n = 0

    def path(self, name):
        self.n += 1
        return self.root / f"{name}{self.n}.db"

    def fireflow(self):
        path = self.path("ff")
        SQLiteStore(path).close()
        return path

    def eventsourcing(self):
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        path = self.path("es")
        datastore = SQLiteDatastore(str(path), originator_id_type="text")
        recorder = SQLiteApplicationRecorder(datastore)
        recorder.create_table()
        return recorder

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def stored(events):
    from eventsourcing.persistence import StoredEvent

    return [StoredEvent(e.ticket_id, e.seq, e.kind, canonical_bytes(e)) for e in events]


def es_synchronous(recorder):
    with recorder.datastore.transaction(commit=False) as c:
        c.execute("PRAGMA synchronous")
        sync = c.fetchone()[0]
        c.execute("PRAGMA journal_mode")
        return {"synchronous": sync, "journal_mode": c.fetchone()[0]}


def compare(sides_fns):
    """Best seconds and last result per side; the sides take turns each repeat."""
    best = dict.fromkeys(sides_fns, float("inf"))
    results = {}
    for _ in range(REPEATS):
        for name, (fn, setup) in sides_fns.items():
            seconds, results[name] = timed(fn, setup())
            best[name] = min(best[name], seconds)
    return best, results


def section(best, events):
    ff, es = best["fireflow"], best["eventsourcing"]
    return {
        "events": events,
        "fireflow": {"seconds": ff, "us_per_event": ff / events * 1e6},
        "eventsourcing": {"seconds": es, "us_per_event": es / events * 1e6},
        "ratio": es / ff,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    try:
        import eventsourcing  # noqa: F401
        from eventsourcing.persistence import StoredEvent  # noqa: F401
    except ImportError:
        print("needs eventsourcing: pip install 'fireflow[benchmarks]'", file=sys.stderr)
        return 2
    from importlib.metadata import version

    n_tickets = env_int("FIREFLOW_BENCH_PEER_TICKETS", 500 if args.quick else 12_500)
    n_single = env_int("FIREFLOW_BENCH_PEER_SINGLE", 200 if args.quick else 2_000)
    plan = load_plan("changle-2022")
    template = history(plan)
    tickets = [restamp(template, f"CL-{k:06d}") for k in range(n_tickets)]
    n_events = 8 * n_tickets
    files = Sides(os.environ.get("FIREFLOW_BENCH_DIR"))
    try:
        # 1. batched appends: one call per ticket, its 8 events
        def ff_batched(path):
            with SQLiteStore(path) as s:
                for evs in tickets:
                    s.append(evs[0].ticket_id, evs, 0)
            return path

        def es_batched(recorder):
            for evs in tickets:
                recorder.insert_events(stored(evs))
            return recorder

        best, made = compare(
            {
                "fireflow": (ff_batched, files.fireflow),
                "eventsourcing": (es_batched, files.eventsourcing),
            }
        )
        batched = section(best, n_events)
        ff_path, es_rec = made["fireflow"], made["eventsourcing"]
        settings = {
            "fireflow": {"synchronous": 2, "journal_mode": "wal"},
            "eventsourcing": es_synchronous(es_rec),
        }

        # 2. whole-log replay into every ticket's state
        def ff_replay(path):
            with SQLiteStore(path, create=False) as s:
                return fold_all(stored.event for stored in s.read_all())

        def es_events(recorder):
            start = 1
            while True:
                page = recorder.select_notifications(start, PAGE)
                for n in page:
                    yield decode_event(n.state, n.id)
                if len(page) < PAGE:
                    return
                start = page[-1].id + 1

        def es_replay(recorder):
            return fold_all(es_events(recorder))

        best, states = compare(
            {
                "fireflow": (ff_replay, lambda: ff_path),
                "eventsourcing": (es_replay, lambda: es_rec),
            }
        )
        replay = section(best, n_events)
        same = (
            states["fireflow"] == states["eventsourcing"] and len(states["fireflow"]) == n_tickets
        )

        # 3. per-ticket loads
        step = max(1, n_tickets // LOADS)
        ids = [tickets[k][0].ticket_id for k in range(0, n_tickets, step)]

        def ff_loads(path):
            with SQLiteStore(path, create=False) as s:
                return [fold(s.read(t)) for t in ids]

        def es_loads(recorder):
            return [
                fold([decode_event(r.state, 0) for r in recorder.select_events(t)]) for t in ids
            ]

        best, loaded = compare(
            {
                "fireflow": (ff_loads, lambda: ff_path),
                "eventsourcing": (es_loads, lambda: es_rec),
            }
        )
        loads = section(best, 8 * len(ids))
        loads["tickets"] = len(ids)
        same = same and loaded["fireflow"] == loaded["eventsourcing"]

        # 4. single appends: one event, one commit per call
        singles = [e for evs in tickets for e in evs][:n_single]

        def ff_single(path):
            with SQLiteStore(path) as s:
                for e in singles:
                    s.append(e.ticket_id, [e], e.seq - 1)

        def es_single(recorder):
            for e in singles:
                recorder.insert_events(stored([e]))

        best, _ = compare(
            {
                "fireflow": (ff_single, files.fireflow),
                "eventsourcing": (es_single, files.eventsourcing),
            }
        )
        single = section(best, len(singles))
    finally:
        files.cleanup()

    out = {
        "benchmark": "fireflow SQLiteStore vs eventsourcing SQLiteApplicationRecorder",
        "fireflow": fireflow.__version__,
        "eventsourcing": version("eventsourcing"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "load": os.getloadavg(),
        "tickets": n_tickets,
        "events": n_events,
        "settings": settings,
        "batched": batched,
        "replay": replay,
        "loads": loads,
        "single": single,
        "same_states": same,
        "guarantees": GUARANTEES,
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(
            f"{n_tickets:,} tickets x 8 events; fireflow {out['fireflow']}, eventsourcing "
            f"{out['eventsourcing']}, SQLite {out['sqlite']}, Python {out['python']}, "
            f"load {out['load'][0]:.2f}"
        )
        print(f"settings: {settings}")
        print(
            f"{'section':<22} {'events':>9} {'fireflow us/ev':>15} {'evsrc us/ev':>12} {'ratio':>7}"
        )
        for name in ("batched", "replay", "loads", "single"):
            s = out[name]
            print(
                f"{name:<22} {s['events']:>9,} {s['fireflow']['us_per_event']:>15.2f} "
                f"{s['eventsourcing']['us_per_event']:>12.2f} {s['ratio']:>6.2f}x"
            )
        print(f"same states on both sides: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
