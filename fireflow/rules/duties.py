"""Who must act next on a ticket, and by when (五(三), 四(二), 六(四)).

Every open step of a ticket is somebody's duty: the town routes a reported
hazard and sets its deadline, the rectifier rectifies by the deadline and
applies for re-inspection at once, the town organises the re-check, the
acceptance people sign, the town photographs and files (五(三)), and the
efficiency office records the outcome of a referral (六(四)).  The plan gives
no number of days for the offices' steps: each period is a **default** reading,
``settings.duty_days`` (R-DUTY-ROUTE, R-DUTY-RECHECK, R-DUTY-SIGNOFF,
R-DUTY-ARCHIVE).  The caller supplies the instant; the library never reads
the clock.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("T1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")   # a Monday
>>> _ = t.command("report", at, "town", community="C", town="T", category="fire_lane_vehicle",
...               subtype="private_car", location="inside", source="patrol")
>>> [(d.kind, d.agencies, str(d.due), d.rule) for d in duties_at(t.state, at, plan)]
[('route', ('town',), '2022-03-24', 'R-DUTY-ROUTE')]
>>> duties_at(t.state, at.add(days=4), plan)[0].late
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime

import attrs

from fireflow.errors import NaiveDatetime
from fireflow.model import TicketState
from fireflow.plan import Plan
from fireflow.plan.routing import Routing, route_for

__all__ = [
    "LIFECYCLE_DUTIES",
    "Duty",
    "describe_duties",
    "duties_at",
    "duties_of",
    "routing_of",
]

#: The duty each open state implies: (kind, the trigger that discharges it, the party).
#: ``archived`` implies none; a referral adds a ``decide_referral`` duty in any state.
LIFECYCLE_DUTIES: Mapping[str, tuple[str, str, str]] = {
    "reported": ("route", "route", "lead"),
    "routed": ("set_deadline", "set_deadline", "lead"),
    "rectifying": ("rectify", "rectify", "rectifier"),
    "overdue": ("rectify", "rectify", "rectifier"),
    "rectified": ("apply_reinspection", "apply_reinspection", "rectifier"),
    "refused": ("escalate", "escalate", "lead"),
    "escalated": ("enforce", "clear", "enforcers"),
    "certified": ("demolish", "demolish", "lead"),
    "reinspection_requested": ("recheck", "recheck_pass", "recheck_lead"),
    "passed": ("sign_off", "sign_off", "acceptance"),
    "signed_off": ("archive", "archive", "recheck_lead"),
}

_LABELS: Mapping[str, tuple[str, str]] = {
    "route": ("分派责任并限定整改期限", "route the hazard and set its deadline"),
    "set_deadline": ("限定整改期限", "set the rectification deadline"),
    "rectify": ("限期整改", "rectify by the deadline"),
    "apply_reinspection": ("立即申报复验", "apply for re-inspection at once"),
    "escalate": ("立即反馈公安、消防、城管等部门", "report the refusal to the enforcers at once"),
    "enforce": ("依法查处、清理", "enforce: clear or punish"),
    "demolish": ("依法拆除", "demolish according to law"),
    "recheck": ("牵头组织相关部门复查", "organise the re-check with the departments"),
    "sign_off": ("验收相关责任人签字", "the acceptance people sign off"),
    "archive": ("拍照建档", "photograph and file in the dossier"),
    "decide_referral": ("督导问责并记录结果", "decide the referral and record its outcome"),
}


@attrs.frozen
class Duty:
    """A step somebody owes on a ticket at an instant: who, by when, under which rule.

    ``due`` is the last day on time (None: the plan sets no period and fireflow
    none either); ``late`` says whether the instant asked about is past it.
    ``persons`` are the people the history names for it (the acceptance people
    of the last re-check, the signers), possibly none.
    """

    ticket_id: str
    kind: str
    trigger: str
    agencies: tuple[str, ...]
    persons: tuple[str, ...]
    since: datetime | None
    due: date | None
    late: bool
    rule: str
    label_zh: str
    label_en: str
    referral: str | None = None
    """For ``decide_referral``: the ``event_id`` of the referral."""

    def __str__(self) -> str:
        who = "、".join(self.agencies)
        if self.persons:
            who += f"（{'、'.join(self.persons)}）"
        when = f"{self.due} 前" if self.due is not None else "无期限"
        late = " 已逾期 LATE" if self.late else ""
        return f"{who}: {self.label_zh} ({self.label_en}) {when}{late} [{self.rule}]"

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data."""
        return {
            "ticket_id": self.ticket_id,
            "kind": self.kind,
            "trigger": self.trigger,
            "agencies": list(self.agencies),
            "persons": list(self.persons),
            "since": self.since.isoformat() if self.since is not None else None,
            "due": self.due.isoformat() if self.due is not None else None,
            "late": self.late,
            "rule": self.rule,
            "label_zh": self.label_zh,
            "label_en": self.label_en,
            "referral": self.referral,
        }


