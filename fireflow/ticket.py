"""Hazard tickets: ``decide(state, command) -> events`` and ``evolve(state, event)``.

A ticket's state is the fold of its events.  :func:`decide` checks a command
against the lifecycle, the plan's authority and the rule of the step, and
returns the events it produces, or raises a typed refusal
(:class:`~fireflow.errors.TransitionNotAllowed`,
:class:`~fireflow.errors.NotAuthorized`,
:class:`~fireflow.errors.InvalidCommand`) carrying the rule id and the state.
:func:`evolve` applies one event through the compiled lifecycle table.

>>> import pendulum
>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> t = Ticket("CL-0001", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.execute(Command(kind="report", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town", person="李"), community="金峰小区", town="金峰镇",
...     category="evacuation_blocked", subtype="ebike_charging", location="inside",
...     source="town_inspection"))
>>> _ = t.execute(Command(kind="route", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town")))
>>> _ = t.execute(Command(kind="set_deadline", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town")))
>>> t.state.state, t.state.deadline, t.state.routing.rectifier
('rectifying', datetime.date(2022, 3, 24), 'property')
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import attrs

from fireflow.errors import (
    CalendarDataMissing,
    FireflowError,
    InvalidArgument,
    InvalidCommand,
    NaiveDatetime,
    NotAuthorized,
    PlanMismatch,
    TransitionNotAllowed,
)
from fireflow.events import Event, _shared_actor, _trusted_event
from fireflow.model import (
    MAX_ITEMS,
    SOURCES,
    ActorIn,
    Command,
    EvidenceIn,
    Referral,
    Source,
    TicketState,
    Trigger,
    command_json_schema,
    plan_binding,
    plan_digest,
    plan_rule_data,
    typed_error,
)
from fireflow.plan import Plan, load_plan
from fireflow.plan.routing import Routing, route_for
from fireflow.states import (
    INITIAL_STATE,
    LIFECYCLE,
    RECORD_ONLY_KINDS,
    SETTINGS_AUTHORIZED,
    build_machine,
    compiled_table,
)
from fireflow.text import check_name

__all__ = [
    "MAX_ITEMS",
    "SOURCES",
    "ActorIn",
    "Command",
    "EvidenceIn",
    "Source",
    "Ticket",
    "TicketState",
    "Trigger",
    "authorize",
    "command_json_schema",
    "decide",
    "evolve",
    "fold",
    "fold_all",
    "fold_each",
    "plan_binding",
    "plan_digest",
    "plan_rule_data",
    "refusal_event",
    "typed_error",
]

_TABLE = compiled_table()
_INTO_RECTIFYING = frozenset(t.trigger for t in LIFECYCLE.transitions if t.dest == "rectifying")
# =========================================================================== #
# The plan a ticket is bound to


def _check_binding(
    state: TicketState, plan: Plan, migrate_from: tuple[str, str] | None = None
) -> None:
    """Refuse a history bound to another plan, unless ``migrate_from`` names that plan."""
    if migrate_from is not None:
        if len(migrate_from) != 2:
            raise InvalidArgument("migrate_from", "expected (plan id, plan digest)")
        if tuple(migrate_from) != (state.plan_id, state.plan_digest):
            raise InvalidArgument(
                "migrate_from",
                f"the history is bound to {state.plan_id or 'no plan'!r} "
                f"({state.plan_digest or '-'}), not {migrate_from[0]!r} ({migrate_from[1]})",
            )
        return
    if not state.plan_digest:  # written before plan binding: read as before
        return
    given = plan_binding(plan)
    if (state.plan_id, state.plan_digest) != given:
        raise PlanMismatch(state.ticket_id, (state.plan_id, state.plan_digest), given)


# =========================================================================== #
# Decide


def _refuse(
    cls: type[TransitionNotAllowed | NotAuthorized | InvalidCommand],
    state: TicketState,
    command: Command,
    message: str,
    *,
    rule: str | None,
    zh: str = "",
    field: str | None = None,
) -> TransitionNotAllowed | NotAuthorized | InvalidCommand:
    return cls(
        message,
        rule=rule,
        ticket=state.ticket_id,
        state=state.state,
        trigger=command.kind,
        message_zh=zh,
        field=field,
    )


def authorize(state: TicketState, command: Command, plan: Plan) -> tuple[str, ...]:
    """Check that the actor may fire the trigger; return the authority entry's rule ids.

    Raises :class:`~fireflow.errors.NotAuthorized` naming the rule.  An accepted
    event does not cite these: its rules come from its step alone (see
    :func:`decide`).  A refusal cites the entry's first rule that belongs to the
    ticket (a routing rule of another route is never cited), else R-AUTH-ROLES.
    """
    entry = plan.authority_for(command.kind)
    agency = command.actor.agency
    if entry is None:
        raise _refuse(
            NotAuthorized,
            state,
            command,
            "the plan names nobody for this step",
            rule=plan.cite("R-AUTH-ROLES"),
            zh="方案未规定该步骤的执行部门",
        )
    if agency in entry.agencies:
        return entry.rules
    routing = state.routing
    if routing is not None:
        for role in entry.roles:
            if agency in routing.role(role):
                return entry.rules
    allowed = set(entry.agencies)  # who may, for the message
    if routing is not None:
        for role in entry.roles:
            allowed.update(routing.role(role))
    own = _route_rules(state, plan)
    fitting = [r for r in entry.rules if not r.startswith("R-ROUTE-") or r in own]
    raise _refuse(
        NotAuthorized,
        state,
        command,
        f"agency {agency!r} may not {command.kind}; allowed: {', '.join(sorted(allowed))}",
        rule=fitting[0] if fitting else plan.cite("R-AUTH-ROLES"),
        zh=f"{agency} 无权执行此步骤",
    )


def _authorize_accountability(state: TicketState, command: Command, plan: Plan) -> None:
    """``refer`` by the lead departments, ``decide_referral`` by the efficiency office (六(四)).

    由牵头部门转报效能部门进行督导问责: who may is a plan setting
    (``settings.accountability_lead``, ``settings.accountability_office``), not an
    ``authority`` entry; a refusal cites R-ESC-OFFICIAL.
    """
    st = plan.settings
    allowed = st.accountability_lead if command.kind == "refer" else (st.accountability_office,)
    if command.actor.agency not in allowed:
        raise _refuse(
            NotAuthorized,
            state,
            command,
            f"agency {command.actor.agency!r} may not {command.kind}; "
            f"allowed: {', '.join(allowed)}",
            rule=plan.cite("R-ESC-OFFICIAL"),
            zh="由牵头部门转报效能部门督导问责"
            if command.kind == "refer"
            else "问责结果由效能部门记录",
        )


def _routing_of(state: TicketState, plan: Plan) -> Routing | None:
    """The ticket's routing: recorded at ``route``, or (before it) the one it will get."""
    if state.routing is not None:
        return state.routing
    if not state.category:
        return None
    new = plan.is_new_community(state.delivered_on, state.new_community)
    return route_for(plan, state.category, state.location, state.subtype, new_community=new)


