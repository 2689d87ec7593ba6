"""The HTTP service (FastAPI): :func:`create_app`.

Every route answers JSON (problems as ``application/problem+json``, see
:mod:`fireflow.service.problems`), every request is authenticated
(:mod:`fireflow.service.auth`) and recorded (:mod:`fireflow.service.audit`).
The library is reached only through :class:`~fireflow.service.engine.Engine`.

**Time.**  The library never reads the clock.  The service is an edge: where a
request leaves an instant out (a command's ``at``, a view's ``at``), the service
takes it from its ``clock``, a function returning an aware ``datetime``; the
default reads the real time (UTC).  Tests pass a fixed clock.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, local ones too

import copy
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fireflow.errors import FireflowError, InvalidArgument
from fireflow.plan import Plan, RuleEntry
from fireflow.rules.duties import Duty
from fireflow.service import dashboard
from fireflow.service.audit import AuditLog
from fireflow.service.auth import Authenticator, Principal, StaticAuthenticator
from fireflow.service.clock import utc_now
from fireflow.service.engine import Engine, Outcome, event_data, parse_json, state_data
from fireflow.service.models import (
    CommandResult,
    CountOut,
    CountsOut,
    DutiesOut,
    DutyOut,
    EscalationOut,
    EscalationsOut,
    EventOut,
    ExplainOut,
    FormOut,
    Health,
    HistoryOut,
    ObligationOut,
    ObligationsOut,
    OpenHazardOut,
    OwedDutyOut,
    TicketOut,
    TicketPage,
    TicketRowOut,
    WhoAmI,
)
from fireflow.service.problems import MEDIA_TYPE, Problem, ServiceError, problem_for
from fireflow.store.base import EventStore

__all__ = ["MAX_BODY_BYTES", "MAX_STREAMS", "TITLE", "create_app", "openapi_json", "utc_now"]

#: The largest request body accepted, in bytes (a command is a few kB).
MAX_BODY_BYTES = 64 * 1024
#: The most Server-Sent Event streams open at once (each holds a worker thread).
MAX_STREAMS = 16
#: The service's title in the OpenAPI document.
TITLE = "fireflow 消防通道专项整治 service"
_log = logging.getLogger("fireflow.service")
_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": "A problem (RFC 9457)",
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status in _ERRORS
}
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ETAG = re.compile(r'\s*(?:W/)?"?(\d{1,9})"?\s*')
_EVENT_ID = re.compile(r"(\d{1,18})(?:-([0-9a-f]{16}))?")


def _problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    return Response(problem.body(), problem.status, headers=headers, media_type=MEDIA_TYPE)


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema with its ``$defs`` inlined (they are not recursive)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def command_body_schema(engine_schema: dict[str, Any]) -> dict[str, Any]:
    """The request body of a command: the library's Command schema, path/caller/clock optional."""
    schema = _inline(copy.deepcopy(engine_schema))
    schema["required"] = [
        r for r in schema.get("required", []) if r not in ("ticket_id", "at", "actor")
    ]
    schema["title"] = "CommandBody"
    schema["description"] = (
        "A command (fireflow.model.Command). ticket_id comes from the path; actor defaults to "
        "the caller (its agency may not differ); at defaults to the server's clock."
    )
    return schema


def _escalation(engine: Engine, e: Any) -> EscalationOut:
    return EscalationOut(
        kind=e.kind,
        targets=list(e.targets),
        rule=e.rule,
        clause=engine.clause(e.rule),
        reason_zh=e.reason_zh,
        reason_en=e.reason_en,
        accountable=list(e.accountable),
        persons=list(e.persons),
        case=e.case,
    )


def _owed(engine: Engine, d: Duty) -> OwedDutyOut:
    return OwedDutyOut(
        kind=d.kind,
        trigger=d.trigger,
        agencies=list(d.agencies),
        persons=list(d.persons),
        since=None if d.since is None else d.since.isoformat(),
        due=None if d.due is None else d.due.isoformat(),
        late=d.late,
        rule=d.rule,
        clause=engine.clause(d.rule),
        label_zh=d.label_zh,
        label_en=d.label_en,
        referral=d.referral,
    )


def _events(events: Any) -> list[EventOut]:
    return [EventOut.model_validate(event_data(e)) for e in events]


