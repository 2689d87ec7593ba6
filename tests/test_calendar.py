"""fireflow.calendar: rest days, working days and legal deadlines.

Hand-checked values come from the State Council's 2022 holiday notice
(国务院办公厅关于2022年部分节假日安排的通知, 国办发明电〔2021〕11号):

* 元旦 01-01 .. 01-03
* 春节 01-31 .. 02-06; make-up working days 01-29 (Sat) and 01-30 (Sun)
* 清明 04-03 .. 04-05; make-up 04-02 (Sat)
* 劳动节 04-30 .. 05-04; make-up 04-24 (Sun) and 05-07 (Sat)
* 端午 06-03 .. 06-05
* 中秋 09-10 .. 09-12
* 国庆 10-01 .. 10-07; make-up 10-08 (Sat) and 10-09 (Sun)

Periods follow 民法典 第二百零一条 to 第二百零三条 (see DOMAIN.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pendulum
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import SHANGHAI, aware_datetimes, dates, periods, scaled

from fireflow import (
    Calendar,
    CalendarDataMissing,
    ChineseCalendarSource,
    CorrectedSource,
    Correction,
    FireflowError,
    HolidaySource,
    InputLimitExceeded,
    InvalidArgument,
    NaiveDatetime,
    Plan,
    PlanError,
    Problem,
    ProvisionalDate,
    YearData,
    calendar_for_plan,
    load_plan,
    parse_plan,
)
from fireflow.calendar import BUILTIN_CORRECTIONS, MAX_PERIOD

PLAN = load_plan("changle-2022")

FAST = settings(max_examples=scaled(100), deadline=None, database=None)
SLOW = settings(
    max_examples=scaled(50),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# 国办发明电〔2021〕11号, transcribed by hand (not read from chinese_calendar).
HOLIDAYS_2022: frozenset[date] = frozenset(
    _span(date(2022, 1, 1), date(2022, 1, 3))
    + _span(date(2022, 1, 31), date(2022, 2, 6))
    + _span(date(2022, 4, 3), date(2022, 4, 5))
    + _span(date(2022, 4, 30), date(2022, 5, 4))
    + _span(date(2022, 6, 3), date(2022, 6, 5))
    + _span(date(2022, 9, 10), date(2022, 9, 12))
    + _span(date(2022, 10, 1), date(2022, 10, 7))
)
MAKEUP_2022: frozenset[date] = frozenset(
    [
        date(2022, 1, 29),
        date(2022, 1, 30),
        date(2022, 4, 2),
        date(2022, 4, 24),
        date(2022, 5, 7),
        date(2022, 10, 8),
        date(2022, 10, 9),
    ]
)


def _calendar(**kwargs: object) -> Calendar:
    return Calendar(**kwargs)  # type: ignore[arg-type]


def _warm(cal: Calendar) -> Calendar:
    """Build the lookup tables over 2022-2026 so that ``deadline`` takes its fast path."""
    cal.is_rest_day(date(2022, 1, 1))
    cal.is_rest_day(date(2026, 12, 31))
    return cal


DEFAULT = _warm(_calendar())
ROLL_BACK = _warm(_calendar(holiday_policy="roll_back"))
NO_POLICY = _warm(_calendar(holiday_policy="none"))


def reference_working_deadline(start: date, n: int) -> date:
    """The n-th working day after ``start``, one day at a time (brute force)."""
    d, seen = start, 0
    while seen < n:
        d += timedelta(days=1)
        if chinese_calendar.is_workday(d):
            seen += 1
    return d


# =========================================================================== #
# The official 2022 calendar, day by day


def test_every_day_of_2022_matches_the_state_council_notice() -> None:
    cal = PLAN.calendar
    for d in _span(date(2022, 1, 1), date(2022, 12, 31)):
        expected_rest = d in HOLIDAYS_2022 or (d.weekday() >= 5 and d not in MAKEUP_2022)
        assert cal.is_rest_day(d) is expected_rest, d
        assert cal.is_working_day(d) is not expected_rest, d


def test_2022_has_249_working_days() -> None:
    # 365 days - 105 weekend days - 18 holidays on weekdays + 7 make-up days = 249
    assert PLAN.calendar.working_days_between(date(2021, 12, 31), date(2022, 12, 31)) == 249


# =========================================================================== #
# Hand-checked deadlines (国办发明电〔2021〕11号)


@pytest.mark.parametrize(
    ("start", "n", "unit", "expected"),
    [
        # calendar days (民法典 第二百零一条, 第二百零三条 with roll_forward)
        (date(2022, 9, 30), 1, "calendar", date(2022, 10, 8)),  # 10-01 国庆 -> 10-08 make-up Sat
        (date(2022, 9, 23), 8, "calendar", date(2022, 10, 8)),
        (date(2022, 1, 30), 1, "calendar", date(2022, 2, 7)),  # 01-31 春节 -> 02-07 Mon
        (date(2022, 1, 27), 2, "calendar", date(2022, 1, 29)),  # 01-29 is a make-up Sat: no roll
        (date(2022, 4, 1), 1, "calendar", date(2022, 4, 2)),  # 04-02 make-up Sat
        (date(2022, 4, 1), 2, "calendar", date(2022, 4, 6)),  # 04-03 清明 -> 04-06
        (date(2022, 5, 1), 6, "calendar", date(2022, 5, 7)),  # 05-07 make-up Sat
        (date(2022, 6, 1), 3, "calendar", date(2022, 6, 6)),  # 06-04 端午 -> 06-06
        (date(2022, 9, 9), 1, "calendar", date(2022, 9, 13)),  # 09-10 中秋 -> 09-13
        (date(2022, 12, 9), 1, "calendar", date(2022, 12, 12)),  # Sat -> Mon
        (date(2022, 3, 14), 1, "calendar", date(2022, 3, 15)),  # plain Tuesday
        # working days: weekends and holidays skipped, make-up days counted
        (date(2022, 1, 28), 1, "working", date(2022, 1, 29)),  # make-up Sat
        (date(2022, 1, 28), 2, "working", date(2022, 1, 30)),  # make-up Sun
        (date(2022, 1, 28), 3, "working", date(2022, 2, 7)),  # 01-31..02-06 春节
        (date(2022, 4, 1), 1, "working", date(2022, 4, 2)),  # make-up Sat
        (date(2022, 4, 2), 1, "working", date(2022, 4, 6)),  # 04-03..04-05 清明
        (date(2022, 4, 23), 1, "working", date(2022, 4, 24)),  # make-up Sun
        (date(2022, 4, 29), 1, "working", date(2022, 5, 5)),  # 04-30..05-04 劳动节
        (date(2022, 5, 6), 1, "working", date(2022, 5, 7)),  # make-up Sat
        (date(2022, 6, 2), 1, "working", date(2022, 6, 6)),  # 06-03..06-05 端午
        (date(2022, 9, 9), 1, "working", date(2022, 9, 13)),  # 09-10..09-12 中秋
        (date(2022, 9, 30), 1, "working", date(2022, 10, 8)),  # 国庆, make-up Sat
        (date(2022, 9, 30), 3, "working", date(2022, 10, 10)),
        (date(2021, 12, 31), 1, "working", date(2022, 1, 4)),  # 01-01..01-03 元旦
        # months (第二百零二条): the corresponding day, or the month's last day
        (date(2022, 1, 31), 1, "month", date(2022, 2, 28)),  # 02-28 is a Monday: no roll
        (date(2022, 3, 31), 1, "month", date(2022, 5, 5)),  # 04-30 is 劳动节 -> 05-05
        (date(2022, 9, 1), 1, "month", date(2022, 10, 8)),  # 10-01 国庆 -> 10-08
        (date(2022, 8, 31), 1, "month", date(2022, 9, 30)),  # Friday
        (date(2023, 12, 31), 2, "month", date(2024, 2, 29)),  # leap day, a Thursday
        # years: 2021-02-28 is a Sunday
        (date(2020, 2, 29), 1, "year", date(2021, 3, 1)),
    ],
)
def test_hand_checked_deadlines(start: date, n: int, unit: str, expected: date) -> None:
    assert PLAN.calendar.deadline(start, n, unit) == expected  # type: ignore[arg-type]
    assert _calendar().deadline(start, n, unit) == expected  # type: ignore[arg-type]
    assert _calendar().period(start, n, unit).due == expected  # type: ignore[arg-type]


def test_month_period_details() -> None:
    cal = PLAN.calendar
    p = cal.period(date(2022, 1, 31), 1, "month")
    assert (p.last_day, p.due, p.rolled) == (date(2022, 2, 28), date(2022, 2, 28), False)
    assert p.rules == ()
    assert cal.is_working_day(date(2022, 2, 28))
    p = cal.period(date(2022, 3, 31), 1, "month")
    assert p.last_day == date(2022, 4, 30)  # no 04-31
    assert (p.due, p.rolled, p.rules) == (date(2022, 5, 5), True, ("R-DUE-HOLIDAY",))


@pytest.mark.parametrize(
    ("policy", "start", "n", "expected"),
    [
        ("roll_back", date(2022, 9, 29), 2, date(2022, 9, 30)),  # 10-01 -> 09-30
        ("roll_back", date(2022, 2, 1), 5, date(2022, 1, 30)),  # 02-06 -> 01-30 make-up Sun
        ("roll_back", date(2022, 12, 9), 1, date(2022, 12, 9)),  # 12-10 Sat -> Fri
        ("none", date(2022, 9, 30), 1, date(2022, 10, 1)),
        ("none", date(2022, 12, 9), 1, date(2022, 12, 10)),
    ],
)
def test_hand_checked_policies(policy: str, start: date, n: int, expected: date) -> None:
    cal = _calendar(holiday_policy=policy)
    assert cal.deadline(start, n, "calendar") == expected
    assert cal.period(start, n, "calendar").due == expected


def test_working_days_between_hand_checked() -> None:
    cal = PLAN.calendar
    assert cal.working_days_between(date(2022, 1, 28), date(2022, 2, 7)) == 3
    assert cal.working_days_between(date(2022, 2, 7), date(2022, 1, 28)) == -3
    assert cal.working_days_between(date(2022, 9, 30), date(2022, 10, 10)) == 3
    assert cal.working_days_between(date(2022, 10, 1), date(2022, 10, 7)) == 0
    assert cal.working_days_between(date(2022, 3, 15), date(2022, 3, 15)) == 0


def test_next_and_previous_working_day_hand_checked() -> None:
    cal = PLAN.calendar
    assert cal.next_working_day(date(2022, 10, 1)) == date(2022, 10, 8)
    assert cal.next_working_day(date(2022, 10, 8)) == date(2022, 10, 8)
    assert cal.next_working_day(date(2022, 10, 8), include=False) == date(2022, 10, 9)
    assert cal.previous_working_day(date(2022, 2, 6)) == date(2022, 1, 30)
    assert cal.previous_working_day(date(2022, 1, 3)) == date(2021, 12, 31)  # crosses a year
    assert cal.next_working_day(date(2022, 12, 31)) == date(2023, 1, 3)  # 2023 元旦 12-31..01-02
    assert cal.working_days_before(date(2022, 1, 31), 5) == date(2022, 1, 26)  # 01-29/30 count
    assert cal.working_days_before(date(2022, 1, 4), 1) == date(2021, 12, 31)


def test_due_instant_and_is_late() -> None:
    cal = PLAN.calendar
    assert cal.due_instant(date(2022, 3, 15)) == pendulum.datetime(2022, 3, 16, tz="Asia/Shanghai")
    utc = UTC
    assert not cal.is_late(date(2022, 3, 15), datetime(2022, 3, 15, 15, 59, 59, tzinfo=utc))
    assert cal.is_late(date(2022, 3, 15), datetime(2022, 3, 15, 16, 0, tzinfo=utc))
    office = _calendar(office_close=time(17, 30))
    assert office.due_instant(date(2022, 3, 15)) == pendulum.datetime(
        2022, 3, 15, 17, 30, tz="Asia/Shanghai"
    )
    assert office.is_late(date(2022, 3, 15), datetime(2022, 3, 15, 9, 30, tzinfo=utc))


# =========================================================================== #
# The Civil Code's worked example


class _CommentarySource:
    """2020 as the commentary's example assumes it: National Day rest 10-01 .. 10-07."""

    def year_data(self, year: int) -> YearData | None:
        if year != 2020:
            return None
        rest = _span(date(2020, 10, 1), date(2020, 10, 7))
        return YearData.from_days(2020, rest, (), source="commentary example")


