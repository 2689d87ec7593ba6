"""Conformance against any plan: scenarios declare their plan; commands stay in the campaign.

A 2023 copy of the built-in plan (another id) stands for another district's plan.
2023-03-20 is a Monday; three calendar days from it end Thursday 03-23.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from strategies import base_data, shift_years
from typer.testing import CliRunner

from fireflow import InvalidCommand, Ticket, dump_plan, load_plan, plan_digest
from fireflow.cli.conformance import conformance_app
from fireflow.plan import Plan, validate_plan_data
from fireflow.testing import parse_scenario
from fireflow.testing.runner import junit_xml, run_paths

SH = ZoneInfo("Asia/Shanghai")
CHANGLE = load_plan("changle-2022")


def _plan_2023() -> Plan:
    data = shift_years(base_data(), 1)
    data["id"] = "other-2023"
    return validate_plan_data(data)


OTHER = _plan_2023()

SMALL = """\
id: small-2023
title_zh: 小场景
title_en: A small scenario
rules: [R-TKT-DEADLINE]
{head}steps:
  - {{kind: report, ticket: T1, at: 2023-03-20 10:00, actor: town, community: 金峰小区,
     town: 金峰镇, category: evacuation_blocked, subtype: goods, location: inside,
     source: town_inspection}}
  - {{kind: route, ticket: T1, actor: town}}
  - kind: set_deadline
    ticket: T1
    actor: town
    expect: {{state: rectifying, deadline: 2023-03-23}}
"""


def _files(tmp_path: Path, head: str) -> Path:
    plan_file = tmp_path / "other-2023.yaml"
    dump_plan(OTHER, plan_file)
    (tmp_path / "small.scenario.yaml").write_text(SMALL.format(head=head), encoding="utf-8")
    return plan_file


def test_the_builtin_suite_against_another_plan_is_skipped_with_a_line(tmp_path: Path) -> None:
    plan_file = tmp_path / "other-2023.yaml"
    dump_plan(OTHER, plan_file)
    res = CliRunner().invoke(conformance_app, ["run", "changle-2022", "--plan", str(plan_file)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    skips = [line for line in lines if line.startswith("SKIP ")]
    assert len(skips) >= 30
    assert "written for plan changle-2022, not other-2023" in res.output
    assert not any(line.startswith("FAIL") for line in lines)
    assert "skipped" in lines[-1]


def test_a_scenario_written_for_the_plan_runs_under_plan(tmp_path: Path) -> None:
    plan_file = _files(tmp_path, "written_for: {id: other-2023}\n")
    (result,) = run_paths([tmp_path / "small.scenario.yaml"], plan=plan_file)
    assert result.ok, result.report()
    assert result.outcome == "passed"
    # and the same scenario against Changle is skipped, not failed
    (skipped,) = run_paths([tmp_path / "small.scenario.yaml"], plan="changle-2022")
    assert skipped.outcome == "skipped"
    assert not skipped.counts_as_failure
    assert "written for plan other-2023, not changle-2022" in skipped.report()
    assert b"<skipped message=" in junit_xml([skipped])


def test_a_digest_pins_the_version_of_the_plan(tmp_path: Path) -> None:
    digest = plan_digest(OTHER)
    plan_file = _files(tmp_path, f"written_for: {{id: other-2023, digest: '{digest}'}}\n")
    (result,) = run_paths([tmp_path / "small.scenario.yaml"], plan=plan_file)
    assert result.ok, result.report()
    # the same id with other rules is another plan
    data = OTHER.to_data()
    data["settings"]["rectification_days"]["evacuation_blocked"] = 4
    edited = tmp_path / "edited.yaml"
    dump_plan(validate_plan_data(data), edited)
    (skipped,) = run_paths([tmp_path / "small.scenario.yaml"], plan=edited)
    assert skipped.outcome == "skipped"
    assert "another version" in (skipped.skipped or "")


def test_a_scenario_whose_own_plan_is_not_the_declared_one_is_an_error(tmp_path: Path) -> None:
    _files(tmp_path, "plan: other-2023.yaml\nwritten_for: {id: gulou-2023}\n")
    (result,) = run_paths([tmp_path / "small.scenario.yaml"])
    assert result.outcome == "failed"
    assert "written for plan gulou-2023, not other-2023" in (result.error or "")


def test_a_scenario_naming_a_plan_file_without_written_for_runs_on_plan(tmp_path: Path) -> None:
    _files(tmp_path, "plan: other-2023.yaml\n")
    (own,) = run_paths([tmp_path / "small.scenario.yaml"])
    assert own.ok, own.report()


def test_written_for_is_validated() -> None:
    from fireflow.testing.scenario import ScenarioError

    with pytest.raises(ScenarioError, match=r"written_for\.digest"):
        parse_scenario(SMALL.format(head="written_for: {id: x, digest: md5:1}\n"))


# --------------------------------------------------------------------------- #
# Commands dated outside the campaign (R-CAL-PHASES)


def _report(t: Ticket, at: datetime) -> None:
    t.command(
        "report",
        at,
        "town",
        community="金峰小区",
        town="金峰镇",
        category="evacuation_blocked",
        subtype="goods",
        location="inside",
        source="town_inspection",
    )


def test_a_2022_command_under_a_2023_plan_is_refused_before_anything_is_recorded() -> None:
    t = Ticket("T1", OTHER)
    with pytest.raises(InvalidCommand) as info:
        _report(t, datetime(2022, 5, 10, 10, tzinfo=SH))
    assert info.value.rule == "R-CAL-PHASES"
    assert info.value.field == "at"
    assert "before the campaign starts" in str(info.value)
    assert t.events == ()


def test_the_first_local_day_counts_not_the_utc_one() -> None:
    # 2022-12-31 16:30 UTC is 2023-01-01 00:30 in Shanghai: inside the 2023 campaign
    t = Ticket("T1", OTHER)
    _report(t, datetime(2022, 12, 31, 16, 30, tzinfo=ZoneInfo("UTC")))
    assert t.state.state == "reported"


def test_no_new_ticket_after_the_campaign_but_open_work_goes_on() -> None:
    t = Ticket("T2", CHANGLE)
    with pytest.raises(InvalidCommand, match="after the campaign ends"):
        _report(t, datetime(2023, 1, 3, 10, tzinfo=SH))
    # a ticket recorded in December is worked on in January (its deadline may cross the year)
    t = Ticket("T3", CHANGLE)
    _report(t, datetime(2022, 12, 30, 10, tzinfo=SH))
    t.command("route", datetime(2022, 12, 30, 11, tzinfo=SH), "town")
    t.command("set_deadline", datetime(2023, 1, 3, 10, tzinfo=SH), "town")
    assert t.state.state == "rectifying"
