"""A new plan from an existing one, for another district and year (新方案).

:func:`derive_plan` copies a plan (the built-in ``changle-2022``, or any plan),
moves every date by whole years, keeps every id but the plan's own, and lists
every piece of text that still names the source district, the source's years,
its dates or its numbers as :class:`ReviewItem` objects.  The new plan carries
that list as its ``review:`` entries (plain data: the file stays a valid plan and
reads back equal) and the source as ``derived_from``, so nothing of the source
survives unseen.  ``fireflow plan new`` writes it; ``fireflow plan check`` warns
about the entries left and about any text that names another district or year
(:func:`foreign_text`).

>>> from fireflow import load_plan
>>> plan, items = derive_plan(load_plan("changle-2022"), district="福州市鼓楼区", year=2023)
>>> plan.id, plan.year, plan.phases[0].start, plan.district.zh
('gulou-2023', 2023, datetime.date(2023, 1, 1), '福州市鼓楼区')
>>> [i.path for i in items if i.kind == "district"][:2]
['name.zh', 'name.en']
>>> "R-CAL-PHASES" in {i.path.split("]")[0] for i in items} or any(
...     i.path.startswith("rules[0].") for i in items)
True

Why dates move by whole years, and what becomes of 29 February (民法典 第二百零二条):
``docs/adapting.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

import attrs

from fireflow.errors import CalendarDataMissing, InvalidArgument
from fireflow.plan.deadlines import calendar_coverage
from fireflow.plan.load import validate_plan_data
from fireflow.plan.plan import Plan
from fireflow.text import check_name

__all__ = [
    "ReviewItem",
    "derive_plan",
    "district_words",
    "foreign_text",
    "move_date",
]

ReviewKind = Literal["district", "year", "date", "number", "id", "calendar", "holidays"]

#: Keys whose values are text people read (every other string is an id, a date or a choice).
TEXT_KEYS = frozenset(
    {
        "zh",
        "en",
        "note",
        "source",
        "quote_zh",
        "text_zh",
        "gloss_en",
        "default_zh",
        "default_en",
        "title_zh",
        "title_en",
        "names",
    }
)
#: Sections never scanned: the review list itself and the record of the source.
_SKIP_TOP = frozenset({"review", "derived_from"})

_YEAR = re.compile(r"(?<![\d〔\[(（])(19\d\d|20\d\d|21\d\d)(?!\d)")
"""A year in text; one inside 〔〕 is a document number (国办发明电〔2021〕11号), not a date."""
_PERCENT = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*%")
_CITY_DISTRICT = re.compile(r"市((?:(?![市区县])[\u4e00-\u9fff]){1,4}[区县])")
"""``福州市长乐区`` → ``长乐区``: a district named after its city."""
_NOT_DISTRICTS = frozenset(
    {"小区", "社区", "园区", "城区", "辖区", "片区", "景区", "街区", "校区", "全区"}
)
"""Words ending in 区 that name no district (小区 is a residential community)."""


@attrs.frozen
class ReviewItem:
    """A place in a derived plan that a person must check (待复核).

    ``path`` is the field (``rules[3].quote_zh``), ``kind`` what was found
    (``district``, ``year``, ``date``, ``number`` in text; ``id``, ``calendar``,
    ``holidays`` for choices :func:`derive_plan` made), ``found`` the words, and
    ``note`` what to do (Chinese, then English).
    """

    path: str
    kind: ReviewKind
    found: tuple[str, ...]
    note: str

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data, as a ``review:`` entry of the plan file."""
        return {"path": self.path, "kind": self.kind, "found": list(self.found), "note": self.note}

    def __str__(self) -> str:
        words = "、".join(self.found)
        return (
            f"{self.path}: {self.kind} {words} — {self.note}"
            if words
            else f"{self.path}: {self.note}"
        )


# --------------------------------------------------------------------------- #
# Dates


