"""``fireflow conformance``: run scenario files, report rule coverage, print the schema.

``conformance_app`` is a typer sub-application; the main CLI mounts it as
``fireflow conformance``.  Exit codes: 0 all good, 1 a failing scenario, an
uncovered rule, or an input problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fireflow.cli.console import fail, term
from fireflow.errors import FireflowError, InvalidArgument, Problem
from fireflow.plan import BUILTIN_PLAN, Plan, load_plan
from fireflow.testing.runner import (
    ScenarioResult,
    builtin_suite,
    find_scenario_files,
    rule_coverage,
    run_paths,
    write_junit,
)
from fireflow.testing.scenario import Scenario, ScenarioError, load_scenario, scenario_json_schema

__all__ = ["conformance_app"]

conformance_app = typer.Typer(
    help="一致性测试 Conformance: run scenario files, rule coverage, schema.",
    no_args_is_help=True,
)

PlanOpt = Annotated[
    str | None,
    typer.Option(
        "--plan",
        help="Run on this plan (built-in name or plan file) instead of the scenarios' own.",
    ),
]

_MARK = {
    "passed": "PASS",
    "failed": "FAIL",
    "xfailed": "XFAIL",
    "xpassed": "XPASS",
    "skipped": "SKIP",
}


def _fail(exc: FireflowError) -> typer.Exit:
    return fail(str(exc))


@conformance_app.command("run")
def run(
    paths: Annotated[
        list[str],
        typer.Argument(help="Scenario files or folders (searched for *.scenario.yaml)."),
    ],
    plan: PlanOpt = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML.")
    ] = None,
) -> None:
    """Run scenario files (运行场景); exit 1 when any fails."""
    try:
        if plan is not None:
            load_plan(plan)  # a bad --plan is an input error, not 28 failures
        results = run_paths(paths, plan=plan)
    except FireflowError as exc:
        raise _fail(exc) from None
    if not results:
        shown = ", ".join(paths)
        raise _fail(InvalidArgument("paths", f"no scenario files (*.scenario.yaml) in {shown}"))
    for r in results:
        typer.echo(term(f"{_MARK[r.outcome]:5} {r.scenario_id}  {r.title_zh}"))
        if r.skipped is not None:
            typer.echo(term(f"      {r.skipped}"))
        if r.outcome in ("failed", "xpassed") or r.error is not None:
            typer.echo(term("\n".join(f"      {line}" for line in r.report().splitlines())))
    if junit is not None:
        write_junit(results, junit)
    _summary(results)
    failed = [r.scenario_id for r in results if r.counts_as_failure]
    if failed:
        shown = term(", ".join(failed[:20])) + (" …" if len(failed) > 20 else "")
        typer.echo(f"✗ {len(failed)} 个场景失败 scenario(s) failed: {shown}", err=True)
        raise typer.Exit(1)


def _summary(results: list[ScenarioResult]) -> None:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    kinds = ("passed", "failed", "xfailed", "xpassed", "skipped")
    parts = [f"{counts[k]} {k}" for k in kinds if k in counts]
    steps = sum(len(r.steps) for r in results)
    typer.echo(f"{len(results)} scenarios, {steps} steps: {', '.join(parts) or 'nothing to run'}")


def _plan_of(scenarios: list[Scenario], plan: str | None) -> Plan:
    if plan is not None:
        return load_plan(plan)
    names: set[str] = set()
    for s in scenarios:
        local = s.base_dir() / s.plan
        names.add(str(local.resolve()) if local.is_file() else s.plan)
    if len(names) > 1:
        raise ScenarioError(
            [
                Problem(
                    "coverage",
                    "plan",
                    f"the scenarios name several plans ({', '.join(sorted(names))}): "
                    "pick one with --plan",
                )
            ]
        )
    return load_plan(names.pop() if names else BUILTIN_PLAN)


@conformance_app.command("coverage")
def coverage(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Scenario files or folders (default: the built-in suite)."),
    ] = None,
    plan: PlanOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """List the plan's rules without a scenario (规则覆盖); exit 1 when any is uncovered."""
    try:
        files = find_scenario_files(paths or [builtin_suite()])
        scenarios = [load_scenario(f) for f in files]
        the_plan = _plan_of(scenarios, plan)
    except FireflowError as exc:
        raise _fail(exc) from None
    cov = rule_coverage(scenarios, the_plan)
    if as_json:
        data = {
            "plan": cov.plan_id,
            "scenarios": len(scenarios),
            "rules": {k: list(v) for k, v in cov.by_rule.items()},
            "uncovered": list(cov.uncovered),
            "unknown": {k: list(v) for k, v in cov.unknown.items()},
        }
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        for rule_id, ids in cov.by_rule.items():
            title = the_plan.rule(rule_id).title_zh
            shown = ", ".join(ids) if ids else "—— 无场景 UNCOVERED"
            typer.echo(term(f"{rule_id:22} {title:10}") + f"\t{len(ids):2}  " + term(shown))
        for rule_id, ids in cov.unknown.items():
            typer.echo(
                term(f"{rule_id:22} (not in plan {cov.plan_id})") + "\t" + term(", ".join(ids))
            )
        covered = len(cov.by_rule) - len(cov.uncovered)
        typer.echo(
            f"plan {cov.plan_id}: {len(cov.by_rule)} rules, {covered} covered, "
            f"{len(cov.uncovered)} uncovered ({len(scenarios)} scenarios)"
        )
        if cov.uncovered:
            typer.echo(f"uncovered 未覆盖: {', '.join(cov.uncovered)}")
    if cov.uncovered:
        raise typer.Exit(1)


@conformance_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of scenario files (场景文件格式)."""
    typer.echo(json.dumps(scenario_json_schema(), ensure_ascii=False, indent=2, sort_keys=True))
