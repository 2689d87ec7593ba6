"""Scorecards for the annual assessments (六(四)), from verified history.

六(四) makes the campaign a major item of each property company's annual star
rating (星级评价, R-ESC-PROPERTY) and of the annual fire-work assessment of
the units concerned (年度消防工作考核, R-ESC-OFFICIAL).  :func:`scorecards`
gives both, as of an aware instant, from the event history (and the report and
duty records):

* ``companies``: one row per property company (物业服务企业);
* ``units``: one row per town (乡镇（街道）) and per department (区直部门).

Every column cites the rules behind it (:data:`COLUMNS`).  Who a figure
counts against:

* hazards and rectification figures (on time, late, still overdue, days
  overdue, refusals, failed re-checks): the property company when it is the
  route's rectifier (``settings.property_companies``); the town of every hazard
  in its area (属地, 四(三)); a department when it is the route's rectifier or
  lead;
* late and missing reports and duties (:mod:`fireflow.rules.reporting`,
  :mod:`fireflow.rules.obligations`): their sender (the company of the
  community for the ledger and the notices, the town for its reports, the
  lead departments for a district duty);
* referrals (events of kind ``refer``, payload ``case``, ``accountable``,
  ``persons``, ``reason_zh``) and their outcomes (``decide_referral``, payload
  ``referral`` = the refer event's id, ``outcome``): every accountable agency,
  placed as above.

The company of a community is the ``company`` field of its ticket's report
payload where present, else ``companies`` (community id or name -> company,
e.g. from the Annex 4 population file, :func:`fireflow.sim.population.load_population`);
a community with neither is shown as ``未登记物业企业（community）`` rather
than guessed.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("T1", plan)
>>> at = pendulum.datetime(2022, 4, 1, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", "李", community="金峰小区", town="金峰镇",
...     category="fire_lane_vehicle", subtype="private_car", location="inside",
...     source="town_inspection")
>>> _ = t.command("route", at, "town"); _ = t.command("set_deadline", at, "town")
>>> cards = scorecards(t.events, plan, at.add(days=10), companies={"金峰小区": "榕城物业"})
>>> row = cards.companies.loc["榕城物业"]
>>> t.state.deadline  # 3 days from 04-01 end on 04-04, in the Qingming holiday: 04-06
datetime.date(2022, 4, 6)
>>> int(row["隐患数"]), int(row["逾期未改"]), int(row["逾期天数"])
(1, 1, 5)
>>> cards.units.loc["金峰镇", "单位类别"]
'乡镇（街道）'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import attrs

from fireflow import output
from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import Event
from fireflow.forms import verification_header, verification_text
from fireflow.plan import Plan
from fireflow.rules.obligations import duty_status
from fireflow.rules.reporting import ObligationStatus, Submission, sender_kind, status
from fireflow.ticket import TicketState, fold

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMNS",
    "REFERRAL_KINDS",
    "ScoreColumn",
    "Scorecards",
    "scorecard_csv",
    "scorecard_html",
    "scorecards",
]


@attrs.frozen
class ScoreColumn:
    """A scorecard column: its id, Chinese and English headers, and the rules behind it."""

    id: str
    zh: str
    en: str
    rules: tuple[str, ...]


_REPORT_RULES = (
    "R-DUE-LEDGER", "R-DUE-DOSSIER", "R-DUE-PROGRESS", "R-DUE-SUMMARY", "R-OBL-WORK-PLAN",
    "R-OBL-MOBILIZE", "R-OBL-NOTICE", "R-OBL-SELF-INSPECT", "R-OBL-TOWN-INSPECT",
    "R-OBL-SPOT-CHECK", "R-OBL-CIRCULATE", "R-OBL-MECHANISM", "R-OBL-JOINT-MEETING",
    "R-OBL-PUBLISH",
)  # fmt: skip

#: The figures of every scorecard, in order, each with the rules behind it.
COLUMNS: tuple[ScoreColumn, ...] = (
    ScoreColumn("hazards", "隐患数", "hazards", ("R-TKT-OPEN",)),
    ScoreColumn("on_time", "按期整改", "hazards rectified on time", ("R-TKT-DEADLINE",)),
    ScoreColumn("late", "逾期整改", "hazards rectified late", ("R-TKT-DEADLINE", "R-ESC-OVERDUE")),
    ScoreColumn("overdue_open", "逾期未改", "overdue, not rectified", ("R-ESC-OVERDUE",)),
    ScoreColumn("days_overdue", "逾期天数", "days overdue", ("R-ESC-OVERDUE",)),
    ScoreColumn("refusals", "拒不整改", "refusals", ("R-ESC-REFUSAL",)),
    ScoreColumn("failed_rechecks", "复查不合格", "failed re-checks", ("R-TKT-FAIL",)),
    ScoreColumn("reports_late", "逾期报送", "reports and duties late", _REPORT_RULES),
    ScoreColumn("reports_missing", "逾期未报", "reports and duties missing", _REPORT_RULES),
    ScoreColumn("referrals", "转报问责", "referrals", ("R-ESC-OFFICIAL",)),
    ScoreColumn("referrals_decided", "已作结论", "referrals decided", ("R-ESC-OFFICIAL",)),
    ScoreColumn("outcomes", "问责结论", "referral outcomes", ("R-ESC-OFFICIAL",)),
)
_COUNTS = tuple(c.id for c in COLUMNS if c.id != "outcomes")


_SETTLED = ("rectified", "reinspection_requested", "passed", "signed_off", "archived")


@attrs.frozen
class Scorecards:
    """The two scorecards as DataFrames with Chinese headers (:data:`COLUMNS`).

    ``companies`` is indexed by company (物业服务企业), ``units`` by town or
    department (``单位类别`` says which: 乡镇（街道） or 区直部门); ``at`` is
    the instant they describe.
    """

    companies: pd.DataFrame
    units: pd.DataFrame
    at: datetime

    def rules(self) -> dict[str, tuple[str, ...]]:
        """Each column's Chinese header -> the rule ids behind it."""
        return {c.zh: c.rules for c in COLUMNS}

    def table(self) -> pd.DataFrame:
        """Both cards in one table (for CSV): ``记分表``, ``单位类别``, ``名称``, the figures.

        ``记分表`` is 物业企业星级评价 (R-ESC-PROPERTY) or 年度消防工作考核
        (R-ESC-OFFICIAL); companies first, then towns, then departments.
        """
        import pandas  # noqa: PLC0415 (optional dependency)

        comp = self.companies.copy()
        comp.insert(0, "名称", [str(i) for i in comp.index])
        comp.insert(0, "单位类别", "物业服务企业")
        comp.insert(0, "记分表", "物业企业星级评价")
        units = self.units.copy()
        units.insert(0, "记分表", "年度消防工作考核")
        out: pd.DataFrame = pandas.concat([comp, units], ignore_index=True)
        for c in COLUMNS:
            out[c.zh] = out[c.zh].astype(str if c.id == "outcomes" else "int64")
        for col in ("记分表", "单位类别", "名称"):
            out[col] = out[col].astype(str)
        return out


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self.outcomes: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n


