"""Tests written to kill mutants that survived the rest of the suite (issue 17, item 6).

Each test names the one-line change of the library it catches.  The expected values are
written out from the plan, the Civil Code or the published formats, never computed with the
library call under test.  ``tools/mutation.py`` runs this file for every core module.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from store_workers import histories
from strategies import base_data

from fireflow import load_plan, route_for
from fireflow.calendar import Calendar
from fireflow.errors import (
    CalendarDataMissing,
    InputLimitExceeded,
    InvalidArgument,
    InvalidCommand,
    NotAuthorized,
)
from fireflow.events import Actor, canonical_bytes, check_json_value, event_from_data
from fireflow.model import TicketState, plan_binding
from fireflow.plan import Plan, validate_plan_data
from fireflow.plan.derive import derive_plan
from fireflow.rules.escalation import due_escalations
from fireflow.rules.explain import explain
from fireflow.store import MemoryStore, SQLiteStore, verify
from fireflow.store.chain import (
    GENESIS,
    Checkpoint,
    checkpoint,
    extend_rows,
    heads_digest,
    ticket_link,
)
from fireflow.ticket import Ticket, fold

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2022, 3, 21, 10, tzinfo=SH)  # a Monday


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- #
# store/chain: the per-ticket hash chains the previous hash (docs/store.md)


def test_ticket_link_chains_the_previous_hash():
    """Mutant: ``ticket_link`` (or ``extend_rows``) drops the previous hash."""
    data = b'{"kind":"report"}'
    first = _sha(b"fireflow/ticket/1\n" + GENESIS.encode() + b"\n" + data)
    assert ticket_link(GENESIS, data) == first
    second = _sha(b"fireflow/ticket/1\n" + first.encode() + b"\n" + data)
    assert ticket_link(first, data) == second
    assert second != first  # the same bytes at another place of the chain hash differently


def test_extend_rows_chains_each_row_on_the_one_before():
    """Mutant: ``extend_rows`` links every row on GENESIS instead of the previous head."""

    class _E:
        def __init__(self, seq: int) -> None:
            self.seq, self.event_id = seq, f"e{seq}"

    a, b = b'{"n":1}', b'{"n":2}'
    rows = extend_rows(
        "T-1", [(_E(1), a), (_E(2), b)], position=0, ticket_head=GENESIS, global_head=GENESIS
    )  # type: ignore[list-item]
    t1 = _sha(b"fireflow/ticket/1\n" + GENESIS.encode() + b"\n" + a)
    t2 = _sha(b"fireflow/ticket/1\n" + t1.encode() + b"\n" + b)
    g1 = _sha(b"fireflow/global/1\n" + GENESIS.encode() + b"\n" + a)
    g2 = _sha(b"fireflow/global/1\n" + g1.encode() + b"\n" + b)
    assert [(r[0], r[5], r[6]) for r in rows] == [(0, t1, g1), (1, t2, g2)]


# --------------------------------------------------------------------------- #
# store/chain: the heads digest is over the heads sorted by ticket id


def test_heads_digest_does_not_depend_on_insertion_order():
    """Mutant: ``heads_digest`` iterates ``heads.items()`` unsorted."""
    h1, h2 = "1" * 64, "2" * 64
    text = json.dumps([["A-1", 3, h1], ["B-2", 1, h2]], separators=(",", ":"))
    expected = _sha(text.encode())
    assert heads_digest({"B-2": (1, h2), "A-1": (3, h1)}) == expected
    assert heads_digest({"A-1": (3, h1), "B-2": (1, h2)}) == expected


# --------------------------------------------------------------------------- #
# ticket: the lifecycle rules


def _building_ticket() -> Ticket:
    t = Ticket("B-1", PLAN)
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇",
        category="spacing_illegal_building", subtype="structure", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    return t


def test_demolish_cites_the_deadline_and_sets_one():
    """Mutant: ``demolish`` drops the deadline rules (cites R-ROUTE-BUILDING only)."""
    t = _building_ticket()
    t.command("certify", AT, "planning")
    (event,) = t.command("demolish", AT + timedelta(days=1), "town")
    assert event.rules == ("R-ROUTE-BUILDING", "R-TKT-DEADLINE")
    assert "R-TKT-DEADLINE" in t.state.deadline_rules


def _fire_lane_ticket() -> Ticket:
    t = Ticket("F-1", PLAN)
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
        evidence=[{"kind": "photo_before", "sha256": "b" * 64}],
    )  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    return t


def test_failed_recheck_needs_a_new_after_photo():
    """Mutant: ``recheck_fail`` does not reset the after-photo flag.

    The plan (四(一)) files a ticket with a photo of the rectified state; a photo of a
    rectification that then failed its re-check shows nothing that was accepted.
    """
    t = _fire_lane_ticket()
    t.command("rectify", AT, "property", evidence=[{"kind": "photo_after", "sha256": "a" * 64}])
    assert t.state.after_photo
    t.command("apply_reinspection", AT, "property")
    parts = [{"agency": "housing", "person": "张"}, {"agency": "fire", "person": "李"}]
    t.command("recheck_fail", AT + timedelta(days=1), "town", participants=parts)
    assert not t.state.after_photo
    t.command("rectify", AT + timedelta(days=2), "property")  # no new photo
    t.command("apply_reinspection", AT + timedelta(days=2), "property")
    t.command("recheck_pass", AT + timedelta(days=3), "town", participants=parts)
    t.command("sign_off", AT + timedelta(days=3), "town", signers=[parts[0]])
    with pytest.raises(InvalidCommand) as err:
        t.command("archive", AT + timedelta(days=3), "town")
    assert err.value.rule == "R-TKT-SIGNOFF"
    assert t.state.state == "signed_off"
    t.command(
        "archive", AT + timedelta(days=3), "town",
        evidence=[{"kind": "photo_after", "sha256": "c" * 64}],
    )  # fmt: skip
    assert t.state.state == "archived"


@pytest.mark.parametrize(
    ("at", "ok"),
    [
        (datetime(1948, 12, 31, 23, 59, tzinfo=SH), False),
        (datetime(1949, 1, 1, tzinfo=SH), True),
        (datetime(2200, 12, 31, 23, 59, tzinfo=SH), True),
        (datetime(2201, 1, 1, tzinfo=SH), False),
    ],
)
def test_a_command_time_from_1949_to_2200(at, ok):
    """Mutants: ``MIN_YEAR, MAX_YEAR = 1949, 2200`` into 1948, 1950, 2199 or 2201.

    docs/lifecycle.md: a time before 1949 or after 2200 is refused (``InvalidCommand``,
    field ``at``); the first and last moments of the range are accepted.
    """
    t = Ticket("Y-1", PLAN)
    fields = {
        "community": "金峰小区", "town": "金峰镇", "category": "fire_lane_vehicle",
        "subtype": "private_car", "location": "inside", "source": "town_inspection",
    }  # fmt: skip
    if ok:
        # inside the range the next check speaks: the campaign's own dates (R-CAL-PHASES)
        with pytest.raises(InvalidCommand) as err:
            t.command("report", at, "town", **fields)
        assert err.value.field == "at"
        assert "out of range" not in str(err.value)
        assert "R-CAL-PHASES" in str(err.value)
        assert t.events == ()
    else:
        with pytest.raises(InvalidCommand) as err:
            t.command("report", at, "town", **fields)
        assert err.value.field == "at"
        assert "out of range (years 1949-2200)" in str(err.value)
        assert t.events == ()


def test_a_refused_agency_is_told_who_may_including_the_route_roles():
    """Mutant: the loop that adds the route's role holders to ``allowed`` runs zero times.

    The plan's authority table: ``rectify`` is for the route's rectifier only (四(一)); on the
    ``fire_lane_inside`` route that is the property company.  ``punish`` is for fire and
    housing and the route's enforcers (fire, police, urban: 四(三) 清障).
    """
    t = _fire_lane_ticket()
    with pytest.raises(NotAuthorized) as err:
        t.command("rectify", AT, "fire")
    assert "agency 'fire' may not rectify; allowed: property" in str(err.value)
    with pytest.raises(NotAuthorized) as err:
        t.command("punish", AT, "town")
    assert "may not punish; allowed: fire, housing, police, urban" in str(err.value)


def _routed_lane_ticket(at: datetime, plan: Plan = PLAN) -> Ticket:
    t = Ticket("F-2", plan)
    t.command(
        "report", at, "town", community="金峰小区", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", at, "town")
    return t


def test_a_deadline_without_holiday_data_names_the_start_or_the_days():
    """Mutant: ``err.year == start.year`` into ``>`` (or ``<``) in ``_new_deadline``.

    The built-in holiday tables cover 2004-2026 (State Council notices).  A deadline set in
    2030 fails on its start (field ``at``); one set on 2026-12-21 for 30 working days runs
    into 2027 and fails on its length (field ``days``).
    """
    # the same plan moved to the years of the commands (a report outside its campaign is refused)
    plan_2030, _ = derive_plan(PLAN, district="长乐区", year=2030, district_en="Changle")
    t = _routed_lane_ticket(datetime(2030, 3, 21, 10, tzinfo=SH), plan_2030)
    with pytest.raises(CalendarDataMissing) as err:
        t.command("set_deadline", datetime(2030, 3, 21, 10, tzinfo=SH), "town")
    assert (err.value.field, err.value.year) == ("at", 2030)
    at = datetime(2026, 12, 21, 10, tzinfo=SH)
    plan_2026, _ = derive_plan(PLAN, district="长乐区", year=2026, district_en="Changle")
    t = _routed_lane_ticket(at, plan_2026)
    with pytest.raises(CalendarDataMissing) as err:
        t.command("set_deadline", at, "town", days=30)
    assert (err.value.field, err.value.year) == ("days", 2027)
    assert t.state.deadline is None


def test_a_plan_migration_before_the_report_is_refused():
    """Mutant: ``state.state == INITIAL_STATE`` into ``<`` in ``_migrate``.  A migration
    continues a ticket under another plan (docs/lifecycle.md); a ticket never reported has
    no plan to continue from: its report binds it."""
    t = Ticket("N-1", PLAN)
    with pytest.raises(InvalidCommand) as err:
        t.command("migrate_plan", AT, "housing", reason="区领导小组通过新版方案")
    assert "a ticket not yet reported is bound to a plan by its report" in str(err.value)
    assert t.events == ()


def test_fold_keyword_arguments_and_the_expected_seq():
    """Mutants in ``fold``: the ``*`` of its signature into ``/``; the message's
    ``v[_VER] + 1`` into ``<< 1``.

    ``fold(events, ticket_id, *, plan=..., migrate_from=...)``: the events and ticket id may
    be named, the plan may not be passed by position.  Events must run in ``seq`` order from
    1 (docs/lifecycle.md, "What fold promises"): after seq 2 comes 3, not 4.
    """
    t = _fire_lane_ticket()
    t.command("rectify", AT, "property")
    events = t.events
    assert len(events) == 4
    assert fold(events=events, ticket_id="F-1", plan=PLAN) == t.state
    with pytest.raises(TypeError):
        fold(events, "F-1", PLAN)  # type: ignore[misc]
    gap = [events[0], events[1], events[3]]
    with pytest.raises(InvalidArgument) as err:
        fold(gap, "F-1", plan=PLAN)
    assert err.value.field == "seq"
    assert f"event {events[3].event_id} has seq 4, expected 3" in str(err.value)


# --------------------------------------------------------------------------- #
# calendar


def test_next_working_day_past_the_end_of_the_tables():
    """Mutant: the next-year jump in ``_next_working`` uses an impossible date (12-32).

    2022-12-31 is a Saturday, 2023-01-01 a Sunday and 2023-01-02 the New Year holiday in lieu
    (State Council notice for 2023), so the first working day is Tuesday 2023-01-03.  A fresh
    calendar has built its tables up to 2022 only when asked about 2022.
    """
    cal = Calendar()
    assert cal.next_working_day(date(2022, 12, 31)) == date(2023, 1, 3)
    assert Calendar().next_working_day(date(2023, 12, 30), include=False) == date(2024, 1, 2)


def test_next_working_day_on_the_last_representable_day():
    """Mutant: ``o > _LAST_ORDINAL`` becomes ``>=`` in ``_next_working``.

    9999-12-31 is a Friday: with provisional data it is its own next working day, not "beyond".
    """
    cal = Calendar(allow_provisional=True)
    assert date.max.weekday() == 4
    assert cal.next_working_day(date.max) == date.max


def test_correction_problems_are_counted_in_the_message():
    """Mutant: ``len(problems) > 1`` into ``> 2`` in ``CorrectedSource``.

    国办发明电〔2021〕11号: Saturday 2022-10-08 and Sunday 2022-10-09 were make-up working
    days (国庆节调休上班), and the data has them so.  Correcting either into a working day
    changes nothing: one such correction is one problem, two are the first and "1 more".
    """
    from fireflow.calendar import ChineseCalendarSource, CorrectedSource, Correction

    src = "国办发明电〔2021〕11号"
    sat = Correction(date(2022, 10, 8), "working", source=src)
    sun = Correction(date(2022, 10, 9), "working", source=src)
    base = ChineseCalendarSource()
    with pytest.raises(InvalidArgument) as err:
        CorrectedSource(base, [sat])
    assert err.value.field == "corrections[0].kind"
    assert "more)" not in str(err.value)
    with pytest.raises(InvalidArgument) as err:
        CorrectedSource(base, [sat, sun])
    assert err.value.field == "corrections[0].kind"
    assert "the correction changes nothing (更正无效) (and 1 more)" in str(err.value)


@pytest.mark.parametrize("n", [40, 300, 1000])
def test_working_days_before_the_data_names_the_year_just_before_it(n):
    """Mutant: ``range(self._y0 - 1, ...)`` into ``range(self._y0 % 1, ...)`` in
    ``_nth_working_before`` (the years before the tables would be loaded all at once, and the
    error would name the earliest of them).

    The built-in data starts in 2004: counting 40, 300 or 1000 working days back from
    2004-03-01 first runs out in 2003, and that is the year named (field ``n``).
    """
    with pytest.raises(CalendarDataMissing) as err:
        Calendar().working_days_before(date(2004, 3, 1), n)
    assert (err.value.year, err.value.field) == (2003, "n")
    if n > 40:  # and forward: 300 or 1000 working days from 2026-11-02 run out in 2027
        with pytest.raises(CalendarDataMissing) as err:
            Calendar().period(date(2026, 11, 2), n, "working")
        assert (err.value.year, err.value.field) == (2027, "n")


def test_every_correction_problem_is_found_after_a_repeated_day():
    """Mutant: the ``continue`` after a repeated day into ``break`` in
    ``correction_problems`` (the corrections after it would go unchecked).

    国办发明电〔2021〕11号: 2022-10-08 and 2022-10-09 were working days already; the first is
    also listed twice.  Three problems: 0 changes nothing, 1 repeats a day, 2 changes nothing.
    """
    from fireflow.calendar import ChineseCalendarSource, Correction, correction_problems

    src = "国办发明电〔2021〕11号"
    sat = Correction(date(2022, 10, 8), "working", source=src)
    sun = Correction(date(2022, 10, 9), "working", source=src)
    found = correction_problems(ChineseCalendarSource(), [sat, sat, sun])
    assert [(i, key) for i, key, _ in found] == [(0, "kind"), (1, "date"), (2, "kind")]


def test_a_correction_to_a_listed_rest_day_changes_nothing():
    """Mutant: ``from_days`` flags a listed rest day 2 instead of 1 (a "rest" correction of
    that day would then count as applied).  全国年节及纪念日放假办法: 10-01 is 国庆节, a
    rest day; correcting it to a rest day changes nothing and is left out."""
    from fireflow.calendar import Correction, YearData

    year = YearData.from_days(2022, [date(2022, 10, 1)], (), source="test")
    assert year.is_rest(date(2022, 10, 1))
    same = year.corrected([Correction(date(2022, 10, 1), "rest", source="国务院令第644号")])
    assert same is year


def test_demolition_survives_a_round_trip_through_the_stored_bytes():
    """Mutant: ``kind == "demolish"`` in ``evolve`` becomes ``kind is "demolish"``.

    The literal in a test is the same object as the library's, so only events read back from
    bytes (as a store does) tell ``is`` from ``==``: their ``kind`` is a new string.
    """
    t = _building_ticket()
    t.command("certify", AT, "planning")
    t.command("demolish", AT + timedelta(days=1), "town")
    assert t.state.demolished
    replayed = [event_from_data(json.loads(canonical_bytes(e))) for e in t.events]
    assert fold(replayed, "B-1", plan=PLAN) == t.state


def _report_sign(plan: Plan, **fields: object) -> Ticket:
    t = Ticket("S-1", plan)
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇",
        category="lane_or_sign_missing", subtype="sign", location="inside",
        source="town_inspection", **fields,
    )  # fmt: skip
    return t


def test_a_report_that_denies_a_delivery_on_or_after_the_date_is_refused():
    """Mutant: ``(delivered >= since) != new`` becomes ``<= new`` (R-ROUTE-SIGN, 四(二) 新建).

    With ``new_community_since`` 2020-01-01 a community delivered on 2021-06-30 is new: a
    report saying it is not contradicts its own date; one delivered in 2015 is not new.
    """
    since = date(2020, 1, 1)
    plan = PLAN.model_copy(
        update={"settings": PLAN.settings.model_copy(update={"new_community_since": since})}
    )
    with pytest.raises(InvalidCommand) as err:
        _report_sign(plan, delivered_on=date(2021, 6, 30), new_community=False)
    assert (err.value.field, err.value.rule) == ("new_community", "R-ROUTE-SIGN")
    with pytest.raises(InvalidCommand):
        _report_sign(plan, delivered_on=since, new_community=False)  # on the day: new
    t = _report_sign(plan, delivered_on=date(2015, 1, 1), new_community=False)
    assert t.state.new_community is False
    assert _report_sign(plan, delivered_on=since, new_community=True).state.new_community


def test_migrating_to_the_plan_in_force_is_refused():
    """Mutant: the "already under this plan" check ``==`` becomes ``>`` in ``_migrate``."""
    t = _fire_lane_ticket()
    before = t.state
    with pytest.raises(InvalidCommand) as err:
        t.command("migrate_plan", AT, "housing", reason="新版方案")
    assert err.value.field == "kind"
    assert "already under plan" in str(err.value)
    assert (t.state.plan_id, t.state.plan_digest) == (before.plan_id, before.plan_digest)
    assert all(e.kind != "plan_migrated" for e in t.events)


# --------------------------------------------------------------------------- #
# events: what the canonical encoding accepts


def _nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = {"k": value}
    return value


def test_check_json_value_takes_string_keys_and_counts_depth_in_mappings():
    """Mutants: ``not isinstance(k, str)`` negated; ``depth + 1`` into ``depth + 0`` for a
    mapping's values.  MAX_DEPTH is 16 (docs/security.md): a leaf 16 mappings deep is the
    deepest allowed."""
    check_json_value({"a": {"b": [1, "x", None, True]}})
    with pytest.raises(InvalidArgument) as err:
        check_json_value({1: "x"})
    assert err.value.field == "payload"
    check_json_value(_nested(16))
    with pytest.raises(InputLimitExceeded):
        check_json_value(_nested(17))


def _nested_list(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_check_json_value_counts_depth_in_lists_too():
    """Mutant: ``depth + 1`` into ``depth & 1`` for a list's items.  MAX_DEPTH is 16
    (docs/security.md) for any nesting: a leaf 16 lists deep is the deepest allowed, and the
    refusal names the path down to the value too deep."""
    check_json_value(_nested_list(16))
    with pytest.raises(InputLimitExceeded) as err:
        check_json_value(_nested_list(17))
    assert err.value.field == "payload" + "[0]" * 17
    check_json_value({"a": [{"b": _nested_list(13)}]})  # 16 levels, mixed
    with pytest.raises(InputLimitExceeded):
        check_json_value({"a": [{"b": _nested_list(14)}]})


# --------------------------------------------------------------------------- #
# store/chain: what verify says about a broken seq


def test_verify_names_the_expected_seq(tmp_path):
    """Mutant: the message's ``state[0] + 1`` becomes ``state[0] - 1`` in ``verify``.

    The second event of a ticket has seq 2; a row whose seq column is broken is reported with
    the seq it should have had.
    """
    path = tmp_path / "seq.db"
    with SQLiteStore(path) as store:
        for tid, version, events in histories.schedule(2):
            store.append(tid, events, version)
    con = sqlite3.connect(path, isolation_level=None)
    tid = con.execute("SELECT ticket_id FROM events WHERE position = 0").fetchone()[0]
    (second,) = con.execute(
        "SELECT position FROM events WHERE ticket_id = ? AND seq = 2", (tid,)
    ).fetchone()
    con.execute("UPDATE events SET seq = 99 WHERE position = ?", (second,))
    con.close()
    with SQLiteStore(path, create=False) as store:
        report = verify(store)
    seq = [p for p in report.problems if p.what == "seq" and p.position == second]
    assert len(seq) == 1
    assert "expected seq 2, found 99" in str(seq[0])


# --------------------------------------------------------------------------- #
# store/chain: the checkpoint's ticket count, a seq that is not an int, hashes in messages,
# the compiled decoder


def test_verify_compares_the_checkpoints_ticket_count():
    """Mutants: ``tickets != cp.tickets`` into ``==``, ``<``, ``>`` or ``is not`` in
    ``_check_against``.

    300 tickets of one event each: the count is above 256, so CPython makes a new int object
    for it each time (``is not`` then differs from ``!=``).  A checkpoint that says one ticket
    more or fewer (and nothing else) is reported as exactly that.
    """
    store = MemoryStore()
    for k in range(300):
        store.append(histories.ticket_id(k), list(histories.history(k)[:1]), 0)
    cp = Checkpoint.from_json(checkpoint(store, AT).to_json())
    assert (cp.count, cp.tickets) == (300, 300)
    assert verify(store, cp).ok
    for wrong in (299, 301):
        report = verify(store, attrs.evolve(cp, tickets=wrong))
        assert [p.what for p in report.problems] == ["checkpoint.tickets"]
        assert f"300 tickets in the first 300 events, the checkpoint says {wrong}" in str(
            report.problems[0]
        )


def test_verify_counts_on_after_a_seq_that_is_not_an_integer():
    """Mutants: ``state[0] + 1`` into ``state[0] * 1``, ``state[0] + 0``, ``state[1] + 1``
    in ``verify``'s branch for a ``seq`` that is not an int.

    ``verify`` takes any store (``EventStore``); one that reads a damaged seq column as text
    gives ``"2"``.  That row is reported (its seq and its columns), and the count goes on
    from it: the third event, seq 3, is in order, so no problem is reported for it.
    """

    class _TextSeq:
        def __init__(self, inner: MemoryStore) -> None:
            self.inner = inner

        def rows(self):  # type: ignore[no-untyped-def]
            for row in self.inner.rows():
                yield attrs.evolve(row, seq="2") if row.position == 1 else row

    store = MemoryStore()
    events = list(histories.history(0)[:3])
    store.append(events[0].ticket_id, events, 0)
    assert verify(store).ok
    report = verify(_TextSeq(store))  # type: ignore[arg-type]
    assert sorted((p.what, p.position) for p in report.problems) == [
        ("columns", 1),
        ("seq", 1),
    ]
    (seq,) = [p for p in report.problems if p.what == "seq"]
    assert "expected seq 2, found '2'" in str(seq)


def test_verify_quotes_twelve_hex_digits_of_a_wrong_hash():
    """Mutant: ``isinstance(h, str)`` negated in ``_short``: a problem quotes a stored hash
    by its first 12 hex digits and an ellipsis, not by its ``repr`` (all 64 digits)."""

    class _Rewritten:
        def __init__(self, inner: MemoryStore) -> None:
            self.inner = inner

        def rows(self):  # type: ignore[no-untyped-def]
            for row in self.inner.rows():
                yield attrs.evolve(row, ticket_hash="0123456789ab" + "f" * 52)

    store = MemoryStore()
    store.append(histories.ticket_id(0), list(histories.history(0)[:1]), 0)
    (problem,) = verify(_Rewritten(store)).problems  # type: ignore[arg-type]
    assert problem.what == "ticket_hash"
    assert "stored 0123456789ab… does not follow from the previous hash" in str(problem)
    assert "f" * 52 not in str(problem)


def test_verify_reports_a_gap_in_the_positions():
    """Mutant: ``p != expected_position`` into ``p < expected_position`` in ``verify``.

    Positions run 0, 1, 2 without gaps (docs/store.md); a store that skips position 1 (a row
    removed, the rest left in place) is reported at the row after the gap.
    """

    class _Gap:
        def __init__(self, inner: MemoryStore) -> None:
            self.inner = inner

        def rows(self):  # type: ignore[no-untyped-def]
            for row in self.inner.rows():
                yield attrs.evolve(row, position=row.position + 1) if row.position else row

    store = MemoryStore()
    store.append(histories.ticket_id(0), list(histories.history(0)[:1]), 0)
    store.append(histories.ticket_id(1), list(histories.history(1)[:1]), 0)
    (problem,) = verify(_Gap(store)).problems  # type: ignore[arg-type]
    assert (problem.what, problem.position) == ("position", 2)
    assert "expected position 1, found 2" in str(problem)


@pytest.mark.parametrize("value", [1.5, {"y": 1.5}, [1, 2.0], {"y": [{"z": -0.0}]}, [[1e300]]])
def test_a_float_anywhere_in_the_payload_is_refused_on_both_paths(value):
    """Mutants in ``_has_float`` (``t is dict`` negated, and the other type tests).

    A stored payload holds no float (docs/store.md: integers only, no NaN or infinity); a row
    that is otherwise canonical, with a float at any depth of its payload, is refused, as the
    strict parser refuses it (``number ... is not an integer``).
    """
    import orjson

    from fireflow.store.chain import decode_event
    from fireflow.store.errors import CorruptRecord

    event = histories.history(0)[0]
    obj = json.loads(canonical_bytes(event))
    obj["payload"]["x"] = value
    row = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    with pytest.raises(CorruptRecord) as err:
        decode_event(row, 5)
    assert "is not an integer" in str(err.value)


def test_canonical_rows_take_the_compiled_decoder():
    """Mutant: ``type(obj) is not dict`` into ``>=`` in ``_decode_canonical`` (comparing two
    types raises ``TypeError``, which is caught: every row would fall to the slow strict
    parser).  Same results, so only the fast path's own answer tells: a canonical row is
    taken, anything that is not a JSON object is not."""
    from fireflow.store.chain import _decode_canonical

    event = histories.history(0)[0]
    data = canonical_bytes(event)
    assert _decode_canonical(data) == json.loads(data)
    assert _decode_canonical(b"[]") is None
    assert _decode_canonical(b'"x"') is None
    assert _decode_canonical(data.replace(b"{", b"{ ", 1)) is None  # not canonical


def test_the_deepest_valid_payload_takes_the_compiled_decoder():
    """Mutant: ``depth > MAX_DEPTH + 1`` into ``depth > MAX_DEPTH & 1`` in ``_has_float``
    (every payload with a nested mapping would leave the fast path).

    A canonical row whose payload holds no float is taken by the compiled decoder
    (``_decode_canonical``'s contract), however deep its payload nests within the limit:
    16 mappings (docs/security.md, ``MAX_DEPTH``).
    """
    import orjson

    from fireflow.store.chain import _decode_canonical

    obj = json.loads(canonical_bytes(histories.history(0)[0]))
    obj["payload"]["x"] = _nested(15)
    check_json_value(obj["payload"])  # the payload is 16 mappings deep: allowed
    row = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    assert _decode_canonical(row) == obj


def test_a_checkpoint_hash_is_exactly_64_lowercase_hex_digits():
    """Mutants in ``_hex``: ``or`` into ``and``; ``len(value) != 64`` into ``> 64``.

    docs/store.md: a checkpoint's ``global_head`` and ``tickets_digest`` are SHA-256 digests
    in lowercase hex, 64 digits.
    """
    at = datetime(2022, 12, 12, tzinfo=SH)
    good = "0" * 64
    Checkpoint(0, good, 0, good, at)
    for bad in ("0" * 63, "0" * 65, "A" * 64, 64, None):
        for field in ("global_head", "tickets_digest"):
            args = {"global_head": good, "tickets_digest": good, field: bad}
            with pytest.raises(InvalidArgument) as err:
                Checkpoint(count=0, tickets=0, at=at, **args)  # type: ignore[arg-type]
            assert err.value.field == field


# --------------------------------------------------------------------------- #
# plan/routing: the most specific route wins, wherever the plan lists it


def test_routing_does_not_depend_on_the_order_of_the_routes():
    """Mutants: ``score > best[0]`` into ``!=``; the score's ``+`` into ``<<``.

    ``route_for`` picks the most specific matching route (new-community, then location, then
    subtype); the built-in plan has no two equally specific matches, so listing its routes in
    the reverse order changes no routing.
    """
    data = PLAN.model_dump(mode="json")
    data["routes"] = list(reversed(data["routes"]))
    reversed_plan = Plan.model_validate(data)
    n = 0
    for cat in PLAN.categories:
        for location in ("inside", "around"):
            for sub in [s.id for s in cat.subtypes] or [None]:
                for new in (False, True):
                    want = route_for(PLAN, cat.id, location, sub, new_community=new)
                    got = route_for(reversed_plan, cat.id, location, sub, new_community=new)
                    assert got == want, (cat.id, location, sub, new)
                    n += 1
    assert n == 56


def test_a_route_naming_the_subtype_beats_one_naming_none():
    """Mutant: the score's ``+ (1 if route.subtypes else 0)`` into ``<< ...``.

    Two routes for evacuation hazards anywhere, the general one listed first: a hazard of a
    subtype the second route names goes to the second (more specific), others to the first.
    """
    data = PLAN.model_dump(mode="json")
    (first, *_) = [r for r in data["routes"] if r["category"] == "evacuation_blocked"]
    general = dict(first, id="evac_any", location="any", subtypes=[], new_community=None)
    goods = dict(general, id="evac_any_goods", subtypes=["goods"])
    data["routes"] = [r for r in data["routes"] if r["category"] != "evacuation_blocked"]
    data["routes"] += [general, goods]
    plan = Plan.model_validate(data)
    assert route_for(plan, "evacuation_blocked", "inside", "goods").route == "evac_any_goods"
    assert route_for(plan, "evacuation_blocked", "around", "goods").route == "evac_any_goods"
    assert route_for(plan, "evacuation_blocked", "inside", None).route == "evac_any"


def test_a_route_naming_the_location_beats_one_naming_the_subtype():
    """Mutant: the score's ``(1 if route.subtypes else 0)`` into ``else -1`` (a route for
    the exact location and every subtype would tie with one for any location and the exact
    subtype).

    ``route_for``: the most specific route wins, new-community first, then location, then
    subtype.  An evacuation hazard of goods inside a community goes to the route for inside
    (any subtype), even when the route for goods anywhere is listed first.
    """
    data = PLAN.model_dump(mode="json")
    (first, *_) = [r for r in data["routes"] if r["category"] == "evacuation_blocked"]
    goods = dict(first, id="evac_goods_any", location="any", subtypes=["goods"])
    goods["new_community"] = None
    inside = dict(goods, id="evac_inside", location="inside", subtypes=[])
    data["routes"] = [r for r in data["routes"] if r["category"] != "evacuation_blocked"]
    data["routes"] += [goods, inside]
    plan = Plan.model_validate(data)
    assert route_for(plan, "evacuation_blocked", "inside", "goods").route == "evac_inside"
    assert route_for(plan, "evacuation_blocked", "around", "goods").route == "evac_goods_any"


def test_equal_routings_read_back_are_one_object():
    """Mutant: the cache bound ``len(_SHARED) < _SHARED_MAX`` into ``>=`` (nothing would be
    shared).  ``Routing.from_data``: equal routings are shared, not rebuilt (a district's
    tickets use a handful of routes)."""
    from fireflow.plan.routing import Routing

    data = route_for(PLAN, "fire_lane_vehicle", "inside", "private_car").to_data()
    first = Routing.from_data(data)
    again = Routing.from_data(json.loads(json.dumps(data)))
    assert again == first
    assert again is first


# --------------------------------------------------------------------------- #
# rules/escalation: what is due, and only then


def _due(ticket: TicketState, /, **changes: object) -> dict[str, tuple[str, ...]]:
    s = attrs.evolve(ticket, **changes)  # type: ignore[misc]
    return {e.kind: e.targets for e in due_escalations(s, AT, PLAN)}


def test_exposure_is_due_once_for_a_refusal_and_names_the_plan_agencies():
    """Mutants: ``not state.exposed`` loses its ``not``; ``_exposers`` drops the plan's list.

    四(二) 发动群众参与: a refusal is exposed on the notice board (R-ESC-EXPOSE); the plan's
    authority table lets property, committee and town expose, after the route's lead.
    """
    t = _fire_lane_ticket()
    t.command("refuse", AT, "town")
    lead = t.state.routing.lead  # type: ignore[union-attr]
    due = _due(t.state)
    assert due["expose"] == tuple(dict.fromkeys((lead, "property", "committee", "town")))
    assert "expose" not in _due(t.state, exposed=1)


@pytest.mark.parametrize("state", ["overdue", "refused", "signed_off", "passed", "escalated"])
def test_spot_check_escalations_only_while_rectifying(state):
    """Mutants: ``state.state == "rectifying"`` into ``<``, ``<=``, ``>``, ``>=``, ``!=``
    (R-TKT-SPOTCHECK).  The falsified sign-off (R-ACC-FALSIFIED, 六(四) 弄虚作假) is not
    tied to the state: it stays due in every state until a referral names the signers."""
    t = _fire_lane_ticket()
    base = t.state
    signer = Actor("housing", "张")
    assert set(_due(base, reopened=1, falsified_signers=(signer,))) >= {"spot_check", "falsified"}
    assert "falsified" not in _due(base, reopened=1)
    assert not {"spot_check", "falsified"} & set(_due(base))
    other = _due(base, state=state, reopened=1, falsified_signers=(signer,))
    assert "spot_check" not in other
    assert "falsified" in other


def test_the_property_escalation_comes_at_the_second_failed_recheck():
    """Mutant: ``state.failed_rechecks >= max_failed_rechecks`` into ``>``.

    The plan's setting ``max_failed_rechecks: 2`` (R-TKT-FAIL): the second failed re-check,
    not the third, refers the property company to housing and fire (R-ESC-PROPERTY, 六(四)).
    """
    assert PLAN.settings.max_failed_rechecks == 2
    t = _fire_lane_ticket()
    assert "property" not in _due(t.state, failed_rechecks=1)
    assert _due(t.state, failed_rechecks=2)["property"] == ("housing", "fire")
    assert _due(t.state, failed_rechecks=3)["property"] == ("housing", "fire")


# --------------------------------------------------------------------------- #
# rules/explain: the paragraphs of a report and of a plan migration


def test_explain_names_the_person_and_the_migration_once():
    """Mutants in ``explain``: the person test negated; ``e.kind == "report"`` into ``<=``;
    the migration's reason line dropped (``==`` into ``!=``); its plan line repeated."""
    t = Ticket("X-1", PLAN)
    t.command(
        "report", AT, "town", "李", community="金峰小区", town="金峰镇",
        category="evacuation_blocked", subtype="goods", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", AT, "town")
    data = base_data()
    data["settings"]["rectification_days"]["evacuation_blocked"] = 10
    other = validate_plan_data(data)
    m = Ticket("X-1", other, events=t.events, migrate_from=plan_binding(PLAN))
    m.command("migrate_plan", AT + timedelta(days=1), "housing", reason="区领导小组通过新版方案")
    report, route, migration = explain(m.events, other)
    assert report.startswith("#1 2022-03-21 10:00 ")
    assert report.splitlines()[0].split(": ")[0].endswith("（李）")
    assert route.splitlines()[0].split(": ")[0].endswith("政府")  # no person: the agency alone
    assert sum("方案 plan:" in line for line in report.splitlines()) == 1
    assert "记录所依据的方案 recorded under: changle-2022" in report
    lines = migration.splitlines()
    assert not any("方案 plan:" in line for line in lines)
    assert "    理由 reason: 区领导小组通过新版方案" in lines
    assert "记录所依据的方案" not in migration


# --------------------------------------------------------------------------- #
# rules/reporting: what an escalation for a report says


def test_a_late_and_a_missing_dossier_are_told_apart_in_the_reason():
    """Mutant: ``s.state == "late"`` into ``>=`` in ``report_escalations`` ("missing" sorts
    after "late", so a missing report would read as sent late).

    五(三): the dossier is due 2022-07-15 (a Friday).  金峰镇 sends it on 07-18 (late), 首占镇
    not at all by 07-20 (missing): 逾期报送 "sent late" and 逾期未报送 "not sent".
    """
    from fireflow import Actor
    from fireflow.rules.reporting import Submission, report_escalations, status

    towns = {"金峰镇": ["金峰小区"], "首占镇": ["首占花园"]}
    late = Submission("dossier", "金峰镇", datetime(2022, 7, 18, 10, tzinfo=SH), Actor("town"))
    esc = {
        (e.kind, e.town): e
        for e in report_escalations(
            PLAN, status(PLAN, towns, [late], datetime(2022, 7, 20, 10, tzinfo=SH))
        )
        if e.report_id == "dossier"
    }
    sent_late = esc["report_late", "金峰镇"]
    assert "逾期报送（截止 2022-07-15）" in sent_late.reason_zh
    assert "sent late (due 2022-07-15)" in sent_late.reason_en
    not_sent = esc["report_missing", "首占镇"]
    assert "逾期未报送（截止 2022-07-15）" in not_sent.reason_zh
    assert "not sent (due 2022-07-15)" in not_sent.reason_en


def test_a_town_with_three_hundred_communities():
    """Mutant: ``len(set(items)) != len(items)`` into ``is not`` (the same for fewer than
    257 communities only: CPython shares the small ints).  五(二): each community keeps its
    own ledger, so 300 distinct communities give 300 ledger obligations; one listed twice is
    refused naming the town."""
    from fireflow.rules.reporting import obligations

    communities = [f"小区{i:03}" for i in range(300)]
    ledgers = [o for o in obligations(PLAN, {"金峰镇": communities}) if o.report_id == "ledger"]
    assert sorted(o.community for o in ledgers) == communities
    with pytest.raises(InvalidArgument) as err:
        obligations(PLAN, {"金峰镇": [*communities, "小区007"]})
    assert err.value.field == "towns.金峰镇"


# --------------------------------------------------------------------------- #
# rules/spotcheck: what a failed "inputs" check says, and the base64 alphabet


def _spot_published() -> tuple[object, object, object]:
    from fireflow.rules.spotcheck import Community, Inspector, commit, draw, draw_inputs

    comms = [Community(f"C{i:03}", f"T{i % 3}") for i in range(12)]
    pool = [
        Inspector("H1", "housing"), Inspector("F1", "fire"), Inspector("U1", "urban"),
        Inspector("P1", "police"),
    ]  # fmt: skip
    inputs = draw_inputs(PLAN, comms, pool)
    seed = "9f86d081884c7d659a2feaa0c55ad015"
    return inputs, commit(inputs, seed), draw(inputs, seed)


@pytest.mark.parametrize("other", ["0" * 64, "f" * 64])
def test_verify_says_which_inputs_differ(other):
    """Mutants on ``verify``'s "inputs" detail (``result.inputs_digest != digest`` into
    ``==``, ``<``, ``>``, ``<=``, ``>=``, ``is not``): the detail names the side that
    differs, and is empty when the check passes.  A digest below and one above every real
    digest, so that an ordering comparison is wrong on one of them."""
    from fireflow.rules.spotcheck import verify

    inputs, c, d = _spot_published()
    seed = "9f86d081884c7d659a2feaa0c55ad015"

    def detail(commitment: object, result: object) -> str:
        r = verify(commitment, inputs, seed, result)  # type: ignore[arg-type]
        (check,) = [ch for ch in r.checks if ch.name == "inputs"]
        return check.detail if not check.ok else f"ok:{check.detail}"

    assert detail(c, d) == "ok:"
    assert detail(attrs.evolve(c, inputs_digest=other), d) == (  # type: ignore[misc]
        "the published inputs are not the committed ones"
    )
    assert detail(c, attrs.evolve(d, inputs_digest=other)) == (  # type: ignore[misc]
        "the draw was made from other inputs"
    )


def test_draw_inputs_need_communities_and_inspectors_not_conflicts():
    """Mutants: ``value is None and not required`` loses its ``not`` in ``_seq``;
    ``unknown[0]`` into ``unknown[-1]`` (the first unknown field, in sorted order, is named).

    docs/spotcheck.md: a draw depends on three lists, ``communities``, ``inspectors`` and
    ``conflicts`` (ties the draw never breaks).  JSON inputs may leave out the conflicts (no
    ties), not the base or the pool: those are refused naming the field.
    """
    from fireflow.rules.spotcheck import inputs_from_data

    data = {
        "communities": [{"id": "A", "town": "T"}, {"id": "B", "town": "T"}],
        "inspectors": [{"id": "H1", "agency": "housing"}, {"id": "U1", "agency": "urban"}],
    }
    assert inputs_from_data(data, PLAN).conflicts == ()
    with pytest.raises(InvalidArgument) as err:  # two unknown fields: the first, sorted
        inputs_from_data({**data, "zone": 1, "area": 2}, PLAN)
    assert err.value.field == "area"
    for key in ("communities", "inspectors"):
        with pytest.raises(InvalidArgument) as err:
            inputs_from_data({k: v for k, v in data.items() if k != key}, PLAN)
        assert err.value.field == key


@pytest.mark.parametrize(
    ("seed", "bits"),
    [("aaba" * 2, 16.0), ("aabaa" * 3, 20.0), ("abababaaba", 40.0), ("abab" * 4, 8.0)],
)
def test_seed_strength_finds_the_shortest_repeated_block(seed, bits):
    """Mutant: ``k = fail[k - 1]`` into ``fail[k - 2]`` in ``_period`` (the prefix function
    falls back to the wrong border).

    ``seed_strength`` counts the shortest block a seed repeats, 4 bits a hex digit (its
    docstring): ``aabaaaba`` is ``aaba`` twice (16 bits), ``abababaaba`` repeats nothing (10
    digits, 40 bits), ``abababab...`` is ``ab`` (8 bits).  Written out by hand.
    """
    from fireflow.rules.spotcheck import seed_strength

    assert seed_strength(seed) == bits


@pytest.mark.parametrize(("size", "ok"), [(0, False), (1, True), (16, True), (17, False)])
def test_team_size_from_1_to_16(size, ok):
    """Mutants: ``1 <= team_size <= _MAX_TEAM`` into ``<`` on either side.  A team has 1 to
    16 inspectors (the message says so); both ends are allowed."""
    from fireflow.rules.spotcheck import Community, Inspector, draw_inputs

    comms = [Community("A", "T")]
    pool = [Inspector("H1", "housing")]
    if ok:
        assert draw_inputs(PLAN, comms, pool, team_size=size).team_size == size
    else:
        with pytest.raises(InvalidArgument) as err:
            draw_inputs(PLAN, comms, pool, team_size=size)
        assert err.value.field == "team_size"
        assert f"must be 1 to 16, got {size}" in str(err.value)


def test_seed_bytes_with_a_del_are_raw_bytes():
    """Mutant: the printable-ASCII test ``b < 0x7F`` into ``b < 128`` in ``seed_strength``.

    0x7F (DEL) is a control character, not printable ASCII: bytes holding it count as raw
    bytes, 8 bits each (``seed_strength``'s docstring), not as text (6.57 bits).
    """
    from fireflow.rules.spotcheck import seed_strength

    assert seed_strength(bytes([0x41, 0x7F])) == 16.0


def test_findings_refuse_a_person_with_a_control_character():
    """Mutant: ``person is not None`` negated in ``findings_to_commands`` (the name would go
    unchecked).  Text fields refuse control characters (docs/security.md)."""
    from fireflow.rules.spotcheck import findings_to_commands

    _, _, d = _spot_published()
    in_window = AT.replace(month=8, day=1)  # inside R-SPOT-WINDOW: the name is what is refused
    with pytest.raises(InputLimitExceeded) as err:
        findings_to_commands(PLAN, d, [], [], in_window, person="李\x07")  # type: ignore[arg-type]
    assert err.value.field == "person"


def test_seed_strength_of_the_whole_base64_alphabet():
    """Mutant: ``chars <= _BASE64`` into ``chars < _BASE64`` in ``_bits_per_symbol``.

    A seed that uses every symbol of the base64 alphabets (standard and URL-safe: A-Z, a-z,
    0-9, ``+ / = - _``, 67 symbols, none repeated) counts 6 bits a symbol (the docstring of
    ``seed_strength``), so 67 x 6 = 402 bits, not the 6.57 bits of arbitrary text.
    """
    from fireflow.rules.spotcheck import seed_strength

    alphabet = (
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "abcdefghijklmnopqrstuvwxyz" "0123456789" "+/=-_"
    )  # fmt: skip
    assert len(set(alphabet)) == len(alphabet) == 67
    assert seed_strength(alphabet) == 402.0
    assert seed_strength(alphabet[:-1]) == 396.0  # one symbol fewer: still base64


def test_explain_says_another_version_whichever_way_the_digests_sort():
    """Mutant: ``recorded != (plan.id, version)`` into ``>`` in ``_plan_line`` (only a
    history recorded under a digest that sorts after the plan's would be flagged).

    A ticket recorded under one version and explained with another says so, in both
    directions (docs: the report paragraph "says so when the history was recorded under
    another version").
    """
    data = base_data()
    data["settings"]["rectification_days"]["evacuation_blocked"] = 10
    other = validate_plan_data(data)
    tickets = {}
    for p in (PLAN, other):
        t = Ticket("V-1", p)
        t.command(
            "report", AT, "town", community="金峰小区", town="金峰镇",
            category="evacuation_blocked", subtype="goods", location="inside",
            source="town_inspection",
        )  # fmt: skip
        tickets[p.id, plan_binding(p)[1]] = t.events
    (a, da), (b, db) = plan_binding(PLAN), plan_binding(other)
    assert da != db
    (report,) = explain(tickets[a, da], other)
    assert f"记录所依据的方案 recorded under: {a}, 版本 version {da}" in report
    (report,) = explain(tickets[b, db], PLAN)
    assert f"记录所依据的方案 recorded under: {b}, 版本 version {db}" in report
    (report,) = explain(tickets[a, da], PLAN)
    assert "recorded under" not in report


def test_explain_lists_a_rule_the_plan_does_not_know_by_its_id():
    """Mutant: ``except Exception`` into another exception in ``explain`` (a rule id that the
    plan does not define would raise instead of being listed bare)."""
    t = _fire_lane_ticket()
    events = list(t.events)
    events[-1] = attrs.evolve(events[-1], rules=("R-NOT-IN-THIS-PLAN",))
    paragraph = explain(events, PLAN)[-1]
    assert paragraph.splitlines()[-1] == "    R-NOT-IN-THIS-PLAN"
