"""The embedded default event store: one SQLite file.

* **Durable.** The file runs in WAL mode with ``PRAGMA synchronous=FULL``: an
  append that returned is in the file and, as far as the disk honours
  ``fsync``, survives a crash of the process *and* a power loss.  A batch is
  one transaction: all of it is there, or none of it.
* **Safe with many writers.** Each append takes the write lock up front
  (``BEGIN IMMEDIATE``), reads the ticket's version and compares it with the
  expected one under that lock, so of two writers that read the same version
  exactly one wins and the other gets
  :class:`~fireflow.store.errors.ConcurrencyConflict`.
  An ``append`` (one batch) is five statements: ``BEGIN IMMEDIATE``, one
  query for both heads and the batch's ids in the partial index (below), the rows in one
  ``INSERT``, the head row moved (``fireflow_head``: next position and global
  hash, which :func:`~fireflow.store.chain.verify` compares with the rows),
  ``COMMIT``.  When a ``UNIQUE`` key refuses the batch, that transaction is
  rolled back whole and the batch is settled in a fresh one, by the path
  ``append_many`` takes for several batches (a savepoint per batch).
* **Event ids without a second index on every row** (schema 2,
  ``fireflow.store/2``).  An event whose id is its *home id* (its ticket id,
  ``/``, its ``seq``: what the engine writes) is found by the ``(ticket_id,
  seq)`` key the table has anyway; only the other ids are in a partial
  ``UNIQUE`` index (``events_other_ids``).  Before a batch is written the
  store looks for its ids in that index and, for an id of the batch that is
  the home id of another place, at that place: an id stored anywhere is still
  :class:`~fireflow.store.errors.DuplicateEventId`, a re-sent batch is still
  found (at its own places) and returned with ``replayed=True``.  A file made
  with schema 1 (``fireflow.store/1``, a ``UNIQUE`` index on every event id)
  opens, reads and appends as it is: its index is kept, nothing is rewritten.
* **Busy is handled.** SQLite waits up to ``busy_timeout_ms`` for a lock (set
  explicitly with ``PRAGMA busy_timeout``); when that is not enough, the store
  retries with bounded exponential backoff and jitter drawn from its own
  ``random.Random(retry_seed)``, and after ``max_attempts`` raises
  :class:`~fireflow.store.errors.StoreBusy`.  A raw ``sqlite3.OperationalError``
  ("database is locked") never reaches the caller; other SQLite errors arrive
  as :class:`~fireflow.store.errors.StoreError`.

>>> import tempfile, pathlib
>>> from datetime import datetime, timezone
>>> from fireflow.events import Actor, Event
>>> tmp = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(tmp.name) / "changle.db"
>>> at = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)
>>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify", at=at,
...           actor=Actor("property"))
>>> with SQLiteStore(path) as store:
...     store.append("T1", [e], expected_version=0).positions
(0,)
>>> with SQLiteStore(path, create=False) as store:
...     store.read("T1") == [e], store.version("T1")
(True, 1)
>>> with SQLiteStore(path, readonly=True) as store:  # a reader: changes no byte, creates no file
...     store.count(), sorted(p.name for p in path.parent.iterdir())
(1, ['changle.db'])
>>> tmp.cleanup()

Read-only opening
-----------------

``SQLiteStore(path, readonly=True)`` is for everything that only reads a store
(``fireflow store verify|tickets|replay|checkpoint``, ``fireflow dossier``,
``fireflow forms``).  It never creates the file, never writes a byte of it,
and never creates a ``-wal`` or ``-shm`` file beside it:

* When a ``-wal`` file with content is there (a writer has the store open, or
  stopped before it checkpointed), the committed history is partly in that log,
  so the store is opened with SQLite's URI ``mode=ro``: SQLite reads the log
  through its shared-memory index (``-shm``) as every reader does, taking its
  read lock there; it never writes the store or its log.  Without the ``-shm``
  file, or where SQLite cannot use it (a read-only medium), the log cannot be
  read without recovering it first, which is a write: the store raises
  :class:`~fireflow.store.errors.StoreError` saying so.
* Otherwise (no ``-wal`` file, or an empty one: the store was closed cleanly,
  or a writer has just checkpointed its log), everything committed is in the
  main file, which is opened with
  ``mode=ro&immutable=1``.  ``mode=ro`` alone would create ``-wal`` and ``-shm``
  files for a store in WAL mode (and fail on a read-only folder or medium);
  ``immutable=1`` tells SQLite not to look for them.  Because an immutable
  file is read without locks, the store notes the file's identity, size and
  modification time when it opens it and checks them after every read: a
  writer that changed the file meanwhile makes the read fail with
  :class:`~fireflow.store.errors.StoreError` ("read again"), never return a
  mix of old and new pages.

A read-only store refuses ``append`` with :class:`~fireflow.store.errors.StoreError`.
An empty file, a foreign SQLite database or a file that is not SQLite at all
raise :class:`~fireflow.store.errors.StoreError` naming the file; a truncated
store raises it when the missing pages are read (``verify`` reports it).
"""

