"""The HTTP service as its users use it: a real uvicorn server on 127.0.0.1, httpx, SQLite.

One server per module (SQLite file in a temporary folder, a fixed clock); the tests
post commands as the town, the property company and the housing bureau, and read
every view back.  The same flow on PostgreSQL is in test_service_pg.py.
"""

from __future__ import annotations

import io

import httpx
import openpyxl
import pytest
from service_live import PLAN, open_ticket, report_body, running

from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("service")
    engine = Engine(SQLiteStore(folder / "events.sqlite"), PLAN)
    with running(engine, folder) as s:
        yield s
    engine.close()


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    for key in ("type", "title", "status", "detail", "error", "message_zh", "message_en"):
        assert key in body
    assert body["status"] == status
    return body


def test_health_needs_no_token_and_names_the_plan(service):
    with service.client(None) as c:
        r = c.get("/health")
    assert r.status_code == 200
    assert r.json()["plan"] == "changle-2022"


def test_whoami_is_the_token_principal(service):
    with service.client("town") as c:
        assert c.get("/whoami").json() == {
            "agency": "town",
            "person": "李",
            "readonly": False,
            "subject": f"token:{service.token_ids['town']}",
        }


def test_a_ticket_from_report_to_deadline_cites_its_rules(service):
    with service.client("town") as c:
        r = c.post("/tickets/CL-A1/commands", json=report_body("CL-A1"))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["state"] == "reported"
        assert body["version"] == 1
        assert not body["replayed"]
        assert r.headers["etag"] == '"1"'
        event = body["events"][0]
        assert event["actor"] == {"agency": "town", "person": "李"}  # the caller acts
        assert "R-TKT-OPEN" in event["rules"]
        open_ticket(c, "CL-A1")  # route and deadline (the report is replayed)
        state = c.get("/tickets/CL-A1")
        assert state.status_code == 200
        assert state.json()["state"] == "rectifying"
        assert state.headers["etag"] == '"3"'
        assert state.json()["data"]["deadline"] == "2022-03-24"  # R-TKT-DEADLINE, 3 days
        history = c.get("/tickets/CL-A1/history").json()
        assert [e["kind"] for e in history["events"]] == ["report", "route", "set_deadline"]
        paragraphs = c.get("/tickets/CL-A1/explain").json()["paragraphs"]
        assert len(paragraphs) == 3
        assert "R-ROUTE-EVAC" in "".join(paragraphs)


def test_a_retried_command_returns_the_same_result(service):
    with service.client("town") as c:
        first = c.post("/tickets/CL-R1/commands", json=report_body("R1"))
        again = c.post("/tickets/CL-R1/commands", json=report_body("R1"))
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["events"] == first.json()["events"]
    assert again.json()["replayed"] is True
    assert len(service.engine.history("CL-R1")) == 1  # nothing appended twice


def test_a_command_id_reused_for_another_command_is_refused(service):
    with service.client("town") as c:
        c.post("/tickets/CL-R2/commands", json=report_body("R2"))
        r = c.post("/tickets/CL-R2/commands", json=report_body("R2", community="另一小区"))
    body = _problem(r, 422)
    assert body["field"] == "command_id"
    assert body["error"] == "InvalidCommand"


def test_if_match_mismatch_is_412_and_match_is_accepted(service):
    with service.client("town") as c:
        c.post("/tickets/CL-M1/commands", json=report_body("M1"))
        route = {"kind": "route", "command_id": "route-M1", "at": "2022-03-21T11:00:00+08:00"}
        r = c.post("/tickets/CL-M1/commands", json=route, headers={"If-Match": '"7"'})
        body = _problem(r, 412)
        assert body["field"] == "If-Match"
        assert body["error"] == "PreconditionFailed"
        ok = c.post("/tickets/CL-M1/commands", json=route, headers={"If-Match": '"1"'})
        assert ok.status_code == 201, ok.text


