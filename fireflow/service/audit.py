"""The request log (审计日志): every request with its principal, append-only, hash-chained.

Why an SQLite table and not a JSON-lines file: requests arrive on many threads at
once, and :mod:`fireflow.output` writes files whole (atomic replace), it has no
appending writer; an SQLite transaction appends one row atomically, survives a
crash with the rows before it intact, and lets the log be read back in order.
Why a separate file (``audit.sqlite``, beside the token file) and not the event
store: the audit log records reads and refusals too, must never be confused with
the ticket history, and must work the same whatever the store is (SQLite or
PostgreSQL).

Append-only, twice over: triggers refuse ``UPDATE`` and ``DELETE`` on the table,
and every row carries ``hash = sha256(previous hash + canonical JSON of the row)``,
so a row changed or removed behind the triggers' back (by editing the file) breaks
the chain from there on: :meth:`AuditLog.verify` finds it.

>>> from datetime import datetime, timezone
>>> log = AuditLog(":memory:")
>>> at = datetime(2022, 3, 21, tzinfo=timezone.utc)
>>> _ = log.record(at=at, subject="token:ab", agency="town", person="李", method="GET",
...                path="/tickets/CL-1", status=200)
>>> log.verify(), [r["path"] for r in log.rows()]
([], ['/tickets/CL-1'])
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime
from typing import Any

from fireflow.errors import NaiveDatetime

__all__ = ["GENESIS", "AuditLog"]

#: The hash before the first row.
GENESIS = "0" * 64
_COLUMNS = ("seq", "at", "subject", "agency", "person", "method", "path", "status", "detail")
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audit (
        seq     integer PRIMARY KEY,
        at      text NOT NULL,
        subject text NOT NULL,
        agency  text NOT NULL,
        person  text NOT NULL,
        method  text NOT NULL,
        path    text NOT NULL,
        status  integer NOT NULL,
        detail  text NOT NULL,
        prev    text NOT NULL,
        hash    text NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        seq        integer PRIMARY KEY,
        at         text NOT NULL,
        url        text NOT NULL,
        position   integer NOT NULL,
        event_id   text NOT NULL,
        attempts   integer NOT NULL,
        last_error text NOT NULL,
        body       text NOT NULL
    )""",
)


def _link(prev: str, row: dict[str, Any]) -> str:
    data = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(prev.encode("ascii") + data.encode("utf-8")).hexdigest()


def _aware(at: datetime) -> str:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    return at.isoformat()


class AuditLog:
    """An append-only, hash-chained log of requests in an SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._conn.close()

    def record(
        self,
        *,
        at: datetime,
        subject: str,
        agency: str,
        person: str,
        method: str,
        path: str,
        status: int,
        detail: str = "",
    ) -> int:
        """Append one request; return its sequence number."""
        row: dict[str, Any] = {
            "at": _aware(at),
            "subject": subject,
            "agency": agency,
            "person": person,
            "method": method,
            "path": path[:2000],
            "status": int(status),
            "detail": detail[:2000],
        }
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                last = self._conn.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
                row["seq"] = seq
                digest = _link(prev, row)
                self._conn.execute(
                    "INSERT INTO audit (seq, at, subject, agency, person, method, path, status, "
                    "detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*(row[c] for c in _COLUMNS), prev, digest),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return seq

    def rows(self, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """The rows after sequence number ``after``, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT seq, at, subject, agency, person, method, path, status, detail, prev, hash "
                "FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def verify(self) -> list[str]:
        """Every break of the chain (empty when the log is whole)."""
        problems: list[str] = []
        prev = GENESIS
        expected_seq = 1
        with self._lock:
            cur = self._conn.execute(
                "SELECT seq, at, subject, agency, person, method, path, status, detail, prev, hash "
                "FROM audit ORDER BY seq"
            )
            for r in cur:
                row = dict(zip((*_COLUMNS, "prev", "hash"), r, strict=True))
                if row["seq"] != expected_seq:
                    problems.append(f"seq {row['seq']}: expected {expected_seq} (a row is missing)")
                if row["prev"] != prev:
                    problems.append(f"seq {row['seq']}: previous hash does not match")
                body = {c: row[c] for c in _COLUMNS}
                if _link(str(row["prev"]), body) != row["hash"]:
                    problems.append(f"seq {row['seq']}: hash does not match its content")
                prev = str(row["hash"])
                expected_seq = int(row["seq"]) + 1
        return problems

    def dead_letter(
        self,
        *,
        at: datetime,
        url: str,
        position: int,
        event_id: str,
        attempts: int,
        last_error: str,
        body: str,
    ) -> None:
        """Record a webhook delivery that failed every attempt."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO dead_letters (at, url, position, event_id, attempts, last_error, "
                "body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (_aware(at), url, position, event_id, attempts, last_error[:2000], body),
            )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest first."""
        with self._lock:
            cur = self._conn.execute(
                "SELECT seq, at, url, position, event_id, attempts, last_error, body "
                "FROM dead_letters ORDER BY seq"
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
