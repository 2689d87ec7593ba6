"""Every event cites its rules from one place: its step's lifecycle rule and the ticket's route.

The table below pins each trigger's full rule list, exactly and in order, on every route of the
built-in plan: drop a rule from a step and a test here fails.  The property test drives tickets of
every category, location and subtype (new communities too) with drawn commands and checks that
no event ever cites a routing rule (R-ROUTE-*) of another route.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import load_plan, route_for
from fireflow.errors import NotAuthorized, Refusal
from fireflow.events import Event
from fireflow.testing.strategies import commands
from fireflow.ticket import Command, Ticket, TicketState, decide, evolve, refusal_event

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2022, 3, 21, 10, tzinfo=SH)  # a Monday: 3 and 30 days end on working days
SPOT = datetime(2022, 7, 18, 10, tzinfo=SH)  # a Monday in the spot-check phase (R-SPOT-WINDOW)

#: One hazard per route: (category, location, subtype, new community).
HAZARDS = {
    "evacuation_inside": ("evacuation_blocked", "inside", "goods", False),
    "evacuation_around": ("evacuation_blocked", "around", "goods", False),
    "fire_lane_inside": ("fire_lane_vehicle", "inside", "private_car", False),
    "fire_lane_inside_unplated": ("fire_lane_vehicle", "inside", "zombie_vehicle", False),
    "fire_lane_around_motor": ("fire_lane_vehicle", "around", "motor_vehicle", False),
    "fire_lane_around_other": ("fire_lane_vehicle", "around", "stall", False),
    "illegal_building": ("spacing_illegal_building", "inside", "structure", False),
    "fire_sign": ("lane_or_sign_missing", "inside", "sign", False),
    "lane_layout": ("lane_or_sign_missing", "inside", "lane_layout", False),
    "new_community_lane_or_sign": ("lane_or_sign_missing", "inside", "sign", True),
}

#: The rules of each route, written out (not read from the plan).
ROUTE_RULES = {
    "evacuation_inside": ("R-ROUTE-EVAC", "R-ROUTE-SUPERVISE"),
    "evacuation_around": ("R-ROUTE-LANE-OUT",),
    "fire_lane_inside": ("R-ROUTE-LANE-IN", "R-ROUTE-SUPERVISE", "R-ROUTE-LANE-FIRE"),
    "fire_lane_inside_unplated": ("R-ROUTE-LANE-IN", "R-ROUTE-SUPERVISE", "R-ROUTE-LANE-FIRE"),
    "fire_lane_around_motor": ("R-ROUTE-LANE-OUT", "R-ROUTE-LANE-FIRE"),
    "fire_lane_around_other": ("R-ROUTE-LANE-OUT", "R-ROUTE-LANE-FIRE"),
    "illegal_building": ("R-ROUTE-BUILDING",),
    "fire_sign": ("R-ROUTE-SIGN",),
    "lane_layout": ("R-ROUTE-SIGN",),
    "new_community_lane_or_sign": ("R-ROUTE-SIGN",),
}

#: What ``clear`` cites per route (None: nothing to clear on that hazard).
CLEAR = {
    "evacuation_inside": ("R-ROUTE-EVAC", "R-TKT-DEADLINE"),
    "evacuation_around": ("R-ROUTE-LANE-OUT", "R-TKT-DEADLINE"),
    "fire_lane_inside": ("R-ROUTE-LANE-IN", "R-TKT-DEADLINE"),
    "fire_lane_inside_unplated": ("R-ROUTE-LANE-IN", "R-TKT-DEADLINE"),
    "fire_lane_around_motor": ("R-ROUTE-LANE-OUT", "R-TKT-DEADLINE"),
    "fire_lane_around_other": ("R-ROUTE-LANE-OUT", "R-TKT-DEADLINE"),
    "illegal_building": None,
    "fire_sign": None,
    "lane_layout": None,
    "new_community_lane_or_sign": None,
}

FIRE_LANE = {r for r, rules in ROUTE_RULES.items() if "R-ROUTE-LANE-FIRE" in rules}
#: Routes whose rectifier is the property company (written out): only there does a punishment
#: after a refusal cite R-ESC-PROPERTY (六(四) 物业企业工作配合落实不力的); elsewhere the
#: route's own enforcement basis after the refusal.
PROPERTY_RECTIFIED = {
    "evacuation_inside",
    "fire_lane_inside",
    "fire_lane_inside_unplated",
    "fire_sign",
    "lane_layout",
    "new_community_lane_or_sign",
}


def expected(route: str) -> dict[str, tuple[str, ...]]:
    """Each trigger's full rule list on ``route`` (``punish`` by housing after an escalation)."""
    return {
        "report": ("R-TKT-OPEN",),
        "route": ("R-AUTH-ROLES", *ROUTE_RULES[route]),
        "set_deadline": ("R-TKT-DEADLINE",),
        "rectify": ("R-TKT-REINSPECT", "R-AUTH-ROLES"),
        "apply_reinspection": ("R-TKT-REINSPECT",),
        "recheck_fail": ("R-TKT-FAIL", "R-TKT-REINSPECT", "R-TKT-DEADLINE"),
        "recheck_pass": ("R-TKT-REINSPECT",),
        "sign_off": ("R-TKT-SIGNOFF", "R-AUTH-SEPARATION"),
        "archive": ("R-TKT-SIGNOFF",),
        "reopen": ("R-TKT-SPOTCHECK", "R-TKT-DEADLINE"),
        "refuse": ("R-ESC-REFUSAL",),
        "escalate": ("R-ESC-REFUSAL",),
        "expose": ("R-ESC-EXPOSE",),
        "punish": ("R-ESC-PROPERTY",)
        if route in PROPERTY_RECTIFIED
        else ("R-ESC-REFUSAL", *ROUTE_RULES[route]),
        "refer": ("R-ESC-OFFICIAL", "R-ACC-SLOW"),
        "decide_referral": ("R-ESC-OFFICIAL",),
        "resume": ("R-ESC-REFUSAL", "R-TKT-DEADLINE"),
        "mark_overdue": ("R-ESC-OVERDUE",),
        "escalate_overdue": ("R-ESC-OVERDUE",),
        "punish_direct": ("R-ROUTE-LANE-FIRE",),
        "certify": ("R-ROUTE-BUILDING",),
        "demolish": ("R-ROUTE-BUILDING", "R-TKT-DEADLINE"),
    }


