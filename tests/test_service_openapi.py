"""The OpenAPI document: committed, served at a stable path, and kept by the live server.

* docs/openapi.json is what the service publishes (``fireflow serve openapi``): a test
  fails when the code and the committed document differ (regenerate it with
  ``fireflow serve openapi > docs/openapi.json`` and review the diff);
* the live server serves the same document at /openapi.json;
* schemathesis generates requests from the document for every operation and sends
  them to a real uvicorn server on 127.0.0.1: no answer is a 500, and every answer
  matches the document (status, content type, schema).  The examples are few per
  operation so that the run stays short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from service_live import PLAN, open_ticket, running

from fireflow.service.app import openapi_json
from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def test_the_committed_document_is_the_generated_one():
    assert DOC.read_bytes() == openapi_json(), (
        "docs/openapi.json differs from the service: run "
        "`fireflow serve openapi > docs/openapi.json` and review the diff"
    )


def test_every_error_is_documented_as_a_problem():
    doc = json.loads(openapi_json())
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status in ("401", "403", "404", "409", "412", "422", "503"):
                content = op["responses"][status]["content"]
                assert "application/problem+json" in content, (path, method, status)
    body = doc["paths"]["/tickets/{ticket_id}/commands"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "kind" in schema["required"]
    assert "actor" not in schema["required"]  # the caller is the actor


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("schemathesis")
    engine = Engine(SQLiteStore(folder / "events.sqlite"), PLAN)
    with running(engine, folder) as s:
        with s.client("town") as c:
            open_ticket(c, "CL-1")
        yield s
    engine.close()


def test_the_live_server_publishes_the_document(live):
    with live.client(None) as c:
        assert c.get("/openapi.json").json() == json.loads(DOC.read_bytes())


# the committed document, which the tests above hold equal to the live one
schema = schemathesis.openapi.from_dict(json.loads(DOC.read_bytes()))


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_500_and_no_answer_outside_the_document(case, live):
    if case.path == "/events":
        case.query = {**(case.query or {}), "idle_timeout": 0.05}
    case.call_and_validate(
        base_url=live.url,
        headers={"Authorization": f"Bearer {live.token['town']}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=30,
    )
