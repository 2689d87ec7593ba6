"""The event store contract as pytest tests, for any backend (needs the ``testing`` extra).

A backend is described by a :class:`StoreBackend`: how to make a fresh empty store,
how to open another handle on the same store (another connection, another
process's view), how to open a read-only reader, and how to tamper with a stored
row the way someone with write access to the database could.  Subclass
:class:`StoreContract` in a test module and give it a ``backend`` fixture; pytest
then runs every contract test against that backend::

    import pytest
    from fireflow.testing.store_contract import StoreBackend, StoreContract

    class MyBackend(StoreBackend):
        def create(self):
            return MyStore(...)            # a fresh, empty store

    class TestMyStore(StoreContract):
        @pytest.fixture
        def backend(self):
            b = MyBackend()
            yield b
            b.close_all()

The tests: an empty store; append and read; one global order; idempotent
re-sends; expected-version conflicts; event ids stored with other content;
all-or-nothing batches; input limits naming their field; per-ticket and global
hash chains recomputed from the documented formulas (and equal to the
:class:`~fireflow.store.memory.MemoryStore`'s rows, so any two conforming
backends give the same heads and checkpoints); checkpoints; concurrent writers of
one version with exactly one winner; and, where the backend offers them, tampering
found by :func:`~fireflow.store.chain.verify` and read-only readers that refuse
to append.  fireflow runs it on memory, SQLite and PostgreSQL
(tests/test_store_contract.py).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow.errors import FireflowError, InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.events import MAX_DEPTH, MAX_PAYLOAD_BYTES, Actor, Event, Evidence, canonical_bytes
from fireflow.store.base import MAX_BATCH, EventStore, StoredRow
from fireflow.store.chain import GENESIS, checkpoint, verify
from fireflow.store.errors import (
    ConcurrencyConflict,
    DuplicateEventId,
    StoreError,
    VerificationFailed,
)
from fireflow.store.memory import MemoryStore

__all__ = [
    "HeadRowContract",
    "ReaderContract",
    "StoreBackend",
    "StoreContract",
    "TamperContract",
    "contract_event",
    "contract_history",
]

AT = datetime(2022, 3, 21, 10, tzinfo=timezone(timedelta(hours=8)))
_KINDS = ("report", "route", "set_deadline", "rectify", "apply_reinspection", "recheck_pass")


def contract_event(tid: str = "T1", seq: int = 1, **changes: Any) -> Event:
    """An event for ticket ``tid`` at ``seq`` (Chinese text, evidence, rule ids included)."""
    fields: dict[str, Any] = {
        "event_id": f"{tid}/{seq}",
        "ticket_id": tid,
        "seq": seq,
        "kind": _KINDS[(seq - 1) % len(_KINDS)],
        "at": AT + timedelta(hours=seq),
        "actor": Actor("property", "陈经理"),
        "payload": {"reason": "楼道堆物", "n": seq, "where": {"town": "金峰镇"}},
        "evidence": (Evidence("photo_before", "b" * 64, "楼道 Café"),),
        "rules": ("R-3.2",),
    }
    fields.update(changes)
    return Event(**fields)


def contract_history(tid: str, length: int) -> list[Event]:
    """``length`` events of one ticket, ``seq`` 1 to ``length``."""
    return [contract_event(tid, seq) for seq in range(1, length + 1)]


class StoreBackend:
    """How the contract makes and reaches stores of one backend.

    Override :meth:`create`; override :meth:`open_again`, :meth:`open_reader` and
    :meth:`tamper` where the backend can (the contract's matching tests run only
    when the class attribute ``readers`` / ``tampering`` is true).  Every store
    handed out is closed by :meth:`close_all`.
    """

    #: Whether :meth:`open_reader` gives a read-only handle.
    readers = False
    #: Whether :meth:`tamper` can change a stored row.
    tampering = False
    #: Whether the store keeps a head row (``head_row()``) that :meth:`tamper_head` can move.
    head_rows = False

    def __init__(self) -> None:
        self.opened: list[EventStore] = []

    def create(self) -> EventStore:
        """A fresh, empty store."""
        raise NotImplementedError

    def open_again(self, store: EventStore) -> EventStore:
        """Another handle on the same store (the same object where there is no other)."""
        return store

    def open_reader(self, store: EventStore) -> EventStore:
        """A read-only handle on the same store."""
        raise NotImplementedError

    def tamper(self, store: EventStore, position: int, column: str, value: object) -> None:
        """Overwrite ``column`` of the row at ``position`` behind the store's back."""
        raise NotImplementedError

    def tamper_head(self, store: EventStore, next_position: int, global_hash: str) -> None:
        """Move the store's head row behind its back (backends with ``head_rows``)."""
        raise NotImplementedError

    def keep(self, store: EventStore) -> EventStore:
        """Remember ``store`` for :meth:`close_all` and return it."""
        if all(s is not store for s in self.opened):
            self.opened.append(store)
        return store

    def close_all(self) -> None:
        """Close every store handed out."""
        while self.opened:
            close: Callable[[], None] | None = getattr(self.opened.pop(), "close", None)
            if close is not None:
                close()


