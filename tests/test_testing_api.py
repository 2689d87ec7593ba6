"""fireflow.testing's helpers: strategies, the state machine, lifecycle paths, populations."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, run_state_machine_as_test

import fireflow.testing
from fireflow import load_plan
from fireflow.errors import Refusal
from fireflow.plan import Plan, validate_plan_data
from fireflow.states import (
    INITIAL_STATE,
    SETTINGS_AUTHORIZED,
    TRIGGERS,
    compiled_table,
    triggers_from,
)
from fireflow.testing import (
    generate_population,
    parse_scenario,
    path_to_scenario,
    paths_to_scenarios,
    realize_path,
    run_scenario,
    simple_paths,
)
from fireflow.testing.machine import TicketMachine
from fireflow.testing.paths import authorized_agencies, is_lifecycle_path, path_states
from fireflow.testing.strategies import (
    commands,
    event_sequences,
    hazards,
    instants,
    plan_data,
    plans,
    populations,
)
from fireflow.ticket import Command, TicketState, decide, evolve, fold

PLAN = load_plan("changle-2022")
HAPPY = (
    "report", "route", "set_deadline", "rectify", "apply_reinspection",
    "recheck_pass", "sign_off", "archive",
)  # fmt: skip
FAST = settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- #
# The package surface


def test_all_sorted_and_documented():
    names = list(fireflow.testing.__all__)
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    for name in names:
        obj = getattr(fireflow.testing, name)
        if callable(obj):
            assert obj.__doc__, name


def test_plugin_and_cli_need_no_hypothesis():
    code = (
        "import sys; import fireflow.testing, fireflow.testing.plugin, fireflow.cli.conformance; "
        "print('hypothesis' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


# --------------------------------------------------------------------------- #
# Strategies


@FAST
@given(plan_data())
def test_plan_data_validates(data):
    plan = validate_plan_data(data)
    assert plan.id == "changle-2022"
    deadlines = plan.deadlines()
    assert {d.id for d in deadlines} >= {"ledger", "dossier", "summary"}
    assert [p.start for p in plan.phases] == sorted(p.start for p in plan.phases)
    assert plan.start == PLAN.start
    assert plan.end == PLAN.end


@FAST
@given(plans(PLAN))
def test_plans_are_plans(plan):
    assert isinstance(plan, Plan)
    for day in (plan.start, plan.end):
        assert plan.phase_on(day) is not None


@FAST
@given(populations(max_towns=5, max_communities=40))
def test_populations_are_consistent(pop):
    towns = {t.id for t in pop.towns}
    companies = {p.id for p in pop.companies}
    assert 1 <= len(towns) <= 5
    assert len(pop.communities) <= 40
    assert len({c.id for c in pop.communities}) == len(pop.communities)
    assert len({c.name_zh for c in pop.communities}) == len(pop.communities)
    assert all(c.town in towns and c.company in companies for c in pop.communities)
    assert sum(len(pop.communities_in(t)) for t in towns) == len(pop.communities)


def test_population_is_reproducible():
    a = generate_population(2022, towns=4, communities=31, companies=6)
    b = generate_population(2022, towns=4, communities=31, companies=6)
    c = generate_population(2023, towns=4, communities=31, companies=6)
    assert a == b
    assert a != c
    assert {x.town for x in a.communities} == {t.id for t in a.towns}
    assert {x.company for x in a.communities} == {p.id for p in a.companies}
    assert a.town("t01").name_zh
    assert a.managed_by("p01")
    with pytest.raises(ValueError, match="towns"):
        generate_population(1, towns=0)


@FAST
@given(st.data())
def test_commands_for_a_ticket_in_a_state(data):
    events = data.draw(event_sequences(PLAN, max_commands=12))
    state = fold(events, "T1")
    cmd = data.draw(commands(state, PLAN))
    assert isinstance(cmd, Command)
    assert cmd.ticket_id == "T1"
    assert cmd.at.tzinfo is not None
    good = data.draw(commands(state, PLAN, likely_valid=True))
    if triggers_from(state.state):
        assert good.kind in triggers_from(state.state)
        assert good.actor.agency in authorized_agencies(state, good.kind, PLAN)
    refusal = None
    try:
        decide(state, good, PLAN)
    except Refusal as exc:  # allowed, but then with a rule or a field that says why
        refusal = exc
    assert refusal is None or refusal.rule or refusal.field


@FAST
@given(event_sequences(PLAN, max_commands=25))
def test_event_sequences_come_from_the_engine(events):
    state = TicketState("T1")
    table = compiled_table()
    for i, e in enumerate(events, start=1):
        assert e.seq == i
        if e.kind != "attempt_refused":
            assert (state.state, e.kind) in table
            assert e.rules
        state = fold(events[:i], "T1")
    assert fold(events, "T1") == state


def test_event_sequences_reach_deep_states():
    # every state a drawn ticket passes through counts, not only where it ends:
    # about one sequence in ten ends in reinspection_requested, but most that get
    # that far pass through it, so 60 examples reach it whatever hypothesis draws
    reached: set[str] = set()

    @settings(max_examples=60, database=None, derandomize=True)
    @given(event_sequences(PLAN, max_commands=30))
    def collect(events):
        state = TicketState("T1")
        for e in events:
            state = evolve(state, e)
            reached.add(state.state)

    collect()
    assert {"rectifying", "rectified", "reinspection_requested", "passed"} <= reached


@FAST
@given(st.data())
def test_hazards_and_instants(data):
    category, location, _subtype = data.draw(hazards(PLAN))
    PLAN.category(category)
    assert location in ("inside", "around")
    at = data.draw(instants(PLAN))
    assert isinstance(at, datetime)
    assert at.utcoffset() is not None
    assert PLAN.start.year - 1 <= PLAN.local_date(at).year <= PLAN.end.year + 1


# --------------------------------------------------------------------------- #
# The state machine


def test_ticket_machine_runs():
    # derandomize: without it the runs come from hypothesis's process-wide generator,
    # whose n-th seed goes to the n-th hypothesis test of the process, so what this
    # test exercised (and which mutants it caught) depended on the tests before it
    run_state_machine_as_test(
        TicketMachine,
        settings=settings(max_examples=15, stateful_step_count=30, database=None, derandomize=True),
    )


def test_ticket_machine_can_be_subclassed_with_another_plan():
    data = PLAN.to_data()
    data["settings"]["min_recheck_agencies"] = 3
    plan = validate_plan_data(data)

    class ThreeAgencies(TicketMachine):
        @classmethod
        def make_plan(cls):
            return plan

    m = ThreeAgencies()
    assert m.plan.settings.min_recheck_agencies == 3
    run_state_machine_as_test(
        ThreeAgencies, settings=settings(max_examples=10, stateful_step_count=25, database=None)
    )


def test_subclass_invariants_are_checked():
    class NeverRouted(TicketMachine):
        @invariant()
        def not_routed(self):
            assert self.ticket.state.state != "routed"

    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            NeverRouted,
            settings=settings(
                max_examples=200, stateful_step_count=10, database=None, derandomize=True
            ),
        )


# --------------------------------------------------------------------------- #
# Lifecycle paths


def test_simple_paths_are_lifecycle_paths():
    paths = simple_paths(12)
    assert HAPPY in paths
    assert paths == simple_paths(12)  # deterministic
    assert len(set(paths)) == len(paths)
    assert [len(p) for p in paths] == sorted(len(p) for p in paths)
    for p in paths:
        assert is_lifecycle_path(p)
        states = path_states(p)
        assert states[0] == INITIAL_STATE
        assert len(set(states)) == len(states), p
    # every prefix of a path is a path
    assert all(p[:-1] in paths for p in paths if len(p) > 1)
    assert simple_paths(0) == []
    assert simple_paths(1) == [("report",)]
    assert [p for p in simple_paths(8) if len(p) == 8] == [p for p in paths if len(p) == 8]
    with pytest.raises(ValueError, match="max_length"):
        simple_paths(-1)


def test_closing_paths_cover_every_trigger():
    closing = simple_paths(12, closing=True)
    assert set(simple_paths(12)) < set(closing)
    # every trigger but the accountability records (allowed in every state, changing none)
    assert {t for p in closing for t in p} == set(TRIGGERS) - SETTINGS_AUTHORIZED
    for p in closing:
        assert is_lifecycle_path(p)
        states = path_states(p)
        assert len(set(states[:-1])) == len(states) - 1  # simple until the last step


def test_not_a_path():
    assert not is_lifecycle_path(("route",))
    assert not is_lifecycle_path(("report", "archive"))
    assert realize_path(("report", "archive"), PLAN) is None


def test_every_path_becomes_a_passing_scenario():
    paths = simple_paths(12, closing=True)
    scenarios = paths_to_scenarios(paths, PLAN)
    assert len(scenarios) == len(paths)  # the built-in plan realizes every one
    for s in scenarios:
        result = run_scenario(s)
        assert result.ok, result.report()
    happy = next(s for s in scenarios if s.id == "path-" + "-".join(HAPPY))
    assert [step.expect.state for step in happy.steps][-1] == "archived"


def test_path_scenario_round_trips_through_yaml():
    s = path_to_scenario(HAPPY, PLAN)
    assert s is not None
    again = parse_scenario(s.to_yaml())
    assert again.model_dump() == s.model_dump()
    assert run_scenario(again).ok


def test_realize_path_with_a_given_hazard():
    path = ("report", "route", "set_deadline", "certify")
    assert realize_path(path, PLAN, hazard=("evacuation_blocked", "inside", "goods")) is None
    cmds = realize_path(path, PLAN, hazard=("spacing_illegal_building", "around", "structure"))
    assert cmds is not None
    assert cmds[-1].actor.agency == "planning"
    overdue = realize_path(("report", "route", "set_deadline", "mark_overdue"), PLAN)
    assert overdue is not None
    assert overdue[-1].at > overdue[-2].at


# --------------------------------------------------------------------------- #
# The public TicketMachine follows the engine on every reset (issue: every reset tested)

_SH = ZoneInfo("Asia/Shanghai")
_PART = [{"agency": "housing", "person": "张"}]
_SIGN = [{"agency": "housing", "person": "张"}]
_PHOTO = [{"kind": "photo_after", "sha256": "a" * 64}]
#: a path through every reset: a refused attempt, an overdue mark, a refusal and resume,
#: a failed re-check, a sign-off, a filing and a reopen (kind, day, agency, fields)
_RESET_PATH = [
    ("report", 21, "town", {"community": "小区A", "town": "金峰镇",
                            "category": "evacuation_blocked", "subtype": "goods",
                            "location": "inside", "source": "town_inspection"}),
    ("route", 21, "town", {}),
    ("set_deadline", 21, "town", {}),
    ("rectify", 22, "fire", {}),  # refused: not the rectifier; recorded, the clock stays
    ("mark_overdue", 25, "town", {}),
    ("refuse", 25, "property", {}),
    ("resume", 28, "town", {}),
    ("rectify", 29, "property", {"evidence": _PHOTO}),
    ("apply_reinspection", 29, "property", {}),
    ("recheck_fail", 30, "town", {"participants": _PART}),
    ("rectify", 31, "property", {"evidence": _PHOTO}),
    ("apply_reinspection", 31, "property", {}),
    ("recheck_pass", 31, "town", {"participants": _PART}),
    ("sign_off", 31, "town", {"signers": _SIGN}),
    ("archive", 31, "town", {}),
    ("reopen", 140, "fire", {"reason": "抽查"}),  # 07-18: in the spot-check phase (R-SPOT-WINDOW)
]  # fmt: skip


def _run_reset_path(machine: TicketMachine) -> None:
    for kind, day, agency, fields in _RESET_PATH:
        at = datetime(2022, 3, 1, 10, tzinfo=_SH) + timedelta(days=day - 1)
        machine.execute(kind, at, agency, fields)


def test_ticket_machine_follows_the_engine_on_every_reset():
    m = TicketMachine()
    _run_reset_path(m)
    t = m.ticket
    assert [e.kind for e in t.events].count("attempt_refused") == 1
    assert t.state.state == "rectifying"
    assert (t.state.overdue_marked, t.state.failed_rechecks, t.state.reopened) == (1, 1, 1)
    assert m.refusals == 1
    assert m.accepted == len(_RESET_PATH) - 1


@pytest.mark.parametrize(
    "deviation",
    [
        {"after_photo": True},  # a failed re-check or reopen that kept the after-photo
        {"deadline": None},  # a new rectification without its deadline
        {"overdue_marked": 7},
        {"recheck_people": ()},
        {"last_at": None},
    ],
    ids=lambda d: next(iter(d)),
)
def test_ticket_machine_catches_an_engine_that_forgets_a_reset(deviation):
    m = TicketMachine()
    _run_reset_path(m)
    events = m.ticket.events
    for i, e in enumerate(events):
        if e.kind in ("attempt_refused", "report"):
            continue
        before, after = fold(events[:i]), fold(events[: i + 1])
        m.check_resets(before, e, after)  # the engine's own states pass
    checked = 0
    for i, e in enumerate(events):
        if e.kind not in ("recheck_fail", "reopen", "resume", "mark_overdue", "recheck_pass"):
            continue
        before, after = fold(events[:i]), fold(events[: i + 1])
        wrong = attrs.evolve(after, **deviation)
        if wrong == after:
            continue
        try:
            m.check_resets(before, e, wrong)
        except AssertionError:
            checked += 1
        else:
            raise AssertionError(f"{e.kind}: the machine accepted {deviation}")
    assert checked


def test_ticket_machine_refuses_an_engine_whose_refusal_moves_the_clock(monkeypatch):
    import fireflow.ticket.folding as engine

    real = engine._apply

    def moving_clock(v, event):
        real(v, event)
        if event.kind == "attempt_refused":
            v[engine._LAST_AT] = event.at

    monkeypatch.setattr(engine, "_apply", moving_clock)
    m = TicketMachine()
    with pytest.raises(AssertionError, match="last_at"):
        _run_reset_path(m)
