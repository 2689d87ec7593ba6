"""The engine's shortcuts agree with the plain path they replace.

Each shortcut in the per-event path (docs/simulator.md, "Scale") answers what a
plain computation answers; these properties hold them to it:

* ``Calendar.to_date`` remembers the last datetime it converted (the engine asks
  for one command's date several times): a calendar that has just converted other
  values, or the same object, answers what a fresh calendar answers;
* ``Plan.cite_all`` keeps its answers per tuple of rule ids: always the plan's ids
  of the rules, in order, each once, also past its bound and under a plan whose
  engine decisions have their own ids;
* ``Plan.has_agency`` is ``plan.agency`` not raising;
* ``Plan.routing`` (and ``route_for``) keeps its answers per (category, location, subtype,
  new community): always :func:`~fireflow.plan.routing.find_routing`'s answer, errors included.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pendulum
from hypothesis import given, settings
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.errors import InvalidArgument
from fireflow.events import Actor, Event, canonical_bytes, shared_actor, trusted_event
from fireflow.model import ActorIn, Command, TicketState
from fireflow.plan import ENGINE_RULES, calendar_for_plan
from fireflow.plan.routing import find_routing, route_for
from fireflow.testing.strategies import event_sequences
from fireflow.ticket import evolve, fold, fold_all, fold_each
from fireflow.ticket.folding import _STATE_VALUES
from tests.test_plan_choices import _gulou_ids

PLAN = load_plan("changle-2022")

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.builds(
    lambda base, seconds, tz, kind: (
        pendulum.instance(base + timedelta(seconds=seconds)).in_timezone(tz)
        if kind == "pendulum"
        else (base + timedelta(seconds=seconds)).astimezone(tz)
    ),
    st.just(datetime(2022, 1, 1, tzinfo=UTC)),
    st.integers(0, 366 * 86400),
    offsets,
    st.sampled_from(["datetime", "pendulum"]),
)


@given(st.lists(st.tuples(instants, st.booleans()), min_size=1, max_size=20))
@settings(max_examples=200, deadline=None)
def test_to_date_remembering_the_last_value_agrees_with_a_fresh_calendar(
    values: list[tuple[datetime, bool]],
) -> None:
    cal = calendar_for_plan(PLAN)
    for value, twice in values:
        got = cal.to_date(value, "at")
        if twice:  # the same object again: the remembered answer
            assert cal.to_date(value, "at") == got
        fresh = calendar_for_plan(PLAN).to_date(value, "at")
        assert got == fresh
        local = value.astimezone(pendulum.timezone("Asia/Shanghai"))
        assert got == date(local.year, local.month, local.day)


def test_to_date_of_an_equal_but_distinct_datetime_is_computed_not_remembered() -> None:
    cal = calendar_for_plan(PLAN)
    a = datetime(2022, 3, 15, 17, 0, tzinfo=UTC)  # 01:00 on the 16th in Shanghai
    b = datetime(2022, 3, 16, 1, 0, tzinfo=timezone(timedelta(hours=8)))  # the same instant
    c = datetime(2022, 3, 15, 15, 0, tzinfo=UTC)  # 23:00 on the 15th
    assert cal.to_date(a) == cal.to_date(b) == date(2022, 3, 16)
    assert cal.to_date(c) == date(2022, 3, 15)
    assert cal.to_date(a) == date(2022, 3, 16)


def _plain_cite_all(plan: Any, rules: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(plan.cite(r) for r in rules))


RULE_IDS = sorted({*ENGINE_RULES.values(), "R-DUE-DOSSIER", "R-X-OTHER"})


@given(st.lists(st.tuples(*[st.sampled_from(RULE_IDS)] * 3).map(tuple), max_size=30))
@settings(max_examples=100, deadline=None)
def test_cite_all_agrees_with_citing_each_rule(calls: list[tuple[str, ...]]) -> None:
    for plan in (PLAN, GULOU):
        for rules in calls:
            assert plan.cite_all(rules) == _plain_cite_all(plan, rules)


GULOU = _gulou_ids()


def test_cite_all_past_its_bound_still_answers_and_does_not_grow() -> None:
    plan = PLAN.model_copy()
    many = [("R-TKT-OPEN", f"R-X-{i}", "R-TKT-OPEN") for i in range(5000)]
    for rules in many:
        assert plan.cite_all(rules) == ("R-TKT-OPEN", rules[1])
    assert len(plan._cited) <= 4096
    assert GULOU.cite_all(("R-TKT-OPEN", "R-ESC-OVERDUE")) == ("R-GL-OPEN", "R-GL-OVERDUE")


def test_a_copied_plan_does_not_share_remembered_citations() -> None:
    plan = PLAN.model_copy()
    plan.cite_all(("R-TKT-OPEN",))
    copy = plan.model_copy(update={"engine_rules": GULOU.engine_rules})
    assert copy.cite_all(("R-TKT-OPEN",)) == ("R-GL-OPEN",)
    assert plan.cite_all(("R-TKT-OPEN",)) == ("R-TKT-OPEN",)


@given(st.sampled_from([a.id for a in PLAN.agencies]) | st.text(max_size=12))
def test_has_agency_is_agency_not_raising(agency_id: str) -> None:
    try:
        PLAN.agency(agency_id)
        known = True
    except InvalidArgument:
        known = False
    assert PLAN.has_agency(agency_id) is known


# --- the engine's shortcuts (fireflow.ticket, fireflow.events, fireflow.model) --------------

ENGINE_AT = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
_agency_ids = st.sampled_from([a.id for a in PLAN.agencies])
_actors_in = st.builds(
    lambda a, p: ActorIn(agency=a, person=p), _agency_ids, st.sampled_from(["", "李", "王五"])
)


@given(
    kind=st.sampled_from(["rectify", "recheck_pass", "sign_off", "escalate", "refuse"]),
    actor=_actors_in,
    changes=st.fixed_dictionaries(
        {"ticket_id": st.from_regex(r"T[0-9]{1,7}", fullmatch=True), "at": instants},
        optional={
            "reason": st.sampled_from(["", "整改", "拒不整改"]),
            "participants": st.lists(_actors_in, max_size=3).map(tuple),
            "signers": st.lists(_actors_in, max_size=3).map(tuple),
            "command_id": st.from_regex(r"c[0-9]{1,4}", fullmatch=True),
        },
    ),
)
@settings(max_examples=150, deadline=None)
def test_trusted_command_agrees_with_a_validated_one(
    kind: str, actor: ActorIn, changes: dict[str, Any]
) -> None:
    # the simulator's fast constructor (no validation) builds what validation builds
    template = Command(kind=kind, ticket_id="T0", at=ENGINE_AT, actor=actor)
    fast = Command.trusted(template, changes)
    plain = Command.model_validate({**template.model_dump(exclude_unset=True), **changes})
    assert fast == plain
    assert fast.model_fields_set == plain.model_fields_set
    assert template.ticket_id == "T0"  # the template is not changed


@given(
    seq=st.integers(1, 10_000),
    at=instants,
    agency=_agency_ids,
    person=st.sampled_from(["", "李", "e\u0301"]),  # one not in NFC
    payload=st.dictionaries(
        st.sampled_from(["reason", "targets", "days"]),
        st.one_of(st.sampled_from(["已整改", "cafe\u0301"]), st.integers(0, 99)),
        max_size=3,
    ),
    rules=st.lists(
        st.sampled_from(["R-TKT-REINSPECT", "R-AUTH-ROLES", "R-ESC-REFUSAL"]), max_size=3
    ),
)
@settings(max_examples=150, deadline=None)
def test_trusted_event_agrees_with_the_plain_constructor(
    seq: int, at: datetime, agency: str, person: str, payload: dict[str, Any], rules: list[str]
) -> None:
    # decide's fast event: the same event, bytes and all, as Event(...) with its converters
    args = (f"T1/{seq}", "T1", seq, "rectify", at)
    fast = trusted_event(*args, shared_actor(agency, person), dict(payload), (), tuple(rules))
    plain = Event(*args, Actor(agency, person), dict(payload), (), tuple(rules))
    assert fast == plain
    assert canonical_bytes(fast) == canonical_bytes(plain)


@given(event_sequences(PLAN, max_commands=20))
@settings(max_examples=60, deadline=None)
def test_the_positional_fold_agrees_with_evolving_state_by_state(events: tuple[Event, ...]) -> None:
    # fold works on a list of field values by position; evolve builds a state per event
    state = TicketState("T1")
    for e in events:
        state = evolve(state, e)
        assert TicketState(*_STATE_VALUES(state)) == state  # the positions are the fields
    assert fold(events, "T1") == state
    assert fold_all(events) == ({"T1": state} if events else {})
    assert fold_each(events) == ({"T1": state} if events else {}, {})


#: Every (category, location, subtype, new community) of the built-in plan, and unknown ones.
ROUTING_KEYS = [
    (c.id, location, subtype, new)
    for c in PLAN.categories
    for location in ("inside", "around", "nowhere")
    for subtype in (None, "no_such_subtype", *(s.id for s in c.subtypes))
    for new in (False, True)
] + [("no_such_category", "inside", None, False)]


def _answer(route: Any, *args: Any, new_community: bool) -> Any:
    try:
        return route(*args, new_community=new_community)
    except InvalidArgument as exc:
        return ("refused", str(exc))


@given(st.permutations(ROUTING_KEYS))
@settings(max_examples=20, deadline=None)
def test_kept_routings_agree_with_routing_afresh(keys: list[tuple[Any, ...]]) -> None:
    plan = load_plan("changle-2022").model_copy()  # a fresh plan: nothing kept yet
    for category, location, subtype, new in keys + keys:  # asked first, then kept
        asked = (category, location, subtype)
        kept = _answer(route_for, plan, *asked, new_community=new)
        again = _answer(plan.routing, *asked, new_community=new)
        fresh = _answer(find_routing, plan, *asked, new_community=new)
        assert kept == again == fresh
