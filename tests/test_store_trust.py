"""Trust at the store's edges (issue 23): restored stores, rows no append could write, copies.

* A consumer running while its store is restored from an older backup, and new
  events appended, stops with ``CheckpointMismatch`` naming both chain hashes; it
  never delivers the new history's events at the positions it reuses (SQLite,
  PostgreSQL, memory).
* A row with valid hashes that no append could have written (a 120 KB
  description, a field no event has, a control character) is refused by every
  reader as ``CorruptRecord`` naming the field, and ``verify`` reports it.
* Hostile consumer checkpoints and ``subscribe(after=)`` are typed errors.
* ``copy_store`` / ``fireflow store copy``: SQLite → PostgreSQL → SQLite gives the
  same rows, the same checkpoint, and a consumer's checkpoint stays valid.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from typer.testing import CliRunner

from fireflow.cli.store import store_app
from fireflow.errors import InputLimitExceeded, InvalidArgument
from fireflow.events import canonical_bytes, event_to_data
from fireflow.store import (
    CheckpointMismatch,
    Consumer,
    CorruptRecord,
    FileCheckpoint,
    MemoryStore,
    SQLiteStore,
    StoreUnavailable,
    checkpoint,
    subscribe,
    verify,
)
from fireflow.store.base import EventStore
from fireflow.store.chain import global_link, ticket_link
from fireflow.store.subscription import MAX_POSITION
from fireflow.store.transfer import copy_store
from fireflow.testing.store_contract import contract_event, contract_history

AT = datetime(2022, 12, 12, 17, tzinfo=timezone(timedelta(hours=8)))


# --------------------------------------------------------------------------- #
# Restored from an older backup under a running consumer


def _restore_sqlite(path: Path, backup: Path) -> None:
    """Copy ``backup`` into ``path`` with SQLite's backup API (an operator's backup or restore,
    seen by the connections that have the file open)."""
    src = sqlite3.connect(backup)
    dst = sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def restorable(request, tmp_path) -> Iterator[tuple[EventStore, object, object]]:
    """A store, a function taking a backup, and one restoring it under running readers."""
    if request.param == "memory":
        store = MemoryStore()
        saved: list[object] = []

        def mem_backup() -> None:
            saved[:] = [
                list(store._rows),
                list(store._events),
                {k: list(v) for k, v in store._by_ticket.items()},
                dict(store._by_id),
            ]

        def mem_restore() -> None:
            rows, events, by_ticket, by_id = saved
            with store._lock:
                store._rows[:] = rows  # type: ignore[index]
                store._events[:] = events  # type: ignore[index]
                store._by_ticket.clear()
                store._by_ticket.update(by_ticket)  # type: ignore[arg-type]
                store._by_id.clear()
                store._by_id.update(by_id)  # type: ignore[arg-type]

        yield store, mem_backup, mem_restore
        return
    if request.param == "sqlite":
        path, backup = tmp_path / "s.db", tmp_path / "backup.db"
        store = SQLiteStore(path)

        yield store, lambda: _restore_sqlite(backup, path), lambda: _restore_sqlite(path, backup)
        store.close()
        return
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    from fireflow.store.postgres import PostgresStore

    conninfo = request.getfixturevalue("pg_server")
    schema = fresh_schema()
    store = PostgresStore(conninfo, schema=schema)
    s = sql.Identifier(schema)

    def pg_backup() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.backup").format(s))
            conn.execute(sql.SQL("CREATE TABLE {}.backup AS SELECT * FROM {}.events").format(s, s))

    def pg_restore() -> None:  # what pg_restore of the older dump leaves behind
        with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute(sql.SQL("DELETE FROM {}.events").format(s))
            conn.execute(sql.SQL("INSERT INTO {}.events SELECT * FROM {}.backup").format(s, s))
            conn.execute(
                sql.SQL(
                    "UPDATE {}.fireflow_head SET next = (SELECT count(*) FROM {}.events), "
                    "global_hash = (SELECT global_hash FROM {}.events ORDER BY position DESC "
                    "LIMIT 1)"
                ).format(s, s, s)
            )

    yield store, pg_backup, pg_restore
    store.close()
    drop_schema(conninfo, schema)


def test_a_running_consumer_stops_when_its_store_is_restored_and_appended_to(restorable, tmp_path):
    store, backup, restore = restorable
    store.append("A", contract_history("A", 5), 0)
    backup()  # the older backup: 5 events
    store.append("B", contract_history("B", 5), 0)
    consumer = Consumer(store, "hotline", FileCheckpoint(tmp_path / "c.json"))
    running = consumer.events(idle_timeout=30, poll_interval=0.01)
    seen = []
    for _ in range(10):
        se = next(running)
        consumer.commit(se)
        seen.append(se)
    restore()  # positions 5..9 are gone
    # another history is appended at the reused positions 5..12
    store.append("C", contract_history("C", 8), 0)
    with pytest.raises(CheckpointMismatch) as info:
        next(running)  # never C's events at positions 10, 11, 12
    err = info.value
    assert (err.name, err.position, err.expected) == ("hotline", 9, seen[-1].global_hash)
    assert err.found is not None and err.found != err.expected  # noqa: PT018
    assert err.found[:12] in str(err)
    assert err.expected[:12] in str(err)
    # a restart from the checkpoint is refused too
    with pytest.raises(CheckpointMismatch) as again:
        Consumer(store, "hotline", FileCheckpoint(tmp_path / "c.json"))
    assert again.value.position == 9


def test_a_restored_store_with_fewer_events_stops_the_consumer(restorable, tmp_path):
    store, backup, restore = restorable
    store.append("A", contract_history("A", 3), 0)
    backup()
    store.append("B", contract_history("B", 3), 0)
    running = subscribe(store, idle_timeout=30, poll_interval=0.01)
    assert [next(running).position for _ in range(6)] == list(range(6))
    restore()
    with pytest.raises(CheckpointMismatch, match="holds 3 events") as info:
        next(running)
    assert info.value.name is None and info.value.position == 5  # noqa: PT018


def test_subscribe_after_a_position_anchors_on_the_event_there():
    store = MemoryStore()
    store.append("A", contract_history("A", 3), 0)
    running = subscribe(store, after=1, idle_timeout=30, poll_interval=0.01)
    assert next(running).position == 2
    # the store is swapped for another history under the subscriber
    other = MemoryStore()
    other.append("Z", contract_history("Z", 5), 0)
    with store._lock:
        store._rows[:] = other._rows
        store._events[:] = other._events
    with pytest.raises(CheckpointMismatch) as info:
        next(running)
    assert info.value.position == 2


# --------------------------------------------------------------------------- #
# Rows no append could have written, with valid hashes


def _forge(path: Path, data: bytes, ticket_id: str, seq: int, event_id: str) -> None:
    """Append a hand-made row with both chains recomputed (a forger with write access)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        last = con.execute(
            "SELECT position, global_hash FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        head = con.execute(
            "SELECT ticket_hash FROM events WHERE ticket_id = ? ORDER BY seq DESC LIMIT 1",
            (ticket_id,),
        ).fetchone()
        position = last[0] + 1
        t_hash = ticket_link(head[0] if head else "0" * 64, data)
        g_hash = global_link(last[1], data)
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (position, ticket_id, seq, event_id, data, t_hash, g_hash),
        )
    finally:
        con.close()


