"""A database password never reaches an error, a log line or a repr (issue 23, item 3).

Malformed ``postgresql://user:PASSWORD@…`` connection strings (libpq quotes what it
could not read, sometimes the whole string) go through every API and every command
that takes a store: ``PostgresStore``, ``copy_store`` / ``opened``, ``fireflow store
…`` (whose arguments are SQLite paths: a URL given there is a missing file, shown
without its password), ``fireflow tickets --store`` and ``FIREFLOW_DATABASE_URL``,
``--events`` of ``dossier`` and ``forms``, ``simulate --calibrate-from``.  Each time the
password text appears nowhere in stdout, stderr, the exception's ``str`` and ``repr``.
"""

from __future__ import annotations

import pytest

from fireflow.cli import main
from fireflow.store.errors import StoreError, StoreNotFound, redact, secrets_of

pytest.importorskip("psycopg")

# (connection string, the password text as written in it)
URLS = [
    ("postgresql://fireflow:PASSWORD@[::1/changle", "PASSWORD"),  # libpq quotes it whole
    ("postgresql://fireflow:PASSWORD@db.invalid/changle?bogus=1", "PASSWORD"),
    ("fireflow:PASSWORD@db dbname=changle", "PASSWORD"),  # 'missing "=" after …'
    ("postgresql://fireflow:PASS%zzWORD@db/changle", "PASS%zzWORD"),  # a bad %-escape
    ("host=db password=PASSWORD dbname=changle bogus", "PASSWORD"),
    ("host=db password='PASS WORD' dbname=changle port=x", "PASS WORD"),
    ("postgres://fireflow:PASSWORD@127.0.0.1:1/changle", "PASSWORD"),  # nobody listens
    ("postgresql://fireflow:PA:SS@WORD@db.invalid/changle", "PA:SS@WORD"),
]


def _clean(text: str, secret: str) -> None:
    assert secret not in text, text
    assert "PASSWORD" not in text, text


@pytest.mark.parametrize(("url", "secret"), URLS)
@pytest.mark.parametrize("kw", [{}, {"readonly": True}, {"create": False}])
def test_postgres_store_errors_never_show_the_password(url, secret, kw):
    from fireflow.store.postgres import PostgresStore

    with pytest.raises(StoreError) as info:
        PostgresStore(url, connect_timeout=1, **kw)
    for text in (str(info.value), repr(info.value), *map(str, info.value.args)):
        _clean(text, secret)
    _clean(getattr(info.value, "target", ""), secret)


@pytest.mark.parametrize(("url", "secret"), URLS)
def test_copy_and_opened_never_show_the_password(url, secret, tmp_path):
    from fireflow.store import MemoryStore, copy_store
    from fireflow.store.transfer import opened

    with pytest.raises(StoreError) as info, opened(url, readonly=True) as store:
        copy_store(store, MemoryStore())
    _clean(str(info.value) + repr(info.value), secret)


def _argvs(url: str, tmp: str) -> list[list[str]]:
    return [
        ["store", "copy", url, f"{tmp}/dst.db"],
        ["store", "copy", f"{tmp}/src.db", url],
        ["store", "verify", url],
        ["store", "tickets", url],
        ["store", "checkpoint", url, "--at", "2022-07-01T00:00+08:00"],
        ["store", "replay", url, "T1"],
        ["tickets", "--store", url],
        ["tickets", "--store", url, "--counts", "--json"],
        ["dossier", "金峰小区", "--events", url],
        ["forms", "annex1", "--events", url],
        ["forms", "annex2", "--events", url],
        ["forms", "annex3", "--events", url],
        ["simulate", "--calibrate-from", url],
    ]


@pytest.mark.parametrize(("url", "secret"), URLS)
def test_no_command_prints_the_password(url, secret, tmp_path, capsys, monkeypatch):
    from fireflow.store import SQLiteStore
    from fireflow.testing.store_contract import contract_history

    monkeypatch.chdir(tmp_path)
    with SQLiteStore(tmp_path / "src.db") as store:
        store.append("T1", contract_history("T1", 2), 0)
    for argv in _argvs(url, str(tmp_path)):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code != 0, (argv, out, err)
        assert "Traceback" not in err
        _clean(out + err, secret)


@pytest.mark.parametrize(("url", "secret"), URLS)
def test_the_environment_url_is_never_printed(url, secret, capsys, monkeypatch):
    monkeypatch.setenv("FIREFLOW_DATABASE_URL", url)
    code = main(["tickets"])
    out, err = capsys.readouterr()
    assert code != 0
    _clean(out + err, secret)


def test_redact_and_secrets_of():
    assert secrets_of("postgresql://u:p%41ss@h/d") == ["p%41ss"]
    assert redact("postgresql://u:s3@h/d and password=s3 and u:s3@h") == (
        "postgresql://u:***@h/d and password=*** and u:***@h"
    )
    assert redact("CL-0001: 10:00 at 金峰小区") == "CL-0001: 10:00 at 金峰小区"
    err = StoreNotFound("postgresql:/u:PASSWORD@h/d")  # a URL read as a path
    assert "PASSWORD" not in str(err) + repr(err) + err.path


def test_a_store_whose_path_holds_a_password_never_shows_it(tmp_path, monkeypatch):
    from fireflow.store import SQLiteStore

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "postgresql:"
    folder.mkdir()
    path = "postgresql:/fireflow:PASSWORD@db"  # a URL mistyped where a path is read
    with SQLiteStore(path) as store:
        assert "PASSWORD" not in repr(store)
