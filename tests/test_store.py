"""The event store contract, run against both stores; input limits; SQLite specifics; the CLI.

Histories are made by the real Ticket engine (``store_workers/histories.py``).
The idempotency figure is printed (``pytest -s``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import sqlite3
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from store_workers import histories
from strategies import scaled

from fireflow.cli.store import main as store_main
from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import (
    MAX_DEPTH,
    Actor,
    Event,
    Evidence,
    _refused_control,
    canonical_bytes,
    canonical_bytes_if_plain,
    check_json_value,
    event_from_data,
    event_to_data,
)
from fireflow.store import (
    GENESIS,
    Checkpoint,
    ConcurrencyConflict,
    CorruptRecord,
    EventStore,
    MemoryStore,
    SQLiteStore,
    StoreBusy,
    StoreError,
    StoreNotFound,
    VerificationFailed,
    checkpoint,
    verify,
)
from fireflow.store.base import prepare_batch
from fireflow.store.chain import decode_event, heads_digest, loads_strict

FULL = bool(os.environ.get("FIREFLOW_FULL"))
AT = datetime(2022, 12, 12, 17, tzinfo=timezone(timedelta(hours=8)))


def make(kind: str, directory: Path) -> MemoryStore | SQLiteStore:
    return MemoryStore() if kind == "memory" else SQLiteStore(directory / "store.db")


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path) -> Iterator[MemoryStore | SQLiteStore]:
    s = make(request.param, tmp_path)
    yield s
    if isinstance(s, SQLiteStore):
        s.close()


def event(tid: str = "T1", seq: int = 1, **changes) -> Event:
    """A realistic event (from the engine's templates) for ticket ``tid`` at ``seq``."""
    base = histories.templates()[0][3]  # rectify by the property company
    fields = {"ticket_id": tid, "seq": seq, "event_id": f"{tid}/{seq}", **changes}
    return attrs.evolve(base, **fields)


def append_history(s: EventStore, k: int) -> list[Event]:
    events = list(histories.history(k))
    tid = histories.ticket_id(k)
    for lo, hi in histories.cuts(k, len(events)):
        s.append(tid, events[lo:hi], lo)
    return events


# --------------------------------------------------------------------------- #
# The contract, on both stores (the backend-neutral cases are in fireflow.testing.store_contract,
# run on memory, SQLite and PostgreSQL by tests/test_store_contract.py)


def test_append_then_read_a_whole_history(store):
    events = list(histories.history(0))
    tid = events[0].ticket_id
    r1 = store.append(tid, events[:3], 0)
    r2 = store.append(tid, events[3:], 3)
    assert (r1.version, r1.positions, r1.replayed) == (3, (0, 1, 2), False)
    assert (r2.version, r2.positions) == (len(events), tuple(range(3, len(events))))
    assert store.read(tid) == events
    assert store.version(tid) == len(events)
    # the documented formula (docs/store.md, docs/vectors.md), not the library's ticket_link:
    # h_t(n) = SHA256("fireflow/ticket/1\n" || h_t(n-1) || "\n" || bytes(e_n))
    head = "0" * 64
    for e in events:
        head = hashlib.sha256(
            b"fireflow/ticket/1\n" + head.encode() + b"\n" + canonical_bytes(e)
        ).hexdigest()
    assert store.head(tid) == head == r2.head
    assert [s.event for s in store.read_all()] == events
    assert list(store.read_all())[-1].global_hash == r2.global_head
    assert store.tickets() == [tid]
    assert verify(store).ok


def test_global_order_is_append_order_across_tickets(store):
    plan = list(histories.schedule(6))
    for tid, v, events in plan:
        store.append(tid, events, v)
    every = list(store.read_all())
    assert [s.event for s in every] == [e for _, _, evs in plan for e in evs]
    assert [s.position for s in every] == list(range(len(every)))
    assert list(store.read_all(5)) == every[5:]
    assert list(store.read_all(len(every))) == []
    assert [r.position for r in store.rows(7)] == list(range(7, len(every)))
    assert store.tickets() == sorted({tid for tid, _, _ in plan})


# --------------------------------------------------------------------------- #
# Input limits: the cases run on every backend in the contract suite
# (fireflow.testing.store_contract, tests/test_store_contract.py); the encoders' own checks here


# Text that stresses the fast encoder: combining marks (NFC), escapes, controls, surrogates.
tricky_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('\\"bfu0017aé\u0301\u0065\t\n\r\x00\x08\x0c\x1f\x7f\x85長\ud800')),
        st.characters(),
    ),
    max_size=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | tricky_text,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(tricky_text, inner, max_size=3)
    ),
    max_leaves=12,
)


