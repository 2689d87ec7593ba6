"""The stores' shortcuts agree with the plain paths they replace.

Reading rows back (the end of this module): ``decode_event`` takes a canonical row
without encoding its event again; any row gives the same event or the same
``CorruptRecord`` with and without that shortcut.

The SQLite store's one-batch path agrees with its general (savepoint) path.

An ``append`` (one batch) runs as the whole transaction, without a savepoint,
with both heads read by one query; when the UNIQUE index refuses the batch the
transaction is rolled back whole and the batch settled in a fresh one by the
general path.  These tests hold that path to the plain one: the same results,
errors, rows and chain heads for any sequence of appends, retries, stale
appends and colliding ids, and nothing half-written when an insert is refused
in the middle of a batch.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from unittest import mock

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_workers import histories
from store_workers.schema1 import schema1_store
from strategies import scaled

from fireflow.errors import FireflowError
from fireflow.events import (
    MAX_DEPTH,
    MAX_PAYLOAD_BYTES,
    Actor,
    Event,
    Evidence,
    canonical_bytes,
    event_from_data,
    event_to_data,
)
from fireflow.store import (
    ConcurrencyConflict,
    CorruptRecord,
    DuplicateEventId,
    MemoryStore,
    SQLiteStore,
    chain,
    sqlite,
    verify,
)
from fireflow.store.base import accepts_as_encoded, prepare_event
from fireflow.store.chain import decode_event

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
        kind = draw(
            st.sampled_from(["next", "next", "retry", "stale", "collide", "other", "squat"])
        )
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
        elif kind in ("other", "squat"):
            # accepted on the ticket's version with ids that are not their home ids: made
            # up, or the home id of another ticket's next event ("squat"), which that
            # ticket's own append then finds stored
            n = draw(st.integers(1, 3))
            evs = [event(tid, v + 1 + j, f"{tid}/o{step}/{j}") for j in range(n)]
            if kind == "squat":
                other = tids[draw(st.integers(0, len(tids) - 1))]
                evs[0] = attrs.evolve(evs[0], event_id=f"{other}/{versions[other] + 1}")
            if evs[0].event_id not in stored and evs[0].event_id != f"{tid}/{v + 1}":
                versions[tid] = v + n
                stored.extend(e.event_id for e in evs)
            ops.append((tid, v, evs))
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
        old = schema1_store(Path(d) / "schema1.db")  # every id in a UNIQUE index
        old_many = schema1_store(Path(d) / "schema1-many.db")
        memory = MemoryStore()
        try:
            got = {
                "append": run(fast, ops),
                "append_many": run(many, ops, many=True),
                "savepoint": run(plain, ops),
                "schema 1": run(old, ops),
                "schema 1, append_many": run(old_many, ops, many=True),
                "memory": run(memory, ops),
            }
            assert len({repr(v) for v in got.values()}) == 1, got
            states = [state(s) for s in (fast, many, plain, old, old_many, memory)]
            assert all(st == states[0] for st in states)
            assert verify(fast).ok
            assert fast.integrity_check() == ["ok"]
        finally:
            for s in (fast, many, plain, old, old_many):
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
        # the heads and the batch's ids stored already (none) in one query, both rows in
        # one INSERT, then the head row moved, in the same transaction
        assert kinds == ["BEGIN", "SELECT", "INSERT", "UPDATE", "COMMIT"]
        assert not any("SAVEPOINT" in q for q in statements)


def open_store(path: Path, schema: int) -> SQLiteStore:
    return SQLiteStore(path) if schema == 2 else schema1_store(path)


@pytest.mark.parametrize("at", [0, 1, 2])
@pytest.mark.parametrize("single_fast", [True, False])
@pytest.mark.parametrize("schema", [1, 2])
def test_an_id_refused_mid_batch_leaves_nothing_written(tmp_path, at, single_fast, schema):
    with open_store(tmp_path / "s.db", schema) as s:
        s._single_fast = single_fast
        s.append("T1", [event("T1", 1), event("T1", 2), event("T1", 3)], 0)
        before = list(s.rows())
        batch = [event("T2", 1), event("T2", 2), event("T2", 3)]
        batch[at] = attrs.evolve(batch[at], event_id="T1/2")  # stored at position 1
        statements = traced(s)
        with pytest.raises(DuplicateEventId) as info:
            s.append("T2", batch, 0)
        assert (info.value.field, info.value.position) == (f"events[{at}].event_id", 1)
        first = [q.split()[0] for q in statements[: statements.index("ROLLBACK")]]
        if schema == 2:  # found before anything is inserted: the id's home and the index
            assert "INSERT" not in first
        elif single_fast:  # refused in the transaction of its own, rolled back whole, settled anew
            assert first == ["BEGIN", "SELECT", "INSERT"]
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
    """Schema 1: the UNIQUE index on every id refuses the batch mid-insert."""
    n = 2 * sqlite._INSERT_ROWS + 5  # three INSERT statements: 64, 64 and 5 rows
    with schema1_store(tmp_path / "s.db") as s:
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


# --------------------------------------------------------------------------- #
# Reading rows back: the shortcut of decode_event agrees with the full check.
#
# decode_event takes a row without encoding its event again when the row is
# canonical bytes that are exactly the event's encoding (chain._encodes_as) and
# the append checks pass on those bytes (base.accepts_as_encoded: size, text
# policy, structure); otherwise the full check (check_as_appended, through
# prepare_event) decides.  The property: with and without the shortcut every
# row gives the same event or the same error, field and message.

ASCII_EVENT = Event(
    event_id="T1/1",
    ticket_id="T1",
    seq=1,
    kind="rectify",
    at=datetime(2022, 3, 21, 10, tzinfo=timezone(timedelta(hours=8))),
    actor=Actor("property"),
    payload={"description": "done"},
    rules=("R-RECT-1",),
)
ROW_EVENTS = [ASCII_EVENT, *(e for h in histories.templates() for e in h)]
# a character of each kind the text policy refuses or lets through only in free text
POLICY_CHARACTERS = [
    *"\x00\x01\x08\t\n\r\x1b\x1f\x7f\x80\x85\x9f",
    *"\u00ad\u0600\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202e",
    *"\u2060\u2065\u2066\u2069\u206f\ufeff\ufff9\ufffb",
    *"\U000110bd\U00013430\U00013439\U0001343f\U0001bca0\U0001d173\U000e0001\U000e007f",
    "\ud800",
    "\udfff",
    # allowed, but not printable or not NFC, or spelt with an escape
    *'\u00a0\u3000 "\\\ue000\U000f0000\u0378e\u0301\u1100\u1161',
]
_REFUSED_CHARS = st.sampled_from(POLICY_CHARACTERS)


def _nest(levels: int) -> object:
    value: object = "x"
    for _ in range(levels):
        value = {"k": value}
    return value


def _text(draw: st.DrawFn) -> str:
    base_text = draw(st.sampled_from(["金峰小区", "CL-1", "a", "第一行"]))
    at = draw(st.integers(0, len(base_text)))
    return base_text[:at] + draw(_REFUSED_CHARS) + base_text[at:]


def _mutate(draw: st.DrawFn, obj: dict) -> None:  # type: ignore[type-arg]
    """One change of the many a forged row may carry (on top of earlier ones)."""
    if not isinstance(obj.get("actor"), dict):
        obj["actor"] = {"agency": "town", "person": ""}
    if not isinstance(obj.get("payload"), dict):
        obj["payload"] = {}
    if not isinstance(obj.get("rules"), list):
        obj["rules"] = []
    if not isinstance(obj.get("at"), str):
        obj["at"] = "2022-03-21T10:00:00+08:00"
    if type(obj.get("seq")) is not int:
        obj["seq"] = 1
    what = draw(
        st.sampled_from(
            [
                "text",
                "deep",
                "size",
                "unknown",
                "missing",
                "seq",
                "kind",
                "at",
                "evidence",
                "rules",
                "actor",
                "payload",
            ]
        )
    )
    if what == "text":
        where = draw(
            st.sampled_from(
                [
                    "event_id",
                    "ticket_id",
                    "kind",
                    "agency",
                    "person",
                    "key",
                    "name",
                    "free",
                    "note",
                    "rule",
                ]
            )
        )
        text = _text(draw)
        if where in ("event_id", "ticket_id", "kind"):
            obj[where] = text
        elif where in ("agency", "person"):
            obj["actor"][where] = text
        elif where == "key":
            obj["payload"][text] = 1
        elif where == "name":
            obj["payload"]["community"] = text
        elif where == "free":
            obj["payload"]["description"] = text
        elif where == "note":
            obj["evidence"] = [{"kind": "document", "sha256": "c" * 64, "note": text}]
        else:
            obj["rules"] = [*obj["rules"], text]
    elif what == "deep":
        obj["payload"]["d"] = _nest(draw(st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2)))
    elif what == "size":  # the row's size about the limit: '{"big":"..."}' is 10 bytes more
        n = MAX_PAYLOAD_BYTES - 10 + draw(st.sampled_from([-400, -300, -1, 0, 1]))
        obj["payload"] = {"big": "a" * n}
        if draw(st.booleans()):
            obj["payload"] = {"big": "金" * (n // 3)}
    elif what == "unknown":
        place = draw(st.sampled_from(["top", "actor", "evidence"]))
        if place == "top":
            obj["zz"] = 1
        elif place == "actor":
            obj["actor"]["zz"] = 1
        else:
            obj["evidence"] = [{"kind": "document", "sha256": "c" * 64, "note": "", "zz": 1}]
    elif what == "missing":
        key = draw(st.sampled_from(sorted(obj)))
        del obj[key]
    elif what == "seq":
        obj["seq"] = draw(st.sampled_from([0, -1, True, "1", 1.0, 2**63, obj["seq"] + 1]))
    elif what == "kind":
        obj["kind"] = draw(st.sampled_from(["x", "", "attempt_refused", "plan_migrated"]))
    elif what == "at":
        at = obj["at"]
        obj["at"] = draw(
            st.sampled_from(
                [
                    at.replace("+08:00", "Z"),
                    at.replace("+08:00", ".000000+08:00"),
                    at.replace("T", " "),
                    at[:19],
                    "2022-03-21",
                    5,
                ]
            )
        )
    elif what == "evidence":
        obj["evidence"] = draw(
            st.sampled_from(
                [
                    {},
                    "",
                    None,
                    "ab",
                    [{"kind": "photo", "sha256": "c" * 64, "note": ""}],
                    [{"kind": "document", "sha256": "C" * 64, "note": ""}],
                    [{"kind": "document", "sha256": "c" * 64}],
                    [{"kind": "document", "sha256": "c" * 64, "note": ""}] * 65,
                ]
            )
        )
    elif what == "rules":
        obj["rules"] = draw(st.sampled_from([{}, "", "R-1", ["R-1", 2], [""], ["x" * 257]]))
    elif what == "actor":
        obj["actor"] = draw(
            st.sampled_from([{"agency": "town"}, {"agency": "", "person": ""}, "town", None])
        )
    else:
        obj["payload"] = draw(st.sampled_from([[], None, {"n": 2**64}, {"f": 1.5}, {"t": True}]))


def _encode(draw: st.DrawFn, obj: dict) -> bytes:  # type: ignore[type-arg]
    """The row's bytes: canonical, or spelt one of the ways a forger might."""
    how = draw(st.sampled_from(["canonical", "canonical", "spaced", "ascii", "unsorted", "dup"]))
    if how == "dup":
        text = json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return text.replace('{"actor"', '{"seq":1,"actor"', 1).encode("utf-8", "surrogatepass")
    if how == "unsorted":
        obj = dict(reversed(list(obj.items())))
    text = json.dumps(
        obj,
        ensure_ascii=how == "ascii",
        sort_keys=how != "unsorted",
        separators=(", ", ": ") if how == "spaced" else (",", ":"),
    )
    return text.encode("utf-8", "surrogatepass")


