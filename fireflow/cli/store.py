"""``fireflow store``: checkpoints, verification, listing and replaying tickets (事件库命令).

Every command opens an existing SQLite store read-only
(``SQLiteStore(path, readonly=True)``): a missing file is an error, never a new
empty store, and no command changes a byte of the store or creates a file
beside it.  Text that comes from the store (ticket ids, states, problems) is
printed through :func:`fireflow.text.escape_for_terminal`, so a control
character stored in an id is shown as ``\\u001b``, never sent to the terminal.
Output is for people (Chinese labels with English
alongside) unless ``--json`` is given.  Exit codes: 0 success, 1 a mismatch or
an input problem, 2 a usage error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from fireflow import output
from fireflow._input import MAX_CHECKPOINT_FILE_BYTES, read_limited
from fireflow.cli.console import console, run_app
from fireflow.errors import FireflowError, InvalidArgument, Refusal
from fireflow.events import parse_time
from fireflow.plan import BUILTIN_PLAN, load_plan
from fireflow.rules.explain import explain
from fireflow.states import LIFECYCLE
from fireflow.store.chain import Checkpoint, VerifyReport, checkpoint, verify
from fireflow.store.errors import CorruptRecord, VerificationFailed
from fireflow.store.sqlite import SQLiteStore
from fireflow.store.transfer import copy_store, opened
from fireflow.text import escape_for_terminal
from fireflow.ticket import TicketState, fold

__all__ = ["main", "problem_lines", "store_app"]

P = ParamSpec("P")
R = TypeVar("R")

store_app = typer.Typer(
    help="事件库 Event store: checkpoint, verify, list and replay tickets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbArg = Annotated[Path, typer.Argument(help="The store's SQLite file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _open(db: Path) -> SQLiteStore:
    return SQLiteStore(db, readonly=True)


def _t(value: object) -> str:
    """Text from a store, safe to print on a terminal."""
    return escape_for_terminal(str(value))


def _lines(text: str) -> str:
    """Multi-line text from a store, each line escaped (the line breaks kept)."""
    return "\n".join(_t(line) for line in text.split("\n"))


def _errors(func: Callable[P, R]) -> Callable[P, R]:
    """A fireflow error becomes one escaped line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FireflowError as exc:
            typer.echo(f"错误 error: {_t(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def _print_json(data: Any) -> None:
    """JSON as :func:`fireflow.cli.console.print_json` prints it, safe for a terminal.

    ``json.dumps`` escapes C0 controls but, with the Chinese kept as text, not C1
    controls (U+009B starts an escape sequence too), bidirectional or other
    format characters: those are written as ``\\uXXXX`` escapes, which JSON
    reads back as the same characters.
    """
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    typer.echo(_lines(text))


def _cell(value: object) -> Text:
    """A table cell: escaped for the terminal and never read as rich markup."""
    return Text(_t(value))


def problem_lines(report: VerifyReport) -> list[str]:
    """The report's problems as lines for a terminal (escaped), with a count of the rest."""
    lines = [f"  ✗ {_t(p)}" for p in report.problems]
    more = report.problem_count - len(report.problems)
    if more > 0:
        lines.append(f"  … 另有 {more} 处 and {more} more")
    return lines


@store_app.command("checkpoint")
@_errors
def store_checkpoint(
    db: DbArg,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="When the checkpoint is taken, ISO-8601 with an offset "
            "(default: the time of the last event in the store).",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the checkpoint JSON to this file.")
    ] = None,
) -> None:
    """Verify the store and print a checkpoint to publish (生成检查点)."""
    when: datetime | None = None
    if at is not None:
        try:
            when = parse_time(at, "--at")
        except InvalidArgument as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(2) from None
    with _open(db) as store:
        if when is None:
            n = store.count()
            if n == 0:
                typer.echo("错误 error: --at: the store is empty, pass --at", err=True)
                raise typer.Exit(2)
            when = next(store.read_all(n - 1)).event.at
        try:
            cp = checkpoint(store, when)
        except VerificationFailed as exc:
            typer.echo("✗ 校验失败，不生成检查点 the store does not verify:", err=True)
            for line in problem_lines(exc.report):
                typer.echo(line, err=True)
            raise typer.Exit(1) from None
    text = cp.to_json()
    if out is None:
        typer.echo(text, nl=False)
        return
    output.write_text(out, text)
    typer.echo(
        f"✓ 检查点 checkpoint: {cp.count} 条事件 events, {cp.tickets} 个工单 tickets, "
        f"head {cp.global_head[:16]}…, at {cp.at.isoformat()} → {_t(out)}"
    )