# The backend fixture is function-scoped but each example makes its own store; each
# backend's subclass runs the same method (a different executor, on purpose).
_ONE_EXAMPLE_SET = settings(
    max_examples=15,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors],
)


@st.composite
def _plans(draw: st.DrawFn) -> list[tuple[str, int, list[Event]]]:
    """Batches of 1-3 tickets, each history cut at random, interleaved at random."""
    n = draw(st.integers(1, 3))
    per_ticket = []
    for k in range(n):
        tid = f"CL-{k}"
        length = draw(st.integers(1, 6))
        cuts = sorted(draw(st.sets(st.integers(1, length), max_size=2)) - {length})
        bounds = [0, *cuts, length]
        h = contract_history(tid, length)
        per_ticket.append([(tid, lo, h[lo:hi]) for lo, hi in itertools.pairwise(bounds)])
    order = draw(st.permutations([i for i, b in enumerate(per_ticket) for _ in b]))
    taken = [0] * n
    out = []
    for i in order:
        out.append(per_ticket[i][taken[i]])
        taken[i] += 1
    return out


def _chain(tag: bytes, datas: list[bytes]) -> str:
    head = GENESIS
    for data in datas:
        head = hashlib.sha256(tag + head.encode() + b"\n" + data).hexdigest()
    return head


def _deep() -> object:
    value: object = "x"
    for _ in range(MAX_DEPTH + 2):
        value = [value]
    return value


def _too_big() -> list[Event]:
    return [contract_event(payload={"x": "长" * MAX_PAYLOAD_BYTES})]


_BAD = [
    pytest.param(_too_big, InputLimitExceeded, "events[0].payload", id="payload-size"),
    pytest.param(
        lambda: [contract_event(payload={"n": "a\ud800"})], InputLimitExceeded,
        "events[0].payload.n", id="surrogate",
    ),
    pytest.param(
        lambda: [contract_event(payload={"n": 1.5})], InvalidArgument, "events[0].payload.n",
        id="float",
    ),
    pytest.param(
        lambda: [contract_event(event_id="T1/\x00")], InputLimitExceeded, "events[0].event_id",
        id="nul-in-id",
    ),
    pytest.param(
        lambda: [contract_event("T9")], InvalidArgument, "events[0].ticket_id", id="other-ticket"
    ),
    pytest.param(lambda: [contract_event(seq=2)], InvalidArgument, "events[0].seq", id="seq-gap"),
    pytest.param(
        lambda: [contract_event(kind="delete")], InvalidArgument, "events[0].kind", id="kind"
    ),
    pytest.param(
        lambda: [contract_event(payload={"x": _deep()})], InputLimitExceeded,
        "events[0].payload.x" + "[0]" * MAX_DEPTH, id="payload-depth",
    ),
    pytest.param(
        lambda: [contract_event(payload={"note": "bell\x07"})], InputLimitExceeded,
        "events[0].payload.note", id="payload-control-character",
    ),
    pytest.param(
        lambda: [contract_event(actor=Actor("property", "\udc80"))], InputLimitExceeded,
        "events[0].actor.person", id="person-lone-surrogate",
    ),
    pytest.param(
        lambda: [contract_event(event_id="T1/\n1")], InputLimitExceeded, "events[0].event_id",
        id="event-id-newline",
    ),
    pytest.param(
        lambda: [contract_event(rules=("R-\x00",))], InputLimitExceeded, "events[0].rules[0]",
        id="rule-control-character",
    ),
    pytest.param(
        lambda: [contract_event(seq=1), contract_event(seq=3)], InvalidArgument,
        "events[1].seq", id="seq-gap-inside",
    ),
    pytest.param(
        lambda: [contract_event(seq=1), contract_event(seq=2, event_id="T1/1")],
        InvalidArgument, "events[1].event_id", id="id-repeated-in-batch",
    ),
    pytest.param(lambda: ["not an event"], InvalidArgument, "events[0]", id="not-an-event"),
    pytest.param(lambda: [], InvalidArgument, "events", id="empty"),
    pytest.param(
        lambda: contract_history("T1", MAX_BATCH + 1), InputLimitExceeded, "events",
        id="batch-size",
    ),
]  # fmt: skip


