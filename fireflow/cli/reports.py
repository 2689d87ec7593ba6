"""Command-line sub-apps: spot checks, reports, forms, dossiers (抽查、报送、表格、档案).

``register(app)`` adds them to the ``fireflow`` command:

* ``fireflow spotcheck seed|inputs|commit|draw|verify``: the "双随机、一公开"
  draw (inputs as a JSON file with ``communities``, ``inspectors``,
  ``conflicts``; the seed from ``--seed-file PATH``, standard input with
  ``--seed -``, or, visible to ``ps`` and the shell history, ``--seed VALUE``;
  output JSON);
* ``fireflow report due --on DATE`` and ``fireflow report status [--duties]``: report
  obligations (and phase duties) and their state, wrong senders, escalations;
* ``fireflow report scorecard --events LOG --at INSTANT [--csv OUT] [--html OUT]``: the
  scorecards for the annual assessments (六(四));
* ``fireflow forms annex1|annex2|annex3 --events LOG [--xlsx OUT] [--csv OUT]``
  (``annex3 --draft``); ``fireflow forms public``: the spot-check results to publish;
* ``fireflow dossier COMMUNITY --events LOG [--html OUT] [--json OUT]``.

``LOG`` is a fireflow SQLite store or a JSON-lines event log (one event per
line, as :func:`fireflow.events.event_to_data` writes it).  Exit codes: 0
success, 1 a definition or input problem (or a draw or store that does not
verify), 2 a usage error.

Official documents (forms and dossiers) come only from verified history
(:func:`fireflow.history.read_history`):

* a store is opened read-only and its hash chains verified first (and checked
  against ``--checkpoint FILE`` when one is given); when it does not verify,
  nothing is produced (exit 1, the problems on stderr), unless ``--unverified``
  asks for a draft, marked 未经校验 UNVERIFIED on every page;
* a verified document says so and carries the global chain head (and each
  ticket's head) it was verified against;
* every line of a JSON-lines log passes the checks and limits of an append to a
  store (:func:`fireflow.store.base.prepare_batch`; unknown keys refused, ``seq``
  contiguous per ticket, event ids unique), and the document says it is
  未经哈希链校验 not backed by a hash chain.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from fireflow import forms, output
from fireflow._input import (
    MAX_CHECKPOINT_FILE_BYTES,
    iter_json_lines,
    read_json,
    read_limited,
)
from fireflow.cli.console import EXIT_USAGE, fail, print_json, term
from fireflow.cli.store import problem_lines
from fireflow.errors import FireflowError, InvalidArgument
from fireflow.events import parse_time
from fireflow.history import History, corrupt_history, is_store, read_events, read_history
from fireflow.plan import BUILTIN_PLAN, Plan, load_plan
from fireflow.rules.obligations import duty_status, never_inspected
from fireflow.rules.reporting import Submission, deadlines_on, report_escalations, status
from fireflow.rules.spotcheck import (
    Commitment,
    Draw,
    Finding,
    commit,
    draw,
    inputs_from_data,
    verify,
)
from fireflow.scorecard import scorecard_csv, scorecard_html, scorecards
from fireflow.store.chain import Checkpoint
from fireflow.store.errors import VerificationFailed
from fireflow.text import check_name

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "dossier_command",
    "forms_app",
    "register",
    "report_app",
    "spotcheck_app",
]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_PLAN = BUILTIN_PLAN
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
ProvisionalOpt = Annotated[
    bool,
    typer.Option(
        "--provisional",
        help="Estimate years with no holiday data (weekends and fixed holidays; marked 估算).",
    ),
]


def _plan(name: str, provisional: bool) -> Plan:
    plan = load_plan(name)
    return plan.provisional() if provisional else plan


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
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="A published checkpoint (JSON) the store must also match."),
]
UnverifiedOpt = Annotated[
    bool,
    typer.Option(
        "--unverified",
        help="Produce the document even if the store does not verify, marked 未经校验 "
        "UNVERIFIED on every page.",
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
    # bounded: MAX_INPUT_BYTES, MAX_DEPTH (fireflow._input); typed errors with the line
    return read_json(path, field)


def _iter_jsonl(path: Path, field: str) -> Iterator[tuple[int, Any]]:
    # bounded: MAX_LOG_BYTES in all, MAX_LINE_BYTES a line, MAX_DEPTH (fireflow._input)
    return iter_json_lines(path, field)


def _history(events: Path, checkpoint_file: Path | None, unverified: bool) -> History:
    """:func:`read_history` for a command: a failed verification prints why and exits 1."""
    cp = None
    if checkpoint_file is not None:
        try:  # a regular file of at most MAX_CHECKPOINT_FILE_BYTES: a pipe never hangs the command
            cp = Checkpoint.from_json(
                read_limited(checkpoint_file, MAX_CHECKPOINT_FILE_BYTES, "checkpoint")
            )
        except OSError as exc:
            raise InvalidArgument(
                "checkpoint", f"cannot read {checkpoint_file}: {exc.strerror or exc}"
            ) from None
    try:
        return read_history(events, checkpoint=cp, unverified=unverified)
    except VerificationFailed as exc:
        typer.echo(
            f"✗ 校验失败，未生成任何文件 {term(str(events))} does not verify; "
            "nothing was written (--unverified makes a draft marked 未经校验 UNVERIFIED):",
            err=True,
        )
        for line in problem_lines(exc.report):
            typer.echo(line, err=True)
        raise typer.Exit(1) from None


def _echo_frame(df: pd.DataFrame, as_json: bool) -> None:
    if as_json:
        records = df.to_dict(orient="records")
        typer.echo(term(json.dumps(records, ensure_ascii=False, indent=2, sort_keys=True)))
    else:
        typer.echo(term(df.to_string(index=False)))


# =========================================================================== #
# spotcheck


def _inputs(path: Path, plan: Plan) -> Any:

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
    provisional: ProvisionalOpt = False,
) -> None:
    """What is due or late on a day, per the plan (某日报送事项)."""
    try:
        day = date.fromisoformat(on)
    except ValueError:
        raise fail(f"--on: not a date (YYYY-MM-DD): {on[:40]!r}", EXIT_USAGE) from None
    items = deadlines_on(_plan(plan, provisional), day)
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


def _submissions(path: Path | None) -> list[Any]:
    """Submission records, one JSON object a line (``Submission.to_data``), bounded."""
    subs = []
    if path is not None:
        for n, data in _iter_jsonl(path, "submissions"):
            try:
                subs.append(Submission.from_data(data))
            except FireflowError as exc:
                raise InvalidArgument("submissions", f"{path}:{n}: {exc}") from None
    return subs


def _towns_map(path: Path) -> Any:
    data = _read_json(path, "towns")
    if not isinstance(data, dict):
        raise InvalidArgument("towns", f"{path}: expected a JSON object of town -> communities")
    return data


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
    provisional: ProvisionalOpt = False,
    duties: Annotated[
        bool,
        typer.Option(
            "--duties",
            help="Also the phase duties (五(一)-(五), 六(五)-(六)): work plan, notices, "
            "inspections, circulation, joint meetings, publication (R-OBL-*).",
        ),
    ] = False,
    events: Annotated[
        Path | None,
        typer.Option(
            "--events",
            help="With --duties: an event log or store whose tickets prove inspections "
            "(self-inspection, town inspection).",
        ),
    ] = None,
) -> None:
    """Every obligation at an instant, wrong senders, and the escalations due (六(四)).

    A report from an agency the obligation does not name does not count (报送主体不符);
    a missed report of a property company is R-ESC-PROPERTY, of a town R-ESC-OFFICIAL.
    """

    p = _plan(plan, provisional)
    when = parse_time(at, "at")
    subs = _submissions(submissions)
    town_map = _towns_map(towns)
    duty_ids = {d.id for d in p.duties}
    reports = [x for x in subs if x.report_id.split(".", maxsplit=1)[0] not in duty_ids]
    if not duties and len(reports) < len(subs):
        first = next(x for x in subs if x not in reports)
        raise InvalidArgument(
            "submissions",
            f"{first.report_id!r} is a phase duty, not a report: add --duties "
            "(阶段职责需加 --duties)",
        )
    statuses = status(p, town_map, reports if duties else subs, when)
    if duties:
        tickets = list(forms.ticket_states(read_events(events)).values()) if events else []
        statuses += duty_status(p, town_map, subs, when, tickets=tickets)
    elif events is not None:
        raise fail("--events: give --duties too (tickets prove the inspection duties)", EXIT_USAGE)
    escalations = report_escalations(p, statuses)
    uninspected = {
        d.id: never_inspected(statuses, d.id)
        for d in p.duties
        if duties and d.rule in ("R-OBL-SELF-INSPECT", "R-OBL-TOWN-INSPECT")
    }
    if as_json:
        print_json(
            {
                "at": when.isoformat(),
                "obligations": [
                    {
                        "report_id": s.obligation.report_id,
                        "kind": s.obligation.kind,
                        "town": s.obligation.town,
                        "community": s.obligation.community,
                        "senders": list(s.obligation.senders),
                        "due": s.obligation.due.isoformat(),
                        "default_due": s.obligation.default_due,
                        "state": s.state,
                        "submitted_at": s.submitted_at.isoformat() if s.submitted_at else None,
                        "responsible": s.responsible,
                        "unnamed": s.unnamed,
                        "wrong_senders": list(s.wrong_senders),
                        "missing_contents": list(s.missing_contents),
                        "rules": list(s.rules),
                    }
                    for s in statuses
                ],
                "never_inspected": {
                    k: [{"town": t, "community": c} for t, c in v] for k, v in uninspected.items()
                },
                "escalations": [
                    {
                        "kind": e.kind,
                        "report_id": e.report_id,
                        "town": e.town,
                        "community": e.community,
                        "targets": list(e.targets),
                        "rule": e.rule,
                        "accountable": list(e.accountable),
                        "referred_by": list(e.referred_by),
                        "referred_to": e.referred_to,
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
        extra = ""
        if s.wrong_senders:
            extra += f"  报送主体不符 wrong sender: {'、'.join(s.wrong_senders)}"
        if s.responsible:
            extra += f"  专人 {s.responsible}"
        elif s.unnamed:
            extra += "  未写明专人 no person named"
        typer.echo(
            term(
                f"{s.state_zh:<5} {s.state:<11} {o.due.isoformat()}  {o.report_id:<26} {who}{extra}"
            )
        )
    for duty, missing in uninspected.items():
        if missing:
            listed = "、".join(f"{t}/{c}" for t, c in missing)
            typer.echo(term(f"未检查 never inspected ({duty}): {listed}"))
    for e in escalations:
        typer.echo(term(f"⚠ {e.rule} → {'、'.join(e.targets)}: {e.reason_zh}"))


def _companies(companies: Path | None, population: Path | None) -> dict[str, str]:
    """community (id and name) -> property company, from a JSON map or an Annex 4 CSV."""
    out: dict[str, str] = {}
    if population is not None:
        from fireflow.sim.population import load_population  # noqa: PLC0415

        for c in load_population(population).communities:
            if c.company:
                out[c.id] = c.company
                out.setdefault(c.name, c.company)
    if companies is not None:
        data = _read_json(companies, "companies")
        if not isinstance(data, dict):
            raise InvalidArgument("companies", f"{companies}: expected community -> company")
        for k, v in data.items():
            if not isinstance(v, str):
                raise InvalidArgument("companies", "expected community -> company name (text)")
            out[check_name(k, "companies (community)")] = check_name(v, "companies (company)")
    return out


@report_app.command("scorecard")
@_errors
def report_scorecard(
    events: EventsOpt,
    at: Annotated[str, typer.Option("--at", help="Aware instant, e.g. 2023-01-01T00:00+08:00.")],
    towns: Annotated[
        Path | None,
        typer.Option("--towns", help="JSON: town id -> community ids (default: from history)."),
    ] = None,
    submissions: Annotated[
        Path | None, typer.Option("--submissions", help="JSON lines of Submission.to_data.")
    ] = None,
    companies: Annotated[
        Path | None, typer.Option("--companies", help="JSON: community -> property company.")
    ] = None,
    population: Annotated[
        Path | None,
        typer.Option("--population", help="Annex 4 population CSV (its 物业服务企业 column)."),
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="Write both cards as CSV.")] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the printable page.")] = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """年度考核记分表: property companies (星级评价) and towns and departments (六(四)).

    From verified history (a store is verified first, as for the forms); every
    column cites its rule (the HTML page lists them).
    """

    for out in (csv, html):  # a bad destination is refused before any work or any write
        if out is not None:
            output.check_destination(out)
    p = load_plan(plan)
    when = parse_time(at, "at")
    town_map = _towns_map(towns) if towns is not None else None
    subs = _submissions(submissions)
    company_map = _companies(companies, population)
    history = _history(events, checkpoint_file, unverified)  # before anything is written
    cards = scorecards(
        history.events, p, when, towns=town_map, submissions=subs, companies=company_map
    )
    table = forms.mark_form(cards.table(), history.verification)
    if csv is not None:
        scorecard_csv(table, csv)
    if html is not None:
        output.write_text(html, scorecard_html(cards, p, history.verification))
    if csv is None and html is None:
        _echo_frame(table, as_json)
    else:
        written = " ".join(str(x) for x in (csv, html) if x is not None)
        typer.echo(term(f"✓ scorecard: {len(table)} 行 rows → {written}"), err=True)


# =========================================================================== #
# forms


_FINDING_KEYS = frozenset({"community", "category", "compliant", "note"})


def _findings(path: Path) -> list[Any]:

    data = _read_json(path, "findings")
    if not isinstance(data, list):
        raise InvalidArgument("findings", f"{path}: expected a JSON list")
    out = []
    for i, item in enumerate(data):
        where = f"findings[{i}]"
        if not isinstance(item, dict):
            raise InvalidArgument(where, "expected {community, category, compliant, note}")
        unknown = sorted(str(k) for k in item if k not in _FINDING_KEYS)
        if unknown:  # a misspelt key ("notes") is refused, never dropped without a word
            raise InvalidArgument(
                f"{where}.{unknown[0]}",
                "unknown field (未知字段); known: category, community, compliant, note",
            )
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
    checkpoint_file: Path | None = None,
    unverified: bool = False,
    drawn: Path | None = None,
    findings: Path | None = None,
    towns: Path | None = None,
    draft: bool = False,
) -> None:

    for out in (csv, xlsx):  # a bad destination is refused before any work or any write
        if out is not None:
            output.check_destination(out)
    p = load_plan(plan)
    draw_result = None
    if drawn is not None:
        draw_result = Draw.from_data(_read_json(drawn, "draw"))
    town_map = _read_json(towns, "towns") if towns is not None else None
    if town_map is not None and not isinstance(town_map, dict):
        raise InvalidArgument("towns", f"{towns}: expected a JSON object of town -> communities")
    history = _history(events, checkpoint_file, unverified)  # before anything is written
    df = forms.build(
        form_id,
        history.events,
        p,
        draw_result,
        towns=town_map,
        findings=_findings(findings) if findings is not None else None,
        draft=draft,
    )
    df = forms.mark_form(df, history.verification)
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
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """附件1 摸底排查情况统计表 (self-inspection statistics)."""
    _form(
        "annex1",
        events,
        xlsx,
        csv,
        plan,
        as_json,
        towns=towns,
        checkpoint_file=checkpoint_file,
        unverified=unverified,
    )


@forms_app.command("annex2")
@_errors
def forms_annex2(
    events: EventsOpt,
    xlsx: XlsxOpt = None,
    csv: CsvOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """附件2 检查表／登记表 (inspection register)."""
    _form(
        "annex2",
        events,
        xlsx,
        csv,
        plan,
        as_json,
        checkpoint_file=checkpoint_file,
        unverified=unverified,
    )


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
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
    draft: Annotated[
        bool,
        typer.Option(
            "--draft",
            help="Produce the form although drawn communities lack on-site findings, marked "
            "草稿 DRAFT on every row and printed page (五(四) 现场核实).",
        ),
    ] = False,
) -> None:
    """附件3 抽查表／抽查登记表 (spot-check register).

    A category nobody checked on site reads 未核查, never 未发现问题; with --draw, a
    drawn community without findings refuses a final form (exit 1) unless --draft.
    """
    _form(
        "annex3",
        events,
        xlsx,
        csv,
        plan,
        as_json,
        drawn=drawn,
        findings=findings,
        checkpoint_file=checkpoint_file,
        unverified=unverified,
        draft=draft,
    )


@forms_app.command("public")
@_errors
def forms_public(
    events: EventsOpt,
    drawn: Annotated[Path, typer.Option("--draw", help="The published draw.")],
    findings: Annotated[
        Path, typer.Option("--findings", help="JSON list: community, category, compliant, note.")
    ],
    csv: CsvOpt = None,
    plan: PlanOpt = DEFAULT_PLAN,
    as_json: JsonOpt = False,
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """一公开 The spot-check results for publication (R-OBL-PUBLISH): no names, no ticket ids.

    Only from a store that verifies (a JSON-lines log or a failed store needs
    --unverified, and the summary then says so on every row); every drawn
    community must have its findings (no draft is published).
    """

    if csv is not None:
        output.check_destination(csv)
    p = load_plan(plan)
    draw_result = Draw.from_data(_read_json(drawn, "draw"))
    found = _findings(findings)
    history = _history(events, checkpoint_file, unverified)
    if not history.verified and not unverified:
        raise InvalidArgument(
            "events",
            "a public summary comes from verified history: give a fireflow store that "
            "verifies, or --unverified for a marked draft (公开摘要须来自已校验的事件库)",
            rule=p.cite("R-OBL-PUBLISH"),
        )
    df = forms.mark_form(
        forms.public_summary(history.events, p, draw_result, found), history.verification
    )
    if csv is not None:
        output.write_frame_csv(csv, df)
        typer.echo(term(f"✓ public: {len(df)} 行 rows → {csv}"), err=True)
    else:
        _echo_frame(df, as_json)


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
    checkpoint_file: CheckpointOpt = None,
    unverified: UnverifiedOpt = False,
) -> None:
    """一区一档 The dossier of one community: JSON and a printable HTML page.

    A store is verified first (see the module documentation); the dossier
    carries the chain heads it was verified against.
    """

    for out in (json_out, html):  # a bad destination is refused before any work or any write
        if out is not None:
            output.check_destination(out)
    p = load_plan(plan)
    if heads is not None and is_store(events):
        typer.echo(
            "错误 error: --heads: a store's chain heads are read from the store itself, "
            "after it verifies (事件库自带哈希链头)",
            err=True,
        )
        raise typer.Exit(2)
    chain = _read_json(heads, "heads") if heads is not None else None
    if chain is not None and not isinstance(chain, dict):
        raise InvalidArgument("heads", "expected a JSON object of ticket id -> head")
    history = _history(events, checkpoint_file, unverified)  # before anything is written
    for gone in history.verification.get("left_out") or ():
        if gone["community"] == community:  # the dossier would be incomplete: refuse it
            raise corrupt_history(gone)
    if history.heads is not None:  # a verified store vouches for its own heads
        chain = history.heads
    data = forms.mark_dossier(
        forms.dossier(history.events, community, p, chain), history.verification
    )
    if json_out is not None:
        output.write_bytes(json_out, forms.dossier_json(data))
    if html is not None:
        output.write_text(html, forms.dossier_html(data))
    if json_out is None and html is None:
        typer.echo(term(forms.dossier_json(data).decode("utf-8")), nl=False)
    else:
        n = data["summary"]["tickets"]
        typer.echo(term(f"✓ {community}: {n} 件隐患 tickets"), err=True)


def register(app: typer.Typer) -> None:
    """Add ``spotcheck``, ``report``, ``forms`` and ``dossier`` to a typer app."""
    app.add_typer(spotcheck_app, name="spotcheck")
    app.add_typer(report_app, name="report")
    app.add_typer(forms_app, name="forms")
    app.command("dossier")(dossier_command)
