"""Read-only readers: nothing that only reads a store changes a byte of it or creates a file.

Each case snapshots the store's folder (names and bytes of every file, so the
``-wal`` and ``-shm`` siblings too) before and after every reading command and
API, for a good store, an empty file, a foreign SQLite database, a truncated
store, a missing path and a store on a read-only folder.  Bad files end with a
typed :class:`~fireflow.store.errors.StoreError`; on the command line, exit
status 1 and one readable line, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.cli import main
from fireflow.errors import FireflowError
from fireflow.history import read_events, read_history
from fireflow.store import SQLiteStore, verify
from fireflow.store.errors import StoreError, StoreNotFound
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")


def _tickets() -> list[Ticket]:
    out = []
    for n, community in enumerate(("金峰小区", "金峰小区", "首占花园"), start=1):
        t = Ticket(f"T-{n}", PLAN)
        when = datetime(2022, 3, 20 + n, 10, tzinfo=SH)
        t.command(
            "report", when, "town", "李", community=community, town="金峰镇",
            category="fire_lane_vehicle", subtype="private_car", location="inside",
            source="town_inspection", description=f"第{n}处",
        )  # fmt: skip
        t.command("route", when, "town")
        out.append(t)
    return out


def make_store(path: Path) -> Path:
    with SQLiteStore(path) as store:
        for t in _tickets():
            store.append(t.id, t.events, 0)
    return path


def snapshot(folder: Path, *, skip_shm: bool = False) -> dict[str, bytes | None]:
    """Every file in the folder by name, with its bytes (``None`` for an -shm when skipped)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(folder.iterdir()):
        out[p.name] = None if skip_shm and p.name.endswith("-shm") else p.read_bytes()
    return out


# Every command that only reads a store, with the store's path put in for DB.
READERS: list[list[str]] = [
    ["store", "verify", "DB"],
    ["store", "verify", "DB", "--json"],
    ["store", "tickets", "DB"],
    ["store", "tickets", "DB", "--json"],
    ["store", "replay", "DB", "T-1"],
    ["store", "checkpoint", "DB", "--at", "2022-04-01T00:00+08:00"],
    ["dossier", "金峰小区", "--events", "DB"],
    ["forms", "annex1", "--events", "DB", "--json"],
    ["forms", "annex2", "--events", "DB", "--json"],
    ["forms", "annex3", "--events", "DB", "--json"],
]


def run(argv: list[str], db: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(db) if a == "DB" else a for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _api_reads(db: Path) -> None:
    with SQLiteStore(db, readonly=True) as store:
        assert verify(store).ok
        store.tickets(), store.count(), store.read("T-1"), list(store.read_all())
    read_events(db)
    read_history(db)


# --------------------------------------------------------------------------- #
# A good store


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]))
def test_reading_a_good_store_changes_nothing(argv, tmp_path, capsys):
    db = make_store(tmp_path / "changle.db")
    before = snapshot(tmp_path)
    assert list(before) == ["changle.db"]  # a cleanly closed store: no -wal, no -shm
    code, _out, err = run(argv, db, capsys)
    assert code == 0, err
    assert snapshot(tmp_path) == before


def test_the_api_reads_a_good_store_without_changing_it(tmp_path):
    db = make_store(tmp_path / "changle.db")
    before = snapshot(tmp_path)
    _api_reads(db)
    assert snapshot(tmp_path) == before


def test_a_readonly_store_refuses_to_append(tmp_path):
    db = make_store(tmp_path / "changle.db")
    before = snapshot(tmp_path)
    t = Ticket("T-9", PLAN)
    t.command(
        "report", datetime(2022, 3, 25, tzinfo=SH), "town", community="金峰小区",
        town="金峰镇", category="fire_lane_vehicle", subtype="private_car",
        location="inside", source="town_inspection",
    )  # fmt: skip
    with SQLiteStore(db, readonly=True) as store:
        assert store.readonly
        with pytest.raises(StoreError, match="read-only"):
            store.append("T-9", t.events, 0)
        assert "readonly=True" in repr(store)
    assert snapshot(tmp_path) == before


