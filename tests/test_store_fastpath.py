"""The SQLite store's one-batch path agrees with its general (savepoint) path.

An ``append`` (one batch) runs as the whole transaction, without a savepoint,
with both heads read by one query; when the UNIQUE index refuses the batch the
transaction is rolled back whole and the batch settled in a fresh one by the
general path.  These tests hold that path to the plain one: the same results,
errors, rows and chain heads for any sequence of appends, retries, stale
appends and colliding ids, and nothing half-written when an insert is refused
in the middle of a batch.
"""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_workers import histories
from strategies import scaled

from fireflow.events import Event
from fireflow.store import (
    ConcurrencyConflict,
    DuplicateEventId,
    MemoryStore,
    SQLiteStore,
    sqlite,
    verify,
)

Op = tuple[str, int, list[Event]]


def event(tid: str, seq: int, event_id: str | None = None) -> Event:
    """A realistic event (from the engine's templates) for ticket ``tid`` at ``seq``."""
    base = histories.templates()[0][3]  # rectify by the property company
    return attrs.evolve(base, ticket_id=tid, seq=seq, event_id=event_id or f"{tid}/{seq}")


@st.composite
def operations(draw: st.DrawFn) -> list[Op]:
    """Fresh batches of 1-3 real tickets, interleaved with retries, stale and colliding batches.

    Every batch is drawn from the tickets' own histories or made up so that,
    against what an honest store holds at that point, it is accepted, replayed,
    refused as stale (``ConcurrencyConflict``) or refused for an id stored
    elsewhere (``DuplicateEventId``, at any place in the batch).
    """
    ks = draw(st.lists(st.integers(0, 9_999), min_size=1, max_size=3, unique=True))
    tids = [histories.ticket_id(k) for k in ks]
    fresh: list[list[Op]] = []
    for k, tid in zip(ks, tids, strict=True):
        h = list(histories.history(k))
        cuts = sorted(draw(st.sets(st.integers(1, len(h) - 1), max_size=3)))
        bounds = [0, *cuts, len(h)]
        fresh.append([(tid, lo, h[lo:hi]) for lo, hi in pairwise(bounds)])
    ops: list[Op] = []
    taken = [0] * len(fresh)
    versions = dict.fromkeys(tids, 0)
    stored: list[str] = []  # ids an honest store holds, in order
    for step in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["next", "next", "retry", "stale", "collide"]))
        if kind == "retry" and ops:
            ops.append(ops[draw(st.integers(0, len(ops) - 1))])
            continue
        i = draw(st.integers(0, len(fresh) - 1))
        tid = tids[i]
        v = versions[tid]
        if kind == "stale":
            wrong = draw(st.integers(0, v + 2).filter(lambda w, v=v: w != v))
            n = draw(st.integers(1, 3))
            evs = [event(tid, wrong + 1 + j, f"{tid}/stale{step}/{j}") for j in range(n)]
            ops.append((tid, wrong, evs))
        elif kind == "collide" and stored:
            n = draw(st.integers(1, 4))
            evs = [event(tid, v + 1 + j, f"{tid}/c{step}/{j}") for j in range(n)]
            at = draw(st.integers(0, n - 1))
            evs[at] = attrs.evolve(evs[at], event_id=draw(st.sampled_from(stored)))
            ops.append((tid, v, evs))
        elif taken[i] < len(fresh[i]):
            t, lo, evs = fresh[i][taken[i]]
            taken[i] += 1
            if lo == v:  # accepted: the honest store now holds it
                versions[t] = lo + len(evs)
                stored.extend(e.event_id for e in evs)
            ops.append((t, lo, evs))
    return ops


def outcome(call):  # type: ignore[no-untyped-def]
    """What an append gave: its result (with ``replayed``) or its error and message."""
    try:
        r = call()
    except (ConcurrencyConflict, DuplicateEventId) as exc:
        return (type(exc).__name__, str(exc))
    return (r, r.replayed)


def run(store: SQLiteStore | MemoryStore, ops: list[Op], *, many: bool = False) -> list[object]:
    if many:
        return [outcome(lambda t=t, v=v, e=e: store.append_many([(t, e, v)])[0]) for t, v, e in ops]
    return [outcome(lambda t=t, v=v, e=e: store.append(t, e, v)) for t, v, e in ops]


def state(store: SQLiteStore | MemoryStore) -> tuple[object, ...]:
    tids = store.tickets()
    return (
        list(store.rows()),
        [(store.version(t), store.head(t)) for t in tids],
        store.count(),
    )


