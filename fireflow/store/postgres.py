"""The server event store: PostgreSQL through psycopg 3 (``pip install 'fireflow[postgres]'``).

The same contract as :class:`~fireflow.store.sqlite.SQLiteStore`, the same checks
(:func:`~fireflow.store.base.prepare_batch`), the same canonical bytes and the same
chain links (:func:`~fireflow.store.chain.extend_rows`): the same appends give the
same rows, heads and :func:`~fireflow.store.chain.checkpoint` in both.

* **Where.** ``PostgresStore(conninfo)`` takes a libpq connection string
  (``postgresql://user@host/db`` or ``host=... dbname=...``); without one it reads
  ``FIREFLOW_DATABASE_URL``.  Its tables live in one schema (``fireflow`` unless
  ``schema=`` names another), created on first use.
* **Only its own schema.** A schema that already holds tables but no
  ``fireflow_schema`` (another application's) is refused with :class:`ForeignSchema`
  and nothing is created in it; so is a recorded version below 1.
* **Versioned schema.** The table ``fireflow_schema`` holds the schema's version
  (:data:`SCHEMA_VERSION`).  An older version is upgraded when a writer opens the
  store; a newer one (written by a newer fireflow) is refused with
  :class:`SchemaTooNew` and nothing is touched.
* **One global order.** Each append locks the single row of ``fireflow_head``
  (``SELECT ... FOR UPDATE``), which holds the next position and the global chain's
  head, reads the ticket's version under that lock, writes the rows and moves the
  head in the same transaction.  So appends commit one at a time, in the order
  their positions say, and a reader never sees position ``p + 1`` without ``p``.
  What it costs: the global chain makes every event depend on the one before it,
  so appends of *different* tickets also wait for each other; their checks and
  canonical encoding run before the lock, in parallel, but the hashing, the
  inserts and the commit (one WAL flush) run one transaction at a time.  A batch
  of many events pays the lock and the flush once; reads never wait for it.  An
  ``append_many`` of any number of batches is six round trips to the server (the
  lock, the tickets' heads, the ids already stored, one ``INSERT ... SELECT FROM
  unnest(...)`` that also moves the head, ``BEGIN`` and ``COMMIT``), so
  collecting several tickets' commands into one call multiplies throughput.
* **One winner per version.** Two writers of the same ticket and version: the
  first to take the lock writes; the second, under the lock, sees the new version
  and gets :class:`~fireflow.store.errors.ConcurrencyConflict`.  Re-sending stored
  events returns the stored result (``replayed=True``); an id stored with other
  content is :class:`~fireflow.store.errors.DuplicateEventId` (the ``UNIQUE``
  index has the last word).
* **Typed errors.** A server that cannot be reached, refuses the login or goes
  away raises :class:`StoreUnavailable`; any other database error
  :class:`~fireflow.store.errors.StoreError`.  Only parameterised SQL is sent
  (the schema name is quoted as an identifier by psycopg).
* **Reconnecting.** The call that loses the connection (the server stopped or
  restarted, the session was terminated) raises :class:`StoreUnavailable` and
  retries nothing; the store's next call opens a new connection (with the same
  session settings) and runs, or raises :class:`StoreUnavailable` again while the
  server is still away.  So one store outlives a server restart: the caller waits,
  and re-sends the append that failed, which is safe because appends are
  idempotent (an append that did commit before the connection was lost comes back
  with ``replayed=True``).  A committed append is never lost by the restart: the
  commit was acknowledged only after PostgreSQL flushed it to its write-ahead log
  (with ``synchronous_commit`` on, the default; fireflow does not turn it off).
* **Readers.** ``readonly=True`` opens the session read-only
  (``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``, enforced by the
  server), creates nothing and refuses ``append``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

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
from fireflow.store.errors import (
    CorruptRecord,
    StoreBusy,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    redact,
    secrets_of,
)
from fireflow.store.subscription import Subscribable, Waiter, check_waiter_args

__all__ = [
    "NOTIFY_CHANNEL",
    "SCHEMA_VERSION",
    "ForeignSchema",
    "PostgresStore",
    "SchemaTooNew",
    "StoreUnavailable",
]

#: The version of the tables this fireflow writes (kept in ``fireflow_schema``):
#: 1 the tables, 2 the append functions a writer role goes through.
SCHEMA_VERSION = 2
#: The LISTEN/NOTIFY channel an append notifies (payload: ``"<schema> <next position>"``).
NOTIFY_CHANNEL = "fireflow_events"
#: The environment variable read when no connection string is given.
ENV_URL = "FIREFLOW_DATABASE_URL"

_T = TypeVar("_T")
_PAGE = 2000
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Key of the advisory lock that serialises creating and upgrading the tables.
_DDL_LOCK = 0x66697265  # "fire"

# Statements to create version 1; {s} is the schema, quoted by psycopg.
_CREATE: tuple[str, ...] = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_schema (
        one     boolean PRIMARY KEY DEFAULT true CHECK (one),
        version integer NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.events (
        position    bigint PRIMARY KEY CHECK (position >= 0),
        ticket_id   text NOT NULL,
        seq         integer NOT NULL CHECK (seq >= 1),
        event_id    text NOT NULL UNIQUE,
        data        bytea NOT NULL,
        ticket_hash text NOT NULL,
        global_hash text NOT NULL,
        UNIQUE (ticket_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_head (
        one         boolean PRIMARY KEY DEFAULT true CHECK (one),
        next        bigint NOT NULL CHECK (next >= 0),
        global_hash text NOT NULL
    )""",
)
#: What each kind of role is granted (see :meth:`PostgresStore.grants_sql`).
_ACCESS: dict[str, tuple[str, ...]] = {
    "writer": (
        "GRANT SELECT ON {s}.fireflow_schema, {s}.fireflow_head, {s}.events TO {r};",
        "GRANT EXECUTE ON FUNCTION {s}.fireflow_lock(), "
        "{s}.fireflow_append(text[], integer[], text[], bytea[], text) TO {r};",
    ),
    "reader": ("GRANT SELECT ON {s}.fireflow_schema, {s}.fireflow_head, {s}.events TO {r};",),
    "indexer": (
        "GRANT SELECT ON {s}.fireflow_schema, {s}.fireflow_head, {s}.events TO {r};",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON {s}.fireflow_index_meta, "
        "{s}.fireflow_index_tickets, {s}.fireflow_index_states, {s}.fireflow_index_counts, "
        "{s}.fireflow_index_open, {s}.fireflow_index_agencies TO {r};",
    ),
}
# The one way a writer role appends (version 2).  Both functions run with their owner's
# rights (SECURITY DEFINER) and a fixed search_path; the writer is granted EXECUTE on them
# and SELECT, never INSERT on the events nor UPDATE of the head.  ``fireflow_lock`` takes
# the global order's lock (the head row, FOR UPDATE) for the caller's transaction;
# ``fireflow_append`` computes every position and both chain hashes itself, from the head
# and each ticket's last row, refuses a seq that does not follow, inserts, moves the
# head and notifies.  The hashes are those of fireflow.store.chain (SHA-256 over the tag,
# the previous hash in hex, a newline and the row's bytes).
_FUNCTIONS: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION {s}.fireflow_lock()
    RETURNS TABLE (r_next bigint, r_global_hash text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$ SELECT h.next, h.global_hash FROM {s}.fireflow_head h FOR UPDATE $fn$""",
    """CREATE OR REPLACE FUNCTION {s}.fireflow_append(
        p_ticket text[], p_seq integer[], p_event text[], p_data bytea[], p_note text)
    RETURNS TABLE (r_position bigint, r_ticket_hash text, r_global_hash text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $fn$
    DECLARE
        v_next bigint;
        v_global text;
        v_last integer;
        v_thash text;
        i integer;
    BEGIN
        SELECT h.next, h.global_hash INTO v_next, v_global
            FROM {s}.fireflow_head h FOR UPDATE;
        IF v_next IS NULL THEN
            RAISE EXCEPTION 'fireflow_head has no row';
        END IF;
        IF array_length(p_ticket, 1) IS DISTINCT FROM array_length(p_data, 1)
           OR array_length(p_seq, 1) IS DISTINCT FROM array_length(p_data, 1)
           OR array_length(p_event, 1) IS DISTINCT FROM array_length(p_data, 1) THEN
            RAISE EXCEPTION 'fireflow_append: arrays of different lengths';
        END IF;
        FOR i IN 1 .. coalesce(array_length(p_data, 1), 0) LOOP
            SELECT e.seq, e.ticket_hash INTO v_last, v_thash FROM {s}.events e
                WHERE e.ticket_id = p_ticket[i] ORDER BY e.seq DESC LIMIT 1;
            IF NOT FOUND THEN
                v_last := 0;
                v_thash := repeat('0', 64);
            END IF;
            IF p_seq[i] IS DISTINCT FROM v_last + 1 THEN
                RAISE EXCEPTION 'ticket %: seq % does not follow % (seq 不连续)',
                    p_ticket[i], p_seq[i], v_last;
            END IF;
            v_thash := encode(sha256(
                convert_to('fireflow/ticket/1' || chr(10) || v_thash || chr(10), 'UTF8')
                || p_data[i]), 'hex');
            v_global := encode(sha256(
                convert_to('fireflow/global/1' || chr(10) || v_global || chr(10), 'UTF8')
                || p_data[i]), 'hex');
            INSERT INTO {s}.events
                (position, ticket_id, seq, event_id, data, ticket_hash, global_hash)
                VALUES (v_next, p_ticket[i], p_seq[i], p_event[i], p_data[i], v_thash, v_global);
            r_position := v_next;
            r_ticket_hash := v_thash;
            r_global_hash := v_global;
            RETURN NEXT;
            v_next := v_next + 1;
        END LOOP;
        UPDATE {s}.fireflow_head SET next = v_next, global_hash = v_global;
        PERFORM pg_notify('fireflow_events', p_note || ' ' || v_next);
    END
    $fn$""",
    "REVOKE ALL ON FUNCTION {s}.fireflow_lock() FROM PUBLIC",
    "REVOKE ALL ON FUNCTION {s}.fireflow_append(text[], integer[], text[], bytea[], text) "
    "FROM PUBLIC",
)
#: Upgrades: the statements that take version ``n`` to ``n + 1``.
_UPGRADES: dict[int, tuple[str, ...]] = {1: _FUNCTIONS}
_ROW_COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"


class ForeignSchema(StoreError):
    """The schema is not a fireflow store: another application's tables, or a version
    fireflow never wrote.  Nothing was created or changed.  ``field`` names what was
    found wrong (``schema`` or ``fireflow_schema.version``)."""

    def __init__(self, target: str, field: str, reason: str) -> None:
        self.target = target
        self.field = field
        super().__init__(f"{target}: {field}: {reason}")


class SchemaTooNew(StoreError):
    """The store's tables were written by a newer fireflow (schema ``found`` > ``supported``)."""

    def __init__(self, target: str, *, found: int, supported: int) -> None:
        self.target = target
        self.found = found
        self.supported = supported
        self.field = "fireflow_schema.version"
        super().__init__(
            f"{target}: store schema version {found} is newer than this fireflow supports "
            f"({supported}); upgrade fireflow (库结构版本过新)"
        )


def _describe(conninfo: str, schema: str) -> str:
    """``host:port/dbname schema`` for messages: never the password."""
    try:
        d = conninfo_to_dict(conninfo)
    except psycopg.Error:
        return f"PostgreSQL (schema {schema})"
    host = d.get("host") or d.get("hostaddr") or "localhost"
    port = f":{d['port']}" if d.get("port") else ""
    db = d.get("dbname") or d.get("user") or ""
    return f"postgresql {host}{port}/{db} (schema {schema})"


def _reason(exc: BaseException, conninfo: str) -> str:
    """A driver's message in one line, without the connection string's password (libpq
    quotes a malformed connection string, or the part of it it could not read)."""
    text = redact(" ".join(str(exc).split()), secrets_of(conninfo))
    return text[:300] or type(exc).__name__


class PostgresStore(Subscribable):
    """An :class:`~fireflow.store.base.EventStore` in a PostgreSQL database.

    ``conninfo`` is a libpq connection string (``FIREFLOW_DATABASE_URL`` when
    ``None``); ``schema`` the schema holding the tables (lowercase letters, digits
    and ``_``).  ``create=False`` raises :class:`~fireflow.store.errors.StoreNotFound`
    where there are no tables instead of creating them; ``readonly=True`` implies it
    and opens a read-only session.  ``connect_timeout`` is in seconds;
    ``lock_timeout_ms`` is how long an append waits for the global order's lock
    (held by other appends) before it gives up with
    :class:`~fireflow.store.errors.StoreBusy` (nothing written).  One store is
    one connection, usable from several threads (calls take turns); open one store
    per process or per worker for parallel writers.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        schema: str = "fireflow",
        create: bool = True,
        readonly: bool = False,
        connect_timeout: int = 10,
        lock_timeout_ms: int = 30_000,
    ) -> None:
        if conninfo is None:
            conninfo = os.environ.get(ENV_URL)
            if not conninfo:
                raise InvalidArgument(
                    "conninfo", f"no connection string given and {ENV_URL} is not set"
                )
        if not isinstance(conninfo, str) or not conninfo.strip():
            raise InvalidArgument("conninfo", "expected a libpq connection string")
        if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidArgument(
                "schema",
                "expected 1-63 lowercase letters, digits or '_', not starting with a digit",
            )
        for flag, flag_value in (("create", create), ("readonly", readonly)):
            if not isinstance(flag_value, bool):
                raise InvalidArgument(flag, f"expected true or false, got {flag_value!r}")
        if isinstance(connect_timeout, bool) or not isinstance(connect_timeout, int):
            raise InvalidArgument("connect_timeout", "expected a whole number of seconds")
        if connect_timeout < 1:
            raise InvalidArgument("connect_timeout", f"expected >= 1, got {connect_timeout}")
        if isinstance(lock_timeout_ms, bool) or not isinstance(lock_timeout_ms, int):
            raise InvalidArgument("lock_timeout_ms", "expected a whole number of milliseconds")
        if lock_timeout_ms < 1:
            raise InvalidArgument("lock_timeout_ms", f"expected >= 1, got {lock_timeout_ms}")
        self.schema = schema
        self.readonly = readonly
        self.target = redact(_describe(conninfo, schema), secrets_of(conninfo))
        #: How many times the store opened a new connection after losing one.
        self.reconnects = 0
        self._lock = threading.RLock()
        self._s = sql.Identifier(schema)
        self._queries: dict[str, sql.SQL] = {}
        self._conninfo = conninfo  # for reconnecting, and the listening connection of subscribe()
        self._connect_timeout = connect_timeout
        self._lock_timeout_ms = lock_timeout_ms
        self._closed = False
        self._conn = self._connect()
        try:
            self._run(lambda: self._setup(create and not readonly))
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.target!r}{', readonly=True' if self.readonly else ''})"

    def new_waiter(self, stop: threading.Event, interval: float) -> Waiter:
        """Subscriptions ``LISTEN`` on a connection of their own (woken by each commit)."""
        check_waiter_args(stop, interval)
        return _ListenWaiter(self, interval)

    # -------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the connection (the store cannot be used afterwards)."""
        with self._lock:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _q(self, text: str) -> sql.SQL:
        """A statement with the schema quoted in (the only thing ever put into SQL text)."""
        q = self._queries.get(text)
        if q is None:
            q = self._queries[text] = sql.SQL(sql.SQL(text).format(s=self._s).as_string(None))
        return q

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with the store's session settings (lock timeout, read-only)."""
        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(self.target, _reason(exc, self._conninfo)) from None
        except psycopg.Error as exc:
            raise StoreError(
                f"{self.target}: cannot connect: {_reason(exc, self._conninfo)}"
            ) from None
        try:
            conn.execute(
                "SELECT set_config('lock_timeout', %s, false)", (f"{self._lock_timeout_ms}ms",)
            )
            if self.readonly:
                conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(self.target, _reason(exc, self._conninfo)) from None
        return conn

    def _run(self, op: Callable[[], _T]) -> _T:
        """Run ``op`` under the connection lock; database errors become typed store errors.

        A connection lost by an earlier call (the server restarted, the session was
        terminated) is replaced here, once per call, before ``op`` runs: the call
        that saw the loss raised :class:`StoreUnavailable`, the next one reconnects.
        Nothing is retried behind the caller's back.
        """
        try:
            with self._lock:
                if self._conn.closed and not self._closed:
                    self._conn = self._connect()
                    self.reconnects += 1
                return op()
        except psycopg.errors.LockNotAvailable:
            raise StoreBusy(self.target, attempts=1) from None
        except psycopg.Error as exc:
            if self._conn.closed or self._conn.broken:
                raise StoreUnavailable(self.target, _reason(exc, self._conninfo)) from None
            raise StoreError(f"{self.target}: {_reason(exc, self._conninfo)}") from None

    def _version_found(self) -> int | None:
        """The schema version in ``fireflow_schema``; ``None`` when the schema holds no table.

        A schema with tables but no ``fireflow_schema`` belongs to someone else:
        :class:`ForeignSchema`, and nothing is created beside its tables.
        """
        exists = self._conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f'"{self.schema}".fireflow_schema',)
        ).fetchone()
        if not exists or not exists[0]:
            others = self._conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                'ORDER BY c.relname COLLATE "C" LIMIT 3',
                (self.schema,),
            ).fetchall()
            if others:
                raise ForeignSchema(
                    self.target,
                    "schema",
                    f"holds tables fireflow did not make ({', '.join(str(r[0]) for r in others)}) "
                    "and no fireflow_schema; use another schema= (不是 fireflow 事件库，未作改动)",
                )
            return None
        row = self._conn.execute(self._q("SELECT version FROM {s}.fireflow_schema")).fetchone()
        if row is None or not isinstance(row[0], int):
            raise ForeignSchema(
                self.target,
                "fireflow_schema.version",
                "fireflow_schema holds no version (不是 fireflow 事件库)",
            )
        version = int(row[0])
        if version < 1:
            raise ForeignSchema(
                self.target,
                "fireflow_schema.version",
                f"version {version} was never written by fireflow (versions start at 1) "
                "(库结构版本无效)",
            )
        return version

    def _setup(self, create: bool) -> None:
        found = self._version_found()
        if found == SCHEMA_VERSION:
            return
        if found is not None and found > SCHEMA_VERSION:
            raise SchemaTooNew(self.target, found=found, supported=SCHEMA_VERSION)
        if found is None and not create:
            raise StoreNotFound(self.target)
        if found is not None and self.readonly:
            raise StoreError(
                f"{self.target}: store schema version {found} needs an upgrade to "
                f"{SCHEMA_VERSION}; open it read-write once (库结构需升级)"
            )
        # One creator or upgrader at a time: a session-level advisory lock taken *before*
        # the transaction, so that the transaction starts after the previous creator's
        # commit and sees its tables (a lock taken inside a transaction does not refresh
        # what that transaction knows of the catalog).
        self._conn.execute("SELECT pg_advisory_lock(%s)", (_DDL_LOCK,))
        try:
            with self._conn.transaction():
                self._create_or_upgrade()
        finally:
            if not self._conn.closed and not self._conn.broken:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (_DDL_LOCK,))

    def _create_or_upgrade(self) -> None:
        found = self._version_found()
        if found is None:  # version 1's tables, then the upgrades like any older store
            for stmt in _CREATE:
                self._conn.execute(self._q(stmt))
            self._conn.execute(self._q("INSERT INTO {s}.fireflow_schema (version) VALUES (1)"))
            self._conn.execute(
                self._q("INSERT INTO {s}.fireflow_head (next, global_hash) VALUES (0, %s)"),
                (GENESIS,),
            )
            found = 1
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(self.target, found=found, supported=SCHEMA_VERSION)
        while found < SCHEMA_VERSION:
            for stmt in _UPGRADES[found]:
                self._conn.execute(self._q(stmt))
            found += 1
            self._conn.execute(self._q("UPDATE {s}.fireflow_schema SET version = %s"), (found,))

    @staticmethod
    def grants_sql(role: str, *, access: str = "writer", schema: str = "fireflow") -> str:
        """The ``GRANT`` statements that give ``role`` the least it needs (docs/deploying.md).

        ``access`` is ``"writer"`` (append and read: ``INSERT`` and ``SELECT`` on the
        events, never ``UPDATE``, ``DELETE`` or ``TRUNCATE``; ``SELECT``/``UPDATE`` of
        the one row of ``fireflow_head`` that orders the appends), ``"reader"``
        (``SELECT`` only) or ``"indexer"`` (read the events, write the ticket index
        tables ``fireflow_index_*``, which the owner creates first).  The owner
        of the schema (who created the tables) runs them.

        >>> print(PostgresStore.grants_sql("fireflow_reader", access="reader"))
        GRANT USAGE ON SCHEMA "fireflow" TO "fireflow_reader";
        GRANT SELECT ON "fireflow".fireflow_schema, "fireflow".fireflow_head, "fireflow".events TO "fireflow_reader";
        """  # noqa: E501 (the statements as printed)
        for field, value in (("role", role), ("schema", schema)):
            if not isinstance(value, str) or not _SCHEMA_NAME.fullmatch(value):
                raise InvalidArgument(
                    field,
                    "expected 1-63 lowercase letters, digits or '_', not starting with a digit",
                )
        if access not in _ACCESS:
            raise InvalidArgument("access", f"expected one of {', '.join(_ACCESS)}, got {access!r}")
        s, r = f'"{schema}"', f'"{role}"'
        lines = [f"GRANT USAGE ON SCHEMA {s} TO {r};"]
        lines += [stmt.format(s=s, r=r) for stmt in _ACCESS[access]]
        return "\n".join(lines)

    def schema_version(self) -> int:
        """The version recorded in the store's ``fireflow_schema`` table."""
        version = self._run(self._version_found)
        if version is None:
            raise StoreNotFound(self.target)
        return version

    # ------------------------------------------------------------------ write

    def append(
        self, ticket_id: str, events: Sequence[Event], expected_version: int
    ) -> AppendResult:
        """Append one ticket's batch, all or nothing, if its version is ``expected_version``."""
        return self.append_many([(ticket_id, events, expected_version)])[0]

    def append_many(self, batches: Iterable[Batch]) -> list[AppendResult]:
        """Append several batches in one transaction: all of them, or none."""
        if self.readonly:
            raise StoreError(f"{self.target}: opened read-only, nothing is appended (只读打开)")
        prepared = [(t, prepare_batch(t, evs, v), v) for t, evs, v in batches]
        if not prepared:
            return []
        return self._run(lambda: self._write(prepared))

    def _write(self, prepared: list[tuple[str, list[Prepared], int]]) -> list[AppendResult]:
        # Under the head's lock no other fireflow append writes, so what is read after
        # taking it (the tickets' heads, the ids already stored) stays true until the
        # commit.  Six round trips: BEGIN, the lock, the heads, the stored ids, one
        # statement that inserts every row and moves the head, COMMIT.
        c = self._conn
        tickets = list(dict.fromkeys(t for t, _, _ in prepared))
        ids = [e.event_id for _, batch, _ in prepared for e, _ in batch]
        with c.transaction():
            head_cur = c.execute(self._q("SELECT * FROM {s}.fireflow_lock()"))
            head = head_cur.fetchone()
            heads_cur = c.execute(
                self._q(
                    "SELECT t.id, e.seq, e.ticket_hash FROM unnest(%s::text[]) AS t(id) "
                    "LEFT JOIN LATERAL (SELECT seq, ticket_hash FROM {s}.events "
                    "WHERE ticket_id = t.id ORDER BY seq DESC LIMIT 1) e ON true"
                ),
                (tickets,),
            )
            found_cur = c.execute(
                self._q(f"SELECT {_ROW_COLUMNS} FROM {{s}}.events WHERE event_id = ANY(%s)"),  # noqa: S608 (constant)
                (ids,),
            )
            if head is None:
                raise StoreError(f"{self.target}: fireflow_head has no row (不是 fireflow 事件库)")
            position, g_head = int(head[0]), str(head[1])
            heads: dict[str, tuple[int, str]] = {
                str(t): (int(seq), str(h)) if seq is not None else (0, GENESIS)
                for t, seq, h in heads_cur.fetchall()
            }
            found = {str(r[3]): _row(r) for r in found_cur.fetchall()}
            results: list[AppendResult] = []
            written: list[Any] = []
            for ticket_id, batch, expected in prepared:
                version, t_head = heads[ticket_id]
                stored = {e.event_id: found[e.event_id] for e, _ in batch if e.event_id in found}
                if version != expected or stored:  # a stale version or a stored id
                    done = settle(ticket_id, batch, expected, version, stored)
                    if done is None:
                        raise StoreError(
                            f"{self.target}: the database refused a batch that nothing explains"
                        )
                    results.append(done)
                    continue
                rows = extend_rows(
                    ticket_id, batch, position=position, ticket_head=t_head, global_head=g_head
                )
                written += rows
                for r in rows:  # a later batch of this call sees these as stored
                    found[r[3]] = _row(r)
                tail = rows[-1]
                position = tail[0] + 1
                g_head = tail[6]
                heads[ticket_id] = (tail[2], tail[5])
                results.append(appended(ticket_id, rows))
            if written:
                # one round trip: the function computes the positions and both hashes
                # itself, inserts every row, moves the head and notifies (the NOTIFY
                # reaches the listeners when, and only if, the transaction commits)
                got = c.execute(
                    self._q(
                        "SELECT * FROM {s}.fireflow_append(%s::text[], %s::integer[], "
                        "%s::text[], %s::bytea[], %s)"
                    ),
                    (
                        [r[1] for r in written],
                        [r[2] for r in written],
                        [r[3] for r in written],
                        [r[4] for r in written],
                        self.schema,
                    ),
                ).fetchall()
                want = [(r[0], r[5], r[6]) for r in written]
                if [(int(p), str(t), str(g)) for p, t, g in got] != want:
                    raise StoreError(
                        f"{self.target}: the database stored other positions or hashes than "
                        "the chain gives; nothing written (位置或哈希不一致)"
                    )
        return results

    def _head(self, ticket_id: str) -> tuple[int, str]:
        row = self._conn.execute(
            self._q(
                "SELECT seq, ticket_hash FROM {s}.events WHERE ticket_id = %s "
                "ORDER BY seq DESC LIMIT 1"
            ),
            (ticket_id,),
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    # ------------------------------------------------------------------- read
    def read(self, ticket_id: str) -> list[Event]:
        """One ticket's events in ``seq`` order (empty for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        rows = self._run(
            lambda: self._conn.execute(
                self._q(
                    "SELECT position, seq, data FROM {s}.events WHERE ticket_id = %s ORDER BY seq"
                ),
                (ticket_id,),
            ).fetchall()
        )
        out: list[Event] = []
        for position, seq, data in rows:
            e = decode_event(bytes(data), position)
            if e.ticket_id != ticket_id or e.seq != seq:
                raise CorruptRecord(
                    position, "data", "the row's ticket or seq differs from its data"
                )
            out.append(e)
        return out

    def _page(self, columns: str, start: int) -> list[Any]:
        query = self._q(
            f"SELECT {columns} FROM {{s}}.events WHERE position >= %s "  # noqa: S608 (constant)
            "ORDER BY position LIMIT %s"
        )
        return self._run(lambda: self._conn.execute(query, (start, _PAGE)).fetchall())

    def read_all(self, from_position: int = 0) -> Iterator[StoredEvent]:
        """Every event from ``from_position`` on, in the global order (read in pages)."""
        start = check_position(from_position)
        while True:
            page = self._page("position, data, ticket_hash, global_hash", start)
            for position, data, ticket_hash, global_hash in page:
                yield stored_event(
                    position, decode_event(bytes(data), position), ticket_hash, global_hash
                )
            if len(page) < _PAGE:
                return
            start = page[-1][0] + 1

    def rows(self, from_position: int = 0) -> Iterator[StoredRow]:
        """The stored rows from ``from_position`` on, undecoded (read in pages)."""
        start = check_position(from_position)
        while True:
            page = self._page(_ROW_COLUMNS, start)
            for r in page:
                yield _row(r)
            if len(page) < _PAGE:
                return
            start = page[-1][0] + 1

    def tickets(self) -> list[str]:
        """The ids of every ticket with at least one event, sorted by code point."""
        rows = self._run(
            lambda: self._conn.execute(
                self._q('SELECT DISTINCT ticket_id COLLATE "C" AS t FROM {s}.events ORDER BY t')
            ).fetchall()
        )
        return [str(r[0]) for r in rows]

    def version(self, ticket_id: str) -> int:
        """The ticket's version (0 for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        return self._run(lambda: self._head(ticket_id))[0]

    def head(self, ticket_id: str) -> str:
        """The ticket's chain hash (:data:`~fireflow.store.chain.GENESIS` for none)."""
        check_id(ticket_id, "ticket_id")
        return self._run(lambda: self._head(ticket_id))[1]

    def head_row(self) -> tuple[int, str] | None:
        """The head row (``fireflow_head``): the next position and the global chain's hash,
        as the appends left it (:func:`~fireflow.store.chain.verify` compares it with the rows)."""
        row = self._run(
            lambda: self._conn.execute(
                self._q("SELECT next, global_hash FROM {s}.fireflow_head")
            ).fetchone()
        )
        if row is None:
            raise StoreError(f"{self.target}: fireflow_head has no row (不是 fireflow 事件库)")
        return int(row[0]), str(row[1])

    def count(self) -> int:
        """How many events the store holds (the next global position)."""
        row = self._run(
            lambda: self._conn.execute(
                self._q("SELECT position FROM {s}.events ORDER BY position DESC LIMIT 1")
            ).fetchone()
        )
        return int(row[0]) + 1 if row else 0


def _row(r: Sequence[Any]) -> StoredRow:
    position, ticket_id, seq, event_id, data, ticket_hash, global_hash = r
    return StoredRow(
        position=int(position),
        ticket_id=str(ticket_id),
        seq=int(seq),
        event_id=str(event_id),
        data=bytes(data),
        ticket_hash=str(ticket_hash),
        global_hash=str(global_hash),
    )


class _ListenWaiter:
    r"""A connection of its own that ``LISTEN``\ s to the store's channel.

    A lost connection (the server restarted) raises :class:`StoreUnavailable`
    from :meth:`wait`; the subscription then waits, calls :meth:`reconnect` and
    reads again from the last event it delivered, a bounded number of times
    (:data:`~fireflow.store.subscription.RECONNECT_ATTEMPTS`).
    """

    def __init__(self, store: PostgresStore, interval: float) -> None:
        self.store = store
        self.interval = interval
        self.prefix = f"{store.schema} "
        self.conn: psycopg.Connection[Any] | None = None
        self.reconnect()

    def reconnect(self) -> None:
        """Open the listening connection (again); :class:`StoreUnavailable` while the
        server is away."""
        self.close()
        store = self.store
        try:
            conn = psycopg.connect(store._conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(store.target, _reason(exc, self.store._conninfo)) from None
        except psycopg.Error as exc:
            raise StoreError(
                f"{store.target}: cannot listen for new events: {_reason(exc, store._conninfo)}"
            ) from None
        try:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(store.target, _reason(exc, self.store._conninfo)) from None
        self.conn = conn

    def wait(self, position: int, timeout: float) -> None:
        """Return on a notification for this schema, or after ``timeout`` (at most the interval)."""
        if self.conn is None or self.conn.closed:
            raise StoreUnavailable(self.store.target, "the listening connection is closed")
        try:
            for note in self.conn.notifies(timeout=min(timeout, self.interval)):
                if note.payload.startswith(self.prefix):
                    return
        except psycopg.Error as exc:
            raise StoreUnavailable(
                self.store.target,
                f"the listening connection failed: {_reason(exc, self.store._conninfo)}",
            ) from None

    def close(self) -> None:
        """Close the listening connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
