"""Counting days the way Chinese law and the official holiday calendar do.

Two kinds of period, both "the last day of a period of *n* units that begins
after ``start``":

* **calendar** days (and ``month``/``year``), after the Civil Code:
  counting starts the day after ``start`` (民法典 第二百零一条); a month or year
  period ends on the corresponding day, or the month's last day where there is
  none (第二百零二条); a last day that falls on a rest day moves to the first
  day after the rest (第二百零三条), under the plan's holiday policy.
* **working** days (工作日): weekends and official holidays are skipped, make-up
  working days (调休上班) count.

Rest days come from a :class:`HolidaySource`, looked up through one table per
year built once (never one library call per day).  A year without data raises
:class:`~fireflow.errors.CalendarDataMissing` unless provisional estimates are
asked for explicitly.

>>> from fireflow import load_plan
>>> cal = load_plan("changle-2022").calendar
>>> cal.deadline(date(2022, 9, 30), 1, "calendar")   # 10-01..10-07 National Day
datetime.date(2022, 10, 8)
>>> cal.deadline(date(2022, 9, 30), 1, "working")    # 10-08 is a make-up working Saturday
datetime.date(2022, 10, 8)
>>> cal.deadline(date(2022, 1, 28), 2, "working")    # 01-29, 01-30 are make-up days
datetime.date(2022, 1, 30)
"""

from __future__ import annotations

import calendar as _stdcal
from array import array
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import attrs
import pendulum

from fireflow.errors import CalendarDataMissing, InvalidArgument, NaiveDatetime

if TYPE_CHECKING:
    from fireflow.plan import Plan

__all__ = [
    "Calendar",
    "ChainSource",
    "ChineseCalendarSource",
    "Deadline",
    "HolidaySource",
    "OverrideSource",
    "Period",
    "ProvisionalDate",
    "Unit",
    "YearData",
    "report_deadlines",
]

Unit = Literal["calendar", "working", "month", "year"]
_UNITS: tuple[str, ...] = ("calendar", "working", "month", "year")

#: The statutory fixed-date holidays used for provisional estimates only:
#: 元旦 01-01, 劳动节 05-01, 国庆节 10-01..10-03 (全国年节及纪念日放假办法).
_FIXED_HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (5, 1), (10, 1), (10, 2), (10, 3))


# =========================================================================== #
# Holiday data


@attrs.frozen
class YearData:
    """The rest days of one year.

    ``rest`` holds one byte per day of the year (1 = rest day, 0 = working
    day), January 1st first.  ``provisional`` marks an estimate, ``source``
    names where the data came from.
    """

    year: int
    rest: bytes
    source: str
    provisional: bool = False

    def __attrs_post_init__(self) -> None:
        expected = 366 if _stdcal.isleap(self.year) else 365
        if len(self.rest) != expected:
            raise InvalidArgument("rest", f"{self.year} has {expected} days, got {len(self.rest)}")

    @classmethod
    def from_days(
        cls,
        year: int,
        rest_days: Iterable[date],
        work_days: Iterable[date],
        *,
        source: str,
        provisional: bool = False,
        weekends: bool = True,
    ) -> YearData:
        """Weekends (if ``weekends``) plus ``rest_days``, minus ``work_days``."""
        first = date(year, 1, 1).toordinal()
        n = 366 if _stdcal.isleap(year) else 365
        flags = bytearray(n)
        if weekends:
            for i in range(n):
                if date.fromordinal(first + i).weekday() >= 5:
                    flags[i] = 1
        for d in rest_days:
            if d.year == year:
                flags[d.toordinal() - first] = 1
        for d in work_days:
            if d.year == year:
                flags[d.toordinal() - first] = 0
        return cls(year, bytes(flags), source, provisional)

    def is_rest(self, d: date) -> bool:
        """True when ``d`` (a day of this year) is a rest day."""
        return bool(self.rest[d.toordinal() - date(self.year, 1, 1).toordinal()])


@runtime_checkable
class HolidaySource(Protocol):
    """Where rest days come from.  Replace it to use another holiday table.

    ``year_data`` returns the whole year at once, or None when the source has
    no data for that year.
    """

    def year_data(self, year: int) -> YearData | None:
        """The rest days of ``year``, or None when unknown."""


