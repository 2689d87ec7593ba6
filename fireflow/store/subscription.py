"""Subscriptions (订阅): new events as they are appended, in the global order.

:func:`subscribe` (also ``store.subscribe(...)`` on every fireflow store) yields the
:class:`~fireflow.store.base.StoredEvent` records after a position, in the one
global order, and then waits for new ones:

* **PostgreSQL**: ``LISTEN`` on its own connection; every append sends
  ``pg_notify`` inside its transaction, so the wake-up arrives when (and only
  when) the events are committed.  Positions become visible in order (appends
  commit one at a time under the global head's lock), so reading from the next
  position after a wake-up never skips an event.  A lost wake-up costs at most
  ``poll_interval`` seconds: the subscriber reads again that often anyway.  A
  lost connection (the server restarted) raises
  :class:`~fireflow.store.errors.StoreUnavailable` inside the subscription, which
  waits (doubling from ``poll_interval``, at most 2 s), reopens the listening
  connection (the store reopens its own on its next call) and reads on from the
  last event delivered; after :data:`RECONNECT_ATTEMPTS` failures in a row it
  raises :class:`~fireflow.store.errors.StoreUnavailable` to the caller, who
  subscribes again once the server is back.
* **SQLite**: polling, every ``poll_interval`` seconds (:data:`POLL_INTERVAL`,
  0.2 s by default): one indexed query for the last position.  A store opened
  ``readonly`` from a file no writer had open is read as an immutable file
  and cannot see new appends: subscribing to it raises
  :class:`~fireflow.store.errors.StoreError` (open the store read-write, which
  appends nothing, or while a writer has it open).
* **MemoryStore**: a condition variable notified by every append.
* Any other :class:`~fireflow.store.base.EventStore`: polling (a store supplies
  its own way of waiting with a ``new_waiter(stop, interval)`` method returning a
  :class:`Waiter`; :class:`Subscribable` gives every store ``subscribe()``).

Every read starts at the last event delivered (or the one ``after`` names) and
checks that the store still holds it with the same chain hash: a store restored
from an older backup, truncated or replaced ends the subscription with
:class:`~fireflow.store.errors.CheckpointMismatch` (both hashes named) instead of
delivering another history's events at positions the subscriber has passed.

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

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol, cast

import attrs

from fireflow import output
from fireflow._input import read_limited
from fireflow.errors import FireflowError, InvalidArgument
from fireflow.store.base import (
    MAX_POSITION,
    EventStore,
    StoredEvent,
    check_id,
    check_position,
)
from fireflow.store.errors import CheckpointMismatch, StoreUnavailable

__all__ = [
    "CHECKPOINT_FORMAT",
    "MAX_CHECKPOINT_BYTES",
    "MAX_POSITION",
    "POLL_INTERVAL",
    "RECONNECT_ATTEMPTS",
    "CheckpointMismatch",
    "CheckpointStore",
    "Consumer",
    "FileCheckpoint",
    "PollWaiter",
    "Position",
    "Subscribable",
    "Waiter",
    "check_waiter_args",
    "subscribe",
]

#: Seconds between two looks at an SQLite store (and the longest a PostgreSQL
#: subscriber waits without a wake-up before it reads again).
POLL_INTERVAL = 0.2
#: The ``format`` of a consumer's checkpoint file.
CHECKPOINT_FORMAT = "fireflow.consumer/1"
#: The largest checkpoint file read.
MAX_CHECKPOINT_BYTES = 4096
#: How many times a subscription reopens a lost connection (the server restarted)
#: before it gives up with :class:`~fireflow.store.errors.StoreUnavailable`.
RECONNECT_ATTEMPTS = 20
_MAX_POLL = 60.0
_HEX = frozenset("0123456789abcdef")
#: The longest pause between two reconnection attempts, in seconds.
_MAX_BACKOFF = 2.0


def _seconds(value: object, field: str, *, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= low:
        raise InvalidArgument(field, f"expected a number of seconds >= {low}, got {value!r}")
    if value > 10**7:
        raise InvalidArgument(field, f"{value} seconds is more than 10,000,000")
    return float(value)


class Waiter(Protocol):
    """How a subscription waits for new events; each store supplies its own (``new_waiter``)."""

    def wait(self, position: int, timeout: float) -> None:
        """Return when an event at ``position`` may be there, or after ``timeout`` seconds."""
        ...

    def reconnect(self) -> None:
        """Open again what a lost connection closed (nothing for stores without one)."""
        ...

    def close(self) -> None:
        """Release what the waiter holds."""
        ...


class PollWaiter:
    """The waiter of stores that offer nothing better: wait ``interval``, then read again."""

    def __init__(self, stop: threading.Event, interval: float) -> None:
        self.stop = stop
        self.interval = interval

    def wait(self, position: int, timeout: float) -> None:
        """Sleep until the next poll (or ``stop``)."""
        self.stop.wait(min(timeout, self.interval))

    def reconnect(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        """Nothing to release."""


def _waiter(store: EventStore, stop: threading.Event, interval: float) -> Waiter:
    make = getattr(store, "new_waiter", None)
    if callable(make):
        waiter: Waiter = make(stop, interval)
        return waiter
    return PollWaiter(stop, interval)


class Subscribable:
    """``subscribe()`` for a store (memory, SQLite, PostgreSQL inherit it)."""

    def subscribe(
        self,
        after: int | None = None,
        *,
        stop: threading.Event | None = None,
        idle_timeout: float | None = None,
        poll_interval: float | None = None,
    ) -> Iterator[StoredEvent]:
        """New events after ``after`` as they come (:func:`subscribe`)."""
        return subscribe(
            cast("EventStore", self),
            after,
            stop=stop,
            idle_timeout=idle_timeout,
            poll_interval=POLL_INTERVAL if poll_interval is None else poll_interval,
        )

    def new_waiter(self, stop: threading.Event, interval: float) -> Waiter:
        """The waiter of this store's subscriptions (polling unless the store overrides it)."""
        check_waiter_args(stop, interval)
        return PollWaiter(stop, interval)


