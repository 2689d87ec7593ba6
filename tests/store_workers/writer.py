"""A writer process for the store's crash and concurrency tests.

Run as ``python writer.py MODE DB ...``; it talks to the test over its
standard streams, one line at a time, flushed.

* ``kill DB N_TICKETS`` - append the batches of ``histories.schedule(N_TICKETS)``
  until killed.  It resumes after the batches already stored (a previous run
  was killed), first sending the last stored batch again, which must come back
  as replayed.  Prints ``R`` when ready, ``B i`` before batch ``i`` and
  ``D i a|r`` after it (appended or replayed).
* ``race DB WORKER WINS`` - with three other writers, append events to one
  ticket (``RACE``) until this writer has won ``WINS`` appends: read, fold,
  decide the next step with the engine, append with the folded version; on
  ``ConcurrencyConflict`` read again.  Waits for a line on stdin after ``R``.
  Prints one JSON line of results.
* ``dup DB WORKER N_TICKETS`` - send every batch of the schedule, as another
  writer does the same at the same time.  Waits for a line on stdin after
  ``R``.  Prints one JSON line of results.

Any exception other than the store's typed ones is counted in the JSON (raw
``sqlite3`` errors separately), never swallowed silently.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import datetime, timedelta

import histories

from fireflow.store.errors import ConcurrencyConflict, StoreBusy
from fireflow.store.sqlite import SQLiteStore
from fireflow.ticket import Command, decide, fold


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def kill_mode(db: str, n_tickets: int) -> int:
    store = SQLiteStore(db, retry_seed=1)
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


def race_mode(db: str, worker: int, wins_wanted: int) -> int:
    store = SQLiteStore(
        db, busy_timeout_ms=1, max_attempts=400, backoff_base=0.001, backoff_cap=0.02,
        retry_seed=worker,
    )  # fmt: skip
    plan = histories.PLAN
    base = datetime(2022, 3, 21, 10, tzinfo=histories.SH)
    out = {"worker": worker, "wins": [], "conflicts": 0, "store_busy": 0, "raw_sqlite": 0}
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
        except sqlite3.Error as exc:
            out["raw_sqlite"] += 1
            other.append(repr(exc))
        except Exception as exc:
            other.append(repr(exc))
            break
    out["busy_retries"] = store.busy_retries
    out["other"] = other
    say(json.dumps(out))
    return 0


def dup_mode(db: str, worker: int, n_tickets: int) -> int:
    store = SQLiteStore(db, busy_timeout_ms=5, max_attempts=400, retry_seed=worker)
    out = {"worker": worker, "appended": 0, "replayed": 0, "events_appended": 0, "other": []}
    say("R")
    sys.stdin.readline()
    for tid, v, batch in histories.schedule(n_tickets):
        try:
            r = store.append(tid, batch, v)
        except Exception as exc:
            out["other"].append(repr(exc))
            continue
        if r.replayed:
            out["replayed"] += 1
        else:
            out["appended"] += 1
            out["events_appended"] += len(batch)
    out["busy_retries"] = store.busy_retries
    say(json.dumps(out))
    return 0


def main(argv: list[str]) -> int:
    mode, db, *rest = argv
    if mode == "kill":
        return kill_mode(db, int(rest[0]))
    if mode == "race":
        return race_mode(db, int(rest[0]), int(rest[1]))
    if mode == "dup":
        return dup_mode(db, int(rest[0]), int(rest[1]))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