def routing_of(state: TicketState, plan: Plan) -> Routing | None:
    """The ticket's routing: recorded at ``route``, or (before it) the one it will get."""
    if state.routing is not None:
        return state.routing
    if not state.category:
        return None
    new = plan.is_new_community(state.delivered_on, state.new_community)
    return route_for(plan, state.category, state.location, state.subtype, new_community=new)


def _rectifier(state: TicketState, routing: Routing) -> str:
    return state.rectified_by or routing.rectifier


def _acceptance(state: TicketState, plan: Plan, routing: Routing) -> tuple[tuple[str, ...], ...]:
    """(agencies, persons) of the people who took part in the passed re-check and may sign."""
    rectifier = _rectifier(state, routing)
    levels = plan.settings.recheck_counting_levels
    people = [
        p
        for p in state.recheck_people
        if p.agency != rectifier
        and p.agency not in plan.settings.non_signing_agencies
        and plan.has_agency(p.agency)
        and plan.agency(p.agency).level in levels
    ]
    agencies = tuple(dict.fromkeys(p.agency for p in people)) or (routing.recheck_lead,)
    persons = tuple(dict.fromkeys(p.person for p in people if p.person))
    return agencies, persons


def _period_due(plan: Plan, since: datetime | None, days: int) -> date | None:
    if since is None:
        return None
    return plan.calendar.period(
        plan.local_date(since, "since"), days, plan.settings.duty_days.unit
    ).due


def _lifecycle_duty(state: TicketState, plan: Plan, at: datetime) -> Duty | None:
    found = LIFECYCLE_DUTIES.get(state.state)
    routing = routing_of(state, plan)
    if found is None or routing is None:
        return None
    kind, trigger, party = found
    days = plan.settings.duty_days
    since = state.entered_at or state.last_at
    persons: tuple[str, ...] = ()
    due: date | None = None
    if party == "lead":
        agencies: tuple[str, ...] = (routing.lead,)
    elif party == "rectifier":
        agencies = (_rectifier(state, routing),)
    elif party == "enforcers":
        agencies = state.escalated_to or routing.enforcers
    elif party == "acceptance":
        agencies, persons = _acceptance(state, plan, routing)
    else:
        agencies = (routing.recheck_lead,)
    if kind in ("route", "set_deadline"):
        since = state.reported_at or since
        due, rule = _period_due(plan, since, days.route), plan.cite("R-DUTY-ROUTE")
    elif kind in ("rectify", "apply_reinspection"):
        due = state.deadline
        rule = plan.cite("R-TKT-DEADLINE" if kind == "rectify" else "R-TKT-REINSPECT")
    elif kind == "escalate":  # 立即反馈: the same day
        due = plan.local_date(since, "since") if since is not None else None
        rule = plan.cite("R-ESC-REFUSAL")
    elif kind == "enforce":
        rule = plan.cite("R-ESC-REFUSAL")
    elif kind == "demolish":
        rule = plan.cite("R-ROUTE-BUILDING")
    elif kind == "recheck":
        due, rule = _period_due(plan, since, days.recheck), plan.cite("R-DUTY-RECHECK")
    elif kind == "sign_off":
        due, rule = _period_due(plan, since, days.sign_off), plan.cite("R-DUTY-SIGNOFF")
    else:  # archive
        due, rule = _period_due(plan, since, days.archive), plan.cite("R-DUTY-ARCHIVE")
        persons = tuple(
            dict.fromkeys(s.person for s in state.signers if s.agency in agencies and s.person)
        )
    zh, en = _LABELS[kind]
    late = due is not None and plan.calendar.is_late(due, at)
    return Duty(state.ticket_id, kind, trigger, agencies, persons, since, due, late, rule, zh, en)


