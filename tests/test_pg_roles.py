"""Least privileges on a real PostgreSQL server: an append-only role cannot rewrite history.

Each role gets exactly what ``PostgresStore.grants_sql`` prints (the statements
docs/deploying.md shows); then, logged in as that role:

* the **writer** appends and reads through :class:`PostgresStore`, and the chains
  verify; ``UPDATE``, ``DELETE`` and ``TRUNCATE`` of the events (and ``DROP``,
  and changing the schema version) fail with a permission error;
* the **reader** reads and verifies, and cannot append;
* the **indexer** keeps the ticket index up to date, and cannot touch the events.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from store_workers.histories import history, ticket_id

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from fireflow.errors import InvalidArgument  # noqa: E402
from fireflow.store import StoreError, checkpoint, verify  # noqa: E402
from fireflow.store.postgres import PostgresStore  # noqa: E402
from fireflow.views import TicketIndex  # noqa: E402

_n = itertools.count(1)


@pytest.fixture
def deployment(pg_server) -> Iterator[tuple[str, str, dict[str, str]]]:  # noqa: F811 (the fixture)
    """A store and its index created by the owner, and three roles granted as documented."""
    schema = fresh_schema()
    suffix = f"{schema}_{next(_n)}"
    roles = {access: f"{access}_{suffix}" for access in ("writer", "reader", "indexer")}
    with PostgresStore(pg_server, schema=schema) as owner:
        owner.append(ticket_id(0), history(0), 0)
        TicketIndex(owner).catch_up()  # the owner creates the index tables
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for access, role in roles.items():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            for stmt in PostgresStore.grants_sql(role, access=access, schema=schema).splitlines():
                conn.execute(stmt.encode())
    conninfo = {access: make_conninfo(pg_server, user=role) for access, role in roles.items()}
    yield schema, pg_server, conninfo
    drop_schema(pg_server, schema)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for role in roles.values():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def refused(conninfo: str, schema: str, statement: str) -> None:
    """``statement`` (with ``{s}`` for the schema) fails for lack of privilege."""
    with (
        psycopg.connect(conninfo, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(sql.SQL(statement).format(s=sql.Identifier(schema)))


REWRITES = (
    "UPDATE {s}.events SET data = data WHERE position = 0",
    "UPDATE {s}.events SET global_hash = 'x'",
    "DELETE FROM {s}.events",
    "DELETE FROM {s}.events WHERE position = 0",
    "TRUNCATE {s}.events",
    "DROP TABLE {s}.events",
    "ALTER TABLE {s}.events DISABLE TRIGGER ALL",
    "UPDATE {s}.fireflow_schema SET version = 99",
    "DELETE FROM {s}.fireflow_head",
    "TRUNCATE {s}.fireflow_head",
    # the head cannot be moved, nor a row put at the next position by hand (it would block
    # every later append until the owner repaired it)
    "UPDATE {s}.fireflow_head SET next = next + 1",
    "UPDATE {s}.fireflow_head SET global_hash = 'x'",
    "SELECT * FROM {s}.fireflow_head FOR UPDATE",
    "INSERT INTO {s}.events SELECT position + 1000, ticket_id, seq, event_id || 'x', data, "
    "ticket_hash, global_hash FROM {s}.events",
    "INSERT INTO {s}.events VALUES (999, 'T', 1, 'T/1', '\\x7b7d', 'x', 'y')",
    "ALTER FUNCTION {s}.fireflow_lock() SECURITY INVOKER",
    "DROP FUNCTION {s}.fireflow_lock()",
)


def test_the_writer_appends_and_reads_but_cannot_rewrite_history(deployment):
    schema, owner_url, urls = deployment
    with PostgresStore(urls["writer"], schema=schema) as store:
        results = [store.append(ticket_id(k), history(k), 0) for k in range(1, 6)]
        assert all(not r.replayed for r in results)
        assert store.read(ticket_id(3)) == list(history(3))
        assert verify(store).ok
        before = checkpoint(store, history(0)[0].at)
    for statement in REWRITES:
        refused(urls["writer"], schema, statement)
    with PostgresStore(owner_url, schema=schema, readonly=True) as check:
        assert verify(check, before).ok  # nothing the writer tried changed a byte
        assert check.count() == before.count


def test_the_reader_reads_and_cannot_append(deployment):
    schema, _, urls = deployment
    with PostgresStore(urls["reader"], schema=schema, readonly=True) as store:
        assert verify(store).ok
        assert store.read(ticket_id(0)) == list(history(0))
    with PostgresStore(urls["reader"], schema=schema) as store:  # read-write session, no grant
        with pytest.raises(StoreError, match="permission denied"):
            store.append(ticket_id(9), history(9), 0)
        assert store.count() == len(history(0))
    for statement in ("INSERT INTO {s}.events SELECT * FROM {s}.events", *REWRITES):
        refused(urls["reader"], schema, statement)


def test_the_indexer_keeps_the_index_and_cannot_touch_the_events(deployment):
    schema, owner_url, urls = deployment
    with PostgresStore(owner_url, schema=schema) as owner:
        owner.append(ticket_id(1), history(1), 0)
    with PostgresStore(urls["indexer"], schema=schema) as store:
        index = TicketIndex(store)
        assert not index.temporary
        assert index.catch_up() == len(history(1))
        assert index.count() == 2
        assert index.rebuild() == len(history(0)) + len(history(1))
    for statement in REWRITES:
        refused(urls["indexer"], schema, statement)
    refused(urls["indexer"], schema, "INSERT INTO {s}.events SELECT * FROM {s}.events")


def test_the_writer_cannot_create_tables_it_was_not_given(deployment, pg_server):  # noqa: F811
    _, _, urls = deployment
    other = fresh_schema()
    try:
        with pytest.raises(StoreError, match="permission denied"):
            PostgresStore(urls["writer"], schema=other)  # no CREATE on the database
    finally:
        drop_schema(pg_server, other)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"role": "Robert'); DROP TABLE events; --"}, "role"),
        ({"role": ""}, "role"),
        ({"role": "w", "schema": 'x"; DROP'}, "schema"),
        ({"role": "w", "access": "owner"}, "access"),
    ],
)
def test_grants_sql_refuses_what_is_not_a_plain_name(kwargs, field):
    with pytest.raises(InvalidArgument) as info:
        PostgresStore.grants_sql(**kwargs)
    assert info.value.field == field


def test_no_role_is_granted_a_rewrite():
    for access in ("writer", "reader", "indexer"):
        text = PostgresStore.grants_sql("r", access=access)
        for line in text.splitlines():
            if ".events" in line or "fireflow_schema" in line:
                for verb in ("UPDATE", "DELETE", "TRUNCATE", "ALL"):
                    assert verb not in line.split(" ON ")[0], line


def test_a_row_forged_through_the_writers_function_is_caught_by_verify(deployment):
    """The append function is the writer's one way in: it computes positions and hashes
    itself, so what the writer can forge is content, and readers and verify refuse content
    no append could write (a 120 KB description, a field no event has)."""
    import json

    from fireflow.events import event_to_data
    from fireflow.store import CorruptRecord

    schema, owner_url, urls = deployment
    data = event_to_data(history(7)[0])
    data["payload"] = {"description": "楼" * 40_000}
    row = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    with psycopg.connect(urls["writer"], autocommit=True) as conn:
        got = conn.execute(
            sql.SQL("SELECT * FROM {}.fireflow_append(%s, %s, %s, %s, %s)").format(
                sql.Identifier(schema)
            ),
            ([data["ticket_id"]], [1], [data["event_id"]], [row], schema),
        ).fetchall()
        assert got[0][0] == len(history(0))  # the function chose the position
        with pytest.raises(psycopg.errors.RaiseException, match="does not follow"):
            conn.execute(  # a seq that does not follow the ticket's is refused
                sql.SQL("SELECT * FROM {}.fireflow_append(%s, %s, %s, %s, %s)").format(
                    sql.Identifier(schema)
                ),
                (["T-gap"], [5], ["T-gap/5"], [row], schema),
            )
    with PostgresStore(owner_url, schema=schema, readonly=True) as check:
        report = verify(check)
        assert [p.what for p in report.problems] == ["decode"]
        assert "data.payload" in report.problems[0].detail
        with pytest.raises(CorruptRecord) as info:
            list(check.read_all())
        assert info.value.field == "data.payload"