class ChineseCalendarSource:
    """Official holidays and make-up days from the ``chinese_calendar`` package.

    The package's tables are read once, grouped by year; days are never looked
    up one call at a time.  ``rest_days="holidays_only"`` treats only public
    holidays as rest days (ordinary weekends are not), a setting for plans that
    read 法定休假日 narrowly.
    """

    def __init__(self, rest_days: Literal["observed", "holidays_only"] = "observed") -> None:
        import chinese_calendar  # noqa: PLC0415 (import cost paid only when used)

        self.rest_days = rest_days
        self._holidays: dict[int, list[date]] = {}
        self._workdays: dict[int, list[date]] = {}
        for d in sorted(chinese_calendar.holidays):
            self._holidays.setdefault(d.year, []).append(d)
        for d in sorted(chinese_calendar.workdays):
            self._workdays.setdefault(d.year, []).append(d)
        years = sorted(self._holidays)
        self.first_year, self.last_year = years[0], years[-1]
        self.version = getattr(chinese_calendar, "__version__", "unknown")
        self._cache: dict[int, YearData] = {}

    def year_data(self, year: int) -> YearData | None:
        """The official rest days of ``year``; None outside the package's data."""
        if not self.first_year <= year <= self.last_year:
            return None
        if year not in self._cache:
            self._cache[year] = YearData.from_days(
                year,
                self._holidays.get(year, ()),
                self._workdays.get(year, ()),
                source=f"chinese_calendar {self.version}",
                weekends=self.rest_days == "observed",
            )
        return self._cache[year]


class OverrideSource:
    """Rest days set explicitly per year (a plan's ``holidays.overrides``)."""

    def __init__(self, years: Mapping[int, YearData]) -> None:
        self._years = dict(years)

    def year_data(self, year: int) -> YearData | None:
        """The overridden year, or None."""
        return self._years.get(year)


class ChainSource:
    """Ask several sources in order; the first that knows a year wins."""

    def __init__(self, *sources: HolidaySource) -> None:
        self.sources = sources

    def year_data(self, year: int) -> YearData | None:
        """The first source's answer that is not None."""
        for s in self.sources:
            found = s.year_data(year)
            if found is not None:
                return found
        return None


def _provisional_year(year: int) -> YearData:
    rest = [date(year, m, d) for m, d in _FIXED_HOLIDAYS]
    return YearData.from_days(year, rest, (), source="provisional estimate", provisional=True)


# =========================================================================== #
# Results


class ProvisionalDate(date):
    """A date computed from provisional (estimated) holiday data.

    It compares and computes like a :class:`datetime.date`; ``provisional``
    says it is an estimate.
    """

    provisional = True


@attrs.frozen
class Period:
    """A computed period: what was asked, the raw last day and the due day.

    ``rules`` lists the rule ids that produced ``due`` (R-DUE-HOLIDAY when the
    holiday policy moved it).
    """

    start: date
    n: int
    unit: Unit
    last_day: date
    due: date
    rolled: bool
    provisional: bool
    rules: tuple[str, ...]


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


# =========================================================================== #
# The calendar