def test_civil_code_worked_example() -> None:
    # 民法典 第二百零三条: a period whose last day (2020-10-01) is a statutory rest
    # day ends on the first day after the rest, 2020-10-08 in the commentary.
    cal = _calendar(source=_CommentarySource())
    p = cal.period(date(2020, 9, 30), 1, "calendar")
    assert (p.last_day, p.due, p.rolled) == (date(2020, 10, 1), date(2020, 10, 8), True)
    assert cal.deadline(date(2020, 9, 30), 1) == date(2020, 10, 8)


def test_civil_code_example_on_the_official_2020_calendar() -> None:
    # The official 2020 notice (国办发明电〔2019〕16号) joined 国庆 and 中秋:
    # rest 10-01 .. 10-08, make-up 09-27 (Sun) and 10-10 (Sat).  On the real
    # calendar the same period therefore ends on 10-09, not on the commentary's 10-08.
    cal = _calendar()
    assert cal.is_rest_day(date(2020, 10, 8))
    assert cal.is_working_day(date(2020, 9, 27))
    assert cal.deadline(date(2020, 9, 30), 1) == date(2020, 10, 9)


# =========================================================================== #
# Properties


@FAST
@given(periods(st.sampled_from(["calendar", "working", "month", "year"])), st.data())
def test_deadline_is_monotone_and_after_start(
    period: tuple[date, int, str], data: st.DataObject
) -> None:
    start, n, unit = period
    m = data.draw(st.integers(min_value=1, max_value=n), label="m")
    due_n = DEFAULT.deadline(start, n, unit)  # type: ignore[arg-type]
    due_m = DEFAULT.deadline(start, m, unit)  # type: ignore[arg-type]
    assert start < due_m <= due_n
    assert DEFAULT.is_working_day(due_n)


