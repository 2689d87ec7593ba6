"""Verified history opened once (fireflow.history): any open store, decoded from exactly the
rows that verified; the one opener of a store by URL (fireflow.store.transfer.open_store)."""

from __future__ import annotations

import sqlite3

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fireflow import Ticket, load_plan
from fireflow.errors import InvalidArgument
from fireflow.events import Event
from fireflow.history import RecordingStore, verified_history, verified_rows
from fireflow.service.engine import Engine
from fireflow.sim.calibrate import read_log
from fireflow.store import MemoryStore, SQLiteStore
from fireflow.store.errors import StoreNotFound, VerificationFailed
from fireflow.store.transfer import open_store, opened
from fireflow.testing.strategies import event_sequences


def _filled(histories: list[tuple[Event, ...]]) -> MemoryStore:
    store = MemoryStore()
    for events in histories:
        if events:
            store.append(events[0].ticket_id, list(events), 0)
    return store


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.integers(1, 4).flatmap(lambda i: event_sequences(ticket_id=f"T{i}", max_commands=6)),
        max_size=3,
        unique_by=lambda e: e[0].ticket_id if e else "",
    )
)
def test_verified_history_is_the_store_as_read(histories):
    store = _filled(histories)
    stored = list(store.read_all())
    h = verified_history(store)
    assert h.events == [s.event for s in stored]
    assert h.positions == [s.position for s in stored]
    assert h.heads == {t: store.head(t) for t in store.tickets()}
    assert h.report.ok
    assert h.report.count == len(stored)
    # the service and calibration read the same history
    assert read_log(store) == h.events
    assert Engine(store, Engine.plan_named("changle-2022")).verified_history() == h


def test_verified_rows_are_the_rows_verify_read():
    store = MemoryStore()
    report, rows = verified_rows(store)
    assert report.ok
    assert rows == []
    assert RecordingStore(store).integrity_check() == ["ok"]  # no integrity_check: ok


def _one_ticket() -> list[Event]:
    # a report in the first phase of the plan (二(一), 2022-03-21), routed, with its deadline
    t = Ticket("CL-1", load_plan("changle-2022"))
    at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    t.command("report", at, "town", community="金峰小区", town="金峰镇",
              category="evacuation_blocked", subtype="goods", location="inside",
              source="town_inspection")  # fmt: skip
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    return list(t.events)


def test_a_tampered_store_gives_no_history(tmp_path):
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.append("CL-1", _one_ticket(), 0)
        assert [e.kind for e in verified_history(store).events] == [
            "report",
            "route",
            "set_deadline",
        ]
    con = sqlite3.connect(db)
    con.execute("UPDATE events SET data = CAST('{}' AS BLOB) WHERE position = 2")
    con.commit()
    con.close()
    with SQLiteStore(db, readonly=True) as store, pytest.raises(VerificationFailed):
        verified_history(store)
    with pytest.raises(VerificationFailed):
        read_log(db)  # calibration refuses it the same way


def test_open_store_opens_by_url(tmp_path):
    db = tmp_path / "new.db"
    with pytest.raises(InvalidArgument, match="url"):
        open_store("", readonly=True)
    with pytest.raises(StoreNotFound):  # never created unless asked
        open_store(str(db), readonly=True)
    store = open_store(str(db), readonly=False, create=True)
    assert isinstance(store, SQLiteStore)
    store.close()
    with opened(str(db), readonly=True) as again:
        assert list(again.read_all()) == []
