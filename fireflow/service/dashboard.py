"""The read-only dashboard (工作台): HTML pages served by the same process.

Chinese first, English beside; templates only (``service_*.html.j2``, autoescaped),
no script, no CDN: the style is inlined from the package.  Pages:

* ``/dashboard``: open tickets by town and state, overdue tickets, escalations due,
  report obligations, recent events, each linking to the ticket's page;
* ``/dashboard/tickets/{id}``: a ticket's history, each event with its rules and clauses.

A browser cannot send a bearer header by itself, so ``/dashboard/login`` takes a
token in a form and keeps it in a cookie (``HttpOnly``, ``SameSite=Strict``, path
``/dashboard``): the cookie is accepted on the dashboard's pages only, which only
read; the API never accepts it (no cross-site request can act with it).
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, local ones too

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fireflow.service.auth import Authenticator, Principal
from fireflow.service.engine import Engine, event_data, render
from fireflow.service.models import FormOut
from fireflow.service.problems import ServiceError

__all__ = ["COOKIE", "form_page", "register"]

#: The cookie holding a dashboard token.
COOKIE = "fireflow_token"
#: The pages load nothing and run no script.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers=_HEADERS)


_RECENT = 20


class _SignIn(Exception):
    """A browser without credentials asked for a page: send it to the sign-in page."""


class _Headers(Mapping[str, str]):
    """The request's headers, with the dashboard cookie as a bearer token when none is sent."""

    def __init__(self, request: Request) -> None:
        self._h = {k.lower(): v for k, v in request.headers.items()}
        token = request.cookies.get(COOKIE)
        if "authorization" not in self._h and token:
            self._h["authorization"] = f"Bearer {token}"

    def __getitem__(self, key: str) -> str:
        return self._h[key]

    def __iter__(self) -> Any:
        return iter(self._h)

    def __len__(self) -> int:
        return len(self._h)


def form_page(form: FormOut) -> str:
    """An annex form as an HTML table page."""
    return render("service_form.html.j2", title=f"{form.form} · 附件", form=form)


def register(
    app: FastAPI, engine: Engine, auth: Authenticator, now: Callable[[], datetime]
) -> None:
    """Add the dashboard's routes to ``app`` (hidden from the OpenAPI document)."""

    def viewer(request: Request) -> Principal:
        try:
            principal = auth.authenticate(_Headers(request))
        except ServiceError as exc:
            if exc.status == 401 and "text/html" in request.headers.get("accept", ""):
                raise _SignIn from None  # a browser: to the sign-in page
            raise
        request.state.principal = principal
        return principal

    async def sign_in(_: Request, __: Exception) -> Response:
        return RedirectResponse("/dashboard/login", status_code=303)

    app.add_exception_handler(_SignIn, sign_in)

    Viewer = Annotated[Principal, Depends(viewer)]

    @app.get("/dashboard/login", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return _page(engine.render("service_login.html.j2", title="登录 Sign in"))

    @app.post("/dashboard/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = await request.body()
        if len(body) > 4096:
            raise ServiceError(413, "the form is too large", "表单过大", field="body")
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
        principal = auth.authenticate({"authorization": f"Bearer {token}"})
        request.state.principal = principal
        response = RedirectResponse("/dashboard", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            path="/dashboard",
            secure=request.url.scheme == "https",
        )
        return response

    @app.get("/dashboard", include_in_schema=False)
    def home(
        principal: Viewer, at: Annotated[str | None, Query(max_length=64)] = None
    ) -> HTMLResponse:
        """The dashboard as of ``at`` (default: now)."""
        when = now() if at is None else engine.parse_instant(at, "at")
        return _page(_home(principal, when))

    def _home(principal: Principal, at: datetime) -> str:
        counts = engine.counts()
        towns = sorted({t for t, _, _ in counts})
        states = [s for s in engine.states() if any(s == st for _, st, _ in counts)]
        table = {(t, s): n for t, s, n in counts}
        overdue = engine.tickets(overdue_at=at, limit=200)
        duties = engine.duties(at)
        statuses, report_esc = engine.obligations(at)
        pending = [s for s in statuses if s.state in ("missing", "late")][:100]
        recent = [event_data(se.event) for se in engine.recent(_RECENT)]
        return engine.render(
            "service_dashboard.html.j2",
            title="消防通道专项整治工作台 Dashboard",
            principal=principal,
            at=at.isoformat(timespec="seconds"),
            towns=towns,
            states=[(s, engine.state_zh(s)) for s in states],
            table=table,
            overdue=overdue,
            duties=[
                (row, [(e, engine.clause(e.rule)) for e in due], [d for d in owed if d.late])
                for row, owed, due in duties
            ],
            obligations=pending,
            report_escalations=[(e, engine.clause(e.rule)) for e in report_esc],
            recent=list(reversed(recent)),
            agency_zh=engine.agency_zh,
            state_zh=engine.state_zh,
        )

    @app.get("/dashboard/tickets/{ticket_id}", include_in_schema=False)
    def ticket(ticket_id: str, principal: Viewer) -> HTMLResponse:
        history = engine.history(ticket_id)
        if not history:
            raise ServiceError(404, f"no ticket {ticket_id!r}", "工单不存在", field="ticket_id")
        state = engine.state(history, ticket_id)
        events = [(event_data(e), [(r, engine.clause(r)) for r in e.rules]) for e in history]
        return _page(
            engine.render(
                "service_ticket.html.j2",
                title=f"工单 {ticket_id}",
                principal=principal,
                state=state,
                state_zh=engine.state_zh(state.state),
                events=events,
                paragraphs=engine.explain(history),
                agency_zh=engine.agency_zh,
            )
        )
