"""The conformance kit: the built-in suite, the runner, the CLI, JUnit, and the pytest plugin."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fireflow import dump_plan, load_plan
from fireflow.cli.conformance import conformance_app
from fireflow.plan import validate_plan_data
from fireflow.testing import (
    ScenarioError,
    builtin_suite,
    find_scenario_files,
    junit_xml,
    load_scenario,
    parse_scenario,
    rule_coverage,
    run_paths,
    run_scenario,
    scenario_json_schema,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SUITE = builtin_suite("changle-2022")
SUITE_FILES = find_scenario_files([SUITE])
EXAMPLES = ROOT / "examples" / "scenarios"
PLAN = load_plan("changle-2022")


def plugin_args() -> list[str]:
    """``-p fireflow.testing.plugin`` unless the pytest11 entry point already loads it."""
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value == "fireflow.testing.plugin" for ep in eps):
        return []
    return ["-p", "fireflow.testing.plugin"]


def invoke(*args: str):
    return CliRunner().invoke(conformance_app, list(args))


# A small scenario used to build wrong ones: 3 days from Mon 2022-03-21 is Thu 03-24.
GOOD = """\
# 一个小场景 (a small scenario)
id: small
title_zh: 小场景
title_en: A small scenario
rules: [R-TKT-DEADLINE]
steps:
  - kind: report
    ticket: T1
    at: 2022-03-21 10:00
    actor: town
    community: 金峰小区
    town: 金峰镇
    category: evacuation_blocked
    subtype: goods
    location: inside
    source: town_inspection
  - {kind: route, ticket: T1, actor: town}
  - kind: set_deadline
    ticket: T1
    actor: town
    expect: {state: rectifying, deadline: 2022-03-24}
  - {kind: rectify, ticket: T1, actor: property}
