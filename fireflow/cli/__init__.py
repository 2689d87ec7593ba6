"""The ``fireflow`` command (命令行).

Output is for people (Chinese labels with English alongside) unless
``--json`` is given, which prints stable, sorted JSON for other programs.
Exit codes (see :mod:`fireflow.cli.console`): 0 success, 1 a refusal, a failed
check or bad input, 2 a usage error (including a number outside its limit),
70 an internal error (a bug), 130 interrupted.  No input ends in a traceback.

Every sub-command is registered here, in one place; each area's commands live
in a module beside this one (``reports``, ``tickets``, ``store``, ``sim``,
``conformance``, ``serve``).  docs/cli.md lists where each command lives.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from fireflow import output
from fireflow.calendar import MAX_PERIOD
from fireflow.cli.conformance import conformance_app
from fireflow.cli.console import (
    EXIT_USAGE,
    MAX_ERROR_LINES,
    console,
    fail,
    print_json,
    rich_text,
    run_app,
    term,
    version_text,
)
from fireflow.cli.reports import register as register_reports
from fireflow.cli.serve import serve_app
from fireflow.cli.sim import simulate_command
from fireflow.cli.store import store_app
from fireflow.cli.tickets import register as register_tickets
from fireflow.errors import CalendarDataMissing, FireflowError, PlanError, Problem
from fireflow.model import plan_digest
from fireflow.plan import (
    BUILTIN_PLAN,
    Deadline,
    Plan,
    YearCoverage,
    calendar_coverage,
    calendar_for_plan,
    load_plan,
    plan_json_schema_text,
)
from fireflow.plan.derive import derive_plan, foreign_text
from fireflow.plan.upgrade import required_hint, upgrade_file

__all__ = ["MAX_PERIOD_UNITS", "app", "entry", "main"]

app = typer.Typer(
    name="fireflow",
    help="fireflow: 消防通道专项整治规则引擎 (fire-passage campaign rules engine).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plan_app = typer.Typer(
    help="方案 Plans: show, check, new, upgrade, rules, schema.", no_args_is_help=True
)
calendar_app = typer.Typer(help="日历 Calendar: legal deadlines.", no_args_is_help=True)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """fireflow: 消防通道专项整治规则引擎 (fire-passage campaign rules engine)."""


app.add_typer(plan_app, name="plan")
app.add_typer(calendar_app, name="calendar")
register_reports(app)  # spotcheck, report, forms, dossier
app.add_typer(conformance_app, name="conformance")
app.add_typer(store_app, name="store")
app.command("simulate")(simulate_command)
app.add_typer(serve_app, name="serve")
register_tickets(app)  # tickets: the ticket index of a store

DEFAULT_PLAN = BUILTIN_PLAN

#: The longest period ``fireflow calendar deadline`` counts, per unit: about a
#: century each, far beyond any deadline in a campaign plan, and quick to count.
MAX_PERIOD_UNITS = MAX_PERIOD  # one source: the calendar's own bounds
PlanArg = Annotated[str, typer.Argument(help="Built-in plan name or path to a plan file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


ProvisionalOpt = Annotated[
    bool,
    typer.Option(
        "--provisional",
        help="Estimate years with no holiday data (weekends and fixed holidays; marked 估算).",
    ),
]


def load_plan_for(name: str, provisional: bool = False) -> Plan:
    """The plan by name or path; with provisional estimates when ``provisional``."""
    plan = load_plan(name)
    return plan.provisional() if provisional else plan


def _missing_line(err: CalendarDataMissing) -> str:
    return (
        f"✗ 缺少 {err.year} 年节假日数据，无法计算截止日期 / no official holiday data for "
        f"{err.year}: dates cannot be computed. Fix: add holidays.overrides for {err.year} "
        f"to the plan (方案中给出该年休息日), or pass --provisional for estimates (估算)"
    )


@plan_app.command("show")
def plan_show(
    name: PlanArg = DEFAULT_PLAN, as_json: JsonOpt = False, provisional: ProvisionalOpt = False
) -> None:
    """Print a plan's phases and deadlines (阶段与报送时限), and where each year's dates come from.

    Phases and recipients need no calendar: they are printed even when a year
    lacks holiday data; the due dates then need an override or ``--provisional``.
    """
    plan = load_plan_for(name, provisional)
    coverage = calendar_coverage(plan, allow_provisional=provisional)
    missing: CalendarDataMissing | None = None
    deadlines: list[Deadline] = []
    try:
        deadlines = plan.deadlines()
    except CalendarDataMissing as exc:
        missing = exc
    if as_json:
        print_json(
            {
                "plan": plan.id,
                "phases": [
                    {
                        "id": p.id,
                        "name_zh": p.name.zh,
                        "name_en": p.name.en,
                        "start": p.start.isoformat(),
                        "end": p.end.isoformat(),
                        "clause": p.clause,
                    }
                    for p in plan.phases
                ],
                "deadlines": [d.to_data() for d in deadlines],
                "calendar": [c.to_data() for c in coverage],
                "calendar_missing": None if missing is None else missing.year,
            }
        )
        if missing is not None:
            raise fail(_missing_line(missing))
        return
    con = console()
    con.print(f"[bold]{rich_text(plan.name.zh)}[/bold]\n{rich_text(plan.name.en)}")
    con.print(rich_text(f"{plan.district} · {plan.year} · {plan.timezone}"))
    t = Table(title="阶段 Phases (R-CAL-PHASES)")
    for col in ("id", "阶段 Phase", "开始 Start", "结束 End", "天数 Days", "条款 Clause"):
        t.add_column(col)
    for p in plan.phases:
        t.add_row(
            rich_text(p.id),
            rich_text(f"{p.name.zh} {p.name.en}"),
            p.start.isoformat(),
            p.end.isoformat(),
            str(p.days),
            rich_text(p.clause),
        )
    con.print(t)
    if missing is not None:
        t = Table(title="报送事项 Reports (截止日期无法计算 due dates not computed)")
        for col in ("id", "名称 Name", "方案日期 Nominal", "报送对象 Recipients"):
            t.add_column(col)
        for f in plan.deadlines_fixed:
            t.add_row(
                rich_text(f.id),
                rich_text(f.name.zh),
                f.nominal.isoformat(),
                rich_text("、".join(plan.agency(a).name.zh for a in f.recipients)),
            )
        pr = plan.progress_reports
        if pr.senders:
            t.add_row(
                "progress.*",
                rich_text(pr.name.zh),
                f"每阶段结束前{pr.offset}日",
                rich_text("、".join(plan.agency(a).name.zh for a in pr.recipients)),
            )
        con.print(t)
        _print_coverage(coverage)
        raise fail(_missing_line(missing))
    t = Table(title="报送时限 Deadlines")
    for col in (
        "id",
        "名称 Name",
        "方案日期 Nominal",
        "截止 Due",
        "报送对象 Recipients",
        "规则 Rules",
    ):
        t.add_column(col)
    for d in deadlines:
        recipients = "、".join(plan.agency(a).name.zh for a in d.recipients)
        due = d.due.isoformat() + (" *" if d.due != d.nominal else "")
        if d.provisional:
            due += " 估算"
        t.add_row(
            rich_text(d.id),
            rich_text(d.name_zh),
            d.nominal.isoformat(),
            due,
            rich_text(recipients),
            rich_text(" ".join(d.rules)),
        )
    con.print(t)
    con.print("* 遇休息日顺延 due moved by the holiday policy (R-DUE-HOLIDAY, 民法典 第二百零三条)")
    _print_coverage(coverage)


def _print_coverage(coverage: list[YearCoverage]) -> None:
    typer.echo("节假日数据来源 holiday data by year:")
    for c in coverage:
        typer.echo(f"  {term(str(c))}")


@plan_app.command("check")
def plan_check(path: Annotated[str, typer.Argument(help="Plan file to validate.")]) -> None:
    """Validate a plan file and print its problems (校验方案文件): the first 40, and the count."""
    try:
        plan = load_plan(path)
    except PlanError as exc:
        _problem_lines(exc.problems, exc.total)
        raise typer.Exit(1) from None
    typer.echo(
        f"✓ 方案有效 plan is valid: {term(plan.id)} "
        f"({len(plan.rules)} rules, {len(plan.phases)} phases), digest {plan_digest(plan)}"
    )
    _review_lines(plan)
    for c in calendar_coverage(plan):
        if c.kind == "missing":
            typer.echo(
                f"⚠ {c.year}: 无官方节假日数据，方案也未给出 no official holiday data and no "
                f"override; dates reaching {c.year} cannot be computed. Fix: add "
                f"holidays.overrides for {c.year}, or pass --provisional (估算)"
            )


def _problem_lines(problems: Sequence[Problem], total: int) -> None:
    """A plan's problems on stderr (the first 40, then the count); hints for missing settings."""
    typer.echo(f"✗ 方案有 {total} 处问题 / {total} problem(s):", err=True)
    # a capped list ends with a line counting the rest: the count is said below instead
    listed = problems if len(problems) <= total else problems[:-1]
    shown = listed[:MAX_ERROR_LINES]
    hinted = False
    for p in shown:
        typer.echo(f"  {term(p)}", err=True)
        hint = required_hint(p.path) if "required" in p.message else None
        if hint:
            typer.echo(f"    提示 hint: {hint}", err=True)
            hinted = True
    more = total - len(shown)
    if more > 0:
        typer.echo(f"  … 另有 {more} 处问题未列出 / {more} more problems not listed", err=True)
    if hinted:
        typer.echo(
            "  fireflow plan upgrade FILE 可补写上述设定 writes these settings (docs/adapting.md)",
            err=True,
        )


