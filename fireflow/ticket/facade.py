"""The :class:`Ticket` facade: a ticket for embedding code (execute commands, read state).

It binds a ticket to its plan, decides each command (:func:`~fireflow.ticket.decide`),
applies the events (:func:`~fireflow.ticket.evolve`) and keeps a live ``transitions``
machine in step with the compiled table.  See docs/embedding.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fireflow.errors import InvalidArgument, InvalidCommand, NotAuthorized
from fireflow.events import Event
from fireflow.model import Command, TicketState
from fireflow.plan import Plan
from fireflow.states import RECORD_ONLY_KINDS, build_machine
from fireflow.text import check_name
from fireflow.ticket.decision import decide, refusal, refusal_event
from fireflow.ticket.folding import evolve, fold

__all__ = ["Ticket"]


class _Live:
    """The live ``transitions`` model kept in step with the compiled table."""

    state: str


class Ticket:
    """A ticket for embedding code: execute commands, read state and history.

    It keeps a live ``transitions`` machine in step with the compiled table
    (``may(trigger)`` asks it), and records refused attempts as events.

    ``plan`` is required: a ticket is bound to the plan it was reported under, so
    there is no default plan (load the built-in one by name, ``load_plan(...)``).

    ``events`` continue a stored history; it must be bound to ``plan``
    (:class:`~fireflow.errors.PlanMismatch` otherwise).  To continue it under
    another plan, pass ``migrate_from=(old plan id, old digest)`` and execute
    a ``migrate_plan`` command first: it is recorded as a ``plan_migrated``
    event.
    """

    def __init__(
        self,
        ticket_id: str,
        plan: Plan,
        events: Sequence[Event] = (),
        *,
        migrate_from: tuple[str, str] | None = None,
    ) -> None:
        self.plan = plan
        ticket_id = check_name(ticket_id, "ticket_id")
        self._events: list[Event] = list(events)
        self._state = fold(self._events, ticket_id, plan=self.plan, migrate_from=migrate_from)
        self._event_ids = {e.event_id for e in self._events}
        self._live = _Live()
        build_machine(self._live, initial=self._state.state)

    @property
    def state(self) -> TicketState:
        """The current state (the fold of :attr:`events`)."""
        return self._state

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event so far, refused attempts included."""
        return tuple(self._events)

    @property
    def id(self) -> str:
        """The ticket id."""
        return self._state.ticket_id

    def may(self, trigger: str) -> bool:
        """Is ``trigger`` allowed in the current state (structurally)?"""
        check = getattr(self._live, f"may_{trigger}", None)
        if check is None:
            raise InvalidArgument("trigger", f"unknown trigger {trigger!r}")
        return bool(check())

    def execute(self, command: Command | Mapping[str, Any]) -> tuple[Event, ...]:
        """Decide and apply a command; return its events.

        A :class:`~fireflow.errors.NotAuthorized` refusal is recorded as an
        ``attempt_refused`` event (state unchanged) and then raised.  Every
        other mistake (malformed data, an unknown agency, a repeated
        ``command_id``, a time out of range) is raised before anything is
        recorded.
        """
        cmd = command if isinstance(command, Command) else Command.model_validate(command)
        cid = cmd.command_id
        if cid is not None and (
            f"{cid}/1" in self._event_ids or f"{cid}/refused" in self._event_ids
        ):
            raise refusal(
                InvalidCommand,
                self._state,
                cmd,
                f"command id {cid!r} was used before on this ticket",
                rule=None,
                zh="命令编号重复",
                field="command_id",
            )
        try:
            events = decide(self._state, cmd, self.plan)
        except NotAuthorized as exc:
            record = refusal_event(self._state, cmd, exc)
            self._apply(record)
            raise
        for e in events:
            self._apply(e)
        return events

    def _apply(self, event: Event) -> None:
        new = evolve(self._state, event)
        if event.kind not in RECORD_ONLY_KINDS:
            getattr(self._live, event.kind)()
            if self._live.state != new.state:  # pragma: no cover (the two engines disagree)
                raise AssertionError(f"machine says {self._live.state}, table says {new.state}")
        self._events.append(event)
        self._event_ids.add(event.event_id)
        self._state = new

    def command(
        self, kind: str, at: datetime, agency: str, person: str = "", **fields: Any
    ) -> tuple[Event, ...]:
        """Shorthand for ``execute(Command(kind=..., ticket_id=self.id, ...))``."""
        return self.execute(
            {
                "kind": kind,
                "ticket_id": self.id,
                "at": at,
                "actor": {"agency": agency, "person": person},
                **fields,
            }
        )
