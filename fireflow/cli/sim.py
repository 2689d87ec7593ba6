"""The ``fireflow simulate`` command: run the what-if simulator and write a report.

:func:`simulate_command` is a typer command; the main CLI registers it as
``fireflow simulate``.  Run alone it is also ``python -m fireflow.cli.sim``.
With no options it simulates the built-in plan on a generated Changle-sized
population and writes into ``./fireflow-out``: ``index.html`` (the KPI table,
the reports, the escalations and the plots), ``timeline.csv``,
``timeline_by_town.csv``, ``kpis.csv`` and the PNG plots.

``--store PATH`` and ``--log PATH`` also write the run's event log (a verified
SQLite store with ``PATH.checkpoint.json``; JSON lines) and put ``towns.json``
and ``submissions.jsonl`` into ``--out``: the input of ``fireflow dossier``,
``fireflow forms`` and ``fireflow report status`` (:mod:`fireflow.sim.log`).
``--calibrate-from STORE`` fits the behaviour to a verified store (and
``--calibrate-submissions``), prints the fit and simulates with it
(:func:`fireflow.sim.calibrate`).

Limits: ``--communities`` is at most :data:`MAX_COMMUNITIES` (a run takes
about 3 ms per community, so the largest run takes under a minute, and says
so before it starts); ``--seed`` is a whole number in ``0..2**63-1``.

Destinations are checked before any work: a link, a folder where a file
belongs, a path holding control or bidirectional characters, a ``--store``
that is not a simulated store and any existing ``--log`` file are refused
(JSON lines carry no mark of a simulated log, so none is replaced).
``--scheduler`` must read ``tcp://HOST:PORT`` (or ``tls://``, ``ucx://``,
``ws://``, ``wss://``; plain ``HOST:PORT`` is tcp) and is tried at once, so a
scheduler that cannot be reached is reported before anything is simulated.

Exit codes: 0 success, 1 a missing extra or a bad input (plan, population,
an ``--out``, ``--store`` or ``--log`` that cannot be written, a store that
does not verify, a scheduler that cannot be reached), 2 a usage error
(including a number outside its limit and a malformed ``--scheduler``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape as markup_escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from fireflow import output
from fireflow._input import iter_json_lines
from fireflow.cli.console import EXIT_USAGE, fail, run_app
from fireflow.errors import FireflowError, InvalidArgument, OutputError
from fireflow.plan import BUILTIN_PLAN, load_plan
from fireflow.rules.reporting import Submission
from fireflow.store.errors import VerificationFailed
from fireflow.text import escape_for_terminal

if TYPE_CHECKING:
    from fireflow.plan import Plan
    from fireflow.sim.calibrate import Calibration
    from fireflow.sim.population import Population

__all__ = ["MAX_COMMUNITIES", "MAX_SEED", "MISSING_EXTRA", "app", "main", "simulate_command"]

#: The most communities ``--communities`` generates.
MAX_COMMUNITIES = 10_000
#: The largest ``--seed``.
MAX_SEED = 2**63 - 1
#: From this many communities on, the command says that the run takes a while.
_SLOW_FROM = 2_000
#: ``[SCHEME://]HOST:PORT`` of a Dask scheduler; HOST a name, an IPv4 or a bracketed IPv6.
_SCHEDULER = re.compile(
    r"(?:(?P<scheme>tcp|tls|ucx|ws|wss)://)?"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
    r":(?P<port>[0-9]{1,5})"
)

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
    ] = BUILTIN_PLAN,
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
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Also write the event log as a fireflow SQLite store here, with its checkpoint "
            "(PATH.checkpoint.json), and towns.json and submissions.jsonl in --out: the input of "
            "dossier, forms and report status. Replaces only a simulated store.",
        ),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="Also write the event log as JSON lines here (and towns.json, submissions.jsonl "
            "in --out). Never replaces an existing file.",
        ),
    ] = None,
    calibrate_from: Annotated[
        Path | None,
        typer.Option(
            "--calibrate-from",
            help="Fit the behaviour model to this fireflow SQLite store (verified first) and "
            "simulate with it; the population is the one simulated.",
        ),
    ] = None,
    calibrate_submissions: Annotated[
        Path | None,
        typer.Option(
            "--calibrate-submissions",
            help="With --calibrate-from: the reports handed in (JSON lines of Submission), "
            "to fit report lateness.",
        ),
    ] = None,
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
    from fireflow.sim import generate_population, load_population, simulate  # noqa: PLC0415
    from fireflow.sim import log as sim_log  # noqa: PLC0415

    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    address = _check_scheduler(scheduler) if scheduler is not None else None
    for option, path in (("--out", out), ("--store", store), ("--log", log)):
        if path is not None:
            _check_path_text(option, path, folder=path is out)
    if out.exists() and not out.is_dir():
        raise fail(f"--out: {out} exists and is not a folder (应为文件夹)")
    try:
        output.check_folder(out)  # a link or a file as --out is refused before simulating
        if store is not None:  # in --out (made below) or in an existing folder
            sim_log.check_store_destination(store, folder_later=_in_folder(store, out))
        if log is not None:
            output.check_destination(log, create_folders=_in_folder(log, out))
            if os.path.lexists(log):
                raise fail(
                    f"--log: {log} exists; a simulated log never replaces a file "
                    "(已有文件，不覆盖): remove it or choose another name"
                )
        if calibrate_submissions is not None and calibrate_from is None:
            raise fail("--calibrate-submissions needs --calibrate-from", EXIT_USAGE)
        if address is not None:
            _reach(address)
        the_plan = load_plan(plan)
        if provisional:
            the_plan = the_plan.provisional()
        pop = (
            load_population(population)
            if population is not None
            else generate_population(communities, seed=seed)
        )
        behaviour = None
        if calibrate_from is not None:
            fit = _calibrate(console, calibrate_from, calibrate_submissions, the_plan, pop)
            behaviour = fit.behaviour
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

            if address is not None:
                from fireflow.sim import shard  # noqa: PLC0415

                try:
                    client = shard.connect_scheduler(_url(address), timeout=shard.SCHEDULER_TIMEOUT)
                except shard.SchedulerUnreachable as exc:
                    raise fail(f"--{escape_for_terminal(str(exc))}") from None
                with client:
                    result = simulate(
                        the_plan, pop, behaviour, seed=seed, progress=progress, client=client
                    )
            else:
                result = simulate(
                    the_plan, pop, behaviour, seed=seed, progress=progress, workers=workers
                )
        table = Table(title="指标 KPIs")
        for col in ("指标", "KPI", "值 Value"):
            table.add_column(col, justify="right" if col.startswith("值") else "left")
        from fireflow.sim.result import KPI_LABELS, format_kpi  # noqa: PLC0415

        for key, value in result.kpis.items():
            zh, en = KPI_LABELS[key]
            table.add_row(zh, en, format_kpi(key, value))
        console.print(table)
        index = result.write_report(out)
        if store is not None:
            cp = sim_log.write_store(result, store)
            console.print(
                f"事件库 store: {_safe(str(store))} ({cp.count} 条事件 events, "
                f"{cp.tickets} 个工单 tickets; 检查点 checkpoint "
                f"{_safe(str(sim_log.checkpoint_path(store)))})"
            )
        if log is not None:
            sim_log.write_jsonl(result, log)
            console.print(f"事件日志 event log: {_safe(str(log))}")
        if store is not None or log is not None:
            sim_log.write_towns(result, out / "towns.json")
            sim_log.write_submissions(result, out / "submissions.jsonl")
    except FireflowError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--out: cannot write to {out}: {exc.strerror or exc}") from None
    console.print(f"报告 report: {_safe(str(index))}")


def _check_path_text(option: str, path: Path, *, folder: bool = False) -> None:
    """Refuse a destination whose new names hold control, bidirectional or invisible characters.

    The one rule of :func:`fireflow.output.check_new_names` (the file's name and the
    folders still to be made; an existing folder is the user's own), checked before
    any work and reported with the option's name; exit 1.
    """
    try:
        output.check_new_names(path, folder=folder)
    except OutputError as exc:
        raise fail(f"{option}: {exc}") from None


def _check_scheduler(text: str) -> tuple[str, str, int]:
    """``--scheduler`` as (scheme, host, port); a malformed address is a usage error."""
    m = _SCHEDULER.fullmatch(text)
    port = int(m["port"]) if m else 0
    if m is None or not 1 <= port <= 65535:
        raise fail(
            f"--scheduler: {escape_for_terminal(text)} is not a scheduler address; "
            "expected tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786 (调度器地址格式错误)",
            EXIT_USAGE,
        )
    return m["scheme"] or "tcp", m["host"].strip("[]"), port


def _url(address: tuple[str, str, int]) -> str:
    scheme, host, port = address
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _reach(address: tuple[str, str, int]) -> None:
    """Connect and handshake once, before any work, bounded by ``SCHEDULER_TIMEOUT``.

    A wrong address, a port that accepts and never answers and a ``tls://``
    address without TLS settings fail at once (exit 1), before anything is simulated.
    """
    from fireflow.sim import shard  # noqa: PLC0415

    if address[0] == "ucx":  # not a TCP port to try: the client reports it
        return
    try:
        shard.probe_scheduler(_url(address), timeout=shard.SCHEDULER_TIMEOUT)
    except shard.SchedulerUnreachable as exc:
        raise fail(f"--{escape_for_terminal(str(exc))}") from None


def _in_folder(path: Path, folder: Path) -> bool:
    """Is ``path`` a file directly in ``folder`` (which the command makes)?"""
    return Path(os.path.abspath(path)).parent == Path(os.path.abspath(folder))


def _calibrate(
    console: Console, store: Path, submissions: Path | None, plan: Plan, population: Population
) -> Calibration:
    """Fit the behaviour to a verified store (and submissions); print the fit."""
    from fireflow.sim.calibrate import calibrate  # noqa: PLC0415

    subs = None
    if submissions is not None:
        subs = []
        for n, data in iter_json_lines(submissions, "calibrate_submissions"):
            try:
                subs.append(Submission.from_data(data))
            except FireflowError as exc:
                raise InvalidArgument(
                    "calibrate_submissions", f"{submissions}:{n}: {exc}"
                ) from None
    try:
        fit = calibrate(store, plan, population=population, submissions=subs)
    except VerificationFailed as exc:
        raise fail(
            f"--calibrate-from: {escape_for_terminal(str(store))} does not verify "
            f"(事件库未通过校验): {exc}"
        ) from None
    except FireflowError as exc:  # missing, not SQLite, not a fireflow store, no events
        raise fail(f"--calibrate-from: {exc}") from None
    table = Table(title=f"校准 calibration from {_safe(str(store))}")
    for col in ("设定 setting", "值 value", "n", "se", "95%"):
        table.add_column(col)
    for row in fit.rows():
        table.add_row(*(_safe(str(c)) for c in row))
    console.print(table)
    console.print(
        "保留默认 kept (not identified by a log): " + _safe(", ".join(fit.not_identified))
    )
    return fit


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command("simulate")(simulate_command)


def main() -> None:
    """Run the command on its own (``python -m fireflow.cli.sim``)."""
    raise SystemExit(run_app(app, None, "fireflow-simulate"))


if __name__ == "__main__":  # pragma: no cover
    main()
