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
from typing import Annotated, Any, Literal

import attrs
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from fireflow.errors import (
    InvalidArgument,
    InvalidCommand,
    NotAuthorized,
    TransitionNotAllowed,
)
from fireflow.events import (
    Actor,
    Event,
    Evidence,
    _shared_actor,
    _trusted_event,
    check_text,
    parse_time,
)
from fireflow.plan import Plan, load_plan
from fireflow.rules.routing import Routing, route_for
from fireflow.states import INITIAL_STATE, LIFECYCLE, build_machine, compiled_table

__all__ = [
    "SOURCES",
    "ActorIn",
    "Command",
    "EvidenceIn",
    "Ticket",
    "TicketState",
    "authorize",
    "command_json_schema",
    "decide",
    "evolve",
    "fold",
    "fold_all",
    "refusal_event",
]

Source = Literal["self_inspection", "town_inspection", "spot_check", "patrol", "public_report"]
SOURCES: tuple[str, ...] = (
    "self_inspection",
    "town_inspection",
    "spot_check",
    "patrol",
    "public_report",
)
_TABLE = compiled_table()
Trigger = Literal[
    "report",
    "route",
    "set_deadline",
    "rectify",
    "apply_reinspection",
    "recheck_pass",
    "recheck_fail",
    "sign_off",
    "archive",
    "mark_overdue",
    "refuse",
    "escalate",
    "expose",
    "punish",
    "certify",
    "demolish",
    "clear",
    "resume",
    "reopen",
]
_INTO_RECTIFYING = frozenset(t.trigger for t in LIFECYCLE.transitions if t.dest == "rectifying")
Text = Annotated[str, StringConstraints(max_length=2000), AfterValidator(check_text)]
Ident = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
]


# =========================================================================== #
# Commands (the boundary: pydantic)


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ActorIn(_In):
    """An actor in a command: agency id and person."""

    agency: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
    person: Text = ""

    def to_actor(self) -> Actor:
        """The inside value object (equal actors are shared: they are frozen)."""
        return _shared_actor(self.agency, self.person)


class EvidenceIn(_In):
    """Evidence in a command: a photo or document referenced by its SHA-256."""

    kind: Literal["photo_before", "photo_after", "document"]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    note: Text = ""

    def to_evidence(self) -> Evidence:
        """The inside value object."""
        return Evidence(self.kind, self.sha256, self.note)


class Command(_In):
    """A request to fire a trigger on a ticket, with what the step needs.

    Fields beyond ``kind``, ``ticket_id``, ``at`` and ``actor`` are used by the
    triggers that need them (``report``: community, town, category, subtype,
    location, source, and optionally delivered_on or new_community (新建, R-ROUTE-SIGN);
    ``recheck_*``: participants; ``sign_off``: signers;
    ``escalate``: targets; deadlines: days and unit).
    """

    kind: Trigger
    ticket_id: Ident
    at: AwareDatetime
    actor: ActorIn
    command_id: Ident | None = None
    community: Ident | None = None
    town: Ident | None = None
    category: Ident | None = None
    subtype: Ident | None = None
    location: Literal["inside", "around"] | None = None
    source: Source | None = None
    description: Text = ""
    evidence: tuple[EvidenceIn, ...] = Field(default=(), max_length=64)
    days: Annotated[int, Field(ge=1, le=366)] | None = None
    unit: Literal["calendar", "working"] | None = None
    participants: tuple[ActorIn, ...] = Field(default=(), max_length=64)
    signers: tuple[ActorIn, ...] = Field(default=(), max_length=64)
    targets: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()
    reason: Text = ""
    delivered_on: date | None = None
    """``report``: the day the community was delivered (交付), R-ROUTE-SIGN."""
    new_community: bool | None = None
    """``report``: the community is new (新建) or not, R-ROUTE-SIGN; wins over the date."""