def _row(**changes: object) -> bytes:
    data = event_to_data(contract_event("F", 1))
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer][inner] = value
        else:
            data[key] = value
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (_row(payload={"description": "楼" * 40_000}), "data.payload"),  # 120 KB
        (_row(extra="archive"), "data.extra"),
        (_row(**{"actor.role": "owner"}), "data.actor.role"),
        (_row(**{"actor.person": "陈\x1b[2J"}), "data.actor.person"),
        (_row(payload={"note": "a\x07b"}), "data.payload.note"),
        (_row(kind="archive_all"), "data.kind"),
        (_row(ticket_id="F\u202e"), "data.ticket_id"),
    ],
)
def test_a_consistent_row_no_append_could_write_is_corrupt_everywhere(tmp_path, data, field):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.append("A", contract_history("A", 2), 0)
        cp = checkpoint(store, AT)
    row = json.loads(data)
    _forge(path, data, row["ticket_id"], 1, row["event_id"])
    with SQLiteStore(path, readonly=True) as store:
        report = verify(store)
        assert not report.ok
        (problem,) = [p for p in report.problems if p.what == "decode"]
        assert problem.position == 2 and field in problem.detail  # noqa: PT018
        assert not verify(store, cp).ok  # the checkpoint does not vouch for it either
        with pytest.raises(CorruptRecord) as info:
            list(store.read_all())
        assert (info.value.position, info.value.field) == (2, field)
        if field != "data.ticket_id":  # (read() refuses such an id as its argument)
            with pytest.raises(CorruptRecord):
                store.read(row["ticket_id"])