from __future__ import annotations

import functools
import os
import pathlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from fireflow.errors import InvalidArgument
from fireflow.events import Event
from fireflow.store.base import (
    AppendResult,
    Batch,
    Prepared,
    StoredEvent,
    StoredRow,
    check_id,
    check_position,
    prepare_batch,
    settle,
    stored_event,
)
from fireflow.store.chain import GENESIS, appended, decode_event, extend_rows
from fireflow.store.errors import CorruptRecord, StoreBusy, StoreError, StoreNotFound, redact
from fireflow.store.subscription import PollWaiter, Subscribable, Waiter, check_waiter_args

__all__ = ["SCHEMA", "SCHEMA_1", "SQLiteStore"]

#: The schema id kept in the file's ``fireflow_meta`` table, for a new file.
SCHEMA = "fireflow.store/2"
#: The schema of files made before it, with a ``UNIQUE`` index on every event id; they
#: open, read and append as they are (the index is kept, nothing is rewritten).
SCHEMA_1 = "fireflow.store/1"

_T = TypeVar("_T")
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_PAGE = 2000
_IN_CHUNK = 500
_MAX_SEQ = 2**63 - 1

#: A row whose event id is not its home id (the condition of the partial index; queries
#: that name it word for word can use that index).
_OTHER_ID = "event_id <> ticket_id || '/' || seq"

_CREATE = (
    """CREATE TABLE IF NOT EXISTS fireflow_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        position    INTEGER PRIMARY KEY CHECK (position >= 0),
        ticket_id   TEXT NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        event_id    TEXT NOT NULL,
        data        BLOB NOT NULL,
        ticket_hash TEXT NOT NULL,
        global_hash TEXT NOT NULL,
        UNIQUE (ticket_id, seq)
    )""",
    # Only the ids that are not their event's "home" id (ticket id, '/', seq): an event
    # whose id is its home id is found by the (ticket_id, seq) key already.
    f"""CREATE UNIQUE INDEX IF NOT EXISTS events_other_ids ON events (event_id)
        WHERE {_OTHER_ID}""",
)
#: The head row: the next position and the global chain's hash, moved by every append in
#: its transaction; :func:`~fireflow.store.chain.verify` compares it with the rows.  A file
#: of an older fireflow gets it (from its last row) when a writer opens it.
_CREATE_HEAD = """CREATE TABLE IF NOT EXISTS fireflow_head (
        one         INTEGER PRIMARY KEY CHECK (one = 1),
        next        INTEGER NOT NULL CHECK (next >= 0),
        global_hash TEXT NOT NULL
    )"""
_INIT_HEAD = (
    "INSERT OR IGNORE INTO fireflow_head (one, next, global_hash) SELECT 1, "
    "coalesce((SELECT position + 1 FROM events ORDER BY position DESC LIMIT 1), 0), "
    "coalesce((SELECT global_hash FROM events ORDER BY position DESC LIMIT 1), ?)"
)
_MOVE_HEAD = "UPDATE fireflow_head SET next = ?, global_hash = ?"
_ROW_COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"
#: Rows per ``INSERT`` statement: 448 parameters, under every SQLite's limit (999 before 3.32).
_INSERT_ROWS = 64


