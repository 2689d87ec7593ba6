"""Benchmark: the PostgreSQL event store against raw psycopg: same rows, same server, same run.

Run from the repository root::

    python benchmarks/bench_pg.py              # starts a durable throwaway cluster (fsync=on)
    python benchmarks/bench_pg.py --json       # one JSON object on stdout
    python benchmarks/bench_pg.py --quick      # tiny sizes (the smoke test runs this)
    python benchmarks/bench_pg.py --url 'host=... dbname=...'   # an existing server

Without ``--url`` the script starts its own cluster the way the tests do
(tests/pgcluster.py: Debian's server binaries, a unix socket in a temporary
folder, no TCP port) with PostgreSQL's durable defaults (``fsync=on``,
``synchronous_commit=on``, ``full_page_writes=on``), and removes it at the end.
With ``--url`` it works in schemas named ``bench_*`` of that database (dropped
at the end) and reports that server's settings, whatever they are.

Environment variables (sizes; all positive whole numbers):

* ``FIREFLOW_BENCH_PG_SINGLE``  - events appended one per call (default 1,000).
* ``FIREFLOW_BENCH_PG_BATCHED`` - events appended in batches of 100 (default 20,000).
* ``FIREFLOW_BENCH_PG_REPLAY``  - events in the log that is replayed (default 1,000,000).
* ``FIREFLOW_BENCH_PG_TICKETS`` - tickets written by the concurrent writers, split
  among them (default 480: 1 writer x 480, 4 x 120, 16 x 30).

The events are the ones of benchmarks/bench_store.py (five ticket histories made
by the engine, and a 100-event history; both scripts take them, the timing and the
tables from benchmarks/_common.py), copied to new ticket ids; the writers'
histories are tests/store_workers/histories.py's, cut into batches of 1-4 events.

1. **Appends, one event per call** and 2. **batches of 100**: ``store.append``
   against raw ``BEGIN; executemany(INSERT); COMMIT`` of the very rows the store
   wrote (read back from an untimed run), into a fresh schema with the store's
   tables and indexes, one transaction per batch on both sides.
3. **Replay**: a log of N events (built with ``append_many``, about 1,000 events
   a transaction) read back in the global order, decoded and folded into every
   ticket's state (``fold_all``), against raw psycopg reads of the same columns:
   a server-side cursor (2,000 rows a fetch) and the store's own keyset pages.
   The baseline of the ratio is the faster raw read.
4. **Concurrent writers**: 1, 4 and 16 processes append batches of 1-4 events to
   tickets of their own, all started at once; events/s, and the log afterwards:
   0 lost, 0 duplicated, every ticket at its full version, ``verify()`` clean.
   Baseline: as many processes inserting the same rows raw, in the same batches,
   one transaction each, with no lock and no chain.

Each side's time is the best of 3 (sections 1-3; the sides take turns), with the
garbage collector off while timing.  Exit status: 1 if a check fails, 2 on a bad
setting, 3 if no server can be had; 0 otherwise (figures are reported, not
asserted: the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]  # pgcluster, store_workers

import psycopg  # noqa: E402
from _common import (  # noqa: E402
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
    pg_durability,
    print_append,
    print_sides,
    side,
    single_batches,
    write_replay_log,
)
from pgcluster import Cluster, ClusterUnavailable, server_settings  # noqa: E402
from psycopg import sql  # noqa: E402

from fireflow import load_plan  # noqa: E402
from fireflow.store.postgres import PostgresStore  # noqa: E402
from fireflow.ticket import fold, fold_all  # noqa: E402

COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"
PAGE = 2000
WRITERS = (1, 4, 16)
QUICK = {"single": 20, "batched": 300, "replay": 700, "tickets": 8, "writers": (1, 4)}
DEFAULTS = {"single": 1_000, "batched": 20_000, "replay": 1_000_000, "tickets": 480}


class Server:
    """Fresh schemas on one server; every schema made here is dropped by :meth:`cleanup`."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.n = 0
        self.schemas: list[str] = []

    def drop(self, schema: str) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    def fresh(self, tag: str = "s") -> str:
        """A new schema holding the store's (empty) tables, made untimed."""
        self.n += 1
        schema = f"bench_{tag}{self.n}"
        self.drop(schema)
        PostgresStore(self.conninfo, schema=schema).close()
        self.schemas.append(schema)
        return schema

    def fresh_store(self) -> PostgresStore:
        return PostgresStore(self.conninfo, schema=self.fresh())

    def fresh_raw(self) -> tuple[psycopg.Connection, sql.Composed]:
        schema = self.fresh()
        conn = psycopg.connect(self.conninfo, autocommit=True)
        insert = sql.SQL(
            f"INSERT INTO {{}}.events ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ).format(sql.Identifier(schema))
        return conn, insert

    def cleanup(self) -> None:
        for schema in self.schemas:
            self.drop(schema)
        self.schemas.clear()


# ---------------------------------------------------------------- sections
def bench_appends(server: Server, batches):
    """Append ``batches`` (one ``store.append`` each) against raw inserts of the same rows."""
    n = sum(len(b) for b in batches)

    def ours(store):
        for b in batches:
            store.append(b[0].ticket_id, b, b[0].seq - 1)
        store.close()
        return store.schema

    schema = ours(server.fresh_store())  # the rows the store writes, to insert raw
    with PostgresStore(server.conninfo, schema=schema, readonly=True) as s:
        rows = [(r.position, r.ticket_id, r.seq, r.event_id, r.data, r.ticket_hash,
                 r.global_hash) for r in s.rows()]  # fmt: skip
    sizes = [len(b) for b in batches]

    def raw(arg):
        conn, insert = arg
        i = 0
        with conn.cursor() as cur:
            for size in sizes:
                with conn.transaction():
                    cur.executemany(insert, rows[i : i + size])
                i += size
        conn.close()

    best, _ = interleaved({"fireflow": (ours, server.fresh_store), "raw": (raw, server.fresh_raw)})
    server.cleanup()
    return append_figures(n, best)


def replay_schema(server, templates, n):
    """A log of ``n`` events of the template histories; (schema, versions, build seconds)."""
    schema = server.fresh("replay")
    with PostgresStore(server.conninfo, schema=schema) as s:
        expected, seconds = write_replay_log(s, templates, n)
    return schema, expected, seconds


def bench_replay(server, templates, n):
    schema, expected, build_s = replay_schema(server, templates, n)
    s_id = sql.Identifier(schema)
    query = sql.SQL(
        "SELECT position, data, ticket_hash, global_hash FROM {}.events ORDER BY position"
    ).format(s_id)
    paged = sql.SQL(
        "SELECT position, data, ticket_hash, global_hash FROM {}.events WHERE position >= %s "
        "ORDER BY position LIMIT %s"
    ).format(s_id)

    def raw_cursor(_, parse=None):
        count = 0
        with psycopg.connect(server.conninfo) as conn, conn.cursor(name="replay") as cur:
            cur.itersize = PAGE
            cur.execute(query)
            for _p, data, _t, _g in cur:
                if parse:
                    parse(data)
                count += 1
        return count

    def raw_paged(_):
        count = 0
        start = 0
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            while True:
                page = conn.execute(paged, (start, PAGE)).fetchall()
                count += len(page)
                if len(page) < PAGE:
                    return count
                start = page[-1][0] + 1

    def decode_only(_):
        with PostgresStore(server.conninfo, schema=schema, readonly=True) as s:
            return sum(1 for _ in s.read_all())

    def replay(_):
        with PostgresStore(server.conninfo, schema=schema, readonly=True) as s:
            return fold_all(stored.event for stored in s.read_all())

    best, results = interleaved(
        {
            "raw_cursor": (raw_cursor, None),
            "raw_paged": (raw_paged, None),
            "raw_read_json": (lambda a: raw_cursor(a, json.loads), None),
            "read_all_decode": (decode_only, None),
            "replay": (replay, None),
        }
    )
    raw_s = min(best["raw_cursor"], best["raw_paged"])
    states = results["replay"]
    ok = results["raw_cursor"] == results["raw_paged"] == results["read_all_decode"] == n
    ok = ok and {t: st.version for t, st in states.items()} == expected
    with PostgresStore(server.conninfo, schema=schema, readonly=True) as s:
        for tid in list(expected)[:50]:
            ok = ok and states[tid] == fold(s.read(tid), tid)
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        size = conn.execute(
            "SELECT pg_total_relation_size(%s)", (f'"{schema}".events',)
        ).fetchone()[0]
    server.cleanup()
    return {
        "events": n,
        "tickets": len(expected),
        "table_bytes": size,
        "build_seconds": build_s,
        "build_events_per_second": n / build_s,
        **{k: side(n, best[k]) for k in best},
        "ratio": best["replay"] / raw_s,
        "ratio_vs_raw_read_json": best["replay"] / best["raw_read_json"],
        "states_ok": ok,
    }


def bench_writers(server, total_tickets, counts):
    from store_workers import pg_runs

    out = []
    for n in counts:
        per = max(1, total_tickets // n)
        schema = f"bench_w{n}"
        fig = pg_runs.flood_run(server.conninfo, schema, n, per)
        fig["problems"] = pg_runs.flood_problems(fig)
        fig["raw"] = pg_runs.rawflood_run(server.conninfo, f"bench_rw{n}", schema, n, per)
        fig["ratio"] = fig["raw"]["events_per_second"] / fig["events_per_second"]
        if fig["raw"]["stored"] != fig["events"]:
            fig["problems"].append("the raw writers stored another number of rows")
        server.drop(schema)
        server.drop(f"bench_rw{n}")
        out.append(fig)
    return out


# -------------------------------------------------------------------- main
def print_replay(res):
    print(
        f"3. replay: {res['events']:,} events of {res['tickets']:,} tickets "
        f"(table and indexes {res['table_bytes'] / 1e6:,.0f} MB; built with append_many in "
        f"{res['build_seconds']:.1f} s = {res['build_events_per_second']:,.0f} events/s)"
    )
    print_sides(
        res,
        (
            ("raw psycopg, server-side cursor", "raw_cursor"),
            ("raw psycopg, keyset pages", "raw_paged"),
            ("raw cursor + json.loads", "raw_read_json"),
            ("read_all (decode, no fold)", "read_all_decode"),
            ("replay (read_all + fold_all)", "replay"),
        ),
    )
    print(f"  {'ratio replay / faster raw read':<34} {res['ratio']:.1f}x")
    print(f"  {'ratio replay / raw read + json':<34} {res['ratio_vs_raw_read_json']:.1f}x")
    print(f"  {'replayed states':<34} {'all as expected' if res['states_ok'] else 'WRONG'}")
    print()


def print_writers(rows):
    print("4. concurrent writers on distinct tickets (processes; batches of 1-4 events)")
    print(
        f"  {'writers':>7} {'tickets':>8} {'events':>7} {'batches/s':>10} {'events/s':>9} "
        f"{'raw events/s':>13} {'raw/ours':>9}  check"
    )
    for r in rows:
        check = "0 lost, 0 duplicated, verify ok" if not r["problems"] else str(r["problems"])
        print(
            f"  {r['writers']:>7} {r['tickets']:>8,} {r['events']:>7,} "
            f"{r['batches_per_second']:>10,.0f} {r['events_per_second']:>9,.0f} "
            f"{r['raw']['events_per_second']:>13,.0f} {r['ratio']:>8.1f}x  {check}"
        )
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--url", help="a libpq connection string of an existing server")
    args = parser.parse_args(argv)
    sizes = dict(QUICK if args.quick else DEFAULTS)
    for key in ("single", "batched", "replay", "tickets"):
        sizes[key] = env_int(f"FIREFLOW_BENCH_PG_{key.upper()}", sizes[key])
    counts = QUICK["writers"] if args.quick else WRITERS

    cluster = None
    if args.url:
        conninfo = args.url
    else:
        try:
            cluster = Cluster(durable=True)
            cluster.start()
        except ClusterUnavailable as exc:
            print(f"no PostgreSQL server: {exc}; pass --url", file=sys.stderr)
            if cluster:
                cluster.remove()
            return 3
        conninfo = cluster.conninfo
    server = Server(conninfo)
    try:
        plan = load_plan("changle-2022")
        templates = histories(plan)
        long = long_history(plan, BATCH)
        settings = server_settings(conninfo)
        single = bench_appends(server, single_batches(templates, sizes["single"]))
        batched = bench_appends(server, batched_batches(long, sizes["batched"]))
        replay = bench_replay(server, templates, sizes["replay"])
        writers = bench_writers(server, sizes["tickets"], counts)
    finally:
        server.cleanup()
        if cluster:
            cluster.remove()
    report = {
        "benchmark": "fireflow PostgresStore vs raw psycopg (same rows, same server, same run)",
        "repeats": REPEATS,
        "timer": TIMER,
        "server": settings,
        "server_started_by": "the script (a durable throwaway cluster)" if cluster else "--url",
        "psycopg": psycopg.__version__,
        "psycopg_impl": psycopg.pq.__impl__,
        **host(),
        "sizes": {k: v for k, v in sizes.items() if k != "writers"},
        "single": single,
        "batched": batched,
        "replay": replay,
        "writers": writers,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        s = settings
        print(
            f"fireflow {report['fireflow']}, PostgreSQL {s['server_version']}, psycopg "
            f"{report['psycopg']} ({report['psycopg_impl']}), Python {report['python']}, "
            f"{report['cpu_count']} CPUs, {report['platform']}"
        )
        print(
            f"server: {pg_durability(s)} shared_buffers={s['shared_buffers']} "
            f"({report['server_started_by']}); best of {REPEATS}"
        )
        print()
        sides = ("fireflow PostgresStore", "raw psycopg")
        print_append("1. appends, one event per call", single, *sides)
        print_append(f"2. appends, batches of {BATCH}", batched, *sides)
        print_replay(replay)
        print_writers(writers)
    bad = not replay["states_ok"] or any(w["problems"] for w in writers)
    if bad:
        print("a check failed (replayed states or the writers' log)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