@FAST
@given(periods(st.just("working")))
def test_working_deadline_lands_on_a_working_day(period: tuple[date, int, str]) -> None:
    start, n, _ = period
    due = DEFAULT.deadline(start, n, "working")
    assert due > start
    assert DEFAULT.is_working_day(due)
    assert chinese_calendar.is_workday(due)
    assert DEFAULT.working_days_between(start, due) == n
    assert DEFAULT.working_days_between(due, start) == -n


@FAST
@given(periods(st.just("calendar")))
def test_calendar_deadline_under_each_policy(period: tuple[date, int, str]) -> None:
    start, n, _ = period
    raw = start + timedelta(days=n)
    forward = DEFAULT.deadline(start, n, "calendar")
    assert forward >= raw
    assert not DEFAULT.is_rest_day(forward)
    # nothing but rest days between the raw last day and the rolled one
    assert all(DEFAULT.is_rest_day(raw + timedelta(days=i)) for i in range((forward - raw).days))
    back = ROLL_BACK.deadline(start, n, "calendar")
    assert back <= raw
    assert not ROLL_BACK.is_rest_day(back)
    gap = range(1, (raw - back).days + 1)
    assert all(ROLL_BACK.is_rest_day(back + timedelta(days=i)) for i in gap)
    assert NO_POLICY.deadline(start, n, "calendar") == raw


@SLOW
@given(
    periods(st.just("working"), first=date(2022, 1, 1), last=date(2026, 12, 31)).filter(
        lambda p: p[0].year <= 2025
    )
)
def test_working_deadline_equals_brute_force_reference(period: tuple[date, int, str]) -> None:
    start, n, _ = period
    expected = reference_working_deadline(start, n)
    assert DEFAULT.deadline(start, n, "working") == expected
    assert _calendar().deadline(start, n, "working") == expected


@FAST
@given(periods())
def test_fast_path_equals_period(period: tuple[date, int, str]) -> None:
    start, n, unit = period
    fast = DEFAULT.deadline(start, n, unit)  # type: ignore[arg-type]
    assert fast == DEFAULT.period(start, n, unit).due  # type: ignore[arg-type]
    assert fast == _calendar().deadline(start, n, unit)  # type: ignore[arg-type]  # cold tables
    noon = datetime(start.year, start.month, start.day, 12, tzinfo=SHANGHAI)
    assert fast == DEFAULT.deadline(noon, n, unit)  # type: ignore[arg-type]  # not the fast path
    for cal in (ROLL_BACK, NO_POLICY):
        assert cal.deadline(start, n, unit) == cal.period(start, n, unit).due  # type: ignore[arg-type]


@FAST
@given(dates(), st.integers(min_value=1, max_value=400))
def test_working_days_before_is_the_inverse_count(d: date, n: int) -> None:
    w = DEFAULT.working_days_before(d, n)
    assert w < d
    assert DEFAULT.is_working_day(w)
    assert DEFAULT.working_days_between(w, d - timedelta(days=1)) == n - 1


@FAST
@given(dates(date(2022, 1, 1), date(2026, 12, 1)), dates(date(2022, 1, 1), date(2026, 12, 1)))
def test_working_days_between_counts_working_days(a: date, b: date) -> None:
    lo, hi = sorted((a, b))
    if (hi - lo).days > 120:
        hi = lo + timedelta(days=120)
        a, b = (lo, hi) if a <= b else (hi, lo)
    days = (lo + timedelta(days=i + 1) for i in range((hi - lo).days))
    expected = sum(chinese_calendar.is_workday(d) for d in days)
    assert DEFAULT.working_days_between(a, b) == (expected if a <= b else -expected)


# =========================================================================== #
# Aware datetimes


