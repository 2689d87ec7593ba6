"""docs/adapting.md, run: its commands, its script, its example plan, and that plan at work.

The 2027 example is a doctest of the page itself; this file runs the shell commands the page shows,
checks that the page's script is examples/gulou_2023.py and that the script writes the committed
examples/scenarios/gulou-2023.plan.yaml, and puts that plan to work: plan check, a ticket, its
scenario.
"""

from __future__ import annotations

import re
import runpy
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from fireflow import Ticket, load_plan
from fireflow.plan.derive import derive_plan, foreign_text
from fireflow.testing.runner import run_paths

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "adapting.md").read_text(encoding="utf-8")
SCRIPT = ROOT / "examples" / "gulou_2023.py"
EXAMPLE = ROOT / "examples" / "scenarios" / "gulou-2023.plan.yaml"
SCENARIO = ROOT / "examples" / "scenarios" / "gulou-2023.scenario.yaml"
SH = ZoneInfo("Asia/Shanghai")


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC, flags=re.DOTALL)


def _commands() -> list[str]:
    return [
        line
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith("fireflow ")
    ]


def test_the_documented_commands_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fireflow.cli import main

    commands = _commands()
    assert any(c.startswith("fireflow plan new") for c in commands)
    assert any("--year 2027" in c for c in commands)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    for command in commands:
        code = main(shlex.split(command)[1:])
        out = capsys.readouterr().out
        assert code == 0, (command, out)
        if command.startswith("fireflow plan check examples/"):
            assert "⚠" not in out, out
    made = load_plan(tmp_path / "gulou-2023.yaml")
    assert made.review
    assert made.derived_from is not None
    later = load_plan(tmp_path / "changle-2027.yaml")
    assert {n.found for n in later.review if n.kind == "calendar"} == {("2027",), ("2028",)}


def test_the_page_shows_the_script_and_the_script_writes_the_example() -> None:
    script = SCRIPT.read_text(encoding="utf-8")
    assert script in _blocks("python")
    build = runpy.run_path(str(SCRIPT))["build"]
    assert build() == EXAMPLE.read_text(encoding="utf-8")


def _diff(a: Any, b: Any, path: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for key in a.keys() | b.keys():
            sub = f"{path}.{key}" if path else str(key)
            out |= _diff(a.get(key), b.get(key), sub) if key in a and key in b else {sub}
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return set().union(
            *(_diff(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
        )
    return set() if a == b else {path}


def test_the_example_differs_from_plan_new_only_where_the_docs_say() -> None:
    fresh, review = derive_plan(
        load_plan("changle-2022"),
        district="福州市鼓楼区",
        district_en="Gulou District, Fuzhou",
        year=2023,
    )
    example = load_plan(EXAMPLE)
    reviewed = {i.path for i in review}
    documented = {  # section 3 of the page: settings, agencies, authority, routes
        "review",
        "agencies",
        "routes",
        "settings.spot_check.ratio",
        "settings.rectification_days.evacuation_blocked",
        "settings.rectification_days.fire_lane_vehicle",
    }
    sign_off = next(i for i, a in enumerate(example.authority) if a.trigger == "sign_off")
    documented.add(f"authority[{sign_off}].agencies")
    changed = _diff(fresh.to_data(), example.to_data())
    assert changed
    for path in changed:
        assert path in reviewed or path in documented or path.startswith("forms[3].names"), path


def test_the_example_plan_has_nothing_of_changle_left() -> None:
    plan = load_plan(EXAMPLE)
    assert plan.review == ()
    assert foreign_text(plan) == []
    assert plan.derived_from is not None
    assert plan.derived_from.plan == "changle-2022"
    text = EXAMPLE.read_text(encoding="utf-8").split("review:")[1]
    for word in ("长乐", "Changle", "2022"):
        assert word not in text


def test_a_ticket_runs_through_the_engine_under_the_example_plan() -> None:
    plan = load_plan(EXAMPLE)
    t = Ticket("GL-1", plan)
    at = datetime(2023, 4, 3, 9, tzinfo=SH)  # Monday; 5 days → Saturday 04-08 → Monday 04-10
    t.command(
        "report",
        at,
        "town",
        community="三坊七巷小区",
        town="南街街道",
        category="evacuation_blocked",
        subtype="goods",
        location="inside",
        source="town_inspection",
    )
    t.command("route", at, "town")
    assert t.state.routing is not None
    assert t.state.routing.lead == "town"
    t.command("set_deadline", at, "town")
    assert str(t.state.deadline) == "2023-04-10"
    t.command("rectify", datetime(2023, 4, 6, 9, tzinfo=SH), "property")
    t.command("apply_reinspection", datetime(2023, 4, 6, 10, tzinfo=SH), "property")
    t.command(
        "recheck_pass",
        datetime(2023, 4, 7, 10, tzinfo=SH),
        "town",
        "郑科长",
        participants=[{"agency": "emergency", "person": "陈"}],
    )
    t.command("sign_off", datetime(2023, 4, 7, 11, tzinfo=SH), "emergency", "陈")
    assert t.state.state == "signed_off"


def test_the_example_scenario_passes_on_its_plan_and_is_skipped_elsewhere() -> None:
    (own,) = run_paths([SCENARIO])
    assert own.ok, own.report()
    assert own.plan_id == "gulou-2023"
    (other,) = run_paths([SCENARIO], plan="changle-2022")
    assert other.outcome == "skipped"