class StoreContract:
    """The contract tests; subclass with a ``backend`` fixture yielding a :class:`StoreBackend`."""

    @pytest.fixture
    def store(self, backend: StoreBackend) -> EventStore:
        return backend.keep(backend.create())

    # ---------------------------------------------------------------- basics

    def test_is_an_event_store(self, store: EventStore) -> None:
        assert isinstance(store, EventStore)

    def test_an_empty_store(self, store: EventStore) -> None:
        assert (store.tickets(), store.count(), store.version("T1")) == ([], 0, 0)
        assert store.head("T1") == GENESIS
        assert store.read("T1") == []
        assert list(store.read_all()) == []
        assert list(store.rows()) == []
        assert verify(store).ok

    def test_append_read_and_both_chains_by_the_formula(self, store: EventStore) -> None:
        a, b = contract_history("T1", 4), contract_history("长乐-2", 2)
        r1 = store.append("T1", a[:3], 0)
        r2 = store.append("长乐-2", b, 0)
        r3 = store.append("T1", a[3:], 3)
        assert (r1.version, r1.positions, r1.replayed) == (3, (0, 1, 2), False)
        assert (r2.positions, r3.positions, r3.version) == ((3, 4), (5,), 4)
        assert store.read("T1") == a
        assert store.read("长乐-2") == b
        assert store.tickets() == sorted(["T1", "长乐-2"])
        assert store.count() == 6
        order = [*a[:3], *b, a[3]]
        every = list(store.read_all())
        assert [s.event for s in every] == order
        assert [s.position for s in every] == list(range(6))
        assert list(store.read_all(4)) == every[4:]
        assert [r.position for r in store.rows(5)] == [5]
        # h_t(n) = SHA256("fireflow/ticket/1\n" || h_t(n-1) || "\n" || bytes(e_n)), and global
        assert (
            store.head("T1")
            == r3.head
            == _chain(b"fireflow/ticket/1\n", [canonical_bytes(e) for e in a])
        )
        assert store.head("长乐-2") == r2.head
        g = _chain(b"fireflow/global/1\n", [canonical_bytes(e) for e in order])
        assert every[-1].global_hash == r3.global_head == g
        assert [r.data for r in store.rows()] == [canonical_bytes(e) for e in order]
        assert verify(store).ok

    def test_tickets_sort_by_code_point(self, store: EventStore) -> None:
        ids = ["长乐-2", "CL-10", "CL-9", "Ω-1", "cl-1", "Z"]
        for tid in ids:
            store.append(tid, [contract_event(tid)], 0)
        assert store.tickets() == sorted(ids)

    def test_reads_return_what_the_bytes_say(self, store: EventStore) -> None:
        payload = {"reason": "楼道堆物"}
        store.append("T1", [contract_event(payload=payload)], 0)
        payload["reason"] = "改过"  # the payload dict is the caller's
        assert store.read("T1")[0].payload["reason"] == "楼道堆物"

    def test_a_batch_is_all_or_nothing(self, store: EventStore) -> None:
        good = [contract_event(seq=1), contract_event(seq=2)]
        with pytest.raises(InvalidArgument) as info:
            store.append("T1", [*good, contract_event(seq=3, payload={"x": 1.5})], 0)
        assert info.value.field == "events[2].payload.x"
        assert store.count() == 0

    def test_bad_positions_and_ids_in_reads(self, store: EventStore) -> None:
        with pytest.raises(InvalidArgument):
            store.version(3)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument) as info:
            list(store.read_all(-1))
        assert info.value.field == "from_position"
        with pytest.raises(InvalidArgument) as info:
            store.read("")
        assert info.value.field == "ticket_id"

    # ------------------------------------------------- idempotency, versions

    def test_re_sending_returns_the_stored_result(self, store: EventStore) -> None:
        h = contract_history("T1", 6)
        first = store.append("T1", h[:4], 0)
        again = store.append("T1", h[:4], 0)
        assert again == first
        assert again.replayed
        assert not first.replayed
        part = store.append("T1", h[:2], 0)
        assert (part.replayed, part.version, part.positions) == (True, 2, (0, 1))
        store.append("T1", h[4:], 4)
        assert store.append("T1", h[:4], 0) == first
        assert store.count() == 6

    def test_a_stale_expected_version_is_a_conflict(self, store: EventStore) -> None:
        store.append("T1", [contract_event()], 0)
        before = list(store.rows())
        with pytest.raises(ConcurrencyConflict) as info:
            store.append("T1", [contract_event(event_id="T1/other")], 0)
        assert (info.value.ticket_id, info.value.expected, info.value.actual) == ("T1", 0, 1)
        assert info.value.field == "expected_version"
        with pytest.raises(ConcurrencyConflict) as info:
            store.append("T1", [contract_event(seq=6)], 5)
        assert (info.value.expected, info.value.actual) == (5, 1)
        assert list(store.rows()) == before

    def test_an_id_stored_with_other_content_is_refused(self, store: EventStore) -> None:
        store.append("T1", [contract_event()], 0)
        with pytest.raises(DuplicateEventId) as info:
            store.append("T2", [contract_event("T2", event_id="T1/1")], 0)
        assert (info.value.field, info.value.position) == ("events[0].event_id", 0)
        assert store.count() == 1

    def test_append_many_is_all_or_nothing(self, store: EventStore) -> None:
        store.append("T2", [contract_event("T2")], 0)
        with pytest.raises(ConcurrencyConflict):
            store.append_many(
                [
                    ("T1", [contract_event("T1")], 0),
                    ("T3", [contract_event("T3")], 0),
                    ("T2", [contract_event("T2", event_id="b")], 0),
                ]
            )
        assert store.tickets() == ["T2"]
        results = store.append_many(
            [
                ("T1", [contract_event("T1")], 0),
                ("T1", [contract_event("T1", 2)], 1),
                ("T1", [contract_event("T1")], 0),
            ]
        )
        assert [(r.version, r.replayed) for r in results] == [(1, False), (2, False), (1, True)]
        assert store.append_many([]) == []
        assert verify(store).ok

    @_ONE_EXAMPLE_SET
    @given(plan=_plans(), data=st.data())
    def test_property_same_rows_as_the_reference_and_resends_change_nothing(
        self, backend: StoreBackend, plan: list[tuple[str, int, list[Event]]], data: st.DataObject
    ) -> None:
        store = backend.keep(backend.create())
        reference = MemoryStore()
        results = []
        for tid, v, evs in plan:
            results.append(store.append(tid, evs, v))
            assert reference.append(tid, evs, v) == results[-1]
        rows: list[StoredRow] = list(store.rows())
        assert rows == list(reference.rows())
        assert checkpoint(store, AT) == checkpoint(reference, AT)
        for i in data.draw(st.lists(st.integers(0, len(plan) - 1), max_size=4)):
            tid, v, evs = plan[i]
            again = store.append(tid, evs, v)
            assert again == results[i]
            assert again.replayed
        assert list(store.rows()) == rows

    # -------------------------------------------------------- input limits

    @pytest.mark.parametrize(("make", "error", "field"), _BAD)
    def test_input_limits_name_the_field_and_write_nothing(
        self,
        store: EventStore,
        make: Callable[[], list[Event]],
        error: type[FireflowError],
        field: str,
    ) -> None:
        with pytest.raises(error) as info:
            store.append("T1", make(), 0)
        assert getattr(info.value, "field", None) == field
        assert store.count() == 0

    @pytest.mark.parametrize(
        ("ticket_id", "expected", "field"),
        [
            ("", 0, "ticket_id"),
            ("T\x001", 0, "ticket_id"),
            ("x" * 300, 0, "ticket_id"),
            ("T1", -1, "expected_version"),
            ("T1", True, "expected_version"),
            ("T1", "0", "expected_version"),
        ],
    )
    def test_bad_ticket_ids_and_versions(
        self, store: EventStore, ticket_id: str, expected: int, field: str
    ) -> None:
        with pytest.raises(InvalidArgument) as info:
            store.append(ticket_id, [contract_event()], expected)
        assert info.value.field == field
        assert store.count() == 0

    def test_a_naive_datetime_is_refused(self, store: EventStore) -> None:
        e = contract_event()
        object.__setattr__(e, "at", datetime(2022, 3, 21, 10))  # noqa: DTZ001 (the point)
        with pytest.raises(NaiveDatetime) as info:
            store.append("T1", [e], 0)
        assert info.value.field == "events[0].at"
        assert store.count() == 0

    def test_a_payload_just_under_the_limit_is_stored(self, store: EventStore) -> None:
        text = "x" * (MAX_PAYLOAD_BYTES - len('{"x":""}'))
        store.append("T1", [contract_event(payload={"x": text})], 0)
        assert store.read("T1")[0].payload["x"] == text

    # ------------------------------------------------------------ checkpoints

    def test_checkpoints_hold_a_prefix_and_catch_a_wrong_one(self, store: EventStore) -> None:
        cp0 = checkpoint(store, AT)
        store.append("T1", contract_history("T1", 3), 0)
        cp1 = checkpoint(store, AT)
        store.append("T2", contract_history("T2", 2), 0)
        assert verify(store, cp0).ok
        assert verify(store, cp1).ok
        ahead = attrs.evolve(cp1, count=store.count() + 1)
        assert [p.what for p in verify(store, ahead).problems] == ["checkpoint.count"]
        wrong = attrs.evolve(cp1, global_head="f" * 64)
        assert [p.what for p in verify(store, wrong).problems] == ["checkpoint.global_head"]

    # ------------------------------------------------------------ concurrency

    def test_concurrent_writers_of_one_version_have_one_winner(self, backend: StoreBackend) -> None:
        first = backend.keep(backend.create())
        first.append("T1", [contract_event()], 0)
        writers = 6
        handles = [backend.keep(backend.open_again(first)) for _ in range(writers)]
        barrier = threading.Barrier(writers)
        outcome: list[str] = [""] * writers

        def write(i: int) -> None:
            e = contract_event(seq=2, event_id=f"T1/clerk-{i}")
            barrier.wait()
            try:
                handles[i].append("T1", [e], 1)
                outcome[i] = "won"
            except ConcurrencyConflict:
                outcome[i] = "conflict"
            except StoreError as exc:  # a busy store is not a second winner
                outcome[i] = f"error: {exc}"

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert outcome.count("won") == 1, outcome
        assert outcome.count("conflict") == writers - 1, outcome
        assert first.version("T1") == 2
        assert first.count() == 2
        assert verify(first).ok

    def test_concurrent_writers_of_many_tickets_lose_nothing(self, backend: StoreBackend) -> None:
        first = backend.keep(backend.create())
        writers, per_writer = 4, 5
        handles = [backend.keep(backend.open_again(first)) for _ in range(writers)]

        def write(i: int) -> None:
            for seq in range(1, per_writer + 1):
                handles[i].append(f"W{i}", [contract_event(f"W{i}", seq)], seq - 1)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert first.count() == writers * per_writer
        assert [first.version(f"W{i}") for i in range(writers)] == [per_writer] * writers
        assert [r.position for r in first.rows()] == list(range(writers * per_writer))
        assert verify(first).ok