def _route_rules(state: TicketState, plan: Plan) -> tuple[str, ...]:
    routing = _routing_of(state, plan)
    return routing.rules if routing is not None else ()


#: The years a command's time may fall in (the range of a plan's ``year``).
MIN_YEAR, MAX_YEAR = 1949, 2200


def _first_unknown_agency(command: Command, plan: Plan) -> tuple[str, str] | None:
    """(field, agency) of the first agency the command names that the plan does not know.

    In the command's order: the actor, the participants, the signers (escalation
    targets are checked by the ``escalate`` step, which cites its rule).
    """
    if not plan.has_agency(command.actor.agency):
        return "actor.agency", command.actor.agency
    for name, actors in (("participants", command.participants), ("signers", command.signers)):
        for i, a in enumerate(actors):
            if not plan.has_agency(a.agency):
                return f"{name}[{i}].agency", a.agency
    return None


def _check_entry(state: TicketState, command: Command, plan: Plan) -> None:
    """The caller's mistakes, refused before any rule is asked (nothing is recorded).

    The time (aware, within :data:`MIN_YEAR`-:data:`MAX_YEAR`, not before the
    campaign's first day, a ``report`` not after its last day (R-CAL-PHASES; the
    work on a ticket already recorded may run on past the end, as its deadline
    may), not before the ticket's last event) and every agency the command names as actor,
    participant or signer must be known to the plan (escalation targets are
    checked by the ``escalate`` step, which cites its rule).
    """
    at = command.at
    if at.utcoffset() is None:  # only a command built without validation gets here
        raise NaiveDatetime("at")
    if not MIN_YEAR <= at.year <= MAX_YEAR:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"time {at.isoformat()} out of range (years {MIN_YEAR}-{MAX_YEAR})",
            rule=None,
            zh="时间超出范围",
            field="at",
        )
    day = plan.local_date(at, "at")
    if day < plan.start or (command.kind == "report" and day > plan.end):
        # a 2022 command under a 2023 plan: refused, not recorded under the wrong campaign
        when = "before the campaign starts" if day < plan.start else "after the campaign ends"
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"{day} is {when} (plan {plan.id}: {plan.start} to {plan.end}); "
            "record it under the plan of its own campaign",
            rule=plan.cite("R-CAL-PHASES"),
            zh=f"日期 {day} 不在本方案整治期间（{plan.start} 至 {plan.end}）内，"
            "请在其所属年度的方案下登记",
            field="at",
        )
    if state.last_at is not None and at < state.last_at:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"time goes backwards: {at.isoformat()} < {state.last_at.isoformat()}",
            rule=None,
            zh="时间早于上一事件",
            field="at",
        )
    unknown = _first_unknown_agency(command, plan)
    if unknown is not None:
        field, agency = unknown
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"unknown agency {agency!r} (not in plan {plan.id!r})",
            rule=None,
            zh="方案中没有该部门",
            field=field,
        )


def decide(state: TicketState, command: Command, plan: Plan | None = None) -> tuple[Event, ...]:
    """The events a command produces, or a typed refusal.  Pure: no I/O, no clock.

    ``plan`` defaults to the built-in ``changle-2022``.  The caller's mistakes
    (another ticket's id, a time out of range or going backwards, an agency the
    plan does not know) are refused first, as
    :class:`~fireflow.errors.InvalidCommand`; then the lifecycle
    (:class:`~fireflow.errors.TransitionNotAllowed`), the authority
    (:class:`~fireflow.errors.NotAuthorized`) and the step's own rule.
    """
    plan = plan or load_plan("changle-2022")
    if command.ticket_id != state.ticket_id:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"command is for ticket {command.ticket_id!r}",
            rule=None,
            field="ticket_id",
        )
    _check_entry(state, command, plan)
    if command.kind == "migrate_plan":
        return (_migrate(state, command, plan),)
    if state.plan_digest:
        _check_binding(state, plan)
    if (state.state, command.kind) not in _TABLE:
        tdef = LIFECYCLE.transition(command.kind)
        raise _refuse(
            TransitionNotAllowed,
            state,
            command,
            f"not allowed in state {state.state!r} (allowed from: {', '.join(tdef.sources)})",
            rule=plan.cite(tdef.rules[0]),
            zh=f"当前状态“{LIFECYCLE.state(state.state).zh}”不允许此操作",
        )
    if command.kind in SETTINGS_AUTHORIZED:
        _authorize_accountability(state, command, plan)
    else:
        authorize(state, command, plan)
    payload, cited = _STEP[command.kind](state, command, plan)
    # the plan's own ids (engine_rules); two decisions may share one id in another plan
    all_rules = plan.cite_all(cited)
    seq = state.version + 1
    event_id = f"{command.command_id}/1" if command.command_id else f"{state.ticket_id}/{seq}"
    return (
        _trusted_event(
            event_id,
            state.ticket_id,
            seq,
            command.kind,
            command.at,
            command.actor.to_actor(),
            payload,
            tuple(e.to_evidence() for e in command.evidence) if command.evidence else (),
            all_rules,
        ),
    )