def test_every_row_an_append_wrote_reads_back(tmp_path):
    """The read-back checks refuse nothing an append stored (the contract's histories)."""
    with SQLiteStore(tmp_path / "s.db") as store:
        for k, tid in enumerate(("A", "金峰小区-1", "B")):
            store.append(tid, contract_history(tid, 3 + k), 0)
        assert verify(store).ok
        assert [canonical_bytes(se.event) for se in store.read_all()] == [
            r.data for r in store.rows()
        ]


# --------------------------------------------------------------------------- #
# Hostile consumer checkpoints and positions


def _checkpoint_text(position: object) -> bytes:
    return json.dumps(
        {
            "format": "fireflow.consumer/1",
            "name": "c",
            "position": position,
            "global_hash": "0" * 64,
            "event_id": "A/1",
        }
    ).encode()


@pytest.mark.parametrize(
    ("content", "error", "field"),
    [
        (_checkpoint_text(2**63), InputLimitExceeded, "checkpoint.position"),
        (_checkpoint_text(10**30), InputLimitExceeded, "checkpoint.position"),
        (b"[" * 2000 + b"]" * 2000, InvalidArgument, "checkpoint"),
        (b'{"a":' * 800 + b"1" + b"}" * 800, InvalidArgument, "checkpoint"),
        (
            _checkpoint_text(0).replace(b'"0000', b'"ZZZZ'),
            InvalidArgument,
            "checkpoint.global_hash",
        ),
    ],
)
def test_hostile_checkpoint_contents_are_typed_errors(tmp_path, content, error, field):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        Consumer(MemoryStore(), "c", FileCheckpoint(path))
    assert info.value.field == field


def test_a_dangling_symlink_checkpoint_is_refused_not_read_as_none(tmp_path):
    store = MemoryStore()
    store.append("A", contract_history("A", 3), 0)
    link = tmp_path / "c.json"
    link.symlink_to(tmp_path / "gone.json")
    with pytest.raises(InvalidArgument, match="symbolic link") as info:
        Consumer(store, "c", FileCheckpoint(link))
    assert info.value.field == "checkpoint"


@pytest.mark.parametrize("after", [2**63, 2**63 + 5, 10**40])
def test_subscribe_after_past_the_largest_position_is_refused(after):
    with pytest.raises(InputLimitExceeded) as info:
        subscribe(MemoryStore(), after=after)
    assert info.value.field == "after"
    assert MAX_POSITION == 2**63 - 1
    assert list(subscribe(MemoryStore(), after=MAX_POSITION, idle_timeout=0.01)) == []


# --------------------------------------------------------------------------- #
# Copies: SQLite -> PostgreSQL -> SQLite