class Calendar:
    """Rest days, working days and legal deadlines in one time zone.

    Build it with :meth:`for_plan` (or use ``plan.calendar``); pass another
    ``source`` to replace the holiday data.  Tables are built once per year and
    reused; results are deterministic.
    """

    def __init__(
        self,
        *,
        source: HolidaySource | None = None,
        timezone: str = "Asia/Shanghai",
        holiday_policy: Literal["roll_forward", "roll_back", "none"] = "roll_forward",
        office_close: time | None = None,
        allow_provisional: bool = False,
    ) -> None:
        self.source: HolidaySource = source if source is not None else ChineseCalendarSource()
        self.timezone = timezone
        self._tz = pendulum.timezone(timezone)
        if holiday_policy not in ("roll_forward", "roll_back", "none"):
            raise InvalidArgument("holiday_policy", f"unknown policy {holiday_policy!r}")
        self.holiday_policy = holiday_policy
        self.office_close = office_close
        self.allow_provisional = allow_provisional
        self._years: dict[int, YearData] = {}
        self._y0 = 0
        self._y1 = -1
        self._base = 0
        self._rest = bytearray()
        self._cum = array("l")  # working days with ordinal <= base + i
        self._work = array("l")  # ordinals of working days, ascending
        self._next = array("l")  # first working ordinal >= base + i (0 if none in range)
        self._prev = array("l")  # last working ordinal <= base + i (0 if none in range)

    @classmethod
    def for_plan(
        cls,
        plan: Plan,
        *,
        source: HolidaySource | None = None,
        allow_provisional: bool = False,
    ) -> Calendar:
        """The calendar of a plan: its time zone, policy and holiday overrides.

        ``source`` replaces the built-in holiday data; the plan's overrides
        still take precedence over it.
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
        return cls(
            source=ChainSource(overrides, base),
            timezone=plan.timezone,
            holiday_policy=st.holiday_policy,
            office_close=st.office_close,
            allow_provisional=allow_provisional,
        )

    # ----------------------------------------------------------------- tables
    def year_data(self, year: int) -> YearData:
        """The rest days of ``year``; :class:`CalendarDataMissing` if unknown."""
        if year not in self._years:
            found = self.source.year_data(year)
            if found is None:
                if not self.allow_provisional:
                    raise CalendarDataMissing(year, self._known_span())
                found = _provisional_year(year)
            self._years[year] = found
        return self._years[year]

    def _known_span(self) -> tuple[int, int] | None:
        first = getattr(self.source, "first_year", None)
        last = getattr(self.source, "last_year", None)
        if isinstance(first, int) and isinstance(last, int):
            return first, last
        for s in getattr(self.source, "sources", ()):
            first, last = getattr(s, "first_year", None), getattr(s, "last_year", None)
            if isinstance(first, int) and isinstance(last, int):
                return first, last
        return None

    def _ensure(self, y0: int, y1: int) -> None:
        """Make the lookup arrays cover the years y0..y1 (and what lies between)."""
        if self._y0 <= y0 and y1 <= self._y1:
            return
        self.year_data(y0)  # the years asked for first: an error names them, not a gap year
        self.year_data(y1)
        data: list[YearData] | None = None
        if self._y1 >= self._y0:
            u0, u1 = min(y0, self._y0), max(y1, self._y1)
            try:  # extend the current span; years in a gap must be known too
                data = [self.year_data(y) for y in range(u0, u1 + 1)]
                y0, y1 = u0, u1
            except CalendarDataMissing:
                data = None  # a disjoint span (an override far away): serve it alone
        if data is None:
            data = [self.year_data(y) for y in range(y0, y1 + 1)]  # raises before any change
        rest = bytearray(b"".join(d.rest for d in data))
        base = date(y0, 1, 1).toordinal()
        n = len(rest)
        cum = array("l", [0]) * n
        nxt = array("l", [0]) * n
        prv = array("l", [0]) * n
        work = array("l")
        count = 0
        last = 0
        for i in range(n):
            if not rest[i]:
                count += 1
                last = base + i
                work.append(last)
            cum[i] = count
            prv[i] = last
        following = 0
        for i in range(n - 1, -1, -1):
            if not rest[i]:
                following = base + i
            nxt[i] = following
        self._y0, self._y1, self._base = y0, y1, base
        self._rest, self._cum, self._work, self._next, self._prev = rest, cum, work, nxt, prv

    def _index(self, ordinal: int) -> int:
        i = ordinal - self._base
        if i < 0 or i >= len(self._rest):
            y = date.fromordinal(ordinal).year
            self._ensure(y, y)
            i = ordinal - self._base
        return i

    def _provisional_between(self, a: date, b: date) -> bool:
        lo, hi = (a, b) if a <= b else (b, a)
        return any(
            self._years[y].provisional for y in range(lo.year, hi.year + 1) if y in self._years
        )

    # ----------------------------------------------------------------- inputs
    def to_date(self, value: date | datetime, field: str = "date") -> date:
        """A plain date: dates as they are, aware datetimes in this time zone.

        A naive datetime is refused with :class:`~fireflow.errors.NaiveDatetime`.
        """
        if type(value) is date:
            return value
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise NaiveDatetime(field)
            local = value.astimezone(self._tz)  # by the value's own offset
            return date(local.year, local.month, local.day)
        if isinstance(value, date):
            return date(value.year, value.month, value.day)
        raise InvalidArgument(
            field, f"expected a date or aware datetime, got {type(value).__name__}"
        )

    # ------------------------------------------------------------------ days
    def is_rest_day(self, d: date | datetime) -> bool:
        """True on weekends and holidays, False on working and make-up days.

        >>> from fireflow import load_plan
        >>> cal = load_plan("changle-2022").calendar
        >>> cal.is_rest_day(date(2022, 1, 29)), cal.is_rest_day(date(2022, 2, 1))
        (False, True)
        """
        day = self.to_date(d, "d")
        i = self._index(day.toordinal())  # may rebuild the tables: index first
        return bool(self._rest[i])

    def is_working_day(self, d: date | datetime) -> bool:
        """The opposite of :meth:`is_rest_day`."""
        return not self.is_rest_day(d)

    def is_provisional(self, d: date | datetime) -> bool:
        """True when ``d``'s year is known only from a provisional estimate."""
        return self.year_data(self.to_date(d, "d").year).provisional

    def next_working_day(self, d: date | datetime, *, include: bool = True) -> date:
        """The first working day on or after ``d`` (strictly after if not ``include``)."""
        o = self.to_date(d, "d").toordinal() + (0 if include else 1)
        while True:
            i = self._index(o)
            found = self._next[i]
            if found:
                return date.fromordinal(found)
            o = date(date.fromordinal(o).year + 1, 1, 1).toordinal()

    def previous_working_day(self, d: date | datetime, *, include: bool = True) -> date:
        """The last working day on or before ``d`` (strictly before if not ``include``)."""
        o = self.to_date(d, "d").toordinal() - (0 if include else 1)
        while True:
            i = self._index(o)
            found = self._prev[i]
            if found:
                return date.fromordinal(found)
            o = date(date.fromordinal(o).year - 1, 12, 31).toordinal()

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days ``d`` with ``a < d <= b`` (negative if ``b < a``)."""
        da, db = self.to_date(a, "a"), self.to_date(b, "b")
        lo, hi = sorted((da.toordinal(), db.toordinal()))
        self._ensure(date.fromordinal(lo).year, date.fromordinal(hi).year)
        n = self._cum[hi - self._base] - self._cum[lo - self._base]
        return n if db >= da else -n

    def adjust(self, d: date | datetime) -> date:
        """Apply the holiday policy to a due day (R-DUE-HOLIDAY)."""
        day = self.to_date(d, "d")
        if self.holiday_policy == "none" or not self.is_rest_day(day):
            return day
        if self.holiday_policy == "roll_forward":
            return self.next_working_day(day)
        return self.previous_working_day(day)

    # ------------------------------------------------------------- deadlines
    def deadline(self, start: date | datetime, n: int, unit: Unit = "calendar") -> date:
        """The last day of a period of ``n`` units that begins after ``start``.

        ``unit`` is ``"calendar"`` (民法典 第二百零一条, 第二百零三条 under the
        holiday policy), ``"working"`` (weekends and holidays skipped, make-up
        days counted), ``"month"`` or ``"year"`` (第二百零二条).  With
        provisional data the result is a :class:`ProvisionalDate`.

        >>> from fireflow import load_plan
        >>> cal = load_plan("changle-2022").calendar
        >>> cal.deadline(date(2022, 1, 31), 1, "month")   # no 02-31: the month's last day
        datetime.date(2022, 2, 28)
        """
        if type(start) is date and type(n) is int and n > 0:
            o = start.toordinal()
            i = o - self._base
            if 0 <= i < len(self._rest) and not self.allow_provisional:
                if unit == "working":
                    k = self._cum[i] + n - 1
                    if k < len(self._work):
                        return date.fromordinal(self._work[k])
                elif unit == "calendar":
                    j = i + n
                    if j < len(self._rest):
                        if not self._rest[j] or self.holiday_policy == "none":
                            return date.fromordinal(o + n)
                        f = (
                            self._next[j]
                            if self.holiday_policy == "roll_forward"
                            else self._prev[j]
                        )
                        if f:
                            return date.fromordinal(f)
        p = self.period(start, n, unit)
        return ProvisionalDate(p.due.year, p.due.month, p.due.day) if p.provisional else p.due

    def period(self, start: date | datetime, n: int, unit: Unit = "calendar") -> Period:
        """Like :meth:`deadline`, with the raw last day, the rules and flags.

        >>> from fireflow import load_plan
        >>> p = load_plan("changle-2022").calendar.period(date(2022, 9, 23), 8)
        >>> p.last_day, p.due, p.rolled, p.rules
        (datetime.date(2022, 10, 1), datetime.date(2022, 10, 8), True, ('R-DUE-HOLIDAY',))
        """
        s = self.to_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise InvalidArgument("n", f"expected a whole number of units, got {n!r}")
        if n < 1:
            raise InvalidArgument("n", f"a period lasts at least 1 unit, got {n}")
        if unit not in _UNITS:
            raise InvalidArgument("unit", f"unknown unit {unit!r}; use one of {', '.join(_UNITS)}")
        if unit == "working":
            self._index(s.toordinal())
            while True:
                k = self._cum[s.toordinal() - self._base] + n - 1
                if k < len(self._work):
                    due = date.fromordinal(self._work[k])
                    break
                self._ensure(self._y0, self._y1 + 1)
            return Period(s, n, unit, due, due, False, self._provisional_between(s, due), ())
        if unit == "calendar":
            last = s + timedelta(days=n)
        elif unit == "month":
            last = _add_months(s, n)
        else:
            last = _add_months(s, 12 * n)
        due = self.adjust(last)
        rules = ("R-DUE-HOLIDAY",) if due != last else ()
        return Period(s, n, unit, last, due, due != last, self._provisional_between(s, due), rules)

    def working_days_before(self, d: date | datetime, n: int) -> date:
        """The ``n``-th working day before ``d`` (``d`` itself not counted)."""
        day = self.to_date(d, "d")
        if n < 1:
            raise InvalidArgument("n", f"expected at least 1, got {n}")
        o = day.toordinal() - 1
        self._index(o)
        while True:
            k = self._cum[o - self._base] - n
            if k >= 0 and (k < len(self._work)):
                first_known = self._work[0] if self._work else None
                if first_known is not None:
                    return date.fromordinal(self._work[k])
            self._ensure(self._y0 - 1, self._y1)
            self._index(o)

    def due_instant(self, d: date) -> pendulum.DateTime:
        """The instant a due day ends: 24:00 local (the next day's 00:00), or office close.

        >>> from fireflow import load_plan
        >>> load_plan("changle-2022").calendar.due_instant(date(2022, 3, 15)).isoformat()
        '2022-03-16T00:00:00+08:00'
        """
        if self.office_close is not None:
            c = self.office_close
            return pendulum.datetime(
                d.year, d.month, d.day, c.hour, c.minute, c.second, tz=self._tz
            )
        nxt = d + timedelta(days=1)
        return pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=self._tz)

    def is_late(self, due: date, at: datetime) -> bool:
        """True when the aware instant ``at`` is past the end of the due day."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise NaiveDatetime("at")
        return at >= self.due_instant(due)


def _add_months(d: date, months: int) -> date:
    """第二百零二条: the corresponding day, or the month's last day where there is none."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, _stdcal.monthrange(y, m)[1]))


# =========================================================================== #
# The plan's report deadlines


def report_deadlines(plan: Plan, calendar: Calendar) -> list[Deadline]:
    """Every report deadline of ``plan`` computed on ``calendar``, in date order.

    Fixed-date deadlines ("X月X日前", R-DUE-INCLUSIVE) end on the nominal day
    when inclusive, else the day before; progress reports follow the plan's
    reading of 每阶段结束前5日 (R-DUE-PROGRESS).  The holiday policy then
    applies (R-DUE-HOLIDAY).
    """
    st = plan.settings
    out: list[Deadline] = []
    for fixed in plan.deadlines_fixed:
        last = fixed.nominal if st.due_inclusive else fixed.nominal - timedelta(days=1)
        due = calendar.adjust(last)
        rules = [fixed.rule, "R-DUE-INCLUSIVE"]
        if due != last:
            rules.append("R-DUE-HOLIDAY")
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
    for phase in plan.phases:
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
            rules.append("R-DUE-HOLIDAY")
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