def create_app(
    store: EventStore,
    plan: Plan,
    auth: Authenticator,
    *,
    clock: Callable[[], datetime] = utc_now,
    audit: AuditLog | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_streams: int = MAX_STREAMS,
    engine: Engine | None = None,
) -> FastAPI:
    """The service over ``store`` under ``plan``; callers identified by ``auth``.

    ``clock`` supplies "now" where a request leaves an instant out; ``audit``
    records every request (an in-memory log when not given); ``max_body`` bounds
    request bodies (413 beyond); ``max_streams`` bounds the event streams open at once
    (each holds a worker thread while it waits; 503 beyond).
    """
    eng = engine if engine is not None else Engine(store, plan)
    log = audit if audit is not None else AuditLog(":memory:")
    stop = threading.Event()
    streams = threading.BoundedSemaphore(max_streams)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        stop.set()  # ends every event stream

    app = FastAPI(
        title=TITLE,
        version="1",
        description=(
            "消防通道专项整治规则引擎 over HTTP: commands with typed refusals citing the plan's "
            "rules, ticket views, escalations, report obligations, verified documents, events. "
            "Every request needs `Authorization: Bearer <token>`; errors are RFC 9457 problems."
        ),
        lifespan=lifespan,
        responses=_RESPONSES,
        # the browsable pages load their scripts from a CDN: off (an intranet has none)
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = eng
    app.state.audit = log
    app.state.stop = stop

    def now() -> datetime:
        return clock()

    # ----------------------------------------------------------------- errors

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _problem_response(problem_for(exc), headers)

    @app.exception_handler(FireflowError)
    async def _fireflow_error(_: Request, exc: FireflowError) -> Response:
        return _problem_response(problem_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ())]
        field = ".".join(loc[1:]) if len(loc) > 1 else ".".join(loc)
        msg = str(first.get("msg", "invalid"))
        err = ServiceError(422, f"{field}: {msg}", "参数无效", field=field, error="InvalidArgument")
        return _problem_response(problem_for(err))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        zh = {404: "未找到", 405: "方法不允许"}.get(exc.status_code, "请求错误")
        err = ServiceError(exc.status_code, str(exc.detail), zh)
        return _problem_response(problem_for(err), exc.headers)  # e.g. Allow with a 405

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        _log.exception("internal error", exc_info=exc)
        return _problem_response(problem_for(exc))

    # ----------------------------------------------------------------- audit

    @app.middleware("http")
    async def _record(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        principal: Principal | None = getattr(request.state, "principal", None)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        await run_in_threadpool(
            log.record,
            at=now(),
            subject=principal.subject if principal else "",
            agency=principal.agency if principal else "",
            person=principal.person if principal else "",
            method=request.method,
            path=path,
            status=response.status_code,
        )
        return response

    # ----------------------------------------------------------------- callers

    def caller(request: Request) -> Principal:
        principal = auth.authenticate(request.headers)
        request.state.principal = principal
        if principal.readonly and request.method not in ("GET", "HEAD"):
            raise ServiceError(
                403,
                "a read-only token may only read",
                "只读令牌不能提交命令",
                field="Authorization",
            )
        return principal

    Caller = Annotated[Principal, Depends(caller)]

    def instant(value: str | None, field: str) -> datetime:
        return now() if value is None else eng.parse_instant(value, field)

    # ----------------------------------------------------------------- service

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: the plan served and the store's position (no token needed)."""
        return Health(
            status="ok", plan=str(eng.plan.id), plan_digest=eng.digest, position=eng.position()
        )

    @app.get("/whoami", response_model=WhoAmI, tags=["service"])
    def whoami(principal: Caller) -> WhoAmI:
        """The caller as the service sees it (agency, person, read-only)."""
        return WhoAmI(
            agency=principal.agency,
            person=principal.person,
            readonly=principal.readonly,
            subject=principal.subject,
        )

    # ----------------------------------------------------------------- commands

    body_schema = command_body_schema(eng.command_schema())

    @app.post(
        "/tickets/{ticket_id}/commands",
        status_code=201,
        response_model=CommandResult,
        tags=["tickets"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
        responses={200: {"description": "A retry of a recorded command (same command_id)"}},
    )
    async def post_command(
        ticket_id: str,
        request: Request,
        principal: Caller,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Decide a command on a ticket and record its events.

        The caller's agency is the actor.  ``command_id`` is the idempotency key: the
        same command again returns the recorded result (200, ``Idempotent-Replayed``).
        ``If-Match: "<version>"`` makes the command conditional on the ticket's version
        (412 when it differs); without it a concurrent write is a 409 conflict.
        """
        data = await _json_body(request, max_body)
        data = _with_caller(data, principal, now)
        expected = _if_match(if_match)
        outcome: Outcome = await run_in_threadpool(eng.execute, ticket_id, data, expected)
        result = CommandResult(
            ticket_id=ticket_id,
            version=outcome.state.version,
            state=outcome.state.state,
            replayed=outcome.replayed,
            events=_events(outcome.events),
        )
        headers = {"ETag": f'"{outcome.state.version}"'}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(
            result.model_dump_json().encode("utf-8"),
            200 if outcome.replayed else 201,
            headers=headers,
            media_type="application/json",
        )

    # ----------------------------------------------------------------- one ticket

    def _history(ticket_id: str) -> list[Any]:
        history = eng.history(ticket_id)
        if not history:
            raise ServiceError(
                404, f"no ticket {ticket_id!r} in the store", "工单不存在", field="ticket_id"
            )
        return history

    @app.get("/tickets/{ticket_id}", response_model=TicketOut, tags=["tickets"])
    def get_ticket(ticket_id: str, _: Caller, response: Response) -> TicketOut:
        """A ticket's state; its ``ETag`` is the version to send back in ``If-Match``."""
        history = _history(ticket_id)
        state = eng.state(history, ticket_id)
        response.headers["ETag"] = f'"{state.version}"'
        return TicketOut(
            ticket_id=ticket_id, version=state.version, state=state.state, data=state_data(state)
        )

    @app.get("/tickets/{ticket_id}/history", response_model=HistoryOut, tags=["tickets"])
    def get_history(ticket_id: str, _: Caller) -> HistoryOut:
        """A ticket's events in order, each with the rules that produced it."""
        history = _history(ticket_id)
        return HistoryOut(ticket_id=ticket_id, version=len(history), events=_events(history))

    @app.get("/tickets/{ticket_id}/explain", response_model=ExplainOut, tags=["tickets"])
    def get_explain(ticket_id: str, _: Caller) -> ExplainOut:
        """Why the ticket is where it is: one paragraph per event with rules and clauses."""
        return ExplainOut(ticket_id=ticket_id, paragraphs=eng.explain(_history(ticket_id)))

    @app.get("/tickets/{ticket_id}/escalations", response_model=EscalationsOut, tags=["tickets"])
    def get_escalations(
        ticket_id: str, _: Caller, at: Annotated[str | None, Query(max_length=64)] = None
    ) -> EscalationsOut:
        """The escalations due for the ticket at ``at`` (default: now)."""
        when = instant(at, "at")
        history = _history(ticket_id)
        due = eng.escalations(eng.state(history, ticket_id), when)
        return EscalationsOut(
            ticket_id=ticket_id,
            at=when.isoformat(),
            escalations=[_escalation(eng, e) for e in due],
        )

    # ----------------------------------------------------------------- views

    @app.get("/tickets", response_model=TicketPage, tags=["views"])
    def list_tickets(
        _: Caller,
        town: Annotated[str | None, Query(max_length=128)] = None,
        community: Annotated[str | None, Query(max_length=128)] = None,
        state: Annotated[str | None, Query(max_length=64)] = None,
        category: Annotated[str | None, Query(max_length=64)] = None,
        agency: Annotated[str | None, Query(max_length=64)] = None,
        due_from: Annotated[str | None, Query(max_length=32)] = None,
        due_to: Annotated[str | None, Query(max_length=32)] = None,
        overdue_at: Annotated[str | None, Query(max_length=64)] = None,
        open_only: Annotated[bool, Query(alias="open")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> TicketPage:
        """Tickets by town, community, state, category, agency, due days, overdue at; paged."""
        rows = eng.tickets(
            town=town,
            community=community,
            state=state,
            category=category,
            agency=agency,
            due_from=_day(due_from, "due_from"),
            due_to=_day(due_to, "due_to"),
            overdue_at=None if overdue_at is None else eng.parse_instant(overdue_at, "overdue_at"),
            open_only=open_only,
            limit=limit,
            offset=offset,
        )
        items = [TicketRowOut.model_validate(r.to_data()) for r in rows]
        return TicketPage(items=items, limit=limit, offset=offset)

    @app.get("/views/counts", response_model=CountsOut, tags=["views"])
    def counts(_: Caller, town: Annotated[str | None, Query(max_length=128)] = None) -> CountsOut:
        """Tickets per town and state, and open hazards per community."""
        return CountsOut(
            counts=[CountOut(town=t, state=s, n=n) for t, s, n in eng.counts(town)],
            open_hazards=[
                OpenHazardOut(town=t, community=c, n=n) for t, c, n in eng.open_hazards(town)
            ],
        )

    @app.get("/duties", response_model=DutiesOut, tags=["views"])
    def duties(
        _: Caller,
        at: Annotated[str | None, Query(max_length=64)] = None,
        agency: Annotated[str | None, Query(max_length=64)] = None,
        town: Annotated[str | None, Query(max_length=128)] = None,
    ) -> DutiesOut:
        """What is due from whom, by when, at ``at`` (default: now): per ticket, the duties
        owed (五(三), R-DUTY-*) and the escalations due (concealment included)."""
        when = instant(at, "at")
        items = [
            DutyOut(
                ticket_id=row.ticket_id,
                town=row.town,
                community=row.community,
                state=row.state,
                duties=[_owed(eng, d) for d in owed],
                escalations=[_escalation(eng, e) for e in due],
            )
            for row, owed, due in eng.duties(when, agency=agency, town=town)
        ]
        return DutiesOut(at=when.isoformat(), items=items)

    @app.get("/reports/obligations", response_model=ObligationsOut, tags=["views"])
    def obligations(
        _: Caller, at: Annotated[str | None, Query(max_length=64)] = None
    ) -> ObligationsOut:
        """Every town's report obligations and their status at ``at`` (default: now)."""
        when = instant(at, "at")
        statuses, escalations = eng.obligations(when)
        return ObligationsOut(
            at=when.isoformat(),
            obligations=[
                ObligationOut(
                    report_id=s.obligation.report_id,
                    town=s.obligation.town,
                    community=s.obligation.community,
                    due=s.obligation.due.isoformat(),
                    state=s.state,
                    state_zh=s.state_zh,
                    submitted_at=s.submitted_at.isoformat() if s.submitted_at else None,
                    missing_contents=list(s.missing_contents),
                    rules=list(s.rules),
                )
                for s in statuses
            ],
            escalations=[_escalation(eng, e) for e in escalations],
        )

    # ----------------------------------------------------------------- documents

    @app.get(
        "/documents/dossiers/{community}",
        tags=["documents"],
        response_model=dict[str, Any],
        responses={200: {"content": {"text/html": {}}}},
    )
    def get_dossier(
        community: str,
        _: Caller,
        format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
    ) -> Response:
        """The community's 一区一档 from verified history (503 when the store does not verify)."""
        data = eng.dossier(community)
        if format == "html":
            return HTMLResponse(eng.dossier_html(data))
        return Response(orjson.dumps(data), media_type="application/json")

    @app.get(
        "/documents/forms/{form_id}",
        tags=["documents"],
        response_model=FormOut,
        responses={200: {"content": {"text/html": {}, _XLSX: {}}}},
    )
    def get_form(
        form_id: str,
        _: Caller,
        format: Annotated[str, Query(pattern="^(json|html|xlsx)$")] = "json",
    ) -> Response:
        """An annex form (annex1, annex2, annex3) from verified history (JSON, HTML, XLSX)."""
        if form_id not in eng.form_ids():
            raise ServiceError(
                404,
                f"no form {form_id!r}; known: {', '.join(eng.form_ids())}",
                "表格不存在",
                field="form_id",
            )
        if format == "xlsx":
            return Response(
                eng.annex_xlsx(form_id),
                media_type=_XLSX,
                headers={"Content-Disposition": f'attachment; filename="{form_id}.xlsx"'},
            )
        headers, rows, verification = eng.annex(form_id)
        out = FormOut(form=form_id, headers=headers, rows=rows, verification=verification)
        if format == "html":
            return HTMLResponse(dashboard.form_page(out))
        return Response(out.model_dump_json().encode("utf-8"), media_type="application/json")

    # ----------------------------------------------------------------- the plan

    @app.get("/plan", response_model=dict[str, Any], tags=["plan"])
    def get_plan(_: Caller) -> Response:
        """The plan served, as its data file's fields."""
        return Response(orjson.dumps(eng.plan_data()), media_type="application/json")

    @app.get("/plan/rules", response_model=list[RuleEntry], tags=["plan"])
    def get_rules(_: Caller) -> list[RuleEntry]:
        """The rule catalogue: every R- id with its clause, quote and whether it is a default."""
        return list(eng.rules())

    # ----------------------------------------------------------------- events

    @app.get(
        "/events",
        tags=["events"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
    )
    def events(
        _: Caller,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
        after: Annotated[int | None, Query(ge=-1, le=10**15)] = None,
        idle_timeout: Annotated[float, Query(ge=0.05, le=300)] = 15.0,
    ) -> StreamingResponse:
        """Server-Sent Events: every event after a position, in order, then new ones.

        Resume with ``Last-Event-ID`` (the ``id`` of the last event received:
        ``<position>-<chain hash prefix>``); a store whose history at that position has
        another hash is refused (409: the history forked).  The stream ends after
        ``idle_timeout`` seconds without an event; the client reconnects.
        """
        start = after if after is not None and after >= 0 else None
        if last_event_id is not None:
            start = _resume(eng, last_event_id)
        if not streams.acquire(blocking=False):
            raise ServiceError(
                503,
                f"already {max_streams} event streams open; reconnect later",
                "事件流连接已满，请稍后重连",
                error="TooManyStreams",
            )
        try:
            stream = eng.events_after(start, stop=stop, idle_timeout=idle_timeout)
        except BaseException:
            streams.release()
            raise

        def lines() -> Iterator[bytes]:
            try:
                yield b"retry: 1000\n\n"
                for se in stream:
                    data = orjson.dumps(event_data(se.event))
                    head = f"id: {se.position}-{se.global_hash[:16]}\nevent: {se.event.kind}\n"
                    yield head.encode("ascii") + b"data: " + data + b"\n\n"
            finally:
                streams.release()

        return StreamingResponse(
            lines(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    dashboard.register(app, eng, auth, now)

    def _openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema["components"]["schemas"]["Problem"] = Problem.model_json_schema()
            schema["components"]["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `fireflow serve token create`.",
                }
            }
            schema["security"] = [{"bearer": []}]
            schema["paths"]["/health"]["get"]["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = _openapi  # type: ignore[method-assign]
    return app


def openapi_json(plan: Plan | None = None) -> bytes:
    """The service's OpenAPI document as stable JSON bytes (sorted keys, UTF-8, newline).

    docs/openapi.json is this, for the built-in plan (``fireflow serve openapi``).
    """
    engine = Engine.memory(plan)
    app = create_app(engine.store, engine.plan, StaticAuthenticator({}), engine=engine)
    text = json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True)
    return (text + "\n").encode("utf-8")


def _resume(engine: Engine, last_event_id: str) -> int:
    match = _EVENT_ID.fullmatch(last_event_id.strip())
    if match is None:
        raise ServiceError(
            400, "Last-Event-ID: expected <position>-<hash>", "事件编号无效", field="Last-Event-ID"
        )
    position, prefix = int(match.group(1)), match.group(2)
    if prefix is not None and not engine.global_hash_at(position).startswith(prefix):
        raise ServiceError(
            409,
            f"the store's history at position {position} is not the one the client saw "
            "(a restored backup or another store): resubscribe from the start",
            "事件历史已分叉",
            field="Last-Event-ID",
            error="HistoryForked",
        )
    return position


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(field, f"not an ISO date (YYYY-MM-DD): {value[:40]!r}") from None


def _if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.fullmatch(value)
    if match is None:
        raise ServiceError(
            400, 'If-Match: expected a version, e.g. "3"', "If-Match 无效", field="If-Match"
        )
    return int(match.group(1))


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise ServiceError(
            415, "the body must be application/json", "请求体必须为 JSON", field="Content-Type"
        )
    too_large = ServiceError(
        413, f"the body is larger than {limit} bytes", f"请求体超过 {limit} 字节", field="body"
    )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        data = parse_json(body)
    except InvalidArgument as exc:
        if type(exc) is InvalidArgument:  # not JSON at all
            raise ServiceError(400, str(exc), "请求体不是有效的 JSON", field="body") from None
        raise
    if not isinstance(data, dict):
        raise InvalidArgument("body", "expected a JSON object (应为 JSON 对象)")
    return data


def _with_caller(
    data: dict[str, Any], principal: Principal, now: Callable[[], datetime]
) -> dict[str, Any]:
    """The command's data with the caller as actor and ``at`` from the clock when missing."""
    out = dict(data)
    actor = out.get("actor")
    if actor is None:
        out["actor"] = {"agency": principal.agency, "person": principal.person}
    elif isinstance(actor, dict):
        if actor.get("agency", principal.agency) != principal.agency:
            raise ServiceError(
                403,
                f"the caller acts for agency {principal.agency!r}; a command may not name "
                "another agency as its actor (R-AUTH-ROLES: the caller's agency acts)",
                "调用方只能以本部门名义操作，不得代表其他部门",
                field="actor.agency",
                rule="R-AUTH-ROLES",
                error="ActorMismatch",
            )
        person = actor.get("person", "")
        if principal.person and person not in ("", principal.person):
            raise ServiceError(
                403,
                "the token belongs to a named person; a command may not name another person",
                "令牌属于指定经办人，不得以他人名义操作",
                field="actor.person",
                rule="R-AUTH-ROLES",
                error="ActorMismatch",
            )
        out["actor"] = {
            **actor,
            "agency": principal.agency,
            "person": person or principal.person,
        }
    if "at" not in out:
        out["at"] = now().isoformat()
    return out
