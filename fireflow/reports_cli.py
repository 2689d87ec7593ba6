"""Command-line sub-apps: spot checks, reports, forms, dossiers (抽查、报送、表格、档案).

``register(app)`` adds them to the ``fireflow`` command:

* ``fireflow spotcheck seed|inputs|commit|draw|verify``: the "双随机、一公开"
  draw (inputs as a JSON file with ``communities``, ``inspectors``,
  ``conflicts``; the seed from ``--seed-file PATH``, standard input with
  ``--seed -``, or, visible to ``ps`` and the shell history, ``--seed VALUE``;
  output JSON);
* ``fireflow report due --on DATE`` and ``fireflow report status``: report
  obligations and their state;
* ``fireflow forms annex1|annex2|annex3 --events FILE.jsonl [--xlsx OUT] [--csv OUT]``;
* ``fireflow dossier COMMUNITY --events FILE.jsonl [--html OUT] [--json OUT]``.

Event files hold one event per line, as :func:`fireflow.events.event_to_data`
writes it.  Exit codes: 0 success, 1 a definition or input problem (or a draw
that does not verify), 2 a usage error.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from fireflow._console import EXIT_USAGE, fail, print_json, term
from fireflow.errors import FireflowError, InvalidArgument
from fireflow.events import Event, event_from_data, parse_time
from fireflow.plan import Plan, load_plan

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "dossier_command",
    "forms_app",
    "read_events",
    "register",
    "report_app",
    "spotcheck_app",
]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_PLAN = "changle-2022"
spotcheck_app = typer.Typer(
    help="抽查 Spot checks: the 双随机、一公开 draw, its commitment and verification.",
    no_args_is_help=True,
)
report_app = typer.Typer(
    help="报送 Reports: obligations, due dates and status.", no_args_is_help=True
)
forms_app = typer.Typer(
    help="表格 Forms: Annex 1, 2 and 3 from an event log (CSV, XLSX).", no_args_is_help=True
)

PlanOpt = Annotated[str, typer.Option("--plan", help="Built-in plan name or plan file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
InputsArg = Annotated[
    Path,
    typer.Argument(help="JSON file: communities, inspectors, conflicts (and team_size)."),
]
SeedOpt = Annotated[
    str | None,
    typer.Option(
        "--seed",
        help="The seed as text, or - to read it from standard input. A seed given here "
        "shows in `ps` and the shell history: prefer --seed-file or -.",
    ),
]
SeedFileOpt = Annotated[
    Path | None,
    typer.Option("--seed-file", help="Read the seed from this file (UTF-8; ends trimmed)."),
]
#: The most bytes read from a seed file or standard input.
MAX_SEED_FILE_BYTES = 4096
#: The bytes of a fresh seed from ``fireflow spotcheck seed`` (256 bits).
FRESH_SEED_BYTES = 32
EventsOpt = Annotated[
    Path,
    typer.Option(
        "--events", help="Event log: JSON lines of event_to_data, or a fireflow SQLite store."
    ),
]
XlsxOpt = Annotated[Path | None, typer.Option("--xlsx", help="Write the form as XLSX here.")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Write the form as CSV (UTF-8 BOM).")]


def _errors(func: Callable[P, R]) -> Callable[P, R]:
    """Report fireflow, file and text errors as one escaped line on stderr with exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except FireflowError as exc:
            raise fail(str(exc)) from None
        except IsADirectoryError as exc:
            raise fail(
                f"{exc.filename}: is a folder, expected a file (应为文件而非文件夹)"
            ) from None
        except OSError as exc:
            raise fail(f"{exc.filename or ''}: {exc.strerror or exc}") from None
        except UnicodeError as exc:
            raise fail(f"text is not valid UTF-8 or holds lone surrogates: {exc}") from None
        except RecursionError:
            raise fail("input nested too deeply (输入嵌套过深)") from None

    return wrapper