def _migrate(state: TicketState, command: Command, plan: Plan) -> Event:
    """The ``plan_migrated`` event: the ticket continues under ``plan`` from now on."""
    to_id, to_digest = plan_binding(plan)
    if state.state == INITIAL_STATE:
        problem = "a ticket not yet reported is bound to a plan by its report"
    elif (state.plan_id, state.plan_digest) == (to_id, to_digest):
        problem = f"the ticket is already under plan {to_id!r} ({to_digest[:19]})"
    elif not command.reason:
        problem = "a plan migration needs a reason"
    else:
        problem = ""
    if problem:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            problem,
            rule=None,
            zh="无需或无法改用新版方案",
            field="kind",
        )
    if plan.agency(command.actor.agency).level not in ("province", "city", "county", "district"):
        raise _refuse(
            NotAuthorized,
            state,
            command,
            f"only an agency at district level or above may move a ticket to another plan "
            f"({command.actor.agency!r})",
            rule=None,
            zh="仅区（县）级及以上部门可改用新版方案",
        )
    seq = state.version + 1
    event_id = f"{command.command_id}/1" if command.command_id else f"{state.ticket_id}/{seq}"
    payload = {
        "from_id": state.plan_id,
        "from_digest": state.plan_digest,
        "to_id": to_id,
        "to_digest": to_digest,
        "reason": command.reason,
    }
    return _trusted_event(
        event_id,
        state.ticket_id,
        seq,
        "plan_migrated",
        command.at,
        command.actor.to_actor(),
        payload,
        (),
        (),
    )


def refusal_event(state: TicketState, command: Command, error: NotAuthorized) -> Event:
    """The record of a refused attempt (R-AUTH-…): it changes no state."""
    seq = state.version + 1
    event_id = f"{command.command_id}/refused" if command.command_id else f"{state.ticket_id}/{seq}"
    return Event(
        event_id=event_id,
        ticket_id=state.ticket_id,
        seq=seq,
        kind="attempt_refused",
        at=command.at,
        actor=command.actor.to_actor(),
        payload={"trigger": command.kind, "state": state.state, "reason": str(error)},
        rules=(error.rule,) if error.rule else (),
    )


Step = tuple[dict[str, Any], tuple[str, ...]]


def _local_date(plan: Plan, at: datetime) -> date:
    return plan.local_date(at, "at")


def _new_deadline(state: TicketState, command: Command, plan: Plan, category: str) -> Step:
    days, unit = plan.rectification_period(category)
    if command.days is not None:
        days = command.days
    if command.unit is not None:
        unit = command.unit
    start = _local_date(plan, command.at)
    try:
        period = plan.calendar.period(start, days, unit)
    except CalendarDataMissing as err:  # refused before anything is recorded: name the field
        field = "at" if err.year == start.year else "days"
        raise CalendarDataMissing(err.year, err.available, field=field) from None
    due = period.due
    rules: list[str] = ["R-TKT-DEADLINE", *period.rules]
    cap_id = plan.settings.rectification_cap
    if cap_id is not None:
        cap = next((d for d in plan.deadlines() if d.id == cap_id), None)
        if cap is not None and start <= cap.due < due:
            due = cap.due  # capped: the holiday roll of the raw end no longer decides it
            rules = [r for r in rules if r != "R-DUE-HOLIDAY"] + [cap.rule]
    payload = {"deadline": due.isoformat(), "days": days, "unit": unit, "start": start.isoformat()}
    return payload, tuple(rules)


def _step_report(state: TicketState, command: Command, plan: Plan) -> Step:
    missing = [
        f
        for f in ("community", "town", "category", "location", "source")
        if getattr(command, f) is None
    ]
    if missing:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"missing {', '.join(missing)}",
            rule=plan.cite("R-TKT-OPEN"),
            zh="登记隐患须写明小区、乡镇、类别、位置和来源",
            field=missing[0],
        )
    assert command.category is not None  # checked just above
    assert command.location is not None
    try:
        category = plan.category(command.category)
        subtype = command.subtype
        if subtype is None and category.subtypes:
            raise InvalidArgument("subtype", f"category {category.id!r} needs a subtype")
        if subtype is not None:
            category.subtype(subtype)
    except InvalidArgument as exc:
        raise _refuse(
            InvalidCommand, state, command, str(exc), rule=plan.cite("R-TKT-OPEN"), field=exc.field
        ) from None
    if command.source in plan.settings.photo_required_sources and not any(
        e.kind == "photo_before" for e in command.evidence
    ):
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"a {command.source} report needs a photo",
            rule=plan.cite("R-TKT-OPEN"),
            zh="自查发现的问题须拍照建档",
            field="evidence",
        )
    since = plan.settings.new_community_since
    delivered, new = command.delivered_on, command.new_community
    if delivered is not None and delivered > _local_date(plan, command.at):
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"the community cannot be delivered ({delivered}) after the report",
            rule=plan.cite("R-ROUTE-SIGN"),
            zh="交付日期晚于登记日期",
            field="delivered_on",
        )
    if (
        delivered is not None
        and new is not None
        and since is not None
        and (delivered >= since) != new
    ):
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"new_community={new} contradicts delivery on {delivered} "
            f"(new_community_since {since})",
            rule=plan.cite("R-ROUTE-SIGN"),
            zh="是否新建小区与交付日期不符",
            field="new_community",
        )
    payload: dict[str, Any] = {
        "community": command.community,
        "town": command.town,
        "category": command.category,
        "subtype": subtype,
        "location": command.location,
        "source": command.source,
        "description": command.description,
    }
    payload["plan_id"], payload["plan_digest"] = plan_binding(plan)
    if delivered is not None:
        payload["delivered_on"] = delivered.isoformat()
    if new is not None:
        payload["new_community"] = new
    return payload, ("R-TKT-OPEN",)


def _step_route(state: TicketState, command: Command, plan: Plan) -> Step:
    routing = _routing_of(state, plan)
    assert routing is not None  # a reported ticket has a category
    return {"routing": routing.to_data()}, ("R-AUTH-ROLES", *routing.rules)


def _step_set_deadline(state: TicketState, command: Command, plan: Plan) -> Step:
    return _new_deadline(state, command, plan, state.category)


def _plain(*rules: str) -> Callable[[TicketState, Command, Plan], Step]:
    """A step with nothing to check: it records the reason and cites ``rules``."""

    def step(state: TicketState, command: Command, plan: Plan) -> Step:
        payload: dict[str, Any] = {}
        if command.reason:
            payload["reason"] = command.reason
        return payload, rules

    return step


def _agencies(command: Command) -> list[str]:
    return list(dict.fromkeys([command.actor.agency, *(p.agency for p in command.participants)]))