def test_a_step_the_agency_may_not_take_is_403_with_its_rule_and_recorded(service):
    with service.client("town") as c:
        open_ticket(c, "CL-N1")
    with service.client("fire") as c:  # fire may not rectify an e-bike in a stairwell
        r = c.post(
            "/tickets/CL-N1/commands",
            json={"kind": "rectify", "command_id": "rect-N1", "at": "2022-03-22T09:00:00+08:00"},
        )
    body = _problem(r, 403)
    assert body["error"] == "NotAuthorized"
    assert body["rule"].startswith("R-")
    assert body["message_zh"]
    kinds = [e.kind for e in service.engine.history("CL-N1")]
    assert kinds[-1] == "attempt_refused"  # the refusal itself is recorded (DESIGN 5)


def test_a_transition_not_allowed_is_409(service):
    with service.client("town") as c:
        c.post("/tickets/CL-T1/commands", json=report_body("T1"))
        r = c.post(
            "/tickets/CL-T1/commands",
            json={"kind": "sign_off", "command_id": "so-T1", "at": "2022-03-21T12:00:00+08:00"},
        )
    body = _problem(r, 409)
    assert body["error"] == "TransitionNotAllowed"
    assert body["state"] == "reported"


def test_escalations_due_at_an_instant(service):
    with service.client("town") as c:
        open_ticket(c, "CL-E1")
        before = c.get("/tickets/CL-E1/escalations", params={"at": "2022-03-22T10:00:00+08:00"})
        after = c.get("/tickets/CL-E1/escalations", params={"at": "2022-03-26T10:00:00+08:00"})
        due = c.get("/duties", params={"at": "2022-03-26T10:00:00+08:00"}).json()
    assert before.json()["escalations"] == []
    (esc,) = after.json()["escalations"]
    assert esc["rule"] == "R-ESC-OVERDUE"
    assert esc["targets"] == ["town", "housing"]
    assert "CL-E1" in [d["ticket_id"] for d in due["items"]]


def test_duties_say_who_owes_which_step_by_when(service):
    """五(三): after a report the town must route and set the deadline (R-DUTY-ROUTE, a
    default period of 3 working days: 2022-03-21 is a Monday, so by 03-24); past it the duty
    is late and a government party's missed duty escalates (R-ACC-SLOW)."""
    with service.client("town") as c:
        c.post("/tickets/CL-DUTY1/commands", json=report_body("DUTY1"))
        on_time = c.get("/duties", params={"at": "2022-03-22T10:00:00+08:00"}).json()
        late = c.get("/duties", params={"at": "2022-03-29T10:00:00+08:00", "agency": "town"})
        other = c.get("/duties", params={"at": "2022-03-29T10:00:00+08:00", "agency": "urban"})
    (item,) = [i for i in on_time["items"] if i["ticket_id"] == "CL-DUTY1"]
    (duty,) = item["duties"]
    assert (duty["kind"], duty["agencies"], duty["due"], duty["rule"], duty["late"]) == (
        "route", ["town"], "2022-03-24", "R-DUTY-ROUTE", False,
    )  # fmt: skip
    assert duty["clause"] == "五(三)"
    (item,) = [i for i in late.json()["items"] if i["ticket_id"] == "CL-DUTY1"]
    assert item["duties"][0]["late"] is True
    assert "R-ACC-SLOW" in {e["rule"] for e in item["escalations"]}
    slow = next(e for e in item["escalations"] if e["rule"] == "R-ACC-SLOW")
    assert "town" in slow["accountable"]
    assert "CL-DUTY1" not in [i["ticket_id"] for i in other.json()["items"]]


def test_views_by_town_state_overdue_and_counts_are_paged(service):
    with service.client("town") as c:
        for n in range(3):
            open_ticket(c, f"CL-V{n}", town="潭头镇", community="潭头小区")
        page = c.get("/tickets", params={"town": "潭头镇", "state": "rectifying", "limit": 2})
        rest = c.get(
            "/tickets", params={"town": "潭头镇", "state": "rectifying", "limit": 2, "offset": 2}
        )
        overdue = c.get("/tickets", params={"overdue_at": "2022-03-25T00:00:00+08:00"})
        counts = c.get("/views/counts").json()
    ids = [r["ticket_id"] for r in page.json()["items"] + rest.json()["items"]]
    assert len(page.json()["items"]) == 2
    assert ids == ["CL-V0", "CL-V1", "CL-V2"]
    assert {"CL-V0", "CL-V1", "CL-V2"} <= {r["ticket_id"] for r in overdue.json()["items"]}
    assert {"town": "潭头镇", "state": "rectifying", "n": 3} in counts["counts"]
    assert {"town": "潭头镇", "community": "潭头小区", "n": 3} in counts["open_hazards"]


