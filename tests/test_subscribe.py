"""Subscriptions and consumers (fireflow.store.subscription) on memory, SQLite and PostgreSQL.

Every backend: events after a position in the global order, then new ones as a
writer appends them (from another thread or connection), stop and idle timeout
ending the wait, hostile arguments refused.  Consumers: a checkpoint file that
resumes after the last commit, refuses another history, and, in real processes,
a consumer (examples/hotline_consumer.py) killed with -9 again and again while a
writer appends forwards every escalation exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import drop_schema, fresh_schema, pg_server  # noqa: F401 (a fixture)
from store_workers.histories import history, ticket_id

from fireflow.errors import InvalidArgument
from fireflow.store import (
    Consumer,
    FileCheckpoint,
    MemoryStore,
    SQLiteStore,
    StoreError,
    subscribe,
)
from fireflow.store.base import EventStore
from fireflow.store.subscription import CheckpointMismatch, Position
from fireflow.testing.store_contract import contract_history

ROOT = Path(__file__).resolve().parent.parent
HOTLINE = ROOT / "examples" / "hotline_consumer.py"
FULL = bool(os.environ.get("FIREFLOW_FULL"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def stores(request, tmp_path) -> Iterator[tuple[EventStore, object]]:
    """A store and a function giving another handle on it (another connection)."""
    if request.param == "memory":
        store: EventStore = MemoryStore()
        yield store, lambda: store
        return
    if request.param == "sqlite":
        path = tmp_path / "s.db"
        store = SQLiteStore(path)
        others: list[SQLiteStore] = []

        def again() -> EventStore:
            others.append(SQLiteStore(path, create=False))
            return others[-1]

        yield store, again
        for s in [store, *others]:
            s.close()
        return
    from fireflow.store.postgres import PostgresStore

    conninfo = request.getfixturevalue("pg_server")
    schema = fresh_schema()
    store = PostgresStore(conninfo, schema=schema)
    pg_others: list[PostgresStore] = []

    def pg_again() -> EventStore:
        pg_others.append(PostgresStore(conninfo, schema=schema))
        return pg_others[-1]

    yield store, pg_again
    for s in [store, *pg_others]:
        s.close()
    drop_schema(conninfo, schema)


def positions(events) -> list[int]:
    return [se.position for se in events]


def test_after_a_position_in_global_order(stores):
    store, _ = stores
    store.append("A", contract_history("A", 2), 0)
    store.append("B", contract_history("B", 2), 0)
    assert positions(store.subscribe(idle_timeout=0.01)) == [0, 1, 2, 3]
    assert positions(store.subscribe(after=1, idle_timeout=0.01)) == [2, 3]
    assert positions(subscribe(store, after=3, idle_timeout=0.01)) == []
    assert positions(subscribe(store, after=99, idle_timeout=0.01)) == []
    got = list(store.subscribe(after=0, idle_timeout=0.01))
    assert [se.event for se in got] == [se.event for se in store.read_all(1)]


def test_new_events_arrive_while_waiting(stores):
    store, again = stores
    writer = again()
    stop = threading.Event()
    received: list[int] = []

    def consume() -> None:
        for se in store.subscribe(stop=stop, poll_interval=0.01):
            received.append(se.position)
            if len(received) == 6:
                stop.set()

    th = threading.Thread(target=consume)
    th.start()
    for i in range(3):
        time.sleep(0.05)
        writer.append(f"T{i}", contract_history(f"T{i}", 2), 0)
    th.join(60)
    assert not th.is_alive()
    assert received == [0, 1, 2, 3, 4, 5]


def test_stop_ends_a_waiting_subscription(stores):
    store, _ = stores
    stop = threading.Event()
    out: list[object] = []
    th = threading.Thread(target=lambda: out.extend(store.subscribe(stop=stop, poll_interval=0.01)))
    th.start()
    time.sleep(0.1)
    assert th.is_alive()  # waiting for events that do not come
    stop.set()
    th.join(30)
    assert not th.is_alive()
    assert out == []


def test_idle_timeout_uses_the_injected_clock():
    store = MemoryStore()
    ticks = iter([0.0, 0.5, 2.0, 5.0])
    got = list(subscribe(store, idle_timeout=1.0, poll_interval=0.001, clock=lambda: next(ticks)))
    assert got == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"after": -1}, "after"),
        ({"after": "3"}, "after"),
        ({"after": True}, "after"),
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"idle_timeout": float("nan")}, "idle_timeout"),
        ({"idle_timeout": 1e12}, "idle_timeout"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": "fast"}, "poll_interval"),
        ({"stop": True}, "stop"),
    ],
)
def test_bad_arguments_are_typed_errors(kwargs, field):
    with pytest.raises(InvalidArgument) as info:
        subscribe(MemoryStore(), **kwargs)
    assert info.value.field == field


def test_an_immutable_read_only_sqlite_store_cannot_be_subscribed(tmp_path):
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.append("A", contract_history("A", 1), 0)
    with SQLiteStore(path, readonly=True) as reader, pytest.raises(StoreError, match="immutable"):
        next(reader.subscribe(idle_timeout=0.01))


# --------------------------------------------------------------------------- #
# Consumers


def test_a_consumer_resumes_after_its_last_commit(stores, tmp_path):
    store, _ = stores
    store.append("A", contract_history("A", 4), 0)
    cp = FileCheckpoint(tmp_path / "c.json")
    consumer = Consumer(store, "hotline", cp)
    assert consumer.after is None
    for se in consumer.events(idle_timeout=0.01):
        if se.position == 2:
            break  # handled 2 but died before committing it
        consumer.commit(se)
    consumer = Consumer(store, "hotline", FileCheckpoint(tmp_path / "c.json"))
    assert consumer.after == 1
    assert positions(consumer.events(idle_timeout=0.01)) == [2, 3]  # 2 again: at least once
    data = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert data["format"] == "fireflow.consumer/1"
    assert data["position"] == 1 and data["event_id"] == "A/2"  # noqa: PT018


def test_commits_move_forward_only(tmp_path):
    store = MemoryStore()
    store.append("A", contract_history("A", 2), 0)
    consumer = Consumer(store, "c", FileCheckpoint(tmp_path / "c.json"))
    first, second = list(consumer.events(idle_timeout=0.01))
    consumer.commit(second)
    with pytest.raises(InvalidArgument) as info:
        consumer.commit(first)
    assert info.value.field == "event"
    with pytest.raises(InvalidArgument):
        consumer.commit("A/1")  # type: ignore[arg-type]


def test_a_checkpoint_of_another_history_is_refused(tmp_path):
    store = MemoryStore()
    store.append("A", contract_history("A", 2), 0)
    cp = FileCheckpoint(tmp_path / "c.json")
    cp.save("c", Position(1, "f" * 64, "A/2"))
    with pytest.raises(CheckpointMismatch) as info:
        Consumer(store, "c", cp)
    assert info.value.position == 1
    cp.save("c", Position(7, "f" * 64, "A/8"))
    with pytest.raises(CheckpointMismatch, match="holds 2 events"):
        Consumer(store, "c", cp)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", "checkpoint"),
        (b"\xff\xfe", "checkpoint"),
        (b"[]", "checkpoint.format"),
        (b'{"format": "other"}', "checkpoint.format"),
        (b'{"format": "fireflow.consumer/1", "name": "other"}', "checkpoint.name"),
        (
            b'{"format": "fireflow.consumer/1", "name": "c", "position": -1}',
            "checkpoint.position",
        ),
        (
            b'{"format": "fireflow.consumer/1", "name": "c", "position": 0, "global_hash": 1}',
            "checkpoint.global_hash",
        ),
        (
            b'{"format": "fireflow.consumer/1", "name": "c", "position": 0, '
            b'"global_hash": "' + b"0" * 64 + b'", "event_id": "A\\u001b"}',
            "checkpoint.event_id",
        ),
        (b" " * 5000, "checkpoint"),
    ],
)
def test_a_hostile_checkpoint_file_is_a_typed_error(tmp_path, content, field):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(InvalidArgument) as info:
        Consumer(MemoryStore(), "c", FileCheckpoint(path))
    assert info.value.field == field


def test_consumer_names_and_stores_are_checked(tmp_path):
    with pytest.raises(InvalidArgument) as info:
        Consumer(MemoryStore(), "bad\x1bname", FileCheckpoint(tmp_path / "c.json"))
    assert info.value.field == "name"
    with pytest.raises(InvalidArgument) as info:
        Consumer(object(), "c", FileCheckpoint(tmp_path / "c.json"))  # type: ignore[arg-type]
    assert info.value.field == "store"


def test_a_checkpoint_through_a_symlink_is_refused(tmp_path):
    store = MemoryStore()
    store.append("A", contract_history("A", 1), 0)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}", encoding="utf-8")
    link = tmp_path / "c.json"
    link.symlink_to(target)
    consumer = Consumer(store, "c", FileCheckpoint(tmp_path / "c2.json"))
    consumer.checkpoints = FileCheckpoint(link)
    se = next(consumer.events(idle_timeout=0.01))
    with pytest.raises(Exception, match="link"):
        consumer.commit(se)
    assert target.read_text(encoding="utf-8") == "{}"


# --------------------------------------------------------------------------- #
# Real processes: the hotline example, killed with -9


def escalations(store: EventStore) -> list[str]:
    return [se.event.event_id for se in store.read_all() if se.event.kind == "escalate"]


def run_hotline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOTLINE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_the_hotline_example_forwards_every_escalation_once(tmp_path):
    path = tmp_path / "changle.db"
    with SQLiteStore(path) as store:
        for k in range(20):
            store.append(ticket_id(k), history(k), 0)
        expected = escalations(store)
    assert len(expected) == 4  # one refusal template in five escalates
    out, cp = tmp_path / "hotline.jsonl", tmp_path / "hotline.json"
    args = ("--store", str(path), "--out", str(out), "--checkpoint", str(cp))
    proc = run_hotline(*args, "--idle-timeout", "0.3")
    assert proc.returncode == 0, proc.stderr
    assert "forwarded 4 escalation(s)" in proc.stdout
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["event_id"] for x in lines] == expected
    assert all(x["rules"] for x in lines)
    proc = run_hotline(*args, "--idle-timeout", "0.3")  # nothing new: nothing forwarded
    assert "forwarded 0 escalation(s)" in proc.stdout
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4


def test_a_consumer_killed_with_minus_9_misses_and_repeats_nothing(tmp_path):
    """A writer appends tickets while the hotline consumer is killed -9 and restarted."""
    path = tmp_path / "changle.db"
    SQLiteStore(path).close()
    out, cp = tmp_path / "hotline.jsonl", tmp_path / "hotline.json"
    args = ("--store", str(path), "--out", str(out), "--checkpoint", str(cp))
    n_tickets = 200 if FULL else 60
    kills = 20 if FULL else 6
    rng = random.Random(12345)
    done = threading.Event()

    def write() -> None:
        with SQLiteStore(path, retry_seed=1) as store:
            for k in range(n_tickets):
                store.append(ticket_id(k), history(k), 0)
                time.sleep(0.005)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    killed = 0
    try:
        while killed < kills:
            proc = subprocess.Popen(
                [sys.executable, str(HOTLINE), *args, "--delay", "0.01", "--poll-interval", "0.01"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            time.sleep(0.3 + rng.random() * 0.4)
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            if proc.stderr:
                proc.stderr.close()
            killed += 1
    finally:
        writer.join(300)
    assert done.is_set()
    proc_done = run_hotline(*args, "--idle-timeout", "0.5")  # the last run drains the log
    assert proc_done.returncode == 0, proc_done.stderr
    with SQLiteStore(path, readonly=True) as store:
        expected = escalations(store)
        count = store.count()
    forwarded = [json.loads(x)["event_id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert forwarded == expected  # every escalation, once, in the global order
    assert json.loads(cp.read_text(encoding="utf-8"))["position"] == count - 1
    print(f"hotline consumer: {killed} kills, {len(expected)} escalations forwarded once")
