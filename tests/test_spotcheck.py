"""fireflow.rules.spotcheck: the "双随机、一公开" draw (R-SPOT-RATIO, R-SPOT-DOUBLE-RANDOM).

The ratio is checked in exact arithmetic: "不低于10%" means drawn / N >= 10%, so
10% of 30 is 3 (the float ceil(0.1 * 30) would say 4) and 10% of 31 is 4.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from fireflow import InvalidArgument, load_plan
from fireflow.forms import ticket_states
from fireflow.rules.escalation import due_escalations
from fireflow.rules.spotcheck import (
    MIN_SEED_BITS,
    Commitment,
    Community,
    Conflict,
    Draw,
    DrawInputs,
    Finding,
    Inspector,
    NoEligibleInspector,
    commit,
    draw,
    draw_inputs,
    findings_to_commands,
    inputs_from_data,
    required_count,
    seed_strength,
    verify,
)
from fireflow.ticket import Ticket

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
SEED = "长乐区2022抽查-7f3a9c21e4b05d68"
POOL = (
    Inspector("H1", "housing", "王"),
    Inspector("H2", "housing", "林"),
    Inspector("F1", "fire", "周"),
    Inspector("F2", "fire", "陈"),
    Inspector("U1", "urban", "郑"),
    Inspector("P1", "police", "黄"),
    Inspector("G1", "planning", "吴"),
)


def plan_with_spot(**changes):
    sc = PLAN.settings.spot_check.model_copy(update=changes)
    return PLAN.model_copy(update={"settings": PLAN.settings.model_copy(update={"spot_check": sc})})


def communities(n, towns=3):
    return [Community(f"C{i:03}", f"T{i % towns}") for i in range(n)]


def exact_minimum(ratio, n):
    """The smallest k with k / n >= ratio, in exact arithmetic (the plan's 不低于)."""
    r = Fraction(repr(ratio))
    k = 0
    while Fraction(k, max(n, 1)) < r and k < n:
        k += 1
    return k


ratios = st.one_of(
    st.integers(min_value=1, max_value=100).map(lambda p: p / 100),
    st.floats(min_value=0.001, max_value=1.0, allow_nan=False, allow_infinity=False),
)
# Strong seeds only (R-SPOT-DOUBLE-RANDOM refuses weak ones): digest bytes, and text led
# by a hex digest so that hypothesis's favourite "0000…" cannot come out.
seeds = st.one_of(
    st.binary(min_size=1, max_size=48).map(lambda b: hashlib.sha256(b).digest()),
    st.text(max_size=40).map(lambda t: hashlib.sha256(t.encode("utf-8")).hexdigest() + t),
)


# --------------------------------------------------------------------------- #
# R-SPOT-RATIO


def test_plan_numbers():
    assert required_count(0.1, 31) == 4  # DOMAIN.md: 10% of 31 is 4
    assert required_count(0.1, 30) == 3  # exactly 10%: not 4 (float ceil(0.1 * 30) is 4)
    assert required_count(0.1, 1) == 1
    assert required_count(0.1, 0) == 0
    d = draw(draw_inputs(PLAN, communities(31), POOL), SEED)
    assert len(d.assignments) == 4
    assert d.strata[0].population == 31
    assert d.strata[0].required == 4


@given(n=st.integers(min_value=1, max_value=500), ratio=ratios, seed=seeds)
def test_ratio_property_district(n, ratio, seed):
    plan = plan_with_spot(ratio=ratio)
    d = draw(draw_inputs(plan, communities(n), POOL), seed)
    drawn = set(d.communities)
    assert len(drawn) == len(d.assignments)  # distinct
    assert len(drawn) >= exact_minimum(ratio, n)
    assert Fraction(len(drawn), n) >= Fraction(repr(ratio))  # 不低于 ratio
    assert Fraction(len(drawn) - 1, n) < Fraction(repr(ratio))  # and no more than needed
    assert drawn <= {c.id for c in communities(n)}


@given(
    n=st.integers(min_value=1, max_value=300),
    towns=st.integers(min_value=1, max_value=12),
    ratio=ratios,
    seed=seeds,
)
def test_ratio_property_per_town(n, towns, ratio, seed):
    plan = plan_with_spot(ratio=ratio, base="town")
    comms = communities(n, towns)
    d = draw(draw_inputs(plan, comms, POOL), seed)
    for t in sorted({c.town for c in comms}):
        size = sum(1 for c in comms if c.town == t)
        got = {a.community for a in d.assignments if a.town == t}
        assert len(got) >= exact_minimum(ratio, size), t
    assert len(d.communities) >= exact_minimum(ratio, n)  # sum of ceils >= ceil of sum


def test_with_problems_base_draws_from_communities_with_problems():
    plan = plan_with_spot(base="with_problems", ratio=0.5)
    comms = [Community(f"C{i}", "T", has_problems=i % 3 == 0) for i in range(12)]
    d = draw(draw_inputs(plan, comms, POOL), SEED)
    assert d.strata[0].population == 4
    assert len(d.communities) == 2
    assert all(int(c[1:]) % 3 == 0 for c in d.communities)


# --------------------------------------------------------------------------- #
# R-SPOT-DOUBLE-RANDOM: teams and conflicts


def test_teams_have_a_lead_and_another_agency():
    d = draw(draw_inputs(PLAN, communities(40), POOL), SEED)
    ids = {p.id: p for p in POOL}
    for a in d.assignments:
        assert len(a.inspectors) == 2
        assert a.agencies == tuple(ids[p].agency for p in a.inspectors)
        assert a.agencies[0] in ("housing", "fire")
        assert len(set(a.agencies)) == 2
        assert a.rules == ("R-SPOT-RATIO", "R-SPOT-DOUBLE-RANDOM")


def test_work_is_spread_over_the_pool():
    d = draw(draw_inputs(PLAN, communities(70), POOL), SEED)  # 7 communities, 7 people
    used = [p for a in d.assignments for p in a.inspectors]
    counts = {p.id: used.count(p.id) for p in POOL}
    assert max(counts.values()) - min(counts.values()) <= 1


def test_only_lead_agency_available_gives_a_smaller_or_single_agency_team():
    pool = [Inspector("H1", "housing")]
    d = draw(draw_inputs(PLAN, communities(10), pool), SEED)
    assert d.assignments[0].inspectors == ("H1",)


@st.composite
def conflict_lists(draw_, comms):
    people = [p.id for p in POOL]
    towns = sorted({c.town for c in comms})
    items = draw_(
        st.lists(
            st.one_of(
                st.builds(
                    lambda p, c: Conflict(p, community=c),
                    st.sampled_from(people),
                    st.sampled_from([c.id for c in comms]),
                ),
                st.builds(
                    lambda p, t: Conflict(p, town=t),
                    st.sampled_from(people),
                    st.sampled_from(towns),
                ),
            ),
            max_size=25,
        )
    )
    return items


@given(data=st.data(), n=st.integers(min_value=1, max_value=60), seed=seeds)
def test_conflicts_are_always_excluded(data, n, seed):
    comms = communities(n, towns=4)
    conflicts = data.draw(conflict_lists(comms))
    plan = plan_with_spot(ratio=data.draw(ratios))
    inputs = draw_inputs(plan, comms, POOL, conflicts, team_size=data.draw(st.integers(1, 4)))
    tied = {(x.person, x.community) for x in conflicts if x.community}
    tied_town = {(x.person, x.town) for x in conflicts if x.town}
    town_of = {c.id: c.town for c in comms}
    try:
        d = draw(inputs, seed)
    except NoEligibleInspector as exc:
        error = exc
    else:
        error = None
    if error is not None:
        # the error is true: no lead-agency inspector is free for that community
        assert error.community in town_of
        assert error.field == "inspectors"
        free = [
            p
            for p in POOL
            if p.agency in ("housing", "fire")
            and (p.id, error.community) not in tied
            and (p.id, town_of[error.community]) not in tied_town
        ]
        assert free == []
        return
    for a in d.assignments:
        assert a.inspectors
        assert a.agencies[0] in ("housing", "fire")
        for p in a.inspectors:
            assert (p, a.community) not in tied
            assert (p, a.town) not in tied_town
    assert verify(commit(inputs, seed), inputs, seed, d).ok


def test_no_valid_team_names_the_community():
    plan = plan_with_spot(ratio=1.0)
    conflicts = [Conflict(p.id, town="T1") for p in POOL if p.agency in ("housing", "fire")]
    inputs = draw_inputs(plan, communities(6), POOL, conflicts)
    with pytest.raises(NoEligibleInspector) as info:
        draw(inputs, SEED)
    assert info.value.community == "C001"
    assert info.value.town == "T1"
    assert "C001" in str(info.value)
    assert info.value.rule == "R-SPOT-DOUBLE-RANDOM"


def test_simple_random_draws_communities_only():
    d = draw(draw_inputs(plan_with_spot(method="simple_random"), communities(31), POOL), SEED)
    assert len(d.assignments) == 4
    assert all(a.inspectors == () for a in d.assignments)
    assert d.rules == ("R-SPOT-RATIO",)


# --------------------------------------------------------------------------- #
# Deterministic and publicly verifiable


def test_same_inputs_in_any_order_give_the_same_draw():
    comms = communities(50)
    conflicts = [Conflict("H1", town="T0"), Conflict("U1", community="C007")]
    a = draw_inputs(PLAN, comms, POOL, conflicts)
    b = draw_inputs(PLAN, list(reversed(comms)), list(reversed(POOL)), list(reversed(conflicts)))
    assert a == b
    assert a.canonical_bytes() == b.canonical_bytes()
    assert draw(a, SEED) == draw(b, SEED)
    assert draw(a, SEED.encode()) == draw(a, SEED)  # text seeds are their UTF-8 bytes
    assert draw(a, SEED) != draw(a, SEED + "!")


def test_known_answer():
    """The draw algorithm is a published format: a change here breaks old verifications."""
    inputs = draw_inputs(PLAN, communities(31), POOL, [Conflict("H1", town="T0")])
    d = draw(inputs, SEED)
    assert inputs.digest() == KNOWN_INPUTS_DIGEST
    assert commit(inputs, SEED).commitment == KNOWN_COMMITMENT
    assert [(a.community, a.inspectors) for a in d.assignments] == KNOWN_ASSIGNMENTS


KNOWN_INPUTS_DIGEST = "ab41449b257cf35eb4fcdedc2810a6ecadc703c20a4519340a1b26ff669f9201"
KNOWN_COMMITMENT = "7a50a1209d98c8eb0fb3d8e3a647e5a3714bc71fee080372cd54f0b3d91ee0e8"
KNOWN_ASSIGNMENTS = [
    ("C004", ("H2", "G1")),
    ("C007", ("F2", "P1")),
    ("C008", ("H1", "U1")),
    ("C011", ("F1", "H2")),
]


_SCRIPT = r"""
import json
from fireflow import load_plan
from fireflow.rules.spotcheck import Community, Conflict, Inspector, commit, draw, draw_inputs

plan = load_plan("changle-2022")
# inputs handed over in set order, which changes with PYTHONHASHSEED
comms = {Community(f"小区{i:03}", f"镇{i % 5}") for i in range(137)}
pool = {Inspector(f"P{i}", a) for i, a in enumerate(
    ["housing", "fire", "urban", "police", "planning"] * 3)}
ties = {Conflict("P0", town="镇1"), Conflict("P1", community="小区004"), Conflict("P5", town="镇3")}
inputs = draw_inputs(plan, comms, pool, ties)
seed = "published-seed-2022-07-16-长乐"
out = {"commitment": commit(inputs, seed).to_data(), "draw": draw(inputs, seed).to_data(),
       "order": [c.id for c in comms][:3]}
print(json.dumps(out, ensure_ascii=False, sort_keys=True))
"""


def _run(seed):
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, check=False, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return json.loads(proc.stdout.decode("utf-8"))


def test_reproducible_across_processes_and_hash_seeds():
    a, b = _run("0"), _run("4242")
    assert a["order"] != b["order"]  # the inputs really arrived in another order
    assert a["commitment"] == b["commitment"]
    assert a["draw"] == b["draw"]
    assert len(a["draw"]["assignments"]) == 14  # ceil(10% of 137)


def _published():
    inputs = draw_inputs(PLAN, communities(31), POOL, [Conflict("F1", community="C003")])
    return inputs, commit(inputs, SEED), draw(inputs, SEED)


def test_verify_accepts_the_published_draw():
    inputs, c, d = _published()
    result = verify(c, inputs, SEED, d)
    assert result.ok
    assert bool(result)
    assert [ch.name for ch in result.checks] == [
        "plan", "inputs", "seed", "commitment", "draw", "ratio", "conflicts",
    ]  # fmt: skip
    # everything survives publication as JSON
    c2 = Commitment.from_data(json.loads(json.dumps(c.to_data())))
    d2 = Draw.from_data(json.loads(json.dumps(d.to_data(), ensure_ascii=False)))
    i2 = DrawInputs.from_data(json.loads(json.dumps(inputs.to_data(), ensure_ascii=False)))
    assert (c2, d2, i2) == (c, d, inputs)
    assert verify(c2, i2, SEED, d2).ok


def _failed(result):
    return {c.name for c in result.checks if not c.ok}


def test_verify_fails_on_a_changed_seed():
    inputs, c, d = _published()
    result = verify(c, inputs, SEED + "x", d)
    assert not result
    assert "commitment" in _failed(result)
    assert _failed(verify(c, inputs, "short", d)) == {"seed"}


def test_verify_fails_on_changed_inputs():
    _, c, d = _published()
    more = draw_inputs(PLAN, communities(32), POOL, [Conflict("F1", community="C003")])
    assert "inputs" in _failed(verify(c, more, SEED, d))
    fewer_ties = draw_inputs(PLAN, communities(31), POOL)
    assert "inputs" in _failed(verify(c, fewer_ties, SEED, d))
    other_ratio = draw_inputs(plan_with_spot(ratio=0.2), communities(31), POOL)
    assert not verify(c, other_ratio, SEED, d)


def test_verify_fails_on_a_changed_draw():
    inputs, c, d = _published()
    data = d.to_data()
    # swap a drawn community for one that was not drawn
    spare = next(x.id for x in inputs.communities if x.id not in d.communities)
    data["assignments"][0]["community"] = spare
    assert "draw" in _failed(verify(c, inputs, SEED, Draw.from_data(data)))
    # drop a community: too few
    data = d.to_data()
    data["assignments"].pop()
    assert {"draw", "ratio"} <= _failed(verify(c, inputs, SEED, Draw.from_data(data)))
    # send the tied inspector where they may not go
    data = d.to_data()
    data["assignments"][0]["community"] = "C003"
    data["assignments"][0]["inspectors"] = ["F1"]
    assert {"draw", "conflicts"} <= _failed(verify(c, inputs, SEED, Draw.from_data(data)))


# --------------------------------------------------------------------------- #
# Input errors name the field


@pytest.mark.parametrize(
    ("comms", "pool", "ties", "field"),
    [
        ([Community("A", "T"), Community("A", "T")], POOL, [], "communities[1].id"),
        ([Community("", "T")], POOL, [], "communities[0].id"),
        ([Community("A", "T")], [Inspector("X", "committee")], [], "inspectors[0].agency"),
        ([Community("A", "T")], [Inspector("X", "nobody")], [], "inspectors[0].agency"),
        ([Community("A", "T")], [POOL[0], POOL[0]], [], "inspectors[1].id"),
        ([Community("A", "T")], POOL, [Conflict("Z9", town="T")], "conflicts[0].person"),
        ([Community("A", "T")], POOL, [Conflict("H1")], "conflicts[0]"),
        ([Community("A", "T")], POOL, [Conflict("H1", "A", "T")], "conflicts[0]"),
        ([Community("A", "T")], POOL, [Conflict("H1", community="B")], "conflicts[0].community"),
        ([Community("A", "T")], POOL, [Conflict("H1", town="U")], "conflicts[0].town"),
        ([Community("A\x00", "T")], POOL, [], "communities[0].id"),
    ],
)
def test_bad_inputs_name_the_field(comms, pool, ties, field):
    with pytest.raises(InvalidArgument) as info:
        draw_inputs(PLAN, comms, pool, ties)
    assert info.value.field == field


@pytest.mark.parametrize(
    "weak",
    [
        "aaaaaaaaaaaaaaaa",
        "a" * 200,
        b"\x00" * 64,
        "0123456789abcdef" * 4,  # a block of 16 hex digits, repeated
        "9f86d081884c7d659a2feaa0c55ad01",  # 31 hex digits: 124 bits
        "1234567890" * 3 + "12",  # decimal digits: 106 bits
        "x" * 2000,  # too long as well as weak
    ],
)
def test_weak_seeds_are_refused_naming_the_rule(weak):
    inputs = draw_inputs(PLAN, communities(3), POOL)
    for func in (draw, commit):
        with pytest.raises(InvalidArgument) as info:
            func(inputs, weak)
        assert info.value.field == "seed"
        assert info.value.rule == "R-SPOT-DOUBLE-RANDOM"


@pytest.mark.parametrize(
    "strong",
    [
        "9f86d081884c7d659a2feaa0c55ad015",  # 32 hex digits: 128 bits
        bytes(range(16)),
        "2022-07-16 长乐区抽查 公开种子 A",  # the conformance suite's seed
        "Jm3xQ9vT2pLw8nRk5sYd1A",  # 22 characters of secrets.token_urlsafe(16)
    ],
)
def test_strong_seeds_are_accepted(strong):
    assert seed_strength(strong) >= MIN_SEED_BITS
    draw(draw_inputs(PLAN, communities(3), POOL), strong)


@given(seed=st.binary(min_size=1, max_size=64) | st.text(min_size=1, max_size=64))
def test_seed_strength_ignores_repetition(seed):
    assert seed_strength(seed * 3) == seed_strength(seed)
    assert seed_strength(seed[:1] * 40) == 0


def test_a_weak_seed_fails_verification_instead_of_raising():
    inputs = draw_inputs(PLAN, communities(3), POOL)
    d = draw(inputs, SEED)
    result = verify(commit(inputs, SEED), inputs, "aaaaaaaaaaaaaaaa", d)
    assert not result.ok
    assert [c.name for c in result.checks if not c.ok] == ["seed"]


def test_bad_seed_and_team_size():
    inputs = draw_inputs(PLAN, communities(3), POOL)
    for bad in ("too short", b"", 42):
        with pytest.raises(InvalidArgument) as info:
            draw(inputs, bad)
        assert info.value.field == "seed"
    with pytest.raises(InvalidArgument) as info:
        draw_inputs(PLAN, communities(3), POOL, team_size=0)
    assert info.value.field == "team_size"


def test_inputs_from_json_data():
    data = {
        "communities": [{"id": "A", "town": "T"}, {"id": "B", "town": "T", "name": "乙"}],
        "inspectors": [{"id": "H1", "agency": "housing"}, {"id": "U1", "agency": "urban"}],
        "conflicts": [{"person": "U1", "community": "A"}],
        "team_size": 2,
    }
    inputs = inputs_from_data(data, PLAN)
    assert [c.id for c in inputs.communities] == ["A", "B"]
    assert inputs_from_data(inputs.to_data(), PLAN) == inputs
    with pytest.raises(InvalidArgument) as info:
        inputs_from_data({**data, "extra": 1}, PLAN)
    assert info.value.field == "extra"
    with pytest.raises(InvalidArgument) as info:
        inputs_from_data({**data, "communities": [{"town": "T"}]}, PLAN)
    assert info.value.field == "communities[0].id"
    with pytest.raises(InvalidArgument) as info:
        inputs_from_data({**inputs.to_data(), "plan": "other"}, PLAN)
    assert info.value.field == "plan"


_ITEM_KEYS = {
    "communities": {"id", "town", "name", "has_problems"},
    "inspectors": {"id", "agency", "name"},
    "conflicts": {"person", "community", "town", "note"},
}


@given(
    st.sampled_from(sorted(_ITEM_KEYS)),
    st.text(min_size=1, max_size=12).filter(lambda k: k not in set().union(*_ITEM_KEYS.values())),
    st.integers(0, 1),
)
def test_an_unknown_key_inside_an_item_is_refused_by_name(lst, key, i):
    """A misspelt key inside an item is refused, naming it: the draw is never made on
    inputs other than the ones the file seems to say (``has_problem`` for ``has_problems``)."""
    data = {
        "communities": [{"id": "A", "town": "T"}, {"id": "B", "town": "T"}],
        "inspectors": [{"id": "H1", "agency": "housing"}, {"id": "U1", "agency": "urban"}],
        "conflicts": [{"person": "U1", "community": "A"}, {"person": "H1", "town": "T"}],
    }
    data[lst][i] = {**data[lst][i], key: True}
    with pytest.raises(InvalidArgument) as info:
        inputs_from_data(data, PLAN)
    assert info.value.field == f"{lst}[{i}].{key}"
    clean = {**data, lst: [{k: v for k, v in x.items() if k != key} for x in data[lst]]}
    published = inputs_from_data(clean, PLAN).to_data()  # the same inputs, as published
    published[lst][i] = {**published[lst][i], key: True}
    with pytest.raises(InvalidArgument) as info:
        DrawInputs.from_data(published)
    assert info.value.field == f"{lst}[{i}].{key}"


def test_a_misspelt_has_problems_is_refused_not_dropped():
    data = {
        "communities": [{"id": "A", "town": "T", "has_problem": True}],
        "inspectors": [{"id": "H1", "agency": "housing"}, {"id": "U1", "agency": "urban"}],
    }
    with pytest.raises(InvalidArgument) as info:
        inputs_from_data(data, PLAN)
    assert info.value.field == "communities[0].has_problem"
    assert "has_problems" in str(info.value)  # the known keys are listed


# --------------------------------------------------------------------------- #
# R-TKT-SPOTCHECK: findings reopen tickets through the engine


def _archived(tid, community, at):
    t = Ticket(tid, PLAN)
    t.command("report", at, "town", community=community, town="T1", category="fire_lane_vehicle",
              subtype="private_car", location="inside", source="town_inspection")  # fmt: skip
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    t.command("rectify", at + timedelta(days=1), "property")
    t.command("apply_reinspection", at + timedelta(days=1), "property")
    parts = [{"agency": "fire", "person": "林"}]
    t.command("recheck_pass", at + timedelta(days=2), "town", participants=parts)
    t.command(
        "sign_off", at + timedelta(days=2), "town", signers=[{"agency": "fire", "person": "林"}]
    )
    t.command("archive", at + timedelta(days=2), "town",
              evidence=[{"kind": "photo_after", "sha256": "a" * 64}])  # fmt: skip
    return t


def test_findings_reopen_closed_tickets():
    at = datetime(2022, 4, 1, 10, tzinfo=SH)
    d = draw(draw_inputs(PLAN, [Community("C001", "T1")], POOL), SEED)
    t = _archived("T-1", "C001", at)
    open_one = Ticket("T-2", PLAN)
    open_one.command("report", at, "town", community="C001", town="T1",
                     category="evacuation_blocked", subtype="goods", location="inside",
                     source="town_inspection")  # fmt: skip
    states = ticket_states([*t.events, *open_one.events])
    check = datetime(2022, 8, 1, 10, tzinfo=SH)
    findings = [
        Finding("C001", "fire_lane_vehicle", compliant=False, note="车道仍停车"),
        Finding("C001", "evacuation_blocked", compliant=False),
        Finding("C001", "spacing_illegal_building", compliant=False),
        Finding("C001", "lane_or_sign_missing", compliant=True),
    ]
    orders = findings_to_commands(PLAN, d, findings, states.values(), check)
    assert [o.command.ticket_id for o in orders.reopen] == ["T-1"]
    order = orders.reopen[0]
    assert order.rules == ("R-TKT-SPOTCHECK",)
    assert order.command.kind == "reopen"
    assert order.command.actor.agency in ("housing", "fire")
    assert order.command.actor.person == d.assignments[0].inspectors[0]
    assert "车道仍停车" in order.command.reason
    again = findings_to_commands(PLAN, d, findings, states.values(), check)
    assert again == orders  # deterministic, command ids included
    unmatched = {u.finding.category: u for u in orders.unmatched}
    assert unmatched["evacuation_blocked"].open_tickets == ("T-2",)
    assert unmatched["spacing_illegal_building"].open_tickets == ()
    assert "R-TKT-OPEN" in unmatched["spacing_illegal_building"].rules
    # the engine does the reopening, and the escalation rules take it from there
    (event,) = t.execute(order.command)
    assert event.kind == "reopen"
    assert "R-TKT-SPOTCHECK" in event.rules
    assert t.state.state == "rectifying"
    assert t.state.reopened_after_signoff == 1
    rules = [e.rule for e in due_escalations(t.state, check, PLAN)]
    assert "R-ACC-FALSIFIED" in rules  # 弄虚作假: the signers, for the lead departments to refer
    assert "R-TKT-SPOTCHECK" in rules


def test_findings_must_be_for_drawn_communities_and_known_categories():
    at = datetime(2022, 8, 1, 10, tzinfo=SH)
    d = draw(draw_inputs(PLAN, communities(31), POOL), SEED)
    other = next(c.id for c in communities(31) if c.id not in d.communities)
    with pytest.raises(InvalidArgument) as info:
        findings_to_commands(PLAN, d, [Finding(other, "fire_lane_vehicle", False)], [], at)
    assert info.value.field == "findings[0].community"
    with pytest.raises(InvalidArgument) as info:
        findings_to_commands(PLAN, d, [Finding(d.communities[0], "hydrant", False)], [], at)
    assert info.value.field == "findings[0].category"


# --------------------------------------------------------------------------- #
# CLI


def _app():
    from fireflow.cli.reports import register

    app = typer.Typer()
    register(app)
    return app


def test_cli_commit_draw_verify(tmp_path):
    runner = CliRunner()
    app = _app()
    inputs = tmp_path / "inputs.json"
    inputs.write_text(
        json.dumps(
            {
                "communities": [{"id": c.id, "town": c.town} for c in communities(31)],
                "inspectors": [{"id": p.id, "agency": p.agency, "name": p.name} for p in POOL],
                "conflicts": [{"person": "H1", "town": "T0"}],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    r = runner.invoke(app, ["spotcheck", "commit", str(inputs), "--seed", SEED])
    assert r.exit_code == 0, r.output
    (tmp_path / "c.json").write_text(r.stdout, encoding="utf-8")
    r = runner.invoke(app, ["spotcheck", "draw", str(inputs), "--seed", SEED])
    assert r.exit_code == 0, r.output
    (tmp_path / "d.json").write_text(r.stdout, encoding="utf-8")
    assert len(json.loads(r.stdout)["assignments"]) == 4
    args = ["spotcheck", "verify", str(inputs), "--commitment", str(tmp_path / "c.json"),
            "--draw", str(tmp_path / "d.json")]  # fmt: skip
    r = runner.invoke(app, [*args, "--seed", SEED])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ok"] is True
    r = runner.invoke(app, [*args, "--seed", SEED + "?"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["ok"] is False
    r = runner.invoke(app, ["spotcheck", "inputs", str(inputs)])
    assert json.loads(r.stdout)["format"] == "fireflow.spotcheck/1"
    r = runner.invoke(app, ["spotcheck", "draw", str(inputs), "--seed", "short"])
    assert r.exit_code == 1
    assert "seed" in r.stderr
    r = runner.invoke(app, ["spotcheck", "draw", str(tmp_path / "nope.json"), "--seed", SEED])
    assert r.exit_code == 1