def check_waiter_args(stop: object, interval: object) -> None:
    """What a store's ``new_waiter`` is given: a :class:`threading.Event` and seconds > 0."""
    if not isinstance(stop, threading.Event):
        raise InvalidArgument("stop", f"expected a threading.Event, got {type(stop).__name__}")
    _seconds(interval, "interval", low=0.001)


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
    return _subscription(store, start, None, stop or threading.Event(), idle, interval, clock)


def _subscription(
    store: EventStore,
    position: int,
    seen: str | None,
    stop: threading.Event,
    idle: float | None,
    interval: float,
    clock: Callable[[], float],
    name: str | None = None,
) -> Iterator[StoredEvent]:
    """Deliver from ``position`` on; ``seen`` is the chain hash of the event before it.

    Every read starts one event back, at the last event delivered (or named by
    ``after``), and checks that it is still there with the chain hash it had: a
    store restored from an older backup, truncated or replaced stops the
    subscription with :class:`~fireflow.store.errors.CheckpointMismatch` instead
    of delivering another history's events at the positions it reuses.
    """
    waiter = _waiter(store, stop, interval)  # listening before the first read: nothing missed
    failures = 0
    try:
        last_seen = clock()
        while not stop.is_set():
            got = False
            previous = position - 1
            checked = previous < 0
            try:
                for se in store.read_all(max(previous, 0)):
                    if not checked:
                        checked = True
                        if se.position == previous:
                            if seen is not None and se.global_hash != seen:
                                raise CheckpointMismatch(
                                    name,
                                    previous,
                                    "the event there has another chain hash: the store was "
                                    "restored, rewritten or replaced",
                                    expected=seen,
                                    found=se.global_hash,
                                )
                            seen = se.global_hash
                            continue
                        if seen is not None:
                            raise CheckpointMismatch(
                                name, previous, "the store no longer holds it", expected=seen
                            )
                    yield se
                    position = se.position + 1
                    seen = se.global_hash
                    got = True
                    if stop.is_set():
                        return
                if not checked and seen is not None:
                    count = store.count()
                    raise CheckpointMismatch(
                        name,
                        previous,
                        f"the store holds {count} events: it was restored from an older "
                        "backup or truncated",
                        expected=seen,
                    )
                now = clock()
                if got:
                    last_seen = now
                remaining = interval if idle is None else idle - (now - last_seen)
                if remaining <= 0:
                    return
                waiter.wait(position, remaining)
                failures = 0
            except StoreUnavailable:
                # the server went away (a restart): wait, reopen, read again from the
                # last event delivered; give up after RECONNECT_ATTEMPTS in a row
                failures += 1
                if failures > RECONNECT_ATTEMPTS:
                    raise
                stop.wait(min(_MAX_BACKOFF, interval * 2**failures))
                with contextlib.suppress(StoreUnavailable):  # still away: counted next time
                    waiter.reconnect()
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
        if not os.path.lexists(self.path):
            return None
        if os.path.islink(self.path) and not os.path.exists(self.path):
            # a dangling link is not "no checkpoint": that would deliver everything again
            raise InvalidArgument(
                "checkpoint",
                f"{self.path}: a symbolic link to a missing file, not a checkpoint "
                "(检查点是失效的符号链接)",
            )
        raw = read_limited(self.path, MAX_CHECKPOINT_BYTES, "checkpoint")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
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
        if (
            not isinstance(global_hash, str)
            or len(global_hash) != 64
            or not set(global_hash) <= _HEX
        ):
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
            raise CheckpointMismatch(
                self.name, last.position, str(exc), expected=last.global_hash
            ) from None
        if found is None or found.position != last.position:
            raise CheckpointMismatch(
                self.name,
                last.position,
                f"the store holds {self.store.count()} events",
                expected=last.global_hash,
            )
        if found.global_hash != last.global_hash or found.event.event_id != last.event_id:
            raise CheckpointMismatch(
                self.name,
                last.position,
                f"the event there ({found.event.event_id!r}) has another chain hash or id "
                f"than the one committed ({last.event_id!r})",
                expected=last.global_hash,
                found=found.global_hash,
            )

    def events(
        self,
        *,
        stop: threading.Event | None = None,
        idle_timeout: float | None = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> Iterator[StoredEvent]:
        """Subscribe after the last committed event (see :func:`subscribe`).

        The committed event's chain hash goes with it: the first read checks the
        event there is still that one, every later read checks the last event
        delivered (:class:`~fireflow.store.errors.CheckpointMismatch` otherwise).
        """
        subscribe(self.store, self.after, idle_timeout=idle_timeout, poll_interval=poll_interval)
        last = self._last
        return _subscription(
            self.store,
            0 if last is None else last.position + 1,
            None if last is None else last.global_hash,
            stop or threading.Event(),
            None if idle_timeout is None else _seconds(idle_timeout, "idle_timeout"),
            min(_seconds(poll_interval, "poll_interval", low=0.001), _MAX_POLL),
            time.monotonic,
            self.name,
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
