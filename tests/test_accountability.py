"""Duties of the offices and accountability (五(三), 六(四)): R-DUTY-*, R-ACC-*, referrals.

A property over generated histories (the engine driven by drawn commands, referrals
included) checks, at drawn instants, that every open ticket owes exactly the duty its
state implies, each owed by an agency the plan names, and that every duty past its day
has a due escalation (or a referral already recorded for it).  Hand-picked cases use the
plan's own dates.
"""

from __future__ import annotations

import json
import pathlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import base_data, scaled

from fireflow import (
    concealment_cases,
    district_escalations,
    duties_at,
    duties_of,
    load_plan,
    plan_digest,
)
from fireflow.errors import (
    InvalidCommand,
    NaiveDatetime,
    NotAuthorized,
    PlanError,
    TransitionNotAllowed,
)
from fireflow.plan import ADDED_ENGINE_RULES, ENGINE_RULES, validate_plan_data
from fireflow.rules.duties import LIFECYCLE_DUTIES, describe_duties
from fireflow.rules.escalation import due_escalations
from fireflow.rules.explain import explain
from fireflow.states import FINAL_STATES
from fireflow.testing.strategies import event_sequences
from fireflow.ticket import Ticket, TicketState, fold

PLAN = load_plan("changle-2022")
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "scenarios"
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2022, 3, 21, 10, tzinfo=SH)  # a Monday
SPOT = datetime(2022, 8, 1, 10, tzinfo=SH)  # a Monday in the spot-check phase
PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def reported(tid: str = "T1", at: datetime = AT, **fields: object) -> Ticket:
    t = Ticket(tid, PLAN)
    found: dict[str, object] = {
        "community": "金峰小区",
        "town": "金峰镇",
        "category": "evacuation_blocked",
        "subtype": "goods",
        "location": "inside",
        "source": "town_inspection",
    }
    found.update(fields)
    t.command("report", at, "town", **found)
    return t


def archived(at: datetime = AT, tid: str = "T1") -> Ticket:
    t = reported(tid, at)
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    t.command("rectify", at, "property")
    t.command("apply_reinspection", at, "property")
    t.command(
        "recheck_pass", at, "town", "李", participants=[{"agency": "housing", "person": "张"}]
    )
    t.command("sign_off", at, "town", signers=[{"agency": "housing", "person": "张"}])
    t.command("archive", at, "town", evidence=[PHOTO_AFTER])
    return t


# --------------------------------------------------------------------------- #
# The property: every open ticket owes exactly what its state implies


def _held(state: TicketState, agency: str, at: datetime) -> bool:
    """A referral of the agency recorded (any case) on the ticket by ``at``."""
    return any(
        agency in r.accountable and datetime.fromisoformat(r.at) <= at for r in state.referrals
    )


