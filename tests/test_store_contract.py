"""The store contract (fireflow.testing.store_contract) on memory, SQLite and PostgreSQL.

The PostgreSQL backend runs against a real server the tests start themselves
(tests/pg.py); each store is a fresh schema of that server.  Also here: what only
PostgreSQL has (connection strings, the schema version table, typed errors for a
server that is down) and the same appends giving the same heads and checkpoint in
SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from store_workers.schema1 import schema1_store

from fireflow.errors import InvalidArgument
from fireflow.store import MemoryStore, SQLiteStore, StoreError, StoreNotFound, checkpoint, verify
from fireflow.store.base import EventStore, StoredRow
from fireflow.testing.store_contract import (
    AT,
    HeadRowContract,
    ReaderContract,
    StoreBackend,
    StoreContract,
    TamperContract,
    contract_event,
    contract_history,
)

# --------------------------------------------------------------------------- #
# Backends


class MemoryBackend(StoreBackend):
    tampering = True

    def create(self) -> EventStore:
        return MemoryStore()

    def tamper(self, store, position, column, value):
        assert isinstance(store, MemoryStore)
        rows: list[StoredRow] = store._rows
        rows[position] = attrs.evolve(rows[position], **{column: value})


class SQLiteBackend(StoreBackend):
    readers = True
    tampering = True

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.n = 0

    def create(self) -> EventStore:
        self.n += 1
        return SQLiteStore(self.directory / f"s{self.n}.db")

    def open_again(self, store):
        return SQLiteStore(store.path, create=False)

    def open_reader(self, store):
        return SQLiteStore(store.path, readonly=True)

    def tamper(self, store, position, column, value):
        con = sqlite3.connect(store.path, isolation_level=None)
        try:
            con.execute(f"UPDATE events SET {column} = ? WHERE position = ?", (value, position))
        finally:
            con.close()

    head_rows = True

    def tamper_head(self, store, next_position, global_hash):
        con = sqlite3.connect(store.path, isolation_level=None)
        try:
            con.execute(
                "UPDATE fireflow_head SET next = ?, global_hash = ?", (next_position, global_hash)
            )
        finally:
            con.close()


class PostgresBackend(StoreBackend):
    readers = True
    tampering = True

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self.conninfo = conninfo
        self.schemas: list[str] = []

    def create(self) -> EventStore:
        from fireflow.store.postgres import PostgresStore

        self.schemas.append(fresh_schema())
        return PostgresStore(self.conninfo, schema=self.schemas[-1])

    def open_again(self, store):
        from fireflow.store.postgres import PostgresStore

        return PostgresStore(self.conninfo, schema=store.schema, create=False)

    def open_reader(self, store):
        from fireflow.store.postgres import PostgresStore

        return PostgresStore(self.conninfo, schema=store.schema, readonly=True)

    def tamper(self, store, position, column, value):
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.events SET {} = %s WHERE position = %s").format(
                    sql.Identifier(store.schema), sql.Identifier(column)
                ),
                (value, position),
            )

    head_rows = True

    def tamper_head(self, store, next_position, global_hash):
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.fireflow_head SET next = %s, global_hash = %s").format(
                    sql.Identifier(store.schema)
                ),
                (next_position, global_hash),
            )

    def close_all(self) -> None:
        super().close_all()
        for schema in self.schemas:
            drop_schema(self.conninfo, schema)


class TestMemoryStore(StoreContract, TamperContract):
    @pytest.fixture
    def backend(self) -> Iterator[StoreBackend]:
        b = MemoryBackend()
        yield b
        b.close_all()


class TestSQLiteStore(StoreContract, TamperContract, HeadRowContract, ReaderContract):
    @pytest.fixture
    def backend(self, tmp_path) -> Iterator[StoreBackend]:
        b = SQLiteBackend(tmp_path)
        yield b
        b.close_all()


class SQLiteSchema1Backend(SQLiteBackend):
    """Files made before schema 2 (a UNIQUE index on every event id), used as they are."""

    def create(self) -> EventStore:
        self.n += 1
        return schema1_store(self.directory / f"s{self.n}.db")


class TestSQLiteSchema1Store(StoreContract, TamperContract, HeadRowContract, ReaderContract):
    @pytest.fixture
    def backend(self, tmp_path) -> Iterator[StoreBackend]:
        b = SQLiteSchema1Backend(tmp_path)
        yield b
        b.close_all()


class TestPostgresStore(StoreContract, TamperContract, HeadRowContract, ReaderContract):
    @pytest.fixture
    def backend(self, pg_server) -> Iterator[StoreBackend]:  # noqa: F811 (the fixture)
        b = PostgresBackend(pg_server)
        yield b
        b.close_all()


# --------------------------------------------------------------------------- #
# PostgreSQL specifics


@pytest.fixture
def pg(pg_server) -> Iterator[tuple[str, str]]:  # noqa: F811 (the fixture)
    schema = fresh_schema()
    yield pg_server, schema
    drop_schema(pg_server, schema)


def _pg_store(pg, **kw):
    from fireflow.store.postgres import PostgresStore

    return PostgresStore(pg[0], schema=pg[1], **kw)


def test_sqlite_and_postgres_give_the_same_rows_heads_and_checkpoint(pg, tmp_path):
    batches = [
        ("CL-1", 0, contract_history("CL-1", 3)),
        ("长乐-2", 0, contract_history("长乐-2", 2)),
        ("CL-1", 3, contract_history("CL-1", 5)[3:]),
    ]
    with SQLiteStore(tmp_path / "s.db") as lite, _pg_store(pg) as server:
        for store in (lite, server):
            for tid, v, events in batches:
                store.append(tid, events, v)
        assert list(lite.rows()) == list(server.rows())
        assert [lite.head(t) for t in ("CL-1", "长乐-2")] == [
            server.head(t) for t in ("CL-1", "长乐-2")
        ]
        assert checkpoint(lite, AT) == checkpoint(server, AT)
        # export from one, import into the other: the same chain heads
        with _pg_store((pg[0], pg[1] + "_copy")) as copy:
            for s in lite.read_all():
                copy.append(s.event.ticket_id, [s.event], s.event.seq - 1)
            assert checkpoint(copy, AT) == checkpoint(lite, AT)
        drop_schema(pg[0], pg[1] + "_copy")


def test_the_schema_is_versioned_and_a_newer_one_refused(pg):
    import psycopg
    from psycopg import sql

    from fireflow.store.postgres import SCHEMA_VERSION, SchemaTooNew

    with _pg_store(pg) as store:
        assert store.schema_version() == SCHEMA_VERSION == 2
        store.append("T1", contract_history("T1", 1), 0)
    with _pg_store(pg) as store:  # opened again: nothing recreated, nothing lost
        assert store.count() == 1
    with psycopg.connect(pg[0], autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.fireflow_schema SET version = 3").format(sql.Identifier(pg[1]))
        )
    for kw in ({}, {"readonly": True}):
        with pytest.raises(SchemaTooNew) as info:
            _pg_store(pg, **kw)
        assert (info.value.found, info.value.supported) == (3, 2)
        assert isinstance(info.value, StoreError)


def test_readers_and_create_false_never_create_tables(pg):
    import psycopg

    for kw in ({"readonly": True}, {"create": False}):
        with pytest.raises(StoreNotFound):
            _pg_store(pg, **kw)
    with psycopg.connect(pg[0]) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (pg[1],)
        ).fetchone()
    assert found == (0,)


def test_a_read_only_session_is_enforced_by_the_server(pg):
    with _pg_store(pg) as writer:
        writer.append("T1", contract_history("T1", 1), 0)
    with _pg_store(pg, readonly=True) as reader:
        with pytest.raises(StoreError):  # bypass the store's own refusal: the server refuses too
            reader._run(lambda: reader._conn.execute("DELETE FROM " + pg[1] + ".events"))
        assert reader.count() == 1


def test_a_server_that_is_down_or_refuses_is_a_typed_error(tmp_path, pg):
    from fireflow.store.postgres import StoreUnavailable

    with pytest.raises(StoreUnavailable) as info:
        _pg_store((f"host={tmp_path} port=1 user=postgres dbname=x connect_timeout=2", "s"))
    assert info.value.field == "conninfo"
    assert "password" not in str(info.value)
    with pytest.raises(StoreUnavailable):  # the server answers, the database is not there
        _pg_store((pg[0] + " dbname=no_such_database", pg[1]))
    # the connection goes away under the store
    store = _pg_store(pg)
    import psycopg

    with psycopg.connect(pg[0], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
    with pytest.raises(StoreUnavailable):
        store.append("T1", contract_history("T1", 1), 0)
    store.close()


def test_connection_string_from_the_environment(pg, monkeypatch):
    from fireflow.store.postgres import PostgresStore

    monkeypatch.setenv("FIREFLOW_DATABASE_URL", pg[0])
    with PostgresStore(schema=pg[1]) as store:
        assert store.count() == 0
    monkeypatch.delenv("FIREFLOW_DATABASE_URL")
    with pytest.raises(InvalidArgument) as info:
        PostgresStore(schema=pg[1])
    assert info.value.field == "conninfo"
    for bad in ("Fireflow", "a;drop", "1x", "x" * 64, ""):
        with pytest.raises(InvalidArgument) as info:
            PostgresStore(pg[0], schema=bad)
        assert info.value.field == "schema"


def test_many_processes_create_the_schema_once_and_append_without_loss(pg):
    """Threads, each with its own connection, racing to create the tables and append."""
    from fireflow.store.postgres import PostgresStore

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        try:
            barrier.wait()
            with PostgresStore(pg[0], schema=pg[1]) as s:
                for seq, e in enumerate(contract_history(f"W{i}", 6), start=1):
                    s.append(f"W{i}", [e], seq - 1)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with _pg_store(pg, readonly=True) as reader:
        assert reader.count() == 24
        assert verify(reader).ok


def test_an_append_that_waits_too_long_for_the_global_lock_is_busy(pg):
    """Another transaction holds the chain-head row: the append gives up, typed, writing nothing."""
    import psycopg
    from psycopg import sql

    from fireflow.store import StoreBusy

    with _pg_store(pg, lock_timeout_ms=200) as store:
        store.append("T1", contract_history("T1", 1), 0)
        with psycopg.connect(pg[0]) as other:  # a transaction, left open
            other.execute(
                sql.SQL("SELECT next FROM {}.fireflow_head FOR UPDATE").format(
                    sql.Identifier(pg[1])
                )
            )
            with pytest.raises(StoreBusy):
                store.append("T2", contract_history("T2", 1), 0)
            other.rollback()
        assert store.count() == 1
        store.append("T2", contract_history("T2", 1), 0)  # the store still works
        assert verify(store).ok
    for bad in (0, True, "1s"):
        with pytest.raises(InvalidArgument) as info:
            _pg_store(pg, lock_timeout_ms=bad)
        assert info.value.field == "lock_timeout_ms"


_RACER = """
import sys
from datetime import datetime, timezone
from fireflow.events import Actor, Event
from fireflow.store.errors import ConcurrencyConflict
from fireflow.store.postgres import PostgresStore