def _read_json(path: Path, field: str) -> Any:
    if path.is_dir():
        raise InvalidArgument(field, f"{path}: is a folder, expected a JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidArgument(field, f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise InvalidArgument(field, f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise InvalidArgument(field, f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InvalidArgument(field, f"{path}: not usable JSON ({exc})") from None


def _iter_jsonl(path: Path, field: str) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument(field, f"{path}: not UTF-8 text") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(field, f"{path}:{n}: not JSON ({exc.msg})") from None


_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_store(path: Path) -> bool:
    """Is ``path`` an SQLite file (a fireflow event store) rather than JSON lines?"""
    try:
        with path.open("rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def store_heads(path: Path) -> dict[str, str]:
    """The hash-chain head of every ticket in an SQLite store."""
    from fireflow.store import SQLiteStore  # noqa: PLC0415

    with SQLiteStore(path, create=False) as store:
        return {t: store.head(t) for t in store.tickets()}


def read_events(path: Path) -> list[Event]:
    """The events of a JSON-lines file or of an SQLite store, in their recorded order.

    An error names the file and line.
    """
    if is_store(path):
        from fireflow.store import SQLiteStore  # noqa: PLC0415

        with SQLiteStore(path, create=False) as store:
            return [s.event for s in store.read_all()]
    out = []
    for n, data in _iter_jsonl(path, "events"):
        if not isinstance(data, dict):
            raise InvalidArgument("events", f"{path}:{n}: expected a JSON object")
        try:
            out.append(event_from_data(data))
        except FireflowError as exc:
            raise InvalidArgument("events", f"{path}:{n}: {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument("events", f"{path}:{n}: malformed event ({exc})") from None
    return out


def _echo_frame(df: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        print_json(df.to_dict(orient="records"))
    else:
        typer.echo(term(df.to_string(index=False)))


# =========================================================================== #
# spotcheck


def _inputs(path: Path, plan: Plan) -> Any:
    from fireflow.rules.spotcheck import inputs_from_data  # noqa: PLC0415

    return inputs_from_data(_read_json(path, "inputs"), plan)


def _read_seed_bytes(stream: Any, where: str) -> str:
    data = stream.read(MAX_SEED_FILE_BYTES + 1)
    if len(data) > MAX_SEED_FILE_BYTES:
        raise InvalidArgument("seed", f"{where}: more than {MAX_SEED_FILE_BYTES} bytes")
    try:
        text: str = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument("seed", f"{where}: not UTF-8 text") from None
    return text.strip()


def _seed(seed: str | None, seed_file: Path | None) -> str:
    """The seed from ``--seed VALUE``, ``--seed -`` (standard input) or ``--seed-file PATH``."""
    if (seed is None) == (seed_file is None):
        raise fail(
            "give the seed once: --seed-file PATH, --seed - (stdin) or --seed VALUE", EXIT_USAGE
        )
    if seed_file is not None:
        with seed_file.open("rb") as f:
            return _read_seed_bytes(f, str(seed_file))
    if seed == "-":
        return _read_seed_bytes(typer.get_binary_stream("stdin"), "standard input")
    assert seed is not None
    return seed


@spotcheck_app.command("seed")
def spotcheck_seed() -> None:
    """Print a fresh seed (生成随机种子): 256 bits from the operating system, as hex.

    Keep it secret until the draw is published; write it to a file that only you
    can read, e.g. ``(umask 077; fireflow spotcheck seed > seed.txt)``.
    """
    import secrets  # noqa: PLC0415 - the one place fireflow draws fresh randomness

    typer.echo(secrets.token_hex(FRESH_SEED_BYTES))


@spotcheck_app.command("inputs")
@_errors
def spotcheck_inputs(inputs: InputsArg, plan: PlanOpt = DEFAULT_PLAN) -> None:
    """Print the canonical inputs to publish with the commitment (公开抽查依据)."""
    print_json(_inputs(inputs, load_plan(plan)).to_data())


@spotcheck_app.command("commit")
@_errors
def spotcheck_commit(
    inputs: InputsArg,
    seed: SeedOpt = None,
    seed_file: SeedFileOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
) -> None:
    """Print the commitment to publish before the draw (抽查前公布承诺值)."""
    from fireflow.rules.spotcheck import commit  # noqa: PLC0415

    the_seed = _seed(seed, seed_file)
    print_json(commit(_inputs(inputs, load_plan(plan)), the_seed).to_data())


@spotcheck_app.command("draw")
@_errors
def spotcheck_draw(
    inputs: InputsArg,
    seed: SeedOpt = None,
    seed_file: SeedFileOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
) -> None:
    """Draw the communities and teams (双随机抽取), as JSON."""
    from fireflow.rules.spotcheck import draw  # noqa: PLC0415

    the_seed = _seed(seed, seed_file)
    print_json(draw(_inputs(inputs, load_plan(plan)), the_seed).to_data())


@spotcheck_app.command("verify")
@_errors
def spotcheck_verify(
    inputs: InputsArg,
    commitment: Annotated[Path, typer.Option("--commitment", help="The published commitment.")],
    drawn: Annotated[Path, typer.Option("--draw", help="The published draw.")],
    seed: SeedOpt = None,
    seed_file: SeedFileOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
) -> None:
    """Re-run a published draw and check it (验证抽查结果); exit 1 when it does not verify."""
    from fireflow.rules.spotcheck import Commitment, Draw, verify  # noqa: PLC0415

    seed = _seed(seed, seed_file)
    result = verify(
        Commitment.from_data(_read_json(commitment, "commitment")),
        _inputs(inputs, load_plan(plan)),
        seed,
        Draw.from_data(_read_json(drawn, "draw")),
    )
    print_json(result.to_data())
    if not result.ok:
        raise typer.Exit(1)


# =========================================================================== #
# report

_DUE_ZH = {"upcoming": "未开始", "open": "报送期内", "due_today": "今日截止", "overdue": "已过期"}


@report_app.command("due")
@_errors
def report_due(
    on: Annotated[str, typer.Option("--on", help="The day, YYYY-MM-DD.")],
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
) -> None:
    """What is due or late on a day, per the plan (某日报送事项)."""
    from fireflow.rules.reporting import deadlines_on  # noqa: PLC0415

    try:
        day = date.fromisoformat(on)
    except ValueError:
        raise fail(f"--on: not a date (YYYY-MM-DD): {on[:40]!r}", EXIT_USAGE) from None
    items = deadlines_on(load_plan(plan), day)
    if as_json:
        print_json({"on": day.isoformat(), "deadlines": [i.to_data() for i in items]})
        return
    typer.echo(f"{day.isoformat()} 报送事项 reports (R-DUE-*)")
    for i in items:
        d = i.deadline
        typer.echo(
            term(
                f"  {_DUE_ZH[i.state]:<5} {i.state:<10} {d.due.isoformat()}  {d.id:<26} "
                f"{d.name_zh}  [{' '.join(d.rules)}]"
            )
        )


@report_app.command("status")
@_errors
def report_status(
    towns: Annotated[Path, typer.Option("--towns", help="JSON: town id -> community ids.")],
    at: Annotated[str, typer.Option("--at", help="Aware instant, e.g. 2022-12-13T09:00+08:00.")],
    submissions: Annotated[
        Path | None, typer.Option("--submissions", help="JSON lines of Submission.to_data.")
    ] = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
) -> None:
    """Every town's obligations at an instant, and the escalations due (R-ESC-OFFICIAL)."""
    from fireflow.rules.reporting import (  # noqa: PLC0415
        Submission,
        report_escalations,
        status,
    )

    p = load_plan(plan)
    when = parse_time(at, "at")
    subs = []
    if submissions is not None:
        for n, data in _iter_jsonl(submissions, "submissions"):
            try:
                subs.append(Submission.from_data(data))
            except FireflowError as exc:
                raise InvalidArgument("submissions", f"{submissions}:{n}: {exc}") from None
    statuses = status(p, _read_json(towns, "towns"), subs, when)
    escalations = report_escalations(p, statuses)
    if as_json:
        print_json(
            {
                "at": when.isoformat(),
                "obligations": [
                    {
                        "report_id": s.obligation.report_id,
                        "town": s.obligation.town,
                        "community": s.obligation.community,
                        "due": s.obligation.due.isoformat(),
                        "state": s.state,
                        "submitted_at": s.submitted_at.isoformat() if s.submitted_at else None,
                        "missing_contents": list(s.missing_contents),
                        "rules": list(s.rules),
                    }
                    for s in statuses
                ],
                "escalations": [
                    {
                        "kind": e.kind,
                        "report_id": e.report_id,
                        "town": e.town,
                        "community": e.community,
                        "targets": list(e.targets),
                        "rule": e.rule,
                        "reason_zh": e.reason_zh,
                        "reason_en": e.reason_en,
                    }
                    for e in escalations
                ],
            }
        )
        return
    for s in statuses:
        o = s.obligation
        who = o.town + (f"/{o.community}" if o.community else "")
        typer.echo(
            term(f"{s.state_zh:<5} {s.state:<11} {o.due.isoformat()}  {o.report_id:<26} {who}")
        )
    for e in escalations:
        typer.echo(term(f"⚠ {e.rule} → {'、'.join(e.targets)}: {e.reason_zh}"))


# =========================================================================== #
# forms


def _findings(path: Path) -> list[Any]:
    from fireflow.rules.spotcheck import Finding  # noqa: PLC0415

    data = _read_json(path, "findings")
    if not isinstance(data, list):
        raise InvalidArgument("findings", f"{path}: expected a JSON list")
    out = []
    for i, item in enumerate(data):
        where = f"findings[{i}]"
        if not isinstance(item, dict):
            raise InvalidArgument(where, "expected {community, category, compliant, note}")
        for key in ("community", "category"):
            if not isinstance(item.get(key), str):
                raise InvalidArgument(f"{where}.{key}", "missing or not text")
        if not isinstance(item.get("compliant"), bool):
            raise InvalidArgument(f"{where}.compliant", "expected true or false")
        out.append(
            Finding(
                item["community"], item["category"], item["compliant"], str(item.get("note", ""))
            )
        )
    return out


def _form(
    form_id: str,
    events: Path,
    xlsx: Path | None,
    csv: Path | None,
    plan: str,
    as_json: bool,
    *,
    drawn: Path | None = None,
    findings: Path | None = None,
    towns: Path | None = None,
) -> None:
    from fireflow import forms  # noqa: PLC0415

    p = load_plan(plan)
    draw_result = None
    if drawn is not None:
        from fireflow.rules.spotcheck import Draw  # noqa: PLC0415

        draw_result = Draw.from_data(_read_json(drawn, "draw"))
    town_map = _read_json(towns, "towns") if towns is not None else None
    if town_map is not None and not isinstance(town_map, dict):
        raise InvalidArgument("towns", f"{towns}: expected a JSON object of town -> communities")
    df = forms.build(
        form_id,
        read_events(events),
        p,
        draw_result,
        towns=town_map,
        findings=_findings(findings) if findings is not None else None,
    )
    if csv is not None:
        forms.to_csv(df, csv)
    if xlsx is not None:
        forms.to_xlsx(df, xlsx, form_id, p)
    if csv is None and xlsx is None:
        _echo_frame(df, as_json)
    else:
        written = " ".join(str(x) for x in (csv, xlsx) if x is not None)
        typer.echo(term(f"✓ {form_id}: {len(df)} 行 rows → {written}"), err=True)


@forms_app.command("annex1")
@_errors
def forms_annex1(
    events: EventsOpt,
    xlsx: XlsxOpt = None,
    csv: CsvOpt = None,
    towns: Annotated[
        Path | None,
        typer.Option("--towns", help="JSON: town id -> community ids (rows for all of them)."),
    ] = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
) -> None:
    """附件1 摸底排查情况统计表 (self-inspection statistics)."""
    _form("annex1", events, xlsx, csv, plan, as_json, towns=towns)


@forms_app.command("annex2")
@_errors
def forms_annex2(
    events: EventsOpt,
    xlsx: XlsxOpt = None,
    csv: CsvOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
) -> None:
    """附件2 检查表／登记表 (inspection register)."""
    _form("annex2", events, xlsx, csv, plan, as_json)


@forms_app.command("annex3")
@_errors
def forms_annex3(
    events: EventsOpt,
    xlsx: XlsxOpt = None,
    csv: CsvOpt = None,
    drawn: Annotated[
        Path | None, typer.Option("--draw", help="The published draw (its communities, teams).")
    ] = None,
    findings: Annotated[
        Path | None,
        typer.Option("--findings", help="JSON list: community, category, compliant, note."),
    ] = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
) -> None:
    """附件3 抽查表／抽查登记表 (spot-check register)."""
    _form("annex3", events, xlsx, csv, plan, as_json, drawn=drawn, findings=findings)


# =========================================================================== #
# dossier


@_errors
def dossier_command(
    community: Annotated[str, typer.Argument(help="The community (小区) id.")],
    events: EventsOpt,
    html: Annotated[Path | None, typer.Option("--html", help="Write the printable page.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON.")] = None,
    heads: Annotated[
        Path | None, typer.Option("--heads", help="JSON: ticket id -> hash-chain head (hex).")
    ] = None,
    plan: PlanOpt = DEFAULT_PLAN,
) -> None:
    """一区一档 The dossier of one community: JSON and a printable HTML page."""
    from fireflow import forms  # noqa: PLC0415

    p = load_plan(plan)
    chain = _read_json(heads, "heads") if heads is not None else None
    if chain is None and is_store(events):  # a store carries its own chain heads
        chain = store_heads(events)
    if chain is not None and not isinstance(chain, dict):
        raise InvalidArgument("heads", "expected a JSON object of ticket id -> head")
    data = forms.dossier(read_events(events), community, p, chain)
    if json_out is not None:
        json_out.write_bytes(forms.dossier_json(data))
    if html is not None:
        html.write_text(forms.dossier_html(data), encoding="utf-8")
    if json_out is None and html is None:
        typer.echo(forms.dossier_json(data).decode("utf-8"), nl=False)
    else:
        n = data["summary"]["tickets"]
        typer.echo(term(f"✓ {community}: {n} 件隐患 tickets"), err=True)


def register(app: typer.Typer) -> None:
    """Add ``spotcheck``, ``report``, ``forms`` and ``dossier`` to a typer app."""
    app.add_typer(spotcheck_app, name="spotcheck")
    app.add_typer(report_app, name="report")
    app.add_typer(forms_app, name="forms")
    app.command("dossier")(dossier_command)
