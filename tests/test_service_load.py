"""A bounded load run on a live server (SQLite, loopback only): 0 lost, 0 duplicated.

Eight clients post at once, half of their commands to one shared ticket (so that
they race) and half to their own; a conflict is answered 409 with a typed problem
and retried with the same command id.  At the end every command is stored exactly
once, on its ticket, and the store's hash chains verify.  The same run on
PostgreSQL is in test_service_pg.py.
"""

from __future__ import annotations

import time

from service_live import PLAN, check_load, load_run, running, same_command_at_once

from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore

CLIENTS, PER_CLIENT = 8, 6


def test_concurrent_clients_lose_and_duplicate_nothing(tmp_path):
    engine = Engine(SQLiteStore(tmp_path / "events.sqlite"), PLAN)
    with running(engine, tmp_path) as service:
        result = load_run(service, CLIENTS, PER_CLIENT)
        check_load(service, result, CLIENTS, PER_CLIENT)
    engine.close()


def test_the_same_command_sent_at_once_is_recorded_once(tmp_path):
    engine = Engine(SQLiteStore(tmp_path / "events.sqlite"), PLAN)
    with running(engine, tmp_path) as service:
        answers = same_command_at_once(service, "CL-SAME", 6)
        kinds = [e.kind for e in engine.history("CL-SAME")]
    engine.close()
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 5 + [201]  # one recorded it, the others were told it was
    events = {str(body["events"]) for _, body in answers}
    assert len(events) == 1  # every caller got the same events
    assert [body["replayed"] for status, body in answers if status == 200] == [True] * 5
    assert kinds.count("mark_overdue") == 1


def test_event_streams_are_bounded_and_freed(tmp_path):
    engine = Engine(SQLiteStore(tmp_path / "events.sqlite"), PLAN)
    with running(engine, tmp_path, max_streams=1) as service, service.client("auditor") as c:
        with c.stream("GET", "/events", params={"idle_timeout": 2}) as first:
            assert first.status_code == 200
            second = c.get("/events", params={"idle_timeout": 0.05})
            assert second.status_code == 503
            assert second.json()["error"] == "TooManyStreams"
        deadline = 50
        while deadline and c.get("/events", params={"idle_timeout": 0.05}).status_code == 503:
            deadline -= 1  # the first stream's worker lets go when its wait ends
            time.sleep(0.1)
        assert deadline
    engine.close()
