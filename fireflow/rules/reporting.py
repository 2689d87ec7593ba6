"""Report obligations (报送义务) per town, their status at a moment, and escalations.

Every report the plan asks for becomes one :class:`Obligation` per sender:

* ``ledger`` (R-DUE-LEDGER, 五(二)): Annex 1 and the ledger, sent by the property
  companies, so one per community;
* ``dossier`` (R-DUE-DOSSIER, 五(三)), ``summary`` (R-DUE-SUMMARY, 六(六)) and
  ``progress.<phase>`` (R-DUE-PROGRESS, 六(六)): one per town.

Due dates come from :meth:`fireflow.plan.Plan.deadlines` (the calendar, the
inclusive reading and the holiday policy).  Submissions are recorded as
:class:`Submission` records; :func:`status` says, at an aware instant, which
obligations were met on time, late, are missing or not yet due (late means
after the end of the due day, :meth:`fireflow.calendar.Calendar.is_late`), and
:func:`report_escalations` turns late and missing reports into escalations
under R-ESC-OFFICIAL and incomplete summaries under R-DUE-SUMMARY.

>>> import pendulum
>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> towns = {"金峰镇": ["金峰小区"]}
>>> at = pendulum.datetime(2022, 12, 12, 18, tz="Asia/Shanghai")
>>> sub = Submission("summary", "金峰镇", at, Actor("town", "张"),
...                  contents=("专项整治工作情况", "解决的突出问题"))
>>> s = {(x.obligation.report_id, x.obligation.town): x for x in status(plan, towns, [sub], at)}
>>> s["summary", "金峰镇"].state, s["summary", "金峰镇"].missing_contents
('on_time', ('发现的典型案例', '整治前后对比照片'))
>>> s["progress.consolidation", "金峰镇"].state
'not_yet_due'
>>> [e.rule for e in report_escalations(plan, status(plan, towns, [sub], at))][:2]
['R-ESC-OFFICIAL', 'R-ESC-OFFICIAL']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

import attrs

from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import Actor, check_json_value, parse_time
from fireflow.plan import Plan
from fireflow.rules.escalation import Escalation

if TYPE_CHECKING:
    from fireflow.calendar import Calendar
    from fireflow.plan import Deadline

__all__ = [
    "STATES",
    "DueItem",
    "Obligation",
    "ObligationStatus",
    "ReportEscalation",
    "State",
    "Submission",
    "deadlines_on",
    "obligations",
    "report_escalations",
    "status",
]

State = Literal["on_time", "late", "missing", "not_yet_due"]
#: The states of an obligation, with their Chinese labels.
STATES: Mapping[str, str] = {
    "on_time": "按时报送",
    "late": "逾期报送",
    "missing": "逾期未报",
    "not_yet_due": "未到期",
}


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# =========================================================================== #
# Obligations


@attrs.frozen
class Obligation:
    """One report one sender owes: the report id, the town (and community), due dates.

    ``community`` is set when the senders are community-level parties (the
    property companies of the ledger).  ``contents_zh``/``contents_en`` are the
    minimum contents the plan requires (等内容).  ``rules`` are the deadline's
    rules (the report rule, R-DUE-INCLUSIVE, R-DUE-HOLIDAY when it moved).
    """

    report_id: str
    town: str
    community: str | None
    senders: tuple[str, ...]
    recipients: tuple[str, ...]
    name_zh: str
    name_en: str
    nominal: date
    due: date
    earliest: date | None
    phase: str | None
    rule: str
    clause: str
    rules: tuple[str, ...]
    contents_zh: tuple[str, ...] = ()
    contents_en: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """``(report_id, town, community or "")``: the obligation's identity."""
        return (self.report_id, self.town, self.community or "")


def _per_community(plan: Plan, senders: Sequence[str]) -> bool:
    return any(plan.agency(a).level == "community" for a in senders)


