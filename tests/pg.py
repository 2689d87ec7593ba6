"""A throwaway PostgreSQL server for the tests: one cluster per session, a fresh schema per store.

``pg_server`` (session scope) finds the server binaries (``FIREFLOW_PG_BINDIR``, else
``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin`` of Debian's
``postgresql`` package, else ``initdb`` on ``PATH``), runs ``initdb`` into a fresh
temporary folder and starts the server listening only on a unix socket inside that
folder (no TCP port, so nothing else on the machine can reach it or collide with
it), with ``trust`` authentication for the socket.  It is stopped (``pg_ctl stop -m
immediate``) and its folder removed at the end of the session.

PostgreSQL refuses to run as root.  When the tests run as root (CI does), ``initdb``
and the server run as the ``postgres`` system user that Debian's package creates
(else ``nobody``) through ``runuser -u USER --``, and the folder is handed to that
user; the tests themselves connect over the socket as the database user
``postgres``.  The cluster runs with ``fsync=off``: it is thrown away, and the tests
check the store's logic, not the disk (the crash figures are another matter).

``FIREFLOW_TEST_DATABASE_URL`` points the tests at an existing server instead (its
database is used as is; each test works in a schema of its own).

Where no server can be had the PostgreSQL tests are skipped with the reason; with
``CI`` set the project's skip policy (conftest.py) turns that skip into a failure,
on purpose: CI installs the server (``.ci/run``) and must run these tests.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_counter = itertools.count(1)


def _bindir() -> Path | None:
    env = os.environ.get("FIREFLOW_PG_BINDIR")
    if env:
        return Path(env)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out and (Path(out) / "initdb").exists():
            return Path(out)

    def version(p: str) -> int:
        try:
            return int(Path(p).parent.name)
        except ValueError:
            return 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> list[str]:
    """The prefix that runs a server command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("PostgreSQL cannot run as root and runuser is missing (需要 runuser)")
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return [runuser, "-u", user, "--"]
    pytest.skip("PostgreSQL cannot run as root and there is no postgres or nobody user")
    raise AssertionError  # unreachable: skip raises


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.skip(
            f"PostgreSQL test server: {what} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-800:]}"
        )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A connection string (libpq key=value) for a database on a throwaway server."""
    url = os.environ.get("FIREFLOW_TEST_DATABASE_URL")
    if url:
        yield url
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[test]')")
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip(
            "PostgreSQL server binaries not found (install Debian's postgresql package, "
            "or set FIREFLOW_PG_BINDIR or FIREFLOW_TEST_DATABASE_URL); PostgreSQL tests skipped"
        )
    prefix = _run_as()
    # a folder every user can reach: pytest's own tmp folders are private to root
    root = Path(tempfile.mkdtemp(prefix="fireflow-pg-"))
    data = root / "data"
    log = root / "server.log"
    if prefix:
        owner = pwd.getpwnam(prefix[2])
        os.chown(root, owner.pw_uid, owner.pw_gid)
    os.chmod(root, 0o755)
    started = False
    try:
        _run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )  # fmt: skip
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{root}' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=60"
        )
        _run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
             "-t", "60", "-o", options, "start"],
            "pg_ctl start",
        )  # fmt: skip
        started = True
        yield f"host={root} port=5432 user=postgres dbname=postgres"
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True, timeout=120, check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def fresh_schema() -> str:
    """A schema name no other store of this session uses."""
    return f"t{os.getpid()}_{next(_counter)}"


def drop_schema(conninfo: str, schema: str) -> None:
    """Drop a test's schema (best effort; the cluster is thrown away anyway)."""
    import psycopg
    from psycopg import sql

    with contextlib.suppress(psycopg.Error), psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
