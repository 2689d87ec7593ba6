"""Benchmark: the SQLite event store against raw sqlite3 on the same rows, in the same run.

Run from the repository root::

    python benchmarks/bench_store.py            # aligned table
    python benchmarks/bench_store.py --json     # one JSON object on stdout

Environment variables (sizes; all positive whole numbers):

* ``FIREFLOW_BENCH_SINGLE``  - events appended one per call (default 2,000).
* ``FIREFLOW_BENCH_BATCHED`` - events appended in batches of 100 (default 100,000).
* ``FIREFLOW_BENCH_REPLAY``  - events in the file that is replayed (default 1,000,000).
* ``FIREFLOW_BENCH_DIR``     - where the temporary files go (default: the system's).

The events are real: five ticket histories made once by the Ticket engine
(a full lifecycle, a failed re-check, a refusal with a refused attempt, an
illegal building, a spot-check reopening) and a 100-event history (a ticket
that fails its re-check again and again), copied to new ticket ids.

1. **Appends, one event per call**: ``store.append(ticket, [event], v)``
   against raw ``BEGIN IMMEDIATE; INSERT; COMMIT`` of the very rows the store
   wrote (read back from its file), into a fresh file with the same schema and
   the same settings (WAL, ``synchronous=FULL``).
2. **Appends, batches of 100**: ``store.append(ticket, events[100], 0)``
   against raw ``BEGIN IMMEDIATE; executemany(INSERT x 100); COMMIT`` of the
   same rows.  Target: within 2x of raw.
3. **Replay**: a file of N events (built with ``append_many``, 1,000 events a
   transaction) read back in the global order, each event decoded
   (``event_from_data``, duplicate keys refused) and folded into its ticket's
   state (``evolve``), against a raw ``SELECT`` of the same columns.  Target:
   within 10x of the raw read.  Two more rows show where the time goes: raw
   read plus ``json.loads``, and ``read_all`` (decode only, no fold).

Each side's time is the best of 3 repeats, with the garbage collector off
while timing.  Appends start from a fresh file in each repeat (file creation
is outside the timing).  The exit status is 1 if a check fails (the replayed
states or the counts are wrong), 2 on a bad setting, 0 otherwise: targets are
reported, not asserted, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import contextlib
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
from fireflow.errors import NotAuthorized
from fireflow.store import SQLiteStore
from fireflow.ticket import TicketState, evolve, fold, fold_all

REPEATS = 3
BATCH = 100
REPLAY_CHUNK = 1000
TARGET_APPEND = 2.0
TARGET_REPLAY = 10.0
DEFAULT_SINGLE = 2_000
DEFAULT_BATCHED = 100_000
DEFAULT_REPLAY = 1_000_000
SH = ZoneInfo("Asia/Shanghai")
PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64}
PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}
COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


# ----------------------------------------------------------------- events
def _opened(t, at, category, subtype, location="inside"):
    t.command(
        "report", at, "town", "李", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location=location, source="town_inspection",
        description="楼道堆物，电动车充电", evidence=[PHOTO_BEFORE],
    )  # fmt: skip
    t.command("route", at, "town", "李科长")
    t.command("set_deadline", at, "town")


def histories(plan):
    """Five ticket histories made by the engine (ticket id ``T``)."""
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    day = timedelta(days=1)
    out = []
    t = Ticket("T", plan)
    _opened(t, at, "evacuation_blocked", "ebike_charging")
    t.command("rectify", at + day, "property", "陈经理")
    t.command("apply_reinspection", at + day, "property")
    parts = [{"agency": "housing", "person": "张"}]
    t.command("recheck_pass", at + day, "town", participants=parts)
    signers = [{"agency": "housing", "person": "张"}]
    t.command("sign_off", at + 2 * day, "town", "王", signers=signers)
    t.command("archive", at + 2 * day, "town", evidence=[PHOTO_AFTER])
    out.append(t.events)
    reopened = Ticket("T", plan, t.events)
    reopened.command("reopen", datetime(2022, 8, 1, 10, tzinfo=SH), "fire", reason="抽查发现")
    out.append(reopened.events)
    t = Ticket("T", plan)
    _opened(t, at, "fire_lane_vehicle", "private_car")
    with contextlib.suppress(NotAuthorized):  # a refused attempt, recorded
        t.command("refuse", at, "fire")
    t.command("refuse", at, "property", reason="业主拒不挪车")
    t.command("expose", at, "committee")
    t.command("escalate", at, "town")
    t.command("punish", at + timedelta(hours=1), "fire")
    t.command("clear", at + timedelta(hours=2), "town")
    out.append(t.events)
    t = Ticket("T", plan)
    _opened(t, at, "spacing_illegal_building", "structure", "around")
    t.command("certify", at, "planning")
    t.command("demolish", at + 10 * day, "town", participants=[{"agency": "urban"}])
    out.append(t.events)
    out.append(long_history(plan, 9))
    return out


def long_history(plan, n):
    """A ticket that fails its re-check again and again: exactly ``n`` events."""
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t = Ticket("T", plan)
    _opened(t, at, "fire_lane_vehicle", "zombie_vehicle")
    steps = (
        ("rectify", "property", {}),
        ("apply_reinspection", "property", {}),
        ("recheck_fail", "town", {"participants": [{"agency": "housing"}], "reason": "仍有"}),
    )
    i = 0
    while len(t.events) < n:
        kind, agency, fields = steps[i % 3]
        t.command(kind, at + timedelta(minutes=i), agency, **fields)
        i += 1
    return t.events[:n]


def restamp(events, tid):
    return [attrs.evolve(e, ticket_id=tid, event_id=f"{tid}/{e.seq}") for e in events]


# ----------------------------------------------------------------- helpers
def timed(fn):
    """Seconds for one call of ``fn``, gc off while timing."""
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result
    finally:
        if was_on:
            gc.enable()


def interleaved(sides):
    """Best seconds and last result of each side; the sides take turns in every repeat.

    ``sides`` maps a name to ``(fn, setup)``: ``setup()`` (untimed, may be None)
    makes the argument of ``fn``.  Taking turns spreads a noisy machine's bad
    moments over every side alike.
    """
    best = dict.fromkeys(sides, float("inf"))
    results = {}
    for _ in range(REPEATS):
        for name, (fn, setup) in sides.items():
            arg = setup() if setup else None
            seconds, results[name] = timed(lambda a=arg, f=fn: f(a))
            best[name] = min(best[name], seconds)
    return best, results


def side(events, seconds):
    return {
        "events": events,
        "seconds": seconds,
        "us_per_event": seconds / events * 1e6,
        "events_per_second": events / seconds,
    }


class Files:
    def __init__(self, root):
        self.root = Path(tempfile.mkdtemp(prefix="fireflow-bench-", dir=root))
        self.n = 0

    def fresh_store(self):
        """A new, empty store file (created untimed)."""
        self.n += 1
        path = self.root / f"s{self.n}.db"
        SQLiteStore(path).close()
        return path

    def fresh_raw(self):
        """A new file with the store's schema, opened raw with the store's settings."""
        path = self.fresh_store()
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        return con

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def stored_rows(path):
    with SQLiteStore(path, create=False) as s:
        return [attrs.astuple(r) for r in s.rows()]


# ---------------------------------------------------------------- sections
def bench_appends(files, batches):
    """Append ``batches`` (one ``store.append`` each) against raw inserts of the same rows."""
    n = sum(len(b) for b in batches)

    def ours(path):
        with SQLiteStore(path) as s:
            for b in batches:
                s.append(b[0].ticket_id, b, b[0].seq - 1)
        return path

    # the rows the store writes, to insert raw: from one untimed run
    rows = stored_rows(ours(files.fresh_store()))
    sizes = [len(b) for b in batches]

    def raw(con):
        i = 0
        for size in sizes:
            con.execute("BEGIN IMMEDIATE")
            con.executemany(INSERT, rows[i : i + size])
            con.execute("COMMIT")
            i += size
        con.close()

    best, _ = interleaved({"fireflow": (ours, files.fresh_store), "raw": (raw, files.fresh_raw)})
    return {
        "fireflow": side(n, best["fireflow"]),
        "raw": side(n, best["raw"]),
        "ratio": best["fireflow"] / best["raw"],
    }


def bench_single(files, templates, n):
    events = []
    k = 0
    while len(events) < n:
        events += restamp(templates[k % len(templates)], f"CL-S{k:06d}")
        k += 1
    return bench_appends(files, [[e] for e in events[:n]])


def bench_batched(files, long, n):
    return bench_appends(files, [restamp(long, f"CL-B{k:06d}") for k in range(max(1, n // BATCH))])


def replay_file(files, templates, n):
    """A store of ``n`` events of the template histories, ticket after ticket.

    Returns the path, each ticket's expected version, and the seconds spent in
    ``append_many`` (making the events is not counted).
    """
    path = files.fresh_store()
    expected: dict[str, int] = {}
    written = 0
    seconds = 0.0
    with SQLiteStore(path) as s:
        k = 0
        while written < n:
            chunk = []
            size = 0
            while size < REPLAY_CHUNK and written + size < n:
                h = templates[k % len(templates)][: n - written - size]
                tid = f"CL-R{k:07d}"
                chunk.append((tid, restamp(h, tid), 0))
                expected[tid] = len(h)
                size += len(h)
                k += 1
            t0 = time.perf_counter()
            s.append_many(chunk)
            seconds += time.perf_counter() - t0
            written += size
    return path, expected, seconds


def bench_replay(files, templates, n):
    path, expected, build_s = replay_file(files, templates, n)
    query = "SELECT position, data, ticket_hash, global_hash FROM events ORDER BY position"

    def raw_read(_):
        con = sqlite3.connect(path)
        count = 0
        for _row in con.execute(query):
            count += 1
        con.close()
        return count

    def raw_read_json(_):
        con = sqlite3.connect(path)
        count = 0
        loads = json.loads
        for _p, data, _t, _g in con.execute(query):
            loads(data)
            count += 1
        con.close()
        return count

    def decode_only(_):
        with SQLiteStore(path, create=False) as s:
            return sum(1 for _ in s.read_all())

    def replay(_):
        with SQLiteStore(path, create=False) as s:
            return fold_all(stored.event for stored in s.read_all())

    def replay_evolve(_):
        states: dict[str, TicketState] = {}
        get = states.get
        with SQLiteStore(path, create=False) as s:
            for stored in s.read_all():
                e = stored.event
                states[e.ticket_id] = evolve(get(e.ticket_id) or TicketState(e.ticket_id), e)
        return states

    best, results = interleaved(
        {
            "raw_read": (raw_read, None),
            "raw_read_json": (raw_read_json, None),
            "read_all_decode": (decode_only, None),
            "replay": (replay, None),
            "replay_evolve": (replay_evolve, None),
        }
    )
    raw_s, json_s, dec_s, rep_s, evo_s = (
        best[k]
        for k in ("raw_read", "raw_read_json", "read_all_decode", "replay", "replay_evolve")
    )
    raw_n, dec_n, states = results["raw_read"], results["read_all_decode"], results["replay"]
    ok = raw_n == dec_n == n and {t: st.version for t, st in states.items()} == expected
    ok = ok and results["replay_evolve"] == states
    with SQLiteStore(path, create=False) as s:  # the replayed states are the folds
        for tid in list(expected)[:50]:
            ok = ok and states[tid] == fold(s.read(tid), tid)
    size = path.stat().st_size
    return {
        "events": n,
        "tickets": len(expected),
        "file_bytes": size,
        "build_seconds": build_s,
        "build_events_per_second": n / build_s,
        "raw_read": side(n, raw_s),
        "raw_read_json": side(n, json_s),
        "read_all_decode": side(n, dec_s),
        "replay": side(n, rep_s),
        "replay_evolve": side(n, evo_s),
        "ratio": rep_s / raw_s,
        "ratio_vs_raw_read_json": rep_s / json_s,
        "states_ok": ok,
    }


# -------------------------------------------------------------------- main
def verdict(ratio, target):
    return f"target <= {target:g}x: {'met' if ratio <= target else 'NOT met'}"


def print_append(title, res, target):
    print(title)
    print(f"  {'side':<26} {'events':>10} {'best s':>9} {'us/event':>10} {'events/s':>11}")
    for name, key in (("fireflow SQLiteStore", "fireflow"), ("raw sqlite3", "raw")):
        r = res[key]
        print(
            f"  {name:<26} {r['events']:>10,} {r['seconds']:>9.3f} {r['us_per_event']:>10.1f} "
            f"{r['events_per_second']:>11,.0f}"
        )
    tail = f"  ({verdict(res['ratio'], target)})" if target else ""
    print(f"  {'ratio fireflow / raw':<26} {res['ratio']:.2f}x{tail}")
    print()


def print_replay(res):
    print(
        f"3. replay: {res['events']:,} events of {res['tickets']:,} tickets "
        f"({res['file_bytes'] / 1e6:,.0f} MB; built with append_many in "
        f"{res['build_seconds']:.1f} s = {res['build_events_per_second']:,.0f} events/s)"
    )
    print(f"  {'side':<34} {'best s':>9} {'us/event':>10} {'events/s':>11}")
    for name, key in (
        ("raw sqlite3 read", "raw_read"),
        ("raw read + json.loads", "raw_read_json"),
        ("read_all (decode, no fold)", "read_all_decode"),
        ("replay (read_all + fold_all)", "replay"),
        ("  same, evolve per event", "replay_evolve"),
    ):
        r = res[key]
        print(
            f"  {name:<34} {r['seconds']:>9.3f} {r['us_per_event']:>10.2f} "
            f"{r['events_per_second']:>11,.0f}"
        )
    target = verdict(res["ratio"], TARGET_REPLAY)
    print(f"  {'ratio replay / raw read':<34} {res['ratio']:.1f}x  ({target})")
    print(f"  {'ratio replay / raw read + json':<34} {res['ratio_vs_raw_read_json']:.1f}x")
    print(f"  {'replayed states':<34} {'all as expected' if res['states_ok'] else 'WRONG'}")
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    n_single = env_int("FIREFLOW_BENCH_SINGLE", DEFAULT_SINGLE)
    n_batched = env_int("FIREFLOW_BENCH_BATCHED", DEFAULT_BATCHED)
    n_replay = env_int("FIREFLOW_BENCH_REPLAY", DEFAULT_REPLAY)
    root = os.environ.get("FIREFLOW_BENCH_DIR") or None

    plan = load_plan("changle-2022")
    templates = histories(plan)
    long = long_history(plan, BATCH)
    files = Files(root)
    try:
        single = bench_single(files, templates, n_single)
        batched = bench_batched(files, long, n_batched)
        replay = bench_replay(files, templates, n_replay)
    finally:
        files.cleanup()
    batched["target"] = TARGET_APPEND
    batched["target_met"] = batched["ratio"] <= TARGET_APPEND
    replay["target"] = TARGET_REPLAY
    replay["target_met"] = replay["ratio"] <= TARGET_REPLAY
    report = {
        "benchmark": "fireflow SQLiteStore vs raw sqlite3 (same rows, same run)",
        "repeats": REPEATS,
        "timer": "time.perf_counter, best of repeats, gc disabled while timing",
        "sqlite": sqlite3.sqlite_version,
        "settings": "WAL, synchronous=FULL, BEGIN IMMEDIATE (both sides)",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "fireflow": fireflow.__version__,
        "single": single,
        "batched": batched,
        "replay": replay,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"fireflow {report['fireflow']}, SQLite {report['sqlite']}, Python "
            f"{report['python']}, {report['cpu_count']} CPUs, {report['platform']}"
        )
        print(f"both sides: {report['settings']}; best of {REPEATS}")
        print()
        print_append("1. appends, one event per call", single, None)
        print_append(f"2. appends, batches of {BATCH}", batched, TARGET_APPEND)
        print_replay(replay)
    if not replay["states_ok"]:
        print("the replayed states are wrong", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
