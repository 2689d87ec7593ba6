"""Counting days the way Chinese law and the official holiday calendar do.

Two kinds of period, both "the last day of a period of *n* units that begins
after ``start``":

* **calendar** days (and ``month``/``year``), after the Civil Code:
  counting starts the day after ``start`` (民法典 第二百零一条); a month or year
  period ends on the corresponding day, or the month's last day where there is
  none (第二百零二条); a last day that falls on a rest day moves to the first
  day after the rest (第二百零三条), under the holiday policy.
* **working** days (工作日): weekends and official holidays are skipped, make-up
  working days (调休上班) count.

Rest days come from a :class:`HolidaySource`, looked up through one table per
year built once (never one library call per day).  A year without data raises
:class:`~fireflow.errors.CalendarDataMissing` unless provisional estimates are
asked for explicitly.  Single days of the data can be corrected
(:class:`Correction`), each with the document that says so.

The calendar counts days and knows nothing of plans: a plan's calendar is
built by :func:`fireflow.plan.calendar_for_plan` (``plan.calendar``).

>>> cal = Calendar()
>>> cal.deadline(date(2022, 9, 30), 1, "calendar")   # 10-01..10-07 National Day
datetime.date(2022, 10, 8)
>>> cal.deadline(date(2022, 9, 30), 1, "working")    # 10-08 is a make-up working Saturday
datetime.date(2022, 10, 8)
>>> cal.deadline(date(2022, 1, 28), 2, "working")    # 01-29, 01-30 are make-up days
datetime.date(2022, 1, 30)
>>> cal.deadline(date(2005, 12, 30), 1, "working")   # 12-31 make-up Saturday (BUILTIN_CORRECTIONS)
datetime.date(2005, 12, 31)
"""

from __future__ import annotations

import calendar as _stdcal
from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Literal, NoReturn, Protocol, runtime_checkable

import attrs
import pendulum

from fireflow.errors import CalendarDataMissing, InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.text import check_text

__all__ = [
    "BUILTIN_CORRECTIONS",
    "MAX_PERIOD",
    "MAX_SPAN_YEARS",
    "Calendar",
    "ChainSource",
    "ChineseCalendarSource",
    "CorrectedSource",
    "Correction",
    "HolidaySource",
    "OverrideSource",
    "Period",
    "ProvisionalDate",
    "Unit",
    "YearData",
    "correction_problems",
]

Unit = Literal["calendar", "working", "month", "year"]
_UNITS: tuple[str, ...] = ("calendar", "working", "month", "year")

#: The longest period :meth:`Calendar.deadline`, :meth:`Calendar.period` and
#: :meth:`Calendar.working_days_before` accept, per unit (about a century each);
#: a longer one is refused with :class:`~fireflow.errors.InputLimitExceeded`.
MAX_PERIOD: Mapping[str, int] = MappingProxyType(
    {"calendar": 36600, "working": 25000, "month": 1200, "year": 100}
)
_UNIT_WORDS: Mapping[str, str] = MappingProxyType(
    {"calendar": "days", "working": "working days", "month": "months", "year": "years"}
)
_UNIT_ZH: Mapping[str, str] = MappingProxyType(
    {"calendar": "日", "working": "个工作日", "month": "个月", "year": "年"}
)

#: The most years one question may span (two dates of ``working_days_between``,
#: a period with its start): every answer is looked up in tables this long at most.
MAX_SPAN_YEARS = 200

#: The statutory fixed-date holidays used for provisional estimates only:
#: 元旦 01-01, 劳动节 05-01, 国庆节 10-01..10-03 (全国年节及纪念日放假办法).
_FIXED_HOLIDAYS: tuple[tuple[int, int], ...] = ((1, 1), (5, 1), (10, 1), (10, 2), (10, 3))

_LAST_ORDINAL = date.max.toordinal()


def _beyond(field: str, what: str) -> NoReturn:
    raise InputLimitExceeded(
        field,
        f"{what} lies outside the dates fireflow can count "
        "(0001-01-01 to 9999-12-31; 超出日期范围)",
    )


# =========================================================================== #
# Holiday data