@plan_app.command("upgrade")
def plan_upgrade(
    path: Annotated[str, typer.Argument(help="Plan file of an earlier format.")],
    out: Annotated[
        str | None, typer.Option("--out", help="Write the upgraded plan here (default: FILE).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the changes and write nothing.")
    ] = False,
) -> None:
    """Rewrite a plan of an earlier format to today's (升级方案格式), keeping its comments.

    Lists what changed (+) and what a person must still write (!); every value the
    upgrade chose is the built-in plan's and is marked for review in the file.
    """
    try:
        up = upgrade_file(path)
    except PlanError as exc:
        _problem_lines(exc.problems, exc.total)
        raise typer.Exit(1) from None
    if not up.changes:
        typer.echo(
            term(f"✓ 已是当前格式，未作改动 already in the current format, unchanged: {path}")
        )
    for change in up.changes[:MAX_ERROR_LINES]:
        typer.echo(term(f"  {change}"))
    if len(up.changes) > MAX_ERROR_LINES:
        typer.echo(f"  … 另有 {len(up.changes) - MAX_ERROR_LINES} 处 / more not listed")
    review = [c for c in up.changes if c.review or not c.done]
    if review:
        typer.echo(
            f"⚠ {len(review)} 处须人工复核 item(s) for a person to review: each value above is "
            "the built-in plan's (marked '# fireflow plan upgrade' in the file); ! lines are not "
            "written: write them"
        )
    if not up.comments_kept:
        typer.echo("⚠ 注释未能保留 the file is written anew: its comments are lost")
    if up.changed and not dry_run:
        try:
            output.write_text(out or path, up.text)
        except FireflowError as exc:
            raise fail(str(exc)) from None
        typer.echo(term(f"✓ 已写入 written: {out or path}"))
    if up.problems:
        _problem_lines(up.problems, len(up.problems))
        raise typer.Exit(1)


