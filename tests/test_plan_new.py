"""fireflow plan new: a plan for another district and year, with nothing of the source unseen.

Hand-checked dates: 2023-07-15 is a Saturday and 2023-12-10 a Sunday (so the dossier and the
summary are due on Monday 07-17 and 12-11, 国办发明电〔2022〕16号 has no holiday then); 2024 is a
leap year and 2025 is not.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import base_data, scaled

from fireflow import InvalidArgument, load_plan, parse_plan
from fireflow.plan import validate_plan_data
from fireflow.plan.derive import _texts, derive_plan, district_words, foreign_text, move_date

CHANGLE = load_plan("changle-2022")
CHANGLE_WORDS = ("长乐", "Changle", "2022")


def _derive(**kw: Any) -> Any:
    kw.setdefault("district", "福州市鼓楼区")
    kw.setdefault("year", 2023)
    return derive_plan(CHANGLE, **kw)


def test_dates_move_by_whole_years_and_ids_stay() -> None:
    plan, _ = _derive(district_en="Gulou District, Fuzhou")
    assert (plan.id, plan.year, plan.district.zh) == ("gulou-2023", 2023, "福州市鼓楼区")
    assert [(p.start, p.end) for p in plan.phases] == [
        (p.start.replace(year=2023), p.end.replace(year=2023)) for p in CHANGLE.phases
    ]
    assert [d.nominal for d in plan.deadlines_fixed] == [
        date(2023, 3, 15),
        date(2023, 7, 15),
        date(2023, 12, 10),
    ]
    for key in ("agencies", "categories", "phases", "rules", "routes"):
        assert [x.id for x in getattr(plan, key)] == [x.id for x in getattr(CHANGLE, key)]
    assert plan.derived_from is not None
    assert (plan.derived_from.plan, plan.derived_from.year) == ("changle-2022", 2022)


def test_the_new_years_rest_days_are_named_with_the_new_due_day() -> None:
    plan, review = _derive()
    due = {d.id: d.due for d in plan.deadlines()}
    assert due["dossier"] == date(2023, 7, 17)
    assert due["summary"] == date(2023, 12, 11)
    weekday_items = {i.path: i.found for i in review if i.path.startswith("deadlines[")}
    assert weekday_items == {
        "deadlines[1].nominal": ("2023-07-15", "2023-07-17"),
        "deadlines[2].nominal": ("2023-12-10", "2023-12-11"),
    }


def test_the_review_list_is_in_the_file_and_round_trips() -> None:
    plan, review = _derive()
    assert [n.path for n in plan.review] == [i.path for i in review]
    assert parse_plan(plan.to_yaml()) == plan
    text = plan.to_yaml()
    assert "review:" in text
    assert "derived_from:" in text


@settings(max_examples=scaled(12), deadline=None, database=None)
@given(
    year=st.integers(2023, 2040),
    district=st.sampled_from(["福州市鼓楼区", "鼓楼区", "厦门市思明区", "某某县"]),
)
def test_nothing_of_changle_survives_unseen(year: int, district: str) -> None:
    """Every text that still says 长乐, Changle or 2022 has a review entry at its path."""
    plan, review = derive_plan(CHANGLE, district=district, year=year)
    flagged = {i.path for i in review}
    for path, text in _texts(plan.to_data()):
        if any(w in text for w in CHANGLE_WORDS):
            assert path in flagged, (path, text)
    # and plan check sees the same district and year texts without the list
    unseen = {i.path for i in foreign_text(plan)} - flagged
    assert not unseen


def test_an_edited_plan_has_nothing_left() -> None:
    plan, review = _derive()
    data = plan.to_data()
    for path in {i.path for i in review if i.kind in ("district", "year")}:
        node: Any = data
        *parents, leaf = path.replace("]", "").replace("[", ".").split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        key: Any = int(leaf) if leaf.isdigit() else leaf
        node[key] = (
            str(node[key])
            .replace("福州市长乐区", "福州市鼓楼区")
            .replace("长乐区", "鼓楼区")
            .replace("Changle", "Gulou")
            .replace("2022", "2023")
        )
    data["review"] = []
    edited = validate_plan_data(data)
    assert foreign_text(edited) == []


def test_foreign_text_names_another_district_and_year_but_not_document_numbers() -> None:
    data = base_data()
    data["agencies"][0]["note"] = "参照厦门市思明区2021年做法"
    data["phases"][0]["summary"]["zh"] += "（依据国办发明电〔2021〕11号）"
    plan = validate_plan_data(data)
    found = {(i.path, i.kind): i.found for i in foreign_text(plan)}
    assert found == {
        ("agencies[0].note", "district"): ("思明区",),
        ("agencies[0].note", "year"): ("2021",),
    }
    assert foreign_text(CHANGLE) == []


@pytest.mark.parametrize(
    ("day", "years", "role", "expected"),
    [
        (date(2024, 2, 29), 1, "end", date(2025, 2, 28)),
        (date(2024, 2, 29), 1, "start", date(2025, 3, 1)),
        (date(2023, 2, 28), 1, "end", date(2024, 2, 29)),  # the last day stays the last day
        (date(2023, 2, 28), 1, "start", date(2024, 2, 28)),
        (date(2022, 3, 15), 5, "end", date(2027, 3, 15)),
        (date(2023, 3, 1), 1, "start", date(2024, 3, 1)),
    ],
)
def test_move_date(day: date, years: int, role: Any, expected: date) -> None:
    assert move_date(day, years, role) == expected


@pytest.mark.parametrize(("src_year", "year"), [(2024, 2025), (2023, 2024), (2024, 2028)])
def test_phases_around_the_end_of_february_stay_contiguous(src_year: int, year: int) -> None:
    data = base_data()
    last_feb = date(src_year, 3, 1).toordinal() - 1
    end = date.fromordinal(last_feb)
    data["year"] = src_year
    data["phases"][0].update(start=f"{src_year}-01-01", end=end.isoformat())
    data["phases"][1].update(start=f"{src_year}-03-01", end=f"{src_year}-03-15")
    for ph in data["phases"][2:]:
        ph["start"] = f"{src_year}-{ph['start'][5:]}"
        ph["end"] = f"{src_year}-{ph['end'][5:]}"
    for dl in data["deadlines"]:
        dl["nominal"] = f"{src_year}-{dl['nominal'][5:]}"
    source = validate_plan_data(data)
    plan, _ = derive_plan(source, district="鼓楼区", year=year)
    first, second = plan.phases[0], plan.phases[1]
    assert first.end == date.fromordinal(date(year, 3, 1).toordinal() - 1)
    assert second.start == date(year, 3, 1)


def test_a_source_with_overrides_loses_them_and_says_so() -> None:
    plan, _ = _derive(year=2031)
    data = plan.to_data()
    data["holidays"]["overrides"] = [{"year": 2031, "rest_days": ["2031-01-01"]}]
    data["review"] = []
    source = validate_plan_data(data)
    moved, review = derive_plan(source, district="鼓楼区", year=2032)
    assert moved.holidays.overrides == ()
    kinds = {(i.path, i.kind) for i in review}
    assert ("holidays.overrides[0]", "holidays") in kinds
    assert ("holidays.overrides", "calendar") in kinds  # 2032 has no official data


def test_district_words() -> None:
    assert district_words("福州市长乐区", "Changle District, Fuzhou") == (
        "福州市长乐区",
        "长乐区",
        "长乐",
        "Changle",
    )
    assert district_words("某某县") == ("某某县", "某某")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"district": "鼓楼\u202e区"}, "district"),
        ({"year": 1800}, "year"),
        ({"district_en": "Gulou\x00"}, "district_en"),
    ],
)
def test_bad_input_is_refused_with_the_field(kw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _derive(**kw)
    assert info.value.field == field


def test_cli_writes_a_valid_file_and_plan_check_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fireflow.cli import main

    out = tmp_path / "gulou.yaml"
    code = main(
        [
            *("plan", "new", "--from", "changle-2022", "--district", "鼓楼区", "--year", "2023"),
            *("--out", str(out)),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "gulou-2023" in printed
    assert "待复核" in printed
    plan = load_plan(out)
    assert plan.review
    code = main(["plan", "check", str(out)])
    checked = capsys.readouterr().out
    assert code == 0
    assert f"⚠ {len(plan.review)} 处待复核" in checked
    assert "⚠ name.zh: 福州市长乐区 — names another district" in checked
    # without --out the plan is printed and parses
    code = main(["plan", "new", "--from", str(out), "--district", "台江区", "--year", "2024"])
    captured = capsys.readouterr()
    assert code == 0
    again = parse_plan(captured.out)
    assert again.year == 2024
    assert again.derived_from is not None
    assert again.derived_from.district.zh == "鼓楼区"
    # the entries still open in the source are carried over, none dropped
    assert {(n.path, n.kind, n.found) for n in plan.review} <= {
        (n.path, n.kind, n.found) for n in again.review
    }