def test_a_store_with_a_live_writer_is_read_through_its_log(tmp_path, capsys):
    """A writer holds the store open, its last batch still in the -wal: readers see it.

    SQLite readers take their read lock in the shared-memory index (-shm), so
    only that file's bytes may change; the store and its log do not, and no file
    appears.
    """
    db = make_store(tmp_path / "changle.db")
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA wal_autocheckpoint = 0")  # keep what follows in the -wal
    writer.execute("UPDATE fireflow_meta SET value = value")  # a commit into the log
    writer.commit()
    with SQLiteStore(db) as store:  # append through the store while the writer is open
        t = Ticket("T-9", PLAN)
        t.command(
            "report", datetime(2022, 3, 25, tzinfo=SH), "town", community="金峰小区",
            town="金峰镇", category="fire_lane_vehicle", subtype="private_car",
            location="inside", source="town_inspection",
        )  # fmt: skip
        store.append("T-9", t.events, 0)
    try:
        assert (tmp_path / "changle.db-wal").stat().st_size > 0
        before = snapshot(tmp_path, skip_shm=True)
        code, out, err = run(["store", "verify", "DB"], db, capsys)
        assert code == 0, err
        assert "4 个工单" in out  # T-9 is read from the log
        with SQLiteStore(db, readonly=True) as store:
            assert "T-9" in store.tickets()
        assert snapshot(tmp_path, skip_shm=True) == before
    finally:
        writer.close()


def test_a_log_with_content_but_no_index_is_refused_not_recovered(tmp_path):
    """Reading such a log needs a recovery, which writes: refused, nothing changed."""
    db = make_store(tmp_path / "changle.db")
    (tmp_path / "changle.db-wal").write_bytes(b"\0" * 64)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError, match="write-ahead log"):
        SQLiteStore(db, readonly=True)
    assert snapshot(tmp_path) == before


def test_a_file_changed_under_an_immutable_read_fails_the_read(tmp_path):
    db = make_store(tmp_path / "changle.db")
    with SQLiteStore(db, readonly=True) as store:
        assert store.count() == 6
        with SQLiteStore(db) as writer:  # another process writes meanwhile
            writer._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            writer._conn.execute("UPDATE fireflow_meta SET value = value")
        os.utime(db, ns=(1, 1))  # whatever the clock's resolution, the file is not the same
        with pytest.raises(StoreError, match="changed while it was being read"):
            store.count()


# --------------------------------------------------------------------------- #
# Bad files: typed errors, exit 1, one line, nothing changed


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
    con.execute("INSERT INTO accounts (owner) VALUES ('someone')")
    con.commit()
    con.close()


def _truncated(path: Path) -> None:
    make_store(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_sqlite(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)


BAD = {"empty": _empty, "foreign": _foreign, "truncated": _truncated, "garbage": _not_sqlite}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]))
def test_a_bad_file_is_refused_in_one_line_and_left_as_it_was(case, argv, tmp_path, capsys):
    db = tmp_path / "bad.db"
    BAD[case](db)
    before = snapshot(tmp_path)
    code, out, err = run(argv, db, capsys)
    assert code == 1, (out, err)
    assert "Traceback" not in err + out
    assert err.strip(), out
    if argv[:2] != ["store", "verify"]:  # verify may list its problems, one per line
        assert len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["empty", "foreign", "garbage"])
def test_a_bad_file_raises_a_store_error_from_the_api(case, tmp_path):
    db = tmp_path / "bad.db"
    BAD[case](db)
    before = snapshot(tmp_path)
    with pytest.raises(StoreError) as info:
        SQLiteStore(db, readonly=True)
    assert isinstance(info.value, FireflowError)
    assert str(db) in str(info.value)
    assert snapshot(tmp_path) == before


def test_a_truncated_store_fails_verification_from_the_api(tmp_path):
    db = tmp_path / "cut.db"
    _truncated(db)
    before = snapshot(tmp_path)
    try:
        with SQLiteStore(db, readonly=True) as store:
            report = verify(store)
        assert not report.ok
    except StoreError:
        pass  # cut inside the schema: refused when opened, equally fine
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]))
def test_a_missing_path_is_not_created(argv, tmp_path, capsys):
    db = tmp_path / "missing.db"
    code, out, err = run(argv, db, capsys)
    assert code == 1, (out, err)
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StoreNotFound):
        SQLiteStore(db, readonly=True)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="folder"):
        SQLiteStore(tmp_path, readonly=True)


# --------------------------------------------------------------------------- #
# A store on a read-only folder or medium


_BIND_TMP_READONLY = "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"


