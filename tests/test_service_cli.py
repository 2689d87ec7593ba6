"""``fireflow serve`` as a newcomer runs it (docs/service.md), and ``fireflow serve token``.

* tokens: created (printed once; only a salted hash is stored, mode 0600), listed
  (never the token), revoked (refused from then on), for a known agency only;
* the documented flow: ``fireflow serve`` in a fresh folder (the default SQLite
  store), a token from ``fireflow serve token create``, a command posted, the
  dashboard opened; the server is a real subprocess on 127.0.0.1 with a bounded
  start-up wait, stopped at the end;
* ``fireflow serve openapi`` prints docs/openapi.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fireflow.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_tokens_are_created_listed_and_revoked(tmp_path):
    state = str(tmp_path / "state")
    created = _invoke(
        "serve", "token", "create", "--agency", "town", "--person", "李", "--state-dir", state
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ff_")
    stored = (tmp_path / "state" / "tokens.json").read_text(encoding="utf-8")
    assert token not in stored
    assert token[20:] not in stored  # not the secret either (ff_<16 hex>_<secret>)
    assert (tmp_path / "state" / "tokens.json").stat().st_mode & 0o077 == 0
    listed = json.loads(_invoke("serve", "token", "list", "--json", "--state-dir", state).stdout)
    assert [(e["agency"], e["person"], e["revoked_at"]) for e in listed] == [("town", "李", None)]
    assert "hash" not in listed[0]
    assert "salt" not in listed[0]
    revoked = _invoke("serve", "token", "revoke", listed[0]["id"], "--state-dir", state)
    assert revoked.exit_code == 0
    listed = json.loads(_invoke("serve", "token", "list", "--json", "--state-dir", state).stdout)
    assert listed[0]["revoked_at"] is not None


def test_a_token_for_an_unknown_agency_is_refused(tmp_path):
    r = _invoke("serve", "token", "create", "--agency", "nobody", "--state-dir", str(tmp_path))
    assert r.exit_code == 1
    assert not (tmp_path / "tokens.json").exists()


def test_openapi_command_prints_the_committed_document():
    r = _invoke("serve", "openapi")
    assert r.exit_code == 0
    assert r.stdout.encode("utf-8") == (ROOT / "docs" / "openapi.json").read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quick_start() -> str:
    """The curl commands of docs/service.md's quick start, as written there."""
    doc = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    section = doc.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    assert "fireflow serve token create --agency town --person 李" in blocks[0]
    return blocks[1]


def _endpoint_examples() -> str:
    doc = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    section = doc.split("## Endpoints", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    return block


@pytest.mark.skipif(shutil.which("curl") is None, reason="the docs use curl")
def test_the_newcomer_flow_of_the_docs(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FIREFLOW_DATABASE_URL", None)
    fireflow = [sys.executable, "-m", "fireflow.cli"]
    token = subprocess.run(
        [*fireflow, "serve", "token", "create", "--agency", "town", "--person", "李"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [*fireflow, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        script = _quick_start().replace("TOKEN=ff_...", f"TOKEN={token}")
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        shell = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        answers = [json.loads(line) for line in shell.stdout.splitlines() if line.strip()]
        health, posted, state = answers
        assert health["status"] == "ok"
        assert posted["state"] == "reported"
        assert posted["events"][0]["actor"] == {"agency": "town", "person": "李"}
        assert state["state"] == "reported"
        # every curl example of the endpoints section, as written (the route is If-Match "1")
        examples = _endpoint_examples().replace("8000", str(port))
        shell = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", f"TOKEN={token}\n{examples}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
        assert shell.returncode == 0, shell.stderr
        after = httpx.get(f"{base}/tickets/CL-0001", headers=headers, trust_env=False)
        assert after.json()["state"] == "routed"
        assert "一区一档" in (tmp_path / "dossier.html").read_text(encoding="utf-8")
        page = httpx.get(f"{base}/dashboard", headers=headers, trust_env=False, timeout=30)
        assert page.status_code == 200
        assert "CL-0001" in page.text
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert (tmp_path / "fireflow-store.sqlite").exists()  # the default embedded store
    assert (tmp_path / ".fireflow-service" / "audit.sqlite").exists()