def checked_or_none(e: Event, *texts: str) -> bytes | None:
    """``canonical_bytes`` after the full checks of the texts and the payload, or None."""
    try:
        for text in texts:
            check_json_value(text)
        check_json_value(e.payload)
        return canonical_bytes(e)
    except InvalidArgument:
        return None


def prepared_or_none(e: Event) -> bytes | None:
    """The bytes the store would write for ``e`` as ticket T1's first event, or None."""
    try:
        return prepare_batch("T1", [e], 0)[0][1]
    except InvalidArgument:
        return None


@settings(max_examples=scaled(300))
@given(st.dictionaries(tricky_text, json_values, max_size=4), tricky_text, tricky_text)
def test_prepared_bytes_are_exactly_canonical_bytes(payload, person, note):
    """The store's encoder agrees with canonical_bytes, or both refuse (with the full checks)."""
    try:
        e = event(
            payload=payload,
            actor=Actor("property", person),
            evidence=(Evidence("photo_after", "a" * 64, note),),
        )
    except (InvalidArgument, TypeError, ValueError):
        return  # not even an Event
    assert prepared_or_none(e) == checked_or_none(e, e.actor.person, e.evidence[0].note)


def stdlib_canonical(e: Event) -> bytes:
    """The reference encoding, by the standard library alone (what the format is defined by)."""
    return json.dumps(
        event_to_data(e), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


# Text the fast path must take: NFC, nothing the text policy refuses (controls, tab and
# newline included, as a name refuses them; format characters, separators), no lone surrogate.
plain_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('\\"/bfu0aé長\U0001f525')),
        st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")),
    ),
    max_size=12,
).map(lambda t: unicodedata.normalize("NFC", t))
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | plain_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(plain_text, inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=scaled(300))
@given(st.dictionaries(plain_text, plain_values, max_size=4), plain_text, plain_text)
def test_the_compiled_encoder_writes_the_standard_librarys_bytes(payload, person, note):
    """orjson (sorted keys) gives byte for byte what ``json`` gives, and it is used."""
    e = event(
        payload=payload,
        actor=Actor("property", person),
        evidence=(Evidence("photo_after", "a" * 64, note),),
    )
    fast = canonical_bytes_if_plain(e)
    assert fast is not None
    assert fast == stdlib_canonical(e)


@settings(max_examples=scaled(300))
@given(st.dictionaries(tricky_text, json_values, max_size=4), tricky_text)
def test_the_fast_encoder_is_exact_or_steps_aside(payload, person):
    """On any input the fast path gives the reference bytes or ``None``, never other bytes."""
    try:
        e = event(payload=payload, actor=Actor("property", person))
    except (InvalidArgument, TypeError, ValueError):
        return
    fast = canonical_bytes_if_plain(e)
    if fast is not None:
        assert fast == stdlib_canonical(e)


_odd = st.one_of(
    st.none(),
    st.integers(-2, 3),
    st.text(max_size=4),
    st.sampled_from(["", "x" * 300, "a\x00b", "a\u2028b", "rectify", "T1", "T1/1", "property"]),
    st.lists(st.text(max_size=2), max_size=2),
    st.tuples(st.text(max_size=3)),
    st.just(("R-OK", ["unhashable"])),
    st.just(AT.replace(tzinfo=None)),  # naive
    st.just(AT),
    st.just(Actor("property")),
    st.just(Actor("", "")),
    st.just((Evidence("photo_after", "a" * 64),)),
    st.just(("not evidence",)),
)


