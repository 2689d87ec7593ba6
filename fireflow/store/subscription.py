"""Subscriptions (订阅): new events as they are appended, in the global order.

:func:`subscribe` (also ``store.subscribe(...)`` on every fireflow store) yields the
:class:`~fireflow.store.base.StoredEvent` records after a position, in the one
global order, and then waits for new ones:

* **PostgreSQL**: ``LISTEN`` on its own connection; every append sends
  ``pg_notify`` inside its transaction, so the wake-up arrives when (and only
  when) the events are committed.  Positions become visible in order (appends
  commit one at a time under the global head's lock), so reading from the next
  position after a wake-up never skips an event.  A wake-up that is lost (a
  dropped connection) costs at most ``poll_interval`` seconds: the subscriber
  reads again that often anyway.
* **SQLite**: polling, every ``poll_interval`` seconds (:data:`POLL_INTERVAL`,
  0.2 s by default): one indexed query for the last position.  A store opened
  ``readonly`` from a file no writer had open is read as an immutable file
  and cannot see new appends: subscribing to it raises
  :class:`~fireflow.store.errors.StoreError` (open the store read-write, which
  appends nothing, or while a writer has it open).
* **MemoryStore**: a condition variable notified by every append.
* Any other :class:`~fireflow.store.base.EventStore`: polling ``count()``.

A subscription ends when ``stop`` (a :class:`threading.Event`) is set, or after
``idle_timeout`` seconds without a new event, or when the caller stops iterating
(closing the generator closes the listening connection).

:class:`Consumer` keeps a consumer's place across crashes.  Its checkpoint (a
:class:`FileCheckpoint`: a small JSON file written whole or not at all through
:mod:`fireflow.output`) holds the position and chain hash of the last event the
consumer **committed**.  The loop is: receive an event, handle it, ``commit`` it.
A consumer killed between handling and committing receives that event again
when it restarts: delivery is **at least once**, and a handler must be
idempotent by ``event.event_id`` (the example ``examples/hotline_consumer.py``
skips ids it has already forwarded).  No committed event is ever delivered
again, and none after it is skipped.  The checkpoint also remembers the chain
hash of its event: a consumer pointed at another store, or at a store restored
from an older backup, is refused with :class:`CheckpointMismatch` instead of
silently skipping or repeating history.

>>> import tempfile, pathlib, threading
>>> from fireflow.store import MemoryStore
>>> from fireflow.testing.store_contract import contract_history
>>> store = MemoryStore()
>>> _ = store.append("T1", contract_history("T1", 3), 0)
>>> [se.position for se in store.subscribe(after=0, idle_timeout=0.01)]
[1, 2]
>>> tmp = tempfile.TemporaryDirectory()
>>> consumer = Consumer(store, "hotline", FileCheckpoint(pathlib.Path(tmp.name) / "hotline.json"))
>>> for se in consumer.events(idle_timeout=0.01):
...     consumer.commit(se)       # after handling it
...     if se.position == 1:
...         break                 # as if the process died here
>>> consumer = Consumer(store, "hotline", FileCheckpoint(pathlib.Path(tmp.name) / "hotline.json"))
>>> consumer.after, [se.position for se in consumer.events(idle_timeout=0.01)]
(1, [2])
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs

from fireflow import output
from fireflow._input import read_limited
from fireflow.errors import FireflowError, InvalidArgument
from fireflow.store.base import EventStore, StoredEvent, check_id, check_position
from fireflow.store.errors import StoreError
from fireflow.store.memory import MemoryStore
from fireflow.store.sqlite import SQLiteStore

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "POLL_INTERVAL",
    "CheckpointMismatch",
    "CheckpointStore",
    "Consumer",
    "FileCheckpoint",
    "Position",
    "subscribe",
]

#: Seconds between two looks at an SQLite store (and the longest a PostgreSQL
#: subscriber waits without a wake-up before it reads again).
POLL_INTERVAL = 0.2
#: The ``format`` of a consumer's checkpoint file.
CHECKPOINT_FORMAT = "fireflow.consumer/1"
#: The largest checkpoint file read.
MAX_CHECKPOINT_BYTES = 4096
_MAX_POLL = 60.0


def _seconds(value: object, field: str, *, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= low:
        raise InvalidArgument(field, f"expected a number of seconds >= {low}, got {value!r}")
    if value > 10**7:
        raise InvalidArgument(field, f"{value} seconds is more than 10,000,000")
    return float(value)


class _Waiter(Protocol):
    def wait(self, position: int, timeout: float) -> None: ...

    def close(self) -> None: ...


class _PollWaiter:
    def __init__(self, stop: threading.Event, interval: float) -> None:
        self.stop = stop
        self.interval = interval

    def wait(self, position: int, timeout: float) -> None:
        self.stop.wait(min(timeout, self.interval))

    def close(self) -> None:
        pass


class _MemoryWaiter:
    def __init__(self, store: MemoryStore, interval: float) -> None:
        self.store = store
        self.interval = interval

    def wait(self, position: int, timeout: float) -> None:
        rows = self.store._rows
        with self.store._changed:
            self.store._changed.wait_for(lambda: len(rows) > position, min(timeout, self.interval))

    def close(self) -> None:
        pass


class _PostgresWaiter:
    """A connection of its own that LISTENs to the store's channel."""

    def __init__(self, store: Any, interval: float) -> None:
        import psycopg  # noqa: PLC0415 (optional driver)
        from psycopg import sql  # noqa: PLC0415

        from fireflow.store.postgres import NOTIFY_CHANNEL  # noqa: PLC0415

        self.interval = interval
        self.prefix = f"{store.schema} "
        try:
            self.conn = psycopg.connect(store._conninfo, autocommit=True, connect_timeout=10)
            self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
        except psycopg.Error as exc:
            raise StoreError(f"{store.target}: cannot listen for new events: {exc}") from None
        self._error = psycopg.Error

    def wait(self, position: int, timeout: float) -> None:
        try:
            for note in self.conn.notifies(timeout=min(timeout, self.interval)):
                if note.payload.startswith(self.prefix):
                    return
        except self._error as exc:
            raise StoreError(f"the listening connection failed: {exc}") from None

    def close(self) -> None:
        self.conn.close()