def test_copy_sqlite_to_postgres_to_sqlite_keeps_chains_and_checkpoints(tmp_path, pg_server):  # noqa: F811
    from fireflow.store.postgres import PostgresStore

    first, last = tmp_path / "first.db", tmp_path / "last.db"
    schema = fresh_schema()
    try:
        with SQLiteStore(first) as src:
            for k in range(30):
                tid = f"CL-{k:03d}"
                src.append(tid, contract_history(tid, 1 + k % 4), 0)
            src.append("CL-000", [contract_event("CL-000", 2)], 1)
            cp = checkpoint(src, AT)
            consumer = Consumer(src, "hotline", FileCheckpoint(tmp_path / "c.json"))
            for se in consumer.events(idle_timeout=0.01):
                if se.position == 40:
                    consumer.commit(se)
                    break
            rows = list(src.rows())
        with (
            SQLiteStore(first, readonly=True) as src,
            PostgresStore(pg_server, schema=schema) as mid,
        ):
            copy_store(src, mid)
            assert checkpoint(mid, AT) == cp
        with (
            PostgresStore(pg_server, schema=schema, readonly=True) as mid,
            SQLiteStore(last) as dst,
        ):
            report = copy_store(mid, dst)
            assert report.ok and checkpoint(dst, AT) == cp  # noqa: PT018
            assert list(dst.rows()) == rows
            resumed = Consumer(dst, "hotline", FileCheckpoint(tmp_path / "c.json"))
            assert resumed.after == 40
            assert next(resumed.events(idle_timeout=0.01)).position == 41
            with pytest.raises(InvalidArgument) as info:
                copy_store(mid, dst)  # only into an empty store
            assert info.value.field == "destination"
    finally:
        drop_schema(pg_server, schema)


def test_store_copy_command_copies_and_refuses_a_non_empty_destination(tmp_path):
    src, dst = tmp_path / "src.db", tmp_path / "dst.db"
    with SQLiteStore(src) as store:
        store.append("A", contract_history("A", 3), 0)
    runner = CliRunner()
    result = runner.invoke(store_app, ["copy", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    assert "3 条事件" in result.output
    with SQLiteStore(src, readonly=True) as a, SQLiteStore(dst, readonly=True) as b:
        assert list(a.rows()) == list(b.rows())
    result = runner.invoke(store_app, ["copy", str(src), str(dst)])
    assert result.exit_code == 1 and "destination" in result.output  # noqa: PT018
    result = runner.invoke(store_app, ["copy", str(tmp_path / "missing.db"), str(dst)])
    assert result.exit_code == 1
    assert not (tmp_path / "missing.db").exists()


class _GoneStore(MemoryStore):
    """A store whose server is away for good."""

    def read_all(self, from_position: int = 0):  # type: ignore[override]
        raise StoreUnavailable("postgresql db/x (schema fireflow)", "connection refused")


def test_a_subscription_gives_up_after_the_bounded_reconnects(monkeypatch):
    from fireflow.store import subscription

    monkeypatch.setattr(subscription, "RECONNECT_ATTEMPTS", 3)
    calls: list[int] = []
    store = _GoneStore()
    real = store.read_all

    def counting(from_position: int = 0):
        calls.append(from_position)
        return real(from_position)

    store.read_all = counting  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable, match="数据库服务器不可用"):
        list(subscribe(store, poll_interval=0.001))
    assert len(calls) == 4  # the first read and three more after reopening


# --------------------------------------------------------------------------- #
# PostgreSQL: a foreign schema is refused untouched; version 0 is typed


def _tables(conninfo: str, schema: str) -> list[str]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                (schema,),
            )
        ]