@settings(max_examples=scaled(300))
@given(
    st.dictionaries(
        st.sampled_from(
            ["event_id", "ticket_id", "seq", "kind", "at", "actor", "payload", "evidence", "rules"]
        ),
        _odd,
        max_size=3,
    ),
    st.sampled_from(["T1", "T2"]),
    st.integers(0, 2),
)
def test_the_structural_check_passes_only_well_formed_events_and_names_the_field(
    changes, ticket_id, seq
):
    """Whatever reaches the store, the check returns a well-formed event or names a field."""
    from fireflow.store.base import KINDS, MAX_EVIDENCE, _check_event

    e = copy.copy(event())
    for name, value in changes.items():  # no converters: any value reaches the checks
        object.__setattr__(e, name, value)
    try:
        checked = _check_event(e, 0, ticket_id, seq)
    except InvalidArgument as exc:
        field = exc.field
    except TypeError:  # an unhashable kind: refused, as before the fast path existed
        return
    else:
        field = None
    if field is not None:
        assert field.startswith("events[0]")
        return
    assert checked is e
    assert type(e.event_id) is str
    assert e.event_id
    assert e.ticket_id == ticket_id
    assert e.seq == seq
    assert e.kind in KINDS
    assert e.at.utcoffset() is not None
    assert isinstance(e.actor, Actor)
    assert e.actor.agency
    assert isinstance(e.evidence, tuple)
    assert len(e.evidence) <= MAX_EVIDENCE
    assert all(isinstance(x, Evidence) for x in e.evidence)
    assert all(type(r) is str and r for r in e.rules)


def test_rule_lists_are_checked_once_and_a_bad_one_every_time():
    from fireflow.store.base import _CHECKED_RULES, _check_event

    good = event(rules=("R-TKT-NEW-RULE-LIST",))
    assert good.rules not in _CHECKED_RULES
    assert _check_event(good, 0, "T1", 1) is good
    assert good.rules in _CHECKED_RULES
    bad = event(rules=("R-OK", ""))
    for _ in range(2):
        with pytest.raises(InvalidArgument) as info:
            _check_event(bad, 3, "T1", 1)
        assert info.value.field == "events[3].rules[1]"
    assert bad.rules not in _CHECKED_RULES


def strict_decode(data: bytes) -> Event | str:
    """The reference decoder (strict JSON, then the event, then the append's own checks),
    or the refusal's class name."""
    try:
        e = event_from_data(loads_strict(data), canonical=True)
        prepare_batch(e.ticket_id, [e], e.seq - 1)  # what no append could write is refused
        return e
    except (ValueError, TypeError, KeyError, AttributeError, InvalidArgument) as exc:
        return type(exc).__name__


def _mutations(data: bytes) -> list[bytes]:
    text = data.decode("utf-8")
    return [
        data,
        text.replace('"seq":1', '"seq":1.0').encode(),  # a float
        text.replace('"seq":1', '"seq":1,"seq":2').encode(),  # a repeated key
        text.replace('{"actor"', '{ "actor"').encode(),  # not canonical, still JSON
        text.replace('"kind":"rectify"', '"kind":"rectify","kind":"archive"').encode(),
        text.replace('"payload":{', '"payload":{"x":1e400,').encode(),  # infinity
        text.replace('"payload":{', '"payload":{"x":[1.5],').encode(),
        text.replace('"payload":{', '"payload":{"x":{"y":[[2e+16]]},').encode(),
        text.replace('"rules":[', '"rules":[1.5,').encode(),  # a float outside the payload
        text.replace('"person":""', '"person":-0.0').encode(),
        text.replace('"event_id":"', '"event_id":7,"x":"').encode(),  # not text
        # repeated keys the quick member count must not miss: white space before a
        # colon, strings that begin with a colon, escaped quotes
        text.replace('"kind":"rectify"', '"kind" :"archive","kind":"rectify"').encode(),
        text.replace('"kind":"rectify"', '"kind"\t:"archive","kind":"rectify"').encode(),
        text.replace('"payload":{', '"payload":{"a":":",').encode(),
        text.replace('"payload":{', '"payload":{"a":":","a":":",').encode(),
        text.replace('"payload":{', '"payload":{"a" :1,"a":":",').encode(),
        text.replace('"payload":{', '"payload":{"a":"\\"","a":1,').encode(),
        text.replace('"payload":{', '"payload":{"a":{"b":1,"b":2},').encode(),
        text.replace('"actor":{', '"actor":{"person":"x",').encode(),
        text.replace('"payload":{', '"payload":{"\\ud800":1,').encode(),  # lone surrogate
        text[:-1].encode(),  # truncated
        data + b" ",
        b"[]",
        b"\xff" + data,  # not UTF-8
    ]