@st.composite
def stored_rows(draw: st.DrawFn) -> bytes:
    """A row as a store may hold it: an engine event's bytes, changed or not, spelt some way."""
    event = draw(st.sampled_from(ROW_EVENTS))
    obj = json.loads(canonical_bytes(event))
    for _ in range(draw(st.integers(0, 2))):
        _mutate(draw, obj)
    return _encode(draw, obj)


def decoded(data: bytes) -> tuple[object, ...]:
    try:
        return ("event", decode_event(data, 5))
    except CorruptRecord as exc:
        return ("refused", exc.field, str(exc))


def decoded_by_the_full_check(data: bytes) -> tuple[object, ...]:
    with mock.patch.object(chain, "accepts_as_encoded", return_value=False):
        return decoded(data)


@settings(max_examples=scaled(400), deadline=None)
@given(stored_rows())
def test_property_the_read_shortcut_and_the_full_check_accept_the_same_rows(data):
    assert decoded(data) == decoded_by_the_full_check(data)


@given(stored_rows())
@settings(max_examples=scaled(100), deadline=None)
def test_property_a_row_the_shortcut_takes_is_one_an_append_writes_as_it_is(data):
    obj = chain._decode_canonical(data)
    if obj is None:
        return
    try:
        event = event_from_data(obj, canonical=True)
    except (FireflowError, TypeError, ValueError, AttributeError, KeyError):
        return
    if chain._encodes_as(event, obj) and accepts_as_encoded(event, data):
        assert prepare_event(event, 0, event.ticket_id, event.seq) == (event, data)


