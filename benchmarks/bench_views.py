"""Ticket views and subscriptions: query times at 100,000 tickets, and append-to-delivery lag.

Run from the repository root with the project's environment::

    python benchmarks/bench_views.py                       # 100,000 tickets, SQLite
    python benchmarks/bench_views.py --postgres "host=/run/postgresql dbname=bench"
    python benchmarks/bench_views.py --quick --json        # 2,000 tickets, a few lag samples

PostgreSQL is measured when ``--postgres CONNINFO`` (or ``FIREFLOW_BENCH_DATABASE_URL``) names
a database the benchmark may create a schema in (it drops it afterwards).

What is measured, per backend:

* **build**: the store filled with ``append_many`` (1000 tickets per call), then the index
  caught up from position 0 (events folded per second);
* **queries**: each query of the index, best of 5 runs, in milliseconds, with the number of
  rows it returns; the tickets are real engine histories (five lifecycles, four report dates)
  spread over 10 towns and 300 communities;
* **incremental catch-up**: 1000 new tickets appended, then ``catch_up()``;
* **subscription lag**: a subscriber on its own connection; the writer appends one event at a
  time at random intervals; the lag is from the start of the append to the moment the
  subscriber holds the event (median and 99th percentile, milliseconds).  SQLite polls, at the
  default interval (0.2 s) and at 0.01 s; PostgreSQL wakes on ``NOTIFY``.

Every figure is printed; nothing is asserted but correctness: the index must equal
``fold_all`` of the log on a sample of tickets, and every appended event must be delivered once
and in order (exit 1 otherwise).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs

import fireflow
from fireflow import Ticket, load_plan
from fireflow.errors import NotAuthorized
from fireflow.store import SQLiteStore
from fireflow.testing.population import TOWN_NAMES
from fireflow.ticket import fold
from fireflow.views import TicketIndex

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
TOWNS = TOWN_NAMES[:10]
COMMUNITIES = 30  # per town
REPEATS = 5
BATCH = 1000


# ----------------------------------------------------------------- histories
def _opened(tid, at, category, subtype, location="inside"):
    t = Ticket(tid, PLAN)
    t.command(
        "report", at, "town", "李", community="C", town="T", category=category,
        subtype=subtype, location=location, source="town_inspection",
    )  # fmt: skip
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    return t


def templates():
    """Engine histories: open, overdue, escalated, signed off, illegal building; four dates."""
    out = []
    for month in (3, 4, 5, 6):
        at = datetime(2022, month, 21, 10, tzinfo=SH)
        day = timedelta(days=1)
        out.append(_opened("T", at, "evacuation_blocked", "goods").events)
        t = _opened("T", at, "fire_lane_vehicle", "zombie_vehicle")
        t.command("mark_overdue", at + 40 * day, "town")
        out.append(t.events)
        t = _opened("T", at, "fire_lane_vehicle", "private_car")
        with contextlib.suppress(NotAuthorized):
            t.command("refuse", at, "fire")
        t.command("refuse", at, "property", reason="业主拒不挪车")
        t.command("escalate", at, "town")
        out.append(t.events)
        t = _opened("T", at, "evacuation_blocked", "ebike_charging")
        t.command("rectify", at + day, "property", "陈经理")
        t.command("apply_reinspection", at + day, "property")
        people = [{"agency": "housing", "person": "张"}]
        t.command("recheck_pass", at + day, "town", participants=people)
        t.command("sign_off", at + 2 * day, "town", "王", signers=people)
        out.append(t.events)
        t = _opened("T", at, "spacing_illegal_building", "structure", "around")
        t.command("certify", at, "planning")
        out.append(t.events)
    return out


def ticket(templates_, k):
    """Ticket ``k``: a template, its own id, a town and a community."""
    n_towns, n_templates = len(TOWNS), len(templates_)
    events = templates_[(k // n_towns) % n_templates]
    tid = f"CL-{k:07d}"
    town = TOWNS[k % n_towns]
    community = f"{town}第{(k // (n_towns * n_templates)) % COMMUNITIES + 1}小区"
    first = events[0]
    report = attrs.evolve(
        first,
        event_id=f"{tid}/1",
        ticket_id=tid,
        payload={**first.payload, "town": town, "community": community},
    )
    rest = [attrs.evolve(e, event_id=f"{tid}/{e.seq}", ticket_id=tid) for e in events[1:]]
    return tid, [report, *rest]


# ----------------------------------------------------------------- measuring
def best_ms(fn):
    times = []
    result = None
    for _ in range(REPEATS):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times), result


def build(store, templates_, n, start=0):
    t0 = time.perf_counter()
    events = 0
    for lo in range(start, start + n, BATCH):
        batches = []
        for k in range(lo, min(lo + BATCH, start + n)):
            tid, evs = ticket(templates_, k)
            batches.append((tid, evs, 0))
            events += len(evs)
        store.append_many(batches)
    return events, time.perf_counter() - t0


def queries(index, n):
    town = TOWNS[3]
    community = f"{town}第7小区"  # about 1/300 of the tickets
    at = datetime(2022, 6, 1, tzinfo=SH)
    return {
        "tickets(town, state=rectifying)": lambda: index.tickets(town=town, state="rectifying"),
        "tickets(community)": lambda: index.tickets(community=community),
        "tickets(state=overdue)": lambda: index.tickets(state="overdue"),
        "tickets(agency=traffic_police, town)": lambda: index.tickets(
            agency="traffic_police", town=town
        ),
        "tickets(due 2022-03-24..03-31)": lambda: index.tickets(
            due_from=date(2022, 3, 24), due_to=date(2022, 3, 31)
        ),
        "overdue(2022-06-01, town)": lambda: index.overdue(at, town=town),
        "overdue(2022-06-01), first 100": lambda: index.overdue(at, limit=100),
        "open_hazards()": index.open_hazards,
        "counts()": index.counts,
        "get(ticket)": lambda: index.get(f"CL-{n // 2:07d}"),
    }


def bench_views(make_store, templates_, n):
    out = {"tickets": n}
    store = make_store()
    try:
        events, seconds = build(store, templates_, n)
        out["events"] = events
        out["build_seconds"] = round(seconds, 2)
        index = TicketIndex(store, plan=PLAN)
        t0 = time.perf_counter()
        folded = index.catch_up()
        catch = time.perf_counter() - t0
        out["index_build_seconds"] = round(catch, 2)
        out["index_events_per_second"] = round(folded / catch)
        results = {}
        for name, fn in queries(index, n).items():
            ms, rows = best_ms(fn)
            results[name] = {
                "ms": round(ms, 3),
                "rows": len(rows) if isinstance(rows, list) else int(rows is not None),
            }
        out["queries"] = results
        build(store, templates_, min(1000, n), start=n)
        t0 = time.perf_counter()
        folded = index.catch_up()
        out["incremental"] = {
            "events": folded,
            "ms": round((time.perf_counter() - t0) * 1000, 1),
        }
        # correctness: a sample of tickets equals the engine's fold of their events
        rng = random.Random(7)
        sample = [f"CL-{rng.randrange(n):07d}" for _ in range(50)]
        out["states_ok"] = all(index.state(tid) == fold(store.read(tid)) for tid in sample)
        out["count_ok"] = index.count() == n + min(1000, n)
    finally:
        close = getattr(store, "close", None)
        if close:
            close()
    return out


def bench_lag(make_pair, samples, poll_interval):
    """Lag from the start of an append to delivery, for ``samples`` single-event appends."""
    writer, reader = make_pair()
    templates_ = [_opened("T", datetime(2022, 3, 21, 10, tzinfo=SH), "evacuation_blocked", "goods")]
    started: dict[int, float] = {}
    delivered: dict[int, float] = {}
    stop = threading.Event()
    ready = threading.Event()
    start = writer.count()

    def consume():
        it = reader.subscribe(after=start - 1 if start else None, stop=stop,
                              poll_interval=poll_interval)  # fmt: skip
        ready.set()
        for se in it:
            delivered[se.position] = time.perf_counter()
            if len(delivered) >= samples:
                stop.set()

    th = threading.Thread(target=consume)
    th.start()
    ready.wait()
    time.sleep(0.2)
    rng = random.Random(11)
    events = templates_[0].events[0]
    try:
        for i in range(samples):
            tid = f"LAG-{poll_interval}-{i}"
            e = attrs.evolve(events, event_id=f"{tid}/1", ticket_id=tid)
            t0 = time.perf_counter()
            pos = writer.append(tid, [e], 0).positions[0]
            started[pos] = t0
            time.sleep(rng.uniform(0.01, 0.05))
        th.join(60)
    finally:
        stop.set()
        th.join(10)
        for s in {id(writer): writer, id(reader): reader}.values():
            s.close()
    ok = sorted(delivered) == sorted(started)
    lags = sorted((delivered[p] - started[p]) * 1000 for p in started if p in delivered)
    p99 = lags[min(len(lags) - 1, max(0, round(0.99 * len(lags)) - 1))] if lags else None
    return {
        "samples": samples,
        "poll_interval_s": poll_interval,
        "median_ms": round(statistics.median(lags), 2) if lags else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "max_ms": round(lags[-1], 2) if lags else None,
        "delivered_once_in_order": ok,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--lag-samples", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2,000 tickets, 30 lag samples")
    parser.add_argument("--postgres", default=os.environ.get("FIREFLOW_BENCH_DATABASE_URL"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.tickets, args.lag_samples = 2000, 30
    if args.tickets < 1 or args.lag_samples < 1:
        print("--tickets and --lag-samples must be positive", file=sys.stderr)
        return 2
    templates_ = templates()
    report = {
        "benchmark": "fireflow ticket views and subscriptions",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "fireflow": fireflow.__version__,
        "timer": "time.perf_counter; queries best of 5",
        "backends": {},
    }
    tmp = tempfile.TemporaryDirectory(prefix="fireflow-bench-views-")
    try:
        root = Path(tmp.name)
        counter = iter(range(10**6))

        def sqlite_store():
            return SQLiteStore(root / f"v{next(counter)}.db")

        def sqlite_pair():
            path = root / f"lag{next(counter)}.db"
            return SQLiteStore(path), SQLiteStore(path, create=False)

        sq = bench_views(sqlite_store, templates_, args.tickets)
        sq["lag"] = [
            bench_lag(sqlite_pair, args.lag_samples, 0.2),
            bench_lag(sqlite_pair, args.lag_samples, 0.01),
        ]
        report["backends"]["sqlite"] = sq
        if args.postgres:
            report["backends"]["postgres"] = bench_postgres(args, templates_)
    finally:
        tmp.cleanup()
    ok = all(
        b["states_ok"] and b["count_ok"] and all(x["delivered_once_in_order"] for x in b["lag"])
        for b in report["backends"].values()
    )
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report)
    return 0 if ok else 1


def bench_postgres(args, templates_):
    import psycopg
    from psycopg import sql

    from fireflow.store.postgres import PostgresStore

    schemas = []

    def fresh():
        schemas.append(f"bench_views_{os.getpid()}_{len(schemas)}")
        return schemas[-1]

    def pg_store():
        return PostgresStore(args.postgres, schema=fresh())

    def pg_pair():
        schema = fresh()
        return (
            PostgresStore(args.postgres, schema=schema),
            PostgresStore(args.postgres, schema=schema),
        )

    try:
        out = bench_views(pg_store, templates_, args.tickets)
        out["lag"] = [bench_lag(pg_pair, args.lag_samples, 0.2)]
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            for s in schemas:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(s)))
    return out


def print_report(report):
    print(
        f"fireflow {report['fireflow']}, Python {report['python']}, "
        f"{report['cpu_count']} CPUs, {report['platform']}"
    )
    for name, b in report["backends"].items():
        print()
        print(
            f"{name}: {b['tickets']:,} tickets, {b['events']:,} events "
            f"(store built in {b['build_seconds']} s; index folded in "
            f"{b['index_build_seconds']} s = {b['index_events_per_second']:,} events/s)"
        )
        print(f"  {'query':<40} {'best ms':>9} {'rows':>8}")
        for q, r in b["queries"].items():
            print(f"  {q:<40} {r['ms']:>9.3f} {r['rows']:>8,}")
        inc = b["incremental"]
        print(f"  incremental catch-up: {inc['events']:,} events in {inc['ms']} ms")
        for lag in b["lag"]:
            print(
                f"  subscription lag (poll {lag['poll_interval_s']} s): median "
                f"{lag['median_ms']} ms, p99 {lag['p99_ms']} ms, max {lag['max_ms']} ms "
                f"over {lag['samples']} appends"
                + ("" if lag["delivered_once_in_order"] else "  DELIVERY WRONG")
            )
        print(f"  index states equal fold: {b['states_ok']}; ticket count: {b['count_ok']}")


if __name__ == "__main__":
    sys.exit(main())