@settings(max_examples=scaled(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=event_sequences(max_commands=25),
    hours=st.integers(0, 24 * 120),
    data=st.data(),
)
def test_every_open_ticket_owes_exactly_the_duties_of_its_state(events, hours, data):
    if not events:
        return
    cut = data.draw(st.integers(1, len(events)), label="history cut")
    state = fold(events[:cut])
    at = (state.last_at or events[0].at) + timedelta(hours=hours)
    owed = duties_at(state, at, PLAN)
    lifecycle = [d for d in owed if d.kind != "decide_referral"]
    if state.state in FINAL_STATES or state.state == "new":
        assert lifecycle == []
    else:
        expected = LIFECYCLE_DUTIES[state.state]
        assert [(d.kind, d.trigger) for d in lifecycle] == [expected[:2]]
    referrals = [d for d in owed if d.kind == "decide_referral"]
    assert [d.referral for d in referrals] == [r.event_id for r in state.referrals if r.open]
    due = due_escalations(state, at, PLAN)
    for d in owed:
        assert d.agencies, d
        assert all(PLAN.has_agency(a) for a in d.agencies), d
        assert d.rule in {r.id for r in PLAN.rules}, d
        if d.late:
            # a missed duty is escalated: overdue (the rectifier's deadline) or slow (an
            # office's period), unless a referral already names every party owing it
            assert d.due is not None
            assert PLAN.calendar.is_late(d.due, at)
            covered = any(
                e.kind in ("overdue", "refusal", "slow")
                and (e.kind != "slow" or set(e.accountable) <= set(d.agencies))
                for e in due
            )
            assert covered or all(_held(state, a, at) for a in d.agencies), (d, due)
    # a referral whose outcome is not recorded stays due, whatever the state
    assert [(e.case, e.accountable) for e in due if e.kind == "referral"] == [
        (r.case, r.accountable) for r in state.referrals if r.open
    ]


@settings(max_examples=scaled(30), deadline=None)
@given(events=event_sequences(max_commands=25), hours=st.integers(0, 24 * 60))
def test_duties_of_many_is_duties_at_of_each(events, hours):
    if not events:
        return
    state = fold(events)
    at = (state.last_at or events[0].at) + timedelta(hours=hours)
    assert duties_of({state.ticket_id: state}, at, PLAN) == (
        {state.ticket_id: duties_at(state, at, PLAN)} if duties_at(state, at, PLAN) else {}
    )
    assert duties_of([state], at, PLAN, town="nowhere") == {}


# --------------------------------------------------------------------------- #
# R-DUTY-*: each office's period, from the plan's own dates


def test_route_duty_then_slow_action_goes_to_the_supervisor_and_the_lead_departments():
    t = reported()
    (d,) = duties_at(t.state, AT, PLAN)
    assert (d.kind, d.agencies, d.due, d.late, d.rule) == (
        "route",
        ("town",),
        date(2022, 3, 24),  # Mon 03-21 + 3 working days
        False,
        "R-DUTY-ROUTE",
    )
    assert due_escalations(t.state, sh(2022, 3, 24, 23, 59), PLAN) == []
    (esc,) = due_escalations(t.state, sh(2022, 3, 25), PLAN)
    assert (esc.kind, esc.case, esc.targets, esc.accountable, esc.rule) == (
        "slow",
        "slow",
        ("housing", "fire"),  # the route's supervisor, then settings.accountability_lead
        ("town",),
        "R-ACC-SLOW",
    )
    assert "efficiency" in esc.reason_zh


def test_accountability_lead_is_the_setting_not_a_constant():
    data = base_data()
    data["settings"]["accountability_lead"] = ["fire"]
    plan = validate_plan_data(data)
    t = Ticket("T1", plan)
    t.command(
        "report", AT, "town", community="C", town="T", category="evacuation_blocked",
        subtype="goods", location="inside", source="patrol",
    )  # fmt: skip
    (esc,) = due_escalations(t.state, sh(2022, 3, 28), plan)
    assert esc.targets == ("housing", "fire")  # housing as the route's supervisor only
    with pytest.raises(NotAuthorized) as info:  # housing is no longer a lead department
        t.command("refer", sh(2022, 3, 28), "housing", case="slow", accountable=["town"],
                  reason="逾期未分派")  # fmt: skip
    assert info.value.rule == "R-ESC-OFFICIAL"
    t.command("refer", sh(2022, 3, 28), "fire", case="slow", accountable=["town"], reason="逾期")
    assert [e.kind for e in due_escalations(t.state, sh(2022, 3, 28), plan)] == ["referral"]


def test_recheck_sign_off_and_archive_duties_name_their_people():
    t = reported()
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    t.command("rectify", sh(2022, 3, 22), "property")
    t.command("apply_reinspection", sh(2022, 3, 22), "property")
    (d,) = duties_at(t.state, sh(2022, 3, 22), PLAN)
    assert (d.kind, d.agencies, d.due) == ("recheck", ("town",), date(2022, 3, 29))
    t.command("recheck_pass", sh(2022, 3, 23), "town", "李",
              participants=[{"agency": "housing", "person": "张"}, {"agency": "third_party",
                                                                   "person": "专家"}])  # fmt: skip
    (d,) = duties_at(t.state, sh(2022, 3, 23), PLAN)
    # the third party inspects but never signs (R-AUTH-SEPARATION): not owed by it
    assert (d.kind, d.agencies, d.persons, d.rule) == (
        "sign_off",
        ("town", "housing"),
        ("李", "张"),
        "R-DUTY-SIGNOFF",
    )
    t.command("sign_off", sh(2022, 3, 24), "town", signers=[{"agency": "town", "person": "李"}])
    (d,) = duties_at(t.state, sh(2022, 3, 24), PLAN)
    assert (d.kind, d.agencies, d.persons) == ("archive", ("town",), ("李",))
    assert d.rule == "R-DUTY-ARCHIVE"
    late = sh(2022, 4, 20)
    (esc,) = due_escalations(t.state, late, PLAN)
    assert (esc.kind, esc.accountable, esc.persons) == ("slow", ("town",), ("李",))
    assert describe_duties(duties_at(t.state, late, PLAN), PLAN)[0].startswith(
        "乡镇（街道）政府（李）: 拍照建档"
    )


def test_duty_days_are_settings():
    data = base_data()
    data["settings"]["duty_days"] = {"route": 1, "unit": "calendar"}
    plan = validate_plan_data(data)
    t = Ticket("T1", plan)
    t.command("report", AT, "town", community="C", town="T", category="evacuation_blocked",
              subtype="goods", location="inside", source="patrol")  # fmt: skip
    (d,) = duties_at(t.state, AT, plan)
    assert d.due == date(2022, 3, 22)
    assert plan.settings.duty_days.recheck == 5  # the others keep their defaults


def test_naive_instant_refused():
    with pytest.raises(NaiveDatetime):
        duties_at(reported().state, datetime(2022, 3, 21), PLAN)  # noqa: DTZ001


# --------------------------------------------------------------------------- #
# Referrals: the record (refer, decide_referral)


def test_refer_is_a_record_by_a_lead_department_in_any_state_after_new():
    t = archived()
    with pytest.raises(TransitionNotAllowed):
        Ticket("T9", PLAN).command("refer", AT, "housing", case="slow", accountable=["town"],
                                   reason="x")  # fmt: skip
    with pytest.raises(NotAuthorized) as info:
        t.command("refer", AT, "town", case="slow", accountable=["town"], reason="x")
    assert info.value.rule == "R-ESC-OFFICIAL"
    for missing, field in (
        ({"accountable": ["town"], "reason": "x"}, "case"),
        ({"case": "slow", "reason": "x"}, "accountable"),
        ({"case": "slow", "accountable": ["town"]}, "reason"),
        ({"case": "slow", "accountable": ["ghost"], "reason": "x"}, "accountable[0]"),
    ):
        with pytest.raises(InvalidCommand) as err:
            t.command("refer", AT, "fire", **missing)
        assert (err.value.field, err.value.rule) == (field, "R-ESC-OFFICIAL")
    (e,) = t.command("refer", AT, "fire", "周", case="slow", accountable=["town"],
                     persons=["李", ""], reason="推进不力")  # fmt: skip
    assert t.state.state == "archived"
    assert e.payload == {"case": "slow", "accountable": ["town"], "persons": ["李"],
                         "reason_zh": "推进不力"}  # fmt: skip
    assert e.rules == ("R-ESC-OFFICIAL", "R-ACC-SLOW")
    with pytest.raises(InvalidCommand) as err:
        t.command("decide_referral", AT, "efficiency", referral="T1/99", outcome="约谈")
    assert err.value.field == "referral"
    with pytest.raises(InvalidCommand) as err:
        t.command("decide_referral", AT, "efficiency", referral=e.event_id)
    assert err.value.field == "outcome"
    t.command("decide_referral", AT, "efficiency", referral=e.event_id, outcome="约谈")
    (r,) = t.state.referrals
    assert (r.case, r.accountable, r.persons, r.outcome, r.open) == (
        "slow", ("town",), ("李",), "约谈", False
    )  # fmt: skip
    with pytest.raises(InvalidCommand):  # decided once
        t.command("decide_referral", AT, "efficiency", referral=e.event_id, outcome="again")
    assert TicketState.from_data(json.loads(json.dumps(t.state.to_data()))) == t.state
    assert fold(t.events) == t.state
    text = "\n".join(explain(t.events, PLAN, state=t.state, at=AT))
    assert "被问责单位 accountable: town" in text
    assert "结果 outcome 约谈" in text


def test_falsified_sign_off_stays_due_until_referred_whatever_the_hazard_does():
    t = archived()
    t.command("reopen", SPOT, "housing", reason="抽查发现楼道仍堆物")
    assert t.state.falsified_signers == (t.state.falsified_signers[0],)
    t.command("rectify", SPOT, "property")
    t.command("apply_reinspection", SPOT, "property")
    t.command("recheck_pass", SPOT, "town", "李", participants=[{"agency": "fire", "person": "周"}])
    t.command("sign_off", SPOT, "town", signers=[{"agency": "fire", "person": "周"}])
    t.command("archive", SPOT, "town", evidence=[PHOTO_AFTER])
    late = SPOT + timedelta(days=200)
    (esc,) = due_escalations(t.state, late, PLAN)
    assert (esc.kind, esc.rule, esc.accountable, esc.persons, esc.targets) == (
        "falsified", "R-ACC-FALSIFIED", ("housing",), ("张",), ("housing", "fire")
    )  # fmt: skip
    # a referral of another person does not cover 张
    t.command("refer", late, "fire", case="falsified", accountable=["housing"], persons=["王"],
              reason="验收不实")  # fmt: skip
    assert "falsified" in [e.kind for e in due_escalations(t.state, late, PLAN)]
    t.command("refer", late, "fire", case="falsified", accountable=["housing"], persons=["张"],
              reason="验收不实")  # fmt: skip
    assert [e.kind for e in due_escalations(t.state, late, PLAN)] == ["referral", "referral"]
    assert TicketState.from_data(json.loads(json.dumps(t.state.to_data()))) == t.state


def test_repeated_refused_attempts_count_per_agency():
    t = reported()
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    for i in range(2):
        with pytest.raises(NotAuthorized):
            t.command("rectify", AT + timedelta(hours=i), "urban", "赵")
        with pytest.raises(NotAuthorized):
            t.command("rectify", AT + timedelta(hours=i), "fire")
    assert [e.kind for e in due_escalations(t.state, AT, PLAN)] == []
    with pytest.raises(NotAuthorized):
        t.command("refuse", AT, "urban", "钱")
    (esc,) = due_escalations(t.state, AT, PLAN)
    assert (esc.kind, esc.accountable, esc.persons, esc.rule) == (
        "wrong", ("urban",), ("赵", "钱"), "R-ACC-WRONG"
    )  # fmt: skip
    assert TicketState.from_data(json.loads(json.dumps(t.state.to_data()))) == t.state


# --------------------------------------------------------------------------- #
# R-ACC-CONCEALED: across tickets


def test_concealment_needs_a_prior_own_report_of_the_category():
    self_found = reported("A", sh(2022, 3, 1), source="self_inspection",
                          evidence=[{"kind": "photo_before", "sha256": "b" * 64}])  # fmt: skip
    same = reported("B", SPOT, source="spot_check")
    other_cat = reported("C", SPOT, source="spot_check", category="fire_lane_vehicle",
                         subtype="goods")  # fmt: skip
    other_place = reported("D", SPOT, source="spot_check", community="海景花园")
    later_self = reported("E", SPOT + timedelta(days=1), source="town_inspection",
                          community="海景花园")  # fmt: skip
    states = {t.id: t.state for t in (self_found, same, other_cat, other_place, later_self)}
    cases = concealment_cases(states, PLAN)
    assert [(c.ticket_id, c.accountable, c.rule) for c in cases] == [
        ("C", ("town",), "R-ACC-CONCEALED"),
        ("D", ("town",), "R-ACC-CONCEALED"),  # the town inspection came after the spot check
    ]
    # order of the states changes only the order of the cases
    again = concealment_cases(list(reversed(list(states.values()))), PLAN)
    assert sorted(c.ticket_id for c in again) == ["C", "D"]
    due = district_escalations(states, SPOT, PLAN)
    assert [e.kind for e in due["C"]] == ["concealed"]
    assert "B" not in due
    assert district_escalations(states, SPOT, PLAN, town="别的镇") == {}
    other_cat.command("refer", SPOT, "housing", case="concealed", accountable=["town"],
                      reason="自查未报")  # fmt: skip
    states["C"] = other_cat.state
    assert [e.kind for e in district_escalations(states, SPOT, PLAN)["C"]] == ["referral"]


# --------------------------------------------------------------------------- #
# R-ESC-PROPERTY only for property companies; punishment's basis


def _failed_twice(subtype_location: tuple[str, str], rectifier: str) -> Ticket:
    subtype, location = subtype_location
    t = reported(subtype=subtype, location=location)
    t.command("route", AT, "town")
    t.command("set_deadline", AT, t.state.routing.lead)
    for day in (22, 23):
        t.command("rectify", sh(2022, 3, day), rectifier)
        t.command("apply_reinspection", sh(2022, 3, day), rectifier)
        t.command("recheck_fail", sh(2022, 3, day), "town", participants=[{"agency": "housing"}])
    return t


def test_failed_rechecks_by_a_department_are_official_not_property():
    dept = _failed_twice(("goods", "around"), "urban")
    kinds = {e.kind: e for e in due_escalations(dept.state, sh(2022, 3, 23), PLAN)}
    assert "property" not in kinds
    assert (kinds["official"].rule, kinds["official"].accountable) == ("R-ACC-SLOW", ("urban",))
    company = _failed_twice(("goods", "inside"), "property")
    kinds = {e.kind: e for e in due_escalations(company.state, sh(2022, 3, 23), PLAN)}
    assert "official" not in kinds
    assert (kinds["property"].rule, kinds["property"].targets) == (
        "R-ESC-PROPERTY",
        ("housing", "fire"),
    )


def test_punish_after_refusal_cites_the_route_where_no_property_company_failed():
    t = reported(category="fire_lane_vehicle", subtype="stall", location="around")
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "urban")
    t.command("refuse", AT, "urban")
    t.command("escalate", AT, "town")
    (e,) = t.command("punish", AT, "urban")
    assert "R-ESC-PROPERTY" not in e.rules
    assert e.rules == ("R-ESC-REFUSAL", "R-ROUTE-LANE-OUT", "R-ROUTE-LANE-FIRE")


