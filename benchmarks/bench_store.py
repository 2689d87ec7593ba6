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
that fails its re-check again and again), copied to new ticket ids
(benchmarks/_common.py makes them, for bench_pg.py too).

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
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import attrs
from _common import (
    BATCH,
    REPEATS,
    TIMER,
    append_figures,
    batched_batches,
    env_int,
    histories,
    host,
    interleaved,
    long_history,
    print_append,
    print_sides,
    side,
    single_batches,
    verdict,
    write_replay_log,
)

from fireflow import load_plan
from fireflow.store import SQLiteStore
from fireflow.ticket import TicketState, evolve, fold, fold_all

TARGET_APPEND = 2.0
TARGET_REPLAY = 10.0
DEFAULT_SINGLE = 2_000
DEFAULT_BATCHED = 100_000
DEFAULT_REPLAY = 1_000_000
COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


# ----------------------------------------------------------------- helpers
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
    return append_figures(n, best)


def replay_file(files, templates, n):
    """A store of ``n`` events of the template histories, ticket after ticket.

    Returns the path, each ticket's expected version, and the seconds spent in
    ``append_many`` (making the events is not counted).
    """
    path = files.fresh_store()
    with SQLiteStore(path) as s:
        expected, seconds = write_replay_log(s, templates, n)
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
def print_replay(res):
    print(
        f"3. replay: {res['events']:,} events of {res['tickets']:,} tickets "
        f"({res['file_bytes'] / 1e6:,.0f} MB; built with append_many in "
        f"{res['build_seconds']:.1f} s = {res['build_events_per_second']:,.0f} events/s)"
    )
    print_sides(
        res,
        (
            ("raw sqlite3 read", "raw_read"),
            ("raw read + json.loads", "raw_read_json"),
            ("read_all (decode, no fold)", "read_all_decode"),
            ("replay (read_all + fold_all)", "replay"),
            ("  same, evolve per event", "replay_evolve"),
        ),
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
        single = bench_appends(files, single_batches(templates, n_single))
        batched = bench_appends(files, batched_batches(long, n_batched))
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
        "timer": TIMER,
        "sqlite": sqlite3.sqlite_version,
        "settings": "WAL, synchronous=FULL, BEGIN IMMEDIATE (both sides)",
        **host(),
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
        sides = ("fireflow SQLiteStore", "raw sqlite3")
        print_append("1. appends, one event per call", single, *sides)
        print_append(f"2. appends, batches of {BATCH}", batched, *sides, TARGET_APPEND)
        print_replay(replay)
    if not replay["states_ok"]:
        print("the replayed states are wrong", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
