"""Stored rows are decoded under the payload's nesting limit (docs/security.md: 16).

An append refuses a payload nested deeper than ``fireflow.events.MAX_DEPTH``
(``check_json_value``).  A row written straight into the SQLite file, behind the
store's back (its hashes recomputed, so only the nesting is wrong), must be refused
the same way when it is read: ``read``, ``read_all`` and ``verify`` answer with a
``CorruptRecord`` naming the field (``data.payload...``), never ``RecursionError``
and never a silent accept.  The property: for any nesting, a stored row decodes
exactly when ``check_json_value`` lets the payload be written, on the fast
(canonical) path and on the strict path alike.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fireflow import Ticket, load_plan
from fireflow.errors import InputLimitExceeded
from fireflow.events import MAX_DEPTH, Event, canonical_bytes, check_json_value
from fireflow.store import CorruptRecord, SQLiteStore, verify
from fireflow.store.chain import GENESIS, decode_event, global_link, ticket_link

AT = datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def _event() -> Event:
    t = Ticket("T-1", load_plan("changle-2022"))
    t.command(
        "report", AT, "town", "李", community="C1", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection", description="占用消防车道",
    )  # fmt: skip
    return t.events[0]


EVENT = _event()


def nested(levels: int, *, leaf: bool = True, kind: str = "list") -> Any:
    """``levels`` containers one inside the other, around ``1`` (or empty inside)."""
    value: Any = [1] if leaf else []
    if kind == "dict":
        value = {"k": 1} if leaf else {}
    for _ in range(levels - 1):
        value = [value] if kind == "list" else {"k": value}
    return value


def with_payload(extra: Any) -> Event:
    return attrs.evolve(EVENT, payload={**EVENT.payload, "extra": extra})


def raw_row(extra: Any) -> bytes:
    """The event with the extra payload field, in canonical form (as a forger writes it)."""
    return _with_extra(orjson.dumps(extra, option=orjson.OPT_SORT_KEYS))


def _with_extra(text: bytes) -> bytes:
    data = canonical_bytes(EVENT)
    return data.replace(b'"payload":{', b'"payload":{"extra":' + text + b",", 1)


def deep_lists(levels: int) -> bytes:
    """``nested(levels)`` as JSON text, for nesting no encoder would write."""
    return b"[" * levels + b"1" + b"]" * levels


def writable(extra: Any) -> bool:
    try:
        check_json_value({**EVENT.payload, "extra": extra})
    except InputLimitExceeded:
        return False
    return True


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("depth") / "base.db"
    with SQLiteStore(path) as store:
        store.append("T-1", [EVENT], 0)
    return path


def forge(base: Path, tmp: Path, data: bytes) -> Path:
    """A copy of the store whose only row is ``data``, both hashes (and the head row)
    recomputed."""
    copy = tmp / "forged.db"
    shutil.copyfile(base, copy)
    con = sqlite3.connect(copy, isolation_level=None)
    con.execute(
        "UPDATE events SET data = ?, ticket_hash = ?, global_hash = ? WHERE position = 0",
        (data, ticket_link(GENESIS, data), global_link(GENESIS, data)),
    )
    con.execute("UPDATE fireflow_head SET global_hash = ?", (global_link(GENESIS, data),))
    con.close()
    return copy


def test_the_limit_is_the_documented_one():
    assert MAX_DEPTH == 16
    text = (Path(__file__).parents[1] / "docs" / "security.md").read_text(encoding="utf-8")
    assert "| `MAX_DEPTH`: nesting of lists and mappings in a payload | 16 |" in text


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_the_deepest_payload_an_append_takes_reads_back_and_verifies(tmp_path, kind):
    """At the limit: payload values at depth 16 (a leaf, or an empty container)."""
    for extra in (nested(MAX_DEPTH - 1, kind=kind), nested(MAX_DEPTH, leaf=False, kind=kind)):
        event = with_payload(extra)
        path = tmp_path / f"ok-{kind}-{len(str(extra))}.db"
        with SQLiteStore(path) as store:
            store.append("T-1", [event], 0)
            assert store.read("T-1") == [event]
            assert [s.event for s in store.read_all()] == [event]
            assert verify(store).ok
    # one level more: the append refuses it, naming the field
    with pytest.raises(InputLimitExceeded) as info, SQLiteStore(tmp_path / "no.db") as store:
        store.append("T-1", [with_payload(nested(MAX_DEPTH, kind=kind))], 0)
    assert "payload.extra" in info.value.field


@pytest.mark.parametrize(
    ("levels", "field"),
    [
        (MAX_DEPTH, "data.payload.extra" + "[0]" * MAX_DEPTH),
        (MAX_DEPTH + 4, "data.payload.extra" + "[0]" * MAX_DEPTH),
        (150, "data.payload.extra" + "[0]" * MAX_DEPTH),
        (5_000, "data.payload"),  # past the scan bound: named before it is parsed
        (200_000, "data.payload"),
    ],
)
def test_a_forged_deep_row_is_refused_by_read_read_all_and_verify(base, tmp_path, levels, field):
    path = forge(base, tmp_path, _with_extra(deep_lists(levels)))
    with SQLiteStore(path, create=False) as store:
        with pytest.raises(CorruptRecord) as info:
            store.read("T-1")
        assert info.value.field == field
        assert info.value.position == 0
        assert f"nested deeper than {MAX_DEPTH} levels" in str(info.value)
        with pytest.raises(CorruptRecord) as info:
            list(store.read_all())
        assert info.value.field == field
        report = verify(store)
    assert not report.ok
    assert [(p.what, p.position) for p in report.problems] == [("decode", 0)]
    assert field in str(report.problems[0])


def test_a_readonly_store_refuses_it_too(base, tmp_path):
    path = forge(base, tmp_path, raw_row(nested(MAX_DEPTH + 1, kind="dict")))
    with SQLiteStore(path, readonly=True) as store, pytest.raises(CorruptRecord) as info:
        store.read("T-1")
    assert info.value.field.startswith("data.payload.extra.k")


def test_deep_nesting_outside_the_payload_is_refused_as_data():
    data = canonical_bytes(EVENT).replace(b'"rules":[', b'"rules":' + b"[" * 300, 1)
    data = data[:-1] + b"]" * 299 + b"}"
    with pytest.raises(CorruptRecord) as info:
        decode_event(data, 7)
    assert info.value.field == "data"
    assert info.value.position == 7


def test_a_string_full_of_brackets_is_not_nesting():
    extra = "[" * 1000 + "{" * 1000
    event = with_payload(extra)
    assert decode_event(canonical_bytes(event), 0) == event
    spaced = canonical_bytes(event).replace(b'"seq":', b'"seq": ', 1)  # the strict path
    assert decode_event(spaced, 0) == event


@settings(max_examples=120, deadline=None)
@given(
    levels=st.integers(1, MAX_DEPTH + 6),
    leaf=st.booleans(),
    kind=st.sampled_from(["list", "dict"]),
    strict=st.booleans(),
)
def test_a_row_decodes_exactly_when_an_append_could_have_written_it(levels, leaf, kind, strict):
    extra = nested(levels, leaf=leaf, kind=kind)
    data = raw_row(extra)
    if strict:  # not canonical: the strict decoder, not the compiled fast path
        data = data.replace(b'"seq":', b'"seq": ', 1)
    if writable(extra):
        assert decode_event(data, 3) == with_payload(extra)
    else:
        with pytest.raises(CorruptRecord) as info:
            decode_event(data, 3)
        assert info.value.field.startswith("data.payload.extra")
        assert info.value.position == 3
