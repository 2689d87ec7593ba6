"""The pydantic models of the service's responses (the OpenAPI document is built from them).

Requests carry the library's own :class:`fireflow.model.Command` (its JSON Schema,
with ``ticket_id``, ``actor`` and ``at`` made optional: the path, the caller and
the clock supply them); the rule catalogue is the library's
:class:`fireflow.plan.RuleEntry`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActorOut",
    "CommandResult",
    "CountOut",
    "CountsOut",
    "DutiesOut",
    "DutyOut",
    "EscalationOut",
    "EscalationsOut",
    "EventOut",
    "ExplainOut",
    "FormOut",
    "Health",
    "HistoryOut",
    "ObligationOut",
    "ObligationsOut",
    "OpenHazardOut",
    "TicketOut",
    "TicketPage",
    "TicketRowOut",
    "WhoAmI",
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActorOut(_Out):
    """Who acted: an agency id and a person (may be empty)."""

    agency: str
    person: str = ""


class EventOut(_Out):
    """One recorded event, as the store keeps it."""

    event_id: str
    ticket_id: str
    seq: int
    kind: str
    at: str = Field(description="ISO-8601 instant with its offset.")
    actor: ActorOut
    payload: dict[str, Any]
    evidence: list[dict[str, Any]]
    rules: list[str]


class TicketOut(_Out):
    """A ticket's state (the fold of its events); ``version`` is its ETag."""

    ticket_id: str
    version: int
    state: str
    data: dict[str, Any] = Field(description="Every field of the ticket's state.")


class CommandResult(_Out):
    """What a command did: its events and the ticket after; ``replayed`` for a retry."""

    ticket_id: str
    version: int
    state: str
    replayed: bool
    events: list[EventOut]


class HistoryOut(_Out):
    """A ticket's events in order."""

    ticket_id: str
    version: int
    events: list[EventOut]


class ExplainOut(_Out):
    """One paragraph per event: who did what, the state after, the rules and clauses."""

    ticket_id: str
    paragraphs: list[str]


class EscalationOut(_Out):
    """An escalation due: its kind, target agencies, rule (with clause) and reason.

    ``accountable`` and ``persons`` name who is held to account (六(四)) where the case is
    one of accountability; ``case`` is the referral case (``slow``, ``wrong``,
    ``falsified``, ``concealed``) a ``refer`` command records.
    """

    kind: str
    targets: list[str]
    rule: str
    clause: str
    reason_zh: str
    reason_en: str
    accountable: list[str] = []
    persons: list[str] = []
    case: str | None = None


class OwedDutyOut(_Out):
    """A step somebody owes on a ticket: who (agencies, persons), by when, under which rule."""

    kind: str
    trigger: str
    agencies: list[str]
    persons: list[str]
    since: str | None
    due: str | None
    late: bool
    rule: str
    clause: str
    label_zh: str
    label_en: str
    referral: str | None = None


class EscalationsOut(_Out):
    """The escalations due for one ticket at an instant."""

    ticket_id: str
    at: str
    escalations: list[EscalationOut]


class TicketRowOut(_Out):
    """One ticket in a view."""

    ticket_id: str
    town: str
    community: str
    state: str
    category: str
    route: str | None
    deadline: str | None
    due_at: str | None
    version: int


class TicketPage(_Out):
    """A page of tickets, sorted by ticket id."""

    items: list[TicketRowOut]
    limit: int
    offset: int


class CountOut(_Out):
    """How many tickets of a town are in a state."""

    town: str
    state: str
    n: int


class OpenHazardOut(_Out):
    """Open hazards of a community."""

    town: str
    community: str
    n: int


class CountsOut(_Out):
    """Counts per town and state, and open hazards per community."""

    counts: list[CountOut]
    open_hazards: list[OpenHazardOut]


class DutyOut(_Out):
    """What is due on one ticket at the instant: who owes which step by when, and escalations."""

    ticket_id: str
    town: str
    community: str
    state: str
    duties: list[OwedDutyOut]
    escalations: list[EscalationOut]


class DutiesOut(_Out):
    """What is due from whom at an instant."""

    at: str
    items: list[DutyOut]


class ObligationOut(_Out):
    """One report obligation and its status at the instant."""

    report_id: str
    town: str
    community: str | None
    due: str
    state: str
    state_zh: str
    submitted_at: str | None
    missing_contents: list[str]
    rules: list[str]


class ObligationsOut(_Out):
    """Every town's report obligations at an instant and the escalations due for them."""

    at: str
    obligations: list[ObligationOut]
    escalations: list[EscalationOut]


class FormOut(_Out):
    """An annex form from verified history: Chinese headers, rows, and the verification."""

    form: str
    headers: list[str]
    rows: list[list[Any]]
    verification: dict[str, Any]


class Health(_Out):
    """The service is up: its plan and the store's position."""

    status: str
    plan: str
    plan_digest: str
    position: int


class WhoAmI(_Out):
    """The caller as the service sees it."""

    agency: str
    person: str
    readonly: bool
    subject: str
