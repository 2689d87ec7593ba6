"""The service on PostgreSQL: the same live-server flow and load run as on SQLite.

A throwaway cluster (tests/pg.py), a fresh schema; the server is a real uvicorn on
127.0.0.1 talking to the store over the cluster's unix socket.
"""

from __future__ import annotations

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from service_live import PLAN, check_load, load_run, open_ticket, report_body, running

from fireflow.service.engine import Engine


@pytest.fixture(scope="module")
def service(pg_server, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    from fireflow.store.postgres import PostgresStore

    schema = fresh_schema()
    engine = Engine(PostgresStore(pg_server, schema=schema), PLAN)
    with running(engine, tmp_path_factory.mktemp("pg")) as s:
        yield s
    engine.close()
    drop_schema(pg_server, schema)


def test_commands_views_documents_and_events_on_postgresql(service):
    with service.client("town") as c:
        place = {"town": "漳港街道", "community": "漳港小区"}
        open_ticket(c, "PG-1", **place)
        again = c.post("/tickets/PG-1/commands", json=report_body("PG-1", **place))
        assert again.status_code == 200
        assert again.json()["replayed"] is True
        assert c.get("/tickets/PG-1").json()["state"] == "rectifying"
        rows = c.get("/tickets", params={"town": "漳港街道"}).json()["items"]
        assert [r["ticket_id"] for r in rows] == ["PG-1"]
        dossier = c.get("/documents/dossiers/漳港小区").json()
        assert dossier["verified"] is True
        with c.stream("GET", "/events", params={"idle_timeout": 0.3}) as r:
            ids = [line for line in r.iter_lines() if line.startswith("id: ")]
        positions = [int(i[4:].split("-")[0]) for i in ids]
        assert len(positions) >= 3
        assert positions == list(range(len(positions)))  # in order, none skipped or repeated


def test_load_run_on_postgresql(service):
    result = load_run(service, 8, 4)
    check_load(service, result, 8, 4)