@pytest.mark.parametrize("char", POLICY_CHARACTERS)
@pytest.mark.parametrize("where", ["person", "description", "community", "note"])
@pytest.mark.parametrize("event", [ASCII_EVENT, ROW_EVENTS[4]], ids=["ascii", "engine"])
def test_each_policy_character_reads_alike_with_and_without_the_shortcut(char, where, event):
    text = ("ok" if event is ASCII_EVENT else "金峰") + char
    if where == "person":
        event = attrs.evolve(event, actor=Actor(event.actor.agency, text))
    elif where == "note":
        event = attrs.evolve(event, evidence=(Evidence("document", "c" * 64, text),))
    else:
        event = attrs.evolve(event, payload={**event.payload, where: text})
    obj = event_to_data(event)
    for data in (
        orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        if char < "\ud800" or char > "\udfff"
        else json.dumps(obj, sort_keys=True, separators=(",", ":")).encode(),
        json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        ),
    ):
        assert decoded(data) == decoded_by_the_full_check(data)


def test_the_shortcut_takes_every_row_of_the_engine_histories():
    """Without this the agreement above would hold for a shortcut that never fires."""
    for event in ROW_EVENTS:
        data = canonical_bytes(event)
        obj = chain._decode_canonical(data)
        assert obj is not None
        again = event_from_data(obj, canonical=True)
        assert chain._encodes_as(again, obj)
        assert accepts_as_encoded(again, data)
        assert decode_event(data, 0) == event


