"""The service's one door into the library (引擎接口): every call into fireflow goes here.

The HTTP layer (:mod:`fireflow.service.app`) never imports the engine, the store or
the rules itself: it calls an :class:`Engine`, so that a new library function (the
duties per ticket of "who must act, by when", verified history opened once) is
wired in one place.  Nothing here reads the wall clock: every instant comes in as
an argument (the HTTP edge takes it from its injected clock).

* commands: :meth:`Engine.execute` folds the ticket's stored history, decides,
  appends with the expected version, records a refused attempt the way
  :class:`fireflow.ticket.Ticket` does, and treats a repeated ``command_id`` as the
  idempotency key (the same command again returns the recorded events; another
  command under the same id is refused);
* reads: state, history, :func:`~fireflow.rules.explain.explain`, escalations due
  (:func:`~fireflow.rules.escalation.due_escalations`), the ticket views of a
  :class:`~fireflow.views.TicketIndex`, report obligations
  (:mod:`fireflow.rules.reporting`), annex forms and dossiers (:mod:`fireflow.forms`)
  from history verified first (:func:`fireflow.history.verified_history`);
* events: :func:`fireflow.store.subscription.subscribe`.

>>> import pendulum
>>> from fireflow.store import MemoryStore
>>> engine = Engine(MemoryStore(), load_plan("changle-2022"))
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> out = engine.execute("CL-1", {"kind": "report", "at": at, "command_id": "c-1",
...     "actor": {"agency": "town"}, "community": "金峰小区", "town": "金峰镇",
...     "category": "evacuation_blocked", "subtype": "goods", "location": "inside",
...     "source": "town_inspection"})
>>> out.state.state, out.replayed, [e.event_id for e in out.events]
('reported', False, ['c-1/1'])
>>> again = engine.execute("CL-1", {"kind": "report", "at": at, "command_id": "c-1",
...     "actor": {"agency": "town"}, "community": "金峰小区", "town": "金峰镇",
...     "category": "evacuation_blocked", "subtype": "goods", "location": "inside",
...     "source": "town_inspection"})
>>> again.replayed, again.events == out.events
(True, True)
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import attrs

from fireflow import forms, templates
from fireflow._input import decode_utf8, load_json_text
from fireflow.errors import FireflowError, InvalidArgument, InvalidCommand, NotAuthorized
from fireflow.events import Event, event_to_data, parse_time
from fireflow.history import VerifiedHistory, verified_history
from fireflow.model import Command, TicketState, command_json_schema, plan_digest
from fireflow.plan import BUILTIN_PLAN, Plan, RuleEntry, builtin_plans, load_plan
from fireflow.rules.accountability import district_escalations
from fireflow.rules.duties import Duty, duties_at
from fireflow.rules.escalation import Escalation, due_escalations
from fireflow.rules.explain import explain
from fireflow.rules.reporting import ObligationStatus, report_escalations, status
from fireflow.states import LIFECYCLE, STATES
from fireflow.store import transfer
from fireflow.store.base import EventStore, StoredEvent, check_id
from fireflow.store.chain import VerifyReport, verify
from fireflow.store.errors import ConcurrencyConflict
from fireflow.store.memory import MemoryStore
from fireflow.store.subscription import Consumer, FileCheckpoint, subscribe
from fireflow.store.transfer import is_postgres_url
from fireflow.ticket import decide, fold, refusal_event
from fireflow.views.tickets import TicketIndex, TicketRow

__all__ = [
    "DEFAULT_PLAN",
    "Engine",
    "Outcome",
    "PreconditionFailed",
    "VerifiedHistory",
    "check_agency",
    "event_data",
    "is_postgres_url",
    "open_store",
    "parse_json",
    "plan_names",
    "render",
    "state_data",
]

#: The plan served when none is named.
DEFAULT_PLAN = BUILTIN_PLAN


class PreconditionFailed(FireflowError):
    """The caller's expected version (``If-Match``) is not the ticket's version (前置条件不符).

    ``field`` is ``"If-Match"``; ``expected`` and ``actual`` are the versions.
    """

    def __init__(self, ticket_id: str, *, expected: int, actual: int) -> None:
        self.ticket_id = ticket_id
        self.expected = expected
        self.actual = actual
        self.field = "If-Match"
        super().__init__(
            f"ticket {ticket_id}: If-Match expects version {expected}, the ticket is at "
            f"version {actual} (版本不符: read the ticket again)"
        )


@attrs.frozen
class Outcome:
    """What a command did: its events, the ticket's state after, and whether it was a replay."""

    events: tuple[Event, ...]
    state: TicketState
    replayed: bool


def open_store(url: str, *, schema: str = "fireflow") -> EventStore:
    """The store at ``url``: a PostgreSQL URL or an SQLite file (created when missing)."""
    return transfer.open_store(url, readonly=False, create=True, schema=schema)


