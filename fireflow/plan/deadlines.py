"""The plan joined to the calendar: the plan's calendar, report deadlines, coverage.

The calendar knows nothing of plans; what joins the two lives here
(``docs/calendar.md``, ``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Literal

import attrs

from fireflow.calendar import (
    Calendar,
    ChainSource,
    ChineseCalendarSource,
    CorrectedSource,
    Correction,
    HolidaySource,
    OverrideSource,
    YearData,
)
from fireflow.plan.parts import HolidayCorrection

if TYPE_CHECKING:
    from fireflow.plan.plan import Plan

__all__ = [
    "Deadline",
    "YearCoverage",
    "calendar_coverage",
    "calendar_for_plan",
    "reach_years",
    "report_deadlines",
]


def calendar_for_plan(
    plan: Plan,
    *,
    source: HolidaySource | None = None,
    allow_provisional: bool = False,
) -> Calendar:
    """The calendar of a plan: its time zone, policy, corrections and overrides.

    The rest days of a year come from the plan's ``holidays.overrides`` when
    it has one, else from ``source`` (by default the ``chinese_calendar``
    data with :data:`~fireflow.calendar.BUILTIN_CORRECTIONS`, or nothing with
    ``holidays.source: none``) with the plan's ``holidays.corrections``
    applied.  ``plan.calendar`` is ``calendar_for_plan(plan)``, built once.

    >>> from fireflow.plan import load_plan
    >>> plan = load_plan("changle-2022")
    >>> rough = calendar_for_plan(plan, allow_provisional=True)
    >>> rough.deadline(date(2100, 9, 30), 1).provisional
    True
    """
    st = plan.settings
    overrides = OverrideSource(
        {
            o.year: YearData.from_days(
                o.year,
                o.rest_days,
                o.work_days,
                source=f"plan {plan.id} override",
                weekends=st.rest_days == "observed",
            )
            for o in plan.holidays.overrides
        }
    )
    base: HolidaySource
    if source is not None:
        base = source
    elif plan.holidays.source == "chinese_calendar":
        base = ChineseCalendarSource(st.rest_days)
    else:
        base = OverrideSource({})
    fixes = _corrections(plan.holidays.corrections)
    if fixes:
        base = CorrectedSource(base, fixes, field="holidays.corrections")
    return Calendar(
        source=ChainSource(overrides, base),
        timezone=plan.timezone,
        holiday_policy=st.holiday_policy,
        office_close=st.office_close,
        allow_provisional=allow_provisional,
    )


@attrs.frozen
class YearCoverage:
    """Where the rest days of one year come from, for a plan.

    ``kind`` is ``official`` (the ``chinese_calendar`` package, ``detail`` naming
    its version), ``corrected`` (official data with the plan's or the built-in
    single-day corrections), ``override`` (the plan's ``holidays.overrides``),
    ``provisional`` (an estimate, asked for) or ``missing`` (no data: dates in
    that year cannot be computed).
    """

    year: int
    kind: Literal["official", "corrected", "override", "provisional", "missing"]
    detail: str

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data."""
        return {"year": self.year, "kind": self.kind, "detail": self.detail}

    def __str__(self) -> str:
        zh = {
            "official": "官方数据",
            "corrected": "官方数据（单日更正）",
            "override": "方案给定",
            "provisional": "估算",
            "missing": "缺少数据",
        }[self.kind]
        return f"{self.year}: {zh} {self.kind} ({self.detail})"


def reach_years(plan: Plan) -> range:
    """The years the campaign and its longest deadlines can reach.

    From the first phase's year to the year of the campaign's last day plus the
    longest rectification period (a working-day period counted generously: two
    calendar days per working day, and a month for holidays and the roll forward).

    >>> from fireflow.plan import load_plan
    >>> reach_years(load_plan("changle-2022"))
    range(2022, 2024)
    """
    longest = max(plan.settings.rectification_days.values(), default=0)
    if plan.settings.period_unit == "working":
        longest = 2 * longest
    last = plan.end + timedelta(days=longest + 31)
    return range(plan.start.year, last.year + 1)


def calendar_coverage(
    plan: Plan, years: Sequence[int] | range | None = None, *, allow_provisional: bool = False
) -> list[YearCoverage]:
    """Where each year's rest days come from (default: :func:`reach_years`).

    >>> from fireflow.plan import load_plan
    >>> [(c.year, c.kind) for c in calendar_coverage(load_plan("changle-2022"))]
    [(2022, 'official'), (2023, 'official')]
    >>> calendar_coverage(load_plan("changle-2022"), [2005])[0].detail.split("; ")[1]
    'corrected: 2005-12-31 working'
    """
    overrides = {o.year: o for o in plan.holidays.overrides}
    base: HolidaySource | None = None
    if plan.holidays.source == "chinese_calendar":
        base = ChineseCalendarSource(plan.settings.rest_days)
    fixes = _corrections(plan.holidays.corrections)
    out: list[YearCoverage] = []
    for year in reach_years(plan) if years is None else years:
        if year in overrides:
            note = overrides[year].note
            detail = f"plan {plan.id} holidays.overrides" + (f": {note}" if note else "")
            out.append(YearCoverage(year, "override", detail))
            continue
        found = base.year_data(year) if base is not None else None
        if found is None:
            if allow_provisional:
                out.append(
                    YearCoverage(year, "provisional", "weekends and fixed-date holidays only")
                )
            else:
                out.append(
                    YearCoverage(
                        year,
                        "missing",
                        f"add holidays.overrides for {year} to the plan, or pass --provisional "
                        f"(在 holidays.overrides 中给出 {year} 年休息日，或用 --provisional)",
                    )
                )
            continue
        mine = [c for c in fixes if c.date.year == year]
        if mine:
            found = found.corrected(mine)
        if found.corrections:
            days = ", ".join(f"{c.date} {c.kind}" for c in found.corrections)
            source = found.source.split(",", 1)[0]
            out.append(YearCoverage(year, "corrected", f"{source}; corrected: {days}"))
        else:
            out.append(YearCoverage(year, "official", found.source))
    return out


def _corrections(entries: Sequence[HolidayCorrection]) -> tuple[Correction, ...]:
    return tuple(Correction(c.date, c.kind, source=c.source, note=c.note) for c in entries)


@attrs.frozen
class Deadline:
    """A report obligation of the plan, with its computed due date.

    ``nominal`` is the date the plan writes, ``due`` the last day on time
    after the inclusive reading and the holiday policy, ``earliest`` the first
    day of the submission window when the reading sets one.
    """

    id: str
    name_zh: str
    name_en: str
    nominal: date
    due: date
    recipients: tuple[str, ...]
    senders: tuple[str, ...]
    rule: str
    clause: str
    rules: tuple[str, ...]
    phase: str | None = None
    earliest: date | None = None
    provisional: bool = False

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data (dates as ISO strings)."""
        out: dict[str, object] = {}
        for a in attrs.fields(Deadline):
            v = getattr(self, a.name)
            out[a.name] = (
                v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v
            )
        return out


def report_deadlines(plan: Plan, calendar: Calendar) -> list[Deadline]:
    """Every report deadline of ``plan`` computed on ``calendar``, in date order.

    Fixed-date deadlines ("X月X日前", R-DUE-INCLUSIVE) end on the nominal day
    when inclusive, else the day before; progress reports follow the plan's
    reading of 每阶段结束前5日 (R-DUE-PROGRESS).  The holiday policy then
    applies (R-DUE-HOLIDAY).  ``plan.deadlines(calendar)`` calls it.
    """
    st = plan.settings
    out: list[Deadline] = []
    for fixed in plan.deadlines_fixed:
        last = fixed.nominal if st.due_inclusive else fixed.nominal - timedelta(days=1)
        due = calendar.adjust(last)
        rules = [fixed.rule, plan.cite("R-DUE-INCLUSIVE")]
        if due != last:
            rules.append(plan.cite("R-DUE-HOLIDAY"))
        out.append(
            Deadline(
                id=fixed.id,
                name_zh=fixed.name.zh,
                name_en=fixed.name.en,
                nominal=fixed.nominal,
                due=due,
                recipients=fixed.recipients,
                senders=fixed.senders,
                rule=fixed.rule,
                clause=fixed.clause,
                rules=tuple(rules),
                phase=None if (ph := plan.phase_on(fixed.nominal)) is None else ph.id,
                provisional=calendar.is_provisional(due),
            )
        )
    pr = plan.progress_reports
    # a campaign without 每阶段结束前N日 reports says so with `senders: []`: none are due
    for phase in plan.phases if pr.senders else ():
        if pr.offset == 0:
            nominal = phase.end
        elif pr.unit == "working":
            nominal = calendar.working_days_before(phase.end, pr.offset)
        else:
            nominal = phase.end - timedelta(days=pr.offset)
        nominal = max(nominal, phase.start)
        earliest: date | None = None
        if pr.reading == "on":
            last, earliest = nominal, nominal
        elif pr.reading == "no_later_than":
            last, earliest = nominal, phase.start
        else:  # within the last `offset` units of the phase
            last, earliest = phase.end, min(nominal + timedelta(days=1), phase.end)
        due = calendar.adjust(last)
        rules = [pr.rule]
        if due != last:
            rules.append(plan.cite("R-DUE-HOLIDAY"))
        out.append(
            Deadline(
                id=f"progress.{phase.id}",
                name_zh=f"{pr.name.zh}（{phase.name.zh}）",
                name_en=f"{pr.name.en} ({phase.name.en})",
                nominal=nominal,
                due=due,
                recipients=pr.recipients,
                senders=pr.senders,
                rule=pr.rule,
                clause=pr.clause,
                rules=tuple(rules),
                phase=phase.id,
                earliest=earliest,
                provisional=calendar.is_provisional(due),
            )
        )
    out.sort(key=lambda d: (d.due, d.nominal, d.id))
    return out