@settings(max_examples=scaled(60), deadline=None)
@given(operations())
def test_property_one_batch_path_agrees_with_the_savepoint_path_and_memory(ops):
    with tempfile.TemporaryDirectory() as d:
        fast = SQLiteStore(Path(d) / "fast.db")
        many = SQLiteStore(Path(d) / "many.db")
        plain = SQLiteStore(Path(d) / "plain.db")
        plain._single_fast = False
        memory = MemoryStore()
        try:
            got = {
                "append": run(fast, ops),
                "append_many": run(many, ops, many=True),
                "savepoint": run(plain, ops),
                "memory": run(memory, ops),
            }
            assert got["append"] == got["append_many"] == got["savepoint"] == got["memory"]
            states = [state(s) for s in (fast, many, plain, memory)]
            assert states[0] == states[1] == states[2] == states[3]
            assert verify(fast).ok
            assert fast.integrity_check() == ["ok"]
        finally:
            for s in (fast, many, plain):
                s.close()


def traced(store: SQLiteStore) -> list[str]:
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    return statements


def test_an_append_is_one_transaction_with_one_head_query_and_no_savepoint(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as s:
        s.append("T1", [event("T1", 1)], 0)
        statements = traced(s)
        r = s.append("T1", [event("T1", 2), event("T1", 3)], 1)
        assert r.positions == (1, 2)
        kinds = [q.split()[0] for q in statements]
        # both rows in one INSERT, then the head row moved, in the same transaction
        assert kinds == ["BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT"]
        assert not any("SAVEPOINT" in q for q in statements)


@pytest.mark.parametrize("at", [0, 1, 2])
@pytest.mark.parametrize("single_fast", [True, False])
def test_an_id_refused_mid_batch_leaves_nothing_written(tmp_path, at, single_fast):
    with SQLiteStore(tmp_path / "s.db") as s:
        s._single_fast = single_fast
        s.append("T1", [event("T1", 1), event("T1", 2), event("T1", 3)], 0)
        before = list(s.rows())
        batch = [event("T2", 1), event("T2", 2), event("T2", 3)]
        batch[at] = attrs.evolve(batch[at], event_id="T1/2")  # stored at position 1
        statements = traced(s)
        with pytest.raises(DuplicateEventId) as info:
            s.append("T2", batch, 0)
        assert (info.value.field, info.value.position) == (f"events[{at}].event_id", 1)
        if single_fast:  # refused in the transaction of its own, rolled back whole, settled anew
            first = statements[: statements.index("ROLLBACK")]
            assert [q.split()[0] for q in first] == ["BEGIN", "SELECT", "INSERT"]
        assert not s._conn.in_transaction
        assert list(s.rows()) == before
        assert (s.version("T2"), s.count()) == (0, 3)
        assert s.integrity_check() == ["ok"]
        # the store goes on from where it was: positions and chains without a gap
        good = [event("T2", 1), event("T2", 2)]
        assert s.append("T2", good, 0).positions == (3, 4)
        assert verify(s).ok
    with SQLiteStore(tmp_path / "s.db", readonly=True) as s:  # and so does the file
        assert [r.event_id for r in s.rows()] == ["T1/1", "T1/2", "T1/3", "T2/1", "T2/2"]


def test_a_retry_and_a_stale_append_settle_without_writing(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as s:
        batch = [event("T1", 1), event("T1", 2)]
        first = s.append("T1", batch, 0)
        statements = traced(s)
        again = s.append("T1", batch, 0)
        assert again == first
        assert again.replayed
        with pytest.raises(ConcurrencyConflict) as info:
            s.append("T1", [event("T1", 2, "T1/other")], 1)
        assert (info.value.expected, info.value.actual) == (1, 2)
        assert not any(q.startswith(("INSERT", "SAVEPOINT")) for q in statements)
        assert s.count() == 2


@pytest.mark.parametrize("single_fast", [True, False])
def test_a_batch_of_several_insert_statements_refused_in_the_last_leaves_nothing(
    tmp_path, single_fast
):
    n = 2 * sqlite._INSERT_ROWS + 5  # three INSERT statements: 64, 64 and 5 rows
    with SQLiteStore(tmp_path / "s.db") as s:
        s._single_fast = single_fast
        s.append("T1", [event("T1", 1)], 0)
        batch = [event("T2", seq) for seq in range(1, n + 1)]
        statements = traced(s)
        with pytest.raises(DuplicateEventId):
            s.append("T2", [*batch[:-1], attrs.evolve(batch[-1], event_id="T1/1")], 0)
        tries = 2 if single_fast else 1  # tried, then settled anew by the savepoint path
        assert sum(q.startswith("INSERT") for q in statements) == 3 * tries
        assert (s.count(), s.version("T2")) == (1, 0)
        r = s.append("T2", batch, 0)
        assert (r.positions[0], r.positions[-1], r.version) == (1, n, n)
        assert [e.seq for e in s.read("T2")] == list(range(1, n + 1))
        assert verify(s).ok
