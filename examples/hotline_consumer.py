"""Forward new escalations to the 12345 hotline (here: a JSON-lines file standing in for it).

A consumer of a fireflow store (:class:`fireflow.store.Consumer`): it subscribes
after its last committed position, and for every ``escalate`` event (a ticket
handed to the enforcing agencies, R-ESC-REFUSAL / R-ESC-OVERDUE) writes one line
to ``--out``, then commits the event.  Killed at any moment (even with -9) and
started again, it forwards every escalation exactly once:

* delivery is at least once: an event forwarded but not yet committed when the
  process died comes again;
* forwarding is idempotent by event id: at start the consumer reads the ids
  already in ``--out`` and skips them (a last line cut short by the crash is
  removed first: it was never committed).

Run it against an SQLite file or a PostgreSQL URL (or ``FIREFLOW_DATABASE_URL``)::

    python examples/hotline_consumer.py --store changle.db --out hotline.jsonl \\
        --checkpoint hotline.checkpoint.json --idle-timeout 5

Without ``--idle-timeout`` it runs until interrupted (Ctrl-C stops it cleanly).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from fireflow.store import Consumer, FileCheckpoint, SQLiteStore
from fireflow.store.base import EventStore, StoredEvent

NAME = "hotline-12345"


def open_store(url: str | None) -> EventStore:
    """An SQLite path or a ``postgresql://`` URL (``FIREFLOW_DATABASE_URL`` when none)."""
    url = url or os.environ.get("FIREFLOW_DATABASE_URL")
    if not url:
        raise SystemExit("--store or FIREFLOW_DATABASE_URL is needed")
    if url.startswith(("postgresql://", "postgres://")) or "dbname=" in url:
        from fireflow.store import PostgresStore  # noqa: PLC0415 (optional driver)

        schema = os.environ.get("FIREFLOW_SCHEMA", "fireflow")
        return PostgresStore(url, schema=schema, create=False)  # type: ignore[no-any-return]
    return SQLiteStore(url, create=False)


def forwarded_ids(out: Path) -> set[str]:
    """The event ids already in the hotline file; a torn last line is cut off first."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    if data and not data.endswith(b"\n"):  # the process died inside a write: never committed
        keep = data.rfind(b"\n") + 1
        with out.open("r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        data = data[:keep]
    return {json.loads(line)["event_id"] for line in data.splitlines() if line.strip()}


def hotline_line(se: StoredEvent) -> bytes:
    """One escalation as the hotline receives it (a JSON object on one line)."""
    e = se.event
    record = {
        "event_id": e.event_id,
        "ticket_id": e.ticket_id,
        "position": se.position,
        "at": e.at.isoformat(),
        "by": e.actor.agency,
        "targets": list(e.payload.get("targets", [])),
        "rules": list(e.rules),
    }
    return (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="SQLite file or postgresql:// URL")
    parser.add_argument("--out", type=Path, required=True, help="the hotline's JSON-lines file")
    parser.add_argument("--checkpoint", type=Path, required=True, help="the consumer's checkpoint")
    parser.add_argument(
        "--idle-timeout", type=float, default=None, help="stop after S idle seconds"
    )
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds between forward and commit"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = open_store(args.store)
    consumer = Consumer(store, NAME, FileCheckpoint(args.checkpoint))
    seen = forwarded_ids(args.out)
    forwarded = 0
    fd = os.open(args.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        events = consumer.events(
            stop=stop, idle_timeout=args.idle_timeout, poll_interval=args.poll_interval
        )
        for se in events:
            if se.event.kind == "escalate" and se.event.event_id not in seen:
                os.write(fd, hotline_line(se))
                os.fsync(fd)
                seen.add(se.event.event_id)
                forwarded += 1
                if args.delay:
                    time.sleep(args.delay)  # widen the window between forward and commit
            consumer.commit(se)
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
        close = getattr(store, "close", None)
        if close is not None:
            close()
    print(f"forwarded {forwarded} escalation(s); last committed position {consumer.after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
