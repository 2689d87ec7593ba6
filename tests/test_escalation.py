"""Escalation as the plan writes it: overdue without an application; a refusal list that grows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fireflow import InvalidCommand, NotAuthorized, PlanError, due_escalations, load_plan
from fireflow.plan import validate_plan_data
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2022, 3, 21, 10, tzinfo=SH)  # Monday: a 3-day deadline is Thursday 03-24


def rectifying(plan=PLAN, category="evacuation_blocked", subtype="goods", location="inside"):
    t = Ticket("T1", plan)
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location=location, source="town_inspection",
    )  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    return t


def kinds(t, at):
    return [(e.kind, e.targets, e.rule) for e in due_escalations(t.state, at, PLAN)]


# 五(三) 隐患整改完毕，物业服务企业要立即申报复验


def test_rectified_without_application_is_overdue():
    t = rectifying()
    t.command("rectify", AT + timedelta(days=1), "property")
    assert t.state.state == "rectified"
    assert kinds(t, datetime(2022, 3, 24, 23, 59, tzinfo=SH)) == []
    assert kinds(t, datetime(2022, 3, 25, 0, 0, tzinfo=SH)) == [
        ("overdue", ("town", "housing"), "R-ESC-OVERDUE")
    ]
    t.command("apply_reinspection", datetime(2022, 3, 25, 9, tzinfo=SH), "property")
    assert kinds(t, datetime(2022, 3, 28, tzinfo=SH)) == []
    # the re-check the town owes (R-DUTY-RECHECK, 5 working days from Fri 03-25: 04-01) is
    # long missed by 04-30: 慢作为 of the town, to its supervisor and the lead departments
    assert kinds(t, datetime(2022, 4, 30, tzinfo=SH)) == [
        ("slow", ("housing", "fire"), "R-ACC-SLOW")
    ]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3 * 24 - 1), st.integers(0, 60 * 24))
def test_overdue_iff_past_deadline_whether_rectified_or_not(rectify_after_h, check_after_min):
    t = rectifying()
    t.command("rectify", AT + timedelta(hours=rectify_after_h), "property")
    when = AT + timedelta(hours=rectify_after_h, minutes=check_after_min)
    late = PLAN.calendar.is_late(t.state.deadline, when)
    assert any(e.kind == "overdue" for e in due_escalations(t.state, when, PLAN)) == late


def test_an_overdue_rectified_ticket_can_be_marked_overdue_and_escalated():
    # the escalation due from `rectified` has a trigger to act on it (R-ESC-OVERDUE, 五(三))
    t = rectifying()
    t.command("rectify", AT + timedelta(days=1), "property")
    early = datetime(2022, 3, 24, 23, 59, tzinfo=SH)
    with pytest.raises(InvalidCommand) as info:  # the deadline runs to 24:00 of 03-24
        t.command("mark_overdue", early, "town")
    assert (info.value.rule, info.value.field) == ("R-ESC-OVERDUE", "at")
    assert t.state.state == "rectified"
    with pytest.raises(NotAuthorized):  # the rectifier does not mark itself overdue
        t.command("mark_overdue", datetime(2022, 3, 25, tzinfo=SH), "property")
    (e,) = t.command("mark_overdue", datetime(2022, 3, 25, tzinfo=SH), "housing")
    assert e.rules == ("R-ESC-OVERDUE", "R-TKT-REINSPECT")
    assert e.payload == {"deadline": "2022-03-24"}
    assert (t.state.state, t.state.overdue_marked) == ("overdue", 1)
    t.command("escalate", datetime(2022, 3, 25, 9, tzinfo=SH), "town")
    assert t.state.escalated_to == ("town", "housing")
    t.command("resume", datetime(2022, 3, 25, 10, tzinfo=SH), "town")
    t.command("rectify", datetime(2022, 3, 26, 10, tzinfo=SH), "property")
    t.command("apply_reinspection", datetime(2022, 3, 26, 10, tzinfo=SH), "property")
    assert t.state.state == "reinspection_requested"


def test_mark_overdue_from_rectifying_cites_only_the_overdue_rule():
    t = rectifying()
    (e,) = t.command("mark_overdue", datetime(2022, 3, 25, tzinfo=SH), "town")
    assert e.rules == ("R-ESC-OVERDUE",)


# 四(二) 拒不改正的，立即反馈属地公安、消防、城管等部门


def test_refusal_list_never_drops_police_fire_urban():
    t = rectifying()
    t.command("refuse", AT, "town")
    t.command("escalate", AT, "town", targets=["committee"])
    assert t.state.escalated_to == ("police", "fire", "urban", "committee")


def test_refusal_due_includes_the_minimum_and_the_route_enforcers():
    t = rectifying(category="fire_lane_vehicle", subtype="motor_vehicle", location="around")
    assert t.state.routing is not None
    assert t.state.routing.enforcers == ("traffic_police", "fire")
    t.command("refuse", AT, "traffic_police")
    (refusal,) = [e for e in due_escalations(t.state, AT, PLAN) if e.kind == "refusal"]
    assert refusal.targets == ("police", "fire", "urban", "traffic_police")
    t.command("escalate", AT, "town")
    assert t.state.escalated_to == refusal.targets


def test_refusal_minimum_is_plan_data():
    data = PLAN.to_data()
    data["settings"]["refusal_report_to"] = ["police", "urban"]
    plan = validate_plan_data(data)
    t = rectifying(plan)
    t.command("refuse", AT, "town")
    t.command("escalate", AT, "town", targets=["committee"])
    assert t.state.escalated_to == ("police", "urban", "committee")
    data["settings"]["refusal_report_to"] = ["police", "nobody"]
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert "settings.refusal_report_to[1]" in str(info.value)


def test_overdue_escalation_targets_unchanged():
    t = rectifying()
    late = AT + timedelta(days=5)
    t.command("mark_overdue", late, "town")
    (e,) = t.command("escalate", late, "town")
    assert e.payload["targets"] == ["town", "housing"]
    assert e.rules == ("R-ESC-OVERDUE",)