def _review_lines(plan: Plan) -> None:
    """Warn (exit 0) about review entries left and text naming another district or year."""
    if plan.review:
        typer.echo(
            f"⚠ {len(plan.review)} 处待复核 item(s) marked for review (review:); "
            "check each and delete its entry"
        )
        for note in plan.review[:MAX_ERROR_LINES]:
            found = "、".join(note.found)
            typer.echo(term(f"  {note.path}: {note.kind} {found} — {note.note}"))
        if len(plan.review) > MAX_ERROR_LINES:
            typer.echo(f"  … 另有 {len(plan.review) - MAX_ERROR_LINES} 处 / more not listed")
    foreign = foreign_text(plan)
    for item in foreign[:MAX_ERROR_LINES]:
        typer.echo(term(f"⚠ {item.path}: {'、'.join(item.found)} — {item.note}"))
    if len(foreign) > MAX_ERROR_LINES:
        typer.echo(f"⚠ … 另有 {len(foreign) - MAX_ERROR_LINES} 处 / more not listed")


@plan_app.command("new")
def plan_new(
    source: Annotated[
        str, typer.Option("--from", help="The plan to start from: built-in name or plan file.")
    ],
    district: Annotated[str, typer.Option("--district", help="The new district, e.g. 鼓楼区.")],
    year: Annotated[int, typer.Option("--year", help="The campaign year, e.g. 2023.")],
    out: Annotated[
        str | None, typer.Option("--out", help="Write the plan here (default: print it).")
    ] = None,
    plan_id: Annotated[
        str | None, typer.Option("--id", help="The new plan's id (default: from the district).")
    ] = None,
    district_en: Annotated[
        str | None, typer.Option("--district-en", help="The district's English name.")
    ] = None,
) -> None:
    """A new plan from an existing one (新方案): dates moved, text to review listed and marked."""
    try:
        plan, items = derive_plan(
            load_plan(source),
            district=district,
            year=year,
            district_en=district_en,
            plan_id=plan_id,
        )
    except FireflowError as exc:
        raise fail(str(exc)) from None
    header = (
        f"# 由 fireflow plan new 从 {plan.derived_from.plan if plan.derived_from else source} "
        f"生成 / made by fireflow plan new.\n"
        "# review: 列出须复核之处：逐条核对、修改后删除该条；fireflow plan check 列出余下各条。\n"
        "# review: lists what to check; fix each and delete its entry. plan check lists the rest.\n"
    )
    text = header + plan.to_yaml()
    if out is None:
        typer.echo(term(text), nl=False)
    else:
        try:
            output.write_text(out, text)
        except FireflowError as exc:
            raise fail(str(exc)) from None
    where = sys.stderr if out is None else sys.stdout
    print(
        term(
            f"✓ 新方案 new plan {plan.id} ({plan.district.zh}, {plan.year})"
            + (f" → {out}" if out else "")
            + f"; {len(items)} 处待复核 item(s) to review (review:)"
        ),
        file=where,
    )
    for item in items[:MAX_ERROR_LINES]:
        print(term(f"  {item}"), file=where)
    if len(items) > MAX_ERROR_LINES:
        print(f"  … 另有 {len(items) - MAX_ERROR_LINES} 处 / more in the file", file=where)


