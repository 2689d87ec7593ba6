"""The ticket index (fireflow.views.tickets) on memory, SQLite and PostgreSQL.

The property: an index caught up incrementally, in any interleaving of appends and
catch-ups of any size, holds exactly what an index rebuilt from scratch holds, and
both hold ``fold_all`` of the log (the engine's own states).  Hand-picked cases:
the overdue boundary (the end of the due day, 24:00 Asia/Shanghai, the instant the
engine starts to accept ``mark_overdue``), the queries, hostile filters, and an
index that meets another history than the one it was built from.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)

from fireflow import Ticket, load_plan
from fireflow.errors import FireflowError, InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.events import Event
from fireflow.model import Command
from fireflow.store import MemoryStore, SQLiteStore
from fireflow.store.base import EventStore
from fireflow.testing.strategies import event_sequences
from fireflow.ticket import decide, fold, fold_all
from fireflow.views.tickets import (
    OPEN_STATES,
    IndexOutOfStep,
    IndexRefused,
    TicketIndex,
    _authorized,
)

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
AT = datetime(2022, 3, 21, 10, tzinfo=SH)
DAY = timedelta(days=1)


def opened(tid: str, town: str = "金峰镇", community: str = "金峰小区", **kw: object) -> Ticket:
    """A ticket reported, routed and given its deadline (rectifying)."""
    t = Ticket(tid, PLAN)
    t.command(
        "report", AT, "town", "李", community=community, town=town,
        category=kw.get("category", "evacuation_blocked"), subtype=kw.get("subtype", "goods"),
        location=kw.get("location", "inside"), source="town_inspection",
    )  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    return t


def closed(tid: str, town: str, community: str) -> Ticket:
    t = opened(tid, town, community)
    t.command("rectify", AT + DAY, "property", "陈经理")
    t.command("apply_reinspection", AT + DAY, "property")
    t.command(
        "recheck_pass", AT + DAY, "town", participants=[{"agency": "housing", "person": "张"}]
    )
    t.command(
        "sign_off", AT + 2 * DAY, "town", "王", signers=[{"agency": "housing", "person": "张"}]
    )
    return t


# --------------------------------------------------------------------------- #
# Backends


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request, tmp_path):
    made: list[EventStore] = []
    schemas: list[str] = []
    conninfo = request.getfixturevalue("pg_server") if request.param == "postgres" else None

    def make() -> EventStore:
        if request.param == "memory":
            store: EventStore = MemoryStore()
        elif request.param == "sqlite":
            store = SQLiteStore(tmp_path / f"s{len(made)}.db")
        else:
            from fireflow.store.postgres import PostgresStore

            schemas.append(fresh_schema())
            store = PostgresStore(conninfo, schema=schemas[-1])
        made.append(store)
        return store

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for s in made:
        close = getattr(s, "close", None)
        if close:
            close()
    for schema in schemas:
        drop_schema(conninfo, schema)


def everything(index: TicketIndex) -> tuple[object, ...]:
    """What the index answers, as plain data."""
    return (
        index.position,
        index.states(),
        index.tickets(),
        index.counts(),
        index.open_hazards(),
        {tid: index.agencies(tid) for tid in index.states()},
    )


# --------------------------------------------------------------------------- #
# The property


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[tuple[Event, ...]], list[tuple[str, int]]]:
    n = draw(st.integers(1, 4), label="tickets")
    hist = [
        draw(event_sequences(PLAN, ticket_id=f"T{i}", max_commands=8), label=f"T{i}")
        for i in range(n)
    ]
    ops = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("append"), st.integers(0, n - 1)),
                st.tuples(st.just("catch_up"), st.integers(1, 6)),
                st.tuples(st.just("catch_up"), st.just(0)),
            ),
            max_size=30,
        ),
        label="ops",
    )
    return hist, [(op, int(arg)) for op, arg in ops]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=schedules(), batch=st.integers(1, 3))
def test_incremental_equals_rebuilt_equals_fold(make_store, case, batch):
    hist, ops = case
    store = make_store()
    index = TicketIndex(store, plan=PLAN)
    done = [0] * len(hist)

    def append(i: int) -> None:
        events = hist[i][done[i] : done[i] + batch]
        if events:
            store.append(f"T{i}", events, done[i])
            done[i] += len(events)

    for op, arg in ops:
        if op == "append":
            append(arg)
        else:
            index.catch_up(arg or None)
    for i in range(len(hist)):  # the rest, then the last catch-up
        while done[i] < len(hist[i]):
            append(i)
    index.catch_up()
    with TicketIndex(store, plan=PLAN, temporary=True) as fresh:
        fresh.rebuild()
        assert everything(index) == everything(fresh)
    expected = fold_all(se.event for se in store.read_all())
    assert index.states() == dict(sorted(expected.items()))
    # the counts kept incrementally equal the counts of the folded states
    counts: dict[tuple[str, str], int] = {}
    opens: dict[tuple[str, str], int] = {}
    for ts in expected.values():
        counts[ts.town, ts.state] = counts.get((ts.town, ts.state), 0) + 1
        if ts.state in OPEN_STATES:
            opens[ts.town, ts.community] = opens.get((ts.town, ts.community), 0) + 1
    assert index.counts() == sorted((t, s, n) for (t, s), n in counts.items())
    assert sorted(index.open_hazards()) == sorted((t, c, n) for (t, c), n in opens.items())
    assert index.position == store.count()
    for tid, events in enumerate(hist):
        if events:
            assert index.state(f"T{tid}") == fold(events)


# --------------------------------------------------------------------------- #
# Queries


@pytest.fixture
def district(make_store):
    """Five tickets in two towns: open, overdue-to-be, signed off, and an illegal building."""
    store = make_store()
    tickets = [
        opened("A1", "金峰镇", "金峰小区"),
        opened("A2", "金峰镇", "海景花园"),
        closed("A3", "金峰镇", "金峰小区"),
        opened("B1", "航城街道", "航城新村", category="fire_lane_vehicle", subtype="private_car"),
        opened(
            "B2",
            "航城街道",
            "航城新村",
            category="spacing_illegal_building",
            subtype="structure",
            location="around",
        ),
    ]
    for t in tickets:
        store.append(t.id, t.events, 0)
    index = TicketIndex(store, plan=PLAN)
    index.catch_up()
    return store, index, {t.id: t for t in tickets}


def ids(rows) -> list[str]:
    return [r.ticket_id for r in rows]


def test_queries_by_town_community_state_agency(district):
    _, index, tickets = district
    assert ids(index.tickets(town="金峰镇")) == ["A1", "A2", "A3"]
    assert ids(index.tickets(town="金峰镇", state="rectifying")) == ["A1", "A2"]
    assert ids(index.tickets(community="航城新村")) == ["B1", "B2"]
    assert ids(index.tickets(state="signed_off")) == ["A3"]
    assert ids(index.tickets(category="fire_lane_vehicle")) == ["B1"]
    # route agencies: the planning bureau certifies illegal buildings (R-ROUTE-BUILDING)
    assert ids(index.tickets(agency="planning")) == ["B2"]
    assert ("certifier", "planning") in index.agencies("B2")
    routing = tickets["B1"].state.routing
    assert routing is not None
    for agency in routing.enforcers:
        assert "B1" in ids(index.tickets(agency=agency))
    assert index.tickets(town="没有这个镇") == []
    assert ids(index.tickets(limit=2)) == ["A1", "A2"]


def test_counts_and_open_hazards(district):
    _, index, _ = district
    assert index.counts() == [
        ("航城街道", "rectifying", 2),
        ("金峰镇", "rectifying", 2),
        ("金峰镇", "signed_off", 1),
    ]
    assert index.counts(town="金峰镇") == [("金峰镇", "rectifying", 2), ("金峰镇", "signed_off", 1)]
    # A3 is signed off: no longer an open hazard (R-TKT-SIGNOFF)
    assert index.open_hazards() == [
        ("航城街道", "航城新村", 2),
        ("金峰镇", "海景花园", 1),
        ("金峰镇", "金峰小区", 1),
    ]
    assert ids(index.tickets(open_only=True)) == ["A1", "A2", "B1", "B2"]


def test_due_range_and_overdue_boundary_agree_with_the_engine(district):
    store, index, tickets = district
    a1 = tickets["A1"].state
    assert a1.deadline is not None
    end = PLAN.calendar.due_instant(a1.deadline)  # 24:00 Asia/Shanghai of the due day
    assert end.hour == 0
    assert end.utcoffset() == timedelta(hours=8)
    # the deadline stays on a signed-off ticket (A3): the range is about deadline days
    assert ids(index.tickets(due_from=a1.deadline, due_to=a1.deadline, town="金峰镇")) == [
        "A1",
        "A2",
        "A3",
    ]
    assert index.tickets(due_to=a1.deadline - DAY) == []
    just_before = end - timedelta(microseconds=1)
    assert index.overdue(just_before) == []
    assert "A1" in ids(index.overdue(end))

    # exactly the instants where the engine accepts mark_overdue
    def accepted(at: datetime) -> bool:
        try:
            decide(
                a1,
                Command(kind="mark_overdue", ticket_id="A1", at=at, actor={"agency": "town"}),
                PLAN,
            )
        except FireflowError:
            return False
        return True

    assert not accepted(just_before)
    assert accepted(end)
    # signed-off tickets are never overdue; an overdue-marked one always is
    assert "A3" not in ids(index.overdue(end + 100 * DAY))
    t = Ticket("A2", PLAN, tickets["A2"].events)
    new = t.command("mark_overdue", end + DAY, "town")
    store.append("A2", new, len(tickets["A2"].events))
    index.catch_up()
    assert index.get("A2").state == "overdue"
    assert "A2" in ids(index.overdue(AT))  # marked overdue: overdue at any instant asked
    assert ids(index.overdue(end, town="金峰镇")) == ["A1", "A2"]


def test_row_data_is_json_ready(district):
    _, index, _ = district
    row = index.get("A1")
    assert row is not None
    data = row.to_data()
    assert data["town"] == "金峰镇"
    assert data["due_at"].endswith("+00:00")
    assert index.get("nope") is None
    assert index.state("nope") is None


# --------------------------------------------------------------------------- #
# Hostile input


@pytest.mark.parametrize(
    ("filters", "error", "field"),
    [
        ({"town": "金峰镇\x1b[31m"}, InvalidArgument, "town"),
        ({"town": ""}, InvalidArgument, "town"),
        ({"town": 3}, InvalidArgument, "town"),
        ({"community": "金峰\u202e小区"}, InvalidArgument, "community"),
        ({"community": "x" * 10_000}, InputLimitExceeded, "community"),
        ({"state": "closed"}, InvalidArgument, "state"),
        ({"state": "rectifying' OR 1=1 --"}, InvalidArgument, "state"),
        ({"agency": "fire\x00"}, InputLimitExceeded, "agency"),
        ({"agency": ["fire"]}, InvalidArgument, "agency"),
        ({"category": ""}, InvalidArgument, "category"),
        ({"due_from": "2022-03-01"}, InvalidArgument, "due_from"),
        ({"due_to": datetime(2022, 3, 1, tzinfo=SH)}, InvalidArgument, "due_to"),
        ({"due_from": date(2022, 4, 1), "due_to": date(2022, 3, 1)}, InvalidArgument, "due_to"),
        ({"overdue_at": datetime(2022, 4, 1)}, NaiveDatetime, "overdue_at"),  # noqa: DTZ001 (naive on purpose)
        ({"overdue_at": "2022-04-01T00:00:00+08:00"}, InvalidArgument, "overdue_at"),
        ({"limit": 0}, InvalidArgument, "limit"),
        ({"limit": True}, InvalidArgument, "limit"),
        ({"limit": 10**9}, InputLimitExceeded, "limit"),
        ({"open_only": "yes"}, InvalidArgument, "open_only"),
    ],
)
def test_bad_filters_are_typed_errors_naming_the_filter(filters, error, field):
    with TicketIndex(MemoryStore(), plan=PLAN) as index:
        with pytest.raises(error) as info:
            index.tickets(**filters)
        assert info.value.field == field


def test_bad_arguments():
    store = MemoryStore()
    with pytest.raises(InvalidArgument) as info:
        TicketIndex(object())  # type: ignore[arg-type]
    assert info.value.field == "store"
    with pytest.raises(InvalidArgument) as info:
        TicketIndex(store, plan="changle-2022")  # type: ignore[arg-type]
    assert info.value.field == "plan"
    with pytest.raises(InvalidArgument) as info:
        TicketIndex(store, temporary=False)
    assert info.value.field == "temporary"
    index = TicketIndex(store)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidArgument) as info:
            index.catch_up(bad)  # type: ignore[arg-type]
        assert info.value.field == "max_events"
    with pytest.raises(InvalidArgument):
        index.overdue(datetime(2022, 4, 1))  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(InvalidArgument) as info:
        index.get("\x1b")
    assert info.value.field == "ticket_id"


def test_filters_are_parameters_never_sql(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    t = opened("X'; DROP TABLE events; --", town="金峰镇", community="x'); DELETE FROM events; --")
    store.append(t.id, t.events, 0)
    index = TicketIndex(store, plan=PLAN)
    index.catch_up()
    assert ids(index.tickets(community="x'); DELETE FROM events; --")) == [t.id]
    assert store.count() == 3
    store.close()


# --------------------------------------------------------------------------- #
# Where the index lives, and an index that meets another history


def test_sqlite_index_lives_in_the_store_file_and_resumes(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        t = opened("A1")
        store.append("A1", t.events[:2], 0)
        index = TicketIndex(store, plan=PLAN)
        assert not index.temporary
        assert index.catch_up() == 2
        store.append("A1", t.events[2:], 2)
    with SQLiteStore(path, create=False) as store:  # another process, later
        index = TicketIndex(store, plan=PLAN)
        assert index.position == 2
        assert index.catch_up() == 1
        assert index.get("A1").state == "rectifying"
        names = {r[0] for r in store._conn.execute("SELECT name FROM sqlite_master")}
        assert {"fireflow_index_meta", "fireflow_index_tickets", "events"} <= names


def test_a_read_only_store_gets_a_temporary_index_and_keeps_its_bytes(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        t = opened("A1")
        store.append("A1", t.events, 0)
    before = path.read_bytes()
    with SQLiteStore(path, readonly=True) as reader:
        with pytest.raises(InvalidArgument) as info:
            TicketIndex(reader, plan=PLAN, temporary=False)
        assert info.value.field == "temporary"
        with TicketIndex(reader, plan=PLAN) as index:
            assert index.temporary
            assert index.catch_up() == 3
            assert ids(index.tickets(state="rectifying")) == ["A1"]
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_while_the_index_writes_the_events_table_cannot_be_written(tmp_path):
    with SQLiteStore(tmp_path / "s.db") as store:
        store.append("A1", opened("A1").events, 0)
        with _authorized(store._conn):
            for stmt in ("DELETE FROM events", "UPDATE events SET seq = 9", "DROP TABLE events"):
                with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
                    store._conn.execute(stmt)
        assert store.count() == 3


def test_another_history_is_out_of_step_and_rebuild_recovers(tmp_path):
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    t = opened("A1")
    store.append("A1", t.events, 0)
    index = TicketIndex(store, plan=PLAN)
    index.catch_up()
    # someone rewrites the last event's chain hash behind the store's back
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("UPDATE events SET global_hash = ? WHERE position = 2", ("f" * 64,))
    raw.close()
    with pytest.raises(IndexOutOfStep) as info:
        index.catch_up()
    assert info.value.position == 3
    assert index.rebuild() == 3
    assert index.get("A1").state == "rectifying"
    store.close()


def test_an_index_built_under_another_plan_is_out_of_step(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.append("A1", opened("A1").events, 0)
    TicketIndex(store, plan=PLAN).catch_up()
    other = PLAN.model_copy(update={"id": "changle-2022-b"})
    index = TicketIndex(store, plan=other)
    with pytest.raises(IndexOutOfStep, match="plan"):
        index.catch_up()
    assert index.rebuild() == 3
    store.close()


def test_an_event_the_engine_refuses_is_reported_and_nothing_moves():
    store = MemoryStore()
    t = opened("A1")
    store.append("A1", t.events, 0)
    bad = attrs.evolve(t.events[0], event_id="B1/1", ticket_id="B1", kind="archive")
    store.append("B1", [bad], 0)
    index = TicketIndex(store, plan=PLAN)
    with pytest.raises(IndexRefused) as info:
        index.catch_up()
    assert info.value.position == 3
    assert info.value.ticket_id == "B1"
    assert index.position == 0  # the chunk is one transaction
    assert index.catch_up(3) == 3  # up to the bad event
    with pytest.raises(type(info.value.cause)):  # what fold says of that history
        fold([bad])


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(request, tmp_path):
    """A store that several handles (connections) can share."""
    if request.param == "sqlite":
        store: EventStore = SQLiteStore(tmp_path / "shared.db")
        yield store, lambda: SQLiteStore(tmp_path / "shared.db", create=False)
        store.close()
        return
    from fireflow.store.postgres import PostgresStore

    conninfo = request.getfixturevalue("pg_server")
    schema = fresh_schema()
    store = PostgresStore(conninfo, schema=schema)
    yield store, lambda: PostgresStore(conninfo, schema=schema)
    store.close()
    drop_schema(conninfo, schema)


def test_concurrent_catch_ups_never_fold_an_event_twice(shared_store):
    store, open_again = shared_store
    writer_done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(40):
                t = opened(f"W{i:02d}", town=("金峰镇", "航城街道")[i % 2])
                store.append(t.id, t.events, 0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer_done.set()

    def index_loop() -> None:
        try:
            with open_again() as other:
                index = TicketIndex(other, plan=PLAN)
                while not writer_done.is_set():
                    index.catch_up(7)
                index.catch_up()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=index_loop) for _ in range(2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    index = TicketIndex(store, plan=PLAN)
    index.catch_up()
    with TicketIndex(store, plan=PLAN, temporary=True) as fresh:
        fresh.catch_up()
        assert everything(index) == everything(fresh)
    assert index.count() == 40


def test_the_views_benchmark_runs_small_and_checks_its_index(tmp_path):
    """benchmarks/bench_views.py at a tiny size (no duration is asserted)."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_views.py"), "--tickets", "200",
         "--lag-samples", "4", "--json"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(root), "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sqlite = json.loads(proc.stdout)["backends"]["sqlite"]
    assert sqlite["states_ok"] is True
    assert sqlite["count_ok"] is True
    assert all(lag["delivered_once_in_order"] for lag in sqlite["lag"])
    assert sqlite["queries"]["get(ticket)"]["rows"] == 1
    assert list(tmp_path.iterdir()) == []  # its files are removed