@pytest.mark.parametrize("payload", [{}, {"reason": "整改", "days": 3}, {"a": {"b": [1, "x"]}}])
def test_every_mutation_decodes_as_the_strict_parser_says(payload):
    row = stdlib_canonical(event(payload=payload))
    for mutated in _mutations(row):
        want = strict_decode(mutated)
        try:
            got: Event | str = decode_event(mutated, 7)
        except CorruptRecord:
            got = "refused"
        assert got == (want if isinstance(want, Event) else "refused"), mutated


@settings(max_examples=scaled(200))
@given(st.dictionaries(plain_text, plain_values, max_size=3), st.data())
def test_decoding_takes_the_fast_path_only_for_exact_canonical_rows(payload, data):
    """The compiled decoder accepts exactly what the strict one accepts, with the same result."""
    row = stdlib_canonical(event(payload=payload))
    mutated = data.draw(st.sampled_from(_mutations(row)))
    want = strict_decode(mutated)
    try:
        got: Event | str = decode_event(mutated, 7)
    except CorruptRecord:
        got = "refused"
    if isinstance(want, Event):
        assert got == want
    else:
        assert got == "refused"


@pytest.mark.parametrize("levels", range(MAX_DEPTH - 2, MAX_DEPTH + 3))
@pytest.mark.parametrize("container", ["dict", "list", "mixed"])
def test_depth_limit_is_the_same_on_every_path(levels, container):
    value: object = "leaf"
    for i in range(levels):
        wrap_dict = container == "dict" or (container == "mixed" and i % 2)
        value = {"k": value} if wrap_dict else [value]
    e = event(payload={"x": value})
    assert prepared_or_none(e) == checked_or_none(e)


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ('"a"', False),
        ('"a\\tb\\nc\\r"', True),  # a name refuses them: the full check decides by field
        ('"\\\\t"', False),  # an escaped backslash, then the letter t
        ('"金峰\u200b"', True),  # an invisible character, refused everywhere
        ('"\\b"', True),
        ('"\\\\b"', False),  # an escaped backslash, then the letter b
        ('"\\\\\\f"', True),
        ('"\\u001f"', True),
        ('"\\\\u001f"', False),
        ('"\\u0020"', False),
        ('"\x7f"', True),
    ],
)
def test_refused_control_reads_json_escapes(text, refused):
    assert _refused_control(text) is refused


# --------------------------------------------------------------------------- #
# Properties (hypothesis): both stores in each example


@st.composite
def scenarios(draw: st.DrawFn) -> list[tuple[str, int, list[Event]]]:
    """Batches of 1-4 realistic tickets, cut at random and interleaved at random."""
    ks = draw(st.lists(st.integers(0, 9_999), min_size=1, max_size=4, unique=True))
    per_ticket = []
    for k in ks:
        h = histories.history(k)
        length = draw(st.integers(1, len(h)))
        cuts = sorted(draw(st.sets(st.integers(1, length), max_size=3)) - {length})
        bounds = [0, *cuts, length]
        per_ticket.append(
            [(histories.ticket_id(k), lo, list(h[lo:hi])) for lo, hi in pairwise(bounds)]
        )
    slots = [i for i, batches in enumerate(per_ticket) for _ in batches]
    order = draw(st.permutations(slots))
    taken = [0] * len(per_ticket)
    out = []
    for i in order:
        out.append(per_ticket[i][taken[i]])
        taken[i] += 1
    return out


def _both(directory: str) -> tuple[MemoryStore, SQLiteStore]:
    return MemoryStore(), SQLiteStore(Path(directory) / "p.db")


