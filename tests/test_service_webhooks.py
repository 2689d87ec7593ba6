"""Signed webhooks, delivered to a receiver on 127.0.0.1 only.

* every event is delivered in order, once, signed (HMAC-SHA256 over the timestamp
  and the body) with the injected clock's timestamp;
* a receiver that fails is retried with bounded exponential back-off (a fake sleep
  records the waits), then the event goes to the dead-letter table and the sender
  moves on;
* a restarted sender resumes after its checkpoint: nothing is delivered twice;
* a redirect is never followed (the sender only ever targets the configured URL).
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pendulum
import pytest
from service_live import NOW

from fireflow.errors import InvalidArgument
from fireflow.service.audit import AuditLog
from fireflow.service.engine import Engine
from fireflow.service.webhooks import WebhookSender, check_url, signature, verify_signature

SECRET = b"a-shared-secret-of-32-bytes-long"


class Receiver:
    """An HTTP server on 127.0.0.1 that records requests; ``fail`` answers 500 that many times."""

    def __init__(self, fail: int = 0, status: int = 204, location: str | None = None) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail = fail
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(500)
                else:
                    self.send_response(status)
                    if location:
                        self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def engine():
    engine = Engine.memory()
    at = NOW
    for tid in ("W-1", "W-2"):
        engine.execute(
            tid,
            {
                "kind": "report",
                "at": at,
                "actor": {"agency": "town"},
                "community": "金峰小区",
                "town": "金峰镇",
                "category": "fire_lane_vehicle",
                "subtype": "private_car",
                "location": "inside",
                "source": "patrol",
            },
        )
        engine.execute(tid, {"kind": "route", "at": at, "actor": {"agency": "town"}})
    return engine


def _sender(engine, url, tmp_path, audit, sleeps, **kw):
    return WebhookSender(
        engine,
        url,
        SECRET,
        tmp_path / "webhook.json",
        audit,
        clock=lambda: NOW,
        sleep=sleeps.append,
        **kw,
    )


def test_every_event_is_delivered_in_order_and_signed(engine, tmp_path):
    receiver, audit, sleeps = Receiver(), AuditLog(":memory:"), []
    try:
        sender = _sender(engine, receiver.url, tmp_path, audit, sleeps)
        assert sender.run(threading.Event(), idle_timeout=0.05) == 4
    finally:
        receiver.close()
    positions = [int(h["X-Fireflow-Position"]) for h, _ in receiver.requests]
    assert positions == [0, 1, 2, 3]
    ts = int(NOW.timestamp())
    for headers, body in receiver.requests:
        assert headers["X-Fireflow-Timestamp"] == str(ts)
        assert verify_signature(
            SECRET, headers["X-Fireflow-Timestamp"], headers["X-Fireflow-Signature"], body, now=ts
        )
        assert not verify_signature(
            b"another-secret-of-enough-bytes!!",
            str(ts),
            headers["X-Fireflow-Signature"],
            body,
            now=ts,
        )
    assert sleeps == []
    assert audit.dead_letters() == []


def test_a_restarted_sender_delivers_nothing_twice(engine, tmp_path):
    receiver, audit = Receiver(), AuditLog(":memory:")
    try:
        _sender(engine, receiver.url, tmp_path, audit, []).run(threading.Event(), idle_timeout=0.05)
        engine.execute("W-1", {"kind": "set_deadline", "at": NOW, "actor": {"agency": "town"}})
        again = _sender(engine, receiver.url, tmp_path, audit, [])
        assert again.run(threading.Event(), idle_timeout=0.05) == 1
    finally:
        receiver.close()
    ids = [h["X-Fireflow-Event-Id"] for h, _ in receiver.requests]
    assert len(ids) == len(set(ids)) == 5


def test_failures_are_retried_with_bounded_backoff(engine, tmp_path):
    receiver, audit, sleeps = Receiver(fail=2), AuditLog(":memory:"), []
    try:
        sender = _sender(engine, receiver.url, tmp_path, audit, sleeps, backoff_base=0.5)
        sender.run(threading.Event(), idle_timeout=0.05)
    finally:
        receiver.close()
    assert sleeps == [0.5, 1.0]  # two failures, then delivered
    assert audit.dead_letters() == []
    assert len(receiver.requests) == 4 + 2


def test_an_event_that_never_gets_through_is_a_dead_letter(engine, tmp_path):
    receiver, audit, sleeps = Receiver(fail=10**6), AuditLog(":memory:"), []
    try:
        sender = _sender(
            engine, receiver.url, tmp_path, audit, sleeps, max_attempts=4, backoff_cap=1.0
        )
        sender.run(threading.Event(), idle_timeout=0.05)
    finally:
        receiver.close()
    assert sleeps == [0.5, 1.0, 1.0] * 4  # capped, per event
    letters = audit.dead_letters()
    assert [d["position"] for d in letters] == [0, 1, 2, 3]
    assert all(d["attempts"] == 4 and d["last_error"] == "HTTP 500" for d in letters)
    assert sender.consumer.after == 3  # it moved on


def test_a_redirect_is_never_followed(engine, tmp_path):
    elsewhere = Receiver()
    receiver = Receiver(status=307, location=elsewhere.url)
    audit = AuditLog(":memory:")
    try:
        sender = _sender(engine, receiver.url, tmp_path, audit, [], max_attempts=1)
        sender.run(threading.Event(), idle_timeout=0.05)
    finally:
        receiver.close()
        elsewhere.close()
    assert elsewhere.requests == []
    assert {d["last_error"] for d in audit.dead_letters()} == {"HTTP 307"}


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "127.0.0.1:80", "http:///x"]
)
def test_webhook_urls_are_checked(url):
    with pytest.raises(InvalidArgument):
        check_url(url)


def test_a_signature_is_over_timestamp_and_body():
    at = int(pendulum.datetime(2022, 3, 21, tz="Asia/Shanghai").timestamp())
    sig = signature(SECRET, at, b"{}")
    assert verify_signature(SECRET, str(at), sig, b"{}", now=at)
    assert not verify_signature(SECRET, str(at + 1), sig, b"{}", now=at)  # timestamp signed
    assert not verify_signature(SECRET, str(at), sig, b"{ }", now=at)  # body signed
    assert not verify_signature(SECRET, str(at), sig, b"{}", now=at + 301)  # replay window


def test_fireflow_serve_sends_signed_webhooks(tmp_path):
    """``fireflow serve --webhook-url --webhook-secret-file`` as docs/service.md shows it."""
    receiver = Receiver()
    (tmp_path / "webhook.secret").write_bytes(SECRET + b"\n")
    env = {k: v for k, v in os.environ.items() if k != "FIREFLOW_DATABASE_URL"}
    cli = [sys.executable, "-m", "fireflow.cli", "serve"]
    token = subprocess.run(
        [*cli, "token", "create", "--agency", "town"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            *cli,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--webhook-url",
            receiver.url,
            "--webhook-secret-file",
            "webhook.secret",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(f"{base}/health", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                assert server.poll() is None
                time.sleep(0.1)
        r = httpx.post(
            f"{base}/tickets/W-9/commands",
            json={
                "kind": "report",
                "command_id": "w9",
                "at": "2022-03-21T10:00:00+08:00",
                "community": "金峰小区",
                "town": "金峰镇",
                "category": "fire_lane_vehicle",
                "subtype": "private_car",
                "location": "inside",
                "source": "patrol",
            },
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
            timeout=30,
        )
        assert r.status_code == 201, r.text
        for _ in range(300):  # the sender polls the store (SQLite): wait, bounded
            if receiver.requests:
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.communicate(timeout=30)
        receiver.close()
    ((headers, body),) = receiver.requests
    assert headers["X-Fireflow-Event-Id"] == "w9/1"
    assert verify_signature(
        SECRET,
        headers["X-Fireflow-Timestamp"],
        headers["X-Fireflow-Signature"],
        body,
        now=int(headers["X-Fireflow-Timestamp"]),
    )