def _waiter(store: EventStore, stop: threading.Event, interval: float) -> _Waiter:
    if isinstance(store, MemoryStore):
        return _MemoryWaiter(store, interval)
    if isinstance(store, SQLiteStore):
        if store._identity is not None:
            raise StoreError(
                f"{store.path}: opened read-only as an immutable file, it cannot see new "
                "appends; open it read-write (nothing is appended) or while a writer has it "
                "open (只读不可变打开，无法订阅)"
            )
        return _PollWaiter(stop, interval)
    module = __import__("sys").modules.get("fireflow.store.postgres")
    if module is not None and isinstance(store, module.PostgresStore):
        return _PostgresWaiter(store, interval)
    return _PollWaiter(stop, interval)


def subscribe(
    store: EventStore,
    after: int | None = None,
    *,
    stop: threading.Event | None = None,
    idle_timeout: float | None = None,
    poll_interval: float = POLL_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StoredEvent]:
    """The events after position ``after`` (all of them for ``None``), then new ones as they come.

    Ends when ``stop`` is set, after ``idle_timeout`` seconds without a new event,
    or when the caller stops iterating.  ``poll_interval`` is how often an SQLite
    store is polled (and the longest any wait lasts before the stop flag and the
    log are looked at again).  ``clock`` measures the idle time.
    """
    if not isinstance(store, EventStore):
        raise InvalidArgument("store", f"expected an event store, got {type(store).__name__}")
    start = 0 if after is None else check_position(after, "after") + 1
    idle = None if idle_timeout is None else _seconds(idle_timeout, "idle_timeout")
    interval = _seconds(poll_interval, "poll_interval", low=0.001)
    interval = min(interval, _MAX_POLL)
    if stop is not None and not isinstance(stop, threading.Event):
        raise InvalidArgument("stop", f"expected a threading.Event, got {type(stop).__name__}")
    return _subscription(store, start, stop or threading.Event(), idle, interval, clock)


def _subscription(
    store: EventStore,
    position: int,
    stop: threading.Event,
    idle: float | None,
    interval: float,
    clock: Callable[[], float],
) -> Iterator[StoredEvent]:
    waiter = _waiter(store, stop, interval)  # listening before the first read: nothing missed
    try:
        last_seen = clock()
        while not stop.is_set():
            got = False
            for se in store.read_all(position):
                yield se
                position = se.position + 1
                got = True
                if stop.is_set():
                    return
            now = clock()
            if got:
                last_seen = now
            remaining = interval if idle is None else idle - (now - last_seen)
            if remaining <= 0:
                return
            waiter.wait(position, remaining)
    finally:
        waiter.close()


# --------------------------------------------------------------------------- #
# Consumers and their checkpoints


@attrs.frozen
class Position:
    """The last event a consumer committed: its global position and chain hash."""

    position: int
    global_hash: str
    event_id: str


class CheckpointMismatch(StoreError):
    """The consumer's checkpoint names an event the store does not hold (another history)."""

    def __init__(self, name: str, position: int, reason: str) -> None:
        self.name = name
        self.position = position
        self.field = "checkpoint"
        super().__init__(
            f"consumer {name}: its checkpoint at position {position} does not match the "
            f"store: {reason} (消费者检查点与事件库不符)"
        )


