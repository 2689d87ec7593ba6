"""Realistic ticket histories for the store tests, made by the real Ticket engine.

A handful of template histories (a full lifecycle, a failed re-check, a refusal
with a refused attempt, an illegal building, a spot-check reopening) are made
once with :class:`fireflow.ticket.Ticket`; ``restamp`` gives a copy for any
ticket id, so thousands of tickets cost no engine time.  Everything here is
deterministic: the same arguments give the same events in every process.

Used both by the tests (``from store_workers.histories import ...``) and by
the worker scripts next to this file (``import histories``).
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

from fireflow import load_plan
from fireflow.errors import NotAuthorized
from fireflow.events import Event
from fireflow.ticket import Ticket

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64, "note": "楼道 Café"}
PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}


def _report(t, at, category, subtype, location="inside", agency="town"):
    t.command(
        "report", at, agency, "李",
        community="金峰小区", town="金峰镇", category=category, subtype=subtype,
        location=location, source="town_inspection", description="楼道堆物，电动车充电",
        evidence=[PHOTO_BEFORE],
    )  # fmt: skip
    t.command("route", at, "town", "李科长")
    t.command("set_deadline", at, "town")


def _full(tid: str) -> Ticket:
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t = Ticket(tid, PLAN)
    _report(t, at, "evacuation_blocked", "ebike_charging")
    day = at + timedelta(days=1)
    t.command("rectify", day, "property", "陈经理")
    t.command("apply_reinspection", day, "property")
    parts = [{"agency": "housing", "person": "张"}, {"agency": "fire"}]
    t.command("recheck_pass", day, "town", participants=parts)
    signers = [{"agency": "housing", "person": "张"}]
    t.command("sign_off", at + timedelta(days=2), "town", "王", signers=signers)
    t.command("archive", at + timedelta(days=2), "town", evidence=[PHOTO_AFTER])
    return t


def _failed_recheck(tid: str) -> Ticket:
    at = datetime(2022, 9, 28, 10, tzinfo=SH)
    t = Ticket(tid, PLAN)
    _report(t, at, "fire_lane_vehicle", "zombie_vehicle")
    t.command("rectify", at + timedelta(days=1), "property")
    t.command("apply_reinspection", at + timedelta(days=1), "property")
    t.command(
        "recheck_fail", at + timedelta(days=2), "town",
        participants=[{"agency": "traffic_police"}, {"agency": "housing"}], reason="仍有车辆",
    )  # fmt: skip
    t.command("rectify", at + timedelta(days=3), "property")
    t.command("apply_reinspection", at + timedelta(days=3), "property")
    t.command(
        "recheck_pass", at + timedelta(days=4), "town",
        participants=[{"agency": "fire"}, {"agency": "housing"}],
    )  # fmt: skip
    return t


def _refusal(tid: str) -> Ticket:
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t = Ticket(tid, PLAN)
    _report(t, at, "fire_lane_vehicle", "private_car")
    with contextlib.suppress(NotAuthorized):  # not the fire brigade's step: a refused attempt
        t.command("refuse", at, "fire")
    t.command("refuse", at, "property", reason="业主拒不挪车")
    t.command("expose", at, "committee")
    t.command("escalate", at, "town")
    t.command("punish", at + timedelta(hours=1), "fire")
    t.command("clear", at + timedelta(hours=2), "town")
    return t


def _building(tid: str) -> Ticket:
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t = Ticket(tid, PLAN)
    _report(t, at, "spacing_illegal_building", "structure", location="around")
    t.command("certify", at, "planning")
    t.command(
        "demolish", datetime(2022, 4, 1, 9, tzinfo=SH), "town", participants=[{"agency": "urban"}]
    )
    return t


def _reopened(tid: str) -> Ticket:
    t = _full(tid)
    t.command("reopen", datetime(2022, 8, 1, 10, tzinfo=SH), "fire", reason="抽查发现仍有电动车")
    return t


_MAKERS = (_full, _failed_recheck, _refusal, _building, _reopened)


@functools.cache
def templates() -> tuple[tuple[Event, ...], ...]:
    """The template histories (ticket id ``TEMPLATE``), made once per process."""
    return tuple(make("TEMPLATE").events for make in _MAKERS)


def restamp(events: Sequence[Event], ticket_id: str) -> list[Event]:
    """The same history for ``ticket_id`` (event ids ``<ticket>/<seq>``)."""
    return [attrs.evolve(e, ticket_id=ticket_id, event_id=f"{ticket_id}/{e.seq}") for e in events]


def ticket_id(k: int) -> str:
    """The k-th ticket id of a schedule."""
    return f"CL-2022-{k:05d}"


@functools.lru_cache(maxsize=256)
def history(k: int) -> tuple[Event, ...]:
    """The k-th ticket's history (the templates in turn)."""
    t = templates()
    return tuple(restamp(t[k % len(t)], ticket_id(k)))


def cuts(k: int, length: int, largest: int = 4) -> list[tuple[int, int]]:
    """The k-th ticket's history cut into batches of 1..largest events: (lo, hi) slices.

    The sizes come from ``random.Random(k)``.
    """
    rng = random.Random(k)
    out: list[tuple[int, int]] = []
    i = 0
    while i < length:
        n = rng.randint(1, largest)
        out.append((i, min(i + n, length)))
        i += n
    return out


def _length(k: int) -> int:
    t = templates()
    return len(t[k % len(t)])


def shapes(n_tickets: int, group: int = 4) -> Iterator[tuple[int, int, int]]:
    """(ticket number, lo, hi) for every batch of ``n_tickets`` tickets, in append order.

    Tickets go in groups of ``group`` whose batches interleave round-robin, so
    the global order mixes tickets.  No event is made: see :func:`schedule`.
    """
    for g in range(0, n_tickets, group):
        lists = [(k, cuts(k, _length(k))) for k in range(g, min(g + group, n_tickets))]
        for i in range(max(len(c) for _, c in lists)):
            for k, c in lists:
                if i < len(c):
                    yield k, c[i][0], c[i][1]


def batch(k: int, lo: int, hi: int) -> tuple[str, int, list[Event]]:
    """(ticket id, expected version, events) of one batch from :func:`shapes`."""
    return ticket_id(k), lo, list(history(k)[lo:hi])


def schedule(n_tickets: int, group: int = 4) -> Iterator[tuple[str, int, list[Event]]]:
    """(ticket id, expected version, batch) for every batch of ``n_tickets`` tickets."""
    for k, lo, hi in shapes(n_tickets, group):
        yield batch(k, lo, hi)


def boundaries(n_tickets: int) -> dict[str, set[int]]:
    """For each ticket, the versions it can have between whole batches."""
    out: dict[str, set[int]] = {}
    for k, _, hi in shapes(n_tickets):
        out.setdefault(ticket_id(k), {0}).add(hi)
    return out


def race_setup() -> list[Event]:
    """The first three events (report, route, set_deadline) of the ticket ``RACE``."""
    t = Ticket("RACE", PLAN)
    _report(t, datetime(2022, 3, 21, 9, tzinfo=SH), "evacuation_blocked", "goods")
    return list(t.events)