@attrs.frozen
class Correction:
    """One day of the holiday data corrected, with the document that says so.

    ``kind`` is what the day really is: ``"working"`` (a make-up working day
    the data lacks, 调休上班) or ``"rest"`` (a rest day the data lacks).
    ``source`` cites the official document (required); ``note`` is free text.

    >>> Correction(date(2005, 12, 31), "working", source="国办发明电〔2005〕35号").kind
    'working'
    """

    date: date
    kind: Literal["working", "rest"]
    source: str
    note: str = ""

    def __attrs_post_init__(self) -> None:
        if type(self.date) is not date:
            raise InvalidArgument("date", f"expected a date, got {type(self.date).__name__}")
        if self.kind not in ("working", "rest"):
            raise InvalidArgument("kind", f"expected 'working' or 'rest', got {self.kind!r}")
        if not check_text(self.source, "source").strip():
            raise InvalidArgument(
                "source", "a correction cites its official document (更正须注明依据文件)"
            )
        check_text(self.note, "note")


#: Known errors of the ``chinese_calendar`` data, corrected on top of it by
#: :class:`ChineseCalendarSource`.  A correction the package has since taken
#: up changes nothing and is skipped.
BUILTIN_CORRECTIONS: tuple[Correction, ...] = (
    Correction(
        date(2005, 12, 31),
        "working",
        source="国办发明电〔2005〕35号 国务院办公厅关于2006年部分节假日安排的通知："
        "元旦1月1日—3日放假，12月31日（星期六）上班",
        note="chinese_calendar 1.11 lacks this make-up working day of the 2006 New Year",
    ),
)