def test_utc_evening_is_next_day_in_shanghai() -> None:
    cal = PLAN.calendar
    assert cal.to_date(datetime(2022, 3, 15, 17, 0, tzinfo=UTC)) == date(2022, 3, 16)
    assert cal.to_date(datetime(2022, 3, 15, 15, 59, 59, tzinfo=UTC)) == date(2022, 3, 15)
    assert cal.to_date(pendulum.datetime(2022, 3, 15, 17, 0, tz="UTC")) == date(2022, 3, 16)
    ny = ZoneInfo("America/New_York")  # EDT (UTC-4) since 2022-03-13
    assert cal.to_date(datetime(2022, 3, 15, 11, 59, tzinfo=ny)) == date(2022, 3, 15)
    assert cal.to_date(datetime(2022, 3, 15, 12, 0, tzinfo=ny)) == date(2022, 3, 16)
    # 2022-09-29T16:30Z is 09-30 00:30 in Shanghai: one calendar day later is 10-01 -> 10-08
    assert cal.deadline(datetime(2022, 9, 29, 16, 30, tzinfo=UTC), 1) == date(2022, 10, 8)
    assert cal.is_rest_day(datetime(2022, 9, 30, 16, 0, tzinfo=UTC))  # 10-01 local


@FAST
@given(aware_datetimes)
def test_aware_datetimes_convert_in_shanghai(value: datetime) -> None:
    expected = value.astimezone(SHANGHAI).date()
    assert DEFAULT.to_date(value) == expected
    assert type(DEFAULT.to_date(value)) is date
    assert PLAN.local_date(value) == expected
    assert PLAN.phase_on(value) == PLAN.phase_on(expected)
    if date(2022, 1, 1) <= expected <= date(2026, 11, 1):
        assert DEFAULT.deadline(value, 3, "calendar") == DEFAULT.deadline(expected, 3, "calendar")
        assert DEFAULT.is_rest_day(value) is DEFAULT.is_rest_day(expected)


@pytest.mark.parametrize("fold", [0, 1])
def test_dst_gap_datetime_converts_by_its_own_utcoffset(fold: int) -> None:
    # Regression: an earlier version converted through pendulum.instance(), which
    # normalises a nonexistent local time the other way round and inverted the fold.
    # 2022-10-02 02:30 does not exist in Sydney (clocks jump 02:00 -> 03:00).
    # Python gives it utcoffset +10:00 with fold=0 (16:30Z, i.e. 10-02 00:30 in
    # Shanghai) and +11:00 with fold=1 (15:30Z, 10-01 23:30 in Shanghai).
    value = datetime(2022, 10, 2, 2, 30, tzinfo=ZoneInfo("Australia/Sydney"), fold=fold)
    expected = value.astimezone(SHANGHAI).date()
    assert expected == (date(2022, 10, 2) if fold == 0 else date(2022, 10, 1))
    assert DEFAULT.to_date(value) == expected


# =========================================================================== #
# Missing data, provisional estimates, replaced sources


def test_year_without_data_raises_calendar_data_missing() -> None:
    assert issubclass(CalendarDataMissing, FireflowError)
    assert issubclass(CalendarDataMissing, LookupError)
    for call in (
        lambda cal: cal.is_rest_day(date(2031, 5, 1)),
        lambda cal: cal.deadline(date(2031, 4, 30), 1, "calendar"),
        lambda cal: cal.deadline(date(2031, 4, 30), 1, "working"),
        lambda cal: cal.period(date(2031, 4, 30), 1, "month"),
    ):
        with pytest.raises(CalendarDataMissing) as info:
            call(calendar_for_plan(PLAN))
        assert info.value.year == 2031
        assert info.value.available is not None
        assert info.value.available[0] <= 2022 <= info.value.available[1] < 2031
        assert "2031" in str(info.value)
    warm = _warm(_calendar())  # tables over 2022-2026: the error still names 2031
    with pytest.raises(CalendarDataMissing) as info:
        warm.is_rest_day(date(2031, 5, 1))
    assert info.value.year == 2031
    assert warm.is_rest_day(date(2022, 10, 1))  # the failed call changed nothing


def test_period_running_past_the_data_raises() -> None:
    cal = _calendar()
    last_year = cal.source.last_year  # type: ignore[attr-defined]
    with pytest.raises(CalendarDataMissing) as info:
        cal.deadline(date(last_year, 12, 1), 60, "working")
    assert info.value.year == last_year + 1


def test_provisional_estimates_are_marked() -> None:
    cal = calendar_for_plan(PLAN, allow_provisional=True)
    due = cal.deadline(date(2031, 4, 30), 1, "calendar")  # 05-01 (Thu) is a fixed holiday
    assert isinstance(due, ProvisionalDate)
    assert isinstance(due, date)
    assert due.provisional is True
    assert due == date(2031, 5, 2)
    assert cal.period(date(2031, 4, 30), 1).provisional is True
    assert cal.is_provisional(date(2031, 1, 1))
    assert cal.is_rest_day(date(2031, 10, 3))  # fixed 国庆 day, a Friday
    # known years stay plain dates even when provisional estimates are allowed
    known = cal.deadline(date(2022, 9, 30), 1, "calendar")
    assert known == date(2022, 10, 8)
    assert getattr(known, "provisional", False) is False
    assert not cal.is_provisional(date(2022, 10, 8))


def test_working_period_crossing_into_an_estimated_year_is_provisional() -> None:
    cal = _calendar(allow_provisional=True)
    last_year = cal.source.last_year  # type: ignore[attr-defined]
    due = cal.deadline(date(last_year, 12, 1), 60, "working")
    assert isinstance(due, ProvisionalDate)
    assert due.year == last_year + 1


