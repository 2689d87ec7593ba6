"""PostgreSQL clusters for the tests and benchmarks: the one place that starts them (stdlib only).

Everything that runs a throwaway PostgreSQL server goes through here: the session's
shared test server (tests/pg.py, ``fsync=off``), the reliability tests
(tests/test_pg_reliability.py), which need a server of their own that they may stop
with ``pg_ctl stop -m immediate`` and start again, and the PostgreSQL benchmarks
(benchmarks/bench_pg.py, benchmarks/crash_pg.py), which want a durable one.

A cluster uses Debian's server binaries (``FIREFLOW_PG_BINDIR``, else ``pg_config
--bindir``, else the newest major version of ``/usr/lib/postgresql/VERSION/bin``,
else ``initdb`` on ``PATH``), a fresh temporary folder, a unix socket in that folder
and no TCP port (nothing else on the machine can reach it or collide with it),
``trust`` authentication for the socket, and, when run as root (PostgreSQL refuses
to run as root; CI does), the server commands run as the ``postgres`` system user
that Debian's package creates (else ``nobody``) through ``runuser -u USER --``, with
the folder handed to that user.

``Cluster(durable=True)`` keeps PostgreSQL's durable defaults (``fsync=on``,
``synchronous_commit=on``, ``full_page_writes=on``) and syncs the new cluster's
files; ``durable=False`` turns ``fsync`` and ``full_page_writes`` off (faster, and
still honest about a *process* crash, which is all the tests simulate: the kernel
keeps what was written) but keeps ``synchronous_commit=on``, so a commit is
acknowledged only after its WAL reached the kernel, unless
``synchronous_commit=False`` turns that off too (the shared test server, which
checks the store's logic, not the disk).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: Where Debian's ``postgresql-VERSION`` packages put ``initdb``.
DEBIAN_INITDB = "/usr/lib/postgresql/*/bin/initdb"

#: The settings :func:`server_settings` reports: the version, and what decides
#: durability and speed.
SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
            "wal_level", "wal_sync_method", "shared_buffers", "max_connections",
            "commit_delay")  # fmt: skip


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


def debian_version(initdb: str) -> tuple[int, ...]:
    """The version in Debian's path ``.../postgresql/VERSION/bin/initdb``, as numbers.

    ``9.6`` is ``(9, 6)`` and ``16`` is ``(16,)``, so ``16`` is newer than ``9.6``
    (which a sort by name would get wrong); a folder name that is not a version is
    ``()``, older than any.
    """
    name = Path(initdb).parent.parent.name
    try:
        return tuple(int(part) for part in name.split("."))
    except ValueError:
        return ()


def newest_bindir(initdbs: Iterable[str]) -> Path | None:
    """The ``bin`` folder of the newest version among Debian ``initdb`` paths, or ``None``."""
    found = list(initdbs)
    if not found:
        return None
    return Path(max(found, key=lambda p: (debian_version(p), p))).parent


def debian_initdbs() -> list[str]:
    """The ``initdb`` of every PostgreSQL version Debian's packages installed here."""
    return glob.glob(DEBIAN_INITDB)


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
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
    debian = newest_bindir(debian_initdbs())
    if debian is not None:
        return debian
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def server_settings(conninfo: str) -> dict[str, str]:
    """The server's version and the settings that decide durability and speed (needs psycopg)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in SETTINGS}


def run_as() -> list[str]:
    """The prefix that runs a server command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable(
            "PostgreSQL cannot run as root and runuser is missing (需要 runuser)"
        )
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return [runuser, "-u", user, "--"]
    raise ClusterUnavailable("PostgreSQL cannot run as root and there is no postgres/nobody user")


class Cluster:
    """A fresh cluster in a temporary folder; ``start()``, ``stop_immediate()``, ``remove()``.

    ``conninfo`` is a libpq key=value string for the database ``postgres`` as the
    superuser ``postgres``, over the cluster's unix socket.
    """

    def __init__(
        self,
        *,
        durable: bool = True,
        synchronous_commit: bool = True,
        max_connections: int = 60,
        root: str | None = None,
    ) -> None:
        bindir = find_bindir()
        if bindir is None or not (bindir / "initdb").exists():
            raise ClusterUnavailable(
                "PostgreSQL server binaries not found (install Debian's postgresql package, "
                "or set FIREFLOW_PG_BINDIR)"
            )
        self.bindir = bindir
        self.durable = durable
        self.prefix = run_as()
        self.root = Path(tempfile.mkdtemp(prefix="fireflow-pgc-", dir=root))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.prefix:
            owner = pwd.getpwnam(self.prefix[2])
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o755)
        self.options = [
            "listen_addresses=''",
            f"unix_socket_directories='{self.root}'",
            f"max_connections={max_connections}",
        ]
        if not durable:
            self.options += ["fsync=off", "full_page_writes=off"]
        if not synchronous_commit:
            self.options.append("synchronous_commit=off")
        self.running = False
        self.conninfo = f"host={self.root} port=5432 user=postgres dbname=postgres"
        try:
            init = [*self.prefix, str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                    "--auth=trust", "--encoding=UTF8", "--locale=C"]  # fmt: skip
            self._run([*init] if durable else [*init, "--no-sync"], "initdb")
        except BaseException:
            self.remove()
            raise

    def _run(self, cmd: list[str], what: str, timeout: float = 120) -> None:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise ClusterUnavailable(
                f"PostgreSQL: {what} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )

    def _pg_ctl(self, *args: str) -> list[str]:
        return [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]

    def start(self) -> None:
        """Start the server and wait until it accepts connections (after any crash recovery)."""
        opts = " ".join(f"-c {o}" for o in self.options)
        self._run(self._pg_ctl("-l", str(self.log), "-w", "-t", "120", "-o", opts, "start"),
                  "pg_ctl start", timeout=180)  # fmt: skip
        self.running = True

    def stop_immediate(self) -> None:
        """``pg_ctl stop -m immediate``: every server process quits at once, no checkpoint."""
        self._run(self._pg_ctl("-m", "immediate", "-w", "stop"), "pg_ctl stop -m immediate")
        self.running = False

    def stop(self) -> None:
        """A clean (fast) shutdown."""
        self._run(self._pg_ctl("-m", "fast", "-w", "stop"), "pg_ctl stop -m fast")
        self.running = False

    def settings(self) -> dict[str, str]:
        """The server's version and the settings that decide durability and speed."""
        return server_settings(self.conninfo)

    def remove(self) -> None:
        """Stop the server (immediately) if it runs and delete the folder."""
        if self.running:
            subprocess.run(self._pg_ctl("-m", "immediate", "-w", "stop"),
                           capture_output=True, timeout=120, check=False)  # fmt: skip
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