# --------------------------------------------------------------------------- #
# R-SPOT-WINDOW


def test_reopen_only_inside_the_spot_check_phase():
    t = archived()
    for at in (sh(2022, 7, 15, 23, 59), sh(2022, 10, 16)):
        with pytest.raises(InvalidCommand) as info:
            t.command("reopen", at, "housing")
        assert (info.value.rule, info.value.field) == ("R-SPOT-WINDOW", "at")
    assert t.state.state == "archived"
    t.command("reopen", sh(2022, 7, 16), "housing")
    assert t.state.state == "rectifying"


def test_spot_check_window_off_by_setting():
    data = base_data()
    data["settings"]["spot_check"]["phase"] = None
    plan = validate_plan_data(data)
    assert plan.spot_check_window() is None
    t = Ticket("T1", plan)
    t.command("report", AT, "town", community="C", town="T", category="evacuation_blocked",
              subtype="goods", location="inside", source="patrol")  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    t.command("rectify", AT, "property")
    t.command("apply_reinspection", AT, "property")
    t.command("recheck_pass", AT, "town", participants=[{"agency": "housing", "person": "张"}])
    t.command("reopen", sh(2022, 3, 25), "housing")  # no window: accepted in March
    assert t.state.state == "rectifying"
    data["settings"]["spot_check"]["phase"] = "nowhere"
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert "settings.spot_check.phase" in str(info.value)


