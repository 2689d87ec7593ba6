"""A throwaway PostgreSQL server for the tests: one cluster per session, a fresh schema per store.

``pg_server`` (session scope) starts a :class:`pgcluster.Cluster` (tests/pgcluster.py
finds the server binaries, runs ``initdb`` into a fresh temporary folder and starts
the server on a unix socket inside that folder, with no TCP port, as the
``postgres`` system user when the tests run as root) and stops it (``pg_ctl stop -m
immediate``) and removes its folder at the end of the session.  The tests connect
over the socket as the database user ``postgres``.  The cluster runs with
``fsync=off``, ``full_page_writes=off`` and ``synchronous_commit=off``: it is thrown
away, and the tests check the store's logic, not the disk (the crash figures are
another matter).

``FIREFLOW_TEST_DATABASE_URL`` points the tests at an existing server instead (its
database is used as is; each test works in a schema of its own).

Where no server can be had the PostgreSQL tests are skipped with the reason; with
``CI`` set the project's skip policy (conftest.py) turns that skip into a failure,
on purpose: CI installs the server (``.ci/run``) and must run these tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import pytest
from pgcluster import Cluster, ClusterUnavailable

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A connection string (libpq key=value) for a database on a throwaway server."""
    url = os.environ.get("FIREFLOW_TEST_DATABASE_URL")
    if url:
        yield url
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")
    try:
        cluster = Cluster(durable=False, synchronous_commit=False, max_connections=60)
    except ClusterUnavailable as exc:
        pytest.skip(f"PostgreSQL test server: {exc} (or set FIREFLOW_TEST_DATABASE_URL)")
    with cluster:
        try:
            cluster.start()
        except ClusterUnavailable as exc:
            pytest.skip(f"PostgreSQL test server: {exc}")
        yield cluster.conninfo


def fresh_schema() -> str:
    """A schema name no other store of this session uses."""
    return f"t{os.getpid()}_{next(_counter)}"


def drop_schema(conninfo: str, schema: str) -> None:
    """Drop a test's schema (best effort; the cluster is thrown away anyway)."""
    import psycopg
    from psycopg import sql

    with contextlib.suppress(psycopg.Error), psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
