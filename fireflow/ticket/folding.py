"""Evolve and fold: a ticket's state from its events, through the compiled lifecycle table.

:func:`evolve` applies one event; :func:`fold` a ticket's history, :func:`fold_all`
and :func:`fold_each` a stream of many tickets' events (a store's replay).  All of
them share one body, ``_apply``, the positional fast fold: it works on a state's
field values as a list (one index constant per field, below) and builds the
:class:`~fireflow.model.TicketState` once per ticket, not once per event.  The
property that it agrees with evolving event by event is in tests/test_ticket.py
and tests/test_hot_paths.py; see docs/lifecycle.md ("Replay").

>>> fold([], "T1").state
'new'
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import date
from typing import Any

import attrs

from fireflow.errors import FireflowError, InvalidArgument, TransitionNotAllowed
from fireflow.events import Event, shared_actor
from fireflow.model import Referral, TicketState, check_binding
from fireflow.plan import Plan
from fireflow.plan.routing import Routing
from fireflow.states import INTO_RECTIFYING, LIFECYCLE_TABLE

__all__ = ["evolve", "fold", "fold_all", "fold_each"]


_STATE_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(TicketState))
_STATE_VALUES = operator.attrgetter(*_STATE_FIELDS)  # every field at once, in C
_STATE_INDEX = {name: i for i, name in enumerate(_STATE_FIELDS)}
# Positions of the fields in a state's value list (the fold works on such lists).
_TID, _ST, _VER = _STATE_INDEX["ticket_id"], _STATE_INDEX["state"], _STATE_INDEX["version"]
_COMMUNITY, _TOWN = _STATE_INDEX["community"], _STATE_INDEX["town"]
_CATEGORY, _SUBTYPE = _STATE_INDEX["category"], _STATE_INDEX["subtype"]
_LOCATION, _SOURCE = _STATE_INDEX["location"], _STATE_INDEX["source"]
_REPORTED_AT, _LAST_AT = _STATE_INDEX["reported_at"], _STATE_INDEX["last_at"]
_ROUTING, _DEADLINE = _STATE_INDEX["routing"], _STATE_INDEX["deadline"]
_DEADLINE_RULES, _DEADLINES_SET = _STATE_INDEX["deadline_rules"], _STATE_INDEX["deadlines_set"]
_RECTIFIED_BY, _CERTIFIED_BY = _STATE_INDEX["rectified_by"], _STATE_INDEX["certified_by"]
_FAILED, _RECHECK_AGENCIES = _STATE_INDEX["failed_rechecks"], _STATE_INDEX["recheck_agencies"]
_RECHECK_PEOPLE = _STATE_INDEX["recheck_people"]
_SIGNERS, _EVIDENCE = _STATE_INDEX["signers"], _STATE_INDEX["evidence"]
_ESCALATED_TO, _EXPOSED = _STATE_INDEX["escalated_to"], _STATE_INDEX["exposed"]
_PUNISHED, _REOPENED = _STATE_INDEX["punished"], _STATE_INDEX["reopened"]
_REOPENED_AFTER = _STATE_INDEX["reopened_after_signoff"]
_AFTER_PHOTO, _REFUSED = _STATE_INDEX["after_photo"], _STATE_INDEX["refused_attempts"]
_OVERDUE_MARKED, _DEMOLISHED = _STATE_INDEX["overdue_marked"], _STATE_INDEX["demolished"]
_DELIVERED_ON, _NEW_COMMUNITY = _STATE_INDEX["delivered_on"], _STATE_INDEX["new_community"]
_PLAN_ID, _PLAN_DIGEST = _STATE_INDEX["plan_id"], _STATE_INDEX["plan_digest"]
_ENTERED_AT, _REFUSED_BY = _STATE_INDEX["entered_at"], _STATE_INDEX["refused_by"]
_FALSIFIED, _REFERRALS = _STATE_INDEX["falsified_signers"], _STATE_INDEX["referrals"]
_INITIAL_VALUES: tuple[Any, ...] = _STATE_VALUES(TicketState(""))


def _malformed(event: Event, exc: Exception) -> InvalidArgument:
    """The error for an event whose payload the engine cannot read (corrupt history)."""
    return InvalidArgument(
        "payload",
        f"event {event.event_id} ({event.kind}) has a malformed payload: "
        f"{type(exc).__name__}: {exc} (事件内容格式错误)",
    )


def _apply(v: list[Any], event: Event) -> None:
    """Apply one event to a state's value list, in place (the one body of evolve and fold).

    Every check comes before the first change, so a refused event changes nothing.
    """
    if event.ticket_id != v[_TID]:
        raise InvalidArgument("ticket_id", f"event {event.event_id} is for {event.ticket_id!r}")
    if event.seq != v[_VER] + 1:
        raise InvalidArgument(
            "seq", f"event {event.event_id} has seq {event.seq}, expected {v[_VER] + 1}"
        )
    kind = event.kind
    if kind == "attempt_refused":  # recorded, but the ticket's clock does not move
        v[_VER] = event.seq
        v[_REFUSED] += 1
        v[_REFUSED_BY] = (*v[_REFUSED_BY], event.actor)
        return
    if kind == "plan_migrated":
        p = event.payload
        try:
            moved = (p["from_id"], p["from_digest"]), (p["to_id"], p["to_digest"])
        except (KeyError, TypeError) as exc:
            raise _malformed(event, exc) from None
        if moved[0] != (v[_PLAN_ID], v[_PLAN_DIGEST]):
            raise InvalidArgument(
                "payload.from_id", f"event {event.event_id} migrates from another plan"
            )
        v[_VER] = event.seq
        v[_LAST_AT] = event.at
        v[_PLAN_ID], v[_PLAN_DIGEST] = moved[1]
        return
    old = v[_ST]
    dest = LIFECYCLE_TABLE.get((old, kind))
    if dest is None:
        raise TransitionNotAllowed(
            f"event {event.event_id} cannot apply",
            rule=None,
            ticket=v[_TID],
            state=old,
            trigger=kind,
        )
    p = event.payload
    # Read what the payload must hold before changing anything.  A payload of the wrong
    # shape (another system wrote it) is a typed error naming the event, never a crash.
    try:
        if kind == "report":
            report = (p["community"], p["town"], p["category"], p.get("subtype"), p["location"])
            report_source = p["source"]
            bound = (p.get("plan_id", ""), p.get("plan_digest", ""))  # absent in older histories
            delivered = p.get("delivered_on")
            delivered_on = date.fromisoformat(delivered) if delivered is not None else None
        elif kind == "route":
            routing = Routing.from_data(p["routing"])
        elif kind in ("recheck_pass", "recheck_fail"):
            agencies = tuple(p["agencies"])
            # absent in older histories: sign-off then falls back to the agency check
            people = tuple(shared_actor(x["agency"], x["person"]) for x in p.get("people", ()))
        elif kind == "sign_off":
            signers = tuple(shared_actor(s["agency"], s.get("person", "")) for s in p["signers"])
        elif kind == "escalate":
            escalated = tuple(dict.fromkeys((*v[_ESCALATED_TO], *p["targets"])))
        elif kind == "refer":
            referral = Referral(
                event.event_id,
                event.at.isoformat(),
                p["case"],
                tuple(p["accountable"]),
                tuple(p.get("persons", ())),
                p.get("reason_zh", ""),
            )
        elif kind == "decide_referral":
            decided = p["referral"]
        deadline = (
            date.fromisoformat(p["deadline"])
            if kind in INTO_RECTIFYING and "deadline" in p
            else None
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _malformed(event, exc) from None
    if kind == "decide_referral" and not any(
        r.event_id == decided and r.open for r in v[_REFERRALS]
    ):
        raise InvalidArgument(
            "payload.referral", f"event {event.event_id} decides no open referral"
        )
    v[_VER] = event.seq
    v[_LAST_AT] = event.at
    v[_ST] = dest
    if dest != old or kind in INTO_RECTIFYING:
        v[_ENTERED_AT] = event.at
    if event.evidence:
        v[_EVIDENCE] = v[_EVIDENCE] + event.evidence
        if any(e.kind == "photo_after" for e in event.evidence):
            v[_AFTER_PHOTO] = True
    if kind == "report":
        v[_COMMUNITY], v[_TOWN], v[_CATEGORY], v[_SUBTYPE], v[_LOCATION] = report
        v[_SOURCE] = report_source
        v[_REPORTED_AT] = event.at
        v[_PLAN_ID], v[_PLAN_DIGEST] = bound
        v[_DELIVERED_ON], v[_NEW_COMMUNITY] = delivered_on, p.get("new_community")
    elif kind == "route":
        v[_ROUTING] = routing
    elif kind == "rectify":
        v[_RECTIFIED_BY] = event.actor.agency
    elif kind == "recheck_pass":
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = agencies, people
    elif kind == "recheck_fail":
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = agencies, people
        v[_FAILED] += 1
        v[_AFTER_PHOTO] = False  # a new rectification needs a new after-photo
    elif kind == "sign_off":
        v[_SIGNERS] = signers
    elif kind == "mark_overdue":
        v[_OVERDUE_MARKED] += 1
    elif kind == "escalate":
        v[_ESCALATED_TO] = escalated
    elif kind == "expose":
        v[_EXPOSED] += 1
    elif kind == "punish":
        v[_PUNISHED] += 1
    elif kind == "certify":
        v[_CERTIFIED_BY] = event.actor.agency
    elif kind == "demolish":
        v[_DEMOLISHED] = True
    elif kind == "refer":
        v[_REFERRALS] = (*v[_REFERRALS], referral)
    elif kind == "decide_referral":
        v[_REFERRALS] = tuple(
            attrs.evolve(r, outcome=p["outcome"]) if r.event_id == decided else r
            for r in v[_REFERRALS]
        )
    elif kind == "reopen":
        v[_AFTER_PHOTO] = False
        v[_REOPENED] += 1
        if old in ("signed_off", "archived"):
            v[_REOPENED_AFTER] += 1
            v[_FALSIFIED] = tuple(dict.fromkeys((*v[_FALSIFIED], *v[_SIGNERS])))
        v[_SIGNERS] = ()
        v[_RECHECK_AGENCIES], v[_RECHECK_PEOPLE] = (), ()
    if deadline is not None:
        v[_DEADLINE] = deadline
        v[_DEADLINE_RULES] = tuple(r for r in event.rules if r.startswith("R-"))
        v[_DEADLINES_SET] += 1
        v[_RECTIFIED_BY] = None


def evolve(state: TicketState, event: Event) -> TicketState:
    """Apply one event (through the compiled lifecycle table).  Pure."""
    values = list(_STATE_VALUES(state))
    _apply(values, event)
    return TicketState(*values)


def fold(
    events: Iterable[Event],
    ticket_id: str | None = None,
    *,
    plan: Plan | None = None,
    migrate_from: tuple[str, str] | None = None,
) -> TicketState:
    """The state of a ticket: its events applied in order from the initial state.

    The same as ``evolve`` applied event by event, with the state built once.
    The events must be one ticket's, in ``seq`` order from 1 without gaps, each
    with its own ``event_id``: another ticket's event, a gap, a repeated or
    out-of-order ``seq`` and a repeated ``event_id`` raise
    :class:`~fireflow.errors.InvalidArgument` naming the field, and so does an
    event the lifecycle does not allow
    (:class:`~fireflow.errors.TransitionNotAllowed`).

    Given a ``plan``, the history must be bound to it (the plan id and digest
    its ``report`` or latest ``plan_migrated`` event records), or
    :class:`~fireflow.errors.PlanMismatch` is raised; ``migrate_from=(plan id,
    digest)`` accepts a history bound to exactly that other plan, to be
    continued after a ``migrate_plan`` command.  A history written before plan
    binding (no plan in its ``report``) is folded as before, under any plan.
    """
    state = _fold(events, ticket_id)
    if plan is not None or migrate_from is not None:
        if plan is None:
            raise InvalidArgument("plan", "migrate_from needs the plan to migrate to")
        check_binding(state, plan, migrate_from)
    return state


def _fold(events: Iterable[Event], ticket_id: str | None) -> TicketState:
    it = iter(events)
    first = next(it, None)
    if first is None:
        if ticket_id is None:
            raise InvalidArgument("events", "no events and no ticket id")
        return TicketState(ticket_id)
    values = list(_INITIAL_VALUES)
    values[_TID] = ticket_id or first.ticket_id
    _apply(values, first)
    seen = {first.event_id}
    for e in it:
        if e.event_id in seen:
            raise InvalidArgument("event_id", f"event id {e.event_id!r} appears twice")
        seen.add(e.event_id)
        _apply(values, e)
    return TicketState(*values)


def fold_each(
    events: Iterable[Event],
) -> tuple[dict[str, TicketState], dict[str, tuple[Event, FireflowError]]]:
    """Every ticket's state, and apart the tickets the engine cannot fold.

    Like :func:`fold_all` (each ticket's events in ``seq`` order, tickets may
    interleave), but a ticket whose history breaks (an event the lifecycle does
    not allow, a payload of the wrong shape, a gap in ``seq``) does not stop the
    others: it is returned in the second mapping with the first event that cannot
    apply and the engine's error.  Both mappings keep the order of first appearance.
    """
    values: dict[str, list[Any]] = {}
    broken: dict[str, tuple[Event, FireflowError]] = {}
    for e in events:
        tid = e.ticket_id
        if tid in broken:
            continue
        v = values.get(tid)
        if v is None:
            v = values[tid] = list(_INITIAL_VALUES)
            v[_TID] = tid
        try:
            _apply(v, e)
        except FireflowError as exc:
            broken[tid] = (e, exc)
            del values[tid]
    return {t: TicketState(*v) for t, v in values.items()}, broken


def fold_all(events: Iterable[Event], *, plan: Plan | None = None) -> dict[str, TicketState]:
    """Every ticket's state from one stream of many tickets' events (a store's replay).

    Each ticket's events must come in ``seq`` order, as a store's global order
    gives them; tickets may interleave.  The result maps ticket ids to states,
    in the order the tickets first appear, and equals ``fold`` per ticket.  Each
    state is built once, not once per event.  Gaps and repeated ``seq`` are
    refused as by ``fold``; unique event ids are the store's promise (it
    refuses a repeated one), not checked again here.  Given a ``plan``, every
    ticket bound to a plan must be bound to this one
    (:class:`~fireflow.errors.PlanMismatch`).

    >>> import pendulum
    >>> from fireflow import load_plan
    >>> from fireflow.ticket import Ticket
    >>> plan = load_plan("changle-2022")
    >>> a, b = Ticket("A", plan), Ticket("B", plan)
    >>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    >>> found = dict(community="金峰小区", town="金峰镇", category="evacuation_blocked",
    ...              subtype="goods", location="inside", source="town_inspection")
    >>> stream = [*a.command("report", at, "town", **found),
    ...           *b.command("report", at, "town", **found), *a.command("route", at, "town")]
    >>> states = fold_all(stream)
    >>> list(states), states == {"A": a.state, "B": b.state}
    (['A', 'B'], True)
    >>> states["A"].version, states["B"].version
    (2, 1)
    """
    lists: dict[str, list[Any]] = {}
    get = lists.get
    for e in events:
        values = get(e.ticket_id)
        if values is None:
            values = lists[e.ticket_id] = list(_INITIAL_VALUES)
            values[_TID] = e.ticket_id
        _apply(values, e)
    states = {tid: TicketState(*values) for tid, values in lists.items()}
    if plan is not None:
        for st in states.values():
            check_binding(st, plan)
    return states