class _TinySource:
    """A replaced holiday table: only 2030, with one rest Monday and one make-up Saturday."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def year_data(self, year: int) -> YearData | None:
        self.asked.append(year)
        if year != 2030:
            return None
        return YearData.from_days(2030, [date(2030, 3, 4)], [date(2030, 3, 9)], source="tiny")


def test_replaced_holiday_source_is_used() -> None:
    src = _TinySource()
    assert isinstance(src, HolidaySource)
    cal = Calendar(source=src)
    assert cal.is_rest_day(date(2030, 3, 4))  # a Monday, rest by the tiny table
    assert cal.is_working_day(date(2030, 3, 9))  # a Saturday, make-up by the tiny table
    assert cal.deadline(date(2030, 3, 1), 1, "working") == date(2030, 3, 5)  # Fri -> Tue
    assert cal.deadline(date(2030, 3, 3), 1, "calendar") == date(2030, 3, 5)
    assert 2030 in src.asked
    with pytest.raises(CalendarDataMissing):
        cal.is_rest_day(date(2022, 10, 1))  # the built-in data is not consulted


def test_replaced_source_in_a_plan_calendar() -> None:
    src = _TinySource()
    cal = calendar_for_plan(PLAN, source=src)
    assert cal.is_rest_day(date(2030, 3, 4))
    with pytest.raises(CalendarDataMissing) as info:
        cal.is_rest_day(date(2022, 10, 1))
    assert info.value.year == 2022


def test_override_year_usable_after_another_year() -> None:
    # Regression: the lookup tables once had to span every year between the first
    # and the last year asked, so a calendar that had served 2022 raised
    # CalendarDataMissing(2027) for a 2031 override, and vice versa.
    data = PLAN.to_data()
    data["holidays"]["overrides"] = [
        {"year": 2031, "rest_days": ["2031-05-01"], "work_days": [], "note": ""}
    ]
    cal = calendar_for_plan(Plan.model_validate(data))
    assert cal.deadline(date(2022, 9, 30), 1) == date(2022, 10, 8)
    assert cal.is_rest_day(date(2031, 5, 1))  # a Thursday, rest by the override
    assert cal.deadline(date(2031, 4, 30), 1, "working") == date(2031, 5, 2)
    assert cal.deadline(date(2022, 1, 28), 3, "working") == date(2022, 2, 7)  # and back
    assert cal.is_working_day(date(2031, 5, 2))
    with pytest.raises(CalendarDataMissing) as info:
        cal.working_days_between(date(2022, 1, 1), date(2031, 1, 1))  # needs 2027..2030
    assert 2027 <= info.value.year <= 2030


# =========================================================================== #
# Bad arguments


def test_naive_datetimes_are_refused_with_the_field_name() -> None:
    naive = datetime(2022, 3, 15, 12, 0)  # noqa: DTZ001 (the point of the test)
    cal = PLAN.calendar
    cases = [
        ("start", lambda: cal.deadline(naive, 1)),
        ("start", lambda: cal.period(naive, 1, "working")),
        ("d", lambda: cal.is_rest_day(naive)),
        ("d", lambda: cal.next_working_day(naive)),
        ("a", lambda: cal.working_days_between(naive, date(2022, 3, 20))),
        ("b", lambda: cal.working_days_between(date(2022, 3, 1), naive)),
        ("at", lambda: cal.is_late(date(2022, 3, 15), naive)),
        ("d", lambda: PLAN.phase_on(naive)),
        ("when", lambda: PLAN.local_date(naive, "when")),
    ]
    for field, call in cases:
        with pytest.raises(NaiveDatetime) as info:
            call()
        assert info.value.field == field
        assert isinstance(info.value, InvalidArgument)
        assert isinstance(info.value, ValueError)
        assert field in str(info.value)


@pytest.mark.parametrize("n", [0, -1, -400, 1.5, 2.0, True, "3", None])
def test_bad_n_is_invalid(n: object) -> None:
    for cal in (PLAN.calendar, _calendar()):
        with pytest.raises(InvalidArgument) as info:
            cal.deadline(date(2022, 3, 1), n, "calendar")  # type: ignore[arg-type]
        assert info.value.field == "n"
        with pytest.raises(InvalidArgument) as info:
            cal.period(date(2022, 3, 1), n, "working")  # type: ignore[arg-type]
        assert info.value.field == "n"


@pytest.mark.parametrize("unit", ["days", "Working", "", "week", None])
def test_unknown_unit_is_invalid(unit: object) -> None:
    for cal in (PLAN.calendar, _calendar()):
        with pytest.raises(InvalidArgument) as info:
            cal.deadline(date(2022, 3, 1), 3, unit)  # type: ignore[arg-type]
        assert info.value.field == "unit"


def test_unknown_policy_and_bad_date_type_are_invalid() -> None:
    with pytest.raises(InvalidArgument) as info:
        _calendar(holiday_policy="sideways")
    assert info.value.field == "holiday_policy"
    with pytest.raises(InvalidArgument) as info:
        PLAN.calendar.deadline("2022-03-01", 1)  # type: ignore[arg-type]
    assert info.value.field == "start"


# =========================================================================== #
# The 2005-12-31 make-up day (国办发明电〔2005〕35号)
#
# 国务院办公厅关于2006年部分节假日安排的通知: 元旦 1月1日—3日放假 … 将12月31日（星期六）、
# 1月1日（星期日）两个公休日调至1月2日（星期一）、3日（星期二），12月31日（星期六）上班.
# chinese_calendar 1.11 lacks the make-up Saturday; fireflow corrects it.

MAKEUP_2005 = date(2005, 12, 31)


def test_2005_12_31_is_a_make_up_working_day() -> None:
    for cal in (PLAN.calendar, _calendar()):
        assert cal.is_working_day(MAKEUP_2005)
        assert not cal.is_rest_day(MAKEUP_2005)
        # the notice's window, day by day: 12-31 works, 01-01..01-03 rest, weekends rest
        for d in _span(date(2005, 12, 24), date(2006, 1, 8)):
            rest = d in _span(date(2006, 1, 1), date(2006, 1, 3)) or (
                d.weekday() >= 5 and d != MAKEUP_2005
            )
            assert cal.is_rest_day(d) is rest, d


@pytest.mark.parametrize(
    ("start", "n", "unit", "expected"),
    [
        (date(2005, 12, 30), 1, "working", date(2005, 12, 31)),  # Fri -> the make-up Sat
        (date(2005, 12, 29), 2, "working", date(2005, 12, 31)),
        (date(2005, 12, 30), 2, "working", date(2006, 1, 4)),  # 01-01..01-03 元旦
        (date(2005, 12, 24), 5, "working", date(2005, 12, 30)),
        (date(2005, 12, 24), 6, "working", date(2005, 12, 31)),
        (date(2005, 12, 30), 1, "calendar", date(2005, 12, 31)),  # a working Saturday: no roll
        (date(2005, 10, 31), 2, "month", date(2005, 12, 31)),  # a working Saturday: no roll
        (date(2005, 12, 31), 1, "calendar", date(2006, 1, 4)),
    ],
)
def test_deadlines_across_the_2005_make_up_day(
    start: date, n: int, unit: str, expected: date
) -> None:
    assert PLAN.calendar.deadline(start, n, unit) == expected  # type: ignore[arg-type]
    assert _calendar().period(start, n, unit).due == expected  # type: ignore[arg-type]


def test_the_2005_correction_is_cited_and_recorded() -> None:
    (fix,) = BUILTIN_CORRECTIONS
    assert (fix.date, fix.kind) == (MAKEUP_2005, "working")
    assert "国办发明电〔2005〕35号" in fix.source
    assert "12月31日（星期六）上班" in fix.source
    raw = ChineseCalendarSource(corrections=()).year_data(2005)
    assert raw is not None
    # without the correction the source says what the package says
    assert raw.is_rest(MAKEUP_2005) is not chinese_calendar.is_workday(MAKEUP_2005)
    data = _calendar().year_data(2005)
    assert not data.is_rest(MAKEUP_2005)
    if raw.is_rest(MAKEUP_2005):  # the package still lacks it: the correction is recorded
        assert data.corrections == (fix,)
        assert data.source.endswith("corrected: 2005-12-31 working")
    else:  # pragma: no cover - a later package carries it: the correction changes nothing
        assert data.corrections == ()
    assert _calendar().year_data(2006).corrections == ()


def test_the_data_agrees_with_the_package_on_every_other_day() -> None:
    # 2004-2026: fireflow differs from chinese_calendar on the corrected days only
    cal = _calendar()
    corrected = {c.date for c in BUILTIN_CORRECTIONS}
    for d in _span(date(2004, 1, 1), date(2026, 12, 31)):
        if d in corrected:
            assert cal.is_working_day(d)
        else:
            assert cal.is_working_day(d) is chinese_calendar.is_workday(d), d


# =========================================================================== #
# Single-day corrections: the Calendar API


def _fix(
    d: date, kind: str = "rest", source: str = "一份示例通知 (an example notice)"
) -> Correction:
    return Correction(d, kind, source=source)  # type: ignore[arg-type]


def test_a_correction_in_the_calendar_api() -> None:
    cal = _calendar(corrections=[_fix(date(2022, 10, 10))])  # a Monday made a rest day
    assert cal.is_rest_day(date(2022, 10, 10))
    assert cal.deadline(date(2022, 10, 9), 1, "working") == date(2022, 10, 11)
    assert cal.deadline(date(2022, 10, 9), 1, "calendar") == date(2022, 10, 11)
    assert cal.year_data(2022).corrections == (_fix(date(2022, 10, 10)),)
    assert isinstance(cal.source, CorrectedSource)
    wrapped = CorrectedSource(ChineseCalendarSource(), [_fix(date(2022, 10, 10))])
    assert _calendar(source=wrapped).is_rest_day(date(2022, 10, 10))


@pytest.mark.parametrize(
    ("corrections", "field", "words"),
    [
        ([_fix(date(2031, 5, 6))], "corrections[0].date", "no holiday data for 2031"),
        ([_fix(date(2022, 10, 1))], "corrections[0].kind", "changes nothing"),  # 国庆: rest
        ([_fix(date(2022, 10, 8), "working")], "corrections[0].kind", "changes nothing"),
        ([_fix(MAKEUP_2005, "working")], "corrections[0].kind", "changes nothing"),  # built in
        (
            [_fix(date(2022, 10, 10)), _fix(date(2022, 10, 10), "rest", "another")],
            "corrections[1].date",
            "more than once",
        ),
        ([{"date": "2022-10-10"}], "corrections[0]", "expected a Correction"),
    ],
)
def test_bad_corrections_are_refused_in_the_calendar_api(
    corrections: list[object], field: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        _calendar(corrections=corrections)
    assert info.value.field == field
    assert words in str(info.value)


def test_a_correction_cites_its_document() -> None:
    with pytest.raises(InvalidArgument) as info:
        _fix(date(2022, 10, 10), source="  ")
    assert info.value.field == "source"
    with pytest.raises(InvalidArgument) as info:
        _fix(date(2022, 10, 10), source="国办\u202e发明电")
    assert info.value.field == "source"
    with pytest.raises(InvalidArgument) as info:
        _fix(date(2022, 10, 10), kind="holiday")
    assert info.value.field == "kind"
    with pytest.raises(InvalidArgument) as info:
        Correction(datetime(2022, 10, 10, tzinfo=UTC), "rest", source="x")  # type: ignore[arg-type]
    assert info.value.field == "date"


@FAST
@given(
    st.dates(date(2004, 1, 1), date(2026, 12, 31)),
    st.sampled_from(["observed", "holidays_only"]),
)
def test_a_correction_changes_exactly_that_day(day: date, rest_days: str) -> None:
    base = ChineseCalendarSource(rest_days)  # type: ignore[arg-type]
    before = base.year_data(day.year)
    assert before is not None
    kind = "working" if before.is_rest(day) else "rest"
    cal = _calendar(source=base, corrections=[_fix(day, kind)])
    after = cal.year_data(day.year)
    i = (day - date(day.year, 1, 1)).days
    changed = [j for j in range(len(before.rest)) if before.rest[j] != after.rest[j]]
    assert changed == [i]
    assert cal.is_rest_day(day) is (kind == "rest")
    for other in (day.year - 1, day.year + 1):  # the neighbouring years are untouched
        if base.year_data(other) is not None:
            assert cal.year_data(other).rest == base.year_data(other).rest  # type: ignore[union-attr]
    if rest_days == "observed":  # the same through a plan's holidays.corrections
        plan = _with_corrections([{"date": day, "kind": kind, "source": "示例 (example)"}])
        theirs = plan.calendar.year_data(day.year).rest
        ours = PLAN.calendar.year_data(day.year).rest
        assert [j for j in range(len(ours)) if ours[j] != theirs[j]] == [i]


# =========================================================================== #
# Single-day corrections: the plan format


def _with_corrections(corrections: list[dict[str, object]], **holidays: object) -> Plan:
    data = PLAN.to_data()
    data["holidays"] = {**data["holidays"], **holidays, "corrections": corrections}
    return Plan.model_validate(data)


def _plan_problems(corrections: list[dict[str, object]], **holidays: object) -> list[Problem]:
    data = PLAN.to_data()
    data["holidays"] = {**data["holidays"], **holidays, "corrections": corrections}
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    with pytest.raises(PlanError) as info:
        parse_plan(text, source="p.yaml")
    return list(info.value.problems)


def test_a_plan_corrects_a_day() -> None:
    entry = {"date": "2022-10-10", "kind": "rest", "source": "示例通知 (an example notice)"}
    data = PLAN.to_data()
    data["holidays"]["corrections"] = [entry]
    plan = parse_plan(yaml.safe_dump(data, allow_unicode=True), source="p.yaml")
    assert plan.holidays.corrections[0].date == date(2022, 10, 10)
    cal = plan.calendar
    assert cal.is_rest_day(date(2022, 10, 10))
    assert cal.deadline(date(2022, 10, 9), 1, "working") == date(2022, 10, 11)
    assert cal.year_data(2022).corrections[0].source == entry["source"]
    assert cal.is_working_day(MAKEUP_2005)  # the built-in correction still holds
    assert parse_plan(plan.to_yaml()) == plan  # the round trip keeps the correction


@pytest.mark.parametrize(
    ("corrections", "holidays", "expected"),
    [
        (  # a year without data
            [{"date": "2031-05-06", "kind": "rest", "source": "x"}],
            {},
            [("holidays.corrections[0].date", "no holiday data for 2031")],
        ),
        (  # changes nothing: 2022-10-08 is a make-up working day already
            [{"date": "2022-10-08", "kind": "working", "source": "国办发明电〔2021〕11号"}],
            {},
            [("holidays.corrections[0].kind", "changes nothing")],
        ),
        (  # changes nothing: fireflow already corrects 2005-12-31
            [{"date": "2005-12-31", "kind": "working", "source": "国办发明电〔2005〕35号"}],
            {},
            [("holidays.corrections[0].kind", "changes nothing")],
        ),
        (  # the same day twice
            [
                {"date": "2022-10-10", "kind": "rest", "source": "x"},
                {"date": "2022-10-10", "kind": "rest", "source": "y"},
            ],
            {},
            [("holidays.corrections[1].date", "more than once")],
        ),
        (  # a year the overrides give whole
            [{"date": "2031-05-06", "kind": "rest", "source": "x"}],
            {"overrides": [{"year": 2031, "rest_days": ["2031-05-01"], "work_days": []}]},
            [("holidays.corrections[0].date", "overrides")],
        ),
        (  # no official data at all
            [{"date": "2022-10-10", "kind": "rest", "source": "x"}],
            {"source": "none"},
            [("holidays.corrections[0].date", "no holiday data for 2022")],
        ),
        (  # every correction cites its document
            [{"date": "2022-10-10", "kind": "rest"}],
            {},
            [("holidays.corrections[0].source", "required")],
        ),
        (
            [{"date": "2022-10-10", "kind": "rest", "source": ""}],
            {},
            [("holidays.corrections[0].source", "at least 1")],
        ),
        (
            [{"date": "2022-10-10", "kind": "holiday", "source": "x"}],
            {},
            [("holidays.corrections[0].kind", "'working' or 'rest'")],
        ),
    ],
)
def test_bad_corrections_are_plan_errors_with_paths(
    corrections: list[dict[str, object]],
    holidays: dict[str, object],
    expected: list[tuple[str, str]],
) -> None:
    problems = _plan_problems(corrections, **holidays)
    found = [(p.path, p.message) for p in problems]
    assert len(found) == len(expected), found
    for (path, message), (want_path, words) in zip(found, expected, strict=True):
        assert path == want_path
        assert words in message
    assert all(p.line is not None for p in problems)


def test_plan_corrections_under_holidays_only() -> None:
    # a working Saturday is a change when weekends are rest days (observed); with
    # rest_days: holidays_only the Saturday is a working day already: no change
    plan = _with_corrections([{"date": "2022-10-15", "kind": "working", "source": "x"}])
    assert plan.calendar.is_working_day(date(2022, 10, 15))
    data = PLAN.to_data()
    data["settings"]["rest_days"] = "holidays_only"
    data["holidays"]["corrections"] = [{"date": "2022-10-15", "kind": "working", "source": "x"}]
    with pytest.raises(PlanError) as info:
        parse_plan(yaml.safe_dump(data, allow_unicode=True))
    assert [p.path for p in info.value.problems] == ["holidays.corrections[0].kind"]


def test_plan_corrections_are_checked_when_the_calendar_is_built() -> None:
    # a plan built without load-time validation still gets a typed error
    plan = _with_corrections([{"date": "2031-05-06", "kind": "rest", "source": "x"}])
    with pytest.raises(InvalidArgument) as info:
        _ = plan.calendar
    assert info.value.field == "holidays.corrections[0].date"


# =========================================================================== #
# Bounded periods (#11): limits per unit, no overflow, no long loops


LIMITS = {"calendar": 36600, "working": 25000, "month": 1200, "year": 100}
ROUGH = calendar_for_plan(PLAN, allow_provisional=True)


def test_the_documented_limits() -> None:
    assert dict(MAX_PERIOD) == LIMITS


@pytest.mark.parametrize("unit", sorted(LIMITS))
def test_n_beyond_the_limit_is_refused(unit: str) -> None:
    rough = calendar_for_plan(PLAN, allow_provisional=True)
    limit = LIMITS[unit]
    for n in (limit + 1, 10**9):
        for call in (
            lambda: rough.deadline(date(2022, 1, 1), n, unit),  # type: ignore[arg-type]  # noqa: B023
            lambda: rough.period(date(2022, 1, 1), n, unit),  # type: ignore[arg-type]  # noqa: B023
            lambda: PLAN.calendar.deadline(date(2022, 1, 1), n, unit),  # type: ignore[arg-type]  # noqa: B023
        ):
            with pytest.raises(InputLimitExceeded) as info:
                call()
            assert info.value.field == "n"
            assert str(n) in str(info.value)
            assert unit in str(info.value)
            assert str(limit) in str(info.value)
    due = rough.deadline(date(2022, 1, 1), limit, unit)  # type: ignore[arg-type]
    assert isinstance(due, ProvisionalDate)
    assert 2100 <= due.year <= 2123


def test_working_days_before_is_bounded() -> None:
    rough = calendar_for_plan(PLAN, allow_provisional=True)
    with pytest.raises(InputLimitExceeded) as info:
        rough.working_days_before(date(2022, 1, 1), 25001)
    assert info.value.field == "n"
    assert "working" in str(info.value)
    assert rough.working_days_before(date(2022, 1, 1), 25000).year >= 1920
    for n in (0, -1, 1.5, True, "3", None):
        with pytest.raises(InvalidArgument) as info:
            PLAN.calendar.working_days_before(date(2022, 3, 1), n)  # type: ignore[arg-type]
        assert info.value.field == "n"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda cal: cal.deadline(date(9999, 12, 1), 60, "calendar"), "n"),
        (lambda cal: cal.deadline(date.max, 1, "calendar"), "n"),
        (lambda cal: cal.deadline(date(9999, 12, 1), 60, "working"), "n"),
        (lambda cal: cal.deadline(date(9999, 1, 31), 12, "month"), "n"),
        (lambda cal: cal.deadline(date(9990, 1, 1), 100, "year"), "n"),
        (lambda cal: cal.working_days_before(date(1, 1, 5), 60), "n"),
        (lambda cal: cal.working_days_before(date.min, 1), "n"),
        (lambda cal: cal.next_working_day(date.max, include=False), "d"),
        (lambda cal: cal.previous_working_day(date.min, include=False), "d"),
        (lambda cal: cal.due_instant(date.max), "d"),
        (lambda cal: cal.to_date(datetime.max.replace(tzinfo=UTC), "at"), "at"),
        (lambda cal: cal.year_data(10000), "year"),
        (lambda cal: cal.working_days_between(date(2022, 1, 1), date(2300, 1, 1)), "b"),
    ],
)
def test_results_beyond_the_dates_are_typed_errors(call: object, field: str) -> None:
    rough = calendar_for_plan(PLAN, allow_provisional=True)
    with pytest.raises(InputLimitExceeded) as info:
        call(rough)  # type: ignore[operator]
    assert info.value.field == field
    assert not isinstance(info.value, OverflowError)


@FAST
@given(
    st.dates(date(1, 1, 1), date(9999, 12, 31)),
    st.sampled_from(sorted(LIMITS)),
    st.integers(min_value=1, max_value=36600),
)
def test_any_period_answers_or_refuses_with_a_typed_error(start: date, unit: str, n: int) -> None:
    n = min(n, LIMITS[unit])
    field: str | None = None
    try:
        due = ROUGH.deadline(start, n, unit)  # type: ignore[arg-type]
    except InputLimitExceeded as err:
        field = err.field  # past 9999-12-31, or no n-th working day within 200 years
    else:
        assert due > start
    assert field in (None, "n")


_HANG_GUARD = """
import sys
from datetime import date
from fireflow import calendar_for_plan, load_plan, InputLimitExceeded
cal = calendar_for_plan(load_plan("changle-2022"), allow_provisional=True)
print(cal.deadline(date(2022, 1, 1), 25000, "working").isoformat())
print(cal.working_days_before(date(2022, 1, 1), 25000).isoformat())
print(cal.deadline(date(9000, 1, 1), 25000, "working").isoformat())
for n in (25001, 10**9):
    try:
        cal.deadline(date(2022, 1, 1), n, "working")
    except InputLimitExceeded as err:
        print(err.field)
