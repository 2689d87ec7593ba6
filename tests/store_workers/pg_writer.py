"""A writer process for the PostgreSQL store's crash, restart and concurrency runs.

Run as ``python pg_writer.py MODE CONNINFO SCHEMA ...``; it talks to its parent
over its standard streams, one line at a time, flushed.  The same schedules as
the SQLite worker (``histories``), so the figures compare.

* ``kill CONNINFO SCHEMA N_TICKETS`` - append the batches of
  ``histories.shapes(N_TICKETS)`` until killed.  It resumes after the batches
  already stored (a previous run was killed), first sending the last stored
  batch again, which must come back as replayed.  Prints ``R`` when ready,
  ``B i`` before batch ``i`` and ``D i a|r`` after it (appended or replayed).
* ``race CONNINFO SCHEMA WORKER WINS`` - with other writers, append events to
  one ticket (``RACE``) until this writer has won ``WINS`` appends: read, fold,
  decide the next step with the engine, append with the folded version; on
  ``ConcurrencyConflict`` read again.  Waits for a line on stdin after ``R``.
  Prints one JSON line of results.
* ``flood CONNINFO SCHEMA WORKER N_TICKETS`` - append every batch of this
  worker's own ``N_TICKETS`` tickets (ids ``W<worker>-<k>``), as fast as it can.
  Waits for a line on stdin after ``R``.  Prints one JSON line of results.
* ``rawflood CONNINFO SCHEMA WORKER N_TICKETS SOURCE`` - the baseline of ``flood``:
  the same worker's rows, as the store wrote them into schema ``SOURCE``, inserted
  with plain psycopg into ``SCHEMA``'s events table, one transaction per batch
  (the same batches), with no lock and no chain work.  Prints one JSON line.
* ``restart CONNINFO SCHEMA WORKER N_TICKETS`` - like ``flood``, while the
  server is stopped hard and started again: an append that raises
  ``StoreUnavailable`` is sent again (same store object, which reconnects on its
  next call) after a short pause, until it is acknowledged.  Prints ``D i a|r``
  for each acknowledged batch, then one JSON line of results.

Any exception other than the store's expected typed ones is recorded in the
JSON (``other``), never swallowed silently; a raw psycopg exception reaching
the caller is counted apart (``raw_psycopg``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import histories
import psycopg

from fireflow.events import Event
from fireflow.store.errors import ConcurrencyConflict, StoreBusy
from fireflow.store.postgres import PostgresStore, StoreUnavailable
from fireflow.ticket import Command, decide, fold


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def kill_mode(conninfo: str, schema: str, n_tickets: int) -> int:
    store = PostgresStore(conninfo, schema=schema)
    plan = list(histories.shapes(n_tickets))
    stored = store.count()
    done = 0  # batches fully stored, in schedule order
    total = 0
    while done < len(plan) and total + plan[done][2] - plan[done][1] <= stored:
        total += plan[done][2] - plan[done][1]
        done += 1
    if total != stored:
        say(f"PARTIAL {stored} {total}")
        return 3
    say("R")
    if done:  # the batch stored last, sent again after the crash: stored once
        tid, v, events = histories.batch(*plan[done - 1])
        if not store.append(tid, events, v).replayed:
            say(f"NOT-REPLAYED {done - 1}")
            return 3
    for i in range(done, len(plan)):
        tid, v, events = histories.batch(*plan[i])
        say(f"B {i}")
        r = store.append(tid, events, v)
        say(f"D {i} {'r' if r.replayed else 'a'}")
    say("F")
    return 0


STEPS = {
    "rectifying": ("rectify", "property", {}),
    "rectified": ("apply_reinspection", "property", {}),
    "reinspection_requested": (
        "recheck_fail",
        "town",
        {"participants": [{"agency": "housing"}, {"agency": "fire"}], "reason": "仍有电动车"},
    ),
}


def race_mode(conninfo: str, schema: str, worker: int, wins_wanted: int) -> int:
    store = PostgresStore(conninfo, schema=schema, create=False)
    plan = histories.PLAN
    base = datetime(2022, 3, 21, 10, tzinfo=histories.SH)
    out = {"worker": worker, "wins": [], "conflicts": 0, "store_busy": 0, "raw_psycopg": 0}
    other: list[str] = []
    say("R")
    sys.stdin.readline()
    attempt = 0
    while len(out["wins"]) < wins_wanted:
        attempt += 1
        try:
            state = fold(store.read("RACE"), "RACE")
            kind, agency, fields = STEPS[state.state]
            cmd = Command.model_validate(
                {
                    "kind": kind,
                    "ticket_id": "RACE",
                    "at": base + timedelta(minutes=state.version),
                    "actor": {"agency": agency},
                    "command_id": f"w{worker}-{attempt}",
                    **fields,
                }
            )
            events = decide(state, cmd, plan)
            r = store.append("RACE", events, state.version)
            out["wins"].append([r.version, events[-1].event_id])
        except ConcurrencyConflict:
            out["conflicts"] += 1
        except StoreBusy:
            out["store_busy"] += 1
        except psycopg.Error as exc:
            out["raw_psycopg"] += 1
            other.append(repr(exc))
        except Exception as exc:
            other.append(repr(exc))
            break
    out["other"] = other
    say(json.dumps(out))
    return 0


def own_batches(worker: int, n_tickets: int) -> Iterator[tuple[str, int, list[Event]]]:
    """This worker's tickets' batches (1-4 events each), four tickets interleaved."""
    t = histories.templates()
    for g in range(0, n_tickets, 4):
        lists = []
        for k in range(g, min(g + 4, n_tickets)):
            h = histories.restamp(t[k % len(t)], f"W{worker:02d}-{k:05d}")
            lists.append((h, histories.cuts(k, len(h))))
        for i in range(max(len(c) for _, c in lists)):
            for h, c in lists:
                if i < len(c):
                    lo, hi = c[i]
                    yield h[0].ticket_id, lo, h[lo:hi]


def flood_mode(conninfo: str, schema: str, worker: int, n_tickets: int) -> int:
    store = PostgresStore(conninfo, schema=schema, create=False)
    batches = list(own_batches(worker, n_tickets))
    out = {"worker": worker, "batches": 0, "events": 0, "replayed": 0, "other": []}
    say("R")
    sys.stdin.readline()
    t0 = time.monotonic()
    for tid, v, events in batches:
        try:
            r = store.append(tid, events, v)
        except Exception as exc:
            out["other"].append(repr(exc))
            continue
        out["batches"] += 1
        out["events"] += len(events)
        out["replayed"] += r.replayed
    out["start"] = t0
    out["end"] = time.monotonic()
    say(json.dumps(out))
    return 0


def rawflood_mode(conninfo: str, schema: str, worker: int, n_tickets: int, source: str) -> int:
    from psycopg import sql

    conn = psycopg.connect(conninfo, autocommit=True)
    columns = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"
    rows = conn.execute(
        sql.SQL("SELECT " + columns + " FROM {}.events WHERE ticket_id LIKE %s").format(
            sql.Identifier(source)
        ),
        (f"W{worker:02d}-%",),
    ).fetchall()
    by_id = {r[3]: r for r in rows}
    batches = [
        [by_id[e.event_id] for e in events] for _, _, events in own_batches(worker, n_tickets)
    ]
    insert = sql.SQL("INSERT INTO {}.events (" + columns + ") VALUES (%s, %s, %s, %s, %s, %s, %s)")
    insert = insert.format(sql.Identifier(schema))
    out = {"worker": worker, "batches": 0, "events": 0, "other": []}
    say("R")
    sys.stdin.readline()
    t0 = time.monotonic()
    with conn.cursor() as cur:
        for b in batches:
            with conn.transaction():
                cur.executemany(insert, b)
            out["batches"] += 1
            out["events"] += len(b)
    out["start"] = t0
    out["end"] = time.monotonic()
    conn.close()
    say(json.dumps(out))
    return 0


def restart_mode(conninfo: str, schema: str, worker: int, n_tickets: int) -> int:
    store = PostgresStore(conninfo, schema=schema, create=False, connect_timeout=2)
    batches = list(own_batches(worker, n_tickets))
    out = {
        "worker": worker, "batches": len(batches), "events": 0, "unavailable": 0,
        "in_doubt": 0, "in_doubt_committed": 0, "raw_psycopg": 0, "other": [],
    }  # fmt: skip
    say("R")
    sys.stdin.readline()
    for i, (tid, v, events) in enumerate(batches):
        failed = False
        while True:
            try:
                r = store.append(tid, events, v)
            except StoreUnavailable:
                out["unavailable"] += 1
                failed = True
                time.sleep(0.05)
                continue
            except psycopg.Error as exc:
                out["raw_psycopg"] += 1
                out["other"].append(repr(exc))
                time.sleep(0.05)
                continue
            except Exception as exc:
                out["other"].append(repr(exc))
                break
            out["events"] += len(events)
            if failed:  # the append raised, then was sent again: did the first one commit?
                out["in_doubt"] += 1
                out["in_doubt_committed"] += r.replayed
            elif r.replayed:
                out["other"].append(f"batch {i} replayed without a failure before it")
            say(f"D {i} {'r' if r.replayed else 'a'}")
            break
    out["reconnects"] = store.reconnects
    say(json.dumps(out))
    return 0


def main(argv: list[str]) -> int:
    mode, conninfo, schema, *rest = argv
    if mode == "kill":
        return kill_mode(conninfo, schema, int(rest[0]))
    if mode == "race":
        return race_mode(conninfo, schema, int(rest[0]), int(rest[1]))
    if mode == "flood":
        return flood_mode(conninfo, schema, int(rest[0]), int(rest[1]))
    if mode == "rawflood":
        return rawflood_mode(conninfo, schema, int(rest[0]), int(rest[1]), rest[2])
    if mode == "restart":
        return restart_mode(conninfo, schema, int(rest[0]), int(rest[1]))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
