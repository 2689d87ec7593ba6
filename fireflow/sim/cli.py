"""The ``fireflow simulate`` command: run the what-if simulator and write a report.

:func:`simulate_command` is a typer command; the main CLI registers it as
``fireflow simulate``.  Run alone it is also ``python -m fireflow.sim.cli``.
With no options it simulates the built-in plan on a generated Changle-sized
population and writes into ``./fireflow-out``: ``index.html`` (the KPI table,
the reports, the escalations and the plots), ``timeline.csv``,
``timeline_by_town.csv``, ``kpis.csv`` and the PNG plots.

Limits: ``--communities`` is at most :data:`MAX_COMMUNITIES` (a run takes
about 3 ms per community, so the largest run takes under a minute, and says
so before it starts); ``--seed`` is a whole number in ``0..2**63-1``.

Exit codes: 0 success, 1 a missing extra or a bad input (plan, population,
an ``--out`` that cannot be written), 2 a usage error (including a number
outside its limit).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from fireflow import output
from fireflow._console import fail, run_app
from fireflow.errors import FireflowError
from fireflow.text import escape_for_terminal

__all__ = ["MAX_COMMUNITIES", "MAX_SEED", "MISSING_EXTRA", "app", "main", "simulate_command"]

#: The most communities ``--communities`` generates.
MAX_COMMUNITIES = 10_000
#: The largest ``--seed``.
MAX_SEED = 2**63 - 1
#: From this many communities on, the command says that the run takes a while.
_SLOW_FROM = 2_000

#: What the command prints when pandas or matplotlib is missing.
MISSING_EXTRA = (
    "fireflow simulate needs the simulator's extra (pandas, matplotlib): "
    "pip install 'fireflow[sim]'\n"
    "推演需要安装 sim 扩展：pip install 'fireflow[sim]'"
)


def _safe(text: str) -> str:
    """Plan text for a rich console: control characters escaped, no markup."""
    return markup_escape(escape_for_terminal(text))


def _missing() -> list[str]:
    import importlib.util  # noqa: PLC0415

    return [m for m in ("pandas", "matplotlib") if importlib.util.find_spec(m) is None]


def simulate_command(
    plan: Annotated[
        str, typer.Option("--plan", help="Built-in plan name or path to a plan file.")
    ] = "changle-2022",
    population: Annotated[
        Path | None,
        typer.Option(
            "--population",
            help="Annex 4-shaped CSV (乡镇（街道）, 小区名称, 物业服务企业, 户数, 楼栋数); "
            "default: a generated population.",
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the run's random streams."),
    ] = 2022,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the report, CSV and PNG files.")
    ] = Path("fireflow-out"),
    communities: Annotated[
        int,
        typer.Option(
            "--communities",
            min=1,
            max=MAX_COMMUNITIES,
            help="Communities of the generated population (no CSV).",
        ),
    ] = 300,
    provisional: Annotated[
        bool,
        typer.Option(
            "--provisional",
            help="Estimate years with no holiday data (weekends and fixed holidays; marked 估算).",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=256,
            help="Local processes; the campaign is split by town (same result as 1).",
        ),
    ] = 1,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Address of a Dask scheduler (tcp://host:8786): one shard per worker.",
        ),
    ] = None,
) -> None:
    """推演 Simulate the campaign and write a report (what-if simulator)."""
    missing = _missing()
    if missing:
        raise fail(MISSING_EXTRA)
    from fireflow.plan import load_plan  # noqa: PLC0415
    from fireflow.sim import generate_population, load_population, simulate  # noqa: PLC0415

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    if out.exists() and not out.is_dir():
        raise fail(f"--out: {out} exists and is not a folder (应为文件夹)")
    try:
        output.check_folder(out)  # a link or a file as --out is refused before simulating
        the_plan = load_plan(plan)
        if provisional:
            the_plan = the_plan.provisional()
        pop = (
            load_population(population)
            if population is not None
            else generate_population(communities, seed=seed)
        )
        if len(pop) >= _SLOW_FROM:
            typer.echo(
                f"推演 {len(pop)} 个小区约需 {len(pop) * 3 // 1000 + 1} 秒以上 "
                f"simulating {len(pop)} communities takes a while (about 3 ms each)",
                err=True,
            )
        console.print(
            f"[bold]{_safe(the_plan.name.zh)}[/bold] · {_safe(the_plan.id)} · "
            f"{len(pop)} 个小区 communities "
            f"in {len(pop.towns)} 乡镇 towns · seed {seed}"
        )
        with Progress(
            TextColumn("推演 simulating"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} days"),
            console=console,
            disable=not console.is_terminal,
            transient=True,
        ) as bar:
            task = bar.add_task("simulate", total=(the_plan.end - the_plan.start).days + 1)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done)

            if scheduler is not None:
                import dask.distributed  # noqa: PLC0415 (the sim extra)

                distributed: Any = dask.distributed  # its constructors are untyped
                with distributed.Client(scheduler, timeout=30) as client:
                    result = simulate(the_plan, pop, seed=seed, progress=progress, client=client)
            else:
                result = simulate(the_plan, pop, seed=seed, progress=progress, workers=workers)
        table = Table(title="指标 KPIs")
        for col in ("指标", "KPI", "值 Value"):
            table.add_column(col, justify="right" if col.startswith("值") else "left")
        from fireflow.sim.result import KPI_LABELS, format_kpi  # noqa: PLC0415

        for key, value in result.kpis.items():
            zh, en = KPI_LABELS[key]
            table.add_row(zh, en, format_kpi(key, value))
        console.print(table)
        index = result.write_report(out)
    except FireflowError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--out: cannot write to {out}: {exc.strerror or exc}") from None
    console.print(f"报告 report: {index}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("simulate")(simulate_command)


def main() -> None:
    """Run the command on its own (``python -m fireflow.sim.cli``)."""
    raise SystemExit(run_app(app, None, "fireflow-simulate"))


if __name__ == "__main__":  # pragma: no cover
    main()