AT = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)

conninfo, schema, worker, wins = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.stdin.readline()  # start together
won = conflicts = 0
with PostgresStore(conninfo, schema=schema, create=False) as store:
    while won < wins:
        v = store.version("RACE")
        e = Event(f"RACE/{worker}/{won}", "RACE", v + 1, "rectify", AT, Actor("property"))
        try:
            store.append("RACE", [e], v)
            won += 1
        except ConcurrencyConflict:
            conflicts += 1
print(won, conflicts)
"""


def test_writer_processes_racing_on_one_ticket_have_one_winner_per_version(pg):
    """Three processes append to one ticket, each re-reading after a conflict: no version twice."""
    import subprocess
    import sys

    with _pg_store(pg):
        pass  # the tables, created once
    workers, wins = 3, 8
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, pg[0], pg[1], str(i), str(wins)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    outs = [p.communicate("go\n", timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * workers, [err for _, err in outs]
    assert [int(out.split()[0]) for out, _ in outs] == [wins] * workers
    with _pg_store(pg, readonly=True) as reader:
        events = reader.read("RACE")
        assert [e.seq for e in events] == list(range(1, workers * wins + 1))
        assert len({e.event_id for e in events}) == workers * wins
        assert verify(reader).ok


def test_an_older_schema_is_upgraded_by_a_writer_and_refused_by_a_reader(pg, monkeypatch):
    """The upgrade path, with a made-up version 3 (an extra index) standing in for the next;
    then a version 1 store (no append functions) upgraded to the current version."""
    from fireflow.store import postgres

    with _pg_store(pg) as store:
        store.append("T1", contract_history("T1", 2), 0)
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", 3)
    monkeypatch.setitem(
        postgres._UPGRADES, 2, ("CREATE INDEX events_at_v3 ON {s}.events (ticket_id, position)",)
    )
    with pytest.raises(StoreError) as info:
        _pg_store(pg, readonly=True)
    assert "upgrade" in str(info.value)
    with _pg_store(pg) as store:
        assert store.schema_version() == 3
        assert store.count() == 2
        assert verify(store).ok
    monkeypatch.undo()
    with pytest.raises(postgres.SchemaTooNew):  # the older fireflow refuses the upgraded store
        _pg_store(pg)


def test_a_version_1_store_gets_the_append_functions_on_upgrade(pg):
    import psycopg
    from psycopg import sql

    with _pg_store(pg) as store:
        store.append("T1", contract_history("T1", 2), 0)
    s = sql.Identifier(pg[1])
    with psycopg.connect(pg[0], autocommit=True) as conn:  # back to what version 1 was
        conn.execute(sql.SQL("DROP FUNCTION {}.fireflow_lock()").format(s))
        conn.execute(sql.SQL("DROP FUNCTION {}.fireflow_append").format(s))
        conn.execute(sql.SQL("UPDATE {}.fireflow_schema SET version = 1").format(s))
    with _pg_store(pg) as store:
        assert store.schema_version() == 2
        store.append("T1", [contract_event("T1", 3)], 2)
        assert store.count() == 3
        assert verify(store).ok
