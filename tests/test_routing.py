"""Routing as the plan writes it: urban around communities, fire's own duty, new communities."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from fireflow import InvalidCommand, PlanError, TransitionNotAllowed, load_plan, route_for
from fireflow.plan import validate_plan_data
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
AT = datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def report(t: Ticket, category: str, subtype: str, location: str = "inside", **more: object):
    return t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location=location, source="town_inspection", **more,
    )  # fmt: skip


# 四(二) 城管部门…整治在物业小区周边消防通道上乱停乱放、占道堆物、设摊经营、户外经营


@pytest.mark.parametrize(
    ("category", "subtype"),
    [
        ("evacuation_blocked", "goods"),
        ("evacuation_blocked", "ebike_parked"),
        ("evacuation_blocked", "ebike_charging"),
        ("fire_lane_vehicle", "goods"),
        ("fire_lane_vehicle", "stall"),
        ("fire_lane_vehicle", "non_motor_vehicle"),
    ],
)
def test_urban_rectifies_and_leads_around_communities(category, subtype):
    r = route_for(PLAN, category, "around", subtype)
    assert (r.rectifier, r.lead) == ("urban", "urban")
    assert "R-ROUTE-LANE-OUT" in r.rules
    assert not {"R-ROUTE-EVAC", "R-ROUTE-LANE-IN"} & set(r.rules)


def test_non_motor_vehicle_is_plan_data():
    cat = PLAN.category("fire_lane_vehicle")
    assert cat.subtype("non_motor_vehicle").name.zh == "非机动车乱停乱放"
    inside = route_for(PLAN, "fire_lane_vehicle", "inside", "non_motor_vehicle")
    assert (inside.route, inside.rectifier) == ("fire_lane_inside", "property")


def test_sealed_exit_around_stays_with_the_town():
    r = route_for(PLAN, "evacuation_blocked", "around", "exit_sealed")
    assert (r.route, r.lead) == ("evacuation_inside", "town")


# 四(二) 消防部门…对占用、堵塞、封闭消防车通道，妨碍消防车通行等行为依法进行查处


@pytest.mark.parametrize(
    ("location", "subtype"),
    [("inside", "private_car"), ("inside", "zombie_vehicle"), ("around", "motor_vehicle"),
     ("around", "stall"), ("around", "non_motor_vehicle"), ("inside", "goods")],
)  # fmt: skip
def test_fire_punishes_fire_lanes_directly(location, subtype):
    t = Ticket("T1", PLAN)
    report(t, "fire_lane_vehicle", subtype, location)
    (e,) = t.command("punish", AT, "fire")  # before routing: the route it will get
    assert (e.rules, t.state.state, t.state.punished) == (("R-ROUTE-LANE-FIRE",), "reported", 1)
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    (e,) = t.command("punish", AT, "fire", reason="堵塞消防车通道")
    assert e.rules == ("R-ROUTE-LANE-FIRE",)
    assert t.state.state == "rectifying"


@pytest.mark.parametrize(
    ("category", "subtype"),
    [("evacuation_blocked", "goods"), ("spacing_illegal_building", "structure"),
     ("lane_or_sign_missing", "lane_layout")],
)  # fmt: skip
def test_fire_waits_for_an_escalation_elsewhere(category, subtype):
    t = Ticket("T1", PLAN)
    report(t, category, subtype)
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    with pytest.raises(TransitionNotAllowed) as info:
        t.command("punish", AT, "fire")
    assert info.value.rule == "R-ESC-REFUSAL"
    assert t.state.punished == 0


def test_housing_still_waits_on_a_fire_lane():
    t = Ticket("T1", PLAN)
    report(t, "fire_lane_vehicle", "private_car")
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    with pytest.raises(TransitionNotAllowed):
        t.command("punish", AT, "housing")


def test_punish_rules_must_be_route_rules():
    data = PLAN.to_data()
    route = next(r for r in data["routes"] if r["id"] == "fire_sign")
    route["punishers"] = ["fire"]
    route["punish_rules"] = ["R-ROUTE-LANE-FIRE"]
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert any(p.path.endswith("punish_rules[0]") for p in info.value.problems)


# 四(二) 住建（消防）部门负责对未按设计要求设置的新建物业小区消防车通道、消防标识等情况进行督促整改


@pytest.mark.parametrize("subtype", ["sign", "lane_layout"])
def test_new_community_lanes_and_signs_go_to_housing(subtype):
    r = route_for(PLAN, "lane_or_sign_missing", "inside", subtype, new_community=True)
    assert (r.route, r.lead, r.supervisor, r.rules) == (
        "new_community_lane_or_sign", "housing", "housing", ("R-ROUTE-SIGN",),
    )  # fmt: skip
    old = route_for(PLAN, "lane_or_sign_missing", "inside", subtype)
    assert old.lead == "town"


def test_new_community_does_not_change_other_categories():
    for cat, sub in (("evacuation_blocked", "goods"), ("fire_lane_vehicle", "private_car")):
        assert route_for(PLAN, cat, "inside", sub, new_community=True) == route_for(
            PLAN, cat, "inside", sub
        )


def test_delivery_date_reads_new_community_since():
    plan = PLAN.model_copy(
        update={
            "settings": PLAN.settings.model_copy(update={"new_community_since": date(2020, 1, 1)})
        }
    )
    assert plan.is_new_community(date(2020, 1, 1), None)
    assert not plan.is_new_community(date(2019, 12, 31), None)
    assert not plan.is_new_community(None, None)
    assert plan.is_new_community(date(2010, 1, 1), True) is True
    # the built-in plan reads no date (new_community_since: null): only the report's word counts
    assert PLAN.settings.new_community_since is None
    assert not PLAN.is_new_community(date(2021, 6, 30), None)
    t = Ticket("T1", plan)
    (e,) = report(t, "lane_or_sign_missing", "sign", delivered_on=date(2021, 6, 30))
    assert e.payload["delivered_on"] == "2021-06-30"
    assert "new_community" not in e.payload
    assert t.state.delivered_on == date(2021, 6, 30)
    t.command("route", AT, "town")
    assert t.state.routing is not None
    assert t.state.routing.lead == "housing"
    t.command("set_deadline", AT, "housing")
    assert t.state.state == "rectifying"


def test_report_says_new_community():
    t = Ticket("T1", PLAN)
    (e,) = report(t, "lane_or_sign_missing", "lane_layout", new_community=True)
    assert e.payload["new_community"] is True
    assert t.state.new_community is True
    t.command("route", AT, "town")
    assert t.state.routing is not None
    assert t.state.routing.route == "new_community_lane_or_sign"
    assert Ticket("T1", PLAN, events=t.events).state == t.state


def test_contradiction_and_future_delivery_are_refused():
    plan = PLAN.model_copy(
        update={
            "settings": PLAN.settings.model_copy(update={"new_community_since": date(2020, 1, 1)})
        }
    )
    with pytest.raises(InvalidCommand) as info:
        report(Ticket("T1", plan), "lane_or_sign_missing", "sign",
               delivered_on=date(2015, 1, 1), new_community=True)  # fmt: skip
    assert (info.value.field, info.value.rule) == ("new_community", "R-ROUTE-SIGN")
    with pytest.raises(InvalidCommand) as info:
        report(Ticket("T1", plan), "lane_or_sign_missing", "sign", delivered_on=date(2022, 4, 1))
    assert info.value.field == "delivered_on"


def test_every_new_community_combination_is_routed():
    for cat in PLAN.categories:
        for location in ("inside", "around"):
            for sub in [s.id for s in cat.subtypes] or [None]:
                for new in (False, True):
                    assert route_for(PLAN, cat.id, location, sub, new_community=new).rules
