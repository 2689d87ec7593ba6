"""The simulator knows the offices' duties (五(三)) and accountability (六(四)).

Every referral goes through the real engine (``refer`` by a lead department,
``decide_referral`` by the efficiency office); these tests check the run against
the rules' own answers (:func:`fireflow.duties_at`, the events' rules).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import InvalidArgument, duties_at, load_plan
from fireflow.sim import Behaviour, generate_population, simulate
from fireflow.ticket import fold

PLAN = load_plan("changle-2022")
POP = generate_population(30, seed=6)
SEED = 6

#: The town routes six working days after a report (R-DUTY-ROUTE allows 3) and the
#: acceptance people sign five after a pass (R-DUTY-SIGNOFF allows 3): both always late.
SLOW = Behaviour(route_working_days=(6.0, 0.0), sign_off_working_days=(5.0, 0.0))


@pytest.fixture(scope="module")
def default():
    return simulate(PLAN, POP, seed=SEED)


@pytest.fixture(scope="module")
def slow():
    return simulate(PLAN, POP, SLOW, seed=SEED)


def _histories(result):
    out = defaultdict(list)
    for e in result.events:
        out[e.ticket_id].append(e)
    return out


def test_referrals_change_no_state_so_the_defaults_keep_the_lifecycle(default):
    # the defaults: every office acts on the day, as before the duties existed; what the
    # referrals add are events that change no state (the timeline is the same without them)
    never = simulate(PLAN, POP, Behaviour(refer_probability=0.0), seed=SEED)
    assert never.daily == default.daily
    assert never.ticket_archived_day == default.ticket_archived_day
    new = ("refer", "decide_referral")
    without = {k: v for k, v in default.kind_counts.items() if k not in new}
    assert without == never.kind_counts
    assert "refer" not in never.kind_counts
    # nobody referred them: the cases are still recorded, as notices
    assert never.kpis["accountability_cases"] == default.kpis["accountability_cases"] > 0
    assert never.kpis["referrals"] == never.kpis["referrals_decided"] == 0
    assert {e.via for e in never.escalations if e.kind in ("slow", "falsified", "concealed")} <= {
        "notice"
    }
    # refer_probability 1: every case is referred, and (decide_probability 1) decided
    # decide_working_days later unless the campaign ends first
    k = default.kpis
    assert k["referrals"] == k["accountability_cases"]
    assert 0 < k["referrals_decided"] <= k["referrals"]


def test_refer_and_decide_go_through_the_engine_by_the_plan_parties(default, slow):
    lead = PLAN.settings.accountability_lead
    office = PLAN.settings.accountability_office
    for result in (default, slow):
        refers = [e for e in result.events if e.kind == "refer"]
        decides = [e for e in result.events if e.kind == "decide_referral"]
        assert refers
        assert decides
        for e in refers:
            assert e.actor.agency in lead
            assert e.rules[0] == "R-ESC-OFFICIAL"
            assert e.payload["accountable"]
            assert e.payload["reason_zh"]
        referred = {e.event_id for e in refers}
        for e in decides:
            assert e.actor.agency == office
            assert e.payload["referral"] in referred
            assert e.rules == ("R-ESC-OFFICIAL",)


def test_a_slow_town_is_referred_while_its_duty_is_late(slow):
    """Each ``slow`` referral is made while the engine itself says the duty is late."""
    histories = _histories(slow)
    seen = Counter()
    for tid, events in histories.items():
        for i, e in enumerate(events):
            if e.kind != "refer" or e.payload["case"] != "slow":
                continue
            state = fold(events[:i], plan=PLAN)
            late = [d for d in duties_at(state, e.at, PLAN) if d.late]
            assert late, (tid, e)
            owners = {a for d in late for a in d.agencies}
            assert set(e.payload["accountable"]) <= owners
            assert "R-ACC-SLOW" in e.rules
            seen[late[0].kind] += 1
    assert seen["route"] > 0
    assert seen["sign_off"] > 0
    # a routed ticket was routed six active days after its report, referred in between
    for events in histories.values():
        kinds = [e.kind for e in events]
        if "route" in kinds:
            assert kinds.index("refer") < kinds.index("route")
    # the signers are named: the acceptance people of the re-check (R-TKT-SIGNOFF)
    sign_off_refers = [
        e
        for events in histories.values()
        for i, e in enumerate(events)
        if e.kind == "refer" and events[i - 1].kind == "recheck_pass"
    ]
    assert sign_off_refers
    assert all(e.payload["persons"] for e in sign_off_refers)


def test_missed_duties_and_referrals_by_party(slow):
    k = slow.kpis
    rows = slow.accountability_rows()
    by = {r["party"]: r for r in rows}
    assert by["town"]["kind"] == "town"
    assert by["property"]["kind"] == "property"
    # every ticket routed late is its route lead's missed duty (R-DUTY-ROUTE): the town's
    # inside a community, traffic police or urban management around it (四(一))
    routes = [a for a in slow.accountability if a.what == "missed" and a.kind == "route"]
    assert routes
    assert {a.rule for a in routes} == {"R-DUTY-ROUTE"}
    assert ("town",) in {a.parties for a in routes}
    assert k["duties_missed_town"] >= len(routes)
    assert sum(r["duties_missed"] for r in rows) >= k["duties_missed"]
    assert (
        k["duties_missed"]
        == k["duties_missed_town"] + k["duties_missed_department"] + k["duties_missed_property"]
    )
    # a property company's missed deadline is R-ESC-OVERDUE: never referred (R-ESC-PROPERTY
    # is its road), so its row has duties missed and no referral
    assert by["property"]["duties_missed"] > 0
    assert by["property"]["referred"] == by["property"]["decided"] == 0
    assert k["referrals_town"] == by["town"]["referred"] > 0
    assert k["referrals_decided"] == sum(1 for a in slow.accountability if a.what == "decided")
    # the towns' reports and the companies' ledgers are on their own rows
    assert by["town"]["reports_late"] == k["notices_reports_official"]
    assert by["property"]["reports_late"] == k["notices_reports_property"]
    table = slow.accountability_table()
    assert list(table.columns) == [
        "kind",
        "duties_missed",
        "cases",
        "referred",
        "decided",
        "reports_late",
    ]
    assert table.loc["town", "referred"] == by["town"]["referred"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    refer=st.sampled_from([0.0, 0.5, 1.0]),
    decide=st.sampled_from([0.0, 0.5, 1.0]),
    seed=st.integers(0, 50),
)
def test_referrals_follow_their_probabilities(refer, decide, seed):
    pop = generate_population(12, seed=seed)
    b = SLOW.replace(refer_probability=refer, decide_probability=decide)
    r = simulate(PLAN, pop, b, seed=seed, log="none")
    k = r.kpis
    assert k["accountability_cases"] > 0
    assert k["referrals"] <= k["accountability_cases"]
    assert k["referrals_decided"] <= k["referrals"]
    if refer == 0.0:
        assert k["referrals"] == 0
    if refer == 1.0:
        assert k["referrals"] == k["accountability_cases"]
    if decide == 0.0:
        assert k["referrals_decided"] == 0


def test_sharded_runs_keep_the_duties(slow):
    split = simulate(PLAN, POP, SLOW, seed=SEED, workers=2)
    assert split.log_digest() == slow.log_digest()
    assert split.accountability == slow.accountability
    assert repr(split.kpis) == repr(slow.kpis)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"route_working_days": (-1.0, 0.5)}, "route_working_days"),
        ({"archive_working_days": (2.0, float("nan"))}, "archive_working_days"),
        ({"refer_probability": 1.5}, "refer_probability"),
        ({"decide_working_days": -2}, "decide_working_days"),
    ],
)
def test_bad_duty_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(InvalidArgument, match=field):
        Behaviour(**changes)
