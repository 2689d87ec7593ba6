"""A hostile corpus against every endpoint of a live server: typed problems, never a 500.

No token, a malformed, unknown or revoked token, a read-only token that writes,
another agency named in the body, oversized and deeply nested bodies (declared and
chunked), wrong content types, bodies that are not JSON or not UTF-8, ids with
control, bidirectional and invisible characters, path tricks in document names,
``If-Match`` mismatches and garbage, unknown routes and methods.  Each answer is an
``application/problem+json`` with the expected status and error class; at the end
the audit log holds every request and no 500.
"""

from __future__ import annotations

import json

import pytest
from service_live import PLAN, open_ticket, report_body, running

from fireflow.service.app import MAX_BODY_BYTES
from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore

#: Every operation, with a valid request for it.
ENDPOINTS = [
    ("GET", "/whoami"),
    ("GET", "/tickets/CL-H1"),
    ("GET", "/tickets/CL-H1/history"),
    ("GET", "/tickets/CL-H1/explain"),
    ("GET", "/tickets/CL-H1/escalations?at=2022-03-26T10:00:00%2B08:00"),
    ("GET", "/tickets?town=金峰镇"),
    ("GET", "/views/counts"),
    ("GET", "/duties?at=2022-03-26T10:00:00%2B08:00"),
    ("GET", "/reports/obligations?at=2022-03-26T10:00:00%2B08:00"),
    ("GET", "/documents/dossiers/金峰小区"),
    ("GET", "/documents/forms/annex2"),
    ("GET", "/plan"),
    ("GET", "/plan/rules"),
    ("GET", "/events?idle_timeout=0.05"),
    ("POST", "/tickets/CL-H1/commands"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/tickets/CL-H1"),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    engine = Engine(SQLiteStore(folder / "events.sqlite"), PLAN)
    with running(engine, folder) as s:
        with s.client("town") as c:
            open_ticket(c, "CL-H1")
        yield s
        assert not [r for r in s.audit.rows(limit=100_000) if r["status"] >= 500]
        assert s.audit.verify() == []
    engine.close()


def _send(c, method, path, **kw):
    if method == "POST":
        kw.setdefault("json", {"kind": "escalate", "at": "2022-03-26T10:00:00+08:00"})
    return c.request(method, path, **kw)


def _problem(r, status, error=None):
    assert r.status_code == status, (r.status_code, r.text[:400])
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["message_zh"]
    assert body["message_en"]
    if error is not None:
        assert body["error"] == error, body
    return body


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_valid_token(service, method, path):
    with service.client(None) as c:
        r = _send(c, method, path)
        assert _problem(r, 401, "Unauthenticated")["field"] == "Authorization"
        assert r.headers["www-authenticate"] == "Bearer"
        for bad in ("Basic dG93bjp4", "Bearer", "Bearer ff_zz_zz", "Bearer " + "A" * 5000):
            _problem(_send(c, method, path, headers={"Authorization": bad}), 401)
        unknown = "Bearer ff_0000000000000000_" + "A" * 43
        _problem(_send(c, method, path, headers={"Authorization": unknown}), 401)
    with service.client("revoked") as c:
        body = _problem(_send(c, method, path), 401, "Unauthenticated")
        assert "revoked" in body["message_en"]


@pytest.mark.parametrize(("method", "path"), [e for e in ENDPOINTS if e[0] == "GET"])
def test_a_read_only_token_may_read_every_view(service, method, path):
    with service.client("auditor") as c:
        r = _send(c, method, path)
    assert r.status_code == 200, r.text[:300]


def test_a_read_only_token_may_not_write(service):
    with service.client("auditor") as c:
        r = c.post("/tickets/CL-H1/commands", json={"kind": "escalate"})
    assert _problem(r, 403)["field"] == "Authorization"
    assert len(service.engine.history("CL-H1")) == 3


@pytest.mark.parametrize("actor", [{"agency": "fire"}, {"agency": "housing", "person": "李"}])
def test_a_caller_never_acts_for_another_agency(service, actor):
    with service.client("town") as c:
        r = c.post("/tickets/CL-H9/commands", json=report_body("CL-H9", actor=actor))
    body = _problem(r, 403, "ActorMismatch")
    assert body["field"] == "actor.agency"
    assert body["rule"] == "R-AUTH-ROLES"
    assert service.engine.history("CL-H9") == []


def test_a_named_token_never_acts_as_another_person(service):
    with service.client("town") as c:  # the town's token is 李's
        r = c.post(
            "/tickets/CL-H9/commands",
            json=report_body("CL-H9", actor={"agency": "town", "person": "张"}),
        )
    assert _problem(r, 403, "ActorMismatch")["field"] == "actor.person"


def test_oversized_bodies_are_413_declared_or_chunked(service):
    big = json.dumps(report_body("CL-B1", description="消" * MAX_BODY_BYTES)).encode()
    with service.client("town") as c:
        declared = c.post(
            "/tickets/CL-B1/commands", content=big, headers={"Content-Type": "application/json"}
        )
        chunked = c.post(
            "/tickets/CL-B1/commands",
            content=iter([big[i : i + 4096] for i in range(0, len(big), 4096)]),
            headers={"Content-Type": "application/json"},
        )
    _problem(declared, 413, "ContentTooLarge")
    _problem(chunked, 413, "ContentTooLarge")
    assert service.engine.history("CL-B1") == []


@pytest.mark.parametrize("depth", [40, 20_000])
def test_deeply_nested_bodies_are_refused(service, depth):
    body = ("[" * depth + "]" * depth).encode()
    wrapped = b'{"kind": "report", "description": ' + body + b"}"
    with service.client("town") as c:
        r = c.post(
            "/tickets/CL-B2/commands", content=wrapped, headers={"Content-Type": "application/json"}
        )
    _problem(r, 422, "InputLimitExceeded")


@pytest.mark.parametrize(
    ("content", "kind", "status", "error"),
    [
        (b"kind=report", "application/x-www-form-urlencoded", 415, "UnsupportedMediaType"),
        (b'{"kind": "report"}', "text/plain", 415, "UnsupportedMediaType"),
        (b'{"kind": "report"}', "", 415, "UnsupportedMediaType"),
        (b'{"kind": ', "application/json", 400, "BadRequest"),
        (b"\xff\xfe{}", "application/json", 400, "BadRequest"),
        (b"", "application/json", 400, "BadRequest"),
        (b"[1, 2]", "application/json", 422, "InvalidArgument"),
        (b'"report"', "application/json", 422, "InvalidArgument"),
        (b'{"kind": "report", "days": 1e999}', "application/json", 422, None),
        (b'{"kind": "set_deadline", "days": ' + b"9" * 5000 + b"}", "application/json", 400, None),
        (b'{"kind": "nonsense"}', "application/json", 422, "InvalidArgument"),
        (b'{"kind": "report", "surprise": 1}', "application/json", 422, "InvalidArgument"),
        (
            b'{"kind": "route", "at": "2022-03-21T10:00:00"}',
            "application/json",
            422,
            "NaiveDatetime",
        ),
        (b'{"kind": "route", "at": "yesterday"}', "application/json", 422, None),
        (b'{"kind": "route", "actor": "town"}', "application/json", 422, None),
    ],
)
def test_bodies_that_are_not_commands(service, content, kind, status, error):
    headers = {"Content-Type": kind} if kind else {}
    with service.client("town") as c:
        r = c.post("/tickets/CL-B3/commands", content=content, headers=headers)
    _problem(r, status, error)
    assert service.engine.history("CL-B3") == []


@pytest.mark.parametrize(
    "ticket_id",
    ["CL%01", "CL%1B%5B2J", "CL%E2%80%AE1", "CL%E2%80%8B1", "CL%EF%BB%BF", "C" * 300],
)
def test_ids_with_control_bidi_or_invisible_characters(service, ticket_id):
    with service.client("town") as c:
        for path in (f"/tickets/{ticket_id}", f"/tickets/{ticket_id}/history"):
            _problem(c.get(path), 422)
        _problem(c.post(f"/tickets/{ticket_id}/commands", json=report_body(ticket_id)), 422)
        _problem(c.get("/tickets", params={"town": "金峰\u202e镇"}), 422)
        _problem(c.get("/tickets", params={"community": "金峰\x00小区"}), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/documents/dossiers/..%2F..%2Fetc%2Fpasswd",
        "/documents/dossiers/%2E%2E",
        "/documents/dossiers/..%5C..%5Cwindows",
        "/documents/dossiers/%00",
        "/documents/forms/..%2Fplan",
        "/documents/forms/annex9",
        "/documents/forms/%2E%2E%2F%2E%2E%2Fopenapi.json",
        "/documents/dossiers/%2e%2e%2fopenapi.json",
    ],
)
def test_path_tricks_in_document_names(service, path):
    with service.client("town") as c:
        r = c.get(path)
    assert r.status_code in (404, 422), (r.status_code, r.text[:200])
    _problem(r, r.status_code)
    assert "root:" not in r.text


def test_if_match_mismatch_and_garbage(service):
    with service.client("town") as c:
        esc = {"kind": "mark_overdue", "at": "2022-03-26T10:00:00+08:00"}
        _problem(
            c.post("/tickets/CL-H1/commands", json=esc, headers={"If-Match": '"2"'}),
            412,
            "PreconditionFailed",
        )
        _problem(
            c.post("/tickets/CL-H1/commands", json=esc, headers={"If-Match": "abc"}),
            400,
        )
        assert len(service.engine.history("CL-H1")) == 3


def test_unknown_routes_methods_and_queries(service):
    with service.client("town") as c:
        _problem(c.get("/nowhere"), 404)
        wrong = c.delete("/tickets/CL-H1")
        _problem(wrong, 405)
        assert wrong.headers["allow"] == "GET"
        _problem(c.get("/tickets", params={"limit": "lots"}), 422)
        _problem(c.get("/tickets", params={"limit": 0}), 422)
        _problem(c.get("/tickets", params={"state": "nirvana"}), 422)
        _problem(c.get("/tickets", params={"due_from": "2022-13-40"}), 422)
        _problem(c.get("/duties", params={"at": "2022-03-26T10:00:00"}), 422, "NaiveDatetime")
        _problem(c.get("/events", headers={"Last-Event-ID": "x; DROP"}), 400)
        _problem(c.get("/tickets/CL-H404"), 404)