@pytest.mark.parametrize("extra", [-300, -11, -10, -9, -1, 0, 1, 2, 500])
def test_rows_about_the_size_limit_read_alike_and_the_shortcut_takes_none_over_it(extra):
    event = attrs.evolve(ASCII_EVENT, payload={"big": ""})
    room = MAX_PAYLOAD_BYTES - len(canonical_bytes(event))
    event = attrs.evolve(event, payload={"big": "a" * (room + extra)})
    data = canonical_bytes(event)
    assert len(data) == MAX_PAYLOAD_BYTES + extra
    assert decoded(data) == decoded_by_the_full_check(data)
    assert accepts_as_encoded(event, data) is (extra <= 0)


@pytest.mark.parametrize(
    "change",
    [
        {"at": "2022-03-21T10:00:00.000000+08:00"},  # the same time, not as it is spelt
        {"at": "2022-03-21T02:00:00Z"},
        {"actor": {"agency": "property", "person": "e\u0301"}},  # not NFC
        {"payload": {"description": "Cafe\u0301"}},
    ],
)
def test_a_row_not_spelt_as_an_append_writes_it_takes_the_full_check(change):
    obj = {**event_to_data(ASCII_EVENT), **change}
    data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    parsed = chain._decode_canonical(data)
    assert parsed is not None  # canonical JSON, but not the event's own bytes
    event = event_from_data(parsed, canonical=True)
    assert not (chain._encodes_as(event, parsed) and accepts_as_encoded(event, data))
    assert decoded(data) == decoded_by_the_full_check(data)
    assert canonical_bytes(decode_event(data, 0)) != data


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 0},
        {"seq": -1},
        {"ticket_id": ""},
        {"ticket_id": "T" * 257},
        {"event_id": ""},
        {"event_id": "E" * 257},
        {"kind": "x"},
        {"actor": {"agency": "", "person": ""}},
        {"payload": {"description": "a\x7f"}},
        {"payload": {"community": "a\x7f"}},
        {"rules": ["R" * 257]},
        {"evidence": [{"kind": "document", "sha256": "c" * 64, "note": ""}] * 65},
    ],
)
def test_a_canonical_row_no_append_could_write_is_refused_alike(change):
    data = orjson.dumps({**event_to_data(ASCII_EVENT), **change}, option=orjson.OPT_SORT_KEYS)
    assert chain._decode_canonical(data) is not None  # canonical JSON: the shortcut looks at it
    got = decoded(data)
    assert got[0] == "refused"
    assert got == decoded_by_the_full_check(data)