def command_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Command`."""
    return Command.model_json_schema()


# =========================================================================== #
# State


@attrs.frozen
class TicketState:
    """Everything the rules need to know about a ticket: the fold of its events."""

    ticket_id: str
    state: str = INITIAL_STATE
    version: int = 0
    community: str = ""
    town: str = ""
    category: str = ""
    subtype: str | None = None
    location: str = ""
    source: str = ""
    reported_at: datetime | None = None
    last_at: datetime | None = None
    routing: Routing | None = None
    deadline: date | None = None
    deadline_rules: tuple[str, ...] = ()
    deadlines_set: int = 0
    rectified_by: str | None = None
    certified_by: str | None = None
    failed_rechecks: int = 0
    recheck_agencies: tuple[str, ...] = ()
    signers: tuple[Actor, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    escalated_to: tuple[str, ...] = ()
    exposed: int = 0
    punished: int = 0
    reopened: int = 0
    reopened_after_signoff: int = 0
    after_photo: bool = False
    refused_attempts: int = 0
    overdue_marked: int = 0
    demolished: bool = False
    delivered_on: date | None = None
    """When the community was delivered (交付), as reported (R-ROUTE-SIGN)."""
    new_community: bool | None = None
    """Whether the report said the community is new (新建), as reported (R-ROUTE-SIGN)."""

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data."""
        out: dict[str, Any] = {}
        for a in attrs.fields(TicketState):
            v = getattr(self, a.name)
            if isinstance(v, datetime | date):
                v = v.isoformat()
            elif isinstance(v, Routing):
                v = v.to_data()
            elif isinstance(v, tuple):
                v = [attrs.asdict(x) if attrs.has(type(x)) else x for x in v]
            out[a.name] = v
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TicketState:
        """Rebuild a state from :meth:`to_data` output (or parsed JSON)."""
        fields = {a.name: a for a in attrs.fields(TicketState)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InvalidArgument(unknown[0], "unknown field in ticket state data")
        kw: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                kw[name] = None
            elif name in ("reported_at", "last_at"):
                kw[name] = parse_time(value, name)
            elif name in ("deadline", "delivered_on"):
                kw[name] = date.fromisoformat(value)
            elif name == "routing":
                kw[name] = Routing.from_data(value)
            elif name == "signers":
                kw[name] = tuple(Actor(**x) for x in value)
            elif name == "evidence":
                kw[name] = tuple(Evidence(**x) for x in value)
            elif isinstance(value, list):
                kw[name] = tuple(value)
            else:
                kw[name] = value
        return cls(**kw)


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
            rule="R-AUTH-ROLES",
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
        rule=fitting[0] if fitting else "R-AUTH-ROLES",
        zh=f"{agency} 无权执行此步骤",
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


def decide(state: TicketState, command: Command, plan: Plan | None = None) -> tuple[Event, ...]:
    """The events a command produces, or a typed refusal.  Pure: no I/O, no clock.

    ``plan`` defaults to the built-in ``changle-2022``.  The rules an event
    cites come from one place, the step of its trigger (``_STEP``): the
    lifecycle rule of the step, the rules of the ticket's own route where the
    step is a route duty, and the calendar rules of a deadline.  No event cites
    a routing rule of another route.
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
    if state.last_at is not None and command.at < state.last_at:
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"time goes backwards: {command.at.isoformat()} < {state.last_at.isoformat()}",
            rule=None,
            zh="时间早于上一事件",
            field="at",
        )
    if (state.state, command.kind) not in _TABLE:
        tdef = LIFECYCLE.transition(command.kind)
        raise _refuse(
            TransitionNotAllowed,
            state,
            command,
            f"not allowed in state {state.state!r} (allowed from: {', '.join(tdef.sources)})",
            rule=tdef.rules[0],
            zh=f"当前状态“{LIFECYCLE.state(state.state).zh}”不允许此操作",
        )
    authorize(state, command, plan)
    payload, all_rules = _STEP[command.kind](state, command, plan)
    if len(set(all_rules)) != len(all_rules):  # pragma: no cover (a step cites a rule twice)
        raise AssertionError(f"{command.kind} cites a rule twice: {all_rules}")
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
    period = plan.calendar.period(start, days, unit)
    due = period.due
    rules: list[str] = ["R-TKT-DEADLINE", *period.rules]
    if not plan.settings.deadlines_may_pass_dossier:
        dossier = next((d for d in plan.deadlines() if d.id == "dossier"), None)
        if dossier is not None and start <= dossier.due < due:
            due = dossier.due  # capped: the holiday roll of the raw end no longer decides it
            rules = [r for r in rules if r != "R-DUE-HOLIDAY"] + ["R-DUE-DOSSIER"]
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
            rule="R-TKT-OPEN",
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
            InvalidCommand, state, command, str(exc), rule="R-TKT-OPEN", field=exc.field
        ) from None
    if command.source in plan.settings.photo_required_sources and not any(
        e.kind == "photo_before" for e in command.evidence
    ):
        raise _refuse(
            InvalidCommand,
            state,
            command,
            f"a {command.source} report needs a photo",
            rule="R-TKT-OPEN",
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
            rule="R-ROUTE-SIGN",
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
            rule="R-ROUTE-SIGN",
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
            rule="R-TKT-REINSPECT",
            zh=f"复查须由乡镇牵头组织相关部门共同进行：整改方以外的政府部门不少于{need}个"
            "（物业、群众、第三方可参加，不计入）",
            field="participants",
        )
    payload: dict[str, Any] = {"agencies": agencies, "reason": command.reason}
    if command.kind == "recheck_fail":
        more, rules = _new_deadline(state, command, plan, state.category)
        payload.update(more)
        return payload, ("R-TKT-FAIL", "R-TKT-REINSPECT", *rules)
    return payload, ("R-TKT-REINSPECT",)


def _step_sign_off(state: TicketState, command: Command, plan: Plan) -> Step:
    signers = list(command.signers) or [command.actor]
    rectifier = _rectifier(state)
    for s in signers:
        if s.agency == rectifier:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} rectified this ticket and may not sign off its own re-check",
                rule="R-AUTH-SEPARATION",
                zh="整改单位不得为自身整改验收签字",
                field="signers",
            )
        if s.agency in plan.settings.non_signing_agencies:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} inspects but never signs off",
                rule="R-AUTH-SEPARATION",
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
                rule="R-TKT-SIGNOFF",
                zh="签字人须为参与复查的验收责任人",
                field="signers",
            )
        if not _counts(plan, s.agency, rectifier):
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.agency!r} took part in the re-check but is not a department that signs",
                rule="R-AUTH-ROLES",
                zh="签字人须为参与复查的政府部门验收责任人",
                field="signers",
            )
        if not s.person:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"a signer of {s.agency!r} must be a named person",
                rule="R-AUTH-ROLES",
                zh="验收签字须由具名的责任人签署",
                field="signers",
            )
        if (s.agency, s.person) in seen:
            raise _refuse(
                NotAuthorized,
                state,
                command,
                f"{s.person!r} of {s.agency!r} signs twice",
                rule="R-AUTH-SEPARATION",
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
            rule="R-TKT-SIGNOFF",
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
            rule="R-ESC-OVERDUE",
            zh="整改期限未届满",
            field="at",
        )
    return {"deadline": state.deadline.isoformat()}, ("R-ESC-OVERDUE",)


def _step_escalate(state: TicketState, command: Command, plan: Plan) -> Step:
    assert state.routing is not None
    if state.state == "overdue":
        rule = "R-ESC-OVERDUE"
        targets = list(
            dict.fromkeys(command.targets or (state.routing.lead, state.routing.supervisor))
        )
    else:  # 拒不改正的，立即反馈属地公安、消防、城管等部门: 等 adds, never drops
        rule = "R-ESC-REFUSAL"
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
            rule="R-ROUTE-BUILDING",
            zh="仅违章建筑需认定",
            field="kind",
        )
    if command.actor.agency != certifier:
        raise _refuse(
            NotAuthorized,
            state,
            command,
            f"only {certifier!r} certifies illegal buildings",
            rule="R-ROUTE-BUILDING",
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
            rule="R-AUTH-ROLES",
            zh="该类隐患不适用清理",
            field="kind",
        )
    payload, rules = _new_deadline(state, command, plan, state.category)
    return payload, (*found, *rules)


_BACK_TO_RECTIFYING = {"resume": "R-ESC-REFUSAL", "reopen": "R-TKT-SPOTCHECK"}


def _step_back_to_rectifying(state: TicketState, command: Command, plan: Plan) -> Step:
    payload, rules = _new_deadline(state, command, plan, state.category)
    payload["reason"] = command.reason
    return payload, (_BACK_TO_RECTIFYING[command.kind], *rules)


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
            rule="R-ESC-REFUSAL",
            zh="须经劝阻无效反馈后方可查处",
        )
    return {"reason": command.reason}, ("R-ESC-PROPERTY",)


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
_SIGNERS, _EVIDENCE = _STATE_INDEX["signers"], _STATE_INDEX["evidence"]
_ESCALATED_TO, _EXPOSED = _STATE_INDEX["escalated_to"], _STATE_INDEX["exposed"]
_PUNISHED, _REOPENED = _STATE_INDEX["punished"], _STATE_INDEX["reopened"]
_REOPENED_AFTER = _STATE_INDEX["reopened_after_signoff"]
_AFTER_PHOTO, _REFUSED = _STATE_INDEX["after_photo"], _STATE_INDEX["refused_attempts"]
_OVERDUE_MARKED, _DEMOLISHED = _STATE_INDEX["overdue_marked"], _STATE_INDEX["demolished"]
_DELIVERED_ON, _NEW_COMMUNITY = _STATE_INDEX["delivered_on"], _STATE_INDEX["new_community"]
_INITIAL_VALUES: tuple[Any, ...] = _STATE_VALUES(TicketState(""))


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
    # Read what the payload must hold before changing anything.
    if kind == "report":
        report = (p["community"], p["town"], p["category"], p.get("subtype"), p["location"])
        report_source = p["source"]
        delivered = p.get("delivered_on")
        delivered_on = date.fromisoformat(delivered) if delivered is not None else None
    elif kind == "route":
        routing = Routing.from_data(p["routing"])
    elif kind in ("recheck_pass", "recheck_fail"):
        agencies = tuple(p["agencies"])
    elif kind == "sign_off":
        signers = tuple(Actor(s["agency"], s.get("person", "")) for s in p["signers"])
    elif kind == "escalate":
        escalated = tuple(dict.fromkeys((*v[_ESCALATED_TO], *p["targets"])))
    deadline = (
        date.fromisoformat(p["deadline"]) if kind in _INTO_RECTIFYING and "deadline" in p else None
    )
    v[_VER] = event.seq
    v[_LAST_AT] = event.at
    v[_ST] = dest
    if event.evidence:
        v[_EVIDENCE] = v[_EVIDENCE] + event.evidence
        if any(e.kind == "photo_after" for e in event.evidence):
            v[_AFTER_PHOTO] = True
    if kind == "report":
        v[_COMMUNITY], v[_TOWN], v[_CATEGORY], v[_SUBTYPE], v[_LOCATION] = report
        v[_SOURCE] = report_source
        v[_REPORTED_AT] = event.at
        v[_DELIVERED_ON], v[_NEW_COMMUNITY] = delivered_on, p.get("new_community")
    elif kind == "route":
        v[_ROUTING] = routing
    elif kind == "rectify":
        v[_RECTIFIED_BY] = event.actor.agency
    elif kind == "recheck_pass":
        v[_RECHECK_AGENCIES] = agencies
    elif kind == "recheck_fail":
        v[_RECHECK_AGENCIES] = agencies
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
    elif kind == "reopen":
        v[_AFTER_PHOTO] = False
        v[_REOPENED] += 1
        if old in ("signed_off", "archived"):
            v[_REOPENED_AFTER] += 1
        v[_SIGNERS] = ()
        v[_RECHECK_AGENCIES] = ()
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


def fold(events: Iterable[Event], ticket_id: str | None = None) -> TicketState:
    """The state of a ticket: its events applied in order from the initial state.

    The same as ``evolve`` applied event by event, with the state built once.
    """
    it = iter(events)
    first = next(it, None)
    if first is None:
        if ticket_id is None:
            raise InvalidArgument("events", "no events and no ticket id")
        return TicketState(ticket_id)
    values = list(_INITIAL_VALUES)
    values[_TID] = ticket_id or first.ticket_id
    _apply(values, first)
    for e in it:
        _apply(values, e)
    return TicketState(*values)


def fold_all(events: Iterable[Event]) -> dict[str, TicketState]:
    """Every ticket's state from one stream of many tickets' events (a store's replay).

    Each ticket's events must come in ``seq`` order, as a store's global order
    gives them; tickets may interleave.  The result maps ticket ids to states,
    in the order the tickets first appear, and equals ``fold`` per ticket.  Each
    state is built once, not once per event.

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
    return {tid: TicketState(*values) for tid, values in lists.items()}


# =========================================================================== #
# The facade


class _Live:
    """The live ``transitions`` model kept in step with the compiled table."""

    state: str


class Ticket:
    """A ticket for embedding code: execute commands, read state and history.

    It keeps a live ``transitions`` machine in step with the compiled table
    (``may(trigger)`` asks it), and records refused attempts as events.
    """

    def __init__(
        self, ticket_id: str, plan: Plan | None = None, events: Sequence[Event] = ()
    ) -> None:
        self.plan = plan or load_plan("changle-2022")
        self._events: list[Event] = list(events)
        self._state = fold(self._events, ticket_id)
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
        ``attempt_refused`` event (state unchanged) and then raised.
        """
        cmd = command if isinstance(command, Command) else Command.model_validate(command)
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
        if event.kind != "attempt_refused":
            getattr(self._live, event.kind)()
            if self._live.state != new.state:  # pragma: no cover (the two engines disagree)
                raise AssertionError(f"machine says {self._live.state}, table says {new.state}")
        self._events.append(event)
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