def _company(plan: Plan, community: str, payload_company: str, companies: Mapping[str, str]) -> str:
    if payload_company:
        return payload_company
    found = companies.get(community)
    return found if found else f"未登记物业企业（{community}）"


def _upto(events: Sequence[Event], at: datetime) -> list[Event]:
    out = []
    for e in events:  # seq order: the history as it stood at ``at``
        if e.at > at:
            break
        out.append(e)
    return out


def _deadline(payload: Mapping[str, Any]) -> date | None:
    value = payload.get("deadline")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _is_department(plan: Plan, agency: str) -> bool:
    try:
        level = plan.agency(agency).level
    except InvalidArgument:
        return False
    return level not in ("town", "community", "external")


def scorecards(
    events: Iterable[Event],
    plan: Plan,
    at: datetime,
    *,
    towns: Mapping[str, Iterable[str]] | None = None,
    submissions: Iterable[Submission] = (),
    companies: Mapping[str, str] | None = None,
) -> Scorecards:
    """The property-company and unit scorecards as of the aware instant ``at``.

    ``events`` is the verified history (events after ``at`` are left out);
    ``towns`` (town -> community ids; default: the towns and communities of the
    history) and ``submissions`` are judged for late and missing reports and
    duties; ``companies`` maps a community (id or name) to its property company.
    Requires pandas (``pip install fireflow[forms]``).
    """
    import pandas  # noqa: PLC0415 (optional dependency, imported when a card is built)

    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    companies = dict(companies or {})
    prop = plan.settings.property_companies
    by_ticket: dict[str, list[Event]] = {}
    for e in events:
        if not isinstance(e, Event):
            raise InvalidArgument("events", f"expected Event records, got {type(e).__name__}")
        by_ticket.setdefault(e.ticket_id, []).append(e)
    comp: dict[str, _Tally] = {}
    towns_t: dict[str, _Tally] = {}
    depts: dict[str, _Tally] = {}
    seen_towns: dict[str, set[str]] = {}
    refer_to: dict[str, list[_Tally]] = {}
    from_history: dict[str, str] = {}
    decisions: list[Event] = []
    for tid in sorted(by_ticket):
        evs = _upto(sorted(by_ticket[tid], key=lambda e: e.seq), at)
        if not evs:
            continue
        state: TicketState = _lifecycle_state(evs, tid)
        report = next((e for e in evs if e.kind == "report"), None)
        payload_company = str(report.payload.get("company", "")) if report is not None else ""
        company = _company(plan, state.community, payload_company, companies)
        if payload_company:
            from_history[state.community] = payload_company
        parties: list[_Tally] = []
        if state.town:
            parties.append(towns_t.setdefault(state.town, _Tally()))
            seen_towns.setdefault(state.town, set()).add(state.community)
        r = state.routing
        if r is not None:
            if r.rectifier in prop:
                parties.append(comp.setdefault(company, _Tally()))
            for a in dict.fromkeys((r.rectifier, r.lead)):
                if _is_department(plan, a):
                    parties.append(depts.setdefault(a, _Tally()))
        _ticket_figures(plan, evs, state, at, parties, report is not None)
        for e in evs:
            if e.kind == "refer":
                places = _accountable(plan, e, state, company, comp, towns_t, depts)
                refer_to[e.event_id] = places
                for p in places:
                    p.add("referrals")
            elif e.kind == "decide_referral":
                decisions.append(e)
    for e in decisions:
        ref = e.payload.get("referral")
        outcome = str(e.payload.get("outcome", "")) or "（未写明）"
        for p in refer_to.get(str(ref), []):
            p.add("referrals_decided")
            p.outcomes[outcome] = p.outcomes.get(outcome, 0) + 1
    place_towns = towns if towns is not None else {t: sorted(c) for t, c in seen_towns.items()}
    if place_towns:
        subs = list(submissions)
        statuses = [
            *status(plan, place_towns, [s for s in subs if _is_report(plan, s)], at),
            *duty_status(plan, place_towns, subs, at),
        ]
        _report_figures(plan, statuses, {**companies, **from_history}, comp, towns_t, depts)
    return Scorecards(
        companies=_frame(pandas, {k: comp[k] for k in sorted(comp)}, "物业服务企业", None),
        units=_frame(
            pandas,
            {
                **{k: towns_t[k] for k in sorted(towns_t)},
                **{k: depts[k] for k in sorted(depts)},
            },
            "单位",
            {**dict.fromkeys(towns_t, "乡镇（街道）"), **dict.fromkeys(depts, "区直部门")},
            plan,
        ),
        at=at,
    )


