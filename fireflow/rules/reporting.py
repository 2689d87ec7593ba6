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
    "SubmissionRefused",
    "check_submission",
    "check_towns",
    "deadlines_on",
    "obligation_status",
    "obligations",
    "report_escalations",
    "sender_kind",
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
    named_person: bool = False
    """The sender names the person responsible (专人, 六(六))."""
    kind: Literal["report", "duty"] = "report"
    """``report``: a report of ``deadlines``/``progress_reports``; ``duty``: a phase duty."""
    default_due: bool = False
    """The plan gives no date: ``due`` is the end of the phase (a default reading)."""
    public: bool = False
    """The record is published (一公开)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """``(report_id, town, community or "")``: the obligation's identity."""
        return (self.report_id, self.town, self.community or "")


def _per_community(plan: Plan, senders: Sequence[str]) -> bool:
    return any(plan.agency(a).level == "community" for a in senders)


def check_towns(towns: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """``towns`` (town id -> community ids) checked and normalised (NFC, sorted).

    A malformed value raises :class:`InvalidArgument` naming ``towns`` or ``towns.<town>``.
    """
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
    checked = check_towns(towns)
    out: list[Obligation] = []
    fixed = {d.id: d for d in plan.deadlines_fixed}
    for d in plan.deadlines(calendar):
        spec = fixed.get(d.id)
        contents = spec.contents if spec is not None else ()
        named = spec.named_person if spec is not None else plan.progress_reports.named_person
        for town in sorted(checked):
            if _per_community(plan, d.senders):
                out.extend(
                    _obligation(d, town, community, contents, named) for community in checked[town]
                )
            else:
                out.append(_obligation(d, town, None, contents, named))
    out.sort(key=lambda o: (o.due, o.report_id, o.town, o.community or ""))
    return out


def _obligation(
    d: Deadline, town: str, community: str | None, contents: Any, named: bool
) -> Obligation:
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
        named_person=named,
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


class SubmissionRefused(InvalidArgument):
    """A submission that does not count for its obligation (报送主体不符), with the rule.

    ``field`` is ``by.agency`` (a sender the obligation does not name: 五(二) the
    property company sends the ledger, 五(三) the town the dossiers, 六(六) the town
    its progress and summary reports) or ``by.person`` (a report the plan has a named
    person send, 六(六) 专人, names nobody); ``rule`` the obligation's rule;
    ``report_id`` the obligation.
    """

    def __init__(self, field: str, message: str, *, rule: str, report_id: str) -> None:
        self.report_id = report_id
        super().__init__(field, message, rule=rule)


def check_submission(plan: Plan, obligation: Obligation, submission: Submission) -> None:
    """Refuse a submission that cannot meet ``obligation``: :class:`SubmissionRefused`.

    The sender's agency must be one of the obligation's senders (a submission from
    anyone else does not count), and where the plan has a named person send it
    (``named_person``, 六(六) 安排专人), ``by.person`` must name them.

    >>> import pendulum
    >>> from fireflow import load_plan
    >>> plan = load_plan("changle-2022")
    >>> ledger = next(o for o in obligations(plan, {"金峰镇": ["金峰小区"]})
    ...               if o.report_id == "ledger")
    >>> at = pendulum.datetime(2022, 3, 1, 10, tz="Asia/Shanghai")
    >>> check_submission(plan, ledger, Submission("ledger", "金峰镇", at, Actor("fire", "王"),
    ...                                           community="金峰小区"))
    Traceback (most recent call last):
    ...
    fireflow.rules.reporting.SubmissionRefused: by.agency: ... [R-DUE-LEDGER]
    """
    agency = submission.by.agency
    if agency not in obligation.senders:
        raise SubmissionRefused(
            "by.agency",
            f"{agency!r} may not send {obligation.report_id!r}: only "
            f"{', '.join(obligation.senders)} (报送主体不符，不计为报送: "
            f"{obligation.name_zh}应由{'、'.join(_agency_names(plan, obligation.senders))}报送)",
            rule=obligation.rule,
            report_id=obligation.report_id,
        )
    if obligation.named_person and not submission.by.person.strip():
        raise SubmissionRefused(
            "by.person",
            f"{obligation.report_id!r} is sent by a named person: give by.person (须写明报送专人)",
            rule=obligation.rule,
            report_id=obligation.report_id,
        )


def _agency_names(plan: Plan, ids: Iterable[str]) -> list[str]:
    out = []
    for a in ids:
        try:
            out.append(plan.agency(a).name.zh)
        except InvalidArgument:
            out.append(a)
    return out


def sender_kind(plan: Plan, obligation: Obligation) -> Literal["property", "official"]:
    """Who answers for a missed obligation: a property company, or a government unit.

    ``property`` when every sender is one of ``settings.property_companies`` (六(四)
    物业企业工作配合落实不力: R-ESC-PROPERTY, to ``settings.property_escalation_to``),
    else ``official`` (R-ESC-OFFICIAL: the lead departments refer it to the
    efficiency office).
    """
    senders = obligation.senders
    prop = plan.settings.property_companies
    return "property" if senders and all(a in prop for a in senders) else "official"


@attrs.frozen
class ObligationStatus:
    """An obligation at a moment.

    ``state``: ``on_time`` (first submission before the end of the due day),
    ``late`` (after it), ``missing`` (none, and the due day is over),
    ``not_yet_due`` (none yet, the due day not over).  ``early`` marks a first
    submission before the earliest day of the reading (R-DUE-PROGRESS
    ``within``).  ``missing_contents`` lists required items no submission so
    far covers (R-DUE-SUMMARY).  ``rules`` explains the verdict.
    ``wrong_senders`` are the agencies whose submissions were refused
    (:func:`check_submission`, they do not count); ``responsible`` the person
    named by the first counted submission; ``unnamed`` is true when the plan
    asks for a named person and the counted submission names none.
    """

    obligation: Obligation
    state: State
    submitted_at: datetime | None
    submissions: int
    early: bool
    missing_contents: tuple[str, ...]
    rules: tuple[str, ...]
    wrong_senders: tuple[str, ...] = ()
    responsible: str = ""
    unnamed: bool = False

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
    """The status of every report obligation at the aware instant ``at``.

    Submissions made after ``at`` are not counted (the view is "as of"
    ``at``).  A submission naming an unknown report, town or community is
    refused with :class:`InvalidArgument` naming ``submissions[i].<field>``;
    one from a sender the obligation does not name does not count (it is
    listed in ``wrong_senders``, see :func:`check_submission`).
    """
    cal = calendar or plan.calendar
    return obligation_status(plan, obligations(plan, towns, cal), submissions, at, cal)


def obligation_status(
    plan: Plan,
    obs: Sequence[Obligation],
    submissions: Iterable[Submission],
    at: datetime,
    calendar: Calendar | None = None,
) -> list[ObligationStatus]:
    """:func:`status` over given obligations (reports, phase duties or both), in their order."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    cal = calendar or plan.calendar
    index = {o.key: o for o in obs}
    report_ids = {o.report_id for o in obs}
    per_community = {o.report_id for o in obs if o.community is not None}
    towns_known = {o.town for o in obs}
    got: dict[tuple[str, str, str], list[Submission]] = {}
    wrong: dict[tuple[str, str, str], list[str]] = {}
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
        if s.submitted_at > at:
            continue
        if s.by.agency not in index[key].senders:
            wrong.setdefault(key, []).append(s.by.agency)
            continue
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
            esc = "R-ESC-PROPERTY" if sender_kind(plan, o) == "property" else "R-ESC-OFFICIAL"
            rules.append(plan.cite(esc))
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
        wrong_senders = tuple(dict.fromkeys(wrong.get(o.key, [])))
        if wrong_senders:
            rules.append(o.rule)
        responsible = subs[0].by.person.strip() if subs else ""
        out.append(
            ObligationStatus(
                obligation=o,
                state=state,
                submitted_at=first,
                submissions=len(subs),
                early=early,
                missing_contents=missing,
                rules=tuple(dict.fromkeys(rules)),
                wrong_senders=wrong_senders,
                responsible=responsible,
                unnamed=bool(subs) and o.named_person and not responsible,
            )
        )
    return out


# =========================================================================== #
# Escalations


@attrs.frozen
class ReportEscalation(Escalation):
    """An escalation about a report: which report, town and community it concerns.

    ``accountable`` names who answers for it (the sender kinds, with the town or
    community), ``referred_by`` the lead departments that refer an official case
    and ``referred_to`` the office they refer it to (both empty for a property case
    and for a notice that goes back to the recipients).
    """

    report_id: str
    town: str
    community: str | None
    rules: tuple[str, ...]
    accountable: tuple[str, ...] = ()
    referred_by: tuple[str, ...] = ()
    referred_to: str = ""


def report_escalations(plan: Plan, statuses: Iterable[ObligationStatus]) -> list[ReportEscalation]:
    """Escalations for late, missing, wrong-sender and incomplete reports, in order.

    Late or missing (六(四) 慢作为/不作为): a property company's report (the
    ledger, :func:`sender_kind`) goes to ``settings.property_escalation_to``
    under R-ESC-PROPERTY (由区住建局、区消防救援大队…查处); a town's or a
    department's is an official case under R-ESC-OFFICIAL: the lead departments
    (``settings.accountability_lead``) refer it (转报) to the efficiency office
    (``settings.accountability_office``), so the targets are the leads then the
    office.  A submission from the wrong sender goes back to the recipients
    citing the report's rule (``report_wrong_sender``); a report that lacks a
    required content item (R-DUE-SUMMARY for the summary) too.
    """
    leads = plan.settings.accountability_lead
    office = plan.settings.accountability_office
    official = tuple(dict.fromkeys((*leads, office)))
    prop = plan.settings.property_escalation_to
    out: list[ReportEscalation] = []
    for s in statuses:
        o = s.obligation
        who = o.town + (f"/{o.community}" if o.community else "")
        back_to = o.recipients or leads  # a duty with no named recipient: the lead departments
        done_zh, done_en = ("报送", "sent") if o.kind == "report" else ("完成", "done")
        if s.state in ("late", "missing"):
            zh = f"逾期{done_zh}" if s.state == "late" else f"逾期未{done_zh}"
            en = f"{done_en} late" if s.state == "late" else f"not {done_en}"
            prop_case = sender_kind(plan, o) == "property"
            rule = plan.cite("R-ESC-PROPERTY" if prop_case else "R-ESC-OFFICIAL")
            if prop_case:
                then_zh = "物业企业配合落实不力，由区住建局、区消防救援大队依法查处"
                then_en = "the property company's poor cooperation goes to housing and fire"
            else:
                then_zh = "由牵头部门转报效能部门督导问责"
                then_en = "the lead departments refer it to the efficiency office"
            out.append(
                ReportEscalation(
                    kind=f"report_{s.state}",
                    targets=prop if prop_case else official,
                    rule=rule,
                    reason_zh=f"{who}：{o.name_zh}{zh}（截止 {o.due}），{then_zh}",
                    reason_en=f"{who}: {o.name_en} {en} (due {o.due}); {then_en}",
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    rules=(rule, *o.rules),
                    accountable=o.senders,
                    referred_by=() if prop_case else leads,
                    referred_to="" if prop_case else office,
                )
            )
        if s.wrong_senders:
            wrong_zh = "、".join(_agency_names(plan, s.wrong_senders))
            right_zh = "、".join(_agency_names(plan, o.senders))
            out.append(
                ReportEscalation(
                    kind="report_wrong_sender",
                    targets=back_to,
                    rule=o.rule,
                    reason_zh=f"{who}：{o.name_zh}由{wrong_zh}{done_zh}，主体不符，不予计入"
                    f"（应由{right_zh}{done_zh}）",
                    reason_en=f"{who}: {o.name_en} sent by {', '.join(s.wrong_senders)}, "
                    f"not by {', '.join(o.senders)}: it does not count",
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    rules=(o.rule,),
                    accountable=o.senders,
                )
            )
        if s.missing_contents and s.submissions:
            out.append(
                ReportEscalation(
                    kind="report_incomplete",
                    targets=back_to,
                    rule=o.rule,
                    reason_zh=f"{who}：{o.name_zh}缺少必备内容：{'、'.join(s.missing_contents)}",
                    reason_en=f"{who}: {o.name_en} lacks required contents "
                    f"({len(s.missing_contents)} item(s))",
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    rules=(o.rule,),
                    accountable=o.senders,
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