def _rectifier(state: TicketState) -> str | None:
    return state.rectified_by or (state.routing.rectifier if state.routing else None)


def _counts(plan: Plan, agency: str, rectifier: str | None) -> bool:
    """Does an agency count toward a re-check (a government department, not the rectifier)?"""
    return (
        agency != rectifier and plan.agency(agency).level in plan.settings.recheck_counting_levels
    )


def _step_recheck(state: TicketState, command: Command, plan: Plan) -> Step:
    agencies = _agencies(command)
    for a in agencies:
        plan.agency(a)
    need = plan.settings.min_recheck_agencies
    rectifier = _rectifier(state)
    counting = [a for a in agencies if _counts(plan, a, rectifier)]
    if len(counting) < need:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"a re-check needs at least {need} government departments other than the "
            f"rectifier {rectifier!r}; counted: {', '.join(counting) or 'none'} "
            f"(of {', '.join(agencies)})",
            rule=plan.cite("R-TKT-REINSPECT"),
            zh=f"复查须由乡镇牵头组织相关部门共同进行：整改方以外的政府部门不少于{need}个"
            "（物业、群众、第三方可参加，不计入）",
            field="participants",
        )
    # 五(三) 复查合格后由验收相关责任人签字: the people who took part, so that only they sign
    actor = command.actor
    people = dict.fromkeys(
        [(actor.agency, actor.person), *((p.agency, p.person) for p in command.participants)]
    )
    payload: dict[str, Any] = {
        "agencies": agencies,
        "people": [{"agency": a, "person": n} for a, n in people],
        "reason": command.reason,
    }
    if command.kind == "recheck_fail":
        more, rules = _new_deadline(state, command, plan, state.category)
        payload.update(more)
        return payload, ("R-TKT-FAIL", "R-TKT-REINSPECT", *rules)
    return payload, ("R-TKT-REINSPECT",)


def _step_sign_off(state: TicketState, command: Command, plan: Plan) -> Step:
    signers = list(command.signers) or [command.actor]
    rectifier = state.rectified_by or (state.routing.rectifier if state.routing else None)
    for s in signers:
        if s.agency == rectifier:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} rectified this ticket and may not sign off its own re-check",
                rule=plan.cite("R-AUTH-SEPARATION"),
                zh="整改单位不得为自身整改验收签字",
                field="signers",
            )
        if s.agency in plan.settings.non_signing_agencies:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} inspects but never signs off",
                rule=plan.cite("R-AUTH-SEPARATION"),
                zh="第三方技术力量可参与检查，不得签字验收",
                field="signers",
            )
    seen: set[tuple[str, str]] = set()
    for s in signers:
        if s.agency not in state.recheck_agencies:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} took no part in the re-check",
                rule=plan.cite("R-TKT-SIGNOFF"),
                zh="签字人须为参与复查的验收责任人",
                field="signers",
            )
        if not _counts(plan, s.agency, rectifier):
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} took part in the re-check but is not a department that signs",
                rule=plan.cite("R-AUTH-ROLES"),
                zh="签字人须为参与复查的政府部门验收责任人",
                field="signers",
            )
        if not s.person:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"a signer of {s.agency!r} must be a named person",
                rule=plan.cite("R-AUTH-ROLES"),
                zh="验收签字须由具名的责任人签署",
                field="signers",
            )
        if state.recheck_people and _shared_actor(s.agency, s.person) not in state.recheck_people:
            # older histories recorded only the agencies of a re-check: the agency check above
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.person!r} of {s.agency!r} took no part in the re-check",
                rule=plan.cite("R-TKT-SIGNOFF"),
                zh="签字人须为本人参与复查的验收责任人",
                field="signers",
            )
        if (s.agency, s.person) in seen:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.person!r} of {s.agency!r} signs twice",
                rule=plan.cite("R-AUTH-SEPARATION"),
                zh="同一责任人不得重复签字",
                field="signers",
            )
        seen.add((s.agency, s.person))
    return {"signers": [{"agency": s.agency, "person": s.person} for s in signers]}, (
        "R-TKT-SIGNOFF",
        "R-AUTH-SEPARATION",
    )


def _step_archive(state: TicketState, command: Command, plan: Plan) -> Step:
    photos = [e for e in command.evidence if e.kind == "photo_after"]
    if not photos and not state.after_photo:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            "filing needs a photo of the rectified state",
            rule=plan.cite("R-TKT-SIGNOFF"),
            zh="须对整改后的情况拍照建档",
            field="evidence",
        )
    return {"community": state.community}, ("R-TKT-SIGNOFF",)


def _step_mark_overdue(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.deadline is not None
    if not plan.calendar.is_late(state.deadline, command.at):
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"the deadline {state.deadline} has not passed at {command.at.isoformat()}",
            rule=plan.cite("R-ESC-OVERDUE"),
            zh="整改期限未届满",
            field="at",
        )
    if state.state == "rectified":  # 五(三) 整改完毕…要立即申报复验: not applied for in time
        return {"deadline": state.deadline.isoformat()}, ("R-ESC-OVERDUE", "R-TKT-REINSPECT")
    return {"deadline": state.deadline.isoformat()}, ("R-ESC-OVERDUE",)