def move_date(day: date, years: int, role: Literal["start", "end"] = "end") -> date:
    """``day`` moved by whole ``years``, month and day kept (29 February: see the module).

    >>> move_date(date(2024, 2, 29), -1), move_date(date(2024, 2, 29), -1, "start")
    (datetime.date(2023, 2, 28), datetime.date(2023, 3, 1))
    >>> move_date(date(2023, 2, 28), 1)  # the last day of February stays the last day
    datetime.date(2024, 2, 29)
    >>> move_date(date(2022, 7, 15), 5)
    datetime.date(2027, 7, 15)
    """
    target = day.year + years
    last_of_feb = (day + timedelta(days=1)).month == 3 and day.month == 2
    if last_of_feb and role == "end":
        return date(target, 3, 1) - timedelta(days=1)
    try:
        return day.replace(year=target)
    except ValueError:  # 29 February into a common year
        return date(target, 3, 1) if role == "start" else date(target, 2, 28)


def _month_day_words(days: Sequence[date]) -> list[str]:
    words: list[str] = []
    for d in sorted(set(days)):
        words += [f"{d.month}月{d.day}日", f"{d.month:02d}-{d.day:02d}"]
    return words


# --------------------------------------------------------------------------- #
# Words of a district


def district_words(zh: str, en: str = "") -> tuple[str, ...]:
    """The words that name a district in text: full name, without its city, short form.

    >>> district_words("福州市长乐区", "Changle District, Fuzhou")
    ('福州市长乐区', '长乐区', '长乐', 'Changle')
    >>> district_words("鼓楼区")
    ('鼓楼区', '鼓楼')
    """
    words = [zh]
    short = re.split(r"[市州]", zh)[-1] if re.search(r"[市州].", zh) else zh
    words.append(short)
    if len(short) >= 3 and short[-1] in "区县":
        words.append(short[:-1])
    head = re.split(r"[,，]| District| County| City", en)[0].strip() if en else ""
    if head:
        words.append(head)
    return tuple(dict.fromkeys(w for w in words if w))


# --------------------------------------------------------------------------- #
# Walking the text of a plan


