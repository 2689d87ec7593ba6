"""Signed webhooks (回调通知): every event, in order, POSTed to one configured URL.

The sender is a :class:`~fireflow.store.subscription.Consumer`: it resumes after the
last event it delivered (its checkpoint file), so a restart neither skips nor
repeats a delivered event (a delivery interrupted before its commit is sent again:
receivers de-duplicate by ``X-Fireflow-Event-Id``).

Each request carries::

    Content-Type: application/json
    X-Fireflow-Event-Id: <event id>
    X-Fireflow-Position: <global position>
    X-Fireflow-Timestamp: <unix seconds>
    X-Fireflow-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The receiver recomputes the HMAC over the timestamp and the raw body with the shared
secret, compares in constant time, and refuses a timestamp older than a few minutes
(a replay).  :func:`verify_signature` does exactly that.

A delivery that does not get a 2xx answer is retried with exponential back-off
(``backoff_base * 2**n`` seconds, at most ``backoff_cap``) up to ``max_attempts``
times; then it is recorded as a **dead letter** (the audit database's
``dead_letters`` table, with the body and the last error) and the sender moves on.
The sender only ever posts to the configured URL: it follows no redirect.

>>> body = b'{"kind": "report"}'
>>> sig = signature(b"secret", 1650000000, body)
>>> verify_signature(b"secret", "1650000000", sig, body, now=1650000060)
True
>>> verify_signature(b"secret", "1650000000", sig, body, now=1650009999)
False
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from fireflow.errors import InvalidArgument
from fireflow.service.audit import AuditLog
from fireflow.service.clock import Clock, utc_now
from fireflow.service.engine import Engine, event_data

__all__ = ["MAX_SKEW", "WebhookSender", "signature", "verify_signature"]

#: The oldest timestamp a receiver should accept, in seconds.
MAX_SKEW = 300
_log = logging.getLogger("fireflow.service.webhooks")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    mac = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, given: str, body: bytes, *, now: int, max_skew: int = MAX_SKEW
) -> bool:
    """Whether ``given`` signs ``body`` at ``timestamp`` and the timestamp is recent."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > max_skew:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), given)


def check_url(url: str) -> str:
    """A webhook URL: http or https with a host, no credentials in it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("webhook_url", "expected an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise InvalidArgument("webhook_url", "credentials in the URL are refused")
    return url


class WebhookSender:
    """Delivers the store's events to ``url``, signed with ``secret``; see the module."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        secret: bytes,
        checkpoint: str | Path,
        audit: AuditLog,
        *,
        name: str = "webhook",
        kinds: tuple[str, ...] = (),
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: float = 10.0,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if len(secret) < 16:
            raise InvalidArgument("webhook_secret", "at least 16 bytes")
        if max_attempts < 1:
            raise InvalidArgument("max_attempts", "at least 1")
        self.url = check_url(url)
        self._secret = secret
        self.consumer = engine.consumer(name, checkpoint)
        self.audit = audit
        self.kinds = kinds
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.sleep = sleep
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport, trust_env=False
        )

    def delays(self) -> list[float]:
        """The waits between attempts (bounded exponential back-off, no randomness)."""
        return [
            min(self.backoff_cap, self.backoff_base * 2**n) for n in range(self.max_attempts - 1)
        ]

    def deliver(self, position: int, event_id: str, body: bytes) -> bool:
        """POST one event, retrying; False (and a dead letter) when every attempt failed."""
        waits = self.delays()
        last_error = ""
        for attempt in range(self.max_attempts):
            ts = int(self.clock().timestamp())
            headers = {
                "Content-Type": "application/json",
                "X-Fireflow-Event-Id": event_id,
                "X-Fireflow-Position": str(position),
                "X-Fireflow-Timestamp": str(ts),
                "X-Fireflow-Signature": signature(self._secret, ts, body),
            }
            try:
                response = self._client.post(self.url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return True
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if attempt < len(waits):
                self.sleep(waits[attempt])
        self.audit.dead_letter(
            at=self.clock(),
            url=self.url,
            position=position,
            event_id=event_id,
            attempts=self.max_attempts,
            last_error=last_error,
            body=body.decode("utf-8"),
        )
        _log.warning("webhook dead letter: %s at %d: %s", event_id, position, last_error)
        return False

    def run(self, stop: threading.Event, *, idle_timeout: float | None = None) -> int:
        """Deliver events until ``stop`` is set (or ``idle_timeout`` passes); return how many."""
        sent = 0
        for se in self.consumer.events(stop=stop, idle_timeout=idle_timeout):
            if not self.kinds or se.event.kind in self.kinds:
                body = orjson.dumps(
                    {"position": se.position, "event": event_data(se.event)},
                    option=orjson.OPT_SORT_KEYS,
                )
                self.deliver(se.position, se.event.event_id, body)
                sent += 1
            self.consumer.commit(se)
        return sent

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread."""
        thread = threading.Thread(target=self.run, args=(stop,), name="fireflow-webhook")
        thread.daemon = True
        thread.start()
        return thread

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