@store_app.command("verify")
@_errors
def store_verify(
    db: DbArg,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A published checkpoint (JSON) to check against."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every hash; with --checkpoint also catch truncation and rewrites (校验)."""
    cp: Checkpoint | None = None
    if checkpoint_file is not None:
        try:
            text = read_limited(checkpoint_file, MAX_CHECKPOINT_FILE_BYTES, "checkpoint")
        except (OSError, InvalidArgument) as exc:
            typer.echo(
                f"错误 error: --checkpoint: cannot read {_t(checkpoint_file)}: {_t(exc)}", err=True
            )
            raise typer.Exit(1) from None
        cp = Checkpoint.from_json(text)
    with _open(db) as store:
        report = verify(store, cp)
    if as_json:
        _print_json(report.to_data())
    elif report.ok:
        typer.echo(
            f"✓ 校验通过 verified: {report.count} 条事件 events, {report.tickets} 个工单 tickets, "
            f"head {report.global_head[:16]}…"
        )
        if cp is not None:
            typer.echo(
                f"✓ 与检查点一致 matches the checkpoint of {cp.at.isoformat()} "
                f"({cp.count} events, {cp.tickets} tickets)"
            )
    else:
        typer.echo(
            f"✗ 校验失败 verification failed: {report.problem_count} 处问题 problem(s) "
            f"in {report.count} events",
            err=True,
        )
        for line in problem_lines(report):
            typer.echo(line, err=True)
    if not report.ok:
        raise typer.Exit(1)


def _state_label(state: TicketState) -> str:
    return f"{LIFECYCLE.state(state.state).zh} {state.state}"


@store_app.command("tickets")
@_errors
def store_tickets(db: DbArg, as_json: JsonOpt = False) -> None:
    """List the tickets with their version and state (工单列表)."""
    rows: list[dict[str, Any]] = []
    failed = 0
    with _open(db) as store:
        for tid in store.tickets():
            events = []
            try:
                events = store.read(tid)
                state = fold(events, tid)
            except (Refusal, InvalidArgument, CorruptRecord) as exc:  # listed, not fatal
                failed += 1
                rows.append(
                    {"ticket": tid, "version": len(events), "state": None, "error": str(exc)}
                )
                continue
            rows.append(
                {
                    "ticket": tid,
                    "version": state.version,
                    "state": state.state,
                    "last_at": events[-1].at.isoformat() if events else None,
                }
            )
    if as_json:
        _print_json(rows)
    else:
        t = Table(title=Text(f"工单 Tickets · {_t(db.name)}"))
        for col in ("工单 Ticket", "版本 Version", "状态 State", "最后事件 Last event"):
            t.add_column(col)
        for r in rows:
            if r["state"] is None:
                t.add_row(
                    _cell(r["ticket"]), _cell(r["version"]), _cell(f"✗ {r['error']}"), _cell("")
                )
            else:
                label = f"{LIFECYCLE.state(r['state']).zh} {r['state']}"
                t.add_row(
                    _cell(r["ticket"]), _cell(r["version"]), _cell(label), _cell(r["last_at"] or "")
                )
        console().print(t)
    if failed:
        bad = ", ".join(_t(r["ticket"]) for r in rows if r["state"] is None)
        typer.echo(
            f"✗ 历史记录无法折叠 corrupt history in {failed} ticket(s): {bad[:500]}", err=True
        )
        raise typer.Exit(1)


@store_app.command("replay")
@_errors
def store_replay(
    db: DbArg,
    ticket: Annotated[str, typer.Argument(help="The ticket id.")],
    plan: Annotated[str, typer.Option(help="Built-in plan name or plan file.")] = BUILTIN_PLAN,
    as_json: JsonOpt = False,
    at: Annotated[
        str | None,
        typer.Option(
            help="An aware ISO instant: also list what is due then (duties and escalations, "
            "待办; R-DUTY-*, 六(四))."
        ),
    ] = None,
) -> None:
    """Fold a ticket's events and explain each step with its rules (回放工单)."""
    with _open(db) as store:
        events = store.read(ticket)
    if not events:
        typer.echo(
            f"错误 error: TICKET: no events for ticket {_t(repr(ticket))} (无此工单)", err=True
        )
        raise typer.Exit(1)
    the_plan = load_plan(plan)
    state = fold(events, ticket, plan=the_plan)  # PlanMismatch: recorded under another plan
    when: datetime | None = None
    if at is not None:
        try:
            when = parse_time(at, "--at")
        except InvalidArgument as exc:
            typer.echo(f"错误 error: {exc}", err=True)
            raise typer.Exit(2) from None
    lines = explain(events, the_plan, state=state, at=when)
    if as_json:
        _print_json({"ticket": ticket, "state": state.to_data(), "explain": lines})
        return
    typer.echo(
        f"工单 Ticket {_t(ticket)} · 版本 version {state.version} · "
        f"状态 state: {_t(_state_label(state))}"
    )
    for paragraph in lines:
        typer.echo(_lines(paragraph))


@store_app.command("copy")
@_errors
def store_copy(
    source: Annotated[str, typer.Argument(help="SQLite file or postgresql:// URL to copy from.")],
    destination: Annotated[
        str, typer.Argument(help="SQLite file or postgresql:// URL to copy into (empty or new).")
    ],
    schema: Annotated[
        str, typer.Option("--schema", help="PostgreSQL schema of both stores.")
    ] = "fireflow",
    as_json: JsonOpt = False,
) -> None:
    """Copy a verified store into an empty one, row for row (导出导入: SQLite ⇄ PostgreSQL)."""
    with opened(source, readonly=True, schema=schema) as src:
        before = verify(src)  # before the destination is opened: nothing made for a bad source
        if not before.ok:
            typer.echo("✗ 源库校验失败，未复制 the source does not verify:", err=True)
            for line in problem_lines(before):
                typer.echo(line, err=True)
            raise typer.Exit(1)
        with opened(destination, readonly=False, create=True, schema=schema) as dst:
            report = copy_store(src, dst, verified=before)
    if as_json:
        _print_json(report.to_data())
        return
    typer.echo(
        f"✓ 已复制并校验 copied and verified: {report.count} 条事件 events, "
        f"{report.tickets} 个工单 tickets, head {report.global_head[:16]}…"
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``store_app`` on its own; returns the exit code (as ``fireflow.cli.main`` does)."""
    return run_app(store_app, argv, "fireflow store")