def _texts(data: Any, path: str = "", key: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every text field of plain plan data."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            if not path and k in _SKIP_TOP:
                continue
            yield from _texts(v, f"{path}.{k}" if path else str(k), str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _texts(v, f"{path}[{i}]", key)
    elif isinstance(data, str) and key in TEXT_KEYS and data:
        yield path, data


def _found(text: str, words: Sequence[str]) -> list[str]:
    """The words of ``words`` in ``text``; a word inside a longer one found is left out."""
    hits = [w for w in words if w and w in text]
    return [w for w in hits if not any(w != o and w in o for o in hits)]


def _years(text: str, own: int) -> list[str]:
    return sorted({m for m in _YEAR.findall(text) if int(m) != own})


def foreign_text(plan: Plan) -> list[ReviewItem]:
    """Text of ``plan`` that names another district or another year than its own.

    Another district: the district the plan was derived from (``derived_from``),
    and any ``…市X区`` or ``…市X县`` that is not the plan's own.  Another year: a
    year in text that is not the campaign year (document numbers in 〔〕 and the
    ``holidays`` section, which cites the notices of other years, are left out).

    >>> from fireflow import load_plan
    >>> foreign_text(load_plan("changle-2022"))
    []
    """
    own = set(district_words(plan.district.zh, plan.district.en))
    other: list[str] = []
    if plan.derived_from is not None:
        src = plan.derived_from.district
        other = [w for w in district_words(src.zh, src.en) if w not in own]
    out: list[ReviewItem] = []
    for path, text in _texts(plan.to_data()):
        found = _found(text, other)
        found += [
            m
            for m in dict.fromkeys(_CITY_DISTRICT.findall(text))
            if m not in own
            and not any(m.endswith(w) for w in _NOT_DISTRICTS)
            and not any(m in f for f in found)
        ]
        if found:
            out.append(
                ReviewItem(
                    path,
                    "district",
                    tuple(found),
                    f"names another district than {plan.district.zh} (提到本方案以外的区县)",
                )
            )
        if not path.startswith("holidays."):
            years = _years(text, plan.year)
            if years:
                out.append(
                    ReviewItem(
                        path,
                        "year",
                        tuple(years),
                        f"names another year than {plan.year} (提到本方案年度以外的年份)",
                    )
                )
    return out


# --------------------------------------------------------------------------- #
# derive_plan


def _default_id(district: str, district_en: str, year: int) -> str:
    head = district_words(district, district_en)[-1] if district_en else ""
    slug = re.sub(r"[^a-z0-9]+", "-", head.lower()).strip("-")
    if slug:
        return f"{slug}-{year}"
    # no English name: the pinyin of a few common districts is not guessed; a neutral id
    return f"plan-{year}"


_KNOWN_EN = {"鼓楼": "Gulou", "长乐": "Changle", "台江": "Taijiang", "仓山": "Cangshan"}
"""English heads of a few district names, for the default id and English name only."""


def derive_plan(
    source: Plan,
    *,
    district: str,
    year: int,
    district_en: str | None = None,
    plan_id: str | None = None,
) -> tuple[Plan, list[ReviewItem]]:
    """A new plan for ``district`` and ``year`` from ``source``, and what to review.

    Every date moves by ``year - source.year`` whole years (:func:`move_date`);
    ids are kept, except the plan's own (``plan_id``, by default from the
    district's English name and the year, e.g. ``gulou-2023``).  The source's
    holiday overrides and corrections are dropped (they belong to its years).
    The returned plan carries the review list as ``review`` and the source as
    ``derived_from``.  Raises :class:`~fireflow.errors.InvalidArgument` for a
    bad district or year, :class:`~fireflow.errors.PlanError` if the moved
    plan does not validate.
    """
    district = check_name(district, "district")
    if not 1949 <= year <= 2200:
        raise InvalidArgument("year", f"year {year} out of range (1949-2200)")
    short = district_words(district)[-1]
    guessed_en = _KNOWN_EN.get(short)
    en = district_en or (f"{guessed_en} District" if guessed_en else district)
    en = check_name(en, "district_en")
    years = year - source.year
    data = source.to_data()
    # entries the source still has stay: nothing unchecked is dropped on the way
    items: list[ReviewItem] = [ReviewItem(n.path, n.kind, n.found, n.note) for n in source.review]

    # -- identity
    new_id = plan_id or _default_id(district, en, year)
    data["id"] = new_id
    data["year"] = year
    data["district"] = {"zh": district, "en": en}
    data["derived_from"] = {
        "plan": source.id,
        "district": source.district.model_dump(mode="json"),
        "year": source.year,
    }
    if plan_id is None:
        items.append(
            ReviewItem(
                "id",
                "id",
                (new_id,),
                f"the plan's id, chosen by plan new from {source.id}: keep it or give your own "
                f"(方案编号由 plan new 生成，可改)",
            )
        )
    if district_en is None:
        items.append(
            ReviewItem(
                "district.en",
                "id",
                (en,),
                "English name guessed or copied from the Chinese: check it (英文名为推测，请核对)",
            )
        )

    # -- dates: phases stay contiguous, fixed deadlines keep month and day
    prev_end: date | None = None
    for ph in data["phases"]:
        start = date.fromisoformat(ph["start"])
        end = date.fromisoformat(ph["end"])
        new_start = prev_end + timedelta(days=1) if prev_end else move_date(start, years, "start")
        prev_end = move_date(end, years, "end")
        ph["start"], ph["end"] = new_start.isoformat(), prev_end.isoformat()
    for dl in data["deadlines"]:
        dl["nominal"] = move_date(date.fromisoformat(dl["nominal"]), years).isoformat()
    since = data["settings"].get("new_community_since")
    if since:
        moved = move_date(date.fromisoformat(since), years).isoformat()
        data["settings"]["new_community_since"] = moved
        items.append(
            ReviewItem(
                "settings.new_community_since",
                "date",
                (since, moved),
                "moved with the plan: check the delivery date that makes a community 新建 "
                "(新建小区交付日期界线随方案平移，请核对)",
            )
        )
    hol = data["holidays"]
    for key in ("overrides", "corrections"):
        for i, entry in enumerate(hol.get(key) or ()):
            what = str(entry.get("year") or entry.get("date"))
            items.append(
                ReviewItem(
                    f"holidays.{key}[{i}]",
                    "holidays",
                    (what,),
                    f"dropped: it belongs to the source's calendar "
                    f"(原方案的 {what} 节假日数据已删除)",
                )
            )
        hol[key] = []

    # -- text that names the source: district, years, dates, numbers
    own_words = set(district_words(district, en))
    src_words = [
        w for w in district_words(source.district.zh, source.district.en) if w not in own_words
    ]
    src_days = [p.start for p in source.phases] + [p.end for p in source.phases]
    src_days += [d.nominal for d in source.deadlines_fixed]
    day_words = _month_day_words(src_days)
    st = source.settings
    numbers: list[re.Pattern[str]] = [_PERCENT]
    counts = sorted({source.progress_reports.offset, *st.rectification_days.values()})
    for n in counts:
        numbers.append(re.compile(rf"(?<![\d月.-]){n}\s*(?:个)?(?:自然日|工作日|日|天|days?\b)"))
    for path, text in _texts(data):
        if path in ("district.zh", "district.en"):
            continue
        found = _found(text, src_words)
        if found:
            items.append(
                ReviewItem(
                    path,
                    "district",
                    tuple(found),
                    f"names the source district {source.district.zh}: rewrite for {district} "
                    f"(提到原方案的区县)",
                )
            )
        years_found = sorted({m for m in _YEAR.findall(text) if int(m) != year})
        if years_found:
            items.append(
                ReviewItem(
                    path,
                    "year",
                    tuple(years_found),
                    f"names a year of the source: write {year} or check it (提到原方案的年份)",
                )
            )
        dates_found = _found(text, day_words)
        if dates_found:
            items.append(
                ReviewItem(
                    path,
                    "date",
                    tuple(dates_found),
                    "names a date of the source: check it against the new phases and "
                    "deadlines (提到原方案的日期)",
                )
            )
        nums = list(dict.fromkeys(m.group(0) for rx in numbers for m in rx.finditer(text)))
        if nums:
            items.append(
                ReviewItem(
                    path,
                    "number",
                    tuple(nums),
                    "names a number of the source (a ratio, a count of days): check it "
                    "against the new settings (提到原方案的数字)",
                )
            )

    items = list(dict.fromkeys(items))
    data["review"] = [i.to_data() for i in items]
    plan = validate_plan_data(data, f"<plan new from {source.id}>")

    # -- the new year's calendar: missing data, nominal days now on rest days
    more: list[ReviewItem] = []
    for c in calendar_coverage(plan):
        if c.kind == "missing":
            more.append(
                ReviewItem(
                    "holidays.overrides",
                    "calendar",
                    (str(c.year),),
                    f"no official holiday data for {c.year}: add holidays.overrides for "
                    f"{c.year} from that year's notice (缺少 {c.year} 年节假日数据)",
                )
            )
    try:
        for i, dl in enumerate(plan.deadlines_fixed):
            due = {d.id: d for d in plan.deadlines()}[dl.id].due
            if due != dl.nominal:
                more.append(
                    ReviewItem(
                        f"deadlines[{i}].nominal",
                        "date",
                        (dl.nominal.isoformat(), due.isoformat()),
                        f"{dl.nominal} falls on a rest day in {year}: due {due} under "
                        f"holiday_policy {plan.settings.holiday_policy} (该日为休息日)",
                    )
                )
    except CalendarDataMissing:
        pass  # said above, per year
    if more:
        items += more
        data["review"] = [i.to_data() for i in items]
        plan = validate_plan_data(data, f"<plan new from {source.id}>")
    return plan, items