#: The accountability records read by name (the referral contract of 六(四)); the ticket's
#: state is the fold of its other events, so the card reads the same before and after an
#: engine that records them.
REFERRAL_KINDS = ("refer", "decide_referral")


def _lifecycle_state(evs: Sequence[Event], tid: str) -> TicketState:
    if not any(e.kind in REFERRAL_KINDS for e in evs):
        return fold(evs, tid)
    rest = [e for e in evs if e.kind not in REFERRAL_KINDS]
    if not rest:
        return TicketState(ticket_id=tid)
    return fold([attrs.evolve(e, seq=i) for i, e in enumerate(rest, start=1)], tid)


def _is_report(plan: Plan, s: Submission) -> bool:
    return s.report_id.split(".", maxsplit=1)[0] not in {d.id for d in plan.duties}


def _ticket_figures(
    plan: Plan,
    evs: Sequence[Event],
    state: TicketState,
    at: datetime,
    parties: Sequence[_Tally],
    reported: bool,
) -> None:
    cal = plan.calendar
    counts = dict.fromkeys(_COUNTS, 0)
    counts["hazards"] = 1 if reported else 0
    deadline: date | None = None
    rounds = late_rounds = 0
    for e in evs:
        found = _deadline(e.payload)
        if found is not None and e.kind != "mark_overdue":
            deadline = found
        if e.kind == "rectify" and deadline is not None:
            rounds += 1
            if cal.is_late(deadline, e.at):
                late_rounds += 1
                done = plan.local_date(e.at, "at")
                counts["days_overdue"] += max(0, (done - deadline).days)
            deadline = None  # this round is settled; a failed re-check sets a new one
        elif e.kind == "refuse":
            counts["refusals"] += 1
        elif e.kind == "recheck_fail":
            counts["failed_rechecks"] += 1
    # per hazard: late when any rectification round came after its deadline
    if rounds:
        counts["late" if late_rounds else "on_time"] = 1
    # a deadline no rectification has met yet (rectifying, refused, escalated, ...)
    if deadline is not None and state.state not in _SETTLED and cal.is_late(deadline, at):
        counts["overdue_open"] += 1
        today = plan.local_date(at, "at")
        counts["days_overdue"] += max(0, (today - deadline).days)
    for p in parties:
        for k, v in counts.items():
            if v:
                p.add(k, v)


