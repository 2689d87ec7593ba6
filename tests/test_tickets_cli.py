"""``fireflow tickets``: the ticket index from the command line, on SQLite and PostgreSQL.

What it answers (the same as the library's index), what it writes (only the index
tables of an SQLite store; nothing at all with ``--readonly``), and hostile options:
each a documented exit status, one escaped error line, no traceback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from store_workers.histories import history, ticket_id

from fireflow.cli import main
from fireflow.store import SQLiteStore
from fireflow.views import TicketIndex

N = 15  # tickets: three of each template history


@pytest.fixture
def store_path(tmp_path) -> Path:
    path = tmp_path / "changle.db"
    with SQLiteStore(path) as store:
        for k in range(N):
            store.append(ticket_id(k), history(k), 0)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tickets", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def events_of(path: Path) -> list[tuple[object, ...]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute("SELECT * FROM events ORDER BY position").fetchall()
    finally:
        con.close()


def test_lists_tickets_like_the_library_and_writes_only_index_tables(capsys, store_path):
    before = events_of(store_path)
    code, out, err = run(
        capsys, "--store", str(store_path), "--town", "金峰镇", "--state", "rectifying", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    with SQLiteStore(store_path, readonly=True) as reader, TicketIndex(reader) as index:
        index.catch_up()
        expected = [r.to_data() for r in index.tickets(town="金峰镇", state="rectifying")]
    assert data["tickets"] == expected
    assert expected  # the refusal and building templates end rectifying
    assert data["position"] == len(before)
    assert data["temporary"] is False
    assert data["truncated"] is False
    assert events_of(store_path) == before  # not one event row changed
    con = sqlite3.connect(store_path)
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert names == {
        "events",
        "fireflow_head",
        "fireflow_meta",
        "fireflow_index_meta",
        "fireflow_index_tickets",
        "fireflow_index_states",
        "fireflow_index_counts",
        "fireflow_index_open",
        "fireflow_index_agencies",
    }
    # the index stays in the file: the next call folds only what is new
    with SQLiteStore(store_path, create=False) as store:
        store.append(ticket_id(N), history(N), 0)
        assert TicketIndex(store).position == len(before)
    code, out, _ = run(capsys, "--store", str(store_path), "--json", "--limit", "1")
    assert code == 0
    data = json.loads(out)
    assert data["position"] == len(before) + len(history(N))
    assert data["truncated"] is True
    assert len(data["tickets"]) == 1


def test_readonly_changes_no_byte_and_creates_no_file(capsys, store_path):
    before = store_path.read_bytes()
    code, out, err = run(
        capsys,
        "--store",
        str(store_path),
        "--readonly",
        "--overdue-at",
        "2022-12-01T00:00:00+08:00",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["temporary"] is True
    assert data["tickets"]
    assert all(t["state"] in ("rectifying", "rectified", "overdue") for t in data["tickets"])
    assert store_path.read_bytes() == before
    assert sorted(p.name for p in store_path.parent.iterdir()) == ["changle.db"]


def test_filters_and_tables(capsys, store_path):
    code, out, _ = run(capsys, "--store", str(store_path), "--agency", "planning", "--json")
    assert code == 0
    cats = {t["category"] for t in json.loads(out)["tickets"]}
    assert cats == {"spacing_illegal_building"}  # planning certifies (R-ROUTE-BUILDING)
    code, out, _ = run(
        capsys, "--store", str(store_path), "--due-from", "2022-03-01", "--due-to", "2022-03-31"
    )
    assert code == 0
    assert "工单 Tickets" in out
    assert "ticket(s)" in out
    code, out, _ = run(capsys, "--store", str(store_path), "--counts")
    assert code == 0
    assert "隐患 open" in out
    assert "金峰小区" in out
    code, out, _ = run(capsys, "--store", str(store_path), "--counts", "--json")
    data = json.loads(out)
    assert sum(c["tickets"] for c in data["counts"]) == N
    code, out, _ = run(capsys, "--store", str(store_path), "--open", "--rebuild", "--json")
    assert code == 0
    assert {t["state"] for t in json.loads(out)["tickets"]} <= {
        "rectifying",
        "passed",
        "reinspection_requested",
        "rectified",
        "overdue",
    }


def test_the_database_url_from_the_environment(capsys, store_path, monkeypatch):
    monkeypatch.setenv("FIREFLOW_DATABASE_URL", str(store_path))
    code, out, _ = run(capsys, "--json", "--community", "金峰小区", "--limit", "2")
    assert code == 0
    assert len(json.loads(out)["tickets"]) == 2


def test_postgresql(capsys, pg_server):  # noqa: F811 (the fixture)
    from fireflow.store.postgres import PostgresStore

    schema = fresh_schema()
    try:
        with PostgresStore(pg_server, schema=schema) as store:
            for k in range(N):
                store.append(ticket_id(k), history(k), 0)
        code, out, err = run(
            capsys, "--store", pg_server, "--schema", schema, "--state", "rectifying", "--json"
        )
        assert code == 0, err
        data = json.loads(out)
        assert data["temporary"] is False
        assert data["tickets"]
        code, out2, err = run(
            capsys,
            "--store",
            pg_server,
            "--schema",
            schema,
            "--state",
            "rectifying",
            "--json",
            "--readonly",
        )
        assert code == 0, err
        assert json.loads(out2)["tickets"] == data["tickets"]
        assert json.loads(out2)["temporary"] is True
        code, out, err = run(capsys, "--store", pg_server, "--schema", "Bad-Schema")
        assert code == 1
        assert "schema" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        drop_schema(pg_server, schema)


HOSTILE = [
    (("--town", "金峰镇\x1b[2J"), 2, "--town"),
    (("--town", "金峰\u202e镇"), 2, "--town"),
    (("--town", ""), 2, "--town"),
    (("--community", "小区\u200b"), 2, "--community"),
    (("--community", "x" * 5000), 2, "--community"),
    (("--state", "closed"), 2, "--state"),
    (("--state", "rectifying'; DROP TABLE events; --"), 2, "--state"),
    (("--agency", "fire\x07"), 2, "--agency"),
    (("--category", "\udc80"), 2, "--category"),
    (("--due-from", "2022-13-01"), 2, "--due-from"),
    (("--due-to", "tomorrow"), 2, "--due-to"),
    (("--due-from", "2022-04-01", "--due-to", "2022-03-01"), 2, "--due-to"),
    (("--overdue-at", "2022-12-01T00:00:00"), 2, "--overdue-at"),
    (("--overdue-at", "9" * 5000), 2, "--overdue-at"),
    (("--limit", "0"), 2, "--limit"),
    (("--limit", "99999999999"), 2, "--limit"),
    (("--plan", "no-such-plan"), 1, None),
]


@pytest.mark.parametrize(("args", "code", "field"), HOSTILE)
def test_hostile_options(capsys, store_path, args, code, field):
    before = events_of(store_path)
    got, out, err = run(capsys, "--store", str(store_path), *args)
    assert got == code, err
    assert "Traceback" not in err
    assert "\x1b" not in err
    assert "\u202e" not in err
    assert len(err.strip().splitlines()) == 1
    if field:
        assert field in err
    assert out == ""
    assert events_of(store_path) == before


@pytest.mark.parametrize(
    ("store", "code", "expect"),
    [
        ("{missing}", 1, "no event store"),
        ("{folder}", 1, "folder"),
        ("{empty}", 1, "empty"),
        ("{not_sqlite}", 1, ""),
        ("{foreign}", 1, "not a fireflow event store"),
        ("host=/nonexistent/socket dbname=x connect_timeout=2", 1, "unavailable"),
        ("postgresql://", 1, ""),
    ],
)
def test_hostile_stores(capsys, tmp_path, store, code, expect):
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.db").write_bytes(b"")
    (tmp_path / "junk.db").write_bytes(b"\x00\xff" * 600)
    con = sqlite3.connect(tmp_path / "foreign.db")
    con.execute("CREATE TABLE t (x)")
    con.close()
    files = {
        "missing": tmp_path / "nope.db",
        "folder": tmp_path / "folder",
        "empty": tmp_path / "empty.db",
        "not_sqlite": tmp_path / "junk.db",
        "foreign": tmp_path / "foreign.db",
    }
    target = store.format(**{k: str(v) for k, v in files.items()})
    got, out, err = run(capsys, "--store", target)
    assert got == code, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert expect.lower() in err.lower()
    assert out == ""


def test_no_store_at_all_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("FIREFLOW_DATABASE_URL", raising=False)
    code, out, err = run(capsys, "--town", "金峰镇")
    assert code == 2
    assert "FIREFLOW_DATABASE_URL" in err
    assert out == ""