def _step_escalate(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.routing is not None
    if state.state == "overdue":
        rule = plan.cite("R-ESC-OVERDUE")
        targets = list(
            dict.fromkeys(command.targets or (state.routing.lead, state.routing.supervisor))
        )
    else:  # 拒不改正的，立即反馈属地公安、消防、城管等部门: 等 adds, never drops
        rule = plan.cite("R-ESC-REFUSAL")
        targets = list(
            dict.fromkeys(
                (*plan.settings.refusal_report_to, *(command.targets or state.routing.enforcers))
            )
        )
    for t in targets:
        try:
            plan.agency(t)
        except InvalidArgument:
            raise _refuse(
                InvalidCommand, state, command, f"unknown agency {t!r}", rule=rule, field="targets"
            ) from None
    if not targets:
        raise _refuse(InvalidCommand, state, command, "no target", rule=rule, field="targets")
    return {"targets": targets, "reason": command.reason}, (rule,)


def _step_certify(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.routing is not None
    certifier = state.routing.certifier
    if certifier is None:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"category {state.category!r} is not an illegal-building hazard",
            rule=plan.cite("R-ROUTE-BUILDING"),
            zh="仅违章建筑需认定",
            field="kind",
        )
    if command.actor.agency != certifier:
        raise _refuse(
            NotAuthorized,
            state,
            command,
            f"only {certifier!r} certifies illegal buildings",
            rule=plan.cite("R-ROUTE-BUILDING"),
            zh="违章建筑由资源规划部门认定",
        )
    return {"reason": command.reason}, ("R-ROUTE-BUILDING",)


def _step_demolish(state: TicketState, command: Command, plan: Plan) -> Step:
    payload, rules = _new_deadline(state, command, plan, state.category)
    payload["with"] = [p.agency for p in command.participants]
    return payload, ("R-ROUTE-BUILDING", *rules)


_CLEARABLE = frozenset({"R-ROUTE-LANE-IN", "R-ROUTE-LANE-OUT", "R-ROUTE-EVAC"})


def _step_clear(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.routing is not None
    found = [r for r in state.routing.rules if r in _CLEARABLE]
    if not found:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"nothing to clear for category {state.category!r}",
            rule=plan.cite("R-AUTH-ROLES"),
            zh="该类隐患不适用清理",
            field="kind",
        )
    payload, rules = _new_deadline(state, command, plan, state.category)
    return payload, (*found, *rules)


_BACK_TO_RECTIFYING = {"resume": "R-ESC-REFUSAL", "reopen": "R-TKT-SPOTCHECK"}


def _step_back_to_rectifying(state: TicketState, command: Command, plan: Plan) -> Step:
    if command.kind == "reopen":
        _check_spot_check_window(state, command, plan)
    payload, rules = _new_deadline(state, command, plan, state.category)
    payload["reason"] = command.reason
    return payload, (_BACK_TO_RECTIFYING[command.kind], *rules)


def _check_spot_check_window(state: TicketState, command: Command, plan: Plan) -> None:
    """R-SPOT-WINDOW: the district spot check reopens only inside its phase (五(四))."""
    window = plan.spot_check_window()
    if window is None:
        return
    day = _local_date(plan, command.at)
    if day not in window:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"{day} is outside the spot-check phase {window.id!r} "
            f"({window.start} to {window.end}): a spot check reopens only inside it",
            rule=plan.cite("R-SPOT-WINDOW"),
            zh=f"抽查核实阶段为 {window.start} 至 {window.end}，{day} 不在其内，不能按抽查重新整改",
            field="at",
        )


#: The rule of each case of 六(四) a referral names (``report``: the general rule only).
_CASE_RULES: dict[str, tuple[str, ...]] = {
    "slow": ("R-ACC-SLOW",),
    "wrong": ("R-ACC-WRONG",),
    "falsified": ("R-ACC-FALSIFIED",),
    "concealed": ("R-ACC-CONCEALED",),
    "report": (),
}


def _step_refer(state: TicketState, command: Command, plan: Plan) -> Step:
    """A lead department refers a case to the efficiency office (六(四) 转报…督导问责)."""
    rule = plan.cite("R-ESC-OFFICIAL")
    problem: tuple[str, str, str] | None = None
    if command.case is None:
        problem = ("case", "a referral names its case", "问责须写明情形")
    elif not command.accountable:
        problem = ("accountable", "a referral names who is held to account", "须写明被问责单位")
    elif not command.reason:
        problem = ("reason", "a referral says why (reason)", "须写明问责理由")
    else:
        for i, a in enumerate(command.accountable):
            if not plan.has_agency(a):
                problem = (f"accountable[{i}]", f"unknown agency {a!r}", "方案中没有该部门")
                break
    if problem is not None:
        raise _refuse(
            InvalidCommand, state, command, problem[1], rule=rule, zh=problem[2], field=problem[0]
        )
    assert command.case is not None
    payload: dict[str, Any] = {
        "case": command.case,
        "accountable": list(dict.fromkeys(command.accountable)),
        "persons": list(dict.fromkeys(p for p in command.persons if p)),
        "reason_zh": command.reason,
    }
    return payload, ("R-ESC-OFFICIAL", *_CASE_RULES[command.case])


def _step_decide_referral(state: TicketState, command: Command, plan: Plan) -> Step:
    """The efficiency office records the outcome of a referral on this ticket."""
    rule = plan.cite("R-ESC-OFFICIAL")
    pending = [r.event_id for r in state.referrals if r.open]
    if command.referral not in pending:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"no open referral {command.referral!r} on this ticket "
            f"(open: {', '.join(pending) or 'none'})",
            rule=rule,
            zh="本隐患没有该待处理的问责转报",
            field="referral",
        )
    if not command.outcome:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            "the outcome of a referral is required",
            rule=rule,
            zh="须写明问责结果",
            field="outcome",
        )
    return {"referral": command.referral, "outcome": command.outcome}, ("R-ESC-OFFICIAL",)


def _step_punish(state: TicketState, command: Command, plan: Plan) -> Step:
    routing = _routing_of(state, plan)
    assert routing is not None  # punish is never allowed before a report
    route = plan.route(routing.route)
    if command.actor.agency in route.punishers:  # its own duty, in any open state (四(二))
        return {"reason": command.reason}, route.punish_rules
    if state.state != "escalated":
        who = ", ".join(route.punishers) or "nobody"
        raise _refuse(
            TransitionNotAllowed,
            state,
            command,
            f"{command.actor.agency!r} may punish only after an escalation "
            f"(on route {route.id!r} {who} may punish directly)",
            rule=plan.cite("R-ESC-REFUSAL"),
            zh="须经劝阻无效反馈后方可查处",
        )
    # 六(四) 物业企业工作配合落实不力的…予以严肃查处 only where a property company failed;
    # otherwise the route's own enforcement basis (四(二)) after the refusal
    if plan.is_property_company(routing.rectifier):
        return {"reason": command.reason}, ("R-ESC-PROPERTY",)
    return {"reason": command.reason}, ("R-ESC-REFUSAL", *route.rules)


