"""``fireflow serve`` and ``fireflow serve token`` with hostile input, under the CLI's contract.

The contract of tests/test_adversarial_cli.py: the documented exit status (1 bad input,
2 usage), no traceback, exactly one readable error line, no raw control or
bidirectional character on the terminal, and nothing written (no file or folder made).
Every case runs in-process through :func:`fireflow.cli.main`; ``uvicorn.run`` is
replaced by a function that fails, so a case that got as far as serving fails too.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import uvicorn

from fireflow.cli import main

BIDI = "金峰\u202e小区"
ESC = "town\x1b[2J"


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _check(code: int, expected: int, out: str, err: str) -> None:
    assert code == expected, err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(("错误 error:", "用法错误 usage error:")), err
    for ch in out + err:
        assert unicodedata.category(ch) not in ("Cc", "Cf") or ch in "\n\t", repr(ch)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    bad = tmp_path / "bad-state"
    bad.mkdir()
    (bad / "tokens.json").write_text("{not json", encoding="utf-8")
    worse = tmp_path / "worse-state"
    worse.mkdir()
    (worse / "tokens.json").write_text(
        json.dumps({"format": "fireflow.tokens/1", "tokens": [{"id": 1}]}), encoding="utf-8"
    )
    return tmp_path


SERVE_CASES = [
    (("--plan", "no-such-plan"), 1),
    (("--plan", BIDI), 1),
    (("--port", "70000"), 2),
    (("--store", "a-folder"), 1),
    (("--state-dir", "a-file"), 1),
    (("--state-dir", "bad-state"), 1),
    (("--state-dir", "worse-state"), 1),
    (("--webhook-url", "http://127.0.0.1:9/x"), 1),
    (("--webhook-url", "ftp://127.0.0.1/x", "--webhook-secret-file", "a-file"), 1),
    (("--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", "missing"), 1),
]


@pytest.mark.parametrize(("args", "expected"), SERVE_CASES)
def test_serve_refuses_hostile_options_before_anything_is_made(
    folder, args, expected, capsys, monkeypatch
):
    def never(*args, **kwargs):  # a case that got this far would have served
        raise AssertionError("the server would have started")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.delenv("FIREFLOW_DATABASE_URL", raising=False)
    monkeypatch.chdir(folder)
    before = _files(folder)
    code = main(["serve", *args])
    out, err = capsys.readouterr()
    _check(code, expected, out, err)
    assert _files(folder) == before


TOKEN_CASES = [
    (("create", "--agency", ESC), 1),
    (("create", "--agency", "nobody"), 1),
    (("create", "--agency", "town", "--person", BIDI), 1),
    (("create", "--agency", "town", "--note", "x\x00y"), 1),
    (("create",), 2),
    (("revoke", "nope\x1b[2J"), 1),
    (("list", "--state-dir", "bad-state"), 1),
    (("list", "--state-dir", "worse-state"), 1),
    (("create", "--agency", "town", "--state-dir", "a-file"), 1),
]


@pytest.mark.parametrize(("args", "expected"), TOKEN_CASES)
def test_token_commands_refuse_hostile_input(folder, args, expected, capsys, monkeypatch):
    monkeypatch.chdir(folder)
    before = _files(folder)
    code = main(["serve", "token", *args])
    out, err = capsys.readouterr()
    _check(code, expected, out, err)
    assert _files(folder) == before
