"""The event store interface, its records, and the checks every append goes through.

An :class:`EventStore` keeps the events of many tickets:

* ``append(ticket_id, events, expected_version)`` writes a batch of one
  ticket's events, all or nothing.  ``expected_version`` is the version the
  caller decided on (the ``version`` of the :class:`~fireflow.ticket.TicketState`
  it folded); if the store holds another version the append raises
  :class:`~fireflow.store.errors.ConcurrencyConflict` and writes nothing.
  Appends are idempotent: a batch whose events are already stored, byte for
  byte, returns the stored result (``replayed=True``) and stores nothing twice.
* ``read(ticket_id)`` is one ticket's events in ``seq`` order;
  ``read_all(from_position)`` every event in one global order (positions count
  from 0, in the order the appends committed).
* ``tickets()``, ``version(ticket_id)``, ``head(ticket_id)``, ``count()``.
* ``rows(from_position)`` the stored rows as written (canonical bytes and chain
  hashes), which :func:`fireflow.store.chain.verify` recomputes.

Every batch is checked by :func:`prepare_batch` before anything is written:
the ticket id, contiguous ``seq`` numbers, known kinds, aware datetimes, text
without lone surrogates or control characters, payload size and depth.  Each
failure is a typed error whose ``field`` names the event and its field.

>>> from datetime import datetime, timezone
>>> from fireflow.events import Actor, Event
>>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify",
...           at=datetime(2022, 3, 21, 2, tzinfo=timezone.utc), actor=Actor("property"))
>>> prepare_batch("T2", [e], 0)
Traceback (most recent call last):
...
fireflow.errors.InvalidArgument: events[0].ticket_id: event for ticket 'T1' appended to ticket 'T2'
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeGuard, runtime_checkable

import attrs

from fireflow.errors import InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.events import (
    MAX_PAYLOAD_BYTES,
    Actor,
    Event,
    Evidence,
    canonical_bytes,
    canonical_bytes_if_plain,
    check_json_value,
    event_to_data,
)
from fireflow.states import EVENT_KINDS
from fireflow.store.errors import ConcurrencyConflict, DuplicateEventId
from fireflow.text import refused_character

__all__ = [
    "KINDS",
    "MAX_BATCH",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_POSITION",
    "AppendResult",
    "Batch",
    "EventStore",
    "Prepared",
    "StoredEvent",
    "StoredRow",
    "accepts_as_encoded",
    "canonical_bytes_of_payload",
    "check_id",
    "check_position",
    "prepare_batch",
    "prepare_event",
    "settle",
]

#: The kinds an event may have: a trigger of the lifecycle, or a refused attempt.
KINDS: frozenset[str] = frozenset(EVENT_KINDS)
#: The most events one append may carry.
MAX_BATCH = 1000
#: The largest encoded event accepted (payload plus everything else), in bytes.
MAX_EVENT_BYTES = 2 * MAX_PAYLOAD_BYTES
#: The longest ticket id, event id, agency id or rule id accepted.
MAX_ID_LENGTH = 256
#: The most pieces of evidence one event may carry.
MAX_EVIDENCE = 64
#: The largest global position (a signed 64-bit integer, the stores' position column).
MAX_POSITION = 2**63 - 1

_ID_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: One ticket's batch for :meth:`EventStore.append_many`: (ticket id, events, expected version).
Batch = tuple[str, Sequence[Event], int]
#: An event that passed the checks, with its canonical bytes.
Prepared = tuple[Event, bytes]


@attrs.frozen
class AppendResult:
    """What an append stored.

    ``version`` is the ticket's version after the batch (the ``seq`` of its last
    event), ``positions`` the global positions of the batch's events, ``head``
    the ticket's chain hash after the batch, ``global_head`` the global chain
    hash after the batch's last event.  ``replayed`` is true when the batch was
    already stored and nothing was written (it does not take part in ``==``).
    """

    ticket_id: str
    version: int
    positions: tuple[int, ...]
    head: str
    global_head: str
    replayed: bool = attrs.field(default=False, eq=False)


@attrs.frozen
class StoredRow:
    """One stored row as written: the event's canonical bytes and both chain hashes.

    ``ticket_id``, ``seq`` and ``event_id`` are copies of fields inside
    ``data`` kept for indexing; :func:`~fireflow.store.chain.verify` checks they agree.
    """

    position: int
    ticket_id: str
    seq: int
    event_id: str
    data: bytes
    ticket_hash: str
    global_hash: str


@attrs.frozen
class StoredEvent:
    """An event with its place in the global order and its chain hashes."""

    position: int
    event: Event
    ticket_hash: str
    global_hash: str


_SET_POSITION, _SET_EVENT, _SET_TICKET_HASH, _SET_GLOBAL_HASH = (
    StoredEvent.__dict__[name].__set__
    for name in ("position", "event", "ticket_hash", "global_hash")
)


def stored_event(position: int, event: Event, ticket_hash: str, global_hash: str) -> StoredEvent:
    """``StoredEvent(...)`` for a store's read loop, filling the slots directly (faster)."""
    out = StoredEvent.__new__(StoredEvent)
    _SET_POSITION(out, position)
    _SET_EVENT(out, event)
    _SET_TICKET_HASH(out, ticket_hash)
    _SET_GLOBAL_HASH(out, global_hash)
    return out


