"""Pages of the ticket index: ``tickets(limit=, offset=)`` and ``overdue(at, limit=, offset=)``.

The property: for any instant, filter, limit and offset, a page is exactly the slice
``[offset:offset + limit]`` of the plain answer, which is itself the plain Python
sort (code-point order of ticket ids) of the rows the overdue rule keeps
(R-ESC-OVERDUE: ``overdue`` already, or ``rectifying``/``rectified`` at or past the
end of the due day).  On SQLite and memory stores under hypothesis; on PostgreSQL
on hand-picked pages.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)

from fireflow import Ticket, load_plan
from fireflow.errors import InputLimitExceeded, InvalidArgument
from fireflow.store import MemoryStore, SQLiteStore
from fireflow.store.base import EventStore
from fireflow.views.tickets import MAX_LIMIT, OVERDUE_SOURCES, TicketIndex, TicketRow

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
START = datetime(2022, 3, 21, 10, tzinfo=SH)  # a Monday of the rectification phase
DAY = timedelta(days=1)
TOWNS = ("金峰镇", "航城街道", "潭头镇")
# ids whose code-point order is not their insertion order nor their numeric order
IDS = [f"{p}{n}" for n in (1, 2, 10, 9, 33) for p in ("T-", "a-", "金-", "Z")]


def _ticket(i: int, tid: str) -> Ticket:
    """Ticket ``i``: reported on day ``i % 9``; some rectified, some marked overdue, some closed."""
    at = START + (i % 9) * DAY
    t = Ticket(tid, PLAN)
    t.command(
        "report", at, "town", "李", community=f"小区{i % 4}", town=TOWNS[i % 3],
        category="evacuation_blocked", subtype="goods", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    deadline = t.state.deadline
    assert deadline is not None
    end = PLAN.calendar.due_instant(deadline)
    kind = i % 5
    if kind == 1:  # marked overdue the day after its due day
        t.command("mark_overdue", end + DAY, "town")
    elif kind == 2:  # rectified, not yet applied for the re-check: overdue after its day too
        t.command("rectify", at, "property", "陈经理")
    elif kind == 3:  # closed: never overdue
        t.command("rectify", at, "property", "陈经理")
        t.command("apply_reinspection", at, "property")
        t.command(
            "recheck_pass", at + DAY, "town", participants=[{"agency": "housing", "person": "张"}]
        )
        t.command(
            "sign_off", at + DAY, "town", "王", signers=[{"agency": "housing", "person": "张"}]
        )
    return t


def _fill(store: EventStore) -> TicketIndex:
    for i, tid in enumerate(IDS):
        t = _ticket(i, tid)
        store.append(t.id, t.events, 0)
    index = TicketIndex(store, plan=PLAN)
    index.catch_up()
    return index


@pytest.fixture(scope="module", params=["memory", "sqlite"])
def index(request, tmp_path_factory):
    store: EventStore
    if request.param == "memory":
        store = MemoryStore()
    else:
        store = SQLiteStore(tmp_path_factory.mktemp("pages") / "s.db")
    idx = _fill(store)
    yield idx
    idx.close()
    close = getattr(store, "close", None)
    if close:
        close()


def _plain_overdue(rows: list[TicketRow], at: datetime) -> list[TicketRow]:
    """The overdue rule on plain rows, sorted in Python (the reference answer)."""
    kept = [
        r
        for r in rows
        if r.state == "overdue"
        or (r.state in OVERDUE_SOURCES and r.due_at is not None and r.due_at <= at)
    ]
    return sorted(kept, key=lambda r: r.ticket_id)


def test_the_district_has_every_kind_of_row(index):
    states = {r.state for r in index.tickets()}
    assert {"overdue", "rectifying", "rectified", "signed_off"} <= states
    at = START + 12 * DAY
    assert 0 < len(index.overdue(at)) < len(IDS)
    assert [r.ticket_id for r in index.tickets()] == sorted(IDS)  # code-point order


@settings(max_examples=150, deadline=None)
@given(
    days=st.integers(-2, 20),
    limit=st.integers(1, len(IDS) + 3),
    offset=st.integers(0, len(IDS) + 3),
    town=st.sampled_from([None, *TOWNS]),
)
def test_an_overdue_page_is_the_slice_of_the_plain_sort(index, days, limit, offset, town):
    at = START + days * DAY + timedelta(hours=days % 7)
    filters = {} if town is None else {"town": town}
    everything = index.tickets(**filters)
    plain = _plain_overdue(everything, at)
    assert index.overdue(at, **filters) == plain
    page = index.overdue(at, limit=limit, offset=offset, **filters)
    assert page == plain[offset : offset + limit]
    assert index.overdue(at, offset=offset, **filters) == plain[offset:]
    assert index.tickets(limit=limit, offset=offset, **filters) == everything[offset:][:limit]


def test_pages_walk_the_whole_answer_once(index):
    at = START + 15 * DAY
    whole = index.overdue(at)
    pages: list[TicketRow] = []
    for offset in range(0, len(whole) + 3, 3):
        pages += index.overdue(at, limit=3, offset=offset)
    assert pages == whole
    assert index.overdue(at, limit=3, offset=len(whole)) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"offset": -1}, InvalidArgument, "offset"),
        ({"offset": True}, InvalidArgument, "offset"),
        ({"offset": 1.0}, InvalidArgument, "offset"),
        ({"offset": "3"}, InvalidArgument, "offset"),
        ({"offset": MAX_LIMIT + 1}, InputLimitExceeded, "offset"),
        ({"limit": 0, "offset": 2}, InvalidArgument, "limit"),
    ],
)
def test_bad_offsets_are_typed_errors_naming_the_field(kwargs, error, field):
    with TicketIndex(MemoryStore(), plan=PLAN) as idx:
        with pytest.raises(error) as info:
            idx.overdue(START, **kwargs)
        assert info.value.field == field


def test_postgres_pages_are_the_same_slices(pg_server):  # noqa: F811 (the fixture)
    from fireflow.store.postgres import PostgresStore

    schema = fresh_schema()
    store = PostgresStore(pg_server, schema=schema)
    try:
        with _fill(store) as idx:
            for days in (0, 5, 12, 20):
                at = START + days * DAY
                plain = _plain_overdue(idx.tickets(), at)
                assert idx.overdue(at) == plain
                for limit, offset in ((1, 0), (3, 2), (5, 0), (4, len(plain) - 1), (2, 99)):
                    assert idx.overdue(at, limit=limit, offset=offset) == plain[offset:][:limit]
                assert idx.overdue(at, offset=2) == plain[2:]
    finally:
        store.close()
        drop_schema(pg_server, schema)
