"""fireflow.plan: the built-in plan, its settings, round trips and plan-file errors.

Dates are hand-checked against the State Council's 2022 holiday notice
(国办发明电〔2021〕11号): 春节 01-31..02-06 with make-up 01-29 (Sat) and
01-30 (Sun); 国庆 10-01..10-07 with make-up 10-08 (Sat) and 10-09 (Sun); and,
for the roll past the year end, the 2023 notice (国办发明电〔2022〕16号):
元旦 2022-12-31..2023-01-02.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import base_data, dates, plan_variations, scaled, shift_years

from fireflow import (
    Calendar,
    CalendarDataMissing,
    Deadline,
    DefinitionError,
    FireflowError,
    Plan,
    PlanError,
    PlanNotFound,
    builtin_plans,
    calendar_for_plan,
    dump_plan,
    load_plan,
    parse_plan,
)
from fireflow.plan import validate_plan_data
from fireflow.testing.strategies import plan_data as fireflow_plan_data

PLAN = load_plan("changle-2022")
BUILTIN_TEXT = (resources.files("fireflow") / "plans" / "changle-2022.yaml").read_text(
    encoding="utf-8"
)

PLAN_SETTINGS = settings(
    max_examples=scaled(25),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _variant(**changes: Any) -> Plan:
    """The built-in plan with dotted-path changes, e.g. ``settings__due_inclusive=False``."""
    data = base_data()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
    return Plan.model_validate(data)


def _by_id(plan: Plan, calendar: Calendar | None = None) -> dict[str, Deadline]:
    return {d.id: d for d in plan.deadlines(calendar)}


def _d(text: str) -> date:
    return date.fromisoformat(text)


PHASE_IDS = ["mobilization", "self_inspection", "rectification", "spot_check", "consolidation"]
PHASE_STARTS = [
    _d(x) for x in ("2022-01-01", "2022-02-01", "2022-03-16", "2022-07-16", "2022-10-16")
]
PHASE_ENDS = [_d(x) for x in ("2022-01-31", "2022-03-15", "2022-07-15", "2022-10-15", "2022-12-31")]


# =========================================================================== #
# Phases (R-CAL-PHASES)


def test_builtin_phases_are_the_five_windows_of_the_plan() -> None:
    assert [p.id for p in PLAN.phases] == PHASE_IDS
    assert [p.start for p in PLAN.phases] == PHASE_STARTS
    assert [p.end for p in PLAN.phases] == PHASE_ENDS
    names = ["动员部署", "自查自纠", "整改落实", "抽查核实", "巩固验收"]
    assert [p.name_zh for p in PLAN.phases] == names
    assert sum(p.days for p in PLAN.phases) == 365
    assert (PLAN.start, PLAN.end) == (date(2022, 1, 1), date(2022, 12, 31))


def test_every_day_of_2022_lies_in_exactly_one_phase() -> None:
    d = date(2022, 1, 1)
    while d.year == 2022:
        holders = [p for p in PLAN.phases if d in p]
        assert len(holders) == 1, d
        assert PLAN.phase_on(d) == holders[0]
        d += timedelta(days=1)


@settings(max_examples=scaled(100), deadline=None, database=None)
@given(dates(date(2020, 1, 1), date(2024, 12, 31)))
def test_phase_on_agrees_with_the_windows(d: date) -> None:
    holders = [p for p in PLAN.phases if p.start <= d <= p.end]
    if d.year == 2022:
        assert len(holders) == 1
        assert PLAN.phase_on(d) == holders[0]
    else:
        assert holders == []
        assert PLAN.phase_on(d) is None


@PLAN_SETTINGS
@given(plan_variations())
def test_phases_partition_the_year_in_every_valid_variation(data: dict[str, Any]) -> None:
    plan = Plan.model_validate(data)
    d = date(2022, 1, 1)
    while d.year == 2022:
        holders = [p for p in plan.phases if d in p]
        assert len(holders) == 1, d
        assert plan.phase_on(d) is holders[0]
        d += timedelta(days=1)


# =========================================================================== #
# The built-in plan's deadlines


def test_all_eight_deadlines_with_recipients_and_rules() -> None:
    got = _by_id(PLAN)
    expected = {  # transcribed from fireflow/plans/changle-2022.yaml
        "ledger": (("property",), ("town", "housing", "fire"), "R-DUE-LEDGER", "五(二)"),
        "dossier": (("town",), ("housing", "fire"), "R-DUE-DOSSIER", "五(三)"),
        "summary": (("town",), ("housing", "fire"), "R-DUE-SUMMARY", "六(六)"),
    }
    for ph in PHASE_IDS:
        expected[f"progress.{ph}"] = (("town",), ("housing", "fire"), "R-DUE-PROGRESS", "六(六)")
    assert set(got) == set(expected)
    assert len(PLAN.deadlines()) == 8
    for key, (senders, recipients, rule, clause) in expected.items():
        d = got[key]
        assert (d.senders, d.recipients, d.rule, d.clause) == (senders, recipients, rule, clause)
        assert d.rules[0] == rule
        assert PLAN.rule(rule).clause == clause
        assert d.provisional is False
        for agency in (*d.senders, *d.recipients):
            assert PLAN.agency(agency).id == agency


def test_builtin_deadline_dates() -> None:
    got = _by_id(PLAN)
    # id: (nominal, due, earliest, phase)
    expected = {
        "ledger": ("2022-03-15", "2022-03-15", None, "self_inspection"),  # Tuesday
        "dossier": ("2022-07-15", "2022-07-15", None, "rectification"),  # Friday
        "summary": ("2022-12-10", "2022-12-12", None, "consolidation"),  # Sat -> Mon
        # 每阶段结束前5日, default reading "on": phase end - 5 calendar days
        "progress.mobilization": ("2022-01-26", "2022-01-26", "2022-01-26", "mobilization"),
        "progress.self_inspection": ("2022-03-10", "2022-03-10", "2022-03-10", "self_inspection"),
        "progress.rectification": ("2022-07-10", "2022-07-11", "2022-07-10", "rectification"),
        "progress.spot_check": ("2022-10-10", "2022-10-10", "2022-10-10", "spot_check"),
        "progress.consolidation": ("2022-12-26", "2022-12-26", "2022-12-26", "consolidation"),
    }
    for key, (nominal, due, earliest, phase) in expected.items():
        d = got[key]
        assert d.nominal == _d(nominal), key
        assert d.due == _d(due), key
        assert d.earliest == (None if earliest is None else _d(earliest)), key
        assert d.phase == phase, key
    assert got["summary"].rules == ("R-DUE-SUMMARY", "R-DUE-INCLUSIVE", "R-DUE-HOLIDAY")
    assert got["ledger"].rules == ("R-DUE-LEDGER", "R-DUE-INCLUSIVE")
    assert got["progress.rectification"].rules == ("R-DUE-PROGRESS", "R-DUE-HOLIDAY")
    assert got["progress.spot_check"].rules == ("R-DUE-PROGRESS",)
    assert got["summary"].name_zh == "专项整治工作总结报告"
    assert got["progress.rectification"].name_zh == "阶段工作进展书面报送（整改落实）"
    assert got["progress.rectification"].name_en == "Phase progress report (Rectification)"


def test_deadlines_are_in_due_order_and_serialise() -> None:
    ds = PLAN.deadlines()
    assert [d.due for d in ds] == sorted(d.due for d in ds)
    assert [d.id for d in ds][:3] == ["progress.mobilization", "progress.self_inspection", "ledger"]
    data = [d.to_data() for d in ds]
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    summary = next(x for x in data if x["id"] == "summary")
    assert summary["due"] == "2022-12-12"
    assert summary["recipients"] == ["housing", "fire"]
    assert summary["earliest"] is None


def test_plan_time_zone_setting_decides_the_local_date() -> None:
    instant = datetime(2022, 3, 15, 17, 0, tzinfo=UTC)
    assert PLAN.local_date(instant) == date(2022, 3, 16)  # Asia/Shanghai
    assert PLAN.phase_on(instant).id == "rectification"  # type: ignore[union-attr]
    utc_plan = _variant(timezone="UTC")
    assert utc_plan.local_date(instant) == date(2022, 3, 15)
    assert utc_plan.phase_on(instant).id == "self_inspection"  # type: ignore[union-attr]
    assert utc_plan.calendar.to_date(instant) == date(2022, 3, 15)


def test_rectification_periods() -> None:
    assert PLAN.rectification_period("evacuation_blocked") == (3, "calendar")
    assert PLAN.rectification_period("spacing_illegal_building") == (30, "calendar")


# =========================================================================== #
# Settings: 每阶段结束前5日 readings (R-DUE-PROGRESS)

_PHASE_RESULTS = dict[str, tuple[date, date, date]]  # id -> (nominal, due, earliest)


def _progress(plan: Plan, calendar: Calendar | None = None) -> _PHASE_RESULTS:
    return {
        d.id.removeprefix("progress."): (d.nominal, d.due, d.earliest)  # type: ignore[misc]
        for d in plan.deadlines(calendar)
        if d.id.startswith("progress.")
    }


def test_reading_on() -> None:
    assert _progress(_variant(progress_reports__reading="on")) == {
        "mobilization": (_d("2022-01-26"), _d("2022-01-26"), _d("2022-01-26")),
        "self_inspection": (_d("2022-03-10"), _d("2022-03-10"), _d("2022-03-10")),
        "rectification": (_d("2022-07-10"), _d("2022-07-11"), _d("2022-07-10")),  # Sun -> Mon
        "spot_check": (_d("2022-10-10"), _d("2022-10-10"), _d("2022-10-10")),
        "consolidation": (_d("2022-12-26"), _d("2022-12-26"), _d("2022-12-26")),
    }


def test_reading_no_later_than() -> None:
    # the same latest day; any day of the phase before it is on time
    assert _progress(_variant(progress_reports__reading="no_later_than")) == {
        "mobilization": (_d("2022-01-26"), _d("2022-01-26"), _d("2022-01-01")),
        "self_inspection": (_d("2022-03-10"), _d("2022-03-10"), _d("2022-02-01")),
        "rectification": (_d("2022-07-10"), _d("2022-07-11"), _d("2022-03-16")),
        "spot_check": (_d("2022-10-10"), _d("2022-10-10"), _d("2022-07-16")),
        "consolidation": (_d("2022-12-26"), _d("2022-12-26"), _d("2022-10-16")),
    }


def test_reading_within() -> None:
    # any of the last five days (end - 4 .. end); the phase end is the latest,
    # then rolled forward when it is a rest day
    assert _progress(_variant(progress_reports__reading="within")) == {
        "mobilization": (_d("2022-01-26"), _d("2022-02-07"), _d("2022-01-27")),  # 01-31 春节
        "self_inspection": (_d("2022-03-10"), _d("2022-03-15"), _d("2022-03-11")),
        "rectification": (_d("2022-07-10"), _d("2022-07-15"), _d("2022-07-11")),
        "spot_check": (_d("2022-10-10"), _d("2022-10-17"), _d("2022-10-11")),  # Sat -> Mon
        "consolidation": (_d("2022-12-26"), _d("2023-01-03"), _d("2022-12-27")),  # 2023 元旦
    }


def test_unit_working() -> None:
    # the 5th working day before the phase end (the end itself not counted)
    assert _progress(_variant(progress_reports__unit="working")) == {
        # 01-30 (Sun) and 01-29 (Sat) are make-up working days and count
        "mobilization": (_d("2022-01-26"), _d("2022-01-26"), _d("2022-01-26")),
        "self_inspection": (_d("2022-03-08"), _d("2022-03-08"), _d("2022-03-08")),
        "rectification": (_d("2022-07-08"), _d("2022-07-08"), _d("2022-07-08")),
        "spot_check": (_d("2022-10-10"), _d("2022-10-10"), _d("2022-10-10")),
        "consolidation": (_d("2022-12-26"), _d("2022-12-26"), _d("2022-12-26")),
    }
    got = _progress(
        _variant(progress_reports__unit="working", progress_reports__reading="no_later_than")
    )
    assert got["rectification"] == (_d("2022-07-08"), _d("2022-07-08"), _d("2022-03-16"))


def test_offset_zero_and_offset_longer_than_a_phase() -> None:
    got = _progress(_variant(progress_reports__offset=0))
    assert got["mobilization"] == (_d("2022-01-31"), _d("2022-02-07"), _d("2022-01-31"))
    assert got["spot_check"] == (_d("2022-10-15"), _d("2022-10-17"), _d("2022-10-15"))
    got = _progress(_variant(progress_reports__offset=40))
    # 01-31 - 40 days lies before the phase: clamped to its start 01-01 (元旦) -> 01-04
    assert got["mobilization"] == (_d("2022-01-01"), _d("2022-01-04"), _d("2022-01-01"))
    # 03-15 - 40 days = 02-03, inside 春节 -> 02-07
    assert got["self_inspection"] == (_d("2022-02-03"), _d("2022-02-07"), _d("2022-02-03"))


# =========================================================================== #
# Settings: R-DUE-INCLUSIVE and R-DUE-HOLIDAY


def test_due_exclusive_moves_fixed_deadlines_one_day_earlier() -> None:
    got = _by_id(_variant(settings__due_inclusive=False))
    assert got["ledger"].due == _d("2022-03-14")
    assert got["dossier"].due == _d("2022-07-14")
    assert got["summary"].due == _d("2022-12-09")  # Friday: no roll needed any more
    assert got["summary"].nominal == _d("2022-12-10")
    assert got["summary"].rules == ("R-DUE-SUMMARY", "R-DUE-INCLUSIVE")
    # progress reports are not "X月X日前" deadlines
    assert got["progress.rectification"].due == _d("2022-07-11")


def test_due_exclusive_applies_before_the_holiday_policy() -> None:
    # nominal Mon 12-12: the day before is Sunday 12-11, rolled forward to 12-12
    # (applying the policy first would give 12-11, a rest day)
    got = _by_id(_variant(settings__due_inclusive=False, deadlines__0__nominal="2022-12-12"))
    assert got["ledger"].due == _d("2022-12-12")
    assert got["ledger"].rules == ("R-DUE-LEDGER", "R-DUE-INCLUSIVE", "R-DUE-HOLIDAY")
    # nominal Mon 02-07: the day before is 02-06 (春节); rolled back it is the
    # make-up Sunday 01-30
    got = _by_id(
        _variant(
            settings__due_inclusive=False,
            settings__holiday_policy="roll_back",
            deadlines__0__nominal="2022-02-07",
        )
    )
    assert got["ledger"].due == _d("2022-01-30")


@pytest.mark.parametrize(
    ("changes", "summary_due", "rectification_due"),
    [
        ({}, _d("2022-12-12"), _d("2022-07-11")),
        ({"settings__holiday_policy": "roll_back"}, _d("2022-12-09"), _d("2022-07-08")),
        ({"settings__holiday_policy": "none"}, _d("2022-12-10"), _d("2022-07-10")),
        # public holidays only: Saturday 12-10 and Sunday 07-10 are not rest days
        ({"settings__rest_days": "holidays_only"}, _d("2022-12-10"), _d("2022-07-10")),
    ],
)
def test_holiday_settings(
    changes: dict[str, Any], summary_due: date, rectification_due: date
) -> None:
    got = _by_id(_variant(**changes))
    assert got["summary"].due == summary_due
    assert got["progress.rectification"].due == rectification_due


def test_holidays_only_still_rests_on_public_holidays() -> None:
    cal = _variant(settings__rest_days="holidays_only").calendar
    assert cal.is_rest_day(date(2022, 10, 3))
    assert cal.is_working_day(date(2022, 10, 15))  # an ordinary Saturday
    assert cal.deadline(date(2022, 9, 30), 1) == date(2022, 10, 8)


def test_model_copy_does_not_keep_a_stale_calendar() -> None:
    plan = Plan.model_validate(base_data())
    assert plan.calendar.holiday_policy == "roll_forward"  # cache the calendar
    settings_none = plan.settings.model_copy(update={"holiday_policy": "none"})
    changed = plan.model_copy(update={"settings": settings_none})
    assert changed.settings.holiday_policy == "none"
    assert _by_id(changed)["summary"].due == _d("2022-12-10")  # Saturday, not rolled
    assert changed.calendar.holiday_policy == "none"


# =========================================================================== #
# Years without data: overrides, CalendarDataMissing, provisional estimates


def _plan_2031(**override: Any) -> Plan:
    data = shift_years(base_data(), 9)  # 2031 is not a leap year either
    if override:
        data["holidays"]["overrides"] = [{"year": 2031, **override}]
    return Plan.model_validate(data)


def test_year_without_data_raises() -> None:
    plan = _plan_2031()
    assert plan.year == 2031
    with pytest.raises(CalendarDataMissing) as info:
        plan.deadlines()
    assert info.value.year == 2031
    assert isinstance(info.value, FireflowError)
    assert isinstance(info.value, LookupError)


def test_override_makes_a_year_without_data_work() -> None:
    # 2031-07-10 (Thu) and 07-11 (Fri) rest, 07-12 (Sat) a make-up working day
    plan = _plan_2031(rest_days=["2031-07-10", "2031-07-11"], work_days=["2031-07-12"])
    got = _by_id(plan)
    assert len(got) == 8
    assert got["progress.rectification"].nominal == _d("2031-07-10")
    assert got["progress.rectification"].due == _d("2031-07-12")
    assert got["ledger"].due == _d("2031-03-17")  # 03-15 is a Saturday
    assert got["summary"].due == _d("2031-12-10")  # Wednesday
    assert all(d.provisional is False for d in got.values())
    assert plan.calendar.is_working_day(date(2031, 7, 12))
    assert not plan.calendar.is_provisional(date(2031, 7, 12))


def test_provisional_deadlines_are_marked() -> None:
    plan = _plan_2031()
    cal = calendar_for_plan(plan, allow_provisional=True)
    got = _by_id(plan, cal)
    assert len(got) == 8
    assert all(d.provisional is True for d in got.values())
    assert all(d.to_data()["provisional"] is True for d in got.values())
    assert got["progress.mobilization"].due == _d("2031-01-27")  # 01-26 is a Sunday
    assert got["ledger"].due == _d("2031-03-17")


# =========================================================================== #
# Round trips


@PLAN_SETTINGS
@given(plan_variations())
def test_yaml_round_trip(data: dict[str, Any]) -> None:
    plan = Plan.model_validate(data)
    text = plan.to_yaml()
    again = parse_plan(text)
    assert again == plan
    assert again.to_yaml() == text
    assert again.to_data() == plan.to_data()
    assert again.deadlines() == plan.deadlines()


@settings(max_examples=scaled(10), deadline=None, database=None)
@given(plan_variations())
def test_dump_and_load_round_trip(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    plan = Plan.model_validate(data)
    path = tmp_path_factory.mktemp("plans") / "plan.yaml"
    dump_plan(plan, path)
    assert load_plan(path) == plan
    assert load_plan(str(path)) == plan


@pytest.mark.parametrize("text", ["房管科\x85supervises", "a\u2028b", "x\ufeffy", "a\u202eb"])
def test_invisible_and_control_characters_are_refused(text: str) -> None:
    # U+0085 (NEXT LINE, a C1 control), separators and format characters are
    # refused by the text policy (fireflow.text), with the field's path.
    data = base_data()
    data["agencies"][0]["note"] = text
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert [p.path for p in info.value.problems] == ["agencies[0].note"]
    assert "refused" in info.value.problems[0].message


@pytest.mark.parametrize(
    ("text", "is_name"),
    [
        ("a\rb", False),
        ("a\tb", False),
        ("yes", True),
        ("null", True),
        ("2022-01-01", True),
        ("a: b", True),
        ("#c", True),
    ],
)
def test_round_trip_keeps_awkward_text(text: str, is_name: bool) -> None:
    data = base_data()
    data["agencies"][0]["note"] = text
    if is_name:
        data["name"]["en"] = text
    plan = Plan.model_validate(data)
    again = parse_plan(plan.to_yaml())
    assert again == plan
    assert again.agencies[0].note == text


def test_builtin_round_trips() -> None:
    assert parse_plan(PLAN.to_yaml()) == PLAN
    assert Plan.model_validate(PLAN.to_data()) == PLAN
    assert builtin_plans() == ["changle-2022"]


# =========================================================================== #
# Malformed plan files


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line(text: str, snippet: str, occurrence: int = 1) -> int:
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if snippet in line]
    return hits[occurrence - 1]


def _load_error(path: Path) -> PlanError:
    with pytest.raises(PlanError) as info:
        load_plan(path)
    err = info.value
    assert isinstance(err, DefinitionError)
    assert isinstance(err, ValueError)
    assert err.problems
    assert all(p.source == str(path) for p in err.problems)
    return err


def test_many_mistakes_are_reported_together(tmp_path: Path) -> None:
    t = BUILTIN_TEXT
    t = _edit(t, "recipients: [town, housing, fire]", "recipients: [town, nobody, fire]")
    t = _edit(t, "start: 2022-02-01", "start: 2022-01-30")  # overlaps mobilization
    t = _edit(t, "    end: 2022-10-15\n", "    end: 2022-07-01\n")  # spot_check ends before start
    t = _edit(t, "    rule: R-DUE-DOSSIER\n", "    rule: R-DUE-NOPE\n")
    t = _edit(t, "    rule: R-DUE-SUMMARY\n    clause: 六(六)\n", "    rule: R-DUE-SUMMARY\n")
    t = _edit(t, "timezone: Asia/Shanghai ", "timezone: Mars/Olympus ")
    t = _edit(t, "  max_failed_rechecks: 2 ", "  max_failed_rechecks: 2\n  max_failed_rechecks: 3 ")
    path = tmp_path / "bad-plan.yaml"
    path.write_text(t, encoding="utf-8")

    err = _load_error(path)
    found = {(p.path, p.line): p for p in err.problems}
    expected = [
        ("deadlines[0].recipients[1]", _line(t, "recipients: [town, nobody, fire]"), "nobody"),
        ("phases[1].start", _line(t, "start: 2022-01-30"), "overlaps"),
        ("phases[3].end", _line(t, "end: 2022-07-01"), "before it starts"),
        ("deadlines[1].rule", _line(t, "rule: R-DUE-NOPE"), "R-DUE-NOPE"),
        ("deadlines[2].clause", _line(t, "- id: summary"), "required"),
        ("timezone", _line(t, "timezone: Mars/Olympus"), "Mars/Olympus"),
        ("settings.max_failed_rechecks", _line(t, "max_failed_rechecks:", 2), "duplicate key"),
    ]
    for path_, line, fragment in expected:
        assert (path_, line) in found, (path_, line, sorted(found))
        assert fragment in found[(path_, line)].message
        assert path_ in str(err)
    assert found[("deadlines[0].recipients[1]", expected[0][1])].rule == "R-DUE-LEDGER"
    assert found[("phases[1].start", expected[1][1])].rule == "R-CAL-PHASES"
    assert f"{path}:{expected[5][1]}: timezone" in str(err)


def test_a_plan_moved_to_another_year_gets_every_problem_in_one_round(tmp_path: Path) -> None:
    # The year changed and nothing else: the first phase's year, every other date
    # left in 2022, a structure problem, an unknown rule and an unknown agency in a
    # setting all come in the same run (not one round per kind).
    t = _edit(BUILTIN_TEXT, "year: 2022\n", "year: 2023\n")
    t = _edit(t, "    end: 2022-10-15\n", "    end: 2022-10-15x\n")  # not a date
    t = _edit(t, "    rule: R-DUE-SUMMARY\n", "    rule: R-DUE-NOPE\n")
    t = _edit(t, "accountability_office: efficiency", "accountability_office: nobody")
    path = tmp_path / "moved.yaml"
    path.write_text(t, encoding="utf-8")
    err = _load_error(path)
    paths = {p.path: p.message for p in err.problems}
    assert "campaign year is 2023" in paths["phases[0].start"]
    for i in (1, 2, 3, 4):
        assert "before the campaign year 2023" in paths[f"phases[{i}].start"]
    assert "before the campaign year 2023" in paths["deadlines[0].nominal"]
    assert "before the campaign year 2023" in paths["deadlines[1].nominal"]
    assert "phases[3].end" in paths  # the structure problem
    assert "R-DUE-NOPE" in paths["deadlines[2].rule"]
    assert "nobody" in paths["settings.accountability_office"]
    assert err.total == len(err.problems)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("format: [unclosed", 1, "not valid YAML"),
        ("format: [unclosed\n", 2, "not valid YAML"),  # noticed at the end of the stream
        ("format: fireflow.plan/1\nid: x\n\tname: y\n", 3, "not valid YAML"),
        ("a: b: c\n", 1, "not valid YAML"),
        ("format: !!python/object/apply:os.system ['true']\n", 1, "not valid YAML"),
    ],
)
def test_not_yaml(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    err = _load_error(path)
    assert len(err.problems) == 1
    assert err.problems[0].line == line
    assert fragment in err.problems[0].message


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    err = _load_error(path)
    assert [p.message for p in err.problems] == ["empty plan file"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just words\n", "42\n", "null\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text, encoding="utf-8")
    err = _load_error(path)
    assert len(err.problems) == 1
    assert "mapping" in err.problems[0].message
    assert err.problems[0].path == ""


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("format: fireflow.plan/1\nid: 长乐\n".encode("gbk"))
    err = _load_error(path)
    assert "UTF-8" in err.problems[0].message


def test_unknown_plan_name(tmp_path: Path) -> None:
    with pytest.raises(PlanNotFound) as info:
        load_plan("changle-2099")
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, DefinitionError)
    assert info.value.name == "changle-2099"
    assert info.value.available == ("changle-2022",)
    assert "changle-2022" in str(info.value)
    with pytest.raises(PlanNotFound):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(PlanNotFound):
        load_plan(tmp_path)  # a directory is not a plan file


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("  - id: urban\n", "  - id: fire\n", "agencies[2].id"),
        ("  - id: dossier\n", "  - id: ledger\n", "deadlines[1].id"),
        ("  - id: spot_check\n", "  - id: rectification\n", "phases[3].id"),
        ("  - id: annex3\n", "  - id: annex2\n", "forms[2].id"),
        ('  - id: "R-DUE-DOSSIER"\n', '  - id: "R-DUE-LEDGER"\n', None),
    ],
)
def test_duplicate_ids(tmp_path: Path, old: str, new: str, path: str | None) -> None:
    t = _edit(BUILTIN_TEXT, old, new)
    file = tmp_path / "dup.yaml"
    file.write_text(t, encoding="utf-8")
    err = _load_error(file)
    dups = [p for p in err.problems if p.message.startswith("duplicate id")]
    assert len(dups) == 1, err.problems
    if path is not None:
        assert dups[0].path == path
    else:
        assert dups[0].path.startswith("rules[")
    assert dups[0].line == _line(t, new.strip(), 2)


def test_rectification_days_missing_a_category(tmp_path: Path) -> None:
    t = _edit(BUILTIN_TEXT, "    lane_or_sign_missing: 30\n", "")
    file = tmp_path / "days.yaml"
    file.write_text(t, encoding="utf-8")
    err = _load_error(file)
    assert len(err.problems) == 1
    p = err.problems[0]
    assert p.path == "settings.rectification_days"
    assert "lane_or_sign_missing" in p.message
    assert p.rule == "R-TKT-DEADLINE"
    # the line of the key or of the mapping's first entry (the value node starts there)
    assert _line(t, "rectification_days:") <= p.line <= _line(t, "rectification_days:") + 1


def test_rectification_days_unknown_category(tmp_path: Path) -> None:
    entry = "    lane_or_sign_missing: 30\n"
    t = _edit(BUILTIN_TEXT, entry, entry + "    arson: 1\n")
    file = tmp_path / "days.yaml"
    file.write_text(t, encoding="utf-8")
    err = _load_error(file)
    assert [(p.path, p.line) for p in err.problems] == [
        ("settings.rectification_days.arson", _line(t, "arson: 1"))
    ]


def test_problems_are_sorted_and_parse_plan_names_its_source() -> None:
    t = _edit(
        BUILTIN_TEXT, "recipients: [town, housing, fire]", "recipients: [nobody, housing, fire]"
    )
    t = _edit(t, "timezone: Asia/Shanghai ", "timezone: Nowhere/Atall ")
    with pytest.raises(PlanError) as info:
        parse_plan(t, source="inline.yaml")
    problems = info.value.problems
    assert [p.path for p in problems] == ["timezone", "deadlines[0].recipients[0]"]
    assert [p.source for p in problems] == ["inline.yaml", "inline.yaml"]
    with pytest.raises(PlanError) as info:
        parse_plan(t)
    assert {p.source for p in info.value.problems} == {"<data>"}


# =========================================================================== #
# Determinism across interpreter runs

_SCRIPT = """
import json
from fireflow import load_plan, parse_plan, PlanError
plan = load_plan("changle-2022")
bad = plan.to_yaml().replace("lane_or_sign_missing: 30", "arson: 1").replace(
    "spacing_illegal_building: 30", "theft: 2")