@runtime_checkable
class EventStore(Protocol):
    """What every event store offers (see the module documentation for the contract)."""

    def append(
        self, ticket_id: str, events: Sequence[Event], expected_version: int
    ) -> AppendResult:
        """Append one ticket's batch, all or nothing, if its version is ``expected_version``."""
        ...

    def append_many(self, batches: Iterable[Batch]) -> list[AppendResult]:
        """Append several batches (of one or more tickets) in one all-or-nothing step."""
        ...

    def read(self, ticket_id: str) -> list[Event]:
        """One ticket's events in ``seq`` order (empty for an unknown ticket)."""
        ...

    def read_all(self, from_position: int = 0) -> Iterator[StoredEvent]:
        """Every event from ``from_position`` on, in the one global order."""
        ...

    def rows(self, from_position: int = 0) -> Iterator[StoredRow]:
        """The stored rows from ``from_position`` on, undecoded, in the global order."""
        ...

    def tickets(self) -> list[str]:
        """The ids of every ticket with at least one event, sorted."""
        ...

    def version(self, ticket_id: str) -> int:
        """The ticket's version: the ``seq`` of its last event (0 for none)."""
        ...

    def head(self, ticket_id: str) -> str:
        """The ticket's chain hash after its last event (the genesis hash for none)."""
        ...

    def count(self) -> int:
        """How many events the store holds (the next global position)."""
        ...


# --------------------------------------------------------------------------- #
# Checks


def _plain_id(value: object, max_length: int = MAX_ID_LENGTH) -> TypeGuard[str]:
    """The common case of :func:`check_id`: printable text (no control characters, no lone
    surrogates) of an allowed length.  Callers on a hot path test this first and build the
    field's name for :func:`check_id` only when it fails."""
    return type(value) is str and 0 < len(value) <= max_length and value.isprintable()


