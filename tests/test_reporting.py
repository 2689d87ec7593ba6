"""fireflow.rules.reporting: report obligations per town, their status, escalations.

Due dates are checked by hand against the 2022 calendar: 03-15 is a Tuesday,
07-15 a Friday, 12-10 a Saturday (so the summary is due Monday 12-12 under
roll-forward), 07-10 a Sunday (so progress.rectification is due 07-11).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import attrs
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from strategies import base_data
from typer.testing import CliRunner

from fireflow import Actor, InvalidArgument, NaiveDatetime, load_plan
from fireflow.plan import validate_plan_data
from fireflow.rules.reporting import (
    Submission,
    deadlines_on,
    obligations,
    report_escalations,
    status,
)

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
TOWNS = {"金峰镇": ["金峰小区", "华侨新村"], "首占镇": ["首占花园"]}
TOWN = Actor("town", "张")
SUMMARY_ITEMS = ("专项整治工作情况", "解决的突出问题", "发现的典型案例", "整治前后对比照片")


def sh(y, m, d, h=10, mi=0, s=0):
    return datetime(y, m, d, h, mi, s, tzinfo=SH)


def plan_with(settings=None, progress=None):
    data = base_data()
    data["settings"].update(settings or {})
    data["progress_reports"].update(progress or {})
    return validate_plan_data(data)


def by_key(statuses):
    return {s.obligation.key: s for s in statuses}


# Due dates of the 2022 plan, derived by hand from the plan and the 2022 calendar:
# ledger 五(二) "3月15日前报送" (Tue); dossier 五(三) "7月15日前" (Fri); summary 六(六)
# "12月10日前" (Sat, rolled forward to Mon 12-12); progress 六(六) "每阶段结束前5日":
# phases 五(一)-(五) end 01-31, 03-15, 07-15, 10-15, 12-31, so 01-26 (Wed), 03-10 (Thu),
# 07-10 (Sun, rolled to Mon 07-11), 10-10 (Mon, a working day after the National Day
# holiday), 12-26 (Mon).
DUE_2022 = {
    "ledger": date(2022, 3, 15),
    "dossier": date(2022, 7, 15),
    "summary": date(2022, 12, 12),
    "progress.mobilization": date(2022, 1, 26),
    "progress.self_inspection": date(2022, 3, 10),
    "progress.rectification": date(2022, 7, 11),
    "progress.spot_check": date(2022, 10, 10),
    "progress.consolidation": date(2022, 12, 26),
}


# --------------------------------------------------------------------------- #
# Due dates against the calendar


def test_due_dates_2022():
    due = {d.id: d.due for d in PLAN.deadlines()}
    assert due == DUE_2022
    assert due["ledger"] == date(2022, 3, 15)
    assert due["dossier"] == date(2022, 7, 15)
    assert due["summary"] == date(2022, 12, 12)  # 12-10 is a Saturday: rolled forward
    assert due["progress.mobilization"] == date(2022, 1, 26)
    assert due["progress.self_inspection"] == date(2022, 3, 10)
    assert due["progress.rectification"] == date(2022, 7, 11)  # 07-10 is a Sunday
    assert due["progress.spot_check"] == date(2022, 10, 10)
    assert due["progress.consolidation"] == date(2022, 12, 26)


def test_obligations_per_town_and_per_community():
    obs = obligations(PLAN, TOWNS)
    keys = [o.key for o in obs]
    assert len(keys) == len(set(keys))
    ledger = [o for o in obs if o.report_id == "ledger"]
    assert sorted((o.town, o.community) for o in ledger) == [
        ("金峰镇", "华侨新村"), ("金峰镇", "金峰小区"), ("首占镇", "首占花园"),
    ]  # fmt: skip
    assert all(o.senders == ("property",) for o in ledger)
    town_level = [o for o in obs if o.report_id != "ledger"]
    assert all(o.community is None for o in town_level)
    assert len(town_level) == 2 * 7  # dossier, summary, five progress reports per town
    for o in obs:  # every due date is the hand-derived one
        assert o.due == DUE_2022[o.report_id]
    summary = next(o for o in obs if o.report_id == "summary")
    assert summary.contents_zh == SUMMARY_ITEMS
    assert summary.rules == ("R-DUE-SUMMARY", "R-DUE-INCLUSIVE", "R-DUE-HOLIDAY")
    assert [o.due for o in obs] == sorted(o.due for o in obs)


def test_towns_are_checked():
    with pytest.raises(InvalidArgument) as info:
        obligations(PLAN, {"金峰镇": "金峰小区"})
    assert info.value.field == "towns.金峰镇"
    with pytest.raises(InvalidArgument) as info:
        obligations(PLAN, {"金峰镇": ["A", "A"]})
    assert info.value.field == "towns.金峰镇"


# --------------------------------------------------------------------------- #
# Status: on time, late, missing, not yet due (R-DUE-INCLUSIVE, Calendar.is_late)


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        (sh(2022, 3, 15, 23, 59, 59), "on_time"),  # inclusive: the whole day counts
        (sh(2022, 3, 16, 0, 0, 0), "late"),  # 24:00 is the end
        (datetime(2022, 3, 15, 15, 59, tzinfo=UTC), "on_time"),  # 23:59 in Shanghai
        (datetime(2022, 3, 15, 16, 30, tzinfo=UTC), "late"),  # 00:30 the next day there
        (sh(2022, 2, 20), "on_time"),
    ],
)
def test_ledger_on_time_or_late(submitted, expected):
    sub = Submission("ledger", "首占镇", submitted, Actor("property"), community="首占花园")
    s = by_key(status(PLAN, TOWNS, [sub], sh(2022, 4, 1)))
    assert s[("ledger", "首占镇", "首占花园")].state == expected
    assert s[("ledger", "金峰镇", "金峰小区")].state == "missing"
    rules = s[("ledger", "首占镇", "首占花园")].rules
    # the ledger is the property company's: 六(四) housing and fire, not the efficiency office
    assert ("R-ESC-PROPERTY" in rules) == (expected == "late")
    assert "R-ESC-OFFICIAL" not in rules


def test_missing_and_not_yet_due_turn_at_the_end_of_the_due_day():
    before = by_key(status(PLAN, TOWNS, [], sh(2022, 7, 15, 23, 59, 59)))
    after = by_key(status(PLAN, TOWNS, [], sh(2022, 7, 16, 0, 0, 0)))
    assert before[("dossier", "金峰镇", "")].state == "not_yet_due"
    assert after[("dossier", "金峰镇", "")].state == "missing"
    assert "R-ESC-OFFICIAL" in after[("dossier", "金峰镇", "")].rules


def test_submissions_after_the_moment_are_not_counted():
    sub = Submission("dossier", "金峰镇", sh(2022, 7, 20), TOWN)
    assert by_key(status(PLAN, TOWNS, [sub], sh(2022, 7, 18)))[("dossier", "金峰镇", "")].state == (
        "missing"
    )
    later = by_key(status(PLAN, TOWNS, [sub], sh(2022, 7, 21)))[("dossier", "金峰镇", "")]
    assert later.state == "late"
    assert later.submitted_at == sh(2022, 7, 20)


def test_summary_rolled_forward_is_on_time_on_monday():
    sub = Submission("summary", "首占镇", sh(2022, 12, 12, 20), TOWN, contents=SUMMARY_ITEMS)
    s = by_key(status(PLAN, TOWNS, [sub], sh(2022, 12, 20)))[("summary", "首占镇", "")]
    assert s.state == "on_time"
    assert s.missing_contents == ()
    assert s.state_zh == "按时报送"


def test_office_close_makes_the_evening_late():
    plan = plan_with({"office_close": "17:30"})
    assert plan.settings.office_close == time(17, 30)
    sub = Submission("dossier", "金峰镇", sh(2022, 7, 15, 18), TOWN)
    assert by_key(status(plan, TOWNS, [sub], sh(2022, 8, 1)))[("dossier", "金峰镇", "")].state == (
        "late"
    )


def test_progress_within_reading_marks_early_reports():
    plan = plan_with(progress={"reading": "within"})
    d = {x.id: x for x in plan.deadlines()}["progress.spot_check"]
    assert (d.earliest, d.due) == (date(2022, 10, 11), date(2022, 10, 17))  # 10-15 is a Saturday
    early = Submission("progress.spot_check", "金峰镇", sh(2022, 10, 3), TOWN)
    s = by_key(status(plan, TOWNS, [early], sh(2022, 11, 1)))[("progress.spot_check", "金峰镇", "")]
    assert s.early
    assert s.state == "on_time"


# --------------------------------------------------------------------------- #
# R-DUE-SUMMARY contents, R-ESC-OFFICIAL escalations


def test_summary_missing_contents_is_flagged():
    sub = Submission(
        "summary", "金峰镇", sh(2022, 12, 9), TOWN,
        contents=("专项整治工作情况", "Typical cases found", "  解决的突出问题 "),
    )  # fmt: skip
    statuses = status(PLAN, TOWNS, [sub], sh(2022, 12, 9, 12))
    s = by_key(statuses)[("summary", "金峰镇", "")]
    assert s.state == "on_time"
    assert s.missing_contents == ("整治前后对比照片",)
    assert "R-DUE-SUMMARY" in s.rules
    esc = [e for e in report_escalations(PLAN, statuses) if e.report_id == "summary"]
    assert [(e.kind, e.rule, e.targets) for e in esc] == [
        ("report_incomplete", "R-DUE-SUMMARY", ("housing", "fire"))
    ]
    assert "整治前后对比照片" in esc[0].reason_zh
    # a supplement completes it
    photos = ("整治前后对比照片",)
    more = Submission("summary", "金峰镇", sh(2022, 12, 9, 11), TOWN, contents=photos)
    s = by_key(status(PLAN, TOWNS, [sub, more], sh(2022, 12, 9, 12)))[("summary", "金峰镇", "")]
    assert s.missing_contents == ()
    assert s.submissions == 2


def test_late_and_missing_become_official_escalations():
    late = Submission("dossier", "金峰镇", sh(2022, 7, 18), TOWN)
    statuses = status(PLAN, TOWNS, [late], sh(2022, 7, 20))
    esc = report_escalations(PLAN, statuses)
    kinds = {(e.kind, e.report_id, e.town, e.community) for e in esc}
    assert ("report_late", "dossier", "金峰镇", None) in kinds
    assert ("report_missing", "dossier", "首占镇", None) in kinds
    assert ("report_missing", "ledger", "金峰镇", "华侨新村") in kinds
    assert ("report_missing", "progress.rectification", "首占镇", None) in kinds
    assert not any(e.report_id in ("summary", "progress.spot_check") for e in esc)  # not yet due
    for e in esc:
        if e.report_id == "ledger":  # the property company's report: 六(四) housing and fire
            assert (e.rule, e.targets) == ("R-ESC-PROPERTY", ("housing", "fire"))
            assert e.rules[0] == "R-ESC-PROPERTY"
            assert e.referred_to == ""
        else:  # the town's: the leads refer it (转报) to the efficiency office
            assert e.rule == "R-ESC-OFFICIAL"
            assert e.targets == ("housing", "fire", "efficiency")
            assert e.rules[0] == "R-ESC-OFFICIAL"
            assert (e.referred_by, e.referred_to) == (("housing", "fire"), "efficiency")
        assert e.accountable
        assert e.reason_zh
        assert e.reason_en


def test_accountability_lead_is_a_setting():
    plan = plan_with({"accountability_lead": ["housing"]})
    esc = report_escalations(plan, status(plan, TOWNS, [], sh(2022, 3, 16)))
    assert esc
    official = {e.targets for e in esc if e.rule == "R-ESC-OFFICIAL"}
    assert official == {("housing", "efficiency")}


# --------------------------------------------------------------------------- #
# Submissions: records, JSON, errors naming the field


@given(
    at=st.datetimes(
        min_value=datetime(2022, 1, 1),  # noqa: DTZ001 (bounds of an aware strategy)
        max_value=datetime(2022, 12, 31),  # noqa: DTZ001
        timezones=st.sampled_from([SH, UTC, ZoneInfo("America/New_York")]),
    ),
    contents=st.lists(st.text(alphabet=st.characters(categories=("L", "N", "Zs")), max_size=8)),
    person=st.text(alphabet=st.characters(categories=("L",)), max_size=6),
)
def test_submission_json_round_trip(at, contents, person):
    sub = Submission("summary", "金峰镇", at, Actor("town", person), contents=tuple(contents))
    data = json.loads(json.dumps(sub.to_data(), ensure_ascii=False))
    back = Submission.from_data(data)
    # A time in a DST gap never compares equal across zones (PEP 495): compare the
    # instant and the offset, and the rest field by field.
    assert attrs.evolve(back, submitted_at=at) == sub
    assert back.submitted_at.timestamp() == at.timestamp()
    assert back.submitted_at.utcoffset() == at.utcoffset()


def test_submission_refuses_naive_times_and_bad_data():
    with pytest.raises(NaiveDatetime) as info:
        Submission("ledger", "金峰镇", datetime(2022, 3, 1), TOWN)  # noqa: DTZ001
    assert info.value.field == "submitted_at"
    with pytest.raises(InvalidArgument) as info:
        Submission.from_data(
            {"report_id": "ledger", "town": "T", "submitted_at": "2022-03-01", "by": {"agency": ""}}
        )
    assert info.value.field == "submitted_at"
    with pytest.raises(InvalidArgument) as info:
        Submission.from_data({"report_id": "ledger", "town": "T", "submitted_at": "2022-03-01"})
    assert info.value.field == "by"
    with pytest.raises(InvalidArgument) as info:
        Submission.from_data({"report_id": "ledger", "town": "T"})
    assert info.value.field == "submitted_at"
    with pytest.raises(InvalidArgument) as info:
        Submission("summary", "金峰镇", sh(2022, 12, 1), TOWN, contents="专项整治工作情况")
    assert info.value.field == "contents"
    with pytest.raises(InvalidArgument) as info:
        Submission.from_data(
            {**Submission("summary", "金峰镇", sh(2022, 12, 1), TOWN).to_data(), "contents": "abc"}
        )
    assert info.value.field == "contents"
    with pytest.raises(NaiveDatetime):
        status(PLAN, TOWNS, [], datetime(2022, 3, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("sub", "field"),
    [
        (Submission("annual", "金峰镇", sh(2022, 3, 1), TOWN), "submissions[0].report_id"),
        (Submission("dossier", "长乐镇", sh(2022, 3, 1), TOWN), "submissions[0].town"),
        (Submission("ledger", "金峰镇", sh(2022, 3, 1), TOWN), "submissions[0].community"),
        (
            Submission("ledger", "金峰镇", sh(2022, 3, 1), TOWN, community="首占花园"),
            "submissions[0].community",
        ),
        (
            Submission("dossier", "金峰镇", sh(2022, 3, 1), TOWN, community="金峰小区"),
            "submissions[0].community",
        ),
        (
            Submission("dossier", "金峰镇", sh(2022, 3, 1), Actor("mayor")),
            "submissions[0].by.agency",
        ),
    ],
)
def test_unknown_submissions_name_the_field(sub, field):
    with pytest.raises(InvalidArgument) as info:
        status(PLAN, TOWNS, [sub], sh(2022, 4, 1))
    assert info.value.field == field


# --------------------------------------------------------------------------- #
# What is due on a day


def test_deadlines_on():
    states = {i.deadline.id: (i.state, i.days_left) for i in deadlines_on(PLAN, date(2022, 7, 11))}
    assert states["progress.rectification"] == ("due_today", 0)
    assert states["dossier"] == ("open", 4)
    assert states["ledger"][0] == "overdue"
    assert states["summary"] == ("upcoming", 154)
    with pytest.raises(InvalidArgument):
        deadlines_on(PLAN, datetime(2022, 7, 11, tzinfo=SH))


def test_cli_report_due_and_status(tmp_path):
    from fireflow.cli.reports import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    r = runner.invoke(app, ["report", "due", "--on", "2022-12-12", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    states = {d["id"]: d["state"] for d in data["deadlines"]}
    assert states["summary"] == "due_today"
    r = runner.invoke(app, ["report", "due", "--on", "2022-12-12"])
    assert "今日截止" in r.stdout
    assert runner.invoke(app, ["report", "due", "--on", "12/12/2022"]).exit_code == 2
    towns = tmp_path / "towns.json"
    towns.write_text(json.dumps(TOWNS, ensure_ascii=False), encoding="utf-8")
    subs = tmp_path / "subs.jsonl"
    sub = Submission("dossier", "金峰镇", sh(2022, 7, 18), TOWN)
    subs.write_text(json.dumps(sub.to_data(), ensure_ascii=False) + "\n", encoding="utf-8")
    args = ["report", "status", "--towns", str(towns), "--submissions", str(subs)]
    r = runner.invoke(app, [*args, "--at", "2022-07-20T09:00:00+08:00", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    late = [o for o in data["obligations"] if o["report_id"] == "dossier" and o["town"] == "金峰镇"]
    assert late[0]["state"] == "late"
    assert any(e["kind"] == "report_late" for e in data["escalations"])
    r = runner.invoke(app, [*args, "--at", "2022-07-20T09:00:00"])
    assert r.exit_code == 1
    assert "naive" in r.stderr
