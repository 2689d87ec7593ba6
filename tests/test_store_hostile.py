"""Every public store method and function meets hostile input with a typed error (issue 23).

``HOSTILE`` lists hostile calls for every public method of the stores (memory, SQLite,
PostgreSQL) and for the functions of ``fireflow.store``; a method or function added
without an entry makes ``test_every_public_method_has_hostile_cases`` fail.  Each call
must raise a ``FireflowError`` (never ``OverflowError``, ``TypeError``, ``KeyError``, a
driver's exception or a traceback's worth of anything else).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)

import fireflow.store
from fireflow.errors import FireflowError
from fireflow.store import (
    Consumer,
    FileCheckpoint,
    MemoryStore,
    SQLiteStore,
    checkpoint,
    copy_store,
    subscribe,
    verify,
)
from fireflow.testing.store_contract import contract_event, contract_history

Call = Callable[[Any], object]

_HUGE = 2**63
_IDS: list[object] = ["", None, 7, "T\x1b[2J", "T\u202e1", "x" * 300, "\udc80", b"T1"]

#: Hostile calls per public method (the store is the argument).
HOSTILE: dict[str, list[Call]] = {
    "append": [
        *(lambda s, t=t: s.append(t, [contract_event()], 0) for t in _IDS),
        lambda s: s.append("T1", [contract_event()], -1),
        lambda s: s.append("T1", [contract_event()], True),
        lambda s: s.append("T1", [contract_event()], _HUGE),
        lambda s: s.append("T1", [], 0),
        lambda s: s.append("T1", "T1/1", 0),
        lambda s: s.append("T1", [contract_event(seq=3)], 0),
        lambda s: s.append("T1", [contract_event(payload={"x": 1.5})], 0),
        lambda s: s.append("T1", [contract_event(payload={"d": "楼" * 40_000})], 0),
        lambda s: s.append("T1", [object()], 0),
    ],
    "append_many": [
        lambda s: s.append_many([("T1", "T1/1", 0)]),
        lambda s: s.append_many([("T1", [contract_event()], "0")]),
        lambda s: s.append_many([("T\x00", [contract_event()], 0)]),
    ],
    "read": [*(lambda s, t=t: s.read(t) for t in _IDS)],
    "version": [*(lambda s, t=t: s.version(t) for t in _IDS)],
    "head": [*(lambda s, t=t: s.head(t) for t in _IDS)],
    "read_all": [
        *(lambda s, p=p: list(s.read_all(p)) for p in (-1, _HUGE, 2**70, "0", 1.0, True, None))
    ],
    "rows": [*(lambda s, p=p: list(s.rows(p)) for p in (-1, _HUGE, 2**70, "0", 1.0, None))],
    "subscribe": [
        *(lambda s, p=p: next(s.subscribe(after=p)) for p in (-1, _HUGE, "0", 1.5)),
        lambda s: next(s.subscribe(poll_interval=0)),
        lambda s: next(s.subscribe(idle_timeout=-1)),
        lambda s: next(s.subscribe(idle_timeout=float("nan"))),
        lambda s: next(s.subscribe(stop="stop")),  # type: ignore[arg-type]
    ],
    "new_waiter": [
        lambda s: s.new_waiter("stop", 0.1),
        lambda s: s.new_waiter(threading.Event(), 0),
        lambda s: s.new_waiter(threading.Event(), "x"),
    ],
    # PostgreSQL only
    "grants_sql": [
        lambda s: s.grants_sql("x; DROP TABLE events"),
        lambda s: s.grants_sql("w", access="owner"),
        lambda s: s.grants_sql("w", schema='x"'),
    ],
}
#: Methods that take nothing from the caller (nothing hostile to give them).
NO_INPUT = {
    "tickets",
    "count",
    "close",
    "head_row",
    "integrity_check",
    "schema_version",
}

#: Hostile calls of the package's functions and constructors (no store argument).
FUNCTIONS: dict[str, list[Callable[[Any], object]]] = {
    "copy_store": [
        lambda tmp: copy_store("a.db", MemoryStore()),  # type: ignore[arg-type]
        lambda tmp: copy_store(MemoryStore(), None),  # type: ignore[arg-type]
        lambda tmp: _same_store(),
        lambda tmp: copy_store(_filled(), _filled()),
    ],
    "subscribe": [
        lambda tmp: subscribe(object(), after=0),  # type: ignore[arg-type]
        lambda tmp: subscribe(MemoryStore(), after=_HUGE),
    ],
    "checkpoint": [
        lambda tmp: checkpoint(MemoryStore(), "2022-03-21"),  # type: ignore[arg-type]
        lambda tmp: checkpoint(MemoryStore(), __import__("datetime").datetime(2022, 3, 21)),
    ],
    "verify": [lambda tmp: verify(MemoryStore(), checkpoint="cp")],  # type: ignore[arg-type]
    "Consumer": [
        lambda tmp: Consumer(MemoryStore(), "", FileCheckpoint(tmp / "c.json")),
        lambda tmp: Consumer(MemoryStore(), "c\x1b", FileCheckpoint(tmp / "c.json")),
        lambda tmp: Consumer("store", "c", FileCheckpoint(tmp / "c.json")),  # type: ignore[arg-type]
        lambda tmp: Consumer(MemoryStore(), "c", FileCheckpoint(tmp)).commit("x"),  # type: ignore[arg-type]
    ],
    "FileCheckpoint": [lambda tmp: FileCheckpoint(7)],  # type: ignore[arg-type]
    "SQLiteStore": [
        lambda tmp: SQLiteStore(""),
        lambda tmp: SQLiteStore(":memory:"),
        lambda tmp: SQLiteStore(tmp / "x.db", busy_timeout_ms=-1),
        lambda tmp: SQLiteStore(tmp / "missing.db", readonly=True),
        lambda tmp: SQLiteStore(tmp, create=False),
    ],
    "MemoryStore": [lambda tmp: MemoryStore().read("")],
}


def _same_store() -> object:
    store = MemoryStore()
    return copy_store(store, store)


def _filled() -> MemoryStore:
    store = MemoryStore()
    store.append("T1", contract_history("T1", 1), 0)
    return store


def _public(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and callable(value)
    }


def test_every_public_method_has_hostile_cases():
    from fireflow.store.postgres import PostgresStore

    for cls in (MemoryStore, SQLiteStore, PostgresStore):
        missing = _public(cls) - set(HOSTILE) - NO_INPUT
        assert not missing, f"{cls.__name__}: public methods without hostile cases: {missing}"
    functions = {
        name
        for name in fireflow.store.__all__
        if callable(getattr(fireflow.store, name))
        and not (
            isinstance(getattr(fireflow.store, name), type)
            and issubclass(getattr(fireflow.store, name), BaseException | Exception)
        )
    }
    # data classes and the protocol are not entry points; the index has its own corpus
    # (tests/test_index*.py); PostgresStore's constructor is in test_store_secrets.py and
    # test_store_trust.py (malformed connection strings, foreign schemas)
    exempt = {
        "AppendResult",
        "Checkpoint",
        "EventStore",
        "Mismatch",
        "StoredEvent",
        "StoredRow",
        "VerifyReport",
        "TicketIndex",
        "TicketRow",
        "PostgresStore",
    }
    assert functions - exempt - set(FUNCTIONS) == set()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[Any]:
    if request.param == "memory":
        s: Any = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "s.db")
    else:
        from fireflow.store.postgres import PostgresStore

        conninfo = request.getfixturevalue("pg_server")
        schema = fresh_schema()
        s = PostgresStore(conninfo, schema=schema)
    s.append("T1", contract_history("T1", 2), 0)
    yield s
    if hasattr(s, "close"):
        s.close()
    if request.param == "postgres":
        drop_schema(conninfo, schema)


#: Methods only the PostgreSQL store has: asked of it alone.
POSTGRES_ONLY = frozenset({"grants_sql"})


def _hostile_cases(backends: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(b, m, i, id=f"{b}-{m}-{i}")
        for b in backends
        for m, calls in HOSTILE.items()
        for i in range(len(calls))
        if b == "postgres" or m not in POSTGRES_ONLY
    ]


@pytest.mark.parametrize(
    ("store", "method", "index"),
    _hostile_cases(("memory", "sqlite", "postgres")),
    indirect=["store"],
)
def test_hostile_calls_are_typed_errors(store, method, index):
    assert hasattr(store, method), f"{type(store).__name__} has no {method}"
    before = list(store.rows())
    with pytest.raises(FireflowError):
        HOSTILE[method][index](store)
    assert list(store.rows()) == before  # nothing written


@pytest.mark.parametrize(
    ("name", "index"),
    [(n, i) for n, calls in FUNCTIONS.items() for i in range(len(calls))],
)
def test_hostile_function_calls_are_typed_errors(tmp_path, name, index):
    with pytest.raises(FireflowError):
        FUNCTIONS[name][index](tmp_path)