def check_id(value: object, field: str, max_length: int = MAX_ID_LENGTH) -> str:
    """An identifier: a non-empty string without control, bidirectional or invisible format
    characters or lone surrogates (the policy of :mod:`fireflow.text`)."""
    if _plain_id(value, max_length):
        return value
    if not isinstance(value, str):
        raise InvalidArgument(field, f"expected a string, got {type(value).__name__}")
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > max_length:
        raise InputLimitExceeded(field, f"longer than {max_length} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputLimitExceeded(field, "lone surrogate in text") from None
    if _ID_CONTROL.search(value):
        raise InputLimitExceeded(field, "control character in an identifier")
    # the one text policy (fireflow.text): no bidirectional or invisible format characters
    bad = refused_character(value)
    if bad is not None:
        raise InputLimitExceeded(
            field, f"character U+{ord(bad):04X} refused in an identifier (标识中不允许该字符)"
        )
    return value


def check_position(value: object, field: str = "from_position") -> int:
    """A global position: an integer from 0 to :data:`MAX_POSITION`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(field, f"expected an integer >= 0, got {value!r}")
    if value > MAX_POSITION:
        raise InputLimitExceeded(field, f"{value} is past the largest position ({MAX_POSITION})")
    return value


def _check_event(e: object, i: int, ticket_id: str, seq: int) -> Event:
    """The structural checks (ids, ticket, seq, kind, time, types); text is checked later.

    Field names for the errors are built only when a check fails (this runs for
    every appended event).
    """
    if not isinstance(e, Event):
        raise InvalidArgument(f"events[{i}]", f"expected an Event, got {type(e).__name__}")
    if not _plain_id(e.event_id):
        check_id(e.event_id, f"events[{i}].event_id")
    if e.ticket_id != ticket_id:
        raise InvalidArgument(
            f"events[{i}].ticket_id",
            f"event for ticket {e.ticket_id!r} appended to ticket {ticket_id!r}",
        )
    if isinstance(e.seq, bool) or not isinstance(e.seq, int):
        raise InvalidArgument(
            f"events[{i}].seq", f"expected an integer, got {type(e.seq).__name__}"
        )
    if e.seq != seq:
        raise InvalidArgument(
            f"events[{i}].seq",
            f"expected {seq} (seq must follow the expected version {seq - 1 - i} "
            f"without gaps), got {e.seq}",
        )
    if e.kind not in KINDS:
        raise InvalidArgument(
            f"events[{i}].kind",
            f"unknown kind {e.kind!r} (a lifecycle trigger, 'attempt_refused' or 'plan_migrated')",
        )
    at = e.at
    if not isinstance(at, datetime):
        raise InvalidArgument(f"events[{i}].at", f"expected a datetime, got {type(at).__name__}")
    if at.utcoffset() is None:  # also when there is no tzinfo at all
        raise NaiveDatetime(f"events[{i}].at")
    actor = e.actor
    if not isinstance(actor, Actor):
        raise InvalidArgument(
            f"events[{i}].actor", f"expected an Actor, got {type(actor).__name__}"
        )
    if not _plain_id(actor.agency):
        check_id(actor.agency, f"events[{i}].actor.agency")
    if type(e.payload) is not dict and not isinstance(e.payload, Mapping):
        raise InvalidArgument(f"events[{i}].payload", "expected a mapping")
    evidence = e.evidence
    if not isinstance(evidence, tuple):
        raise InvalidArgument(f"events[{i}].evidence", "expected a tuple of Evidence")
    if evidence:
        if len(evidence) > MAX_EVIDENCE:
            raise InputLimitExceeded(
                f"events[{i}].evidence", f"more than {MAX_EVIDENCE} pieces of evidence"
            )
        for j, ev in enumerate(evidence):
            if not isinstance(ev, Evidence):
                raise InvalidArgument(f"events[{i}].evidence[{j}]", "expected an Evidence")
    rules = e.rules
    if not isinstance(rules, tuple):
        raise InvalidArgument(f"events[{i}].rules", "expected a tuple of rule ids")
    try:
        known = rules in _CHECKED_RULES  # rule lists repeat: each is checked once
    except TypeError:  # an unhashable item: not an id, the loop below names it
        known = False
    if not known:
        for j, rule in enumerate(rules):
            check_id(rule, f"events[{i}].rules[{j}]")
        if len(_CHECKED_RULES) >= _CHECKED_RULES_MAX:
            _CHECKED_RULES.clear()
        _CHECKED_RULES.add(rules)
    return e


# Rule-id tuples already checked (ids are text, so equal tuples pass or fail alike).
_CHECKED_RULES: set[tuple[str, ...]] = set()
_CHECKED_RULES_MAX = 4096


def _check_text_fields(e: Event, i: int) -> None:
    """Every free-text field and the payload, each error naming its field (the slow path)."""
    f = f"events[{i}]"
    check_json_value(e.actor.person, f"{f}.actor.person")
    for j, ev in enumerate(e.evidence):
        check_json_value(ev.note, f"{f}.evidence[{j}].note")
    check_json_value(e.payload, f"{f}.payload")


def prepare_batch(ticket_id: str, events: Sequence[Event], expected_version: int) -> list[Prepared]:
    """Check a batch before anything is written; return each event with its bytes.

    Raises :class:`~fireflow.errors.InvalidArgument` (or its subclasses
    :class:`~fireflow.errors.InputLimitExceeded`,
    :class:`~fireflow.errors.NaiveDatetime`) naming the offending field.
    """
    check_id(ticket_id, "ticket_id")
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise InvalidArgument("expected_version", "expected an integer")
    if expected_version < 0:
        raise InvalidArgument("expected_version", f"must be >= 0, got {expected_version}")
    if isinstance(events, Event | str | bytes | Mapping) or not isinstance(events, Iterable):
        raise InvalidArgument("events", "expected a sequence of events")
    batch = tuple(events)
    if not batch:
        raise InvalidArgument("events", "nothing to append (empty batch)")
    if len(batch) > MAX_BATCH:
        raise InputLimitExceeded(
            "events", f"{len(batch)} events in one batch (at most {MAX_BATCH})"
        )
    out: list[Prepared] = []
    seen: set[str] = set()
    for i, raw in enumerate(batch):
        e, data = prepare_event(raw, i, ticket_id, expected_version + 1 + i)
        if e.event_id in seen:
            raise InvalidArgument(f"events[{i}].event_id", f"{e.event_id!r} repeated in the batch")
        seen.add(e.event_id)
        out.append((e, data))
    return out


def prepare_event(e: object, i: int, ticket_id: str, seq: int) -> Prepared:
    """The checks of one event of a batch (``events[i]``, to be ``seq`` of ``ticket_id``).

    Everything :func:`prepare_batch` checks of a single event: ids, kind, time,
    the text policy, payload size and depth.  Reading a stored row back runs this
    too (:func:`fireflow.store.chain.decode_event`), so no row an append would
    refuse is read as history.
    """
    e = _check_event(e, i, ticket_id, seq)
    data = canonical_bytes_if_plain(e)
    if data is None:
        _check_text_fields(e, i)
        data = canonical_bytes(e)
    if len(data) > MAX_PAYLOAD_BYTES:
        size = len(canonical_bytes_of_payload(e))
        if size > MAX_PAYLOAD_BYTES:
            raise InputLimitExceeded(
                f"events[{i}].payload",
                f"{size} bytes of canonical JSON (at most {MAX_PAYLOAD_BYTES})",
            )
        if len(data) > MAX_EVENT_BYTES:
            raise InputLimitExceeded(
                f"events[{i}]", f"{len(data)} bytes encoded (at most {MAX_EVENT_BYTES})"
            )
    return e, data


# A JSON escape that may stand for a control character (``\\u`` is only ever one in the
# canonical encoding, which writes every other character as it is).  An escaped
# backslash before one of these letters matches too: such rows take the full check.
_CONTROL_ESCAPE = re.compile(rb"\\[bfnrtu]")


def accepts_as_encoded(e: Event, data: bytes) -> bool:
    """Would :func:`prepare_event` take ``e`` as it stands, when ``data`` are its canonical bytes?

    The read path's shortcut (:func:`fireflow.store.chain.decode_event`): the caller
    promises that ``data`` is exactly what :func:`~fireflow.events.canonical_bytes_if_plain`
    writes for ``e`` (plain JSON data, no float, within the depth limit).  Then the text
    policy is decided on those bytes at once (no control-character escape, no refused
    character, NFC), the size by their length, the rest by the structural checks; the
    event is never encoded again.  ``True`` means :func:`prepare_event` passes and returns
    ``data``; ``False`` means this shortcut cannot tell (the full check decides and names
    the fault).  ``tests/test_store_fastpath.py`` holds the two to the same answers.
    """
    if len(data) > MAX_PAYLOAD_BYTES or not _plain_id(e.ticket_id):
        return False
    try:
        _check_event(e, 0, e.ticket_id, e.seq)
    except InvalidArgument:
        return False
    if e.seq < 1:
        return False
    if b"\\" in data and _CONTROL_ESCAPE.search(data) is not None:
        return False
    if data.isascii():
        return b"\x7f" not in data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # every character the policy refuses is one str.isprintable refuses (categories
    # Cc, Cf, Cs, Zl, Zp, unassigned), so printable text needs no search for them
    if not text.isprintable() and refused_character(text, free_text=True) is not None:
        return False
    return unicodedata.is_normalized("NFC", text)


def canonical_bytes_of_payload(event: Event) -> bytes:
    """The canonical JSON of an event's payload alone (what the size limit counts)."""
    return json.dumps(
        event_to_data(event)["payload"],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    ).encode("utf-8")


# --------------------------------------------------------------------------- #
# The idempotency and concurrency decision, shared by the stores


def settle(
    ticket_id: str,
    prepared: Sequence[Prepared],
    expected_version: int,
    actual_version: int,
    found: Mapping[str, StoredRow],
) -> AppendResult | None:
    """Decide an append against what is stored, under the store's write lock.

    ``found`` maps the batch's event ids that are already stored to their rows.
    Returns the stored result when the whole batch is already stored byte for
    byte (an idempotent re-send); raises
    :class:`~fireflow.store.errors.ConcurrencyConflict` when the version moved,
    :class:`~fireflow.store.errors.DuplicateEventId` when an id is stored with
    other content; returns ``None`` when the batch is to be written.
    """
    if found and len(found) == len(prepared):
        rows = [found.get(e.event_id) for e, _ in prepared]
        if all(
            r is not None and r.data == data for r, (_, data) in zip(rows, prepared, strict=True)
        ):
            last = rows[-1]
            assert last is not None  # all rows were found just above
            return AppendResult(
                ticket_id=ticket_id,
                version=last.seq,
                positions=tuple(r.position for r in rows if r is not None),
                head=last.ticket_hash,
                global_head=last.global_hash,
                replayed=True,
            )
    if actual_version != expected_version:
        raise ConcurrencyConflict(ticket_id, expected=expected_version, actual=actual_version)
    for i, (e, _) in enumerate(prepared):
        row = found.get(e.event_id)
        if row is not None:
            raise DuplicateEventId(e.event_id, field=f"events[{i}].event_id", position=row.position)
    return None
