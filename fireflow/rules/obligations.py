"""Phase duties as obligations (五(一)-(五), 六(五)-(六)): who owes what, to whom, by when.

The plan gives every party duties besides its reports: the town's work plan with
its responsibility list, leader and liaison (五(一), R-OBL-WORK-PLAN), notices
posted in every community (五(二), R-OBL-NOTICE), every community self-inspected
(五(二), R-OBL-SELF-INSPECT) and inspected by its town (五(三),
R-OBL-TOWN-INSPECT), the results circulated (五(五), R-OBL-CIRCULATE), joint
meetings at the plan's interval (六(五), R-OBL-JOINT-MEETING, wired to
``settings.joint_meeting_interval_days``) and the spot-check results published
(一公开, R-OBL-PUBLISH).  The plan's ``duties`` list declares them (see
docs/reports.md); each becomes one :class:`~fireflow.rules.reporting.Obligation`
per town, community or district, of kind ``duty``.

The act is recorded as a :class:`~fireflow.rules.reporting.Submission` whose
``report_id`` is the duty id (a joint meeting: ``joint_meeting``, counted in the
interval its date falls in).  Status, wrong senders and escalations are those of
the reports (:func:`fireflow.rules.reporting.obligation_status`,
:func:`fireflow.rules.reporting.report_escalations`): a town that misses a duty
is an official case (R-ESC-OFFICIAL), a property company a property case
(R-ESC-PROPERTY).

Where the plan gives no date the duty is due on the last day of its phase (a
default reading, ``default_due``; each R-OBL rule says so), moved by the
holiday policy like any due day (R-DUE-HOLIDAY).

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.events import Actor
>>> plan = load_plan("changle-2022")
>>> towns = {"金峰镇": ["金峰小区", "华侨新村"]}
>>> obs = duty_obligations(plan, towns)
>>> wp = next(o for o in obs if o.report_id == "work_plan")
>>> wp.nominal, wp.due, wp.default_due, wp.senders  # 01-31 falls in the Spring Festival
(datetime.date(2022, 1, 31), datetime.date(2022, 2, 7), True, ('town',))
>>> wp.rules
('R-OBL-WORK-PLAN', 'R-DUE-HOLIDAY')
>>> at = pendulum.datetime(2022, 3, 20, 9, tz="Asia/Shanghai")
>>> sub = Submission("self_inspected", "金峰镇", pendulum.datetime(2022, 2, 9, tz="Asia/Shanghai"),
...                  Actor("property", "陈"), community="金峰小区")
>>> never_inspected(duty_status(plan, towns, [sub], at), "self_inspected")
[('金峰镇', '华侨新村')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import Actor
from fireflow.model import TicketState
from fireflow.plan import PhaseDuty, Plan
from fireflow.rules.reporting import (
    Obligation,
    ObligationStatus,
    Submission,
    check_towns,
    obligation_status,
    obligations,
)

if TYPE_CHECKING:
    from fireflow.calendar import Calendar

__all__ = [
    "INSPECTION_SOURCES",
    "all_obligations",
    "duty_obligations",
    "duty_status",
    "meeting_intervals",
    "never_inspected",
]

#: The duty each ticket source proves done: a hazard recorded by the property company's
#: self-inspection in the self-inspection phase shows the community was self-inspected
#: (R-OBL-SELF-INSPECT), one recorded by a town inspection in the rectification phase
#: that the town inspected it (R-OBL-TOWN-INSPECT).
INSPECTION_SOURCES: Mapping[str, str] = {
    "self_inspection": "self_inspected",
    "town_inspection": "town_inspected",
}


def meeting_intervals(plan: Plan, duty: PhaseDuty) -> list[tuple[date, date]]:
    """The windows of a recurring duty: ``every`` days from its phase's start, the last cut.

    >>> from fireflow import load_plan
    >>> plan = load_plan("changle-2022")
    >>> jm = next(d for d in plan.duties if d.id == "joint_meeting")
    >>> [(a.isoformat(), b.isoformat()) for a, b in meeting_intervals(plan, jm)][-1]
    ('2022-12-15', '2022-12-31')
    """
    phase = plan.phase(duty.phase)
    if duty.every is None:
        return [(phase.start, phase.end)]
    step = int(getattr(plan.settings, duty.every))
    out = []
    start = phase.start
    while start <= phase.end:
        end = min(phase.end, start + timedelta(days=step - 1))
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def _duty_obligation(
    plan: Plan,
    duty: PhaseDuty,
    cal: Calendar,
    town: str,
    community: str | None,
    window: tuple[date, date],
    report_id: str,
    name_suffix: tuple[str, str],
) -> Obligation:
    last = duty.due if duty.due is not None else window[1]
    due = cal.adjust(last)
    rules = [duty.rule]
    if due != last:
        rules.append(plan.cite("R-DUE-HOLIDAY"))
    return Obligation(
        report_id=report_id,
        town=town,
        community=community,
        senders=duty.senders,
        recipients=duty.recipients,
        name_zh=duty.name.zh + name_suffix[0],
        name_en=duty.name.en + name_suffix[1],
        nominal=last,
        due=due,
        earliest=None,
        phase=duty.phase,
        rule=duty.rule,
        clause=duty.clause,
        rules=tuple(rules),
        contents_zh=tuple(c.zh for c in duty.contents),
        contents_en=tuple(c.en for c in duty.contents),
        named_person=duty.named_person,
        kind="duty",
        default_due=duty.due is None,
        public=duty.public,
    )


def duty_obligations(
    plan: Plan, towns: Mapping[str, Iterable[str]], calendar: Calendar | None = None
) -> list[Obligation]:
    """Every phase duty of ``plan`` as obligations (``towns``: town id -> community ids).

    ``per: town`` duties give one per town, ``per: community`` one per community,
    ``per: district`` one for the district (its ``town`` is the district's Chinese
    name).  A recurring duty (``every``) gives one per interval, ids
    ``<duty>.<n>`` from 1.  Sorted by due date, id, town and community.
    """
    cal = calendar or plan.calendar
    checked = check_towns(towns)
    out: list[Obligation] = []
    for duty in plan.duties:
        windows = meeting_intervals(plan, duty)
        for n, window in enumerate(windows, start=1):
            rid = duty.id if duty.every is None else f"{duty.id}.{n}"
            suffix = ("", "") if duty.every is None else (f"（第{n}期）", f" (#{n})")
            if duty.per == "district":
                places: list[tuple[str, str | None]] = [(plan.district.zh, None)]
            elif duty.per == "community":
                places = [(t, c) for t in sorted(checked) for c in checked[t]]
            else:
                places = [(t, None) for t in sorted(checked)]
            out.extend(
                _duty_obligation(plan, duty, cal, t, c, window, rid, suffix) for t, c in places
            )
    out.sort(key=lambda o: (o.due, o.report_id, o.town, o.community or ""))
    return out


def all_obligations(
    plan: Plan, towns: Mapping[str, Iterable[str]], calendar: Calendar | None = None
) -> list[Obligation]:
    """The reports (:func:`~fireflow.rules.reporting.obligations`) and the phase duties."""
    cal = calendar or plan.calendar
    out = [*obligations(plan, towns, cal), *duty_obligations(plan, towns, cal)]
    out.sort(key=lambda o: (o.due, o.report_id, o.town, o.community or ""))
    return out


def _placed(plan: Plan, obs: Sequence[Obligation], s: Submission) -> Submission:
    """A recurring duty's record (``joint_meeting``) goes to the interval of its date."""
    duty = next((d for d in plan.duties if d.id == s.report_id and d.every is not None), None)
    if duty is None:
        return s
    day = plan.local_date(s.submitted_at, "submitted_at")
    windows = meeting_intervals(plan, duty)
    n = next((i for i, (a, b) in enumerate(windows, start=1) if a <= day <= b), None)
    if n is None:
        n = 1 if day < windows[0][0] else len(windows)
    rid = f"{duty.id}.{n}"
    if not any(o.report_id == rid for o in obs):  # pragma: no cover (built together)
        return s
    return Submission(
        report_id=rid,
        town=s.town,
        submitted_at=s.submitted_at,
        by=s.by,
        contents=s.contents,
        community=s.community,
        submission_id=s.submission_id,
        note=s.note,
    )


