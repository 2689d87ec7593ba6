"""An event store in memory: for tests, notebooks, simulations and examples.

It keeps the same contract as the SQLite store (same checks, same chains, same
bytes), so a checkpoint of a memory store equals the checkpoint of an SQLite
store that received the same appends.  Nothing survives the process.

>>> from datetime import datetime, timezone
>>> from fireflow.events import Actor, Event
>>> store = MemoryStore()
>>> at = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)
>>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify", at=at,
...           actor=Actor("property"))
>>> r = store.append("T1", [e], expected_version=0)
>>> r.version, r.positions, store.read("T1") == [e]
(1, (0,), True)
>>> store.append("T1", [e], expected_version=0).replayed   # the same event again: stored once
True
>>> store.count()
1
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence

from fireflow.events import Event
from fireflow.store.base import (
    AppendResult,
    Batch,
    StoredEvent,
    StoredRow,
    check_id,
    check_position,
    prepare_batch,
    settle,
    stored_event,
)
from fireflow.store.chain import GENESIS, decode_event, extend
from fireflow.store.subscription import PollWaiter, Subscribable, Waiter, check_waiter_args

__all__ = ["MemoryStore"]


class MemoryStore(Subscribable):
    """An :class:`~fireflow.store.base.EventStore` held in memory (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Notified after every append that stored something (subscribers wait on it).
        self._changed = threading.Condition(self._lock)
        self._rows: list[StoredRow] = []
        self._events: list[Event] = []
        self._by_ticket: dict[str, list[int]] = {}
        self._by_id: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(count={len(self._rows)})"

    def new_waiter(self, stop: threading.Event, interval: float) -> Waiter:
        """Subscriptions wake on the condition every append notifies."""
        check_waiter_args(stop, interval)
        return _MemoryWaiter(self, interval)

    # ------------------------------------------------------------------ write

    def append(
        self, ticket_id: str, events: Sequence[Event], expected_version: int
    ) -> AppendResult:
        """Append one ticket's batch, all or nothing, if its version is ``expected_version``."""
        return self.append_many([(ticket_id, events, expected_version)])[0]

    def append_many(self, batches: Iterable[Batch]) -> list[AppendResult]:
        """Append several batches in one all-or-nothing step."""
        prepared = [(t, prepare_batch(t, evs, v), v) for t, evs, v in batches]
        with self._lock:
            staged: list[StoredRow] = []
            staged_ids: dict[str, StoredRow] = {}
            staged_heads: dict[str, tuple[int, str]] = {}
            results: list[AppendResult] = []
            g_head = self._rows[-1].global_hash if self._rows else GENESIS
            position = len(self._rows)
            for ticket_id, batch, expected in prepared:
                found: dict[str, StoredRow] = {}
                for e, _ in batch:
                    row = staged_ids.get(e.event_id)
                    if row is None and e.event_id in self._by_id:
                        row = self._rows[self._by_id[e.event_id]]
                    if row is not None:
                        found[e.event_id] = row
                version, head = staged_heads.get(ticket_id) or self._head_of(ticket_id)
                done = settle(ticket_id, batch, expected, version, found)
                if done is not None:
                    results.append(done)
                    continue
                rows = extend(
                    ticket_id, batch, position=position, ticket_head=head, global_head=g_head
                )
                staged.extend(rows)
                staged_ids.update((r.event_id, r) for r in rows)
                staged_heads[ticket_id] = (rows[-1].seq, rows[-1].ticket_hash)
                position += len(rows)
                g_head = rows[-1].global_hash
                results.append(
                    AppendResult(
                        ticket_id=ticket_id,
                        version=rows[-1].seq,
                        positions=tuple(r.position for r in rows),
                        head=rows[-1].ticket_hash,
                        global_head=rows[-1].global_hash,
                    )
                )
            # decoded copies: what read() returns is what the bytes say, as in SQLite
            decoded = [decode_event(r.data, r.position) for r in staged]
            for row, event in zip(staged, decoded, strict=True):
                self._rows.append(row)
                self._events.append(event)
                self._by_ticket.setdefault(row.ticket_id, []).append(row.position)
                self._by_id[row.event_id] = row.position
            if staged:
                self._changed.notify_all()
            return results

    def _head_of(self, ticket_id: str) -> tuple[int, str]:
        positions = self._by_ticket.get(ticket_id)
        if not positions:
            return 0, GENESIS
        row = self._rows[positions[-1]]
        return row.seq, row.ticket_hash

    # ------------------------------------------------------------------- read
    def read(self, ticket_id: str) -> list[Event]:
        """One ticket's events in ``seq`` order (empty for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        with self._lock:
            return [self._events[p] for p in self._by_ticket.get(ticket_id, ())]

    def read_all(self, from_position: int = 0) -> Iterator[StoredEvent]:
        """Every event from ``from_position`` on, in the global order."""
        check_position(from_position)
        with self._lock:
            rows = self._rows[from_position:]
            events = self._events[from_position:]
        for row, event in zip(rows, events, strict=True):
            yield stored_event(row.position, event, row.ticket_hash, row.global_hash)

    def rows(self, from_position: int = 0) -> Iterator[StoredRow]:
        """The stored rows from ``from_position`` on, undecoded."""
        check_position(from_position)
        with self._lock:
            rows = self._rows[from_position:]
        yield from rows

    def tickets(self) -> list[str]:
        """The ids of every ticket with at least one event, sorted."""
        with self._lock:
            return sorted(self._by_ticket)

    def version(self, ticket_id: str) -> int:
        """The ticket's version (0 for an unknown ticket)."""
        check_id(ticket_id, "ticket_id")
        with self._lock:
            return self._head_of(ticket_id)[0]

    def head(self, ticket_id: str) -> str:
        """The ticket's chain hash (:data:`~fireflow.store.chain.GENESIS` for none)."""
        check_id(ticket_id, "ticket_id")
        with self._lock:
            return self._head_of(ticket_id)[1]

    def count(self) -> int:
        """How many events the store holds."""
        with self._lock:
            return len(self._rows)


class _MemoryWaiter(PollWaiter):
    """Wait on the store's condition (notified by every append) instead of sleeping."""

    def __init__(self, store: MemoryStore, interval: float) -> None:
        super().__init__(threading.Event(), interval)
        self.store = store

    def wait(self, position: int, timeout: float) -> None:
        """Return when the store holds ``position`` or after ``timeout`` (at most the interval)."""
        store = self.store
        with store._changed:
            store._changed.wait_for(
                lambda: len(store._rows) > position, min(timeout, self.interval)
            )