class CheckpointStore(Protocol):
    """Where a consumer's position is kept (a file, a table): load and save, atomically."""

    def load(self, name: str) -> Position | None:
        """The last committed position of consumer ``name`` (``None``: it has committed none)."""
        ...

    def save(self, name: str, position: Position) -> None:
        """Record ``position`` as committed, whole or not at all."""
        ...


class FileCheckpoint:
    """One consumer's checkpoint in a small JSON file, replaced atomically on each save.

    The file holds ``{"format", "name", "position", "global_hash", "event_id"}``;
    :func:`fireflow.output.write_bytes` writes it beside the destination, flushes,
    syncs and renames, so a crash leaves the old or the new checkpoint, never a
    torn one.  A file for another consumer name, or not in this format, raises
    :class:`~fireflow.errors.InvalidArgument` naming the field.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.path = os.fspath(path)
        except TypeError:
            raise InvalidArgument(
                "path", f"expected a file path, got {type(path).__name__}"
            ) from None

    def __repr__(self) -> str:
        return f"FileCheckpoint({self.path!r})"

    def load(self, name: str) -> Position | None:
        """The committed position in the file (``None`` when there is no file yet)."""
        if not os.path.exists(self.path):
            return None
        raw = read_limited(self.path, MAX_CHECKPOINT_BYTES, "checkpoint")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidArgument("checkpoint", f"{self.path}: not a JSON checkpoint") from None
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            raise InvalidArgument("checkpoint.format", f"{self.path}: expected {CHECKPOINT_FORMAT}")
        if data.get("name") != name:
            raise InvalidArgument(
                "checkpoint.name",
                f"{self.path}: the checkpoint of {data.get('name')!r}, not {name!r}",
            )
        position = check_position(data.get("position"), "checkpoint.position")
        global_hash = data.get("global_hash")
        if not isinstance(global_hash, str) or len(global_hash) != 64:
            raise InvalidArgument("checkpoint.global_hash", "expected 64 hex digits")
        event_id = check_id(data.get("event_id"), "checkpoint.event_id")
        return Position(position, global_hash, event_id)

    def save(self, name: str, position: Position) -> None:
        """Write the file whole (atomic replace through :mod:`fireflow.output`)."""
        data = {
            "format": CHECKPOINT_FORMAT,
            "name": name,
            "position": position.position,
            "global_hash": position.global_hash,
            "event_id": position.event_id,
        }
        text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
        output.write_bytes(self.path, text.encode("utf-8"))


class Consumer:
    """A named consumer of ``store``'s events that resumes after its last commit.

    ``after`` is the position of the last committed event (``None`` before the
    first).  :meth:`events` subscribes from there; :meth:`commit` records an
    event as done.  At-least-once: an event handled but not committed when the
    process died is delivered again; handle events idempotently by event id.
    """

    def __init__(self, store: EventStore, name: str, checkpoints: CheckpointStore) -> None:
        if not isinstance(store, EventStore):
            raise InvalidArgument("store", f"expected an event store, got {type(store).__name__}")
        self.store = store
        self.name = check_id(name, "name")
        self.checkpoints = checkpoints
        self._last = checkpoints.load(self.name)
        if self._last is not None:
            self._check(self._last)

    def __repr__(self) -> str:
        return f"Consumer({self.name!r}, after={self.after})"

    @property
    def after(self) -> int | None:
        """The position of the last committed event (``None``: none committed yet)."""
        return None if self._last is None else self._last.position

    def _check(self, last: Position) -> None:
        try:
            found = next(self.store.read_all(last.position), None)
        except FireflowError as exc:
            raise CheckpointMismatch(self.name, last.position, str(exc)) from None
        if found is None or found.position != last.position:
            raise CheckpointMismatch(
                self.name, last.position, f"the store holds {self.store.count()} events"
            )
        if found.global_hash != last.global_hash or found.event.event_id != last.event_id:
            raise CheckpointMismatch(
                self.name, last.position, "the event there has another chain hash or id"
            )

    def events(
        self,
        *,
        stop: threading.Event | None = None,
        idle_timeout: float | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> Iterator[StoredEvent]:
        """Subscribe after the last committed event (see :func:`subscribe`)."""
        return subscribe(
            self.store,
            self.after,
            stop=stop,
            idle_timeout=idle_timeout,
            poll_interval=poll_interval,
        )

    def commit(self, event: StoredEvent) -> None:
        """Record ``event`` (and every event before it) as handled, durably."""
        if not isinstance(event, StoredEvent):
            raise InvalidArgument("event", f"expected a StoredEvent, got {type(event).__name__}")
        if self.after is not None and event.position <= self.after:
            raise InvalidArgument(
                "event",
                f"position {event.position} is not after the last commit ({self.after})",
            )
        last = Position(event.position, event.global_hash, event.event.event_id)
        self.checkpoints.save(self.name, last)
        self._last = last