def _from_tickets(plan: Plan, tickets: Iterable[TicketState]) -> list[Submission]:
    """Inspection records proven by tickets (:data:`INSPECTION_SOURCES`), in ticket order."""
    out = []
    for t in sorted(tickets, key=lambda x: x.ticket_id):
        if not isinstance(t, TicketState):
            raise InvalidArgument("tickets", f"expected TicketState, got {type(t).__name__}")
        duty_id = INSPECTION_SOURCES.get(t.source)
        duty = next((d for d in plan.duties if d.id == duty_id), None)
        if duty is None or t.reported_at is None:
            continue
        if plan.local_date(t.reported_at, "reported_at") not in plan.phase(duty.phase):
            continue
        out.append(
            Submission(
                report_id=duty.id,
                town=t.town,
                submitted_at=t.reported_at,
                by=Actor(duty.senders[0]),
                community=t.community,
                submission_id=f"ticket:{t.ticket_id}",
                note=f"隐患 {t.ticket_id} 的登记记录 recorded by ticket {t.ticket_id}",
            )
        )
    return out


def duty_status(
    plan: Plan,
    towns: Mapping[str, Iterable[str]],
    submissions: Iterable[Submission],
    at: datetime,
    calendar: Calendar | None = None,
    tickets: Iterable[TicketState] = (),
) -> list[ObligationStatus]:
    """The status of every phase duty at the aware instant ``at``.

    ``submissions`` are the records of the acts (report submissions with the
    duty's id; reports are ignored here); ``tickets`` add the inspections they
    prove (:data:`INSPECTION_SOURCES`: a ticket recorded in the duty's phase from
    that source, in that community).  Wrong senders do not count, as for reports.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    cal = calendar or plan.calendar
    obs = duty_obligations(plan, towns, cal)
    duty_ids = {d.id for d in plan.duties}
    mine = []
    for s in submissions:
        if isinstance(s, Submission) and s.report_id.split(".")[0] not in duty_ids:
            continue  # a report: judged by reporting.status
        mine.append(_placed(plan, obs, s) if isinstance(s, Submission) else s)
    known = {(o.town, o.community or "") for o in obs}
    proven = [
        s for s in _from_tickets(plan, tickets) if (s.town, s.community or "") in known
    ]  # a ticket of a community outside ``towns`` proves nothing here
    return obligation_status(plan, obs, [*mine, *proven], at, cal)


def never_inspected(statuses: Iterable[ObligationStatus], duty: str) -> list[tuple[str, str]]:
    """The (town, community) pairs with no counted record of ``duty`` (coverage), sorted."""
    return sorted(
        (s.obligation.town, s.obligation.community or "")
        for s in statuses
        if s.obligation.report_id == duty and s.submissions == 0
    )