@settings(max_examples=scaled(40))
@given(scenarios())
def test_property_round_trip_one_global_order_and_both_stores_agree(plan):
    with tempfile.TemporaryDirectory() as d:
        mem, sql = _both(d)
        try:
            expected: dict[str, list[Event]] = {}
            for tid, _, evs in plan:
                expected.setdefault(tid, []).extend(evs)
            flat = [e for _, _, evs in plan for e in evs]
            for s in (mem, sql):
                for tid, v, evs in plan:
                    r = s.append(tid, evs, v)
                    assert r.version == v + len(evs)
                    assert not r.replayed
                for tid, evs in expected.items():
                    assert s.read(tid) == evs
                    assert s.version(tid) == len(evs)
                every = list(s.read_all())
                assert [x.event for x in every] == flat
                assert [x.position for x in every] == list(range(len(flat)))
                assert list(s.read_all(len(flat) // 2)) == every[len(flat) // 2 :]
                assert s.tickets() == sorted(expected)
                assert s.count() == len(flat)
                assert verify(s).ok
            assert list(mem.rows()) == list(sql.rows())
            assert checkpoint(mem, AT) == checkpoint(sql, AT)
        finally:
            sql.close()


@settings(max_examples=scaled(40))
@given(scenarios(), st.data())
def test_property_re_sending_any_batch_changes_nothing(plan, data):
    picks = data.draw(st.lists(st.integers(0, len(plan) - 1), max_size=8))
    with tempfile.TemporaryDirectory() as d:
        for s in _both(d):
            try:
                results = [s.append(tid, evs, v) for tid, v, evs in plan]
                before = list(s.rows())
                for i in picks:
                    tid, v, evs = plan[i]
                    again = s.append(tid, evs, v)
                    assert again == results[i]
                    assert again.replayed
                assert list(s.rows()) == before
            finally:
                if isinstance(s, SQLiteStore):
                    s.close()


@settings(max_examples=scaled(40))
@given(scenarios(), st.data())
def test_property_a_wrong_expected_version_is_a_conflict_and_changes_nothing(plan, data):
    tid = data.draw(st.sampled_from(sorted({t for t, _, _ in plan})))
    with tempfile.TemporaryDirectory() as d:
        for s in _both(d):
            try:
                for t, v, evs in plan:
                    s.append(t, evs, v)
                actual = s.version(tid)
                wrong = data.draw(st.integers(0, actual + 3).filter(lambda w, a=actual: w != a))
                e = event(tid, wrong + 1, event_id=f"{tid}/clerk-b/{wrong + 1}")
                before = list(s.rows())
                with pytest.raises(ConcurrencyConflict) as info:
                    s.append(tid, [e], wrong)
                assert (info.value.expected, info.value.actual) == (wrong, actual)
                assert list(s.rows()) == before
            finally:
                if isinstance(s, SQLiteStore):
                    s.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_every_event_id_submitted_twice_is_stored_once(kind, tmp_path):
    n_tickets = 400 if FULL else 60
    plan = list(histories.schedule(n_tickets))
    s = make(kind, tmp_path)
    first = []
    for tid, v, evs in plan:
        r1 = s.append(tid, evs, v)
        r2 = s.append(tid, evs, v)
        assert r2 == r1
        assert r2.replayed
        assert not r1.replayed
        first.append(r1)
    order = list(range(len(plan)))
    random.Random(4).shuffle(order)
    for i in order:  # and once more, all of them, in another order
        tid, v, evs = plan[i]
        r = s.append(tid, evs, v)
        assert r == first[i]
        assert r.replayed
    n_events = sum(len(evs) for _, _, evs in plan)
    ids = [x.event.event_id for x in s.read_all()]
    assert s.count() == n_events == len(set(ids))
    assert verify(s).ok
    if isinstance(s, SQLiteStore):
        s.close()
    print(
        f"\nidempotency ({kind}): batches={len(plan)} events={n_events} "
        f"submitted={3 * n_events} stored={len(ids)} duplicates=0"
    )


# --------------------------------------------------------------------------- #
# SQLite specifics


def test_sqlite_pragmas_and_the_write_lock_taken_up_front(tmp_path):
    with SQLiteStore(tmp_path / "s.db", busy_timeout_ms=1234) as s:
        con = s._conn
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] == 1234
        statements: list[str] = []
        con.set_trace_callback(statements.append)
        s.append("T1", [event()], 0)
        con.set_trace_callback(None)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert statements[-1] == "COMMIT"
    assert any(x.startswith("INSERT INTO events") for x in statements)


def test_sqlite_busy_is_retried_with_seeded_backoff_then_typed(tmp_path):
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    slept: list[list[float]] = [[], []]
    try:
        for n in range(2):
            s = SQLiteStore(
                path, busy_timeout_ms=1, max_attempts=5, backoff_base=0.01, backoff_cap=0.03,
                retry_seed=7, sleep=slept[n].append,
            )  # fmt: skip
            with pytest.raises(StoreBusy) as info:
                s.append("T1", [event()], 0)
            assert info.value.attempts == 5
            assert not isinstance(info.value, sqlite3.Error)
            assert info.value.__cause__ is None
            assert info.value.__suppress_context__
            assert s.busy_retries == 4
            assert s.read("T1") == []  # readers are not blocked by a writer (WAL)
            s.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert slept[0] == slept[1]  # the store's own seeded generator: the same delays
    assert len(slept[0]) == 4
    caps = [0.01, 0.02, 0.03, 0.03]
    assert all(c / 2 <= d <= c for d, c in zip(slept[0], caps, strict=True))
    with SQLiteStore(path) as s:
        assert s.append("T1", [event()], 0).version == 1


def test_sqlite_persists_across_reopening(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as s:
        events = append_history(s, 3)
        cp = checkpoint(s, AT)
    with SQLiteStore(path, create=False) as s:
        assert s.read(events[0].ticket_id) == events
        assert verify(s, cp).ok
        assert s.integrity_check() == ["ok"]


def test_sqlite_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(StoreNotFound) as info:
        SQLiteStore(tmp_path / "missing.db", create=False)
    assert info.value.field == "path"
    assert not (tmp_path / "missing.db").exists()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database file at all" * 100)
    with pytest.raises(StoreError):
        SQLiteStore(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE events (x)")
    con.close()
    with pytest.raises(StoreError, match="not a fireflow event store"):
        SQLiteStore(other)
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).close()  # an empty SQLite file: a store only if asked to create one
    with pytest.raises(StoreError, match="not a fireflow event store"):
        SQLiteStore(plain, create=False)
    SQLiteStore(plain).close()
    SQLiteStore(plain, create=False).close()
    with pytest.raises(InvalidArgument) as info2:
        SQLiteStore(":memory:")
    assert info2.value.field == "path"
    with pytest.raises(InvalidArgument) as info2:
        SQLiteStore(tmp_path / "x.db", busy_timeout_ms=-1)
    assert info2.value.field == "busy_timeout_ms"


# --------------------------------------------------------------------------- #
# Checkpoints


def test_checkpoint_json_round_trip_and_strict_parsing(store):
    append_history(store, 0)
    cp = checkpoint(store, AT)
    assert Checkpoint.from_json(cp.to_json()) == cp
    data = cp.to_data()
    assert data["format"] == "fireflow.checkpoint/1"
    assert data["at"] == "2022-12-12T17:00:00+08:00"
    text = cp.to_json()
    cases = {
        text.replace('"count": ', '"count": 1, "count": ', 1): "checkpoint",
        json.dumps({**data, "extra": 1}): "checkpoint.extra",
        json.dumps({k: v for k, v in data.items() if k != "tickets"}): "checkpoint.tickets",
        json.dumps({**data, "global_head": "ABC"}): "checkpoint.global_head",
        json.dumps({**data, "at": "2022-12-12T17:00:00"}): "checkpoint.at",
        json.dumps({**data, "count": -1}): "checkpoint.count",
        json.dumps({**data, "count": 1.0}): "checkpoint",
        json.dumps({**data, "format": "x"}): "checkpoint.format",
        "[]": "checkpoint",
    }
    for bad, field in cases.items():
        with pytest.raises(InvalidArgument) as info:
            Checkpoint.from_json(bad)
        assert info.value.field == field, bad
    with pytest.raises(NaiveDatetime):
        checkpoint(store, datetime(2022, 12, 12))  # noqa: DTZ001 (the point of the test)


def test_checkpoint_of_an_empty_store_and_of_a_prefix(store):
    cp0 = checkpoint(store, AT)
    assert (cp0.count, cp0.global_head, cp0.tickets) == (0, GENESIS, 0)
    assert cp0.tickets_digest == heads_digest({})
    append_history(store, 0)
    cp1 = checkpoint(store, AT)
    append_history(store, 1)
    assert verify(store, cp0).ok
    assert verify(store, cp1).ok
    ahead = attrs.evolve(cp1, count=store.count() + 1)
    report = verify(store, ahead)
    assert [p.what for p in report.problems] == ["checkpoint.count"]
    wrong = attrs.evolve(cp1, global_head="f" * 64)
    assert [p.what for p in verify(store, wrong).problems] == ["checkpoint.global_head"]


def test_checkpoint_refuses_a_store_that_does_not_verify(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as s:
        append_history(s, 0)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("UPDATE events SET global_hash = ? WHERE position = 2", ("0" * 64,))
    con.close()
    with SQLiteStore(path) as s, pytest.raises(VerificationFailed) as info:
        checkpoint(s, AT)
    assert [(p.what, p.position) for p in info.value.report.problems] == [
        ("global_hash", 2),
        ("global_hash", 3),
    ]


def test_loads_strict_refuses_floats_and_duplicates():
    for text in ('{"a":1.0}', '{"a":NaN}', '{"a":{"b":1,"b":1}}'):
        with pytest.raises(ValueError):  # noqa: PT011 (the message is checked below)
            loads_strict(text)
    assert loads_strict('{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}


# --------------------------------------------------------------------------- #
# The CLI


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "changle.db"
    with SQLiteStore(path) as s:
        for tid, v, evs in histories.schedule(5):
            s.append(tid, evs, v)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = store_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tickets(db, capsys):
    code, out, _ = run(capsys, "tickets", db)
    assert code == 0
    assert "CL-2022-00000" in out
    assert "已归档 archived" in out
    code, out, _ = run(capsys, "tickets", db, "--json")
    rows = json.loads(out)
    assert [r["ticket"] for r in rows] == [histories.ticket_id(k) for k in range(5)]
    assert rows[0] == {
        "ticket": "CL-2022-00000",
        "version": 8,
        "state": "archived",
        "last_at": "2022-03-23T10:00:00+08:00",
    }
    assert [r["state"] for r in rows] == ["archived", "passed", "rectifying", "rectifying",
                                          "rectifying"]  # fmt: skip


def test_cli_replay(db, capsys):
    code, out, _ = run(capsys, "replay", db, "CL-2022-00002")
    assert code == 0
    assert "状态 state: 限期整改中 rectifying" in out
    assert "被拒绝的操作 refused attempt (refuse)" in out
    assert "R-ESC-REFUSAL" in out
    code, out, _ = run(capsys, "replay", db, "CL-2022-00000", "--json")
    data = json.loads(out)
    assert data["state"]["state"] == "archived"
    assert data["explain"][0].startswith("#1 2022-03-21 10:00")
    code, _, err = run(capsys, "replay", db, "CL-404")
    assert code == 1
    assert "no events for ticket 'CL-404'" in err


def test_cli_replay_at_lists_what_is_due(db, capsys):
    # CL-2022-00001 passed its re-check: the acceptance people owe the sign-off (R-DUTY-SIGNOFF)
    code, out, _ = run(capsys, "replay", db, "CL-2022-00001", "--at", "2022-12-01T09:00:00+08:00")
    assert code == 0
    assert "待办 due at 2022-12-01 09:00:" in out
    assert "[R-DUTY-SIGNOFF]" in out
    assert "已逾期 late" in out
    assert "[R-ACC-SLOW]" in out
    code, out, _ = run(capsys, "replay", db, "CL-2022-00001")
    assert "待办" not in out
    code, _, err = run(capsys, "replay", db, "CL-2022-00001", "--at", "2022-12-01T09:00")
    assert code == 2
    assert "--at" in err


def test_cli_checkpoint_and_verify(db, tmp_path, capsys):
    code, out, _ = run(capsys, "checkpoint", db)
    assert code == 0
    cp = Checkpoint.from_json(out)
    assert cp.at == datetime(2022, 8, 1, 10, tzinfo=timezone(timedelta(hours=8)))  # last event
    published = tmp_path / "cp.json"
    code, out, _ = run(capsys, "checkpoint", db, "--at", "2022-12-12T17:00:00+08:00",
                       "--out", published)  # fmt: skip
    assert code == 0
    assert "✓" in out
    assert str(published) in out
    assert Checkpoint.from_json(published.read_text(encoding="utf-8")).count == cp.count
    code, out, _ = run(capsys, "verify", db, "--checkpoint", published)
    assert code == 0
    assert "✓ 校验通过 verified" in out
    assert "matches the checkpoint" in out
    code, out, _ = run(capsys, "verify", db, "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True
    # a forger truncates the file: the head row no longer matches the rows
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("DELETE FROM events WHERE position >= 30")
    con.close()
    code, out, _ = run(capsys, "verify", db, "--json")
    assert code == 1
    assert {p["what"] for p in json.loads(out)["problems"]} == {"head"}
    # one who moves the head row too leaves a consistent file: only the checkpoint tells
    con = sqlite3.connect(db, isolation_level=None)
    con.execute(
        "UPDATE fireflow_head SET next = 30, global_hash = "
        "(SELECT global_hash FROM events WHERE position = 29)"
    )
    con.close()
    code, _, _ = run(capsys, "verify", db)
    assert code == 0
    code, _, err = run(capsys, "verify", db, "--checkpoint", published)
    assert code == 1
    assert "✗ 校验失败 verification failed" in err
    assert "checkpoint.count" in err
    assert f"counted {cp.count}" in err
    code, out, _ = run(capsys, "verify", db, "--checkpoint", published, "--json")
    assert code == 1
    assert json.loads(out)["problems"][0]["what"] == "checkpoint.count"


def test_cli_errors(db, tmp_path, capsys):
    code, _, err = run(capsys, "checkpoint", db, "--at", "2022-12-12T17:00:00")
    assert code == 2
    assert "--at" in err
    assert "naive" in err
    code, _, err = run(capsys, "verify", tmp_path / "nope.db")
    assert code == 1
    assert "事件库不存在" in err
    assert not (tmp_path / "nope.db").exists()
    bad = tmp_path / "bad.json"
    bad.write_text('{"count": 1}', encoding="utf-8")
    code, _, err = run(capsys, "verify", db, "--checkpoint", bad)
    assert code == 1
    assert "checkpoint." in err
    code, _, err = run(capsys, "verify", db, "--checkpoint", tmp_path / "none.json")
    assert code == 1
    assert "cannot read" in err
    empty = tmp_path / "empty.db"
    SQLiteStore(empty).close()
    code, _, err = run(capsys, "checkpoint", empty)
    assert code == 2
    assert "--at" in err
    code, out, _ = run(capsys, "checkpoint", empty, "--at", "2022-12-12T17:00:00+08:00")
    assert code == 0
    assert Checkpoint.from_json(out).count == 0


def test_cli_is_registered_as_fireflow_store(db, capsys):
    from fireflow import cli

    names = {g.name for g in cli.app.registered_groups}
    assert "store" in names, "fireflow.cli must register the store commands as `fireflow store`"
    code = cli.main(["store", "verify", str(db)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "verified" in out


def test_canonical_decoding_builds_the_same_event():
    from fireflow.events import canonical_bytes, event_from_data

    for e in histories.history(3):
        data = json.loads(canonical_bytes(e))
        fast = event_from_data(data, canonical=True)
        assert fast == event_from_data(data) == e
        assert canonical_bytes(fast) == canonical_bytes(e)


@pytest.mark.parametrize("bad", ["\u202e", "\u200b", "\u2066", "\ufeff", "\u00ad", "\u2028"])
def test_store_ids_follow_the_text_policy(bad):
    # "T-1" and "T-1\u200b" would look like one ticket and be two: refused at the store too
    from fireflow.errors import InputLimitExceeded
    from fireflow.store.base import check_id

    # a visible space (U+3000) is fine
    assert check_id("金峰小区\u3000T-1", "ticket_id") == "金峰小区\u3000T-1"
    with pytest.raises(InputLimitExceeded) as info:
        check_id(f"T-1{bad}", "ticket_id")
    assert info.value.field == "ticket_id"
