"""Paths through the ticket lifecycle, for model-based test generation.

:func:`simple_paths` lists every simple path (no state visited twice) from
the initial state, as sequences of triggers, up to a length.  Each is a
structural path through :data:`~fireflow.states.LIFECYCLE`; whether the
engine accepts it depends on the hazard (only an illegal building is
certified) and on who acts.  :func:`realize_path` finds commands that carry a
ticket along a path, trying the plan's hazards in turn, and
:func:`path_to_scenario` writes them down as a runnable scenario.

>>> paths = simple_paths(9)
>>> ("report", "route", "set_deadline", "rectify", "apply_reinspection",
...  "recheck_pass", "sign_off", "archive") in paths
True
>>> simple_paths(2)
[('report',), ('report', 'route')]
>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> commands = realize_path(("report", "route", "set_deadline", "certify"), plan)
>>> [c.kind for c in commands], commands[0].category
(['report', 'route', 'set_deadline', 'certify'], 'spacing_illegal_building')
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fireflow.errors import Refusal
from fireflow.events import Event
from fireflow.plan import Plan
from fireflow.states import LIFECYCLE, SETTINGS_AUTHORIZED, Lifecycle, compiled_table
from fireflow.testing.scenario import CommandStep, Scenario, TicketExpect
from fireflow.ticket import Command, TicketState, decide, evolve

__all__ = [
    "authorized_agencies",
    "default_start",
    "hazards_of",
    "is_lifecycle_path",
    "path_states",
    "path_to_scenario",
    "paths_to_scenarios",
    "realize_path",
    "referral_fields",
    "reopen_time",
    "simple_paths",
]

#: Hazards tried first when realizing a path (then every other hazard of the plan).
_PREFERRED: tuple[tuple[str, str, str | None], ...] = (
    ("evacuation_blocked", "inside", "goods"),
    ("spacing_illegal_building", "inside", "structure"),
    ("fire_lane_vehicle", "inside", "private_car"),
    ("lane_or_sign_missing", "inside", "sign"),
)
_LEAD_ROLES = ("lead", "recheck_lead", "rectifier")
_PHOTO_BEFORE = {"kind": "photo_before", "sha256": hashlib.sha256(b"photo_before").hexdigest()}
_PHOTO_AFTER = {"kind": "photo_after", "sha256": hashlib.sha256(b"photo_after").hexdigest()}


def simple_paths(
    max_length: int, lifecycle: Lifecycle = LIFECYCLE, *, closing: bool = False
) -> list[tuple[str, ...]]:
    """Every simple path from the initial state with 1..``max_length`` triggers.

    A simple path never visits a state twice, so triggers that lead back
    (``recheck_fail``, ``reopen``, ``demolish``) or keep the state (``expose``)
    never appear.  With ``closing=True`` the paths that end by closing such a
    loop (one last trigger into a state already visited, or into the same
    state) are listed too: then every trigger of the lifecycle appears, except the
    accountability records (``refer``, ``decide_referral``: allowed in every state after
    the report, they change none, and a decision needs its referral first).  The
    order is deterministic: shorter paths first, then the lifecycle's
    declaration order.

    >>> len(simple_paths(20)), len(simple_paths(20, closing=True))
    (34, 95)
    """
    if max_length < 0:
        raise ValueError(f"max_length must be >= 0, got {max_length}")
    out: list[tuple[str, ...]] = []

    def walk(state: str, visited: tuple[str, ...], path: tuple[str, ...]) -> None:
        if len(path) >= max_length:
            return
        for t in lifecycle.transitions:
            if state not in t.sources or t.trigger in SETTINGS_AUTHORIZED:
                continue
            dest = t.dest or state
            step = (*path, t.trigger)
            if dest not in visited:
                out.append(step)
                walk(dest, (*visited, dest), step)
            elif closing:
                out.append(step)

    walk(lifecycle.initial, (lifecycle.initial,), ())
    return sorted(out, key=len)  # stable: declaration order within a length


def path_states(path: Sequence[str], lifecycle: Lifecycle = LIFECYCLE) -> tuple[str, ...]:
    """The states a path visits, the initial state first; ``KeyError`` if it is not a path."""
    table = compiled_table(lifecycle)
    states = [lifecycle.initial]
    for trigger in path:
        states.append(table[(states[-1], trigger)])
    return tuple(states)


def is_lifecycle_path(path: Sequence[str], lifecycle: Lifecycle = LIFECYCLE) -> bool:
    """True when every trigger is allowed in the state the previous ones lead to."""
    try:
        path_states(path, lifecycle)
    except KeyError:
        return False
    return True


def hazards_of(plan: Plan) -> tuple[tuple[str, str, str | None], ...]:
    """Every (category, location, subtype) of ``plan``, in plan order."""
    out: list[tuple[str, str, str | None]] = []
    for c in plan.categories:
        for loc in ("inside", "around"):
            subs: Sequence[str | None] = [s.id for s in c.subtypes] or [None]
            out += [(c.id, loc, s) for s in subs]
    return tuple(out)


def authorized_agencies(state: TicketState, trigger: str, plan: Plan) -> tuple[str, ...]:
    """Agencies the plan's authority lets fire ``trigger`` on this ticket (R-AUTH-ROLES).

    Route roles come first (lead, re-check lead, rectifier), then the fixed
    agencies, then the other roles; no duplicates.
    """
    if trigger == "refer":  # 六(四) 由牵头部门转报: settings, not an authority entry
        return plan.settings.accountability_lead
    if trigger == "decide_referral":
        return (plan.settings.accountability_office,)
    entry = plan.authority_for(trigger)
    if entry is None:
        return ()
    first: list[str] = []
    rest: list[str] = []
    if state.routing is not None:
        for role in entry.roles:
            (first if role in _LEAD_ROLES else rest).extend(state.routing.role(role))
    return tuple(dict.fromkeys([*first, *entry.agencies, *rest]))


def reopen_time(plan: Plan, at: datetime) -> datetime:
    """``at``, or 09:00 local on the first day of the spot-check phase if that is later.

    A spot check reopens only inside its phase (R-SPOT-WINDOW,
    ``settings.spot_check.phase``); without a window, ``at`` itself.
    """
    window = plan.spot_check_window()
    if window is None:
        return at
    d = window.start
    return max(at, datetime(d.year, d.month, d.day, 9, tzinfo=ZoneInfo(plan.timezone)))


def default_start(plan: Plan) -> datetime:
    """09:00 local on the first day of the plan's ``rectification`` phase (or of the plan)."""
    day = next((p.start for p in plan.phases if p.id == "rectification"), plan.start)
    return datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo(plan.timezone))


