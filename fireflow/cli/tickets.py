"""``fireflow tickets``: ask the ticket index (工单查询) of a store.

``fireflow tickets --store URL [filters] [--counts] [--json]`` answers from a
:class:`~fireflow.views.TicketIndex`: it catches the index up with the
log, then queries it.  ``URL`` is an SQLite file, a ``postgresql://`` URL (or any
libpq connection string with ``dbname=``), or, when ``--store`` is not given,
``FIREFLOW_DATABASE_URL``.

Filters (all optional, combined with AND): ``--town``, ``--community``,
``--state``, ``--category``, ``--agency`` (any route role or escalation),
``--due-from``/``--due-to`` (deadline days, inclusive), ``--overdue-at ISO``
(overdue at that instant, R-ESC-OVERDUE), ``--open`` (open hazards only).
``--counts`` prints the counts per town and state and the open hazards per
community instead of the tickets.

What it writes:

* an **SQLite store** is opened read-write but only the index tables
  (``fireflow_index_*``) are written: while the index writes, an SQLite
  authorizer refuses any write to the events (``events``, ``fireflow_meta``), and
  nothing is ever appended.  The index stays in the file, so the next call folds
  only the new events.
* with ``--readonly`` the store is opened ``readonly=True`` (no byte of the
  file changes, no file is created beside it) and the index is built in memory
  for this one call, from the whole log: slower on a large store, for media and
  users that must not write.
* a **PostgreSQL store**: the index tables live in the store's schema (the role
  needs the index grants of docs/deploying.md); with ``--readonly`` a read-only
  session and an in-memory index.

Bad options (a malformed date or instant, an unknown state, a name with control
or bidirectional characters) are usage errors (exit 2) naming the option; a
store that is missing or does not open is exit 1.
"""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Annotated, Any

import typer
from rich.table import Table

from fireflow.cli.console import EXIT_USAGE, console, fail, rich_text, term
from fireflow.errors import InvalidArgument
from fireflow.events import parse_time
from fireflow.plan import BUILTIN_PLAN, load_plan
from fireflow.states import LIFECYCLE, STATES
from fireflow.store.base import check_id
from fireflow.store.transfer import is_postgres_url, open_store
from fireflow.text import check_name
from fireflow.views.tickets import TicketIndex, TicketRow

__all__ = ["DEFAULT_LIMIT", "ENV_URL", "is_postgres_url", "open_store", "register", "tickets"]

#: The environment variable read when ``--store`` is not given.
ENV_URL = "FIREFLOW_DATABASE_URL"
#: How many tickets are listed unless ``--limit`` says otherwise.
DEFAULT_LIMIT = 1000


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(option, f"not an ISO date (YYYY-MM-DD): {value!r}") from None


def _filters(
    town: str | None,
    community: str | None,
    state: str | None,
    category: str | None,
    agency: str | None,
    due_from: str | None,
    due_to: str | None,
    overdue_at: str | None,
) -> dict[str, Any]:
    """The query's filters, each checked here so that a bad one is a usage error."""
    out: dict[str, Any] = {}
    if town is not None:
        out["town"] = check_name(town, "--town")
    if community is not None:
        out["community"] = check_name(community, "--community")
    if state is not None:
        check_id(state, "--state")
        if state not in STATES:
            raise InvalidArgument("--state", f"unknown state {state!r}; one of {', '.join(STATES)}")
        out["state"] = state
    if category is not None:
        out["category"] = check_id(category, "--category")
    if agency is not None:
        out["agency"] = check_id(agency, "--agency")
    out["due_from"] = _day(due_from, "--due-from")
    out["due_to"] = _day(due_to, "--due-to")
    if out["due_from"] and out["due_to"] and out["due_from"] > out["due_to"]:
        raise InvalidArgument("--due-to", f"{due_to} is before --due-from {due_from}")
    if overdue_at is not None:
        out["overdue_at"] = parse_time(overdue_at, "--overdue-at")
    return {k: v for k, v in out.items() if v is not None}


def print_json(data: Any) -> None:
    """Stable JSON (sorted keys, Chinese as text), each line escaped for the terminal.

    Stored text could hold bidirectional or C1 control characters: they are
    written as ``\\uXXXX`` escapes, which a JSON reader reads back as the same text.
    """
    typer.echo(term(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)))


def _state_label(state: str) -> str:
    return f"{LIFECYCLE.state(state).zh} {state}" if state in STATES else state


