"""Hazard tickets: ``decide(state, command, plan) -> events`` and ``evolve(state, event)``.

A ticket's state is the fold of its events.  :func:`decide` checks a command
against the lifecycle, the plan's authority and the rule of the step, and
returns the events it produces, or raises a typed refusal
(:class:`~fireflow.errors.TransitionNotAllowed`,
:class:`~fireflow.errors.NotAuthorized`,
:class:`~fireflow.errors.InvalidCommand`) carrying the rule id and the state.
:func:`evolve` applies one event through the compiled lifecycle table.

The package has one module per job: :mod:`fireflow.ticket.decision` (decide),
:mod:`fireflow.ticket.folding` (evolve and fold) and :mod:`fireflow.ticket.facade`
(the :class:`Ticket`); the records they work on live in :mod:`fireflow.model` and
are re-exported here.  See docs/lifecycle.md.

>>> import pendulum
>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> t = Ticket("CL-0001", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.execute(Command(kind="report", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town", person="李"), community="金峰小区", town="金峰镇",
...     category="evacuation_blocked", subtype="ebike_charging", location="inside",
...     source="town_inspection"))
>>> _ = t.execute(Command(kind="route", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town")))
>>> _ = t.execute(Command(kind="set_deadline", ticket_id="CL-0001", at=at,
...     actor=ActorIn(agency="town")))
>>> t.state.state, t.state.deadline, t.state.routing.rectifier
('rectifying', datetime.date(2022, 3, 24), 'property')
"""

from __future__ import annotations

from fireflow.model import (
    MAX_ITEMS,
    SOURCES,
    ActorIn,
    Command,
    EvidenceIn,
    Source,
    TicketState,
    Trigger,
    command_json_schema,
    plan_binding,
    plan_digest,
    plan_rule_data,
    typed_error,
)
from fireflow.ticket.decision import authorize, decide, refusal_event
from fireflow.ticket.facade import Ticket
from fireflow.ticket.folding import evolve, fold, fold_all, fold_each

__all__ = [
    "MAX_ITEMS",
    "SOURCES",
    "ActorIn",
    "Command",
    "EvidenceIn",
    "Source",
    "Ticket",
    "TicketState",
    "Trigger",
    "authorize",
    "command_json_schema",
    "decide",
    "evolve",
    "fold",
    "fold_all",
    "fold_each",
    "plan_binding",
    "plan_digest",
    "plan_rule_data",
    "refusal_event",
    "typed_error",
]