@plan_app.command("rules")
def plan_rules(name: PlanArg = DEFAULT_PLAN, as_json: JsonOpt = False) -> None:
    """List the rule catalogue (规则目录) with clauses."""
    plan = load_plan(name)
    if as_json:
        print_json([r.model_dump(mode="json") for r in plan.rules])
        return
    t = Table(title=f"规则目录 Rule catalogue · {rich_text(plan.id)}")
    for col in ("id", "条款 Clause", "依据 Basis", "规则 Rule"):
        t.add_column(col)
    basis = {"plan": "方案原文 plan", "default": "默认解释 default", "mixed": "原文+默认 mixed"}
    for r in plan.rules:
        t.add_row(
            rich_text(r.id),
            rich_text(r.clause),
            basis[r.basis],
            rich_text(f"{r.title_zh} {r.title_en}"),
        )
    console().print(t)


@plan_app.command("schema")
def plan_schema() -> None:
    """Print the JSON Schema of the plan format."""
    typer.echo(plan_json_schema_text())


@calendar_app.command("deadline")
def calendar_deadline(
    start: Annotated[str, typer.Argument(help="Start date, YYYY-MM-DD (the day of the trigger).")],
    n: Annotated[int, typer.Argument(help="Length of the period.")],
    unit: Annotated[str, typer.Option(help="calendar | working | month | year")] = "calendar",
    plan: Annotated[str, typer.Option(help="Built-in plan name or plan file.")] = DEFAULT_PLAN,
    provisional: ProvisionalOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The last day of a period of N units that begins after START (期限计算).

    N is at most 36600 calendar days, 25000 working days, 1200 months or 100 years.
    """
    try:
        day = date.fromisoformat(start)
    except ValueError:
        raise fail(f"START: not a date (YYYY-MM-DD): {start[:40]!r}", EXIT_USAGE) from None
    if unit not in MAX_PERIOD_UNITS:
        units = " | ".join(MAX_PERIOD_UNITS)
        raise fail(f"--unit: unknown unit {unit!r}; use one of {units}", EXIT_USAGE)
    limit = MAX_PERIOD_UNITS[unit]
    if not 1 <= n <= limit:
        raise fail(
            f"N: {n} is outside 1..{limit} for --unit {unit} (期限超出范围 at most {limit})",
            EXIT_USAGE,
        )
    p = load_plan(plan)
    cal = calendar_for_plan(p, allow_provisional=provisional) if provisional else p.calendar
    # the calendar refuses n beyond its limits and periods past 9999-12-31 (typed errors)
    period = cal.period(day, n, unit)  # type: ignore[arg-type] # checked above
    if as_json:
        print_json(
            {
                "start": period.start.isoformat(),
                "n": period.n,
                "unit": period.unit,
                "last_day": period.last_day.isoformat(),
                "due": period.due.isoformat(),
                "rolled": period.rolled,
                "provisional": period.provisional,
                "rules": list(period.rules),
            }
        )
        return
    note = ""
    if period.rolled:
        note = (
            f"  (末日 {period.last_day} 为休息日，依 {cal.holiday_policy} 调整 "
            "last day was a rest day; R-DUE-HOLIDAY)"
        )
    if period.provisional:
        note += "  [估算 provisional: no official holiday data]"
    typer.echo(f"{period.due.isoformat()}{note}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (used by the ``fireflow`` entry point)."""
    return run_app(app, argv, "fireflow")


def entry() -> None:
    """Console-script entry point."""
    raise SystemExit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
