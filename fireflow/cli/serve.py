"""``fireflow serve``: run the HTTP service; ``fireflow serve token create|revoke|list``.

``fireflow serve`` needs the ``server`` extra (``pip install 'fireflow[server]'``):
FastAPI and uvicorn are imported only when the server starts, so the rest of the
command line works without them.

Files the service keeps (``--state-dir``, default ``.fireflow-service``): the token
file ``tokens.json`` (salted hashes only, mode 0600), the audit log ``audit.sqlite``
and the webhook sender's checkpoint ``webhook.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fireflow import output
from fireflow._input import read_limited
from fireflow.cli.console import fail, print_json, term
from fireflow.errors import FireflowError
from fireflow.plan import BUILTIN_PLAN
from fireflow.service.audit import AuditLog
from fireflow.service.auth import TokenFile
from fireflow.service.clock import utc_now
from fireflow.service.engine import Engine, check_agency, open_store

__all__ = ["DEFAULT_STATE_DIR", "DEFAULT_STORE", "serve_app"]

#: Where the service keeps its tokens, audit log and webhook checkpoint.
DEFAULT_STATE_DIR = ".fireflow-service"
#: The embedded store used when neither ``--store`` nor ``FIREFLOW_DATABASE_URL`` is given.
DEFAULT_STORE = "fireflow-store.sqlite"
ENV_URL = "FIREFLOW_DATABASE_URL"

serve_app = typer.Typer(
    help="服务 Serve the HTTP API and dashboard (needs the server extra); manage tokens.",
    invoke_without_command=True,
)
token_app = typer.Typer(help="令牌 API tokens: create, revoke, list.", no_args_is_help=True)
serve_app.add_typer(token_app, name="token")

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Folder of tokens.json, audit.sqlite, webhook.json."),
]


def _fail(message: str) -> typer.Exit:
    return fail(message)  # one escaped, bounded error line; exit 1


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8000,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help=f"SQLite file or postgresql:// URL (default: ${ENV_URL} or {DEFAULT_STORE}).",
        ),
    ] = None,
    plan: Annotated[str, typer.Option("--plan", help="Built-in plan or plan file.")] = (
        BUILTIN_PLAN
    ),
    state_dir: StateDir = Path(DEFAULT_STATE_DIR),
    webhook_url: Annotated[
        str | None, typer.Option("--webhook-url", help="POST every event here, signed.")
    ] = None,
    webhook_secret_file: Annotated[
        Path | None,
        typer.Option("--webhook-secret-file", help="File holding the webhook HMAC secret."),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve the API, the OpenAPI document (/openapi.json) and the dashboard."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        import uvicorn  # noqa: PLC0415 (the server extra)

        from fireflow.service.app import create_app  # noqa: PLC0415 (needs fastapi)
        from fireflow.service.webhooks import (  # noqa: PLC0415 (needs httpx)
            WebhookSender,
            check_url,
        )
    except ImportError as exc:
        raise _fail(f"{exc}: install the server extra: pip install 'fireflow[server]'") from None
    url = store or os.environ.get(ENV_URL) or DEFAULT_STORE
    try:
        # everything checked before anything is created (a folder, a store, a log)
        the_plan = Engine.plan_named(plan)
        secret = b""
        if webhook_url is not None:
            if webhook_secret_file is None:
                raise _fail("--webhook-url needs --webhook-secret-file")
            check_url(webhook_url)
            secret = read_limited(webhook_secret_file, 4096, "webhook_secret_file").strip()
        if state_dir.exists() and not state_dir.is_dir():
            raise _fail(f"--state-dir {state_dir}: not a folder")
        tokens = TokenFile(state_dir / "tokens.json")
        tokens.list()  # a broken token file is refused now, not at the first request
        engine = Engine(open_store(url), the_plan)
        output.prepare_folder(state_dir, create=True)  # no symlink, no refused name
        audit = AuditLog(state_dir / "audit.sqlite")
        app = create_app(engine.store, engine.plan, tokens, audit=audit, engine=engine)
        if webhook_url is not None:
            sender = WebhookSender(engine, webhook_url, secret, state_dir / "webhook.json", audit)
            sender.start(app.state.stop)
    except (FireflowError, OSError) as exc:
        raise _fail(str(exc)) from None
    if not tokens.list():
        typer.echo(
            "no token yet: create one with `fireflow serve token create --agency town`", err=True
        )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@serve_app.command("openapi")
def openapi(
    plan: Annotated[str, typer.Option("--plan", help="Built-in plan or plan file.")] = (
        BUILTIN_PLAN
    ),
) -> None:
    """Print the service's OpenAPI document (docs/openapi.json is this for the built-in plan)."""
    try:
        from fireflow.service.app import openapi_json  # noqa: PLC0415 (needs fastapi)
    except ImportError as exc:
        raise _fail(f"{exc}: install the server extra: pip install 'fireflow[server]'") from None
    try:
        data = openapi_json(Engine.plan_named(plan))
    except FireflowError as exc:
        raise _fail(str(exc)) from None
    typer.echo(data.decode("utf-8"), nl=False)


@token_app.command("create")
def token_create(
    agency: Annotated[str, typer.Option("--agency", help="The agency the token acts for.")],
    person: Annotated[str, typer.Option("--person", help="The person (经办人).")] = "",
    readonly: Annotated[
        bool, typer.Option("--readonly", help="May only read (dashboards, auditors).")
    ] = False,
    note: Annotated[str, typer.Option("--note", help="What the token is for.")] = "",
    plan: Annotated[str, typer.Option("--plan", help="Plan whose agencies are known.")] = (
        BUILTIN_PLAN
    ),
    state_dir: StateDir = Path(DEFAULT_STATE_DIR),
) -> None:
    """Create a token and print it once (only its salted hash is kept)."""
    try:
        check_agency(plan, agency)
        token, entry = TokenFile(state_dir / "tokens.json").create(
            agency, person, readonly=readonly, at=utc_now(), note=note
        )
    except FireflowError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"# token {entry.id} for {agency}{' (read-only)' if readonly else ''}", err=True)
    typer.echo("# shown once: keep it now (只显示一次)", err=True)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `token list`).")],
    state_dir: StateDir = Path(DEFAULT_STATE_DIR),
) -> None:
    """Revoke a token (refused from the next request on)."""
    try:
        TokenFile(state_dir / "tokens.json").revoke(token_id, at=utc_now())
    except FireflowError as exc:
        raise _fail(str(exc)) from None
    typer.echo(term(f"revoked {token_id}"))


@token_app.command("list")
def token_list(
    state_dir: StateDir = Path(DEFAULT_STATE_DIR),
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the tokens (never the tokens themselves)."""
    try:
        entries = [e.public() for e in TokenFile(state_dir / "tokens.json").list()]
    except FireflowError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        print_json(entries)
        return
    for e in entries:
        status = "revoked " + str(e["revoked_at"]) if e["revoked_at"] else "active"
        mode = "read-only" if e["readonly"] else "read-write"
        typer.echo(
            term(f"{e['id']}  {e['agency']:<14} {e['person'] or '-':<8} {mode:<10} {status}")
        )
