"""Decide: a command checked against the lifecycle, the plan and its step's rule, into events.

:func:`decide` is pure (no I/O, no clock): the caller's mistakes first
(:class:`~fireflow.errors.InvalidCommand`), then the compiled lifecycle table
(:class:`~fireflow.errors.TransitionNotAllowed`), the plan's authority
(:class:`~fireflow.errors.NotAuthorized`, :func:`authorize`) and one step function
per trigger (``_STEP``), which returns the event's payload and the rule ids it
cites.  :func:`refusal_event` records a refused attempt.  See docs/lifecycle.md.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.model import ActorIn, TicketState
>>> plan = load_plan("changle-2022")
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> report = Command(kind="report", ticket_id="T1", at=at, actor=ActorIn(agency="town"),
...     community="金峰小区", town="金峰镇", category="evacuation_blocked",
...     subtype="goods", location="inside", source="town_inspection")
>>> [(e.kind, e.seq) for e in decide(TicketState("T1"), report, plan)]
[('report', 1)]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from fireflow.errors import (
    CalendarDataMissing,
    InvalidArgument,
    InvalidCommand,
    NaiveDatetime,
    NotAuthorized,
    TransitionNotAllowed,
)
from fireflow.events import Event, shared_actor, trusted_event
from fireflow.model import (
    Command,
    TicketState,
    check_binding,
    plan_binding,
)
from fireflow.plan import Plan
from fireflow.rules.duties import routing_of
from fireflow.states import (
    INITIAL_STATE,
    LIFECYCLE,
    LIFECYCLE_TABLE,
    SETTINGS_AUTHORIZED,
)

__all__ = [
    "MAX_YEAR",
    "MIN_YEAR",
    "Step",
    "authorize",
    "decide",
    "refusal",
    "refusal_event",
]


def refusal(
    cls: type[TransitionNotAllowed | NotAuthorized | InvalidCommand],
    state: TicketState,
    command: Command,
    message: str,
    *,
    rule: str | None,
    zh: str = "",
    field: str | None = None,
) -> TransitionNotAllowed | NotAuthorized | InvalidCommand:
    """The typed refusal of ``command`` in ``state``: the error ``decide`` raises.

    ``cls`` is the kind of refusal; ``rule`` the rule id it cites (``None`` for the
    caller's own mistakes), ``zh`` the message people read, ``field`` the command's
    field at fault.  Returned, not raised, so the caller writes ``raise refusal(...)``.
    """
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
    ``refer`` and ``decide_referral`` are authorized by settings (六(四)
    ``accountability_lead``, ``accountability_office``), not by an ``authority`` entry:
    their rule is R-ESC-OFFICIAL.
    """
    if command.kind in SETTINGS_AUTHORIZED:
        _authorize_accountability(state, command, plan)
        return (plan.cite("R-ESC-OFFICIAL"),)
    entry = plan.authority_for(command.kind)
    agency = command.actor.agency
    if entry is None:
        raise refusal(
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
    raise refusal(
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
        raise refusal(
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


def _route_rules(state: TicketState, plan: Plan) -> tuple[str, ...]:
    routing = routing_of(state, plan)
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
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
        raise refusal(
            InvalidCommand,
            state,
            command,
            f"unknown agency {agency!r} (not in plan {plan.id!r})",
            rule=None,
            zh="方案中没有该部门",
            field=field,
        )


def decide(state: TicketState, command: Command, plan: Plan) -> tuple[Event, ...]:
    """The events a command produces, or a typed refusal.  Pure: no I/O, no clock.

    ``plan`` is the plan the ticket is bound to; it is required (there is no
    default plan: the built-in one is loaded by name, ``load_plan(...)``, where a
    caller means it).  The caller's mistakes
    (another ticket's id, a time out of range or going backwards, an agency the
    plan does not know) are refused first, as
    :class:`~fireflow.errors.InvalidCommand`; then the lifecycle
    (:class:`~fireflow.errors.TransitionNotAllowed`), the authority
    (:class:`~fireflow.errors.NotAuthorized`) and the step's own rule.
    """
    if command.ticket_id != state.ticket_id:
        raise refusal(
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
        check_binding(state, plan)
    if (state.state, command.kind) not in LIFECYCLE_TABLE:
        tdef = LIFECYCLE.transition(command.kind)
        raise refusal(
            TransitionNotAllowed,
            state,
            command,
            f"not allowed in state {state.state!r} (allowed from: {', '.join(tdef.sources)})",
            rule=plan.cite(tdef.rules[0]),
            zh=f"当前状态“{LIFECYCLE.state(state.state).zh}”不允许此操作",
        )
    authorize(state, command, plan)
    payload, cited = _STEP[command.kind](state, command, plan)
    # the plan's own ids (engine_rules); two decisions may share one id in another plan
    all_rules = plan.cite_all(cited)
    seq = state.version + 1
    event_id = f"{command.command_id}/1" if command.command_id else f"{state.ticket_id}/{seq}"
    return (
        trusted_event(
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
        raise refusal(
            InvalidCommand,
            state,
            command,
            problem,
            rule=None,
            zh="无需或无法改用新版方案",
            field="kind",
        )
    if plan.agency(command.actor.agency).level not in ("province", "city", "county", "district"):
        raise refusal(
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
    return trusted_event(
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
        raise refusal(
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
        raise refusal(
            InvalidCommand, state, command, str(exc), rule=plan.cite("R-TKT-OPEN"), field=exc.field
        ) from None
    if command.source in plan.settings.photo_required_sources and not any(
        e.kind == "photo_before" for e in command.evidence
    ):
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
    routing = routing_of(state, plan)
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
        raise refusal(
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
            raise refusal(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} rectified this ticket and may not sign off its own re-check",
                rule=plan.cite("R-AUTH-SEPARATION"),
                zh="整改单位不得为自身整改验收签字",
                field="signers",
            )
        if s.agency in plan.settings.non_signing_agencies:
            raise refusal(
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
            raise refusal(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} took no part in the re-check",
                rule=plan.cite("R-TKT-SIGNOFF"),
                zh="签字人须为参与复查的验收责任人",
                field="signers",
            )
        if not _counts(plan, s.agency, rectifier):
            raise refusal(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} took part in the re-check but is not a department that signs",
                rule=plan.cite("R-AUTH-ROLES"),
                zh="签字人须为参与复查的政府部门验收责任人",
                field="signers",
            )
        if not s.person:
            raise refusal(
                NotAuthorized,
                state,
                command,
                f"a signer of {s.agency!r} must be a named person",
                rule=plan.cite("R-AUTH-ROLES"),
                zh="验收签字须由具名的责任人签署",
                field="signers",
            )
        if state.recheck_people and shared_actor(s.agency, s.person) not in state.recheck_people:
            # older histories recorded only the agencies of a re-check: the agency check above
            raise refusal(
                NotAuthorized,
                state,
                command,
                f"{s.person!r} of {s.agency!r} took no part in the re-check",
                rule=plan.cite("R-TKT-SIGNOFF"),
                zh="签字人须为本人参与复查的验收责任人",
                field="signers",
            )
        if (s.agency, s.person) in seen:
            raise refusal(
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
        raise refusal(
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
        raise refusal(
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
            raise refusal(
                InvalidCommand, state, command, f"unknown agency {t!r}", rule=rule, field="targets"
            ) from None
    if not targets:
        raise refusal(InvalidCommand, state, command, "no target", rule=rule, field="targets")
    return {"targets": targets, "reason": command.reason}, (rule,)


def _step_certify(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.routing is not None
    certifier = state.routing.certifier
    if certifier is None:
        raise refusal(
            InvalidCommand,
            state,
            command,
            f"category {state.category!r} is not an illegal-building hazard",
            rule=plan.cite("R-ROUTE-BUILDING"),
            zh="仅违章建筑需认定",
            field="kind",
        )
    if command.actor.agency != certifier:
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
        raise refusal(
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
    routing = routing_of(state, plan)
    assert routing is not None  # punish is never allowed before a report
    route = plan.route(routing.route)
    if command.actor.agency in route.punishers:  # its own duty, in any open state (四(二))
        return {"reason": command.reason}, route.punish_rules
    if state.state != "escalated":
        who = ", ".join(route.punishers) or "nobody"
        raise refusal(
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