def _readonly_mount_works() -> bool:
    if shutil.which("unshare") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", _BIND_TMP_READONLY],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return probe.returncode == 0


@pytest.mark.parametrize("argv", READERS, ids=lambda a: " ".join(a[:3]))
def test_a_store_on_a_readonly_folder_verifies_and_is_unchanged(argv, tmp_path, capsys):
    """chmod 0555 stops a normal user; root ignores it, so it is checked again below."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = make_store(folder / "changle.db")
    before = snapshot(folder)
    folder.chmod(0o555)
    try:
        code, _out, err = run(argv, db, capsys)
    finally:
        folder.chmod(0o755)
    assert code == 0, err
    assert snapshot(folder) == before


@pytest.mark.skipif(not _readonly_mount_works(), reason="needs root and mount namespaces")
def test_a_store_on_a_readonly_mount_verifies(tmp_path):
    """A real read-only medium: the folder bind-mounted read-only in a private namespace."""
    folder = tmp_path / "medium"
    folder.mkdir()
    db = make_store(folder / "changle.db")
    before = snapshot(folder)
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && '
        'touch "$0/probe" 2>/dev/null && exit 99; exec "$@"'
    )
    code = "import sys; from fireflow.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for argv in (["store", "verify", str(db)], ["dossier", "金峰小区", "--events", str(db)]):
        proc = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script, str(folder), str(folder),
             sys.executable, "-c", code, *argv],
            capture_output=True, text=True, check=False, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
    assert snapshot(folder) == before


# --------------------------------------------------------------------------- #
# Stored text reaches the terminal escaped


def _hostile_store(path: Path) -> Path:
    """A store whose ticket id carries a terminal escape (written below the API's checks)."""
    make_store(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE events SET ticket_id = 'T-1\x1b[2J' WHERE ticket_id = 'T-1'")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize(
    "argv",
    [["store", "verify", "DB"], ["store", "tickets", "DB"], ["store", "replay", "DB", "T-2"]],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_stored_escape_sequence_is_shown_not_obeyed(argv, tmp_path, capsys):
    db = _hostile_store(tmp_path / "evil.db")
    _code, out, err = run(argv, db, capsys)
    assert "\x1b" not in out + err
    if argv[1] != "replay":
        assert "\\u001b[2J" in out + err
    assert "Traceback" not in err


def test_a_replayed_ticket_id_is_escaped(tmp_path, capsys):
    db = make_store(tmp_path / "ok.db")
    code, _out, err = run(["store", "replay", "DB", "T-1\x1b[2J"], db, capsys)
    assert code == 1
    assert "\x1b" not in err


def test_escape_helpers_keep_line_breaks(capsys):
    from fireflow.cli.store import _lines

    assert _lines("a\x1b\nb\u202e") == "a\\u001b\nb\\u202e"


_UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tid=st.text(
        alphabet=st.characters(codec="utf-8", categories=("Cc", "Cf", "Zl", "Zp", "Lo", "Ll")),
        min_size=1,
        max_size=12,
    )
)
@pytest.mark.parametrize(
    "argv",
    [
        ["store", "tickets", "DB"],
        ["store", "tickets", "DB", "--json"],
        ["store", "verify", "DB"],
        ["store", "verify", "DB", "--json"],
    ],
)
def test_no_stored_text_reaches_the_terminal_raw(argv, tid, tmp_path_factory, capsys):
    """Whatever a stored ticket id holds, nothing but line breaks is a control on the terminal."""
    db = make_store(tmp_path_factory.mktemp("evil") / "evil.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE events SET ticket_id = ? WHERE ticket_id = 'T-1'", (tid,))
    con.commit()
    con.close()
    _, out, err = run(argv, db, capsys)
    raw = [c for c in out + err if c != "\n" and unicodedata.category(c) in _UNSAFE]
    assert raw == [], (tid, out, err)
    if argv[-1] == "--json" and argv[1] == "tickets":
        assert tid in {r["ticket"] for r in json.loads(out)}  # the JSON still holds the id


def test_a_path_with_uri_characters_is_opened_as_a_file(tmp_path):
    folder = tmp_path / "a?b#c%20 d 长乐"
    folder.mkdir()
    db = make_store(folder / "x?mode=rw#.db")
    before = snapshot(folder)
    with SQLiteStore(db, readonly=True) as store:
        assert verify(store).ok
    assert snapshot(folder) == before
