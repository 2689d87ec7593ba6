"""Shared hypothesis strategies (and a few data helpers) for the fireflow tests.

Everything here is pure: strategies draw values, helpers return fresh copies.
Plan variations start from ``load_plan("changle-2022").to_data()`` and mutate
only what the plan format allows, so every drawn dict is a *valid* plan.
"""

from __future__ import annotations

import copy
import unicodedata
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import settings
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.testing.strategies import TIMEZONES as LIBRARY_TIMEZONES
from fireflow.testing.strategies import plan_data

# The window the properties draw from.  chinese_calendar has official data for
# these years; a period that runs past LAST would need 2027 data, which does
# not exist yet, so the period strategies below keep results inside it.
FIRST = date(2022, 1, 1)
LAST = date(2026, 12, 31)

UNITS: tuple[str, ...] = ("calendar", "working", "month", "year")

#: The library's zones (DST, odd offsets) and one at UTC-11.
TIMEZONES: tuple[str, ...] = (*LIBRARY_TIMEZONES, "Pacific/Pago_Pago")

SHANGHAI = ZoneInfo("Asia/Shanghai")


def scaled(n: int) -> int:
    """``n`` examples under the everyday profiles (100 examples), more under ``full``.

    The root conftest.py picks the profile; this keeps each test's own budget
    proportional to it so that ``FIREFLOW_FULL=1`` searches harder.
    """
    return max(1, n * settings.default.max_examples // 100)

#: The built-in plan as data; never mutate it, use :func:`base_data`.
BASE_DATA: dict[str, Any] = load_plan("changle-2022").to_data()


def base_data() -> dict[str, Any]:
    """A fresh deep copy of the built-in plan's data."""
    return copy.deepcopy(BASE_DATA)


def shift_years(data: dict[str, Any], years: int) -> dict[str, Any]:
    """The plan moved by ``years`` (same month and day; pick a non-leap target).

    Every date the built-in plan writes (phases, fixed deadlines, the year) is
    moved; holiday overrides are dropped.
    """
    out = copy.deepcopy(data)

    def move(iso: str) -> str:
        d = date.fromisoformat(iso)
        return d.replace(year=d.year + years).isoformat()

    out["year"] = data["year"] + years
    for ph in out["phases"]:
        ph["start"], ph["end"] = move(ph["start"]), move(ph["end"])
    for dl in out["deadlines"]:
        dl["nominal"] = move(dl["nominal"])
    out["holidays"]["overrides"] = []
    return out


# --------------------------------------------------------------------------- #
# Dates, counts, units, time zones


def dates(min_value: date = FIRST, max_value: date = LAST) -> st.SearchStrategy[date]:
    """Dates in 2022-2026 by default."""
    return st.dates(min_value=min_value, max_value=max_value)


#: Period lengths.
counts = st.integers(min_value=1, max_value=400)

#: Period units.
units = st.sampled_from(UNITS)

#: Time zones: IANA zones (with DST and odd offsets) and fixed offsets.
zones: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([ZoneInfo(k) for k in TIMEZONES]),
    st.integers(min_value=-12 * 60, max_value=14 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    ),
)

#: Aware datetimes around the campaign years.  Imaginary (DST-gap) local times
#: are left out here; tests/test_calendar.py checks them separately.
aware_datetimes = st.datetimes(
    min_value=datetime(2021, 12, 31),  # noqa: DTZ001 (bounds of an aware strategy)
    max_value=datetime(2027, 1, 1, 23, 59, 59),  # noqa: DTZ001
    timezones=zones,
    allow_imaginary=False,
)


def _max_n(unit: str, start: date, last: date) -> int:
    """A bound on n that keeps the due day of (start, n, unit) on or before ``last``.

    Calendar periods may roll forward over the longest holiday (8 days, plus
    margin); working periods advance at least one working day per two calendar
    days outside such holidays.
    """
    days_left = (last - start).days
    if unit == "calendar":
        bound = days_left - 15
    elif unit == "working":
        bound = days_left // 2 - 10
    elif unit == "month":
        bound = (last.year - start.year) * 12 + (last.month - start.month) - 1
    else:
        bound = last.year - start.year - 1
    return min(400, bound)


@st.composite
def periods(
    draw: st.DrawFn,
    unit_strategy: st.SearchStrategy[str] = units,
    first: date = FIRST,
    last: date = LAST,
) -> tuple[date, int, str]:
    """(start, n, unit) whose result stays inside the years with official data."""
    unit = draw(unit_strategy)
    latest_start = {
        "calendar": last - timedelta(days=16),
        "working": last - timedelta(days=22),
        "month": date(last.year, last.month - 1, 1) - timedelta(days=1),
        "year": date(last.year - 2, 12, 31),
    }[unit]
    start = draw(dates(first, min(latest_start, LAST)))
    n = draw(st.integers(min_value=1, max_value=_max_n(unit, start, last)))
    return start, n, unit


# --------------------------------------------------------------------------- #
# Plan variations

#: Text a person could type into a plan: any characters the text policy
#: (fireflow.text) accepts, including YAML-significant ones, in NFC, non-empty
#: after stripping.
texts = (
    st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")),
        min_size=1,
        max_size=16,
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: bool(s.strip()))
)

#: Strings YAML would read as something else if written unquoted.
yaml_lookalikes = st.sampled_from(
    ["yes", "no", "on", "off", "null", "~", "true", "1.0", "0x1F", "2022-01-01", "12:30",
     "- x", "a: b", "#c", "'q'", '"q"', "!tag", "&a", "*a", "|", ">", "%YAML", "@x", "`x"]
)

ids = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@st.composite
def plan_variations(draw: st.DrawFn) -> dict[str, Any]:
    """The library's ``plan_data`` (every setting, phases, deadlines, overrides varied), plus
    text that YAML would read as something else if a writer left it unquoted."""
    data = draw(plan_data("changle-2022"))
    if draw(st.booleans()):
        data["name"]["zh"] = draw(st.one_of(texts, yaml_lookalikes))
        data["source"] = draw(st.one_of(st.just(""), texts, yaml_lookalikes))
    if draw(st.booleans()):
        # 等 ("and others"): one more agency, its texts looking like YAML
        known = {a["id"] for a in data["agencies"]}
        new_id = draw(ids.filter(lambda i: i not in known))
        data["agencies"].append(
            {
                "id": new_id,
                "name": {"zh": draw(texts), "en": draw(st.one_of(texts, yaml_lookalikes))},
                "level": draw(st.sampled_from(["district", "town", "community", "external"])),
                "note": draw(st.one_of(st.just(""), texts, yaml_lookalikes)),
            }
        )
        data["deadlines"][0]["recipients"].append(new_id)
    return data
