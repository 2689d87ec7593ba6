"""A PostgreSQL cluster that can be started, stopped hard and restarted (standard library only).

The reliability tests (tests/test_pg_reliability.py) and the PostgreSQL benchmarks
(benchmarks/bench_pg.py, benchmarks/crash_pg.py) need a server of their own: one
they may stop with ``pg_ctl stop -m immediate`` and start again, and, for the
figures, a durable one (``fsync=on``), unlike the session's throwaway test server
of tests/pg.py (``fsync=off``), which other tests share.

The server is started the way tests/pg.py starts it: Debian's server binaries
(``FIREFLOW_PG_BINDIR``, else ``pg_config --bindir``, else the newest
``/usr/lib/postgresql/*/bin``, else ``initdb`` on ``PATH``), a fresh temporary
folder, a unix socket in that folder and no TCP port, ``trust`` authentication for
the socket, and, when run as root, the server commands run as the ``postgres``
system user (else ``nobody``) through ``runuser``.

``Cluster(durable=True)`` keeps PostgreSQL's durable defaults (``fsync=on``,
``synchronous_commit=on``, ``full_page_writes=on``) and syncs the new cluster's
files; ``durable=False`` turns ``fsync`` and ``full_page_writes`` off (faster, and
still honest about a *process* crash, which is all the tests simulate: the kernel
keeps what was written) but keeps ``synchronous_commit=on``, so a commit is
acknowledged only after its WAL reached the kernel.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


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

    def version(p: str) -> int:
        try:
            return int(Path(p).parent.parent.name)
        except ValueError:
            return 0

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def run_as() -> list[str]:
    """The prefix that runs a server command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("PostgreSQL cannot run as root and runuser is missing")
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
        self, *, durable: bool = True, max_connections: int = 60, root: str | None = None
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
        import psycopg

        names = ("server_version", "fsync", "synchronous_commit", "full_page_writes",
                 "wal_level", "wal_sync_method", "shared_buffers", "max_connections",
                 "commit_delay")  # fmt: skip
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            return {n: str(conn.execute(f"SHOW {n}").fetchone()[0]) for n in names}

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