try:
    parse_plan(bad, source="bad.yaml")
except PlanError as exc:
    error = str(exc)
print(json.dumps({
    "yaml": plan.to_yaml(),
    "deadlines": [d.to_data() for d in plan.deadlines()],
    "error": error,
}, ensure_ascii=False))
"""


def _run(hash_seed: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.decode("utf-8"))  # type: ignore[no-any-return]


def test_output_is_identical_across_hash_seeds() -> None:
    first, second = _run("1"), _run("2718281")
    assert first["yaml"] == second["yaml"]
    assert first["deadlines"] == second["deadlines"]
    assert first["error"] == second["error"]
    assert first["yaml"] == PLAN.to_yaml()
    assert first["deadlines"] == [d.to_data() for d in PLAN.deadlines()]
    assert "arson" in first["error"]
    assert "theft" in first["error"]


# =========================================================================== #
# Calendar coverage said up front (plan check, plan show, --provisional, tickets)


def _plan_file(tmp_path: Path, plan: Plan, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    dump_plan(plan, path)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from fireflow.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_coverage_names_each_years_source() -> None:
    from fireflow.plan import calendar_coverage, reach_years

    assert reach_years(PLAN) == range(2022, 2024)  # the longest period crosses 2022-12-31
    assert [c.kind for c in calendar_coverage(PLAN)] == ["official", "official"]
    assert "chinese_calendar" in calendar_coverage(PLAN)[0].detail
    assert calendar_coverage(PLAN, [2005])[0].kind == "corrected"  # built-in correction
    plan = _plan_2031(rest_days=["2031-07-10"])
    kinds = {c.year: c.kind for c in calendar_coverage(plan)}
    assert kinds == {2031: "override", 2032: "missing"}
    kinds = {c.year: c.kind for c in calendar_coverage(plan, allow_provisional=True)}
    assert kinds == {2031: "override", 2032: "provisional"}


def test_plan_check_warns_about_every_year_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, "plan", "check", str(_plan_file(tmp_path, _plan_2031())))
    assert code == 0
    assert "✓" in out
    warnings = [line for line in out.splitlines() if line.startswith("⚠ 20")]
    assert [w.split(":")[0] for w in warnings] == ["⚠ 2031", "⚠ 2032"]
    # the 2022 text of R-CAL-PHASES left in a 2031 plan is named too
    assert "⚠ rules[0].quote_zh: 2022" in out
    assert all("holidays.overrides" in w and "--provisional" in w for w in warnings)
    code, out, _ = _cli(capsys, "plan", "check", str(_plan_file(tmp_path, PLAN, "c.yaml")))
    assert code == 0
    assert "⚠" not in out


def test_plan_show_prints_what_needs_no_calendar_then_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(_plan_file(tmp_path, _plan_2031()))
    code, out, err = _cli(capsys, "plan", "show", path)
    assert code == 1
    assert "2031-03-16" in out  # the phases
    assert "区住建局" in out  # the recipients
    assert "缺少 2031 年" in err
    assert "holidays.overrides" in err
    assert "--provisional" in err
    code, out, _ = _cli(capsys, "plan", "show", path, "--provisional", "--json")
    assert code == 0
    data = json.loads(out)
    assert all(d["provisional"] for d in data["deadlines"])
    assert [c["kind"] for c in data["calendar"]] == ["provisional", "provisional"]
    code, out, _ = _cli(capsys, "plan", "show", "--json")
    assert [c["kind"] for c in json.loads(out)["calendar"]] == ["official", "official"]
    path = str(_plan_file(tmp_path, _plan_2031(rest_days=["2031-07-10"]), "o.yaml"))
    code, out, _ = _cli(capsys, "plan", "show", path, "--provisional")
    assert code == 0
    assert "2031: 方案给定 override" in out
    assert "2032: 估算 provisional" in out


def test_report_due_takes_provisional(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_plan_file(tmp_path, _plan_2031()))
    code, _, err = _cli(capsys, "report", "due", "--on", "2031-03-17", "--plan", path)
    assert code == 1
    assert "2031" in err
    code, out, _ = _cli(
        capsys, "report", "due", "--on", "2031-03-17", "--plan", path, "--provisional", "--json"
    )
    assert code == 0
    assert json.loads(out)["deadlines"]


def test_a_deadline_into_a_year_without_data_is_refused_before_recording() -> None:
    from fireflow.ticket import Ticket

    plan = _plan_2031(rest_days=["2031-07-10"])  # 2031 given, 2032 not
    t = Ticket("T1", plan)
    at = datetime(2031, 12, 1, 9, tzinfo=UTC)
    fields = {
        "community": "金峰小区",
        "town": "金峰镇",
        "category": "evacuation_blocked",
        "subtype": "goods",
        "location": "inside",
        "source": "town_inspection",
    }
    t.command("report", at, "town", **fields)
    t.command("route", at, "town")
    before = t.state
    with pytest.raises(CalendarDataMissing) as info:
        t.command("set_deadline", at, "town", days=60)
    assert (info.value.year, info.value.field) == (2032, "days")
    assert "holidays.overrides" in str(info.value)
    assert t.state == before
    (event,) = t.command("set_deadline", at, "town", days=10)  # inside 2031: fine
    assert event.payload["deadline"] == "2031-12-11"
    provisional = Ticket("T2", plan.provisional())
    provisional.command("report", at, "town", **fields)
    provisional.command("route", at, "town")
    (event,) = provisional.command("set_deadline", at, "town", days=60)
    assert event.payload["deadline"].startswith("2032-01")


# =========================================================================== #
# Every setting checked against the plan's own ids; round trips of any valid plan


@settings(max_examples=scaled(40), deadline=None, database=None)
@given(fireflow_plan_data())
def test_any_valid_plan_round_trips_exactly(data: dict[str, Any]) -> None:
    plan = validate_plan_data(data, "<hypothesis>")
    text = plan.to_yaml()
    again = parse_plan(text)
    assert again == plan
    assert again.to_yaml() == text


def test_renamed_agencies_leave_no_changle_id_behind() -> None:
    from fireflow.testing.strategies import _renamed_agencies

    data = _renamed_agencies(base_data(), "_b")
    for key in ("non_signing_agencies", "refusal_report_to", "goods_on_fire_lane"):
        del data["settings"][key]
    plan = validate_plan_data(data)
    assert plan.settings.accountability_office == "efficiency_b"
    assert plan.settings.refusal_report_to == ()
    assert plan.settings.goods_on_fire_lane is None
    assert parse_plan(plan.to_yaml()) == plan
    assert "housing" not in {a.id for a in plan.agencies}


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("accountability_office", "efficiency_x", "settings.accountability_office"),
        ("accountability_lead", ["housing", "nobody"], "settings.accountability_lead[1]"),
        ("non_signing_agencies", ["nobody"], "settings.non_signing_agencies[0]"),
        ("refusal_report_to", ["police", "nobody"], "settings.refusal_report_to[1]"),
        ("goods_on_fire_lane", ["nowhere", "goods"], "settings.goods_on_fire_lane[0]"),
    ],
)
def test_every_id_setting_is_checked(key: str, value: Any, path: str) -> None:
    data = base_data()
    data["settings"][key] = value
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert [p.path for p in info.value.problems] == [path]


@pytest.mark.parametrize("key", ["accountability_office", "accountability_lead", "spot_check"])
def test_settings_naming_agencies_have_no_hidden_default(key: str) -> None:
    data = base_data()
    del data["settings"][key]
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert any(p.path == f"settings.{key}" for p in info.value.problems)


def test_progress_reports_can_be_switched_off() -> None:
    data = base_data()
    data["progress_reports"]["senders"] = []
    plan = validate_plan_data(data)
    ids = [d.id for d in plan.deadlines()]
    assert ids == ["ledger", "dossier", "summary"]
    assert parse_plan(plan.to_yaml()) == plan