def _check_towns(towns: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    if not isinstance(towns, Mapping):
        raise InvalidArgument("towns", "expected a mapping of town id to community ids")
    out: dict[str, tuple[str, ...]] = {}
    for town, communities in towns.items():
        if not isinstance(town, str) or not town.strip():
            raise InvalidArgument("towns", f"a town id must be non-empty text, got {town!r}")
        check_json_value(town, "towns")
        if isinstance(communities, str):
            raise InvalidArgument(f"towns.{town}", "expected a list of community ids")
        items = []
        for c in communities:
            if not isinstance(c, str) or not c.strip():
                raise InvalidArgument(f"towns.{town}", f"community ids are text, got {c!r}")
            check_json_value(c, f"towns.{town}")
            items.append(_nfc(c))
        if len(set(items)) != len(items):
            raise InvalidArgument(f"towns.{town}", "a community is listed twice")
        out[_nfc(town)] = tuple(sorted(items))
    return out


def obligations(
    plan: Plan, towns: Mapping[str, Iterable[str]], calendar: Calendar | None = None
) -> list[Obligation]:
    """Every report obligation of every town (``towns``: town id -> its community ids).

    Sorted by due date, report id, town and community.
    """
    checked = _check_towns(towns)
    out: list[Obligation] = []
    fixed = {d.id: d for d in plan.deadlines_fixed}
    for d in plan.deadlines(calendar):
        spec = fixed.get(d.id)
        contents = spec.contents if spec is not None else ()
        for town in sorted(checked):
            if _per_community(plan, d.senders):
                out.extend(_obligation(d, town, community, contents) for community in checked[town])
            else:
                out.append(_obligation(d, town, None, contents))
    out.sort(key=lambda o: (o.due, o.report_id, o.town, o.community or ""))
    return out


def _obligation(d: Deadline, town: str, community: str | None, contents: Any) -> Obligation:
    return Obligation(
        report_id=d.id,
        town=town,
        community=community,
        senders=d.senders,
        recipients=d.recipients,
        name_zh=d.name_zh,
        name_en=d.name_en,
        nominal=d.nominal,
        due=d.due,
        earliest=d.earliest,
        phase=d.phase,
        rule=d.rule,
        clause=d.clause,
        rules=d.rules,
        contents_zh=tuple(c.zh for c in contents),
        contents_en=tuple(c.en for c in contents),
    )


# =========================================================================== #
# Submissions


def _aware(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument(
            "submitted_at", f"expected an aware datetime, got {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime("submitted_at")
    return value


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidArgument("contents", "expected a list of content items, got one text")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidArgument(f"contents[{i}]", f"expected text, got {type(item).__name__}")
        check_json_value(item, f"contents[{i}]")
        out.append(_nfc(item))
    return tuple(out)


@attrs.frozen
class Submission:
    """A report handed in (报送记录): what, by which town (and community), when, by whom.

    ``contents`` lists the content items the report covers (for the summary,
    the items of 六(六) by their Chinese or English names); ``submitted_at``
    must be time-zone aware.
    """

    report_id: str
    town: str
    submitted_at: datetime = attrs.field(converter=_aware)
    by: Actor
    contents: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    community: str | None = None
    submission_id: str = ""
    note: str = ""

    def to_data(self) -> dict[str, Any]:
        """Plain JSON data (the time as ISO-8601 with its offset)."""
        return {
            "report_id": self.report_id,
            "town": self.town,
            "community": self.community,
            "submitted_at": self.submitted_at.isoformat(),
            "contents": list(self.contents),
            "by": {"agency": self.by.agency, "person": self.by.person},
            "submission_id": self.submission_id,
            "note": self.note,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Submission:
        """Rebuild a submission from :meth:`to_data` output (or parsed JSON)."""
        if not isinstance(data, Mapping):
            raise InvalidArgument("submission", "expected a JSON object")
        for key in ("report_id", "town", "submitted_at"):
            if not isinstance(data.get(key), str):
                raise InvalidArgument(key, "missing or not text in submission data")
        by = data.get("by")
        if not isinstance(by, Mapping) or not isinstance(by.get("agency"), str):
            raise InvalidArgument("by", "expected {agency, person}")
        community = data.get("community")
        if community is not None and not isinstance(community, str):
            raise InvalidArgument("community", "expected text or null")
        return cls(
            report_id=data["report_id"],
            town=data["town"],
            submitted_at=parse_time(data["submitted_at"], "submitted_at"),
            contents=data.get("contents") or (),
            by=Actor(by["agency"], str(by.get("person", ""))),
            community=community,
            submission_id=str(data.get("submission_id", "")),
            note=str(data.get("note", "")),
        )


# =========================================================================== #
# Status


@attrs.frozen
class ObligationStatus:
    """An obligation at a moment.

    ``state``: ``on_time`` (first submission before the end of the due day),
    ``late`` (after it), ``missing`` (none, and the due day is over),
    ``not_yet_due`` (none yet, the due day not over).  ``early`` marks a first
    submission before the earliest day of the reading (R-DUE-PROGRESS
    ``within``).  ``missing_contents`` lists required items no submission so
    far covers (R-DUE-SUMMARY).  ``rules`` explains the verdict.
    """

    obligation: Obligation
    state: State
    submitted_at: datetime | None
    submissions: int
    early: bool
    missing_contents: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def state_zh(self) -> str:
        """The state in Chinese (按时报送, 逾期报送, 逾期未报, 未到期)."""
        return STATES[self.state]


def _covers(item_zh: str, item_en: str, given: set[str]) -> bool:
    return _nfc(item_zh).strip() in given or item_en.strip().casefold() in given


def status(
    plan: Plan,
    towns: Mapping[str, Iterable[str]],
    submissions: Iterable[Submission],
    at: datetime,
    calendar: Calendar | None = None,
) -> list[ObligationStatus]:
    """The status of every obligation at the aware instant ``at``.

    Submissions made after ``at`` are not counted (the view is "as of"
    ``at``).  A submission naming an unknown report, town or community is
    refused with :class:`InvalidArgument` naming ``submissions[i].<field>``.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    cal = calendar or plan.calendar
    obs = obligations(plan, towns, cal)
    index = {o.key: o for o in obs}
    report_ids = {o.report_id for o in obs}
    per_community = {o.report_id for o in obs if o.community is not None}
    towns_known = {o.town for o in obs}
    got: dict[tuple[str, str, str], list[Submission]] = {}
    for i, s in enumerate(submissions):
        where = f"submissions[{i}]"
        if not isinstance(s, Submission):
            raise InvalidArgument(where, f"expected a Submission, got {type(s).__name__}")
        if s.report_id not in report_ids:
            raise InvalidArgument(
                f"{where}.report_id", f"unknown report {s.report_id!r}; known: "
                + ", ".join(sorted(report_ids))
            )  # fmt: skip
        if s.town not in towns_known:
            raise InvalidArgument(f"{where}.town", f"unknown town {s.town!r}")
        if s.report_id in per_community and s.community is None:
            raise InvalidArgument(
                f"{where}.community", f"{s.report_id!r} is sent per community: name it"
            )
        if s.report_id not in per_community and s.community is not None:
            raise InvalidArgument(
                f"{where}.community", f"{s.report_id!r} is a town report: no community"
            )
        key = (s.report_id, s.town, s.community or "")
        if key not in index:
            raise InvalidArgument(
                f"{where}.community", f"unknown community {s.community!r} of {s.town!r}"
            )
        try:
            plan.agency(s.by.agency)
        except InvalidArgument:
            raise InvalidArgument(f"{where}.by.agency", f"unknown agency {s.by.agency!r}") from None
        if s.submitted_at <= at:
            got.setdefault(key, []).append(s)
    out: list[ObligationStatus] = []
    for o in obs:
        subs = sorted(got.get(o.key, []), key=lambda s: (s.submitted_at, s.submission_id))
        first = subs[0].submitted_at if subs else None
        state: State
        rules = list(o.rules)
        if first is not None:
            state = "late" if cal.is_late(o.due, first) else "on_time"
        else:
            state = "missing" if cal.is_late(o.due, at) else "not_yet_due"
        if state in ("late", "missing"):
            rules.append(plan.cite("R-ESC-OFFICIAL"))
        early = bool(
            first is not None
            and o.earliest is not None
            and plan.local_date(first, "submitted_at") < o.earliest
        )
        given: set[str] = set()
        for s in subs:
            for item in s.contents:
                given.add(item.strip())
                given.add(item.strip().casefold())
        missing = tuple(
            zh
            for zh, en in zip(o.contents_zh, o.contents_en, strict=True)
            if not _covers(zh, en, given)
        )
        if missing and (subs or state == "missing"):
            rules.append(o.rule)
        out.append(
            ObligationStatus(
                obligation=o,
                state=state,
                submitted_at=first,
                submissions=len(subs),
                early=early,
                missing_contents=missing,
                rules=tuple(dict.fromkeys(rules)),
            )
        )
    return out


# =========================================================================== #
# Escalations


@attrs.frozen
class ReportEscalation(Escalation):
    """An escalation about a report: which report, town and community it concerns."""

    report_id: str
    town: str
    community: str | None
    rules: tuple[str, ...]


def report_escalations(plan: Plan, statuses: Iterable[ObligationStatus]) -> list[ReportEscalation]:
    """Escalations for late, missing and incomplete reports, in the order of ``statuses``.

    Late or missing (R-ESC-OFFICIAL, 六(四) 慢作为/不作为): the lead departments
    (``settings.accountability_lead``) refer the sender to the efficiency office,
    so the targets are the leads then ``efficiency``.  A submitted report that
    lacks a required content item (R-DUE-SUMMARY for the summary) goes back to
    the report's recipients.
    """
    leads = plan.settings.accountability_lead
    official = tuple(dict.fromkeys((*leads, plan.settings.accountability_office)))
    out: list[ReportEscalation] = []
    for s in statuses:
        o = s.obligation
        who = o.town + (f"/{o.community}" if o.community else "")
        if s.state in ("late", "missing"):
            zh = "逾期报送" if s.state == "late" else "逾期未报送"
            en = "sent late" if s.state == "late" else "not sent"
            out.append(
                ReportEscalation(
                    kind=f"report_{s.state}",
                    targets=official,
                    rule=plan.cite("R-ESC-OFFICIAL"),
                    reason_zh=f"{who}：{o.name_zh}{zh}（截止 {o.due}），"
                    "由牵头部门转报效能部门督导问责",
                    reason_en=f"{who}: {o.name_en} {en} (due {o.due}); "
                    "the lead departments refer it to the efficiency office",
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    rules=(plan.cite("R-ESC-OFFICIAL"), *o.rules),
                )
            )
        if s.missing_contents and s.submissions:
            out.append(
                ReportEscalation(
                    kind="report_incomplete",
                    targets=o.recipients,
                    rule=o.rule,
                    reason_zh=f"{who}：{o.name_zh}缺少必备内容：{'、'.join(s.missing_contents)}",
                    reason_en=f"{who}: {o.name_en} lacks required contents "
                    f"({len(s.missing_contents)} item(s))",
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    rules=(o.rule,),
                )
            )
    return out


# =========================================================================== #
# What is due on a day (plan level)


@attrs.frozen
class DueItem:
    """A deadline of the plan seen from a day.

    ``state``: ``upcoming`` (before its window), ``open`` (the window is open:
    from ``earliest`` or, without one, from the start of the phase it falls
    in), ``due_today`` (the last day), ``overdue`` (the due day is over).
    """

    deadline: Deadline
    state: Literal["upcoming", "open", "due_today", "overdue"]
    days_left: int

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data."""
        return {**self.deadline.to_data(), "state": self.state, "days_left": self.days_left}


def deadlines_on(plan: Plan, day: date, calendar: Calendar | None = None) -> list[DueItem]:
    """Every deadline of the plan as seen on ``day``, in date order.

    >>> from fireflow import load_plan
    >>> items = deadlines_on(load_plan("changle-2022"), date(2022, 3, 15))
    >>> [(i.deadline.id, i.state) for i in items][:3]
    [('progress.mobilization', 'overdue'), ('progress.self_inspection', 'overdue'),
     ('ledger', 'due_today')]
    """
    if isinstance(day, datetime) or not isinstance(day, date):
        raise InvalidArgument("day", "expected a date")
    out: list[DueItem] = []
    for d in plan.deadlines(calendar):
        opens = d.earliest
        if opens is None:
            phase = plan.phase_on(d.nominal)
            opens = phase.start if phase is not None else d.nominal
        if day > d.due:
            state: Literal["upcoming", "open", "due_today", "overdue"] = "overdue"
        elif day == d.due:
            state = "due_today"
        elif day >= opens:
            state = "open"
        else:
            state = "upcoming"
        out.append(DueItem(d, state, (d.due - day).days))
    return out