@attrs.frozen
class YearData:
    """The rest days of one year.

    ``rest`` holds one byte per day of the year (1 = rest day, 0 = working
    day), January 1st first.  ``provisional`` marks an estimate, ``source``
    names where the data came from, ``corrections`` the single days corrected
    on top of it.
    """

    year: int
    rest: bytes
    source: str
    provisional: bool = False
    corrections: tuple[Correction, ...] = ()

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

    def corrected(self, corrections: Iterable[Correction]) -> YearData:
        """This year with the corrections of its days applied (the others ignored).

        A correction that changes nothing is left out; ``source`` and
        ``corrections`` record the ones applied.
        """
        flags = bytearray(self.rest)
        first = date(self.year, 1, 1).toordinal()
        applied: list[Correction] = []
        for c in corrections:
            if c.date.year != self.year:
                continue
            flag = 1 if c.kind == "rest" else 0
            i = c.date.toordinal() - first
            if flags[i] != flag:
                flags[i] = flag
                applied.append(c)
        if not applied:
            return self
        days = ", ".join(f"{c.date} {c.kind}" for c in applied)
        return attrs.evolve(
            self,
            rest=bytes(flags),
            source=f"{self.source}, corrected: {days}",
            corrections=self.corrections + tuple(applied),
        )


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
    read 法定休假日 narrowly.  ``corrections`` (by default
    :data:`BUILTIN_CORRECTIONS`) are applied on top of the package's data.

    >>> ChineseCalendarSource().year_data(2005).is_rest(date(2005, 12, 31))
    False
    >>> ChineseCalendarSource(corrections=()).year_data(2005).is_rest(date(2005, 12, 31))
    True
    """

    def __init__(
        self,
        rest_days: Literal["observed", "holidays_only"] = "observed",
        *,
        corrections: Iterable[Correction] = BUILTIN_CORRECTIONS,
    ) -> None:
        import chinese_calendar  # noqa: PLC0415 (import cost paid only when used)

        self.rest_days = rest_days
        self.corrections = tuple(corrections)
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
            ).corrected(self.corrections)
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


def correction_problems(
    base: HolidaySource, corrections: Sequence[Correction]
) -> list[tuple[int, str, str]]:
    """Every problem of ``corrections`` against ``base``, as (index, field, message).

    A correction must fall in a year ``base`` has data for (a year without data
    is given whole, as an override), must change its day (a correction that
    changes nothing is stale or mistaken), and each day is corrected once.

    >>> fix = Correction(date(2022, 10, 8), "working", source="国办发明电〔2021〕11号")
    >>> for problem in correction_problems(ChineseCalendarSource(), [fix]):
    ...     print(*problem)
    0 kind 2022-10-08 is already a working day in ...: the correction changes nothing (更正无效)
    """
    problems: list[tuple[int, str, str]] = []
    seen: set[date] = set()
    for i, c in enumerate(corrections):
        if c.date in seen:
            problems.append(
                (
                    i,
                    "date",
                    f"{c.date} is corrected more than once (重复更正)",
                )
            )
            continue
        seen.add(c.date)
        data = base.year_data(c.date.year)
        if data is None:
            problems.append(
                (
                    i,
                    "date",
                    f"no holiday data for {c.date.year} to correct "
                    f"({c.date.year}年无节假日数据可更正); give a year without data whole, "
                    "as an override",
                )
            )
        elif data.is_rest(c.date) == (c.kind == "rest"):
            problems.append(
                (
                    i,
                    "kind",
                    f"{c.date} is already a {c.kind} day in {data.source}: "
                    "the correction changes nothing (更正无效)",
                )
            )
    return problems


class CorrectedSource:
    """Another source with single days corrected (:class:`Correction`).

    The corrections are checked when the source is built
    (:func:`correction_problems`): a problem raises
    :class:`~fireflow.errors.InvalidArgument` naming ``corrections[i]``.
    """

    def __init__(
        self, base: HolidaySource, corrections: Iterable[Correction], *, field: str = "corrections"
    ) -> None:
        self.base = base
        self.corrections = tuple(corrections)
        for i, c in enumerate(self.corrections):
            if not isinstance(c, Correction):
                raise InvalidArgument(
                    f"{field}[{i}]", f"expected a Correction, got {type(c).__name__}"
                )
        problems = correction_problems(base, self.corrections)
        if problems:
            i, key, message = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidArgument(f"{field}[{i}].{key}", message + more)
        self._cache: dict[int, YearData] = {}

    def year_data(self, year: int) -> YearData | None:
        """The base source's year with this source's corrections applied."""
        if year not in self._cache:
            found = self.base.year_data(year)
            if found is None:
                return None
            self._cache[year] = found.corrected(self.corrections)
        return self._cache[year]


def _provisional_year(year: int) -> YearData:
    rest = [date(year, m, d) for m, d in _FIXED_HOLIDAYS]
    return YearData.from_days(year, rest, (), source="provisional estimate", provisional=True)


def _known_span(source: object) -> tuple[int, int] | None:
    """The years a source (or the first source inside it that says) covers."""
    first, last = getattr(source, "first_year", None), getattr(source, "last_year", None)
    if isinstance(first, int) and isinstance(last, int):
        return first, last
    inner = [getattr(source, "base", None), *getattr(source, "sources", ())]
    for s in inner:
        if s is not None and (span := _known_span(s)) is not None:
            return span
    return None


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


# =========================================================================== #
# The calendar


class Calendar:
    """Rest days, working days and legal deadlines in one time zone.

    A plan's calendar is ``plan.calendar`` (built by
    :func:`fireflow.plan.calendar_for_plan`); pass another ``source`` to
    replace the holiday data, and ``corrections`` to correct single days of it
    (checked at once: :class:`~fireflow.errors.InvalidArgument` naming
    ``corrections[i]``).  Tables are built once per year and reused; results
    are deterministic.
    """

    def __init__(
        self,
        *,
        source: HolidaySource | None = None,
        timezone: str = "Asia/Shanghai",
        holiday_policy: Literal["roll_forward", "roll_back", "none"] = "roll_forward",
        office_close: time | None = None,
        allow_provisional: bool = False,
        corrections: Iterable[Correction] = (),
    ) -> None:
        base: HolidaySource = source if source is not None else ChineseCalendarSource()
        fixes = tuple(corrections)
        self.source: HolidaySource = CorrectedSource(base, fixes) if fixes else base
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
        # the last datetime to_date converted, and its date: the engine asks for the date of
        # one command's time several times (datetimes are immutable, so the same object
        # gives the same date)
        self._last_local: tuple[datetime, date] | None = None

    # ----------------------------------------------------------------- tables
    def year_data(self, year: int) -> YearData:
        """The rest days of ``year``; :class:`CalendarDataMissing` if unknown."""
        try:
            return self._year(year)
        except CalendarDataMissing as err:
            raise _missing(err, "year") from None

    def _year(self, year: int) -> YearData:
        if year not in self._years:
            if not 1 <= year <= 9999:
                _beyond("year", str(year))
            found = self.source.year_data(year)
            if found is None:
                if not self.allow_provisional:
                    raise CalendarDataMissing(year, _known_span(self.source))
                found = _provisional_year(year)
            self._years[year] = found
        return self._years[year]

    def _ensure(self, y0: int, y1: int) -> None:
        """Make the lookup arrays cover the years y0..y1 (and what lies between).

        The current span is kept when the two join within
        :data:`MAX_SPAN_YEARS` and every year between is known; otherwise the
        new span is served alone.
        """
        if self._y0 <= y0 and y1 <= self._y1:
            return
        self._year(y0)  # the years asked for first: an error names them, not a gap year
        self._year(y1)
        data: list[YearData] | None = None
        if self._y1 >= self._y0:
            u0, u1 = min(y0, self._y0), max(y1, self._y1)
            if u1 - u0 < MAX_SPAN_YEARS:
                try:  # extend the current span; years in a gap must be known too
                    data = [self._year(y) for y in range(u0, u1 + 1)]
                    y0, y1 = u0, u1
                except CalendarDataMissing:
                    data = None  # a disjoint span (an override far away): serve it alone
        if data is None:
            data = [self._year(y) for y in range(y0, y1 + 1)]  # raises before any change
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
            last = self._last_local
            if last is not None and last[0] is value:
                return last[1]
            if value.tzinfo is None or value.utcoffset() is None:
                raise NaiveDatetime(field)
            try:
                local = value.astimezone(self._tz)  # by the value's own offset
            except (OverflowError, ValueError):
                _beyond(field, f"{value.isoformat()} in {self.timezone}")
            day = date(local.year, local.month, local.day)
            self._last_local = (value, day)
            return day
        if isinstance(value, date):
            return date(value.year, value.month, value.day)
        raise InvalidArgument(
            field, f"expected a date or aware datetime, got {type(value).__name__}"
        )

    # ------------------------------------------------------------------ days
    def is_rest_day(self, d: date | datetime) -> bool:
        """True on weekends and holidays, False on working and make-up days.

        >>> cal = Calendar()
        >>> cal.is_rest_day(date(2022, 1, 29)), cal.is_rest_day(date(2022, 2, 1))
        (False, True)
        """
        day = self.to_date(d, "d")
        try:
            i = self._index(day.toordinal())  # may rebuild the tables: index first
        except CalendarDataMissing as err:
            raise _missing(err, "d") from None
        return bool(self._rest[i])

    def is_working_day(self, d: date | datetime) -> bool:
        """The opposite of :meth:`is_rest_day`.

        >>> Calendar().is_working_day(date(2005, 12, 31))   # a make-up Saturday
        True
        """
        return not self.is_rest_day(d)

    def is_provisional(self, d: date | datetime) -> bool:
        """True when ``d``'s year is known only from a provisional estimate."""
        day = self.to_date(d, "d")
        try:
            return self._year(day.year).provisional
        except CalendarDataMissing as err:
            raise _missing(err, "d") from None

    def next_working_day(self, d: date | datetime, *, include: bool = True) -> date:
        """The first working day on or after ``d`` (strictly after if not ``include``)."""
        day = self.to_date(d, "d")
        try:
            return self._next_working(day.toordinal() + (0 if include else 1), "d")
        except CalendarDataMissing as err:
            raise _missing(err, "d") from None

    def _next_working(self, o: int, field: str) -> date:
        while True:
            if o > _LAST_ORDINAL:
                _beyond(field, "the next working day")
            i = self._index(o)
            found = self._next[i]
            if found:
                return date.fromordinal(found)
            o = date(self._y1, 12, 31).toordinal() + 1  # none left in the tables: the next year

    def previous_working_day(self, d: date | datetime, *, include: bool = True) -> date:
        """The last working day on or before ``d`` (strictly before if not ``include``)."""
        day = self.to_date(d, "d")
        try:
            return self._previous_working(day.toordinal() - (0 if include else 1), "d")
        except CalendarDataMissing as err:
            raise _missing(err, "d") from None

    def _previous_working(self, o: int, field: str) -> date:
        while True:
            if o < 1:
                _beyond(field, "the previous working day")
            i = self._index(o)
            found = self._prev[i]
            if found:
                return date.fromordinal(found)
            o = self._base - 1  # none earlier in the tables: the year before

    def working_days_between(self, a: date | datetime, b: date | datetime) -> int:
        """Working days ``d`` with ``a < d <= b`` (negative if ``b < a``).

        ``a`` and ``b`` lie at most :data:`MAX_SPAN_YEARS` years apart.
        """
        da, db = self.to_date(a, "a"), self.to_date(b, "b")
        lo, hi = sorted((da, db))
        if hi.year - lo.year >= MAX_SPAN_YEARS:
            raise InputLimitExceeded(
                "b",
                f"{da} and {db} lie more than {MAX_SPAN_YEARS} years apart "
                f"(相隔不得超过{MAX_SPAN_YEARS}年)",
            )
        try:
            self._ensure(lo.year, hi.year)
        except CalendarDataMissing as err:
            raise _missing(err, "a" if err.year == da.year else "b") from None
        n = self._cum[hi.toordinal() - self._base] - self._cum[lo.toordinal() - self._base]
        return n if db >= da else -n

    def adjust(self, d: date | datetime) -> date:
        """Apply the holiday policy to a due day (R-DUE-HOLIDAY)."""
        day = self.to_date(d, "d")
        try:
            return self._adjust(day, "d")
        except CalendarDataMissing as err:
            raise _missing(err, "d") from None

    def _adjust(self, day: date, field: str) -> date:
        if self.holiday_policy == "none":
            return day
        i = self._index(day.toordinal())  # may rebuild the tables: index first
        if not self._rest[i]:
            return day
        if self.holiday_policy == "roll_forward":
            return self._next_working(day.toordinal(), field)
        return self._previous_working(day.toordinal(), field)

    # ------------------------------------------------------------- deadlines
    def deadline(self, start: date | datetime, n: int, unit: Unit = "calendar") -> date:
        """The last day of a period of ``n`` units that begins after ``start``.

        ``unit`` is ``"calendar"`` (民法典 第二百零一条, 第二百零三条 under the
        holiday policy), ``"working"`` (weekends and holidays skipped, make-up
        days counted), ``"month"`` or ``"year"`` (第二百零二条).  ``n`` is at
        least 1 and at most :data:`MAX_PERIOD` of the unit.  With provisional
        data the result is a :class:`ProvisionalDate`.

        >>> cal = Calendar()
        >>> cal.deadline(date(2022, 1, 31), 1, "month")   # no 02-31: the month's last day
        datetime.date(2022, 2, 28)
        """
        if type(start) is date and type(n) is int and n > 0:
            o = start.toordinal()
            i = o - self._base
            if 0 <= i < len(self._rest) and not self.allow_provisional:
                if unit == "working":
                    k = self._cum[i] + n - 1
                    if k < len(self._work) and n <= 25000:  # MAX_PERIOD["working"]
                        return date.fromordinal(self._work[k])
                elif unit == "calendar":
                    j = i + n
                    if j < len(self._rest) and n <= 36600:  # MAX_PERIOD["calendar"]
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

        >>> p = Calendar().period(date(2022, 9, 23), 8)
        >>> p.last_day, p.due, p.rolled, p.rules
        (datetime.date(2022, 10, 1), datetime.date(2022, 10, 8), True, ('R-DUE-HOLIDAY',))
        """
        s = self.to_date(start, "start")
        _check_period(n, unit)
        try:
            return self._period(s, n, unit)
        except CalendarDataMissing as err:
            raise _missing(err, "start" if err.year == s.year else "n") from None

    def _period(self, s: date, n: int, unit: str) -> Period:
        if unit == "working":
            due = self._nth_working_after(s, n)
            return Period(s, n, "working", due, due, False, self._provisional_between(s, due), ())
        if unit == "calendar":
            if s.toordinal() + n > _LAST_ORDINAL:
                _beyond("n", f"{n} days after {s}")
            last = s + timedelta(days=n)
        else:
            months = n if unit == "month" else 12 * n
            if s.year + (s.month - 1 + months) // 12 > 9999:
                _beyond("n", f"{n} {_UNIT_WORDS[unit]} after {s}")
            last = _add_months(s, months)
        due = self._adjust(last, "n")
        rules = ("R-DUE-HOLIDAY",) if due != last else ()
        return Period(
            s,
            n,
            unit,  # type: ignore[arg-type] # one of _UNITS, checked by _check_period
            last,
            due,
            due != last,
            self._provisional_between(s, due),
            rules,
        )

    def _nth_working_after(self, s: date, n: int) -> date:
        """The n-th working day after ``s``: tables grown by whole years, a few at a time."""
        o = s.toordinal()
        self._index(o)
        while True:
            k = self._cum[o - self._base] + n - 1
            if k < len(self._work):
                return date.fromordinal(self._work[k])
            missing = k - len(self._work) + 1  # a year holds at most 366 working days
            y1 = self._y1 + max(1, -(-missing // 366))
            if y1 > 9999:
                _beyond("n", f"{n} working days after {s}")
            if y1 - s.year >= MAX_SPAN_YEARS:
                raise InputLimitExceeded(
                    "n",
                    f"{n} working days after {s} run past {MAX_SPAN_YEARS} years of the "
                    f"holiday data (超出{MAX_SPAN_YEARS}年)",
                )
            for y in range(self._y1 + 1, y1 + 1):
                self._year(y)  # the first year without data is the one named
            self._ensure(s.year, y1)

    def working_days_before(self, d: date | datetime, n: int) -> date:
        """The ``n``-th working day before ``d`` (``d`` itself not counted).

        ``n`` is at least 1 and at most ``MAX_PERIOD["working"]``.

        >>> Calendar().working_days_before(date(2022, 1, 31), 5)   # 01-29, 01-30 are make-up days
        datetime.date(2022, 1, 26)
        """
        day = self.to_date(d, "d")
        _check_period(n, "working")
        try:
            return self._nth_working_before(day, n)
        except CalendarDataMissing as err:
            raise _missing(err, "d" if err.year == day.year else "n") from None

    def _nth_working_before(self, day: date, n: int) -> date:
        o = day.toordinal() - 1
        if o < 1:
            _beyond("n", f"{n} working days before {day}")
        self._index(o)
        while True:
            k = self._cum[o - self._base] - n
            if k >= 0:
                return date.fromordinal(self._work[k])
            y0 = self._y0 - max(1, -(k // 366))  # -k working days short
            if y0 < 1:
                _beyond("n", f"{n} working days before {day}")
            if day.year - y0 >= MAX_SPAN_YEARS:
                raise InputLimitExceeded(
                    "n",
                    f"{n} working days before {day} run past {MAX_SPAN_YEARS} years of the "
                    f"holiday data (超出{MAX_SPAN_YEARS}年)",
                )
            for y in range(self._y0 - 1, y0 - 1, -1):
                self._year(y)  # the first year without data is the one named
            self._ensure(y0, date.fromordinal(o).year)

    def due_instant(self, d: date) -> pendulum.DateTime:
        """The instant a due day ends: 24:00 local (the next day's 00:00), or office close.

        >>> Calendar().due_instant(date(2022, 3, 15)).isoformat()
        '2022-03-16T00:00:00+08:00'
        """
        if self.office_close is not None:
            c = self.office_close
            return pendulum.datetime(
                d.year, d.month, d.day, c.hour, c.minute, c.second, tz=self._tz
            )
        if d.toordinal() >= _LAST_ORDINAL:
            _beyond("d", f"the end of {d}")
        nxt = d + timedelta(days=1)
        return pendulum.datetime(nxt.year, nxt.month, nxt.day, tz=self._tz)

    def is_late(self, due: date, at: datetime) -> bool:
        """True when the aware instant ``at`` is past the end of the due day."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise NaiveDatetime("at")
        return at >= self.due_instant(due)


def _check_period(n: object, unit: object) -> None:
    """``n`` a whole number from 1 to the unit's :data:`MAX_PERIOD`; ``unit`` known."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidArgument("n", f"expected a whole number of units, got {n!r}")
    if n < 1:
        raise InvalidArgument("n", f"a period lasts at least 1 unit, got {n}")
    if unit not in _UNITS:
        raise InvalidArgument("unit", f"unknown unit {unit!r}; use one of {', '.join(_UNITS)}")
    limit = MAX_PERIOD[str(unit)]
    if n > limit:
        raise InputLimitExceeded(
            "n",
            f"{n} {_UNIT_WORDS[str(unit)]} (unit {unit}) is beyond the limit of {limit} "
            f"{_UNIT_WORDS[str(unit)]} (期限超出上限：最多{limit}{_UNIT_ZH[str(unit)]})",
        )


def _missing(err: CalendarDataMissing, field: str) -> CalendarDataMissing:
    """The same missing year, naming the argument of the public call that needed it."""
    return CalendarDataMissing(err.year, err.available, field=field)


def _add_months(d: date, months: int) -> date:
    """第二百零二条: the corresponding day, or the month's last day where there is none."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, _stdcal.monthrange(y, m)[1]))