class TamperContract:
    """Tampering with stored rows is found by :func:`verify` (backends with ``tampering``)."""

    @pytest.mark.parametrize(
        ("column", "value", "what"),
        [
            ("global_hash", "0" * 64, "global_hash"),
            ("ticket_hash", "0" * 64, "ticket_hash"),
            ("data", b"{}", "decode"),
            ("seq", 7, "seq"),
        ],
    )
    def test_tampering_is_found(
        self, backend: StoreBackend, column: str, value: object, what: str
    ) -> None:
        store = backend.keep(backend.create())
        store.append("T1", contract_history("T1", 3), 0)
        store.append("T2", contract_history("T2", 2), 0)
        cp = checkpoint(store, AT)
        backend.tamper(store, 2, column, value)
        report = verify(store, cp)
        assert not report.ok
        assert what in {p.what for p in report.problems}
        with pytest.raises(VerificationFailed):
            checkpoint(store, AT)

    def test_a_rewritten_payload_with_recomputed_chains_fails_the_checkpoint(
        self, backend: StoreBackend
    ) -> None:
        from fireflow.store.chain import global_link, ticket_link  # noqa: PLC0415

        store = backend.keep(backend.create())
        store.append("T1", contract_history("T1", 3), 0)
        cp = checkpoint(store, AT)
        rows = list(store.rows())
        forged = canonical_bytes(contract_event("T1", 3, payload={"reason": "已整改"}))
        t_head, g_head = rows[1].ticket_hash, rows[1].global_hash
        backend.tamper(store, 2, "data", forged)
        backend.tamper(store, 2, "ticket_hash", ticket_link(t_head, forged))
        backend.tamper(store, 2, "global_hash", global_link(g_head, forged))
        if backend.head_rows:  # the head row still holds the old hash: verify sees it
            assert {p.what for p in verify(store).problems} == {"head"}
            backend.tamper_head(store, 3, global_link(g_head, forged))
        assert verify(store).ok  # consistent inside: only the checkpoint can tell
        assert "checkpoint.global_head" in {p.what for p in verify(store, cp).problems}