_STEP = {
    "report": _step_report,
    "route": _step_route,
    "set_deadline": _step_set_deadline,
    "rectify": _plain("R-TKT-REINSPECT", "R-AUTH-ROLES"),
    "apply_reinspection": _plain("R-TKT-REINSPECT"),
    "recheck_pass": _step_recheck,
    "recheck_fail": _step_recheck,
    "sign_off": _step_sign_off,
    "archive": _step_archive,
    "mark_overdue": _step_mark_overdue,
    "refuse": _plain("R-ESC-REFUSAL"),
    "escalate": _step_escalate,
    "expose": _plain("R-ESC-EXPOSE"),
    "punish": _step_punish,
    "certify": _step_certify,
    "demolish": _step_demolish,
    "clear": _step_clear,
    "resume": _step_back_to_rectifying,
    "reopen": _step_back_to_rectifying,
    "refer": _step_refer,
    "decide_referral": _step_decide_referral,
}


# =========================================================================== #
# Evolve and fold


_STATE_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(TicketState))
_STATE_VALUES = operator.attrgetter(*_STATE_FIELDS)  # every field at once, in C
_STATE_INDEX = {name: i for i, name in enumerate(_STATE_FIELDS)}
# Positions of the fields in a state's value list (the fold works on such lists).
_TID, _ST, _VER = _STATE_INDEX["ticket_id"], _STATE_INDEX["state"], _STATE_INDEX["version"]
_COMMUNITY, _TOWN = _STATE_INDEX["community"], _STATE_INDEX["town"]
_CATEGORY, _SUBTYPE = _STATE_INDEX["category"], _STATE_INDEX["subtype"]
_LOCATION, _SOURCE = _STATE_INDEX["location"], _STATE_INDEX["source"]
_REPORTED_AT, _LAST_AT = _STATE_INDEX["reported_at"], _STATE_INDEX["last_at"]
_ROUTING, _DEADLINE = _STATE_INDEX["routing"], _STATE_INDEX["deadline"]
_DEADLINE_RULES, _DEADLINES_SET = _STATE_INDEX["deadline_rules"], _STATE_INDEX["deadlines_set"]
_RECTIFIED_BY, _CERTIFIED_BY = _STATE_INDEX["rectified_by"], _STATE_INDEX["certified_by"]
_FAILED, _RECHECK_AGENCIES = _STATE_INDEX["failed_rechecks"], _STATE_INDEX["recheck_agencies"]
_RECHECK_PEOPLE = _STATE_INDEX["recheck_people"]
_SIGNERS, _EVIDENCE = _STATE_INDEX["signers"], _STATE_INDEX["evidence"]
_ESCALATED_TO, _EXPOSED = _STATE_INDEX["escalated_to"], _STATE_INDEX["exposed"]
_PUNISHED, _REOPENED = _STATE_INDEX["punished"], _STATE_INDEX["reopened"]
_REOPENED_AFTER = _STATE_INDEX["reopened_after_signoff"]
_AFTER_PHOTO, _REFUSED = _STATE_INDEX["after_photo"], _STATE_INDEX["refused_attempts"]
_OVERDUE_MARKED, _DEMOLISHED = _STATE_INDEX["overdue_marked"], _STATE_INDEX["demolished"]
_DELIVERED_ON, _NEW_COMMUNITY = _STATE_INDEX["delivered_on"], _STATE_INDEX["new_community"]
_PLAN_ID, _PLAN_DIGEST = _STATE_INDEX["plan_id"], _STATE_INDEX["plan_digest"]
_ENTERED_AT, _REFUSED_BY = _STATE_INDEX["entered_at"], _STATE_INDEX["refused_by"]
_FALSIFIED, _REFERRALS = _STATE_INDEX["falsified_signers"], _STATE_INDEX["referrals"]
_INITIAL_VALUES: tuple[Any, ...] = _STATE_VALUES(TicketState(""))


def _malformed(event: Event, exc: Exception) -> InvalidArgument:
    """The error for an event whose payload the engine cannot read (corrupt history)."""
    return InvalidArgument(
        "payload",
        f"event {event.event_id} ({event.kind}) has a malformed payload: "
        f"{type(exc).__name__}: {exc} (事件内容格式错误)",
    )


