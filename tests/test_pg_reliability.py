"""The PostgreSQL store under crashes, server restarts and concurrent writers, in real processes.

Like tests/test_store_crash.py for SQLite, on a PostgreSQL cluster of this module's
own (tests/pgcluster.py), because one test stops the server hard
(``pg_ctl stop -m immediate``) and starts it again.  The cluster runs with
``fsync=off`` (a process crash, which is what these tests make, loses nothing the
kernel was given) but ``synchronous_commit=on``: a commit is acknowledged only
after its write-ahead log reached the kernel, as on a durable server.

Each test prints its figures (read them with ``pytest -s``).  ``FIREFLOW_FULL=1``
runs the full counts (200 kills); ``benchmarks/crash_pg.py`` runs them on a durable
cluster (``fsync=on``) and prints the recorded figures.  Without a PostgreSQL
server these tests are skipped with the reason (and fail in CI, see conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

FULL = bool(os.environ.get("FIREFLOW_FULL"))
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")
    from pgcluster import Cluster, ClusterUnavailable

    try:
        c = Cluster(durable=False, max_connections=60)
    except ClusterUnavailable as exc:
        pytest.skip(f"{exc}; PostgreSQL reliability tests skipped")
    try:
        c.start()
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def runs() -> object:
    from store_workers import pg_runs

    return pg_runs


def test_kill9_mid_append_loses_nothing_and_leaves_no_partial_batch(cluster, runs):
    fig = runs.kill_runs(cluster.conninfo, "kill9", 200 if FULL else 20)
    print(f"\npg kill9: {json.dumps(fig)}")
    assert runs.kill_problems(fig) == []
    assert fig["partial"] == fig["acked_lost"] == fig["duplicates"] == fig["gaps"] == 0
    assert fig["verifies"] >= 2


def test_sixteen_writers_on_one_ticket_one_winner_per_version(cluster, runs):
    fig = runs.race_run(cluster.conninfo, "race16", 16, 10 if FULL else 3)
    print(f"\npg race: {json.dumps(fig)}")
    assert runs.race_problems(fig) == []
    assert fig["max_winners_per_version"] == 1
    assert fig["versions"] == 3 + fig["appends"]


def test_writers_ride_out_a_hard_server_stop(cluster, runs):
    fig = runs.restart_run(cluster, "restart", 3, 600 if FULL else 150, restarts=2 if FULL else 1)
    print(f"\npg restart: {json.dumps(fig)}")
    assert runs.restart_problems(fig) == []
    assert fig["lost"] == fig["duplicated"] == fig["raw_psycopg"] == 0
    assert fig["writers_that_saw_unavailable"] >= 1
    assert fig["reconnects"] >= fig["writers_that_saw_unavailable"]


def test_a_store_reports_the_stopped_server_typed_and_works_after_the_restart(cluster, runs):
    import psycopg
    from store_workers import histories

    from fireflow.errors import FireflowError
    from fireflow.store import verify
    from fireflow.store.postgres import PostgresStore, StoreUnavailable

    runs.new_schema(cluster.conninfo, "stopped")
    first = histories.history(0)
    second = histories.history(1)
    store = PostgresStore(cluster.conninfo, schema="stopped", connect_timeout=2)
    acked = store.append(first[0].ticket_id, list(first), 0)
    cluster.stop_immediate()
    try:
        for call in (
            lambda: store.append(second[0].ticket_id, list(second), 0),  # the lost connection
            store.count,  # the reconnect, refused: the server is down
            lambda: store.read(first[0].ticket_id),
        ):
            with pytest.raises(StoreUnavailable) as info:
                call()
            assert isinstance(info.value, FireflowError)
            assert not isinstance(info.value, psycopg.Error)
            assert info.value.field == "conninfo"
            assert "数据库服务器不可用" in str(info.value)
    finally:
        cluster.start()
    # the same store works again: it reconnects on its next call
    assert store.read(first[0].ticket_id) == list(first)  # the acknowledged append survived
    again = store.append(second[0].ticket_id, list(second), 0)  # the failed one, sent again
    assert not again.replayed  # it had not committed: the connection was gone before it
    assert store.append(first[0].ticket_id, list(first), 0).replayed
    assert store.count() == len(first) + len(second)
    assert acked.positions[-1] == len(first) - 1
    assert store.reconnects == 1
    report = verify(store)
    assert report.ok, report.problems
    store.close()
    with pytest.raises(StoreUnavailable):  # closed by its owner: no reconnect
        store.count()
    assert store.reconnects == 1


def test_a_subscription_rides_out_a_server_restart(cluster, runs):
    """The subscriber's listening and reading connections are lost and reopened: it then
    delivers what was appended after the restart, in order, nothing skipped or repeated."""
    import threading
    import time

    from store_workers import histories

    from fireflow.store.postgres import PostgresStore

    runs.new_schema(cluster.conninfo, "riding")
    store = PostgresStore(cluster.conninfo, schema="riding", connect_timeout=2)
    got: list[int] = []
    failed: list[BaseException] = []
    stop = threading.Event()

    def consume() -> None:
        try:
            for se in store.subscribe(stop=stop, poll_interval=0.05):
                got.append(se.position)
        except BaseException as exc:
            failed.append(exc)

    def wait_for(n: int) -> None:
        for _ in range(1200):
            if len(got) >= n or failed:
                return
            time.sleep(0.05)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        first, second = histories.history(0), histories.history(1)
        with PostgresStore(cluster.conninfo, schema="riding") as writer:
            writer.append(first[0].ticket_id, list(first), 0)
        wait_for(len(first))
        cluster.stop_immediate()
        time.sleep(0.3)  # the subscriber finds its connections gone while the server is down
        cluster.start()
        with PostgresStore(cluster.conninfo, schema="riding") as writer:
            writer.append(second[0].ticket_id, list(second), 0)
        wait_for(len(first) + len(second))
    finally:
        stop.set()
        thread.join(60)
        store.close()
    assert failed == []
    assert got == list(range(len(first) + len(second)))


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=900,
        check=False,
    )


def test_the_postgres_benchmark_runs_quick_and_checks_what_it_promises(cluster):
    out = _script("bench_pg.py", "--quick", "--json", "--url", cluster.conninfo)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    assert res["server"]["fsync"] == "off"  # it reports the server it was given
    for section in ("single", "batched"):
        assert res[section]["ratio"] > 0
        assert res[section]["fireflow"]["events"] == res[section]["raw"]["events"]
    assert res["replay"]["states_ok"] is True
    assert res["replay"]["ratio"] > 0
    writers = res["writers"]
    assert [w["writers"] for w in writers] == [1, 4]
    for w in writers:
        assert w["problems"] == []
        assert w["lost"] == w["duplicated"] == 0
        assert w["raw"]["events"] == w["events"]


def test_the_crash_script_runs_quick_on_its_own_durable_cluster(cluster):
    out = _script("crash_pg.py", "--quick", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    assert res["server"]["fsync"] == "on"
    assert res["kill9"]["problems"] == []
    assert res["race"]["problems"] == []
    assert res["restart"]["problems"] == []