def duties_at(state: TicketState, at: datetime, plan: Plan) -> list[Duty]:
    """What is due on a ticket at the aware instant ``at``: from whom, by when, which rule.

    The duty its state implies (:data:`LIFECYCLE_DUTIES`; none when ``new`` or
    ``archived``), then one ``decide_referral`` duty of the efficiency office
    (``settings.accountability_office``) per referral whose outcome is not yet
    recorded (六(四)), in the order of the referrals.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    out: list[Duty] = []
    duty = _lifecycle_duty(state, plan, at)
    if duty is not None:
        out.append(duty)
    office = plan.settings.accountability_office
    zh, en = _LABELS["decide_referral"]
    rule = plan.cite("R-ESC-OFFICIAL")
    for r in state.referrals:
        if r.open:
            out.append(
                Duty(
                    state.ticket_id,
                    "decide_referral",
                    "decide_referral",
                    (office,),
                    (),
                    datetime.fromisoformat(r.at),
                    None,
                    False,
                    rule,
                    zh,
                    en,
                    r.event_id,
                )
            )
    return out


def duties_of(
    states: Mapping[str, TicketState] | Iterable[TicketState],
    at: datetime,
    plan: Plan,
    *,
    town: str | None = None,
    late_only: bool = False,
) -> dict[str, list[Duty]]:
    """:func:`duties_at` of many tickets (a town's, or the district's), by ticket id.

    ``states`` maps ticket ids to states (as :func:`fireflow.ticket.fold_all`
    returns them) or lists them; ``town`` keeps one town's tickets;
    ``late_only`` keeps the duties past their day.  Tickets without a duty are
    left out; the order is the order of ``states``.
    """
    items = states.values() if isinstance(states, Mapping) else states
    out: dict[str, list[Duty]] = {}
    for st in items:
        if town is not None and st.town != town:
            continue
        found = duties_at(st, at, plan)
        if late_only:
            found = [d for d in found if d.late]
        if found:
            out[st.ticket_id] = found
    return out


def _agency_name(plan: Plan, agency: str) -> str:
    return plan.agency(agency).name.zh if plan.has_agency(agency) else agency


def describe_duties(duties: Iterable[Duty], plan: Plan) -> list[str]:
    """One line per duty for people: who (the plan's Chinese names, then persons), what, by when.

    For displays of a ticket (``explain``, the dossier): Chinese first, English beside,
    the rule id last.

    >>> import pendulum
    >>> from fireflow import load_plan
    >>> from fireflow.ticket import Ticket
    >>> plan = load_plan("changle-2022")
    >>> t = Ticket("T1", plan)
    >>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    >>> _ = t.command("report", at, "town", community="C", town="T", category="evacuation_blocked",
    ...               subtype="goods", location="inside", source="patrol")
    >>> (line,) = describe_duties(duties_at(t.state, at.add(days=4), plan), plan)
    >>> print(line.replace(") ", ")\\n"))
    乡镇（街道）政府: 分派责任并限定整改期限 (route the hazard and set its deadline)
    期限 due 2022-03-24 已逾期 late [R-DUTY-ROUTE]
    """
    out: list[str] = []
    for d in duties:
        who = "、".join(_agency_name(plan, a) for a in d.agencies)
        if d.persons:
            who += f"（{'、'.join(d.persons)}）"
        when = f"期限 due {d.due}" if d.due is not None else "方案未定期限 no period"
        late = " 已逾期 late" if d.late else ""
        ref = f" 转报 referral {d.referral}" if d.referral else ""
        out.append(f"{who}: {d.label_zh} ({d.label_en}){ref} {when}{late} [{d.rule}]")
    return out
