"""Live ticket views (工单视图): a :class:`TicketIndex` kept up to date from the global log.

The index is a projection: one row per ticket with the fields people ask about
(town, community, state, category, route agencies, deadline and the instant it
ends), computed by folding the ticket's events through the engine
(:func:`fireflow.ticket.evolve`), so a row says exactly what
:func:`fireflow.ticket.fold` says of the ticket.  It lives in the same database
as the events (tables ``fireflow_index_*`` beside ``events``: in the store's
SQLite file, in the store's PostgreSQL schema), or, for a
:class:`~fireflow.store.memory.MemoryStore` and for stores opened read-only, in
a temporary in-memory SQLite database.

**Caught up after the append, not inside it.**  Appends write events only;
:meth:`TicketIndex.catch_up` reads the events after the index's stored position,
folds them into the rows they touch and moves the position, all in one
transaction of the same database (so rows and position never disagree, and an
interrupted catch-up leaves the index where it was).  Why not in the append's
own transaction: the append path stays storage only (one contract for every
store, the same bytes, no engine code under the global write lock), an index
can be dropped and rebuilt at any time from the log, and readers that must not
write can still build one.  What it costs: a query sees the log as of the last
catch-up; call ``catch_up()`` before a query that must see the latest appends
(it is incremental: it costs what the new events cost), or run it from a
subscription (:mod:`fireflow.store.subscription`).  Two catch-ups of one index never
apply the same events twice: each takes the index's lock first (SQLite's write
lock, a row lock in PostgreSQL).  The index remembers the global chain hash of
the last event it folded; a store whose history no longer has that hash at that
position (another store, a restored older backup) raises :class:`IndexOutOfStep`
and :meth:`TicketIndex.rebuild` starts again from position 0.

Queries answer from SQL indexes (milliseconds at 100,000 tickets,
benchmarks/bench_views.py): tickets by town, community, state, category, route
agency and due-date range, overdue at an instant, open hazards per community,
counts per town and state.

* **Overdue at an instant** ``at``: the ticket is ``overdue`` already, or it is in
  a state from which ``mark_overdue`` is allowed (``rectifying``, ``rectified``)
  and ``at`` is at or past the end of its due day (the plan's calendar:
  24:00 Asia/Shanghai unless the plan sets office hours), which is exactly when
  the engine accepts ``mark_overdue`` (R-ESC-OVERDUE).
* **Open hazard**: a ticket recorded in the ledger and not yet signed off
  (any state but ``new``, ``signed_off`` and ``archived``, R-TKT-SIGNOFF).
* **Route agency**: an agency that plays a role in the ticket's route
  (rectifier, lead, supervisor, recheck_lead, cooperating, enforcers,
  certifier) or that the ticket was escalated to.

>>> from fireflow import Ticket, load_plan
>>> from fireflow.store import MemoryStore
>>> import pendulum
>>> plan = load_plan("changle-2022")
>>> store = MemoryStore()
>>> t = Ticket("CL-1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", community="金峰小区", town="金峰镇",
...               category="evacuation_blocked", subtype="goods", location="inside",
...               source="town_inspection")
>>> _ = t.command("route", at, "town")
>>> _ = t.command("set_deadline", at, "town")
>>> _ = store.append("CL-1", t.events, 0)
>>> index = TicketIndex(store, plan=plan)
>>> index.catch_up(), index.position
(3, 3)
>>> [r.ticket_id for r in index.tickets(town="金峰镇", state="rectifying")]
['CL-1']
>>> row = index.get("CL-1")
>>> row.deadline, row.due_at.isoformat()
(datetime.date(2022, 3, 24), '2022-03-24T16:00:00+00:00')
>>> [r.ticket_id for r in index.overdue(pendulum.datetime(2022, 3, 25, tz="Asia/Shanghai"))]
['CL-1']
>>> index.counts()
[('金峰镇', 'rectifying', 1)]
>>> index.state("CL-1") == t.state
True
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from fireflow.errors import FireflowError, InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.model import TicketState, plan_digest
from fireflow.plan import BUILTIN_PLAN, Plan, load_plan
from fireflow.states import LIFECYCLE, STATES
from fireflow.store.base import EventStore, StoredEvent, check_id
from fireflow.store.errors import StoreError
from fireflow.store.memory import MemoryStore
from fireflow.store.sqlite import SQLiteStore
from fireflow.text import check_name, escape_for_terminal
from fireflow.ticket import evolve

if TYPE_CHECKING:
    from fireflow.store.postgres import PostgresStore

__all__ = [
    "INDEX_FORMAT",
    "MAX_LIMIT",
    "OPEN_STATES",
    "OVERDUE_SOURCES",
    "IndexOutOfStep",
    "IndexRefused",
    "TicketIndex",
    "TicketRow",
]

#: The format id kept in ``fireflow_index_meta``.
INDEX_FORMAT = "fireflow.index/1"
#: The states a ticket is marked overdue from (R-ESC-OVERDUE), from the lifecycle.
OVERDUE_SOURCES: tuple[str, ...] = LIFECYCLE.transition("mark_overdue").sources
#: An open hazard: recorded in the ledger and not yet signed off (R-TKT-SIGNOFF).
OPEN_STATES: tuple[str, ...] = tuple(
    s for s in STATES if s not in ("new", "signed_off", "archived")
)
#: The most rows one query returns (``limit``).
MAX_LIMIT = 1_000_000
#: Events folded per transaction of a catch-up (the write lock is let go between chunks).
CHUNK = 5000
#: The route roles an agency is indexed under, and ``escalated_to``.
ROLES: tuple[str, ...] = (
    "rectifier",
    "lead",
    "supervisor",
    "recheck_lead",
    "cooperating",
    "enforcers",
    "certifier",
    "escalated_to",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_IN_CHUNK = 500

# The tables; {s}. is the schema prefix (empty in SQLite), %s a parameter.
_CREATE: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_meta (
        name        text PRIMARY KEY,
        format      text NOT NULL,
        position    bigint NOT NULL CHECK (position >= 0),
        last_hash   text NOT NULL,
        plan_id     text NOT NULL,
        plan_digest text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_tickets (
        ticket_id     text PRIMARY KEY,
        town          text NOT NULL,
        community     text NOT NULL,
        state         text NOT NULL,
        category      text NOT NULL,
        route         text,
        deadline      text,
        due_us        bigint,
        open          integer NOT NULL,
        version       integer NOT NULL,
        last_position bigint NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_states (
        ticket_id text PRIMARY KEY,
        data      text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_counts (
        town  text NOT NULL,
        state text NOT NULL,
        n     bigint NOT NULL,
        PRIMARY KEY (town, state)
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_open (
        town      text NOT NULL,
        community text NOT NULL,
        n         bigint NOT NULL,
        PRIMARY KEY (town, community)
    )""",
    """CREATE TABLE IF NOT EXISTS {s}.fireflow_index_agencies (
        ticket_id text NOT NULL,
        agency    text NOT NULL,
        role      text NOT NULL,
        PRIMARY KEY (ticket_id, role, agency)
    )""",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_town ON {s}.fireflow_index_tickets "
    "(town, state, ticket_id)",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_community ON {s}.fireflow_index_tickets "
    "(community, town, open)",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_state ON {s}.fireflow_index_tickets (state, due_us)",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_deadline ON {s}.fireflow_index_tickets (deadline)",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_open ON {s}.fireflow_index_tickets "
    "(open, town, community)",
    "CREATE INDEX IF NOT EXISTS fireflow_ix_agency ON {s}.fireflow_index_agencies "
    "(agency, ticket_id)",
)
_ROW = "ticket_id, town, community, state, category, route, deadline, due_us, version"
_UPSERT = (
    "INSERT INTO {s}.fireflow_index_tickets (ticket_id, town, community, state, category, "
    "route, deadline, due_us, open, version, last_position) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (ticket_id) DO UPDATE SET town = excluded.town, "
    "community = excluded.community, state = excluded.state, category = excluded.category, "
    "route = excluded.route, deadline = excluded.deadline, due_us = excluded.due_us, "
    "open = excluded.open, version = excluded.version, "
    "last_position = excluded.last_position"
)
_ADD_COUNT = (
    "INSERT INTO {s}.fireflow_index_counts (town, state, n) VALUES (%s, %s, %s) "
    "ON CONFLICT (town, state) DO UPDATE SET n = fireflow_index_counts.n + excluded.n"
)
_ADD_OPEN = (
    "INSERT INTO {s}.fireflow_index_open (town, community, n) VALUES (%s, %s, %s) "
    "ON CONFLICT (town, community) DO UPDATE SET n = fireflow_index_open.n + excluded.n"
)
_UPSERT_STATE = (
    "INSERT INTO {s}.fireflow_index_states (ticket_id, data) VALUES (%s, %s) "
    "ON CONFLICT (ticket_id) DO UPDATE SET data = excluded.data"
)
_NAME = "tickets"
#: Key of the PostgreSQL advisory lock that serialises creating the index tables.
_DDL_LOCK = 0x66697278  # "firx"
_SELECT_ROWS = (
    f"SELECT {', '.join('t.' + c for c in _ROW.split(', '))} "  # noqa: S608 (constant)
    "FROM {s}.fireflow_index_tickets t"
)