def _apply(v: list[Any], event: Event) -> None:
    """Apply one event to a state's value list, in place (the one body of evolve and fold).

    Every check comes before the first change, so a refused event changes nothing.
    """
    if event.ticket_id != v[_TID]:
        raise InvalidArgument("ticket_id", f"event {event.event_id} is for {event.ticket_id!r}")
    if event.seq != v[_VER] + 1:
        raise InvalidArgument(
            "seq", f"event {event.event_id} has seq {event.seq}, expected {v[_VER] + 1}"
        )
    kind = event.kind
    if kind == "attempt_refused":  # recorded, but the ticket's clock does not move
        v[_VER] = event.seq
        v[_REFUSED] += 1
        v[_REFUSED_BY] = (*v[_REFUSED_BY], event.actor)
        return
    if kind == "plan_migrated":
        p = event.payload
        try:
            moved = (p["from_id"], p["from_digest"]), (p["to_id"], p["to_digest"])
        except (KeyError, TypeError) as exc:
            raise _malformed(event, exc) from None
        if moved[0] != (v[_PLAN_ID], v[_PLAN_DIGEST]):
            raise InvalidArgument(
                "payload.from_id", f"event {event.event_id} migrates from another plan"
            )
        v[_VER] = event.seq
        v[_LAST_AT] = event.at
        v[_PLAN_ID], v[_PLAN_DIGEST] = moved[1]
        return
    old = v[_ST]
    dest = _TABLE.get((old, kind))
    if dest is None:
        raise TransitionNotAllowed(
            f"event {event.event_id} cannot apply",
            rule=None,
            ticket=v[_TID],
            state=old,
            trigger=kind,
        )
    p = event.payload
    # Read what the payload must hold before changing anything.  A payload of the wrong
    # shape (another system wrote it) is a typed error naming the event, never a crash.
    try:
        if kind == "report":
            report = (p["community"], p["town"], p["category"], p.get("subtype"), p["location"])
            report_source = p["source"]
            bound = (p.get("plan_id", ""), p.get("plan_digest", ""))  # absent in older histories
            delivered = p.get("delivered_on")
            delivered_on = date.fromisoformat(delivered) if delivered is not None else None
        elif kind == "route":
            routing = Routing.from_data(p["routing"])
        elif kind in ("recheck_pass", "recheck_fail"):
            agencies = tuple(p["agencies"])
            # absent in older histories: sign-off then falls back to the agency check
            people = tuple(_shared_actor(x["agency"], x["person"]) for x in p.get("people", ()))
        elif kind == "sign_off":
            signers = tuple(_shared_actor(s["agency"], s.get("person", "")) for s in p["signers"])
        elif kind == "escalate":
            escalated = tuple(dict.fromkeys((*v[_ESCALATED_TO], *p["targets"])))
        elif kind == "refer":
            referral = Referral(
                event.event_id,
                event.at.isoformat(),
                p["case"],
                tuple(p["accountable"]),
                tuple(p.get("persons", ())),
                p.get("reason_zh", ""),
            )
        elif kind == "decide_referral":
            decided = p["referral"]
        deadline = (
            date.fromisoformat(p["deadline"])
            if kind in _INTO_RECTIFYING and "deadline" in p
            else None
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(event, exc) from None
    if kind == "decide_referral" and not any(
        r.event_id == decided and r.open for r in v[_REFERRALS]
    ):
        raise InvalidArgument(
            "payload.referral", f"event {event.event_id} decides no open referral"
        )
    v[_VER] = event.seq
    v[_LAST_AT] = event.at
    v[_ST] = dest
    if dest != old or kind in _INTO_RECTIFYING:
        v[_ENTERED_AT] = event.at
    if event.evidence:
        v[_EVIDENCE] = v[_EVIDENCE] + event.evidence
        if any(e.kind == "photo_after" for e in event.evidence):
            v[_AFTER_PHOTO] = True
    if kind == "report":
        v[_COMMUNITY], v[_TOWN], v[_CATEGORY], v[_SUBTYPE], v[_LOCATION] = report
        v[_SOURCE] = report_source
        v[_REPORTED_AT] = event.at
        v[_PLAN_ID], v[_PLAN_DIGEST] = bound
        v[_DELIVERED_ON], v[_NEW_COMMUNITY] = delivered_on, p.get("new_community")
    elif kind == "route":
        v[_ROUTING] = routing
    elif kind == "rectify":
        v[_RECTIFIED_BY] = event.actor.agency
    elif kind == "recheck_pass":
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = agencies, people
    elif kind == "recheck_fail":
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = agencies, people
        v[_FAILED] += 1
        v[_AFTER_PHOTO] = False  # a new rectification needs a new after-photo
    elif kind == "sign_off":
        v[_SIGNERS] = signers
    elif kind == "mark_overdue":
        v[_OVERDUE_MARKED] += 1
    elif kind == "escalate":
        v[_ESCALATED_TO] = escalated
    elif kind == "expose":
        v[_EXPOSED] += 1
    elif kind == "punish":
        v[_PUNISHED] += 1
    elif kind == "certify":
        v[_CERTIFIED_BY] = event.actor.agency
    elif kind == "demolish":
        v[_DEMOLISHED] = True
    elif kind == "refer":
        v[_REFERRALS] = (*v[_REFERRALS], referral)
    elif kind == "decide_referral":
        v[_REFERRALS] = tuple(
            attrs.evolve(r, outcome=p["outcome"]) if r.event_id == decided else r
            for r in v[_REFERRALS]
        )
    elif kind == "reopen":
        v[_AFTER_PHOTO] = False
        v[_REOPENED] += 1
        if old in ("signed_off", "archived"):
            v[_REOPENED_AFTER] += 1
            v[_FALSIFIED] = tuple(dict.fromkeys((*v[_FALSIFIED], *v[_SIGNERS])))
        v[_SIGNERS] = ()
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = (), ()
    if deadline is not None:
        v[_DEADLINE] = deadline
        v[_DEADLINE_RULES] = tuple(r for r in event.rules if r.startswith("R-"))
        v[_DEADLINES_SET] += 1
        v[_RECTIFIED_BY] = None


def evolve(state: TicketState, event: Event) -> TicketState:
    """Apply one event (through the compiled lifecycle table).  Pure."""
    values = list(_STATE_VALUES(state))
    _apply(values, event)
    return TicketState(*values)


def fold(
    events: Iterable[Event],
    ticket_id: str | None = None,
    *,
    plan: Plan | None = None,
    migrate_from: tuple[str, str] | None = None,
) -> TicketState:
    """The state of a ticket: its events applied in order from the initial state.

    The same as ``evolve`` applied event by event, with the state built once.
    The events must be one ticket's, in ``seq`` order from 1 without gaps, each
    with its own ``event_id``: another ticket's event, a gap, a repeated or
    out-of-order ``seq`` and a repeated ``event_id`` raise
    :class:`~fireflow.errors.InvalidArgument` naming the field, and so does an
    event the lifecycle does not allow
    (:class:`~fireflow.errors.TransitionNotAllowed`).

    Given a ``plan``, the history must be bound to it (the plan id and digest
    its ``report`` or latest ``plan_migrated`` event records), or
    :class:`~fireflow.errors.PlanMismatch` is raised; ``migrate_from=(plan id,
    digest)`` accepts a history bound to exactly that other plan, to be
    continued after a ``migrate_plan`` command.  A history written before plan
    binding (no plan in its ``report``) is folded as before, under any plan.
    """
    state = _fold(events, ticket_id)
    if plan is not None or migrate_from is not None:
        if plan is None:
            raise InvalidArgument("plan", "migrate_from needs the plan to migrate to")
        _check_binding(state, plan, migrate_from)
    return state


def _fold(events: Iterable[Event], ticket_id: str | None) -> TicketState:
    it = iter(events)
    first = next(it, None)
    if first is None:
        if ticket_id is None:
            raise InvalidArgument("events", "no events and no ticket id")
        return TicketState(ticket_id)
    values = list(_INITIAL_VALUES)
    values[_TID] = ticket_id or first.ticket_id
    _apply(values, first)
    seen = {first.event_id}
    for e in it:
        if e.event_id in seen:
            raise InvalidArgument("event_id", f"event id {e.event_id!r} appears twice")
        seen.add(e.event_id)
        _apply(values, e)
    return TicketState(*values)


def fold_each(
    events: Iterable[Event],
) -> tuple[dict[str, TicketState], dict[str, tuple[Event, FireflowError]]]:
    """Every ticket's state, and apart the tickets the engine cannot fold.

    Like :func:`fold_all` (each ticket's events in ``seq`` order, tickets may
    interleave), but a ticket whose history breaks (an event the lifecycle does
    not allow, a payload of the wrong shape, a gap in ``seq``) does not stop the
    others: it is returned in the second mapping with the first event that cannot
    apply and the engine's error.  Both mappings keep the order of first appearance.
    """
    values: dict[str, list[Any]] = {}
    broken: dict[str, tuple[Event, FireflowError]] = {}
    for e in events:
        tid = e.ticket_id
        if tid in broken:
            continue
        v = values.get(tid)
        if v is None:
            v = values[tid] = list(_INITIAL_VALUES)
            v[_TID] = tid
        try:
            _apply(v, e)
        except FireflowError as exc:
            broken[tid] = (e, exc)
            del values[tid]
    return {t: TicketState(*v) for t, v in values.items()}, broken


def fold_all(events: Iterable[Event], *, plan: Plan | None = None) -> dict[str, TicketState]:
    """Every ticket's state from one stream of many tickets' events (a store's replay).

    Each ticket's events must come in ``seq`` order, as a store's global order
    gives them; tickets may interleave.  The result maps ticket ids to states,
    in the order the tickets first appear, and equals ``fold`` per ticket.  Each
    state is built once, not once per event.  Gaps and repeated ``seq`` are
    refused as by ``fold``; unique event ids are the store's promise (it
    refuses a repeated one), not checked again here.  Given a ``plan``, every
    ticket bound to a plan must be bound to this one
    (:class:`~fireflow.errors.PlanMismatch`).

    >>> import pendulum
    >>> plan = load_plan("changle-2022")
    >>> a, b = Ticket("A", plan), Ticket("B", plan)
    >>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    >>> found = dict(community="金峰小区", town="金峰镇", category="evacuation_blocked",
    ...              subtype="goods", location="inside", source="town_inspection")
    >>> stream = [*a.command("report", at, "town", **found),
    ...           *b.command("report", at, "town", **found), *a.command("route", at, "town")]
    >>> states = fold_all(stream)
    >>> list(states), states == {"A": a.state, "B": b.state}
    (['A', 'B'], True)
    >>> states["A"].version, states["B"].version
    (2, 1)
    """
    lists: dict[str, list[Any]] = {}
    get = lists.get
    for e in events:
        values = get(e.ticket_id)
        if values is None:
            values = lists[e.ticket_id] = list(_INITIAL_VALUES)
            values[_TID] = e.ticket_id
        _apply(values, e)
    states = {tid: TicketState(*values) for tid, values in lists.items()}
    if plan is not None:
        for st in states.values():
            _check_binding(st, plan)
    return states


# =========================================================================== #
# The facade


class _Live:
    """The live ``transitions`` model kept in step with the compiled table."""

    state: str


class Ticket:
    """A ticket for embedding code: execute commands, read state and history.

    It keeps a live ``transitions`` machine in step with the compiled table
    (``may(trigger)`` asks it), and records refused attempts as events.

    ``events`` continue a stored history; it must be bound to ``plan``
    (:class:`~fireflow.errors.PlanMismatch` otherwise).  To continue it under
    another plan, pass ``migrate_from=(old plan id, old digest)`` and execute
    a ``migrate_plan`` command first: it is recorded as a ``plan_migrated``
    event.
    """

    def __init__(
        self,
        ticket_id: str,
        plan: Plan | None = None,
        events: Sequence[Event] = (),
        *,
        migrate_from: tuple[str, str] | None = None,
    ) -> None:
        self.plan = plan or load_plan("changle-2022")
        ticket_id = check_name(ticket_id, "ticket_id")
        self._events: list[Event] = list(events)
        self._state = fold(self._events, ticket_id, plan=self.plan, migrate_from=migrate_from)
        self._event_ids = {e.event_id for e in self._events}
        self._live = _Live()
        build_machine(self._live, initial=self._state.state)

    @property
    def state(self) -> TicketState:
        """The current state (the fold of :attr:`events`)."""
        return self._state

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event so far, refused attempts included."""
        return tuple(self._events)

    @property
    def id(self) -> str:
        """The ticket id."""
        return self._state.ticket_id

    def may(self, trigger: str) -> bool:
        """Is ``trigger`` allowed in the current state (structurally)?"""
        check = getattr(self._live, f"may_{trigger}", None)
        if check is None:
            raise InvalidArgument("trigger", f"unknown trigger {trigger!r}")
        return bool(check())

    def execute(self, command: Command | Mapping[str, Any]) -> tuple[Event, ...]:
        """Decide and apply a command; return its events.

        A :class:`~fireflow.errors.NotAuthorized` refusal is recorded as an
        ``attempt_refused`` event (state unchanged) and then raised.  Every
        other mistake (malformed data, an unknown agency, a repeated
        ``command_id``, a time out of range) is raised before anything is
        recorded.
        """
        cmd = command if isinstance(command, Command) else Command.model_validate(command)
        cid = cmd.command_id
        if cid is not None and (
            f"{cid}/1" in self._event_ids or f"{cid}/refused" in self._event_ids
        ):
            raise _refuse(
                InvalidCommand,
                self._state,
                cmd,
                f"command id {cid!r} was used before on this ticket",
                rule=None,
                zh="命令编号重复",
                field="command_id",
            )
        try:
            events = decide(self._state, cmd, self.plan)
        except NotAuthorized as exc:
            record = refusal_event(self._state, cmd, exc)
            self._apply(record)
            raise
        for e in events:
            self._apply(e)
        return events

    def _apply(self, event: Event) -> None:
        new = evolve(self._state, event)
        if event.kind not in RECORD_ONLY_KINDS:
            getattr(self._live, event.kind)()
            if self._live.state != new.state:  # pragma: no cover (the two engines disagree)
                raise AssertionError(f"machine says {self._live.state}, table says {new.state}")
        self._events.append(event)
        self._event_ids.add(event.event_id)
        self._state = new

    def command(
        self, kind: str, at: datetime, agency: str, person: str = "", **fields: Any
    ) -> tuple[Event, ...]:
        """Shorthand for ``execute(Command(kind=..., ticket_id=self.id, ...))``."""
        return self.execute(
            {
                "kind": kind,
                "ticket_id": self.id,
                "at": at,
                "actor": {"agency": agency, "person": person},
                **fields,
            }
        )
