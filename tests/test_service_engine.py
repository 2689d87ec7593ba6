"""The service's engine adds nothing to the library's rules, and answers races as retries.

* property: any sequence of commands (the library's public strategy, refusals mixed
  in) posted over HTTP gives exactly the events, states and refusals of
  :class:`fireflow.Ticket` executing the same commands in-process;
* a retry that loses the race to its own first attempt (the history it read did not
  yet hold the command) is answered as a retry, and nothing is recorded twice;
* with ``If-Match``, a write that lost a race is a 412, not a 409.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_live import NOW, PLAN, fixed_clock

from fireflow import Ticket
from fireflow.errors import FireflowError
from fireflow.service.app import create_app
from fireflow.service.auth import Principal, StaticAuthenticator
from fireflow.service.engine import Engine, PreconditionFailed
from fireflow.store import ConcurrencyConflict, MemoryStore
from fireflow.testing.strategies import commands

AGENCIES = tuple(a.id for a in PLAN.agencies)
AUTH = StaticAuthenticator({f"t-{a}": Principal(a, "", False, f"static:{a}") for a in AGENCIES})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), steps=st.integers(1, 12))
def test_http_gives_what_the_library_gives(data, steps):
    engine = Engine(MemoryStore(), PLAN)
    app = create_app(engine.store, PLAN, AUTH, clock=fixed_clock, engine=engine)
    ticket = Ticket("T-1", PLAN)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            for _ in range(steps):
                cmd = data.draw(commands(ticket.state, PLAN))
                cmd = cmd.model_copy(update={"ticket_id": "T-1"})
                try:
                    ticket.execute(cmd)
                    expected: str | None = None
                except FireflowError as exc:
                    expected = type(exc).__name__
                r = await client.post(
                    "/tickets/T-1/commands",
                    json=cmd.model_dump(mode="json", exclude={"ticket_id"}),
                    headers={"Authorization": f"Bearer t-{cmd.actor.agency}"},
                )
                if expected is None:
                    assert r.status_code == 201, r.text
                else:
                    assert 400 <= r.status_code < 500, r.text
                    assert r.json()["error"] == expected, r.text

    asyncio.run(run())
    assert engine.history("T-1") == list(ticket.events)
    assert engine.state(engine.history("T-1"), "T-1") == ticket.state


class _Stale(MemoryStore):
    """A store whose next read of a ticket misses its last event (another request's append)."""

    stale = False

    def read(self, ticket_id):
        events = super().read(ticket_id)
        if self.stale:
            self.stale = False
            return events[:-1]
        return events


def _report(**extra):
    return {
        "kind": "report",
        "at": NOW,
        "actor": {"agency": "town"},
        "community": "金峰小区",
        "town": "金峰镇",
        "category": "evacuation_blocked",
        "subtype": "goods",
        "location": "inside",
        "source": "town_inspection",
        **extra,
    }


def test_a_retry_that_loses_the_race_to_itself_is_a_retry():
    store = _Stale()
    engine = Engine(store, PLAN)
    engine.execute("T-1", _report())
    route = {"kind": "route", "at": NOW, "actor": {"agency": "town"}, "command_id": "r-1"}
    first = engine.execute("T-1", route)
    store.stale = True  # the retry reads the history as it was before the first attempt
    again = engine.execute("T-1", route)
    assert again.replayed is True
    assert again.events == first.events
    assert [e.kind for e in store.read("T-1")] == ["report", "route"]


def test_without_an_id_a_lost_race_is_a_conflict_and_with_if_match_a_412():
    store = _Stale()
    engine = Engine(store, PLAN)
    engine.execute("T-1", _report())
    route = {"kind": "route", "at": NOW, "actor": {"agency": "town"}}
    engine.execute("T-1", route)
    late = {**route, "at": NOW.add(minutes=1)}  # a second clerk, who read it before the route
    store.stale = True
    with pytest.raises(ConcurrencyConflict):
        engine.execute("T-1", late)
    store.stale = True
    with pytest.raises(PreconditionFailed):
        engine.execute("T-1", late, expected_version=1)
    assert [e.kind for e in store.read("T-1")] == ["report", "route"]