class IndexOutOfStep(StoreError):
    """The index was built from another history than the store now holds.

    ``position`` is where the index stands; the store has no event there with
    the chain hash the index remembers (another store, an older backup restored,
    an index built under another plan).  :meth:`TicketIndex.rebuild` starts
    again from the log.
    """

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.field = "position"
        super().__init__(
            f"ticket index at position {position}: {reason}; rebuild it "
            "(视图与事件库不一致，请重建)"
        )


class IndexRefused(StoreError):
    """An event of the log cannot be folded by the engine (the log breaks the lifecycle).

    Nothing of the chunk is written; ``position`` is the event's place, ``cause`` the
    engine's error (what :func:`fireflow.ticket.fold` raises for that history).
    """

    def __init__(self, position: int, ticket_id: str, cause: FireflowError) -> None:
        self.position = position
        self.ticket_id = ticket_id
        self.cause = cause
        self.field = "position"
        super().__init__(
            f"ticket index: the event at position {position} (ticket {ticket_id}) cannot be "
            f"folded: {cause} (事件无法折叠)"
        )


class TicketRow(NamedTuple):
    """One ticket as the index holds it (``index.state(ticket_id)`` for the whole state).

    ``due_at`` is the instant the deadline's day ends (UTC), ``None`` without a deadline.
    A named tuple: queries build many of them, and a tuple is the cheapest immutable record.
    """

    ticket_id: str
    town: str
    community: str
    state: str
    category: str
    route: str | None
    deadline: date | None
    due_at: datetime | None
    version: int

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data (dates and instants in ISO 8601)."""
        return {
            "ticket_id": self.ticket_id,
            "town": self.town,
            "community": self.community,
            "state": self.state,
            "category": self.category,
            "route": self.route,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "version": self.version,
        }


def _us(at: datetime) -> int:
    """Microseconds since 1970 UTC of an aware instant (a pendulum one too, exactly).

    Computed from the wall time and its offset, never by converting to UTC, so that
    an instant near the ends of the calendar (0001-01-01T00:00+14:00) counts too.

    >>> from datetime import timezone
    >>> _us(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))) < 0
    True
    """
    offset = at.utcoffset()
    if offset is None:
        raise NaiveDatetime("at")
    wall = datetime(
        at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond, tzinfo=UTC
    )  # the wall time read as UTC; the offset is taken off in microseconds, not by a conversion
    return (wall - _EPOCH) // _US - offset // _US


def _from_us(us: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=us)
    except OverflowError:
        raise _corrupt("due_us", f"{us} is outside the calendar") from None


def _corrupt(column: str, reason: str) -> StoreError:
    """The error for an index row that no catch-up wrote (edited by hand): rebuild it."""
    return StoreError(
        f"ticket index: {column}: {reason}; rebuild it with --rebuild (视图数据损坏，请重建)"
    )


def _state_from(tid: object, data: object) -> TicketState:
    """A ticket's folded state as the index stored it; anything else is a corrupt row."""
    try:
        return TicketState.from_data(orjson.loads(data))  # type: ignore[arg-type]
    except (FireflowError, ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        shown = escape_for_terminal(repr(tid)[:80])
        raise _corrupt("fireflow_index_states", f"ticket {shown}: {exc}") from None


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument(field, f"expected an aware datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise NaiveDatetime(field)
    return value


def _day(value: object, field: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidArgument(field, f"expected a date, got {type(value).__name__}")
    return value


def _agencies(state: TicketState) -> list[tuple[str, str]]:
    """(role, agency) pairs of the ticket's route and escalations, sorted, no repeats."""
    found: set[tuple[str, str]] = set()
    r = state.routing
    if r is not None:
        for role in ROLES[:-1]:
            found.update((role, a) for a in r.role(role))
    found.update(("escalated_to", a) for a in state.escalated_to)
    return sorted(found)


class _Db:
    """The SQL side of an index: one connection, its lock, its dialect."""

    def __init__(
        self,
        conn: Any,
        lock: threading.RLock,
        *,
        postgres: bool,
        schema: str | None,
        run: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self.conn = conn
        self.lock = lock
        self.postgres = postgres
        self.schema = schema
        self.run = run
        self._cache: dict[str, Any] = {}

    def q(self, text: str) -> Any:
        """A statement in this dialect (only the schema, quoted, is put into the text)."""
        got = self._cache.get(text)
        if got is None:
            if self.postgres:
                from psycopg import sql  # noqa: PLC0415 (optional driver)

                got = sql.SQL(text).format(s=sql.Identifier(self.schema or "fireflow"))
            else:
                got = text.replace("{s}.", "").replace("%s", "?")
            self._cache[text] = got
        return got

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.q(text), params)

    def executemany(self, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.postgres:
            with self.conn.cursor() as cur:
                cur.executemany(self.q(text), rows)
        else:
            self.conn.executemany(self.q(text), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction holding the index's write lock."""
        if self.postgres:
            with self.conn.transaction():
                yield
            return
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise


_EVENTS_TABLES = frozenset({"events", "fireflow_meta"})


def _index_tables_only(action: int, arg1: str | None, *_: object) -> int:
    """An SQLite authorizer: no write to the store's own tables while the index writes."""
    if (
        action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE)
        and arg1 in _EVENTS_TABLES
    ) or (action == sqlite3.SQLITE_DROP_TABLE and arg1 in _EVENTS_TABLES):
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class TicketIndex:
    """Ticket views over ``store``'s log, kept in the store's database (see the module).

    ``plan`` gives the calendar that turns a deadline day into the instant it ends
    (default: the built-in ``changle-2022``).  ``temporary=True`` keeps the index in
    a private in-memory SQLite database that ends with the object; it is the
    default, and the only choice, for a :class:`~fireflow.store.memory.MemoryStore`
    and for a store opened ``readonly`` (which must not be written).  Any other
    :class:`~fireflow.store.base.EventStore` gets a temporary index too.  A new
    index starts at position 0: call :meth:`catch_up`.
    """

    def __init__(
        self,
        store: EventStore,
        *,
        plan: Plan | None = None,
        temporary: bool | None = None,
    ) -> None:
        if not isinstance(store, EventStore):
            raise InvalidArgument("store", f"expected an event store, got {type(store).__name__}")
        if plan is None:
            plan = load_plan(BUILTIN_PLAN)
        if not isinstance(plan, Plan):
            raise InvalidArgument("plan", f"expected a Plan, got {type(plan).__name__}")
        if temporary is not None and not isinstance(temporary, bool):
            raise InvalidArgument("temporary", f"expected true or false, got {temporary!r}")
        self.store = store
        self.plan = plan
        self._plan_id = str(plan.id)
        self._plan_digest = plan_digest(plan)
        self._calendar = plan.calendar
        self._due: dict[date, int] = {}
        in_store = _can_hold(store)
        if temporary is None:
            temporary = not in_store
        if not temporary and not in_store:
            raise InvalidArgument(
                "temporary",
                f"{store!r} cannot hold the index tables (a memory store, or opened "
                "read-only): use a temporary index (只读或内存事件库只能用临时视图)",
            )
        self.temporary = temporary
        self._authorize = False
        if temporary:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            lock = threading.RLock()

            def run(op: Callable[[], Any]) -> Any:
                with lock:
                    try:
                        return op()
                    except sqlite3.Error as exc:
                        raise StoreError(f"temporary ticket index: {exc}") from exc

            self._db = _Db(conn, lock, postgres=False, schema=None, run=run)
        elif isinstance(store, SQLiteStore):
            self._db = _Db(store._conn, store._lock, postgres=False, schema=None, run=store._run)
            self._authorize = True
        else:
            pg = _postgres(store)
            assert pg is not None  # _can_hold said so
            self._db = _Db(pg._conn, pg._lock, postgres=True, schema=pg.schema, run=pg._run)
        self._db.run(self._setup)

    def __repr__(self) -> str:
        where = "temporary" if self.temporary else "in the store"
        return f"TicketIndex({self.store!r}, {where})"

    def close(self) -> None:
        """Close a temporary index (the store's own connection stays with the store)."""
        if self.temporary:
            with self._db.lock:
                self._db.conn.close()

    def __enter__(self) -> TicketIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ setup

    def _guarded(self) -> AbstractContextManager[None]:
        """While the index writes to a store's SQLite file: writes to its events refused."""
        return _authorized(self._db.conn) if self._authorize else _nothing()

    def _tables_exist(self) -> bool:
        if self._db.postgres:
            row = self._db.conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL",
                (f'"{self._db.schema}".fireflow_index_meta',),
            ).fetchone()
            return bool(row and row[0])
        row = self._db.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
            "'fireflow_index_meta'"
        ).fetchone()
        return bool(row and row[0])

    def _setup(self) -> None:
        if not self._tables_exist():
            if self._db.postgres:  # one creator at a time (as PostgresStore creates its tables)
                self._db.conn.execute("SELECT pg_advisory_lock(%s)", (_DDL_LOCK,))
            try:
                with self._guarded(), self._db.transaction():
                    if not self._db.postgres or not self._tables_exist():
                        self._create()
            finally:
                if self._db.postgres and not self._db.conn.closed:
                    self._db.conn.execute("SELECT pg_advisory_unlock(%s)", (_DDL_LOCK,))
        meta = self._meta()
        if meta[0] != INDEX_FORMAT:
            raise StoreError(
                f"ticket index format {meta[0]!r} is not {INDEX_FORMAT!r} (视图格式不支持)"
            )

    def _create(self) -> None:
        for stmt in _CREATE:
            self._db.execute(stmt)
        self._db.execute(
            "INSERT INTO {s}.fireflow_index_meta (name, format, position, last_hash, "
            "plan_id, plan_digest) VALUES (%s, %s, 0, '', %s, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (_NAME, INDEX_FORMAT, self._plan_id, self._plan_digest),
        )

    def _meta(self) -> tuple[str, int, str, str, str]:
        row = self._db.execute(
            "SELECT format, position, last_hash, plan_id, plan_digest "
            "FROM {s}.fireflow_index_meta WHERE name = %s",
            (_NAME,),
        ).fetchone()
        if row is None:
            raise StoreError("ticket index: fireflow_index_meta has no row (视图损坏)")
        position = row[1]
        if type(position) is not int or position < 0:
            raise _corrupt("fireflow_index_meta.position", f"{position!r} is not a position")
        return str(row[0]), position, str(row[2]), str(row[3]), str(row[4])

    # ------------------------------------------------------------- catching up

    @property
    def position(self) -> int:
        """The next global position the index will fold (how many events it has seen)."""
        return int(self._db.run(self._meta)[1])

    def catch_up(self, max_events: int | None = None) -> int:
        """Fold the events appended since the last catch-up; return how many were folded.

        ``max_events`` stops after about that many (whole chunks of at most
        :data:`CHUNK` events, each one transaction); ``None`` goes to the end of
        the log.  Raises :class:`IndexOutOfStep` when the log no longer has the
        history the index was built from, :class:`IndexRefused` when an event
        breaks the lifecycle (nothing of its chunk written).
        """
        if max_events is not None and (
            isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1
        ):
            raise InvalidArgument("max_events", f"expected an integer >= 1, got {max_events!r}")
        done = 0
        while max_events is None or done < max_events:
            size = CHUNK if max_events is None else min(CHUNK, max_events - done)
            n = int(self._db.run(functools.partial(self._chunk, size)))
            done += n
            if n < size:
                break
        return done

    def rebuild(self) -> int:
        """Forget every row and fold the whole log again; return how many events were folded."""

        def clear() -> None:
            with self._guarded(), self._db.transaction():
                self._db.execute("DELETE FROM {s}.fireflow_index_agencies")
                self._db.execute("DELETE FROM {s}.fireflow_index_tickets")
                self._db.execute("DELETE FROM {s}.fireflow_index_states")
                self._db.execute("DELETE FROM {s}.fireflow_index_counts")
                self._db.execute("DELETE FROM {s}.fireflow_index_open")
                self._db.execute(
                    "UPDATE {s}.fireflow_index_meta SET position = 0, last_hash = '', "
                    "plan_id = %s, plan_digest = %s WHERE name = %s",
                    (self._plan_id, self._plan_digest, _NAME),
                )

        self._db.run(clear)
        return self.catch_up()

    def _lock_meta(self) -> tuple[str, int, str, str, str]:
        if self._db.postgres:
            row = self._db.execute(
                "SELECT format, position, last_hash, plan_id, plan_digest "
                "FROM {s}.fireflow_index_meta WHERE name = %s FOR UPDATE",
                (_NAME,),
            ).fetchone()
            if row is None:
                raise StoreError("ticket index: fireflow_index_meta has no row (视图损坏)")
            return str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4])
        return self._meta()

    def _chunk(self, size: int) -> int:
        with self._guarded(), self._db.transaction():
            _, position, last_hash, plan_id, digest = self._lock_meta()
            if (plan_id, digest) != (self._plan_id, self._plan_digest):
                raise IndexOutOfStep(
                    position,
                    f"it was built under plan {plan_id} ({digest[:19]}), not "
                    f"{self._plan_id} ({self._plan_digest[:19]})",
                )
            start = position
            if position > 0:
                start = position - 1  # read the last folded event again to check its hash
            events = list(itertools.islice(self.store.read_all(start), size + (start < position)))
            if position > 0:
                if not events or events[0].position != position - 1:
                    raise IndexOutOfStep(position, f"the store holds fewer than {position} events")
                if events[0].global_hash != last_hash:
                    raise IndexOutOfStep(
                        position,
                        f"the store's event at position {position - 1} has another chain hash",
                    )
                events = events[1:]
            if not events:
                return 0
            self._fold(events)
            last = events[-1]
            self._db.execute(
                "UPDATE {s}.fireflow_index_meta SET position = %s, last_hash = %s WHERE name = %s",
                (last.position + 1, last.global_hash, _NAME),
            )
            return len(events)

    def _load(self, ids: list[str]) -> dict[str, TicketState]:
        out: dict[str, TicketState] = {}
        for i in range(0, len(ids), _IN_CHUNK):
            part = ids[i : i + _IN_CHUNK]
            if self._db.postgres:
                rows = self._db.execute(
                    "SELECT ticket_id, data FROM {s}.fireflow_index_states "
                    "WHERE ticket_id = ANY(%s)",
                    (part,),
                ).fetchall()
            else:
                marks = ",".join("?" * len(part))
                rows = self._db.conn.execute(
                    "SELECT ticket_id, data FROM fireflow_index_states "  # noqa: S608 (placeholders)
                    f"WHERE ticket_id IN ({marks})",
                    part,
                ).fetchall()
            for tid, data in rows:
                out[str(tid)] = _state_from(tid, data)
        return out

    def _fold(self, events: list[StoredEvent]) -> None:
        ids = list(dict.fromkeys(se.event.ticket_id for se in events))
        states = self._load(ids)
        counts: dict[tuple[str, str], int] = {}
        opens: dict[tuple[str, str], int] = {}
        for old in states.values():  # what the touched tickets counted for before
            key = (old.town, old.state)
            counts[key] = counts.get(key, 0) - 1
            if old.state in OPEN_STATES:
                okey = (old.town, old.community)
                opens[okey] = opens.get(okey, 0) - 1
        last: dict[str, int] = {}
        for se in events:
            e = se.event
            state = states.get(e.ticket_id)
            if state is None:
                state = TicketState(e.ticket_id)
            try:
                states[e.ticket_id] = evolve(state, e)
            except FireflowError as exc:
                raise IndexRefused(se.position, e.ticket_id, exc) from None
            last[e.ticket_id] = se.position
        rows: list[tuple[Any, ...]] = []
        agencies: list[tuple[str, str, str]] = []
        states_rows: list[tuple[str, str]] = []
        for tid in ids:
            st = states[tid]
            key = (st.town, st.state)
            counts[key] = counts.get(key, 0) + 1
            if st.state in OPEN_STATES:
                okey = (st.town, st.community)
                opens[okey] = opens.get(okey, 0) + 1
            deadline = st.deadline
            rows.append(
                (
                    tid,
                    st.town,
                    st.community,
                    st.state,
                    st.category,
                    st.routing.route if st.routing else None,
                    deadline.isoformat() if deadline else None,
                    self._due_us(deadline) if deadline else None,
                    1 if st.state in OPEN_STATES else 0,
                    st.version,
                    last[tid],
                )
            )
            states_rows.append(
                (tid, orjson.dumps(st.to_data(), option=orjson.OPT_SORT_KEYS).decode("utf-8"))
            )
            agencies.extend((tid, agency, role) for role, agency in _agencies(st))
        for i in range(0, len(ids), _IN_CHUNK):
            part = ids[i : i + _IN_CHUNK]
            if self._db.postgres:
                self._db.execute(
                    "DELETE FROM {s}.fireflow_index_agencies WHERE ticket_id = ANY(%s)", (part,)
                )
            else:
                marks = ",".join("?" * len(part))
                self._db.conn.execute(
                    f"DELETE FROM fireflow_index_agencies WHERE ticket_id IN ({marks})",  # noqa: S608 (placeholders)
                    part,
                )
        self._db.executemany(_UPSERT, rows)
        self._db.executemany(_UPSERT_STATE, states_rows)
        self._db.executemany(_ADD_COUNT, [(t, s, n) for (t, s), n in counts.items() if n])
        self._db.executemany(_ADD_OPEN, [(t, c, n) for (t, c), n in opens.items() if n])
        if any(n < 0 for n in counts.values()):
            self._db.execute("DELETE FROM {s}.fireflow_index_counts WHERE n = 0")
        if any(n < 0 for n in opens.values()):
            self._db.execute("DELETE FROM {s}.fireflow_index_open WHERE n = 0")
        self._db.executemany(
            "INSERT INTO {s}.fireflow_index_agencies (ticket_id, agency, role) VALUES (%s, %s, %s)",
            agencies,
        )

    def _due_us(self, deadline: date) -> int:
        us = self._due.get(deadline)
        if us is None:
            us = self._due[deadline] = _us(self._calendar.due_instant(deadline))
        return us

    # ----------------------------------------------------------------- queries

    def _select(self, text: str, params: Sequence[Any]) -> list[Any]:
        return list(self._db.run(lambda: self._db.execute(text, params).fetchall()))

    def _order(self) -> str:
        return ' ORDER BY t.ticket_id COLLATE "C"' if self._db.postgres else " ORDER BY t.ticket_id"

    def tickets(
        self,
        *,
        town: str | None = None,
        community: str | None = None,
        state: str | None = None,
        category: str | None = None,
        agency: str | None = None,
        due_from: date | None = None,
        due_to: date | None = None,
        overdue_at: datetime | None = None,
        open_only: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TicketRow]:
        """The tickets that match every filter given, sorted by ticket id.

        ``due_from``/``due_to`` bound the deadline day (inclusive); ``overdue_at``
        keeps the tickets overdue at that aware instant; ``open_only`` the open
        hazards; ``agency`` any route role or escalation.  Bad filters raise
        :class:`~fireflow.errors.InvalidArgument` (or a subclass) naming the filter.

        Pages: ``offset`` skips that many of the sorted matches and ``limit`` keeps
        at most that many of the rest, so ``tickets(limit=l, offset=o)`` is
        ``tickets()[o:o + l]``.  The database sorts a page with a bounded top-N sort
        (SQLite's sorter with a limit, PostgreSQL's top-N heapsort): a page of ``k =
        limit + offset`` rows among ``n`` matches costs ``O(n log k)`` time and ``O(k)``
        memory, never a sort of every match.
        """
        where: list[str] = []
        params: list[Any] = []
        if town is not None:
            where.append("t.town = %s")
            params.append(check_name(town, "town"))
        if community is not None:
            where.append("t.community = %s")
            params.append(check_name(community, "community"))
        if state is not None:
            check_id(state, "state")
            if state not in STATES:
                raise InvalidArgument(
                    "state", f"unknown state {state!r}; one of {', '.join(STATES)}"
                )
            where.append("t.state = %s")
            params.append(state)
        if category is not None:
            where.append("t.category = %s")
            params.append(check_id(category, "category"))
        if agency is not None:
            where.append(
                "t.ticket_id IN (SELECT a.ticket_id FROM {s}.fireflow_index_agencies a "
                "WHERE a.agency = %s)"
            )
            params.append(check_id(agency, "agency"))
        if due_from is not None:
            where.append("t.deadline >= %s")
            params.append(_day(due_from, "due_from").isoformat())
        if due_to is not None:
            where.append("t.deadline <= %s")
            params.append(_day(due_to, "due_to").isoformat())
        if due_from is not None and due_to is not None and due_from > due_to:
            raise InvalidArgument("due_to", f"{due_to} is before due_from {due_from}")
        if overdue_at is not None:
            at = _us(_aware(overdue_at, "overdue_at"))
            marks = ", ".join(["%s"] * len(OVERDUE_SOURCES))
            where.append(f"(t.state = 'overdue' OR (t.state IN ({marks}) AND t.due_us <= %s))")
            params.extend([*OVERDUE_SOURCES, at])
        if not isinstance(open_only, bool):
            raise InvalidArgument("open_only", f"expected true or false, got {open_only!r}")
        if open_only:
            where.append("t.open = 1")
        text = _SELECT_ROWS
        if where:
            text += " WHERE " + " AND ".join(where)
        text += self._order()
        if limit is not None:
            _count(limit, "limit", 1)
            text += " LIMIT %s"
            params.append(limit)
        if _count(offset, "offset", 0):
            # SQLite takes an OFFSET only after a LIMIT (-1: none); PostgreSQL takes it alone
            alone = limit is not None or self._db.postgres
            text += " OFFSET %s" if alone else " LIMIT -1 OFFSET %s"
            params.append(offset)
        return _ticket_rows(self._select(text, params))

    def overdue(self, at: datetime, **filters: Any) -> list[TicketRow]:
        """The tickets overdue at the aware instant ``at`` (R-ESC-OVERDUE), with other filters."""
        return self.tickets(overdue_at=_aware(at, "at"), **filters)

    def get(self, ticket_id: str) -> TicketRow | None:
        """One ticket's row (``None`` when the index has not seen it)."""
        check_id(ticket_id, "ticket_id")
        rows = self._select(
            f"SELECT {_ROW} FROM {{s}}.fireflow_index_tickets WHERE ticket_id = %s",  # noqa: S608 (constant)
            (ticket_id,),
        )
        return _ticket_rows(rows)[0] if rows else None

    def state(self, ticket_id: str) -> TicketState | None:
        """One ticket's whole state as folded (``None`` when the index has not seen it)."""
        check_id(ticket_id, "ticket_id")
        rows = self._select(
            "SELECT data FROM {s}.fireflow_index_states WHERE ticket_id = %s", (ticket_id,)
        )
        return _state_from(ticket_id, rows[0][0]) if rows else None

    def states(self) -> dict[str, TicketState]:
        """Every ticket's state, by ticket id in code-point order (for checks and tests)."""
        query = "SELECT t.ticket_id, t.data FROM {s}.fireflow_index_states t"
        rows = self._select(query + self._order(), ())
        return {str(tid): _state_from(tid, data) for tid, data in rows}

    def agencies(self, ticket_id: str) -> list[tuple[str, str]]:
        """The (role, agency) pairs the ticket is indexed under, sorted."""
        check_id(ticket_id, "ticket_id")
        rows = self._select(
            "SELECT role, agency FROM {s}.fireflow_index_agencies WHERE ticket_id = %s",
            (ticket_id,),
        )
        return sorted((str(r), str(a)) for r, a in rows)

    def counts(self, *, town: str | None = None) -> list[tuple[str, str, int]]:
        """(town, state, number of tickets), sorted by town and state.

        Kept up to date by every catch-up (a row per town and state), so it costs what the
        number of towns and states costs, not the number of tickets.
        """
        text = "SELECT town, state, n FROM {s}.fireflow_index_counts WHERE n > 0"
        params: list[Any] = []
        if town is not None:
            text += " AND town = %s"
            params.append(check_name(town, "town"))
        rows = self._select(text, params)
        return sorted((str(t), str(s), int(n)) for t, s, n in rows)

    def open_hazards(self, *, town: str | None = None) -> list[tuple[str, str, int]]:
        """(town, community, open hazards) for every community with one, most first.

        Ties are broken by town and community (code-point order).
        """
        text = "SELECT town, community, n FROM {s}.fireflow_index_open WHERE n > 0"
        params: list[Any] = []
        if town is not None:
            text += " AND town = %s"
            params.append(check_name(town, "town"))
        rows = self._select(text, params)
        out = [(str(t), str(c), int(n)) for t, c, n in rows]
        return sorted(out, key=lambda r: (-r[2], r[0], r[1]))

    def count(self) -> int:
        """How many tickets the index holds."""
        return int(self._select("SELECT count(*) FROM {s}.fireflow_index_tickets", ())[0][0])