class HeadRowContract:
    """A head row moved behind the store's back is found by :func:`verify` (backends with
    ``head_rows``: the SQLite and PostgreSQL stores keep one; a store whose head is its
    rows, like the memory store, has nothing to move and leaves this class out)."""

    @pytest.mark.parametrize("change", ["next", "hash", "both", "back"])
    def test_a_moved_head_row_is_found(self, backend: StoreBackend, change: str) -> None:
        assert backend.head_rows, "HeadRowContract is for backends that keep a head row"
        store = backend.keep(backend.create())
        store.append("T1", contract_history("T1", 3), 0)
        rows = list(store.rows())
        next_position = {"next": 4, "both": 4, "back": 2}.get(change, 3)
        head = rows[1].global_hash if change in ("hash", "both", "back") else rows[2].global_hash
        backend.tamper_head(store, next_position, head)
        problems = verify(store).problems
        assert problems
        assert {p.what for p in problems} == {"head"}
        with pytest.raises(VerificationFailed):
            checkpoint(store, AT)


class ReaderContract:
    """Read-only readers see everything and append nothing (backends with ``readers``)."""

    def test_a_reader_reads_and_refuses_to_append(self, backend: StoreBackend) -> None:
        store = backend.keep(backend.create())
        store.append("T1", contract_history("T1", 2), 0)
        reader = backend.keep(backend.open_reader(store))
        assert reader.read("T1") == store.read("T1")
        assert list(reader.rows()) == list(store.rows())
        assert verify(reader).ok
        with pytest.raises(StoreError):
            reader.append("T1", [contract_event(seq=3)], 2)
        assert store.count() == 2