@pytest.mark.parametrize("kw", [{}, {"create": False}, {"readonly": True}])
def test_postgres_refuses_another_applications_schema_untouched(pg_server, kw):  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    from fireflow.store.postgres import ForeignSchema, PostgresStore

    schema = fresh_schema()
    try:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            s = sql.Identifier(schema)
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(s))
            conn.execute(sql.SQL("CREATE TABLE {}.events (id int, what text)").format(s))
            conn.execute(sql.SQL("INSERT INTO {}.events VALUES (1, 'theirs')").format(s))
        with pytest.raises(ForeignSchema) as info:
            PostgresStore(pg_server, schema=schema, **kw)
        assert info.value.field == "schema"
        assert "events" in str(info.value)
        assert _tables(pg_server, schema) == ["events"]
    finally:
        drop_schema(pg_server, schema)


@pytest.mark.parametrize("version", [0, -3])
def test_postgres_schema_version_below_one_is_a_typed_error(pg_server, version):  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    from fireflow.store.postgres import ForeignSchema, PostgresStore

    schema = fresh_schema()
    try:
        PostgresStore(pg_server, schema=schema).close()
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.fireflow_schema SET version = %s").format(
                    sql.Identifier(schema)
                ),
                (version,),
            )
        for kw in ({}, {"readonly": True}):
            with pytest.raises(ForeignSchema) as info:
                PostgresStore(pg_server, schema=schema, **kw)
            assert info.value.field == "fireflow_schema.version"
    finally:
        drop_schema(pg_server, schema)


def test_an_older_sqlite_file_without_a_head_row_verifies_and_gets_one_from_a_writer(tmp_path):
    path = tmp_path / "old.db"
    with SQLiteStore(path) as store:
        store.append("A", contract_history("A", 3), 0)
        last = list(store.rows())[-1]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TABLE fireflow_head")  # as an older fireflow wrote it
    con.close()
    with SQLiteStore(path, readonly=True) as reader:
        assert reader.head_row() is None
        assert verify(reader).ok
    with SQLiteStore(path, create=False) as writer:
        assert writer.head_row() == (3, last.global_hash)
        writer.append("A", [contract_event("A", 4)], 3)
        assert writer.head_row() == (4, list(writer.rows())[-1].global_hash)
        assert verify(writer).ok


def test_verify_of_a_store_that_is_being_appended_to_finds_nothing_wrong(tmp_path):
    """The head row moves on while verify reads the rows: that is not a moved head."""
    import threading

    path = tmp_path / "live.db"
    SQLiteStore(path).close()
    done = threading.Event()

    def write() -> None:
        with SQLiteStore(path, retry_seed=1) as writer:
            for k in range(150):
                writer.append(f"L{k}", contract_history(f"L{k}", 2), 0)
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    reports = []
    with SQLiteStore(path, create=False) as reader:
        while not done.is_set():
            reports.append(verify(reader))
        reports.append(verify(reader))
    thread.join(60)
    assert all(r.ok for r in reports), [r.problems for r in reports if not r.ok][:1]
    assert reports[-1].count == 300


def test_store_copy_command_to_and_from_postgres(tmp_path, pg_server):  # noqa: F811
    from fireflow.store.postgres import PostgresStore

    src, back = tmp_path / "src.db", tmp_path / "back.db"
    schema = fresh_schema()
    with SQLiteStore(src) as store:
        for k in range(5):
            store.append(f"CL-{k}", contract_history(f"CL-{k}", 3), 0)
        cp = checkpoint(store, AT)
    runner = CliRunner()
    try:
        result = runner.invoke(store_app, ["copy", str(src), pg_server, "--schema", schema])
        assert result.exit_code == 0, result.output
        with PostgresStore(pg_server, schema=schema, readonly=True) as mid:
            assert checkpoint(mid, AT) == cp
        result = runner.invoke(
            store_app, ["copy", pg_server, str(back), "--schema", schema, "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["global_head"] == cp.global_head
        with SQLiteStore(back, readonly=True) as copy:
            assert checkpoint(copy, AT) == cp
    finally:
        drop_schema(pg_server, schema)