def _print_rows(rows: list[TicketRow], more: bool, position: int) -> None:
    table = Table(title=f"工单 Tickets (index at position {position})")
    for col in (
        "工单 ticket",
        "镇街 town",
        "小区 community",
        "状态 state",
        "类别 category",
        "期限 deadline",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            rich_text(r.ticket_id),
            rich_text(r.town),
            rich_text(r.community),
            rich_text(_state_label(r.state)),
            rich_text(r.category),
            r.deadline.isoformat() if r.deadline else "",
        )
    console().print(table)
    tail = f"共 {len(rows)} 件 {len(rows)} ticket(s)"
    if more:
        tail += " (more not shown: raise --limit / 还有更多)"
    typer.echo(tail)


def _print_counts(counts: list[tuple[str, str, int]], hazards: list[tuple[str, str, int]]) -> None:
    table = Table(title="按镇街和状态计数 Tickets per town and state")
    for col in ("镇街 town", "状态 state", "件数 tickets"):
        table.add_column(col)
    for town, state, n in counts:
        table.add_row(rich_text(town), rich_text(_state_label(state)), str(n))
    console().print(table)
    table = Table(title="各小区未销号隐患 Open hazards per community")
    for col in ("镇街 town", "小区 community", "隐患 open"):
        table.add_column(col)
    for town, community, n in hazards:
        table.add_row(rich_text(town), rich_text(community), str(n))
    console().print(table)


def tickets(
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help=f"SQLite file or postgresql:// URL (default: ${ENV_URL}).",
            show_default=False,
        ),
    ] = None,
    town: Annotated[str | None, typer.Option("--town", help="镇街 Town.")] = None,
    community: Annotated[str | None, typer.Option("--community", help="小区 Community.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="状态 State id.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="隐患类别 Category.")] = None,
    agency: Annotated[
        str | None, typer.Option("--agency", help="Agency with a role in the route.")
    ] = None,
    due_from: Annotated[
        str | None, typer.Option("--due-from", help="Deadline on or after (YYYY-MM-DD).")
    ] = None,
    due_to: Annotated[
        str | None, typer.Option("--due-to", help="Deadline on or before (YYYY-MM-DD).")
    ] = None,
    overdue_at: Annotated[
        str | None,
        typer.Option("--overdue-at", help="Overdue at this instant (ISO 8601 with an offset)."),
    ] = None,
    open_only: Annotated[
        bool, typer.Option("--open", help="Open hazards only (not yet signed off).")
    ] = False,
    counts: Annotated[
        bool,
        typer.Option("--counts", help="Counts per town and state, open hazards per community."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    readonly: Annotated[
        bool,
        typer.Option("--readonly", help="Write nothing: a temporary index in memory."),
    ] = False,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Fold the whole log again into the index.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=1_000_000, help="List at most this many tickets."),
    ] = DEFAULT_LIMIT,
    schema: Annotated[
        str, typer.Option("--schema", help="PostgreSQL schema of the store.")
    ] = "fireflow",
    plan: Annotated[
        str, typer.Option("--plan", help="Plan whose calendar ends the due days.")
    ] = BUILTIN_PLAN,
) -> None:
    """工单查询 List tickets from the store's index (caught up first)."""
    url = store or os.environ.get(ENV_URL)
    if not url:
        raise fail(
            f"--store: give a store (SQLite file or postgresql:// URL) or set {ENV_URL}", EXIT_USAGE
        )
    try:
        filters = _filters(town, community, state, category, agency, due_from, due_to, overdue_at)
    except InvalidArgument as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    the_plan = load_plan(plan)
    opened = open_store(url, readonly=readonly, schema=schema)  # never created here
    try:
        with TicketIndex(opened, plan=the_plan) as index:
            if rebuild:
                index.rebuild()
            else:
                index.catch_up()
            if counts:
                c = index.counts(town=filters.get("town"))
                h = index.open_hazards(town=filters.get("town"))
                if as_json:
                    print_json(
                        {
                            "position": index.position,
                            "counts": [{"town": t, "state": s, "tickets": n} for t, s, n in c],
                            "open_hazards": [
                                {"town": t, "community": m, "open": n} for t, m, n in h
                            ],
                        }
                    )
                else:
                    _print_counts(c, h)
                return
            rows = index.tickets(**filters, open_only=open_only, limit=limit)
            # one more row past the page says whether there is more (limit + 1 could pass
            # the index's MAX_LIMIT when --limit is at its documented maximum)
            more = len(rows) == limit and bool(
                index.tickets(**filters, open_only=open_only, limit=1, offset=limit)
            )
            if as_json:
                print_json(
                    {
                        "position": index.position,
                        "temporary": index.temporary,
                        "tickets": [r.to_data() for r in rows],
                        "truncated": more,
                    }
                )
            else:
                _print_rows(rows, more, index.position)
    finally:
        close = getattr(opened, "close", None)
        if close is not None:
            close()


def register(app: typer.Typer) -> None:
    """Add ``fireflow tickets`` to ``app``."""
    app.command("tickets")(tickets)