def new_ticket(route: str, tid: str) -> Ticket:
    category, location, subtype, new = HAZARDS[route]
    t = Ticket(tid, PLAN)
    fields = {"new_community": True} if new else {}
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location=location, source="town_inspection", **fields,
    )  # fmt: skip
    assert t.state.routing is None
    t.command("route", AT, "town")
    assert t.state.routing is not None
    assert t.state.routing.route == route
    t.command("set_deadline", AT, "town")
    return t


def cited(t: Ticket, kind: str, at: datetime, agency: str, **fields: object) -> tuple[str, ...]:
    (event,) = t.command(kind, at, agency, **fields)
    return event.rules


def recheck_parties(t: Ticket) -> list[dict[str, str]]:
    rectifier = t.state.rectified_by
    return [
        {"agency": a, "person": "张"} for a in ("housing", "fire", "planning") if a != rectifier
    ][:2]


def lifecycle_citations(route: str) -> dict[str, tuple[str, ...]]:
    """Drive tickets of ``route`` through every trigger; what each event cited."""
    got: dict[str, tuple[str, ...]] = {}
    a = new_ticket(route, "A")
    got["report"], got["route"], got["set_deadline"] = (e.rules for e in a.events)
    r = a.state.routing
    assert r is not None
    got["rectify"] = cited(a, "rectify", AT, r.rectifier)
    got["apply_reinspection"] = cited(a, "apply_reinspection", AT, r.rectifier)
    parts = recheck_parties(a)
    got["recheck_fail"] = cited(a, "recheck_fail", AT, "town", participants=parts)
    a.command("rectify", AT, r.rectifier)
    a.command("apply_reinspection", AT, r.rectifier)
    got["recheck_pass"] = cited(a, "recheck_pass", AT, "town", participants=parts)
    got["sign_off"] = cited(a, "sign_off", AT, "town", signers=[parts[0]])
    got["archive"] = cited(
        a, "archive", AT, "town", evidence=[{"kind": "photo_after", "sha256": "a" * 64}]
    )
    got["reopen"] = cited(a, "reopen", SPOT, "fire", reason="抽查")

    b = new_ticket(route, "B")
    got["refuse"] = cited(b, "refuse", AT, "town")
    got["escalate"] = cited(b, "escalate", AT, "town")
    got["expose"] = cited(b, "expose", AT, "committee")
    got["punish"] = cited(b, "punish", AT, "housing")
    if CLEAR[route] is not None:
        got["clear"] = cited(b, "clear", AT, "town")
    got["refer"] = cited(
        b, "refer", AT, "housing", case="slow", accountable=[r.lead], reason="逾期未处置"
    )
    got["decide_referral"] = cited(
        b, "decide_referral", AT, "efficiency", referral=b.events[-1].event_id, outcome="约谈"
    )

    c = new_ticket(route, "C")
    c.command("refuse", AT, "town")
    c.command("escalate", AT, "town")
    got["resume"] = cited(c, "resume", AT, "town")

    d = new_ticket(route, "D")
    assert d.state.deadline is not None
    late = AT + timedelta(days=40)
    got["mark_overdue"] = cited(d, "mark_overdue", late, "town")
    got["escalate_overdue"] = cited(d, "escalate", late, "town")

    if route in FIRE_LANE:
        e = new_ticket(route, "E")
        got["punish_direct"] = cited(e, "punish", AT, "fire")
    if route == "illegal_building":
        f = new_ticket(route, "F")
        got["certify"] = cited(f, "certify", AT, "planning")
        got["demolish"] = cited(f, "demolish", AT, "town")
    return got