@functools.cache
def _insert_statement(n: int) -> str:
    """``INSERT`` of ``n`` rows in one statement (cheaper than ``n`` runs of a one-row one)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * n)
    return f"INSERT INTO events ({_ROW_COLUMNS}) VALUES {values}"  # noqa: S608 (only placeholders)


#: Both heads in one query: ``(0, last position, global head)`` when the file has
#: events, then ``(1, the ticket's seq, its head)`` when the ticket has some.
_HEADS = (
    "SELECT 0, position, global_hash FROM "
    "(SELECT position, global_hash FROM events ORDER BY position DESC LIMIT 1) "
    "UNION ALL SELECT 1, seq, ticket_hash FROM "
    "(SELECT seq, ticket_hash FROM events WHERE ticket_id = ? ORDER BY seq DESC LIMIT 1)"
)


def _home(event_id: str) -> tuple[str, int] | None:
    """The (ticket id, seq) whose home id ``event_id`` is (``T1/3``: ``("T1", 3)``), if any.

    The home id of an event is its ticket id, ``/`` and its ``seq`` in decimal, as
    the engine writes ids; at most one (ticket, seq) has a given home id.
    """
    ticket_id, sep, tail = event_id.rpartition("/")
    if not (sep and ticket_id and tail.isascii() and tail.isdigit()) or tail[0] == "0":
        return None
    seq = int(tail)
    return (ticket_id, seq) if seq <= _MAX_SEQ else None


@functools.cache
def _heads_and_ids(n: int) -> str:
    """:data:`_HEADS` and, as ``(2, position, event_id)``, the rows of the partial index
    (ids that are not home ids) under ``n`` ids: one statement for both."""
    marks = ", ".join(["?"] * n)
    return (
        f"{_HEADS} UNION ALL SELECT 2, position, event_id FROM events "  # noqa: S608 (only placeholders and constants)
        f"WHERE event_id IN ({marks}) AND {_OTHER_ID}"
    )


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _file_identity(path: str) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _size_or_none(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def _connect_readonly(
    path: str, timeout: float
) -> tuple[sqlite3.Connection, tuple[int, int, int, int] | None]:
    """Open ``path`` without writing or creating anything (see the module documentation).

    Returns the connection and, for an ``immutable`` opening, the file's identity
    to check after each read (``None`` when SQLite's own locking protects the reads).
    """
    if os.path.isdir(path):
        raise StoreError(f"{path}: a folder, not an event store (是文件夹，不是事件库)")
    uri = pathlib.Path(os.path.abspath(path)).as_uri() + "?mode=ro"  # ?, # and % quoted
    wal = _size_or_none(path + "-wal")
    if wal:  # committed history may be in the log: read it the way SQLite readers do
        if not os.path.exists(path + "-shm"):
            raise StoreError(
                f"{path}: its write-ahead log ({path}-wal, {wal} bytes) has no -shm index; "
                "reading it needs a recovery, which writes: open the store read-write once "
                "(预写日志需恢复)"
            )
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(
                f"{path}: its write-ahead log ({wal} bytes) cannot be read without writing "
                f"({exc}); open the store read-write once (预写日志无法只读读取)"
            ) from None
        return conn, None
    identity = _file_identity(path)
    try:
        conn = sqlite3.connect(
            uri + "&immutable=1",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open: {exc}") from exc
    return conn, identity


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else repr(value)


def _raw_row(r: tuple[Any, ...]) -> StoredRow:
    """A row read with every text column cast to BLOB: nothing in the file can make it fail."""
    position, ticket_id, seq, event_id, data, ticket_hash, global_hash = r
    return StoredRow(
        position=position,
        ticket_id=_text(ticket_id),
        seq=seq if isinstance(seq, int) else -1,
        event_id=_text(event_id),
        data=data if isinstance(data, bytes) else b"",
        ticket_hash=_text(ticket_hash),
        global_hash=_text(global_hash),
    )


class SQLiteStore(Subscribable):
    """An :class:`~fireflow.store.base.EventStore` in one SQLite file (WAL, ``synchronous=FULL``).

    ``path`` is the file; with ``create=False`` a missing file raises
    :class:`~fireflow.store.errors.StoreNotFound` instead of creating an empty
    store.  ``readonly=True`` opens an existing store for reading only: it
    implies ``create=False``, never changes a byte of the file nor creates one
    (see "Read-only opening" in the module documentation), and ``append``
    raises :class:`~fireflow.store.errors.StoreError`.
    ``busy_timeout_ms`` is how long SQLite itself waits for a lock;
    after that the store sleeps ``backoff_base * 2**(n-1)`` seconds (at most
    ``backoff_cap``; half of it fixed, half drawn from ``random.Random(retry_seed)``)
    and tries again, ``max_attempts`` times in all.  Processes sharing one file
    should pass different ``retry_seed`` values so their retries spread out.
    ``sleep`` can be replaced in tests.  ``busy_retries`` counts the retries made.
    """

    #: One batch (the common ``append``) is the whole transaction, without a
    #: savepoint; false sends it through the general savepoint path (the tests
    #: hold the two to the same results).
    _single_fast = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        busy_timeout_ms: int = 5000,
        max_attempts: int = 8,
        backoff_base: float = 0.01,
        backoff_cap: float = 1.0,
        retry_seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise InvalidArgument(
                "path", f"expected a file path, got {type(path).__name__}"
            ) from None
        if not isinstance(self.path, str) or self.path in ("", ":memory:"):
            raise InvalidArgument(
                "path", "an SQLite store needs a file path (MemoryStore for none)"
            )
        for flag, flag_value in (("create", create), ("readonly", readonly)):
            if not isinstance(flag_value, bool):
                raise InvalidArgument(flag, f"expected true or false, got {flag_value!r}")
        self.readonly = readonly
        for name, value, low in (
            ("busy_timeout_ms", busy_timeout_ms, 0),
            ("max_attempts", max_attempts, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidArgument(name, f"expected an integer >= {low}, got {value!r}")
        for name, fvalue in (("backoff_base", backoff_base), ("backoff_cap", backoff_cap)):
            if isinstance(fvalue, bool) or not isinstance(fvalue, int | float) or fvalue < 0:
                raise InvalidArgument(name, f"expected a number of seconds >= 0, got {fvalue!r}")
        self.busy_timeout_ms = busy_timeout_ms
        self.max_attempts = max_attempts
        self.backoff_base = float(backoff_base)
        self.backoff_cap = float(backoff_cap)
        self.busy_retries = 0
        # jitter only, never security: the store's own seeded generator (no global random)
        self._rng = random.Random(retry_seed)  # noqa: S311
        self._sleep = sleep
        self._lock = threading.RLock()
        if (readonly or not create) and not os.path.exists(self.path):
            raise StoreNotFound(self.path)
        #: Whether the file keeps a head row (files of an older fireflow, read-only, do not).
        self._has_head = False
        #: The file's schema id (:data:`SCHEMA`, or :data:`SCHEMA_1` for an older file).
        self.schema = SCHEMA
        self._home_ids = True
        #: The file's identity when opened ``immutable``; checked after every read.
        self._identity: tuple[int, int, int, int] | None = None
        if readonly:
            self._conn, self._identity = _connect_readonly(self.path, busy_timeout_ms / 1000)
        else:
            try:
                self._conn = sqlite3.connect(
                    self.path,
                    timeout=busy_timeout_ms / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            if not create and not readonly:  # refused before WAL is switched on: no byte changes
                self._run(lambda: self._setup(False))
            elif not readonly:  # a foreign database too: refused before anything is switched on
                self._run(self._refuse_foreign)
            self._run(self._configure)
            self._run(lambda: self._setup(create and not readonly))
            self._has_head = self._run(self._head_table)
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        path = redact(self.path)  # a connection string given as a path keeps its password
        return f"SQLiteStore({path!r}{', readonly=True' if self.readonly else ''})"

    def new_waiter(self, stop: threading.Event, interval: float) -> Waiter:
        """Subscriptions poll the file every ``interval`` seconds.

        A store opened read-only as an immutable file cannot see new appends: it
        raises :class:`~fireflow.store.errors.StoreError`.
        """
        check_waiter_args(stop, interval)
        if self._identity is not None:
            raise StoreError(
                f"{self.path}: opened read-only as an immutable file, it cannot see new "
                "appends; open it read-write (nothing is appended) or while a writer has it "
                "open (只读不可变打开，无法订阅)"
            )
        return PollWaiter(stop, interval)

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the file (the store cannot be used afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _configure(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        if self.readonly:
            c.execute("PRAGMA query_only = ON")
            return
        mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot use write-ahead logging (journal_mode={mode})")
        c.execute("PRAGMA synchronous = FULL")

    def _setup(self, create: bool) -> None:
        c = self._conn
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "fireflow_meta" in names and "events" in names:
            self._check_schema()
            return
        if names & {"fireflow_meta", "events"} or not create:
            if not names and _size_or_none(self.path) == 0:
                raise StoreError(f"{self.path}: an empty file, not a fireflow event store (空文件)")
            raise StoreError(f"{self.path}: not a fireflow event store (不是 fireflow 事件库)")
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _CREATE:
                c.execute(stmt)
            c.execute(
                "INSERT OR IGNORE INTO fireflow_meta (key, value) VALUES ('schema', ?)", (SCHEMA,)
            )
            c.execute(_CREATE_HEAD)
            c.execute(_INIT_HEAD, (GENESIS,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        self._check_schema()

    def _head_table(self) -> bool:
        """Whether the file has its head row's table; a writer adds it to an older file."""
        c = self._conn
        found = c.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fireflow_head'"
        ).fetchone()
        if found or self.readonly:
            return found is not None
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(_CREATE_HEAD)
            c.execute(_INIT_HEAD, (GENESIS,))
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return True

    def _refuse_foreign(self) -> None:
        """Refuse a database with tables that are not a fireflow store's (nothing changed)."""
        names = {
            r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if names and not {"fireflow_meta", "events"} <= names:
            raise StoreError(f"{self.path}: not a fireflow event store (不是 fireflow 事件库)")

    def _check_schema(self) -> None:
        row = self._conn.execute("SELECT value FROM fireflow_meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] not in (SCHEMA, SCHEMA_1):
            found = row[0] if row else None
            raise StoreError(
                f"{self.path}: unsupported store schema {found!r} (expected {SCHEMA} or {SCHEMA_1})"
            )
        self.schema = str(row[0])
        #: Schema 2 indexes only the event ids that are not home ids (see :func:`_home`);
        #: schema 1 every event id.
        self._home_ids = self.schema == SCHEMA

    # ------------------------------------------------------------------ retry

    def _delay(self, attempt: int) -> float:
        span = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return float(span / 2 + self._rng.uniform(0, span / 2))

    def _run(self, op: Callable[[], _T]) -> _T:
        """Run ``op`` under the connection lock; retry while the file is busy."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._lock:
                    result = op()
                    if self._identity is not None:
                        self._check_unchanged()
                    return result
            except sqlite3.Error as exc:
                if not _is_busy(exc):
                    raise StoreError(f"{self.path}: {exc}") from exc
                if attempt >= self.max_attempts:
                    raise StoreBusy(self.path, attempts=attempt) from None
                self.busy_retries += 1
                self._sleep(self._delay(attempt))

    def _check_unchanged(self) -> None:
        """An ``immutable`` file must not have changed under a read (another process wrote)."""
        try:
            now = _file_identity(self.path)
        except OSError:
            now = None
        if now != self._identity:
            raise StoreError(
                f"{self.path}: the file changed while it was being read (another process "
                "wrote to it); read again (读取期间文件被修改，请重试)"
            )

    # ------------------------------------------------------------------ write

    def append(
        self, ticket_id: str, events: Sequence[Event], expected_version: int
    ) -> AppendResult:
        """Append one ticket's batch, all or nothing, if its version is ``expected_version``."""
        return self.append_many([(ticket_id, events, expected_version)])[0]

    def append_many(self, batches: Iterable[Batch]) -> list[AppendResult]:
        """Append several batches in one transaction: all of them, or none."""
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only, nothing is appended (只读打开)")
        prepared = [(t, prepare_batch(t, evs, v), v) for t, evs, v in batches]
        if not prepared:
            return []
        return self._run(lambda: self._write(prepared))

    def _write(self, prepared: list[tuple[str, list[Prepared], int]]) -> list[AppendResult]:
        if len(prepared) == 1 and self._single_fast:
            done = self._transaction(lambda: self._write_single(*prepared[0]))
            if done is not None:
                return [done]
            # The index refused the batch and its transaction was rolled back whole:
            # nothing of it is in the file.  Settle it in a fresh transaction by the
            # general path, which sees the file as it is now.
        written = self._transaction(lambda: self._write_locked(prepared))
        assert written is not None  # the general path always returns its results
        return written

    def _transaction(self, body: Callable[[], _T | None]) -> _T | None:
        """Run ``body`` in one write transaction: committed unless it returns ``None``."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            result = body()
            c.execute("ROLLBACK" if result is None else "COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        return result

    def _write_single(
        self, ticket_id: str, batch: list[Prepared], expected: int
    ) -> AppendResult | None:
        """One batch, the whole transaction (no savepoint); ``None`` when the index refused it.

        Both heads come from one query.  When the insert is refused, rows of the
        batch may already be in the transaction: the caller rolls it back whole.
        """
        c = self._conn
        position, g_head, version, head = 0, GENESIS, 0, GENESIS
        # schema 2: the partial index is asked for the batch's ids in the same query
        look = self._home_ids and len(batch) <= _IN_CHUNK
        query = _heads_and_ids(len(batch)) if look else _HEADS
        params = (ticket_id, *(e.event_id for e, _ in batch)) if look else (ticket_id,)
        found = False
        for which, number, digest in c.execute(query, params):
            if which == 1:
                version, head = number, digest
            elif which == 0:
                position, g_head = number + 1, digest
            else:
                found = True
        if version != expected:  # a stale version or a retried batch: nothing is written
            done = settle(ticket_id, batch, expected, version, self._stored(batch))
            assert done is not None  # off the expected version, settle returns or raises
            return done
        if self._home_ids and (
            found or not look or any(e.event_id != f"{ticket_id}/{e.seq}" for e, _ in batch)
        ):
            others = self._others(ticket_id, batch)
            if others:  # an id stored already, elsewhere: settle raises DuplicateEventId
                return settle(ticket_id, batch, expected, version, others)
        rows = extend_rows(
            ticket_id, batch, position=position, ticket_head=head, global_head=g_head
        )
        try:
            self._insert(rows)
        except sqlite3.IntegrityError:
            return None
        c.execute(_MOVE_HEAD, (rows[-1][0] + 1, rows[-1][6]))
        return appended(ticket_id, rows)

    def _write_locked(self, prepared: list[tuple[str, list[Prepared], int]]) -> list[AppendResult]:
        c = self._conn
        last = c.execute(
            "SELECT position, global_hash FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        position, g_head = (last[0] + 1, last[1]) if last else (0, GENESIS)
        results: list[AppendResult] = []
        moved = False
        for ticket_id, batch, expected in prepared:
            version, head = self._head_locked(ticket_id)
            rows = None
            others: dict[str, StoredRow] = {}
            if self._home_ids and version == expected:
                others = self._others(ticket_id, batch)
            if version == expected and not others:
                # A new batch on the expected version.  Whether one of its ids is
                # stored already is left to the UNIQUE index; if the insert is refused,
                # it is undone and the batch settled against what is stored.
                rows = extend_rows(
                    ticket_id, batch, position=position, ticket_head=head, global_head=g_head
                )
                c.execute("SAVEPOINT fireflow_batch")
                try:
                    self._insert(rows)
                except sqlite3.IntegrityError:
                    c.execute("ROLLBACK TO fireflow_batch")
                    rows = None
                c.execute("RELEASE fireflow_batch")
            if rows is None:  # a stale version or a stored id: the stored result or an error
                done = settle(ticket_id, batch, expected, version, others or self._stored(batch))
                if done is None:  # only on the expected version, where the index refused
                    raise StoreError(f"{self.path}: the file refused a batch that nothing explains")
                results.append(done)
                continue
            tail = rows[-1]
            position = tail[0] + 1
            g_head = tail[6]
            results.append(appended(ticket_id, rows))
            moved = True
        if moved:
            c.execute(_MOVE_HEAD, (position, g_head))
        return results

    def _insert(self, rows: list[tuple[int, str, int, str, bytes, str, str]]) -> None:
        """Insert ``rows`` (in the open transaction), up to ``_INSERT_ROWS`` per statement."""
        for i in range(0, len(rows), _INSERT_ROWS):
            chunk = rows[i : i + _INSERT_ROWS]
            self._conn.execute(_insert_statement(len(chunk)), [v for row in chunk for v in row])

    def _stored(self, batch: list[Prepared]) -> dict[str, StoredRow]:
        """The rows already stored under the batch's event ids (under the write lock)."""
        ids = [e.event_id for e, _ in batch]
        if not self._home_ids:  # schema 1: every id is in the index
            return self._by_id(ids, "")
        found = self._by_id(ids, f" AND {_OTHER_ID}")
        found.update(self._at_home(ids))
        return found

    def _others(self, ticket_id: str, batch: list[Prepared]) -> dict[str, StoredRow]:
        """Schema 2, the batch on the ticket's version: the rows stored under its ids.

        Its own (ticket, seq) places are empty, so a row with one of its ids is one
        whose id is not its home id (the partial index), or, for an id of the batch
        that is not its own home id, the row at that id's home.
        """
        ids = [e.event_id for e, _ in batch]
        found = self._by_id(ids, f" AND {_OTHER_ID}")
        away = [e.event_id for e, _ in batch if e.event_id != f"{ticket_id}/{e.seq}"]
        if away:
            found.update(self._at_home(away))
        return found

    def _by_id(self, ids: list[str], where: str) -> dict[str, StoredRow]:
        found: dict[str, StoredRow] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = ids[i : i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT {_ROW_COLUMNS} FROM events WHERE event_id IN ({marks}){where}"  # noqa: S608 (only placeholders and a constant are interpolated)
            for r in self._conn.execute(query, chunk):
                row = StoredRow(*r)
                found[row.event_id] = row
        return found

    def _at_home(self, ids: list[str]) -> dict[str, StoredRow]:
        """The rows stored under ``ids`` at their homes (found by the (ticket_id, seq) key)."""
        by_ticket: dict[str, dict[int, str]] = {}
        for event_id in ids:
            home = _home(event_id)
            if home is not None:
                by_ticket.setdefault(home[0], {})[home[1]] = event_id
        found: dict[str, StoredRow] = {}
        for ticket_id, seqs in by_ticket.items():
            numbers = list(seqs)
            for i in range(0, len(numbers), _IN_CHUNK):
                chunk = numbers[i : i + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = (
                    f"SELECT {_ROW_COLUMNS} FROM events WHERE ticket_id = ? AND seq IN ({marks})"  # noqa: S608 (only placeholders are interpolated)
                )
                for r in self._conn.execute(query, [ticket_id, *chunk]):
                    row = StoredRow(*r)
                    if seqs.get(row.seq) == row.event_id:
                        found[row.event_id] = row
        return found

    def _head_locked(self, ticket_id: str) -> tuple[int, str]:
        row = self._conn.execute(
            "SELECT seq, ticket_hash FROM events WHERE ticket_id = ? ORDER BY seq DESC LIMIT 1",
            (ticket_id,),
        ).fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    # ------------------------------------------------------------------- read
    def read(self, ticket_id: str) -> list[Event]:
        """One ticket's events in ``seq`` order (empty for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        rows = self._run(
            lambda: self._conn.execute(
                "SELECT position, seq, data FROM events WHERE ticket_id = ? ORDER BY seq",
                (ticket_id,),
            ).fetchall()
        )
        out: list[Event] = []
        for position, seq, data in rows:
            e = decode_event(data, position)
            if e.ticket_id != ticket_id or e.seq != seq:
                raise CorruptRecord(
                    position, "data", "the row's ticket or seq differs from its data"
                )
            out.append(e)
        return out

    def _page(self, query: str, start: int) -> list[Any]:
        return self._run(lambda: self._conn.execute(query, (start, _PAGE)).fetchall())

    def read_all(self, from_position: int = 0) -> Iterator[StoredEvent]:
        """Every event from ``from_position`` on, in the global order (read in pages)."""
        start = check_position(from_position)
        query = (
            "SELECT position, data, ticket_hash, global_hash FROM events "
            "WHERE position >= ? ORDER BY position LIMIT ?"
        )
        while True:
            page = self._page(query, start)
            for position, data, ticket_hash, global_hash in page:
                yield stored_event(position, decode_event(data, position), ticket_hash, global_hash)
            if len(page) < _PAGE:
                return
            start = page[-1][0] + 1

    def rows(self, from_position: int = 0) -> Iterator[StoredRow]:
        """The stored rows from ``from_position`` on, undecoded (read in pages)."""
        start = check_position(from_position)
        query = (
            "SELECT position, CAST(ticket_id AS BLOB), seq, CAST(event_id AS BLOB), "
            "CAST(data AS BLOB), CAST(ticket_hash AS BLOB), CAST(global_hash AS BLOB) "
            "FROM events WHERE position >= ? ORDER BY position LIMIT ?"
        )
        while True:
            page = self._page(query, start)
            for r in page:
                yield _raw_row(r)
            if len(page) < _PAGE:
                return
            start = page[-1][0] + 1

    def tickets(self) -> list[str]:
        """The ids of every ticket with at least one event, sorted."""
        rows = self._run(
            lambda: self._conn.execute(
                "SELECT DISTINCT ticket_id FROM events ORDER BY ticket_id"
            ).fetchall()
        )
        return [r[0] for r in rows]

    def version(self, ticket_id: str) -> int:
        """The ticket's version (0 for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        return self._run(lambda: self._head_locked(ticket_id))[0]

    def head(self, ticket_id: str) -> str:
        """The ticket's chain hash (:data:`~fireflow.store.chain.GENESIS` for none)."""
        check_id(ticket_id, "ticket_id")
        return self._run(lambda: self._head_locked(ticket_id))[1]

    def count(self) -> int:
        """How many events the store holds (the next global position)."""
        row = self._run(
            lambda: self._conn.execute(
                "SELECT position FROM events ORDER BY position DESC LIMIT 1"
            ).fetchone()
        )
        return int(row[0]) + 1 if row else 0

    def head_row(self) -> tuple[int, str] | None:
        """The head row: the next position and the global chain's hash as the appends left
        them (``None`` for a file of an older fireflow opened read-only, which has none)."""
        if not self._has_head:
            return None
        row = self._run(
            lambda: self._conn.execute("SELECT next, global_hash FROM fireflow_head").fetchone()
        )
        if row is None:
            return -1, "(no head row)"
        return row[0], _text(row[1])

    def integrity_check(self) -> list[str]:
        """SQLite's own check of the file (``PRAGMA integrity_check``): ``["ok"]`` when sound."""
        rows = self._run(lambda: self._conn.execute("PRAGMA integrity_check").fetchall())
        return [str(r[0]) for r in rows]
