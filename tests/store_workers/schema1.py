"""An SQLite store file as fireflow made it before schema 2 (``fireflow.store/1``).

Schema 1 kept a ``UNIQUE`` index on every event id.  The tables below are that
schema word for word; :func:`schema1_store` makes such a file and opens it with
today's :class:`~fireflow.store.SQLiteStore`, which must use it as it is.
"""

from __future__ import annotations

import os
import sqlite3

from fireflow.store import SQLiteStore
from fireflow.store.chain import GENESIS

SCHEMA_1_TABLES = (
    """CREATE TABLE fireflow_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE events (
        position    INTEGER PRIMARY KEY CHECK (position >= 0),
        ticket_id   TEXT NOT NULL,
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        event_id    TEXT NOT NULL UNIQUE,
        data        BLOB NOT NULL,
        ticket_hash TEXT NOT NULL,
        global_hash TEXT NOT NULL,
        UNIQUE (ticket_id, seq)
    )""",
    """CREATE TABLE fireflow_head (
        one         INTEGER PRIMARY KEY CHECK (one = 1),
        next        INTEGER NOT NULL CHECK (next >= 0),
        global_hash TEXT NOT NULL
    )""",
)


def make_schema1_file(path: str | os.PathLike[str]) -> None:
    """An empty schema-1 store file at ``path`` (WAL, as fireflow made them)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = WAL")
        for statement in SCHEMA_1_TABLES:
            con.execute(statement)
        con.execute("INSERT INTO fireflow_meta (key, value) VALUES ('schema', 'fireflow.store/1')")
        con.execute(
            "INSERT INTO fireflow_head (one, next, global_hash) VALUES (1, 0, ?)", (GENESIS,)
        )
    finally:
        con.close()


def schema1_store(path: str | os.PathLike[str]) -> SQLiteStore:
    """A fresh schema-1 file, opened by today's store."""
    make_schema1_file(path)
    store = SQLiteStore(path, create=False)
    assert store.schema == "fireflow.store/1"
    return store