def _fields(state: TicketState, trigger: str, actor: str, plan: Plan) -> dict[str, object]:
    """Command fields that satisfy the step's own rule, where the state allows."""
    if trigger in ("recheck_pass", "recheck_fail"):
        # 五(三): government departments other than the rectifier count (R-TKT-REINSPECT)
        rectifier = state.rectified_by or (state.routing.rectifier if state.routing else None)
        levels = plan.settings.recheck_counting_levels
        counted = [a.id for a in plan.agencies if a.id != rectifier and a.level in levels]
        others = [a for a in counted if a != actor and a not in plan.settings.non_signing_agencies]
        need = plan.settings.min_recheck_agencies - (1 if actor in counted else 0)
        people = others[: max(need, 1)]  # named: they may sign off (R-TKT-SIGNOFF)
        return {"participants": [{"agency": a, "person": "验收人"} for a in people]}
    if trigger == "sign_off":
        excluded = {state.rectified_by, *plan.settings.non_signing_agencies}
        if state.routing is not None:
            excluded.add(state.routing.rectifier)
        levels = plan.settings.recheck_counting_levels
        # 五(三) 复查合格后由验收相关责任人签字: a named person of the last re-check
        signers = [
            {"agency": p.agency, "person": p.person}
            for p in state.recheck_people
            if p.person and p.agency not in excluded and plan.agency(p.agency).level in levels
        ]
        return {"signers": signers[:1]}
    if trigger == "archive":
        return {"evidence": [_PHOTO_AFTER]}
    if trigger in ("refer", "decide_referral"):
        return referral_fields(state, trigger, plan)
    return {}


def referral_fields(state: TicketState, trigger: str, plan: Plan) -> dict[str, object]:
    """Fields of a ``refer`` (the town held to account for slow work) or a ``decide_referral``
    (the first open referral decided) that the engine accepts (六(四))."""
    if trigger == "refer":
        held = state.routing.lead if state.routing is not None else plan.agencies[0].id
        return {"case": "slow", "accountable": [held], "reason": "推进不力"}
    open_ = [r.event_id for r in state.referrals if r.open]
    return {"referral": open_[0], "outcome": "约谈"} if open_ else {"referral": "none"}


def realize_path(
    path: Sequence[str],
    plan: Plan,
    *,
    hazard: tuple[str, str, str | None] | None = None,
    start: datetime | None = None,
    ticket_id: str = "P1",
) -> tuple[Command, ...] | None:
    """Commands the engine accepts, in order, that carry a ticket along ``path``.

    Tries ``hazard`` (or the plan's hazards, common ones first), and for each
    step the authorized agencies in turn; returns None when no hazard works
    (for example ``certify`` with ``clear``).  Deterministic.
    """
    if not is_lifecycle_path(path):
        return None
    known = hazards_of(plan)
    if hazard is not None:
        candidates: Iterable[tuple[str, str, str | None]] = (hazard,)
    else:
        candidates = dict.fromkeys([*(h for h in _PREFERRED if h in known), *known])
    for h in candidates:
        found = _realize(path, plan, h, start or default_start(plan), ticket_id)
        if found is not None:
            return found
    return None