def check_agency(plan: str, agency: str) -> None:
    """Raise a typed error unless the plan named ``plan`` knows ``agency``."""
    load_plan(plan).agency(agency)


def plan_names() -> list[str]:
    """The built-in plans' names."""
    return list(builtin_plans())


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


class Engine:
    """The library as the service uses it: one store, one plan, one ticket index."""

    def __init__(self, store: EventStore, plan: Plan) -> None:
        if not isinstance(store, EventStore):
            raise InvalidArgument("store", f"expected an event store, got {type(store).__name__}")
        self.store = store
        self.plan = plan
        self.digest = plan_digest(plan)
        self._index = TicketIndex(store, plan=plan)
        self._index_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, plan: str = DEFAULT_PLAN) -> Engine:
        """An engine on the store at ``url`` with the plan named ``plan`` (or a plan file)."""
        return cls(open_store(url), load_plan(plan))

    @staticmethod
    def plan_named(name: str) -> Plan:
        """A built-in plan by name, or a plan file."""
        return load_plan(name)

    @classmethod
    def memory(cls, plan: Plan | None = None) -> Engine:
        """An engine on an empty in-memory store (the built-in plan by default)."""
        return cls(MemoryStore(), plan if plan is not None else load_plan(DEFAULT_PLAN))

    def close(self) -> None:
        """Close the index and the store."""
        self._index.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------------ commands

    def command(self, ticket_id: str, data: Mapping[str, Any]) -> Command:
        """The library's :class:`Command` for ``data`` on ``ticket_id`` (typed errors)."""
        check_id(ticket_id, "ticket_id")
        body = dict(data)
        given = body.get("ticket_id", ticket_id)
        if given != ticket_id:
            raise InvalidArgument("ticket_id", "the body names another ticket than the path")
        body["ticket_id"] = ticket_id
        return Command.model_validate(body)

    def execute(
        self, ticket_id: str, data: Mapping[str, Any], expected_version: int | None = None
    ) -> Outcome:
        """Decide ``data`` (a command's fields) on the stored ticket and append the events.

        ``expected_version`` (from ``If-Match``) must be the ticket's version, or
        :class:`PreconditionFailed`; a concurrent append between the read and the
        write raises :class:`~fireflow.store.errors.ConcurrencyConflict` (or
        :class:`PreconditionFailed` when a version was expected).  A refusal of
        authority is recorded (``attempt_refused``) and raised.
        """
        command = self.command(ticket_id, data)
        history = self.store.read(ticket_id)
        replay = self._replay(history, command)
        if replay is not None:
            return replay
        state = fold(history, ticket_id, plan=self.plan)
        if expected_version is not None and expected_version != state.version:
            raise PreconditionFailed(ticket_id, expected=expected_version, actual=state.version)
        try:
            events = decide(state, command, self.plan)
        except NotAuthorized as exc:
            record = refusal_event(state, command, exc)
            if self._append(ticket_id, (record,), state.version, expected_version, command):
                self._replay(self.store.read(ticket_id), command)  # raises the same refusal
            raise
        if self._append(ticket_id, events, state.version, expected_version, command):
            replay = self._replay(self.store.read(ticket_id), command)
            if replay is not None:
                return replay
        return Outcome(events, fold([*history, *events], ticket_id), replayed=False)

    def _append(
        self,
        ticket_id: str,
        events: Sequence[Event],
        version: int,
        expected: int | None,
        command: Command,
    ) -> bool:
        """Append; True when a concurrent request recorded this very command first.

        The store answers a batch it already holds, byte for byte, as a replay
        (nothing written); a concurrent append of anything else is a conflict.
        """
        try:
            return self.store.append(ticket_id, list(events), version).replayed
        except ConcurrencyConflict as exc:
            if (
                command.command_id is not None
                and self._replay(self.store.read(ticket_id), command) is not None
            ):
                return True  # the same command won the race: answer as a retry
            if expected is not None:
                raise PreconditionFailed(ticket_id, expected=expected, actual=exc.actual) from None
            raise

    def _replay(self, history: list[Event], command: Command) -> Outcome | None:
        """The recorded outcome of ``command.command_id``, or None when it is new.

        The command is decided again on the state before its recorded events: the
        same events mean the same command (a retry), anything else is another
        command re-using the id (refused, 命令编号重复).
        """
        cid = command.command_id
        if cid is None:
            return None
        ids = (f"{cid}/1", f"{cid}/refused")
        first = next((e for e in history if e.event_id in ids), None)
        if first is None:
            return None
        before = history[: first.seq - 1]
        state = fold(before, command.ticket_id)
        recorded = tuple(e for e in history[first.seq - 1 :] if e.event_id.startswith(f"{cid}/"))
        try:
            again = decide(state, command, self.plan)
        except NotAuthorized as exc:
            if (refusal_event(state, command, exc),) == recorded:
                raise
            again = ()
        except FireflowError:
            again = ()
        if again != recorded:
            raise InvalidCommand(
                f"command id {cid!r} was used before on this ticket for another command",
                rule=None,
                ticket=command.ticket_id,
                state=state.state,
                trigger=command.kind,
                message_zh="命令编号已被另一命令使用",
                field="command_id",
            )
        return Outcome(recorded, fold(history, command.ticket_id), replayed=True)

    # ------------------------------------------------------------------ one ticket

    def history(self, ticket_id: str) -> list[Event]:
        """The ticket's events (empty for an unknown ticket)."""
        return self.store.read(check_id(ticket_id, "ticket_id"))

    def state(self, history: Sequence[Event], ticket_id: str) -> TicketState:
        """The fold of a ticket's events."""
        return fold(history, ticket_id)

    def explain(self, history: Sequence[Event]) -> list[str]:
        """One paragraph per event, with rules and clauses."""
        return explain(history, self.plan)

    def escalations(self, state: TicketState, at: datetime) -> list[Escalation]:
        """The escalations due for the ticket at ``at``."""
        return due_escalations(state, at, self.plan)

    # ------------------------------------------------------------------ views

    def index(self) -> TicketIndex:
        """The ticket index, caught up with the log."""
        with self._index_lock:
            self._index.catch_up()
        return self._index

    def tickets(self, **filters: Any) -> list[TicketRow]:
        """Ticket rows matching the filters (:meth:`TicketIndex.tickets`)."""
        return self.index().tickets(**filters)

    def counts(self, town: str | None = None) -> list[tuple[str, str, int]]:
        """(town, state, n) per town and state."""
        return self.index().counts(town=town)

    def open_hazards(self, town: str | None = None) -> list[tuple[str, str, int]]:
        """(town, community, open hazards)."""
        return self.index().open_hazards(town=town)

    def duties(
        self, at: datetime, *, agency: str | None = None, town: str | None = None
    ) -> list[tuple[TicketRow, list[Duty], list[Escalation]]]:
        """What is due, from whom, by when, at ``at``: per ticket, its duties and escalations.

        The duties are :func:`~fireflow.rules.duties.duties_at` (who must act next and by
        when, 五(三)); the escalations :func:`~fireflow.rules.accountability.district_escalations`
        over the whole district, so concealment (隐瞒不报, found across tickets) is included.
        Every ticket the index has is asked, archived ones too (an open referral stays
        due).  ``agency`` keeps the duties it owes and the escalations that target it or
        hold it to account.
        """
        index = self.index()
        states = index.states()
        escalations = district_escalations(states, at, self.plan)
        out: list[tuple[TicketRow, list[Duty], list[Escalation]]] = []
        for row in index.tickets(town=town):
            state = states.get(row.ticket_id)
            if state is None:
                continue
            owed = duties_at(state, at, self.plan)
            due = escalations.get(row.ticket_id, [])
            if agency is not None:
                owed = [d for d in owed if agency in d.agencies]
                due = [e for e in due if agency in e.targets or agency in e.accountable]
            if owed or due:
                out.append((row, owed, due))
        return out

    def towns(self) -> dict[str, list[str]]:
        """Town -> its communities, as the log records them (sorted)."""
        out: dict[str, set[str]] = {}
        for row in self.index().tickets():
            if row.town:
                out.setdefault(row.town, set()).add(row.community)
        return {t: sorted(out[t]) for t in sorted(out)}

    def obligations(self, at: datetime) -> tuple[list[ObligationStatus], list[Escalation]]:
        """Every town's report obligations at ``at`` and the escalations due for them.

        The towns and communities are those the log records; no submissions are
        kept by the service yet, so an obligation past its day is ``missing``.
        """
        statuses = status(self.plan, self.towns(), [], at)
        return statuses, list(report_escalations(self.plan, statuses))

    # ------------------------------------------------------------------ documents

    def verified_history(self) -> VerifiedHistory:
        """The store's events, from exactly the rows its chains were verified on.

        A store that does not verify raises
        :class:`~fireflow.store.errors.VerificationFailed`: no document is built.
        """
        return verified_history(self.store)

    def verify(self) -> VerifyReport:
        """Recompute the store's hash chains."""
        return verify(self.store)

    def dossier(self, community: str) -> dict[str, Any]:
        """The community's 一区一档 from verified history, marked with its verification."""
        history = self.verified_history()
        data = forms.dossier(history.events, community, self.plan, history.heads)
        return forms.mark_dossier(data, history.verification)

    def dossier_html(self, data: Mapping[str, Any]) -> str:
        """The dossier as a printable page."""
        return forms.dossier_html(data)

    def form_ids(self) -> tuple[str, ...]:
        """The annex forms the service builds."""
        return tuple(forms.FORM_IDS)

    def annex(self, form_id: str) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
        """An annex form from verified history: headers, rows (marked) and the verification."""
        if form_id not in forms.FORM_IDS:
            raise InvalidArgument(
                "form", f"unknown form {form_id!r}; known: {', '.join(forms.FORM_IDS)}"
            )
        history = self.verified_history()
        verification = history.verification
        df = forms.mark_form(forms.build(form_id, history.events, self.plan), verification)
        header = [str(c) for c in df.columns]
        rows = [[_plain(v) for v in row] for row in df.itertuples(index=False, name=None)]
        return header, rows, verification

    def annex_xlsx(self, form_id: str) -> bytes:
        """An annex form from verified history as an Excel workbook (marked verified)."""
        if form_id not in forms.FORM_IDS:
            raise InvalidArgument(
                "form", f"unknown form {form_id!r}; known: {', '.join(forms.FORM_IDS)}"
            )
        history = self.verified_history()
        df = forms.mark_form(forms.build(form_id, history.events, self.plan), history.verification)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{form_id}.xlsx"
            forms.to_xlsx(df, path, form_id, self.plan)
            return path.read_bytes()

    # ------------------------------------------------------------------ the plan

    def plan_data(self) -> dict[str, Any]:
        """The plan as JSON data (its file's fields)."""
        return _as_dict(self.plan.model_dump(mode="json", by_alias=True))

    def rules(self) -> tuple[RuleEntry, ...]:
        """The rule catalogue, with clauses and whether each is a default reading."""
        return self.plan.rules

    def clause(self, rule: str) -> str:
        """The clause of the plan behind ``rule`` (empty when the catalogue has no entry)."""
        try:
            return str(self.plan.rule(rule).clause)
        except FireflowError:
            return ""

    def command_schema(self) -> dict[str, Any]:
        """The JSON Schema of the library's :class:`Command`."""
        return command_json_schema()

    def parse_instant(self, text: str, field: str) -> datetime:
        """An aware ISO-8601 instant (naive or malformed text raises a typed error)."""
        return parse_time(text, field)

    def states(self) -> tuple[str, ...]:
        """The lifecycle's states."""
        return tuple(STATES)

    def state_zh(self, state: str) -> str:
        """A state's Chinese name."""
        return str(LIFECYCLE.state(state).zh)

    def agency_zh(self, agency: str) -> str:
        """An agency's Chinese name (the id when the plan does not know it)."""
        try:
            return str(self.plan.agency(agency).name.zh)
        except FireflowError:
            return agency

    def render(self, template: str, /, **context: Any) -> str:
        """A page from the package's templates (autoescaped)."""
        return render(template, **context)

    # ------------------------------------------------------------------ events

    def events_after(
        self, after: int | None, *, stop: threading.Event, idle_timeout: float
    ) -> Iterator[StoredEvent]:
        """The stored events after ``after``, then new ones (:func:`subscribe`)."""
        return subscribe(self.store, after, stop=stop, idle_timeout=idle_timeout)

    def position(self) -> int:
        """How many events the store holds."""
        return self.store.count()

    def consumer(self, name: str, checkpoint: str | Path) -> Consumer:
        """A consumer of the store's events that resumes after its checkpoint file."""
        return Consumer(self.store, name, FileCheckpoint(checkpoint))

    def recent(self, n: int) -> list[StoredEvent]:
        """The last ``n`` events of the store, oldest first."""
        return list(self.store.read_all(max(0, self.store.count() - n)))

    def global_hash_at(self, position: int) -> str:
        """The global chain hash after the event at ``position`` (empty when there is none)."""
        for se in self.store.read_all(position):
            return se.global_hash if se.position == position else ""
        return ""


def render(template: str, /, **context: Any) -> str:
    """A page from the package's templates (autoescaped, :mod:`fireflow.templates`)."""
    return templates.render(template, **context)


def parse_json(body: bytes) -> Any:
    """A request body as JSON: UTF-8, nesting bounded; typed errors only."""
    return load_json_text(decode_utf8(body, "body", "body", bom=False), "body", "body")


def event_data(event: Event) -> dict[str, Any]:
    """An event as JSON data."""
    return event_to_data(event)


def state_data(state: TicketState) -> dict[str, Any]:
    """A state as JSON data."""
    return state.to_data()


def _plain(value: Any) -> Any:
    """A form cell as JSON data (numbers stay numbers, missing values become None)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return None if math.isnan(value) else value
    if isinstance(value, date | datetime):
        return value.isoformat()
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)