"""
WRONG = GOOD.replace("deadline: 2022-03-24", "deadline: 2022-03-25")


# --------------------------------------------------------------------------- #
# The built-in suite


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name.removesuffix(".scenario.yaml"))
def test_builtin_scenario_passes(path):
    result = run_scenario(load_scenario(path))
    assert result.ok, result.report()
    assert result.plan_id == "changle-2022"
    assert result.steps


def test_builtin_suite_hygiene():
    ids = []
    for path in SUITE_FILES:
        s = load_scenario(path)
        assert path.name == f"{s.id}.scenario.yaml", "the file is named after the scenario id"
        assert s.plan == "changle-2022"
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{path.name}: starts with a comment for people"
        ids.append(s.id)
    assert len(ids) == len(set(ids))
    assert len(ids) >= 28


def test_every_rule_of_the_plan_is_covered():
    cov = rule_coverage([load_scenario(p) for p in SUITE_FILES], PLAN)
    assert len(cov.by_rule) == len(PLAN.rules)
    assert cov.uncovered == ()
    assert dict(cov.unknown) == {}


def test_cli_coverage_of_the_builtin_suite():
    res = invoke("coverage")
    assert res.exit_code == 0, res.output
    assert f"{len(PLAN.rules)} rules, {len(PLAN.rules)} covered, 0 uncovered" in res.output
    res = invoke("coverage", "--json")
    data = json.loads(res.output)
    assert data["uncovered"] == []
    assert set(data["rules"]) == {r.id for r in PLAN.rules}


def test_cli_coverage_lists_uncovered(tmp_path):
    (tmp_path / "small.scenario.yaml").write_text(GOOD, encoding="utf-8")
    res = invoke("coverage", str(tmp_path))
    assert res.exit_code == 1
    assert f"{len(PLAN.rules) - 1} uncovered" in res.output  # all but R-TKT-DEADLINE
    assert "R-ESC-EXPOSE" in res.output.split("uncovered 未覆盖:")[1]
    assert "R-TKT-DEADLINE" not in res.output.split("uncovered 未覆盖:")[1]


def test_cli_run_builtin_suite(tmp_path):
    res = invoke("run", str(SUITE), "--junit", str(tmp_path / "j.xml"))
    assert res.exit_code == 0, res.output
    assert "FAIL" not in res.output
    assert f"{len(SUITE_FILES)} passed" in res.output
    # a built-in suite can also be named
    assert invoke("run", "changle-2022").exit_code == 0


# --------------------------------------------------------------------------- #
# Readable failures


def test_builtin_suite_cites_exactly_on_every_accepted_step():
    # issue 17: a step that drops or adds a rule must fail the suite, not only one that drops
    # a listed rule (rules_exact beside the contains-style rules)
    for path in SUITE_FILES:
        s = load_scenario(path)
        for i, step in enumerate(s.steps):
            if not hasattr(step, "kind"):
                continue
            e = step.expect
            if e is not None and (e.refused is not None or e.accepted is False):
                continue
            where = f"{path.name}:{s.line_of(i)}: no rules_exact"
            assert e is not None, where
            assert e.rules_exact, where


def _exact(rules: str) -> str:
    return GOOD.replace(
        "expect: {state: rectifying, deadline: 2022-03-24}",
        f"expect: {{state: rectifying, deadline: 2022-03-24, rules_exact: {rules}}}",
    )


def test_rules_exact_passes_in_any_order():
    assert run_scenario(parse_scenario(_exact("[R-TKT-DEADLINE]"), "x.scenario.yaml")).ok


@pytest.mark.parametrize(
    ("rules", "at_stake"),
    [
        ("[R-TKT-DEADLINE, R-DUE-HOLIDAY]", "R-DUE-HOLIDAY"),  # one more than cited
        ("[R-DUE-HOLIDAY]", "R-DUE-HOLIDAY"),  # another rule
    ],
)
def test_rules_exact_fails_on_a_missing_or_extra_rule(rules, at_stake):
    result = run_scenario(parse_scenario(_exact(rules), "x.scenario.yaml"))
    (step,) = result.failures
    (m,) = [m for m in step.mismatches if m.what == "rules_exact"]
    assert m.actual == "[R-TKT-DEADLINE]"
    assert m.rule == at_stake
    # the contains-style check passes where the exact one fails
    loose = _exact(rules).replace("rules_exact:", "rules:")
    loose_ok = run_scenario(parse_scenario(loose, "x.scenario.yaml")).ok
    assert loose_ok == (rules == "[R-TKT-DEADLINE]")


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        ("{refused: {error: NotAuthorized}, rules_exact: [R-TKT-DEADLINE]}", "no event"),
        ("{rules_exact: []}", "rules_exact"),
        ("{rules_exact: [R-TKT-DEADLINE, R-TKT-DEADLINE]}", "twice"),
    ],
)
def test_rules_exact_malformed(expect, message):
    text = GOOD.replace("expect: {state: rectifying, deadline: 2022-03-24}", f"expect: {expect}")
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text, "x.scenario.yaml")


def test_schema_has_rules_exact():
    text = json.dumps(scenario_json_schema())
    assert '"rules_exact"' in text


def test_wrong_scenario_fails_with_step_expected_actual_rule():
    result = run_scenario(parse_scenario(WRONG, "small.scenario.yaml"))
    assert not result.ok
    (step,) = result.failures
    assert step.index == 3
    assert step.line == 18
    (m,) = step.mismatches
    assert (m.what, m.expected, m.actual) == ("deadline", "2022-03-25", "2022-03-24")
    assert [s.status for s in result.steps] == ["ok", "ok", "failed", "not_run"]
    text = result.report()
    for piece in (
        "FAILED step 3 of 4 (line 18): set_deadline T1 by town at 2022-03-21 10:00",
        "expected: 2022-03-25",
        "actual:   2022-03-24",
        "R-TKT-DEADLINE",
        "(1 later step(s) not run)",
    ):
        assert piece in text, text


def test_step_rule_named_in_report():
    text = WRONG.replace(
        "    expect: {state: rectifying", "    rule: R-TKT-DEADLINE\n    expect: {state: rectifying"
    )
    result = run_scenario(parse_scenario(text))
    assert "rule:     R-TKT-DEADLINE 四(四)、五(三) 限期整改" in result.report()


def test_unexpected_refusal_names_the_refusing_rule():
    text = GOOD.replace(
        "{kind: rectify, ticket: T1, actor: property}", "{kind: rectify, ticket: T1, actor: fire}"
    )
    result = run_scenario(parse_scenario(text))
    (m,) = result.failures[0].mismatches
    assert m.what == "outcome"
    assert m.expected == "accepted"
    assert m.actual.startswith("refused: NotAuthorized")
    assert m.rule == "R-AUTH-ROLES"


def test_expected_refusal_that_is_accepted():
    text = GOOD.replace(
        "{kind: rectify, ticket: T1, actor: property}",
        "{kind: rectify, ticket: T1, actor: property,"
        " expect: {refused: {error: NotAuthorized, rule: R-AUTH-ROLES}}}",
    )
    result = run_scenario(parse_scenario(text))
    (m,) = result.failures[0].mismatches
    assert (m.what, m.expected, m.actual, m.rule) == (
        "outcome",
        "refused: NotAuthorized [R-AUTH-ROLES]",
        "accepted → rectified",
        "R-AUTH-ROLES",
    )


def test_refusal_with_the_wrong_rule():
    text = GOOD.replace(
        "{kind: rectify, ticket: T1, actor: property}",
        "{kind: rectify, ticket: T1, actor: fire,"
        " expect: {refused: {error: InvalidCommand, rule: R-TKT-OPEN}}}",
    )
    result = run_scenario(parse_scenario(text))
    whats = [m.what for m in result.failures[0].mismatches]
    assert whats == ["refused.error", "refused.rule"]


def test_escalation_expectation_failure():
    text = GOOD + (
        "  - check: T1\n"
        "    at: 2022-04-01 10:00\n"
        "    expect:\n"
        "      escalations: {includes: [{kind: overdue, rule: R-ESC-OVERDUE, targets: [fire]}]}\n"
    )
    result = run_scenario(parse_scenario(text))
    (m,) = result.failures[0].mismatches
    assert m.what == "escalations at 2022-04-01 10:00 include"
    assert m.expected == "overdue [R-ESC-OVERDUE] → [fire]"
    # rectified but never applied for re-inspection: past the deadline it is overdue
    # (五(三) 整改完毕…立即申报复验; changed: a rectified ticket used to escape escalation)
    assert m.actual == "overdue [R-ESC-OVERDUE] → [town, housing]"
    assert m.rule == "R-ESC-OVERDUE"


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (GOOD.replace("actor: town\n    community", "actor: town\n    colour: red\n    community"),
         "steps[0].colour", "Extra inputs"),
        (GOOD.replace("at: 2022-03-21 10:00", "at: 2022-03-21"), "steps[0].at", "write a time too"),
        (GOOD.replace("at: 2022-03-21 10:00", "when: 2022-03-21 10:00"), "steps[0].when", "Extra"),
        (GOOD.replace("- {kind: route,", "- {knd: route,"), "steps[1]", "a step needs one of"),
        (GOOD.replace("state: rectifying", "state: fixing"), "steps[2].expect.state",
         "unknown ticket state"),
        (GOOD.replace("rules: [R-TKT-DEADLINE]", "rules: [R-TKT-DEADLINE]\nrules: []"), "rules",
         "duplicate key"),
        (GOOD.replace("location: inside", "location: nearby"), "steps[0].location", "'inside'"),
    ],
)  # fmt: skip
def test_malformed_scenarios_name_the_field_and_line(text, path, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.scenario.yaml")
    found = [p for p in info.value.problems if p.path == path]
    assert any(message in p.message for p in found), str(info.value)
    assert all(p.line is not None for p in found)
    assert str(info.value).startswith("scenario is invalid")


def test_first_command_needs_a_time():
    with pytest.raises(ScenarioError, match="needs 'at'"):
        parse_scenario(GOOD.replace("    at: 2022-03-21 10:00\n", ""))


def test_times_in_other_forms():
    utc = GOOD.replace("at: 2022-03-21 10:00", "at: 2022-03-21T02:00:00Z")
    assert run_scenario(parse_scenario(utc)).ok
    yaml_ts = GOOD.replace("at: 2022-03-21 10:00", "at: 2022-03-21 10:00:00")
    assert run_scenario(parse_scenario(yaml_ts)).ok
    # 16:30 UTC is already 03-22 in Shanghai: 3 days from Tue 03-22 is Fri 03-25
    late = GOOD.replace("at: 2022-03-21 10:00", "at: 2022-03-21T16:30:00+00:00")
    assert not run_scenario(parse_scenario(late)).ok


# --------------------------------------------------------------------------- #
# Plans: overrides, files, --plan


def test_plan_overrides_are_validated_like_a_plan():
    text = GOOD.replace("steps:", "plan_overrides:\n  settings: {holiday_policy: sideways}\nsteps:")
    result = run_scenario(parse_scenario(text))
    assert result.error is not None
    assert "settings.holiday_policy" in result.error
    assert "plan_overrides" in result.error


def test_plan_overrides_merge_into_the_plan():
    days = dict(PLAN.settings.rectification_days, evacuation_blocked=7)
    text = WRONG.replace("deadline: 2022-03-25", "deadline: 2022-03-28").replace(
        "steps:", f"plan_overrides:\n  settings: {{rectification_days: {json.dumps(days)}}}\nsteps:"
    )
    assert run_scenario(parse_scenario(text)).ok  # 7 days from Mon 03-21 is Mon 03-28


def test_plan_file_relative_to_the_scenario(tmp_path):
    data = PLAN.to_data()
    data["id"] = "example-district"
    data["settings"]["rectification_days"]["evacuation_blocked"] = 4
    (tmp_path / "plans").mkdir()
    dump_plan(validate_plan_data(data), tmp_path / "plans" / "example.yaml")
    (tmp_path / "suite").mkdir()
    text = WRONG.replace("steps:", "plan: ../plans/example.yaml\nsteps:")
    (tmp_path / "suite" / "small.scenario.yaml").write_text(text, encoding="utf-8")
    (result,) = run_paths([tmp_path / "suite"])
    assert result.ok, result.report()  # 4 days from Mon 03-21 is Fri 03-25
    assert result.plan_id == "example-district"
    # --plan replaces the scenario's plan: back to 3 days
    (again,) = run_paths([tmp_path / "suite"], plan="changle-2022")
    assert not again.ok
    # and a missing plan file is an error of the scenario, not a crash
    (tmp_path / "plans" / "example.yaml").unlink()
    (missing,) = run_paths([tmp_path / "suite"])
    assert missing.error is not None
    assert "example.yaml" in missing.error


def test_unknown_rule_in_scenario_is_reported():
    result = run_scenario(parse_scenario(GOOD.replace("[R-TKT-DEADLINE]", "[R-TKT-DEADLIN]")))
    assert result.error is not None
    assert "R-TKT-DEADLIN" in result.error


def test_cli_run_failures_and_bad_plan(tmp_path):
    (tmp_path / "wrong.scenario.yaml").write_text(WRONG, encoding="utf-8")
    (tmp_path / "notes.yaml").write_text("not: a scenario\n", encoding="utf-8")
    res = invoke("run", str(tmp_path))
    assert res.exit_code == 1
    assert "FAIL  small" in res.output
    assert "1 scenarios, 4 steps: 1 failed" in res.output
    res = invoke("run", str(tmp_path), "--plan", "no-such-plan")
    assert res.exit_code == 1
    assert "no-such-plan" in res.output
    res = invoke("run", str(tmp_path / "missing"))
    assert res.exit_code == 1


def test_xfail_known_gap(tmp_path):
    gap = WRONG.replace("steps:", "xfail: 示例：已知差异 (a known gap)\nsteps:")
    (tmp_path / "gap.scenario.yaml").write_text(gap, encoding="utf-8")
    res = invoke("run", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "XFAIL small" in res.output
    fixed = GOOD.replace("steps:", "xfail: 示例\nsteps:")
    (tmp_path / "gap.scenario.yaml").write_text(fixed, encoding="utf-8")
    res = invoke("run", str(tmp_path))
    assert res.exit_code == 1
    assert "XPASS small" in res.output


# --------------------------------------------------------------------------- #
# JUnit XML and the JSON Schema


def test_junit_output_parses(tmp_path):
    (tmp_path / "wrong.scenario.yaml").write_text(WRONG, encoding="utf-8")
    (tmp_path / "broken.scenario.yaml").write_text("id: [", encoding="utf-8")
    results = run_paths([SUITE, tmp_path])
    out = tmp_path / "junit.xml"
    res = invoke("run", str(SUITE), str(tmp_path), "--junit", str(out))
    assert res.exit_code == 1
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    n = len(SUITE_FILES) + 2
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(n), "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert len(cases) == n
    failure = cases["small"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("step 3: deadline: expected 2022-03-25")
    assert "R-TKT-DEADLINE" in (failure.text or "")
    assert cases["broken"].find("error") is not None
    rules = [
        p.get("value") for p in cases["auth-separation"].iter("property") if p.get("name") == "rule"
    ]
    assert rules == ["R-AUTH-SEPARATION", "R-TKT-SIGNOFF"]
    assert junit_xml(results) == out.read_bytes()  # deterministic: no times


def test_json_schema_accepts_every_builtin_scenario():
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in SUITE_FILES:
        data = json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))
        errors = list(validator.iter_errors(data))
        assert not errors, (path.name, errors[0].message)
    assert list(validator.iter_errors({"id": "x"}))
    res = invoke("schema")
    assert json.loads(res.output) == json.loads(json.dumps(schema))


# --------------------------------------------------------------------------- #
# The pytest plugin


def test_plugin_collects_only_scenario_files(pytester):
    pytester.makefile(".scenario.yaml", good=GOOD, wrong=WRONG)
    pytester.makefile(".yaml", other="id: not-a-scenario\n")
    result = pytester.runpytest("-v", *plugin_args())
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "good.scenario.yaml::small PASSED" in out
    for piece in ("场景 scenario small", "FAILED step 3 of 4", "expected: 2022-03-25",
                  "actual:   2022-03-24", "R-TKT-DEADLINE"):  # fmt: skip
        assert piece in out, out
    assert "Traceback" not in out


def test_plugin_changes_nothing_without_scenario_files(pytester):
    pytester.makepyfile(test_a="def test_a():\n    assert True\n")
    pytester.makefile(".yaml", data="a: 1\n")
    pytester.makefile(".yml", more="b: 2\n")
    plain = pytester.runpytest("--collect-only", "-q")
    with_plugin = pytester.runpytest("--collect-only", "-q", *plugin_args())
    assert plain.ret == with_plugin.ret == 0
    strip = [line for line in plain.outlines if "seconds" not in line and " in " not in line]
    again = [line for line in with_plugin.outlines if "seconds" not in line and " in " not in line]
    assert strip == again
    pytester.runpytest(*plugin_args()).assert_outcomes(passed=1)


def test_plugin_reports_malformed_file_as_collection_error(pytester):
    pytester.makefile(".scenario.yaml", broken=GOOD.replace("title_zh: 小场景\n", ""))
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(errors=1)
    assert "title_zh: Field required" in result.stdout.str()


def test_plugin_xfail_and_plan_option(pytester):
    pytester.makefile(".scenario.yaml", gap=WRONG.replace("steps:", "xfail: 已知差异\nsteps:"))
    pytester.runpytest(*plugin_args()).assert_outcomes(xfailed=1)
    data = PLAN.to_data()
    data["settings"]["rectification_days"]["evacuation_blocked"] = 4
    dump_plan(validate_plan_data(data), pytester.path / "four-days.yaml")
    # 4 days: the "wrong" expectation (03-25) holds, so the strict xfail now fails
    result = pytester.runpytest("--fireflow-plan", "four-days.yaml", *plugin_args())
    result.assert_outcomes(failed=1)
    assert "XPASS(strict)" in result.stdout.str()


def test_plugin_runs_builtin_suite(pytester):
    for path in SUITE_FILES:
        shutil.copy(path, pytester.path / path.name)
    pytester.runpytest(*plugin_args()).assert_outcomes(passed=len(SUITE_FILES))


def test_examples_folder_runs_through_pytest(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES, project / "tests")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args(),
         "--junitxml", str(tmp_path / "j.xml")],
        cwd=project, capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(EXAMPLES.glob("*.scenario.yaml"))
    assert len(files) >= 2
    assert f"{len(files)} passed" in proc.stdout
    assert (EXAMPLES / "README.md").is_file()
    root = ET.parse(tmp_path / "j.xml").getroot()
    rules = {p.get("value") for p in root.iter("property") if p.get("name") == "rule"}
    assert rules


def test_junit_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    (tmp_path / "wrong.scenario.yaml").write_text(WRONG, encoding="utf-8")
    outputs = []
    for seed in ("0", "12345"):
        out = tmp_path / f"junit-{seed}.xml"
        code = (
            "import sys; from fireflow.cli.conformance import conformance_app; "
            f"conformance_app(['run', {str(SUITE)!r}, {str(tmp_path)!r}, '--junit', {str(out)!r}])"
        )
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
        )
        assert proc.returncode == 1, proc.stderr  # the wrong scenario fails
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