def _realize(
    path: Sequence[str],
    plan: Plan,
    hazard: tuple[str, str, str | None],
    start: datetime,
    ticket_id: str,
) -> tuple[Command, ...] | None:
    state = TicketState(ticket_id)
    at = start
    out: list[Command] = []
    for trigger in path:
        at = at + timedelta(hours=1)
        if trigger == "mark_overdue" and state.deadline is not None:
            at = max(at, plan.calendar.due_instant(state.deadline))
        if trigger == "reopen":
            at = reopen_time(plan, at)
        accepted: tuple[Command, tuple[Event, ...]] | None = None
        for actor in authorized_agencies(state, trigger, plan):
            data: dict[str, object] = {
                "kind": trigger,
                "ticket_id": ticket_id,
                "at": at,
                "actor": {"agency": actor},
                **_fields(state, trigger, actor, plan),
            }
            if trigger == "report":
                category, location, subtype = hazard
                data.update(
                    community="示例小区",
                    town="示例镇",
                    category=category,
                    location=location,
                    source="patrol",
                    evidence=[_PHOTO_BEFORE],
                )
                if subtype is not None:
                    data["subtype"] = subtype
            command = Command.model_validate(data)
            try:
                events = decide(state, command, plan)
            except Refusal:
                continue
            accepted = (command, events)
            break
        if accepted is None:
            return None
        out.append(accepted[0])
        for e in accepted[1]:
            state = evolve(state, e)
    return tuple(out)


def _scenario_id(path: Sequence[str]) -> str:
    text = "path-" + "-".join(path)
    if len(text) <= 120:
        return text
    return f"path-{len(path)}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def path_to_scenario(
    path: Sequence[str],
    plan: Plan,
    *,
    plan_ref: str | None = None,
    scenario_id: str | None = None,
    hazard: tuple[str, str, str | None] | None = None,
    start: datetime | None = None,
) -> Scenario | None:
    """A runnable scenario that walks ``path`` and expects each state; None if unrealizable.

    ``plan_ref`` is what the scenario's ``plan`` says (default: the plan's
    id, right for built-in plans; give a path for a plan file).  The rules
    are those the engine cites along the way.

    >>> from fireflow import load_plan
    >>> s = path_to_scenario(("report", "route"), load_plan("changle-2022"))
    >>> s.id, s.rules, [step.expect.state for step in s.steps]
    ('path-report-route', ('R-TKT-OPEN', 'R-AUTH-ROLES', 'R-ROUTE-EVAC', 'R-ROUTE-SUPERVISE'),
     ['reported', 'routed'])
    """
    commands = realize_path(path, plan, hazard=hazard, start=start)
    if commands is None:
        return None
    states = path_states(path)
    catalogue = {r.id for r in plan.rules}
    rules: dict[str, None] = {}
    state = TicketState(commands[0].ticket_id) if commands else TicketState("P1")
    steps: list[CommandStep] = []
    for command, dest in zip(commands, states[1:], strict=True):
        events = decide(state, command, plan)
        for e in events:
            state = evolve(state, e)
            rules.update(dict.fromkeys(r for r in e.rules if r in catalogue))
        data = command.model_dump(exclude_defaults=True, exclude={"ticket_id"})
        data["ticket"] = command.ticket_id
        data["expect"] = TicketExpect(state=dest)
        steps.append(CommandStep.model_validate(data))
    labels = [LIFECYCLE.transition(t) for t in path]
    return Scenario(
        id=scenario_id or _scenario_id(path),
        title_zh="生命周期路径：" + " → ".join(t.zh for t in labels),
        title_en="Lifecycle path: " + " → ".join(t.en for t in labels),
        rules=tuple(rules) or ("R-AUTH-ROLES",),
        plan=plan_ref or plan.id,
        steps=tuple(steps),
    )


def paths_to_scenarios(
    paths: Iterable[Sequence[str]], plan: Plan, *, plan_ref: str | None = None
) -> list[Scenario]:
    """:func:`path_to_scenario` for each path, leaving out the unrealizable ones."""
    out: list[Scenario] = []
    for p in paths:
        s = path_to_scenario(p, plan, plan_ref=plan_ref)
        if s is not None:
            out.append(s)
    return out