def _accountable(
    plan: Plan,
    e: Event,
    state: TicketState,
    company: str,
    comp: dict[str, _Tally],
    towns_t: dict[str, _Tally],
    depts: dict[str, _Tally],
) -> list[_Tally]:
    """The scorecards a referral counts against (each accountable agency, placed)."""
    named = e.payload.get("accountable", [])
    town = str(e.payload.get("town", "") or state.town)
    out: list[_Tally] = []
    for item in named if isinstance(named, list) else []:
        a = str(item)
        if a in plan.settings.property_companies:
            out.append(comp.setdefault(company, _Tally()))
        elif _is_department(plan, a):
            out.append(depts.setdefault(a, _Tally()))
        elif town:
            out.append(towns_t.setdefault(town, _Tally()))
    unique: list[_Tally] = []
    for t in out:  # one count per scorecard, whoever of it is named twice
        if not any(t is u for u in unique):
            unique.append(t)
    return unique


def _report_figures(
    plan: Plan,
    statuses: Iterable[ObligationStatus],
    companies: Mapping[str, str],
    comp: dict[str, _Tally],
    towns_t: dict[str, _Tally],
    depts: dict[str, _Tally],
) -> None:
    for s in statuses:
        if s.state not in ("late", "missing"):
            continue
        key = "reports_late" if s.state == "late" else "reports_missing"
        o = s.obligation
        if sender_kind(plan, o) == "property":
            company = _company(plan, o.community or "", "", companies)
            comp.setdefault(company, _Tally()).add(key)
        elif o.town == plan.district.zh and o.community is None and o.kind == "duty":
            for a in o.senders:
                depts.setdefault(a, _Tally()).add(key)
        else:
            towns_t.setdefault(o.town, _Tally()).add(key)


def _frame(
    pandas: Any,
    rows: Mapping[str, _Tally],
    index_name: str,
    kinds: Mapping[str, str] | None,
    plan: Plan | None = None,
) -> pd.DataFrame:
    records = []
    for key, tally in rows.items():
        record: dict[str, Any] = {}
        if kinds is not None:
            record["单位类别"] = kinds[key]
            name = key
            if plan is not None and kinds[key] == "区直部门":
                try:
                    name = plan.agency(key).name.zh
                except InvalidArgument:
                    name = key
            record["名称"] = name
        for c in COLUMNS:
            if c.id == "outcomes":
                record[c.zh] = "；".join(f"{k}×{v}" for k, v in sorted(tally.outcomes.items()))
            else:
                record[c.zh] = tally.counts[c.id]
        records.append(record)
    head = (["单位类别", "名称"] if kinds is not None else []) + [c.zh for c in COLUMNS]
    index = pandas.Index(list(rows), name=index_name)
    df: pd.DataFrame = pandas.DataFrame(records, columns=head, index=index)
    for c in COLUMNS:
        df[c.zh] = df[c.zh].astype(str if c.id == "outcomes" else "int64")
    for col in ("单位类别", "名称"):
        if col in df.columns:
            df[col] = df[col].astype(str)
    return df


def scorecard_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a scorecard table (:meth:`Scorecards.table`) as CSV for people, atomically.

    Through :mod:`fireflow.output`: UTF-8 with a byte-order mark, text a
    spreadsheet would run as a formula neutralised, a symbolic link refused.
    """
    output.write_frame_csv(path, df)


def scorecard_html(cards: Scorecards, plan: Plan, verification: Mapping[str, Any]) -> str:
    """Both scorecards as one printable HTML page (template ``scorecard.html.j2``, escaped).

    ``verification`` is the history's verification (see :func:`fireflow.forms.mark_form`):
    its statement is printed at the top and bottom of every page.  Each column
    header shows the rules behind it.
    """
    from fireflow.templates import render  # noqa: PLC0415 (jinja2 is loaded only for pages)

    statement = verification_text(verification)
    cls = "mark" if verification.get("verified") is True else "mark unverified"

    def table(df: pd.DataFrame) -> dict[str, Any]:
        return {
            "index": str(df.index.name),
            "columns": [str(c) for c in df.columns],
            "rows": [
                (str(i), [str(v) for v in row])
                for i, row in zip(df.index, df.itertuples(index=False, name=None), strict=True)
            ],
        }

    return render(
        "scorecard.html.j2",
        title=f"{verification_header(verification)} · 年度考核记分表 · {plan.name.zh}",
        page_mark={"cls": cls, "text": statement},
        statement=statement,
        plan_zh=plan.name.zh,
        at=cards.at.isoformat(),
        companies=table(cards.companies),
        units=table(cards.units),
        columns=[
            {"zh": c.zh, "en": c.en, "rules": [(r, _clause(plan, r)) for r in c.rules]}
            for c in COLUMNS
        ],
    )


def _clause(plan: Plan, rule: str) -> str:
    try:
        return plan.rule(rule).clause
    except InvalidArgument:
        return ""