def test_report_obligations_at_an_instant(service):
    with service.client("town") as c:
        open_ticket(c, "CL-O1")
    with service.client("housing") as c:
        r = c.get("/reports/obligations", params={"at": "2022-03-21T10:00:00+08:00"})
    assert r.status_code == 200, r.text
    obs = r.json()["obligations"]
    assert obs
    assert {o["town"] for o in obs} <= {"金峰镇", "潭头镇"}
    assert {o["state"] for o in obs} <= {"missing", "not_yet_due", "late", "on_time"}


def test_dossier_and_forms_come_from_verified_history(service):
    with service.client("town") as c:
        open_ticket(c, "CL-D1")
        dossier = c.get("/documents/dossiers/金峰小区")
        html = c.get("/documents/dossiers/金峰小区", params={"format": "html"})
        form = c.get("/documents/forms/annex2")
        form_html = c.get("/documents/forms/annex2", params={"format": "html"})
        xlsx = c.get("/documents/forms/annex2", params={"format": "xlsx"})
        missing = c.get("/documents/dossiers/无此小区")
    assert dossier.status_code == 200, dossier.text
    assert dossier.json()["verified"] is True
    assert dossier.json()["verification"]["store"]["count"] >= 3
    assert html.headers["content-type"].startswith("text/html")
    assert "金峰小区" in html.text
    assert form.json()["verification"]["verified"] is True
    assert form.json()["headers"][0] == "编号"
    assert "<table>" in form_html.text
    assert xlsx.content[:2] == b"PK"  # a workbook (a zip)
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    header = [c.value for c in next(book.worksheets[0].iter_rows(max_row=1))]
    assert header[0] == "编号"
    _problem(missing, 422)


def test_plan_and_rule_catalogue(service):
    with service.client("auditor") as c:
        plan = c.get("/plan").json()
        rules = c.get("/plan/rules").json()
    assert plan["id"] == "changle-2022"
    by_id = {r["id"]: r for r in rules}
    assert by_id["R-SPOT-RATIO"]["clause"] == "五(四)"
    assert by_id["R-ESC-OVERDUE"]["basis"] == "default"


def test_every_request_is_audited_with_its_principal_and_the_chain_holds(service):
    with service.client("auditor") as c:
        c.get("/tickets", params={"limit": 1})
    with service.client(None) as c:
        c.get("/tickets")
    rows = service.audit.rows(limit=100_000)
    auditor = [r for r in rows if r["subject"] == f"token:{service.token_ids['auditor']}"]
    assert auditor
    assert auditor[-1]["agency"] == "efficiency"
    assert auditor[-1]["status"] == 200
    assert any(r["subject"] == "" and r["status"] == 401 for r in rows)
    assert service.audit.verify() == []


def test_server_sent_events_resume_from_last_event_id_in_order(service):
    with service.client("town") as c:
        open_ticket(c, "CL-S1")
        first = _sse(c, {"idle_timeout": 0.3})
        positions = [int(i.split("-")[0]) for i, _, _ in first]
        assert positions == list(range(len(positions)))  # every event, in order, once
        last_id = first[-3][0]
        resumed = _sse(c, {"idle_timeout": 0.3}, {"Last-Event-ID": last_id})
        assert [i for i, _, _ in resumed] == [i for i, _, _ in first[-2:]]
        forged = last_id.split("-")[0] + "-" + "0" * 16
        r = c.get("/events", headers={"Last-Event-ID": forged})
        assert _problem(r, 409)["error"] == "HistoryForked"


def _sse(c: httpx.Client, params: dict, headers: dict | None = None) -> list[tuple[str, str, str]]:
    out = []
    with c.stream("GET", "/events", params=params, headers=headers or {}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        block: dict[str, str] = {}
        for line in r.iter_lines():
            if not line:
                if "id" in block:
                    out.append((block["id"], block["event"], block["data"]))
                block = {}
                continue
            key, _, value = line.partition(": ")
            block[key] = value
    return out