"""


def test_long_working_periods_with_provisional_data_answer_promptly() -> None:
    # a hang guard, not a timing: the old code stepped a year at a time, rebuilding
    # every table each step, and took minutes for 10**9
    proc = subprocess.run(
        [sys.executable, "-c", _HANG_GUARD],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    lines = proc.stdout.split()
    assert lines[0] == ROUGH.deadline(date(2022, 1, 1), 25000, "working").isoformat()
    assert lines[3:] == ["n", "n"]


# =========================================================================== #
# Missing data names the year and the argument (#16)


@pytest.mark.parametrize(
    ("call", "year", "field"),
    [
        (lambda cal: cal.deadline(date(2031, 4, 30), 1, "calendar"), 2031, "start"),
        (lambda cal: cal.deadline(date(2026, 12, 1), 60, "working"), 2027, "n"),
        (lambda cal: cal.deadline(date(2026, 12, 1), 60, "calendar"), 2027, "n"),
        (lambda cal: cal.period(date(2026, 6, 1), 7, "month"), 2027, "n"),
        (lambda cal: cal.working_days_before(date(2004, 1, 5), 30), 2003, "n"),
        (lambda cal: cal.working_days_before(date(2031, 1, 5), 3), 2031, "d"),
        (lambda cal: cal.is_rest_day(date(2031, 5, 1)), 2031, "d"),
        (lambda cal: cal.next_working_day(date(2026, 12, 31), include=False), 2027, "d"),
        (lambda cal: cal.adjust(date(2031, 5, 1)), 2031, "d"),
        (lambda cal: cal.working_days_between(date(2022, 1, 1), date(2031, 1, 1)), 2031, "b"),
        (lambda cal: cal.year_data(2031), 2031, "year"),
    ],
)
def test_missing_data_names_the_year_and_the_argument(call: object, year: int, field: str) -> None:
    with pytest.raises(CalendarDataMissing) as info:
        call(PLAN.calendar)  # type: ignore[operator]
    assert (info.value.year, info.value.field) == (year, field)
    assert str(info.value).startswith(f"{field}: no official holiday data for {year}")
