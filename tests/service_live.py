"""Shared helpers of the service tests: a real uvicorn server on 127.0.0.1, tokens, commands.

``LiveServer`` runs :func:`fireflow.service.app.create_app` under uvicorn in a thread,
on a socket bound to a free loopback port, with a bounded start-up wait; the tests
talk to it with httpx like any other system would.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pendulum
import uvicorn

from fireflow import load_plan
from fireflow.service.app import create_app
from fireflow.service.audit import AuditLog
from fireflow.service.auth import TokenFile
from fireflow.service.engine import Engine

PLAN = load_plan("changle-2022")
#: The fixed clock of the tests: a Monday of the rectification phase (五(三)).
NOW = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
STARTUP_SECONDS = 15.0


def fixed_clock() -> datetime:
    return NOW


class LiveServer:
    """A uvicorn server in a thread on 127.0.0.1 (a free port)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class Service:
    """A running service with its engine, audit log and tokens per agency."""

    def __init__(self, engine: Engine, state_dir: Path, **options: Any) -> None:
        self.engine = engine
        self.tokens = TokenFile(state_dir / "tokens.json")
        self.audit = AuditLog(state_dir / "audit.sqlite")
        self.app = create_app(
            engine.store,
            engine.plan,
            self.tokens,
            clock=fixed_clock,
            audit=self.audit,
            engine=engine,
            **options,
        )
        self.live = LiveServer(self.app)
        self.token: dict[str, str] = {}
        self.token_ids: dict[str, str] = {}
        for name, agency, person, readonly in (
            ("town", "town", "李", False),
            ("property", "property", "", False),
            ("housing", "housing", "王", False),
            ("fire", "fire", "", False),
            ("auditor", "efficiency", "审计员", True),
            ("revoked", "town", "", False),
        ):
            token, entry = self.tokens.create(agency, person, readonly=readonly, at=NOW)
            self.token[name] = token
            self.token_ids[name] = entry.id
        self.tokens.revoke(self.token_ids["revoked"], at=NOW)

    @property
    def url(self) -> str:
        return self.live.url

    def client(self, who: str | None = "town", **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False, **kw)


@contextmanager
def running(engine: Engine, state_dir: Path, **options: Any) -> Iterator[Service]:
    service = Service(engine, state_dir, **options)
    service.live.start()
    try:
        yield service
    finally:
        service.live.stop()
        service.audit.close()


def report_body(n: int | str, **extra: Any) -> dict[str, Any]:
    """A report of an e-bike charging in a stairwell (R-ROUTE-EVAC), as a client sends it."""
    return {
        "kind": "report",
        "command_id": f"report-{n}",
        "community": "金峰小区",
        "town": "金峰镇",
        "category": "evacuation_blocked",
        "subtype": "ebike_charging",
        "location": "inside",
        "source": "town_inspection",
        "at": "2022-03-21T10:00:00+08:00",
        **extra,
    }


def open_ticket(client: httpx.Client, ticket_id: str, **report: Any) -> None:
    """Report, route and set the deadline of a ticket as the town."""
    for body in (
        report_body(ticket_id, **report),
        {"kind": "route", "command_id": f"route-{ticket_id}", "at": "2022-03-21T10:05:00+08:00"},
        {
            "kind": "set_deadline",
            "command_id": f"deadline-{ticket_id}",
            "at": "2022-03-21T10:10:00+08:00",
        },
    ):
        r = client.post(f"/tickets/{ticket_id}/commands", json=body)
        assert r.status_code in (200, 201), r.text


def lane_report(ticket_id: str) -> dict[str, Any]:
    """A private car on the fire-truck lane (R-ROUTE-LANE-FIRE: fire may punish at once)."""
    return report_body(
        ticket_id, category="fire_lane_vehicle", subtype="private_car", source="patrol"
    )


def load_run(service: Service, clients: int, per_client: int) -> dict[str, Any]:
    """N concurrent clients post ``punish`` (a self-loop) to one shared and to their own ticket.

    Each command has its own ``command_id``; a 409 conflict is retried with the same
    command (and id), as a client should.  Returns what was sent and what came back.
    """
    with service.client("town") as c:
        for ticket in ["CL-L-SAME", *(f"CL-L-{i}" for i in range(clients))]:
            open_ticket(
                c,
                ticket,
                **{
                    k: v
                    for k, v in lane_report(ticket).items()
                    if k in ("category", "subtype", "source")
                },
            )
    accepted: dict[str, str] = {}
    conflicts: list[dict[str, Any]] = []
    others: list[tuple[int, str]] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        with service.client("fire") as c:
            for k in range(per_client):
                ticket = "CL-L-SAME" if k % 2 == 0 else f"CL-L-{i}"
                cid = f"load-{i}-{k}"
                body = {"kind": "punish", "command_id": cid, "at": "2022-03-22T10:00:00+08:00"}
                for _ in range(200):
                    r = c.post(f"/tickets/{ticket}/commands", json=body)
                    if r.status_code == 409:
                        with lock:
                            conflicts.append(r.json())
                        continue
                    with lock:
                        if r.status_code in (200, 201):
                            accepted[cid] = ticket
                        else:
                            others.append((r.status_code, r.text[:200]))
                    break

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return {"accepted": accepted, "conflicts": conflicts, "others": others}


def check_load(service: Service, result: dict[str, Any], clients: int, per_client: int) -> None:
    """0 lost, 0 duplicated, conflicts typed, the store verifies."""
    assert result["others"] == []
    sent = {f"load-{i}-{k}" for i in range(clients) for k in range(per_client)}
    assert set(result["accepted"]) == sent  # every command accepted in the end
    stored: dict[str, int] = {}
    for se in service.engine.store.read_all():
        cid = se.event.event_id.removesuffix("/1")
        if cid.startswith("load-"):
            stored[cid] = stored.get(cid, 0) + 1
            assert se.event.ticket_id == result["accepted"][cid]
    assert stored == dict.fromkeys(sent, 1)  # 0 lost, 0 duplicated
    for problem in result["conflicts"]:
        assert problem["error"] == "ConcurrencyConflict"
        assert problem["field"] == "expected_version"
    assert service.engine.verify().ok


def same_command_at_once(service: Service, ticket_id: str, clients: int) -> list[Any]:
    """``clients`` threads post the very same command (same ``command_id``) at the same time."""
    with service.client("town") as c:
        open_ticket(c, ticket_id)
    body = {
        "kind": "mark_overdue",
        "command_id": f"mo-{ticket_id}",
        "at": "2022-03-26T10:00:00+08:00",
    }
    barrier = threading.Barrier(clients)
    answers: list[Any] = [None] * clients

    def client(i: int) -> None:
        with service.client("town") as c:
            barrier.wait()
            r = c.post(f"/tickets/{ticket_id}/commands", json=body)
            answers[i] = (r.status_code, r.json())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return answers