# --------------------------------------------------------------------------- #
# Plans written before these rules keep loading


def test_a_plan_of_todays_format_without_the_new_rules_and_settings_loads():
    data = base_data()
    added = {ENGINE_RULES[k] for k in ADDED_ENGINE_RULES}
    data["rules"] = [r for r in data["rules"] if r["id"] not in added]
    for key in ("duty_days", "property_companies", "max_refused_attempts", "concealment_sources"):
        del data["settings"][key]
    del data["settings"]["spot_check"]["phase"]
    for key in ADDED_ENGINE_RULES:
        del data["engine_rules"][key]
    plan = validate_plan_data(data)
    for rid in sorted(added):
        assert plan.rule(rid).basis in ("default", "mixed"), rid
    assert plan.settings.duty_days.route == 3
    t = reported()
    assert [d.rule for d in duties_at(t.state, AT, plan)] == ["R-DUTY-ROUTE"]
    gulou = load_plan(EXAMPLES / "gulou-2023.plan.yaml")
    assert {r.id for r in gulou.rules} >= added


def test_a_plan_written_before_keeps_its_digest():
    """Histories bound to a plan's digest continue after the upgrade (docs/lifecycle.md): the
    added settings at their defaults, the added engine rules and their built-in entries are
    not part of the digest; changing one of them is."""
    full = base_data()
    old = base_data()
    added = {ENGINE_RULES[k] for k in ADDED_ENGINE_RULES}
    old["rules"] = [r for r in old["rules"] if r["id"] not in added]
    for key in ("duty_days", "property_companies", "max_refused_attempts", "concealment_sources"):
        del old["settings"][key]
    del old["settings"]["spot_check"]["phase"]
    for key in ADDED_ENGINE_RULES:
        del old["engine_rules"][key]
    digest = plan_digest(validate_plan_data(full))
    assert plan_digest(validate_plan_data(old)) == digest
    for path, value in (
        (("duty_days",), {"route": 4}),
        (("max_refused_attempts",), 5),
        (("spot_check", "phase"), None),
        (("concealment_sources",), ["self_inspection"]),
    ):
        changed = base_data()
        holder = changed["settings"]
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value
        assert plan_digest(validate_plan_data(changed)) != digest, path
    reworded = base_data()
    entry = next(r for r in reworded["rules"] if r["id"] == "R-ACC-SLOW")
    entry["clause"] = "六(四)、五(三)"
    assert plan_digest(validate_plan_data(reworded)) != digest


@given(agency=st.sampled_from([a.id for a in PLAN.agencies]))
def test_authorize_agrees_with_decide_on_referrals(agency: str) -> None:
    """``authorize`` (public, used by embedding code and the breakdown benchmark) answers for
    ``refer`` and ``decide_referral`` as ``decide`` does: settings, not an authority entry."""
    from fireflow.errors import NotAuthorized
    from fireflow.model import Command
    from fireflow.ticket import authorize, decide

    state = reported().state
    fields = {"case": "slow", "accountable": ["town"], "reason": "逾期"}
    cmd = Command.model_validate(
        {"kind": "refer", "ticket_id": "T1", "at": AT, "actor": {"agency": agency}, **fields}
    )
    if agency in PLAN.settings.accountability_lead:
        assert authorize(state, cmd, PLAN) == ("R-ESC-OFFICIAL",)
        (event,) = decide(state, cmd, PLAN)
        assert event.kind == "refer"
    else:
        with pytest.raises(NotAuthorized) as by_authorize:
            authorize(state, cmd, PLAN)
        with pytest.raises(NotAuthorized) as by_decide:
            decide(state, cmd, PLAN)
        assert by_authorize.value.rule == by_decide.value.rule == "R-ESC-OFFICIAL"