def _count(value: object, field: str, least: int) -> int:
    """A ``limit`` or ``offset``: a whole number from ``least`` to :data:`MAX_LIMIT`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidArgument(field, f"expected an integer >= {least}, got {value!r}")
    if value > MAX_LIMIT:
        raise InputLimitExceeded(field, f"{value} rows (at most {MAX_LIMIT})")
    return value


def _ticket_rows(raw: Iterable[Sequence[Any]]) -> list[TicketRow]:
    """Rows as read (text, integers) to :class:`TicketRow`; repeated days decoded once."""
    days: dict[Any, date | None] = {None: None}
    instants: dict[Any, datetime | None] = {None: None}
    out: list[TicketRow] = []
    for tid, town, community, state, category, route, deadline, due_us, version in raw:
        try:
            day = days.get(deadline)
            if day is None and deadline is not None:
                day = days[deadline] = date.fromisoformat(deadline)
            due = instants.get(due_us)
            if due is None and due_us is not None:
                due = instants[due_us] = _from_us(int(due_us))
        except (TypeError, ValueError) as exc:
            shown = escape_for_terminal(repr(tid)[:80])
            raise _corrupt("fireflow_index_tickets", f"ticket {shown}: {exc}") from None
        out.append(TicketRow(tid, town, community, state, category, route, day, due, version))
    return out


def _postgres(store: object) -> PostgresStore | None:
    """``store`` if it is a :class:`~fireflow.store.postgres.PostgresStore` (driver loaded)."""
    module = sys.modules.get("fireflow.store.postgres")
    if module is None:
        return None
    cls = module.PostgresStore
    return store if isinstance(store, cls) else None


def _can_hold(store: object) -> bool:
    """Whether the index can live in the store's own database."""
    if isinstance(store, MemoryStore):
        return False
    if isinstance(store, SQLiteStore):
        return not store.readonly
    pg = _postgres(store)
    return pg is not None and not pg.readonly


@contextmanager
def _authorized(conn: sqlite3.Connection) -> Iterator[None]:
    conn.set_authorizer(_index_tables_only)
    try:
        yield
    finally:
        conn.set_authorizer(None)


@contextmanager
def _nothing() -> Iterator[None]:
    yield