@pytest.mark.parametrize("route", sorted(HAZARDS))
def test_each_trigger_cites_exactly_its_rules(route):
    want = expected(route)
    if CLEAR[route] is not None:
        want["clear"] = CLEAR[route]
    if route not in FIRE_LANE:
        del want["punish_direct"]
    if route != "illegal_building":
        del want["certify"], want["demolish"]
    assert lifecycle_citations(route) == want


def test_every_route_of_the_plan_is_pinned():
    assert sorted(HAZARDS) == sorted(r.id for r in PLAN.routes)
    for route in PLAN.routes:
        assert ROUTE_RULES[route.id] == route.rules, route.id


def test_stairwell_ticket_cites_no_fire_lane_rule():
    """On an evacuation ticket, punish and clear cite nothing about fire-truck lanes (they did)."""
    t = new_ticket("evacuation_inside", "T1")
    t.command("refuse", AT, "town")
    t.command("escalate", AT, "town")
    assert cited(t, "punish", AT, "police") == ("R-ESC-PROPERTY",)
    assert cited(t, "clear", AT, "town") == ("R-ROUTE-EVAC", "R-TKT-DEADLINE")


def test_stall_around_community_clear_cites_lane_out_only():
    """A clear of a stall around the community cites R-ROUTE-LANE-OUT, never R-ROUTE-EVAC."""
    t = new_ticket("fire_lane_around_other", "T1")
    t.command("refuse", AT, "urban")
    t.command("escalate", AT, "town")
    assert cited(t, "clear", AT, "urban") == ("R-ROUTE-LANE-OUT", "R-TKT-DEADLINE")


def test_overdue_escalation_does_not_cite_refusal():
    t = new_ticket("evacuation_inside", "T1")
    late = AT + timedelta(days=5)
    t.command("mark_overdue", late, "town")
    assert cited(t, "escalate", late, "town") == ("R-ESC-OVERDUE",)


def test_refused_attempt_never_cites_another_route():
    """An authority refusal cites the entry's first rule that belongs to the ticket."""
    t = new_ticket("evacuation_inside", "T1")
    t.command("refuse", AT, "town")
    t.command("escalate", AT, "town")
    with pytest.raises(NotAuthorized) as info:
        t.command("clear", AT, "committee")
    assert info.value.rule == "R-AUTH-ROLES"
    assert t.events[-1].kind == "attempt_refused"
    assert t.events[-1].rules == ("R-AUTH-ROLES",)


# --------------------------------------------------------------------------- #
# The property: any ticket, any accepted command sequence


def _hazards() -> list[tuple[str, str, str | None, bool]]:
    out: list[tuple[str, str, str | None, bool]] = []
    for cat in PLAN.categories:
        for location in ("inside", "around"):
            for sub in [s.id for s in cat.subtypes] or [None]:
                for new in (False, True):
                    out.append((cat.id, location, sub, new))
    return out


@st.composite
def tickets(draw: st.DrawFn) -> tuple[tuple[str, str, str | None, bool], list[Event]]:
    hazard = draw(st.sampled_from(_hazards()), label="hazard")
    category, location, subtype, new = hazard
    state = TicketState("T1")
    report = Command.model_validate(
        {
            "kind": "report",
            "ticket_id": "T1",
            "at": AT,
            "actor": {"agency": "town"},
            "community": "金峰小区",
            "town": "金峰镇",
            "category": category,
            "location": location,
            "source": "town_inspection",
            **({"subtype": subtype} if subtype else {}),
            **({"new_community": True} if new else {}),
        }
    )
    events = list(decide(state, report, PLAN))
    state = evolve(state, events[0])
    now = AT
    for _ in range(draw(st.integers(0, 25), label="commands")):
        command = draw(commands(state, PLAN, after=now))
        try:
            produced = decide(state, command, PLAN)
        except NotAuthorized as exc:
            produced = (refusal_event(state, command, exc),)
        except Refusal:
            continue
        now = max(now, command.at)
        for e in produced:
            state = evolve(state, e)
            events.append(e)
    return hazard, events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tickets())
def test_events_cite_only_their_own_route(ticket):
    (category, location, subtype, new), events = ticket
    own = set(route_for(PLAN, category, location, subtype, new_community=new).rules)
    for e in events:
        routing_rules = {r for r in e.rules if r.startswith("R-ROUTE-")}
        assert routing_rules <= own, (e.kind, e.rules, sorted(own))
