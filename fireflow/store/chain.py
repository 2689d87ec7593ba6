"""Hash chains, verification and checkpoints: evidence that history was not rewritten.

Every stored event is linked into two SHA-256 chains over its canonical bytes
(:func:`fireflow.events.canonical_bytes`):

* the **ticket chain** over one ticket's events in ``seq`` order:
  ``h_t(n) = SHA256("fireflow/ticket/1\\n" || h_t(n-1) || "\\n" || bytes(e_n))``
* the **global chain** over all events in the global order:
  ``h_g(p) = SHA256("fireflow/global/1\\n" || h_g(p-1) || "\\n" || bytes(e_p))``

where hashes are written as 64 lowercase hex digits and the hash before the
first event is :data:`GENESIS` (64 zeros).  Anyone with the stored bytes can
recompute both chains, in any language.

:func:`verify` recomputes everything: each row decodes (duplicate JSON keys
refused) to an event whose canonical bytes are exactly the stored bytes, the
positions and each ticket's ``seq`` run without gaps, every stored hash
matches its recomputed link.  A :class:`Checkpoint` (count, global head hash,
a digest of every ticket's head, ticket count, and the time the caller says it
was taken) can be published; :func:`verify` against it also catches what a
rewrite of the whole chain would hide: truncation, a deleted ticket, reordered
or altered rows before the checkpoint.

>>> from datetime import datetime, timezone
>>> from fireflow.events import Actor, Event
>>> from fireflow.store.memory import MemoryStore
>>> store = MemoryStore()
>>> at = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)
>>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify", at=at,
...           actor=Actor("property"))
>>> _ = store.append("T1", [e], 0)
>>> cp = checkpoint(store, at)
>>> cp.count, cp.tickets
(1, 1)
>>> verify(store, cp).ok
True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs
import orjson

from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import MAX_DEPTH, Event, canonical_bytes, event_from_data, parse_time
from fireflow.store.base import (
    KINDS,
    AppendResult,
    EventStore,
    Prepared,
    StoredRow,
    accepts_as_encoded,
    check_id,
    prepare_event,
)
from fireflow.store.errors import CorruptRecord, StoreError, VerificationFailed

__all__ = [
    "CHECKPOINT_FORMAT",
    "GENESIS",
    "Checkpoint",
    "Mismatch",
    "VerifyReport",
    "check_as_appended",
    "checkpoint",
    "decode_event",
    "extend",
    "global_link",
    "heads_digest",
    "loads_strict",
    "ticket_link",
    "verify",
]

#: The hash before the first event of a chain.
GENESIS = "0" * 64
#: The ``format`` field of a checkpoint's JSON.
CHECKPOINT_FORMAT = "fireflow.checkpoint/1"

_TICKET_TAG = b"fireflow/ticket/1\n"
_GLOBAL_TAG = b"fireflow/global/1\n"
_HEX = frozenset("0123456789abcdef")


def ticket_link(previous: str, data: bytes) -> str:
    """The ticket-chain hash of an event given the previous hash of its ticket."""
    prev = previous.encode("utf-8", "surrogatepass")
    return hashlib.sha256(_TICKET_TAG + prev + b"\n" + data).hexdigest()


def global_link(previous: str, data: bytes) -> str:
    """The global-chain hash of an event given the previous global hash."""
    prev = previous.encode("utf-8", "surrogatepass")
    return hashlib.sha256(_GLOBAL_TAG + prev + b"\n" + data).hexdigest()


def heads_digest(heads: Mapping[str, tuple[int, str]]) -> str:
    """One hash over every ticket's (version, head): SHA-256 of canonical JSON.

    The JSON is the list ``[[ticket_id, version, head], ...]`` sorted by ticket
    id, without spaces, UTF-8.
    """
    items = [[t, v, h] for t, (v, h) in sorted(heads.items())]
    text = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def extend_rows(
    ticket_id: str,
    prepared: Sequence[Prepared],
    *,
    position: int,
    ticket_head: str,
    global_head: str,
) -> list[tuple[int, str, int, str, bytes, str, str]]:
    """:func:`extend` as plain tuples in column order, ready for an ``INSERT``."""
    rows: list[tuple[int, str, int, str, bytes, str, str]] = []
    for e, data in prepared:
        ticket_head = ticket_link(ticket_head, data)
        global_head = global_link(global_head, data)
        rows.append((position, ticket_id, e.seq, e.event_id, data, ticket_head, global_head))
        position += 1
    return rows


def appended(
    ticket_id: str, rows: Sequence[tuple[int, str, int, str, bytes, str, str]]
) -> AppendResult:
    """The result of writing ``rows`` (from :func:`extend_rows`, at least one) for a ticket."""
    tail = rows[-1]
    return AppendResult(
        ticket_id=ticket_id,
        version=tail[2],
        positions=tuple(r[0] for r in rows),
        head=tail[5],
        global_head=tail[6],
    )


def extend(
    ticket_id: str,
    prepared: Sequence[Prepared],
    *,
    position: int,
    ticket_head: str,
    global_head: str,
) -> list[StoredRow]:
    """The rows that append ``prepared`` after the given heads, starting at ``position``.

    Each row's hashes are :func:`ticket_link` and :func:`global_link` of the
    previous heads and the row's bytes.
    """
    return [
        StoredRow(*r)
        for r in extend_rows(
            ticket_id, prepared, position=position, ticket_head=ticket_head, global_head=global_head
        )
    ]


# --------------------------------------------------------------------------- #
# Reading stored bytes back


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _FloatFound(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _DuplicateKey(k)
            seen.add(k)
    return out


def _no_float(text: str) -> Any:
    raise _FloatFound(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_no_float, parse_constant=_no_float
)


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON, refusing duplicate keys, floats, NaN and infinities.

    Bytes must be UTF-8.  Raises :class:`ValueError` naming what it refused.

    >>> loads_strict('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    ValueError: duplicate key 'a'
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    try:
        return _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise ValueError(f"duplicate key {exc.key!r}") from None
    except _FloatFound as exc:
        raise ValueError(f"number {exc.args[0]} is not an integer") from None


def _has_float(value: object, depth: int = 0) -> bool:
    """Does parsed JSON hold a float (or nest deeper than a payload may)?

    ``value`` is at ``depth`` (the payload at 0); a payload may hold values down to
    depth :data:`~fireflow.events.MAX_DEPTH` (what :func:`~fireflow.events.check_json_value`
    lets writers store), so a container at that depth must be empty.
    """
    t = type(value)
    if t is dict:
        items: Iterable[object] = value.values()  # type: ignore[attr-defined]
    elif t is list:
        items = value  # type: ignore[assignment]
    else:
        return t is float
    if depth >= MAX_DEPTH and items:
        return True  # too deep: the strict path names it
    for v in items:
        tv = type(v)
        if tv is float or ((tv is dict or tv is list) and _has_float(v, depth + 1)):
            return True
    return False


def _decode_canonical(data: bytes) -> Any:
    """Parse a row that is canonical JSON, in compiled code; ``None`` for anything else.

    A row is taken when re-encoding what was parsed gives its bytes back exactly
    (so no key is repeated, keys are in order, nothing is spelt two ways) and its
    payload holds no float (outside the payload, the event's fields are checked for
    their exact types when the event is built); every other row takes the strict
    path, which names the fault.
    """
    try:
        obj = orjson.loads(data)
        if type(obj) is not dict or orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) != data:
            return None
    except (orjson.JSONDecodeError, TypeError):  # JSONEncodeError is a TypeError
        return None
    payload = obj.get("payload")
    if type(payload) is not dict or (payload and _has_float(payload)):
        return None
    return obj


def _too_deep(payload: object) -> str | None:
    """The path of a value nested deeper than a payload may hold, or ``None``.

    The bound of :func:`~fireflow.events.check_json_value` (the payload at depth 0,
    values down to :data:`~fireflow.events.MAX_DEPTH`), walked with a stack, not
    recursion, so any parsed nesting is answered.
    """
    stack: list[tuple[object, int, str]] = [(payload, 0, "payload")]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, depth + 1, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value))
    return None


_DEEP = f"nested deeper than {MAX_DEPTH} levels, the payload limit (嵌套层数超过上限 {MAX_DEPTH})"
#: Nesting that the strict parser is not asked to read (it recurses): far past any
#: field's limit, far below Python's recursion limit.
_SCAN_DEPTH = 200
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _deep_field(text: str) -> str | None:
    """``data.payload`` or ``data`` when ``text`` nests deeper than :data:`_SCAN_DEPTH`.

    A scan of the brackets outside strings (linear, no recursion), before the row is
    parsed: the strict parser is recursive.
    """
    depth = 0
    payload_at = 0  # the depth of the payload's value while inside it
    after_payload_key = False
    for m in _TOKENS.finditer(text):
        mark = m.group()
        if mark in "[{":
            depth += 1
            if after_payload_key:
                payload_at = depth
            if depth > _SCAN_DEPTH:
                return "data.payload" if payload_at else "data"
        elif mark in "]}":
            if depth == payload_at:
                payload_at = 0
            depth -= 1
        after_payload_key = depth == 1 and mark == '"payload"'
    return None


def decode_event(data: bytes, position: int) -> Event:
    """The event stored at ``position`` (raises :class:`~fireflow.store.errors.CorruptRecord`).

    A row is refused, naming the field, when it is not UTF-8 or not JSON, when it
    repeats a key or holds a float, when its payload nests deeper than
    :data:`~fireflow.events.MAX_DEPTH`, when it is not an event, when it carries a
    field no event has, and when the event fails the very checks an append makes
    (:func:`~fireflow.store.base.prepare_event`: ids, kind, size, text policy):
    a row that no append could have written is not read as history.

    >>> from datetime import datetime, timezone
    >>> from fireflow.events import Actor, Event, canonical_bytes
    >>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify",
    ...           at=datetime(2022, 3, 21, 2, tzinfo=timezone.utc), actor=Actor("property"))
    >>> decode_event(canonical_bytes(e), 0) == e
    True
    >>> decode_event(canonical_bytes(e).replace(b'"kind":"rectify"', b'"kind":"x"'), 4)
    Traceback (most recent call last):
    ...
    fireflow.store.errors.CorruptRecord: stored row at position 4: data.kind: unknown kind 'x' ...
    """
    obj = _decode_canonical(data) if type(data) is bytes else None
    canonical = obj is not None
    if obj is None:
        obj = _decode_strict(data, position)
    try:
        event = event_from_data(obj, canonical=True)
    except InvalidArgument as exc:
        raise CorruptRecord(position, f"data.{exc.field}", str(exc)) from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise CorruptRecord(position, "data", f"not an event: {exc}") from None
    # The common row: canonical bytes that are exactly the event's encoding, decided on
    # the bytes without encoding the event again; every other row takes the full check.
    if not (canonical and _encodes_as(event, obj) and accepts_as_encoded(event, data)):
        check_as_appended(event, obj, data, position)
    return event


def _encodes_as(event: Event, obj: Mapping[str, Any]) -> bool:
    """Is ``obj`` (parsed from canonical bytes) exactly the JSON data ``event`` encodes to?

    The event was built from ``obj`` field by field, so it is when ``obj`` holds every
    field an event writes and nothing else, in the containers the encoding writes
    (lists, objects with exactly their keys), and its time is spelt as the encoding
    spells it; its text is NFC (checked on the bytes by the caller), which the
    converters would otherwise change.
    """
    if obj.keys() != _EVENT_KEYS:
        return False
    actor, evidence = obj["actor"], obj["evidence"]
    if type(actor) is not dict or actor.keys() != _ACTOR_KEYS:
        return False
    if type(evidence) is not list or type(obj["rules"]) is not list:
        return False
    for item in evidence:
        if type(item) is not dict or item.keys() != _EVIDENCE_KEYS:
            return False
    return bool(event.at.isoformat() == obj["at"])


def _decode_strict(data: bytes, position: int) -> dict[str, Any]:
    """Parse a row that is not canonical JSON with the strict parser, naming the fault."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
        deep = _deep_field(text)
        if deep is not None:
            raise CorruptRecord(position, deep, _DEEP)
        obj = loads_strict(text)
    except UnicodeDecodeError:
        raise CorruptRecord(position, "data", "not UTF-8") from None
    except RecursionError:  # not reached after the scan; never let it escape
        raise CorruptRecord(position, "data", _DEEP) from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise CorruptRecord(position, "data", f"not canonical JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise CorruptRecord(position, "data", "not a JSON object")
    deep = _too_deep(obj.get("payload"))
    if deep is not None:
        raise CorruptRecord(position, f"data.{deep}", _DEEP)
    return obj


#: The fields of an event's JSON, of its actor and of a piece of evidence.
_EVENT_KEYS = frozenset(
    ("event_id", "ticket_id", "seq", "kind", "at", "actor", "payload", "evidence", "rules")
)
_ACTOR_KEYS = frozenset(("agency", "person"))
_EVIDENCE_KEYS = frozenset(("kind", "sha256", "note"))


def _unknown_field(obj: Mapping[str, Any]) -> str | None:
    """The first field of a decoded row that no event has (``data.x``), or ``None``."""
    extra = sorted(obj.keys() - _EVENT_KEYS)
    if extra:
        return f"data.{extra[0]}"
    actor = obj.get("actor")
    if isinstance(actor, Mapping):
        extra = sorted(actor.keys() - _ACTOR_KEYS)
        if extra:
            return f"data.actor.{extra[0]}"
    evidence = obj.get("evidence")
    if isinstance(evidence, list):
        for i, item in enumerate(evidence):
            if isinstance(item, Mapping):
                extra = sorted(item.keys() - _EVIDENCE_KEYS)
                if extra:
                    return f"data.evidence[{i}].{extra[0]}"
    return None


def _row_field(field: str) -> str:
    """An append check's field (``events[0].payload.x``) as the row's (``data.payload.x``)."""
    if field.startswith("events[0]"):
        return "data" + field[len("events[0]") :]
    if field == "expected_version":
        return "data.seq"
    return f"data.{field}"


def check_as_appended(event: Event, obj: Mapping[str, Any], data: bytes, position: int) -> None:
    """Refuse (:class:`~fireflow.store.errors.CorruptRecord`) a row no append could write.

    ``event`` was decoded from ``data`` (parsed as ``obj``).  The event goes through
    :func:`~fireflow.store.base.prepare_event`, the checks
    :func:`~fireflow.store.base.prepare_batch` makes of every appended event (so a
    rule added there holds for reads too); a row whose bytes are not what that
    append would store is looked at for fields no event has.
    """
    try:
        check_id(event.ticket_id, "ticket_id")  # what prepare_batch checks of the batch
        _, again = prepare_event(event, 0, event.ticket_id, event.seq)
        if event.seq < 1:
            raise InvalidArgument("events[0].seq", f"expected an integer >= 1, got {event.seq}")
    except InvalidArgument as exc:
        field = _row_field(exc.field)
        message = str(exc).removeprefix(f"{exc.field}: ")
        raise CorruptRecord(
            position, field, f"{message}; no append could have written it (超出写入限制)"
        ) from None
    if again != data:
        unknown = _unknown_field(obj)
        if unknown is not None:
            raise CorruptRecord(
                position,
                unknown,
                "a field no event has; no append could have written it (未知字段)",
            )


# --------------------------------------------------------------------------- #
# Checkpoints


def _hex(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise InvalidArgument(field, "expected 64 lowercase hex digits")
    return value


def _count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(field, f"expected an integer >= 0, got {value!r}")
    return value


def _aware(value: object, field: str = "at") -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument(field, f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(field)
    return value


@attrs.frozen
class Checkpoint:
    """What a store held at one moment, small enough to publish (公示) or hand over.

    ``count`` events, the global chain's hash after them (``global_head``), the
    number of tickets and :func:`heads_digest` of every ticket's head, and the
    moment ``at`` the caller says the checkpoint was taken (fireflow never reads
    the clock).  The JSON form is stable: keys sorted, 2-space indent.

    >>> from datetime import datetime, timezone
    >>> at = datetime(2022, 12, 12, tzinfo=timezone.utc)
    >>> cp = Checkpoint(0, GENESIS, 0, heads_digest({}), at)
    >>> Checkpoint.from_json(cp.to_json()) == cp
    True
    """

    count: int = attrs.field(validator=lambda _i, _a, v: _count(v, "count"))
    global_head: str = attrs.field(validator=lambda _i, _a, v: _hex(v, "global_head"))
    tickets: int = attrs.field(validator=lambda _i, _a, v: _count(v, "tickets"))
    tickets_digest: str = attrs.field(validator=lambda _i, _a, v: _hex(v, "tickets_digest"))
    at: datetime = attrs.field(validator=lambda _i, _a, v: _aware(v))

    def to_data(self) -> dict[str, Any]:
        """JSON data (``at`` as ISO-8601 with its offset)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "count": self.count,
            "global_head": self.global_head,
            "tickets": self.tickets,
            "tickets_digest": self.tickets_digest,
            "at": self.at.isoformat(),
        }

    def to_json(self) -> str:
        """The JSON text to publish (ends with a newline)."""
        return json.dumps(self.to_data(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Rebuild from :meth:`to_data` output; every field is checked and named."""
        if not isinstance(data, Mapping):
            raise InvalidArgument("checkpoint", "expected a JSON object")
        fields = {"format", "count", "global_head", "tickets", "tickets_digest", "at"}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise InvalidArgument(f"checkpoint.{unknown[0]}", "unknown field")
        missing = sorted(fields - set(data))
        if missing:
            raise InvalidArgument(f"checkpoint.{missing[0]}", "missing")
        if data["format"] != CHECKPOINT_FORMAT:
            raise InvalidArgument("checkpoint.format", f"expected {CHECKPOINT_FORMAT!r}")
        at = data["at"]
        if not isinstance(at, str):
            raise InvalidArgument("checkpoint.at", "expected an ISO-8601 timestamp")
        return cls(
            count=_count(data["count"], "checkpoint.count"),
            global_head=_hex(data["global_head"], "checkpoint.global_head"),
            tickets=_count(data["tickets"], "checkpoint.tickets"),
            tickets_digest=_hex(data["tickets_digest"], "checkpoint.tickets_digest"),
            at=parse_time(at, "checkpoint.at"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Parse published JSON (duplicate keys refused)."""
        try:
            data = loads_strict(text)
        except ValueError as exc:
            raise InvalidArgument("checkpoint", f"not valid JSON: {exc}") from None
        return cls.from_data(data)


# --------------------------------------------------------------------------- #
# Verification


@attrs.frozen
class Mismatch:
    """One thing :func:`verify` found wrong, and where.

    ``what`` is a short code (``position``, ``decode``, ``canonical``, ``columns``,
    ``kind``, ``seq``, ``event_id``, ``ticket_hash``, ``global_hash``,
    ``integrity``, ``read``, ``head`` (the store's head row: next position and
    global hash, against the rows), ``checkpoint.count``, ``checkpoint.global_head``,
    ``checkpoint.tickets``, ``checkpoint.tickets_digest``); ``position`` and
    ``ticket_id`` say where, when known.
    """

    what: str
    detail: str
    position: int | None = None
    ticket_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.ticket_id is not None:
            where.append(f"ticket {self.ticket_id}")
        loc = f" at {', '.join(where)}" if where else ""
        return f"{self.what}{loc}: {self.detail}"


@attrs.frozen
class VerifyReport:
    """The outcome of :func:`verify`: what was recomputed and every mismatch found.

    ``count``, ``tickets``, ``global_head`` and ``tickets_digest`` are
    *recomputed* from the stored bytes.  ``problems`` holds the first mismatches
    (at most ``max_problems``), ``problem_count`` all of them.
    """

    count: int
    tickets: int
    global_head: str
    tickets_digest: str
    problems: tuple[Mismatch, ...]
    problem_count: int
    checkpoint: Checkpoint | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return self.problem_count == 0

    def to_data(self) -> dict[str, Any]:
        """JSON data."""
        return {
            "ok": self.ok,
            "count": self.count,
            "tickets": self.tickets,
            "global_head": self.global_head,
            "tickets_digest": self.tickets_digest,
            "problem_count": self.problem_count,
            "problems": [attrs.asdict(p) for p in self.problems],
            "checkpoint": self.checkpoint.to_data() if self.checkpoint else None,
        }


@runtime_checkable
class _HasIntegrityCheck(Protocol):
    def integrity_check(self) -> list[str]: ...


@runtime_checkable
class _HasHeadRow(Protocol):
    def head_row(self) -> tuple[int, str] | None: ...


class _Collector:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.problems: list[Mismatch] = []
        self.count = 0

    def add(
        self, what: str, detail: str, position: int | None = None, ticket_id: str | None = None
    ) -> None:
        self.count += 1
        if len(self.problems) < self.limit:
            self.problems.append(Mismatch(what, detail, position, ticket_id))


def _snapshot(g_head: str, heads: Mapping[str, list[Any]]) -> tuple[str, int, str]:
    digest = heads_digest({t: (s[0], s[1]) for t, s in heads.items()})
    return g_head, len(heads), digest


def _short(h: object) -> str:
    return f"{h[:12]}…" if isinstance(h, str) else repr(h)


def verify(
    store: EventStore, checkpoint: Checkpoint | None = None, *, max_problems: int = 100
) -> VerifyReport:
    """Recompute every row, both chains and (if given) the checkpoint's figures.

    Nothing is trusted: each stored row is decoded (duplicate keys refused) and
    re-encoded, hashes are recomputed from the stored bytes, positions and
    ``seq`` must run without gaps, ids must be unique.  With a ``checkpoint``,
    the first ``checkpoint.count`` events must reproduce its global head, its
    ticket count and its ticket-heads digest exactly.  A store that keeps a head
    row (``head_row()``: PostgreSQL's ``fireflow_head``, SQLite's) must have it
    where the rows end: the next position and the global hash after the last row.
    Stores that can check their own file (SQLite's ``PRAGMA integrity_check``) do so too.
    """
    if not callable(getattr(store, "rows", None)):  # all verify reads is rows()
        raise InvalidArgument("store", f"expected an event store, got {type(store).__name__}")
    if checkpoint is not None and not isinstance(checkpoint, Checkpoint):
        raise InvalidArgument(
            "checkpoint", f"expected a Checkpoint, got {type(checkpoint).__name__}"
        )
    if isinstance(max_problems, bool) or not isinstance(max_problems, int) or max_problems < 0:
        raise InvalidArgument("max_problems", f"expected an integer >= 0, got {max_problems!r}")
    found = _Collector(max_problems)
    if isinstance(store, _HasIntegrityCheck):
        messages = store.integrity_check()
        if messages != ["ok"]:
            for m in messages:
                found.add("integrity", m)
    expected_position = 0
    g_true = GENESIS
    g_stored = GENESIS
    # ticket id -> [version, recomputed head, stored head of the last row]
    heads: dict[str, list[Any]] = {}
    ids: set[str] = set()
    count = 0
    at_checkpoint: tuple[str, int, str] | None = None
    if checkpoint is not None and checkpoint.count == 0:
        at_checkpoint = _snapshot(g_true, heads)
    # the head row before the rows are read, and again after: appends that commit
    # meanwhile move it on, but never behind the rows, nor ahead of what was read
    head_before = _read_head(store, found)
    at_head: tuple[str, str] | None = None
    if head_before is not None and head_before[0] == 0:
        at_head = (GENESIS, GENESIS)
    rows: Iterable[StoredRow] = store.rows()
    try:
        for row in rows:
            p, tid = row.position, row.ticket_id
            if p != expected_position:
                found.add("position", f"expected position {expected_position}, found {p}", p, tid)
            expected_position = p + 1
            data = row.data
            try:
                event = decode_event(data, p)
            except CorruptRecord as exc:
                found.add("decode", str(exc), p, tid)
            else:
                try:
                    again = canonical_bytes(event)
                except (InvalidArgument, UnicodeEncodeError) as exc:
                    again = b""
                    found.add("canonical", f"cannot be encoded again: {exc}", p, tid)
                if again and again != data:
                    found.add(
                        "canonical", "stored bytes are not the event's canonical bytes", p, tid
                    )
                if (event.ticket_id, event.seq, event.event_id) != (tid, row.seq, row.event_id):
                    found.add(
                        "columns",
                        f"row says ({tid!r}, {row.seq!r}, {row.event_id!r}), its data says "
                        f"({event.ticket_id!r}, {event.seq!r}, {event.event_id!r})",
                        p,
                        tid,
                    )
                if event.kind not in KINDS:
                    found.add("kind", f"unknown kind {event.kind!r}", p, tid)
            state = heads.get(tid)
            if state is None:
                state = heads[tid] = [0, GENESIS, GENESIS]
            if row.seq != state[0] + 1:
                found.add("seq", f"expected seq {state[0] + 1}, found {row.seq!r}", p, tid)
            if row.event_id in ids:
                found.add("event_id", f"event id {row.event_id!r} stored twice", p, tid)
            ids.add(row.event_id)
            if row.ticket_hash != ticket_link(state[2], data):
                found.add(
                    "ticket_hash",
                    f"stored {_short(row.ticket_hash)} does not follow from the previous "
                    "hash of the ticket and this row's bytes",
                    p,
                    tid,
                )
            if row.global_hash != global_link(g_stored, data):
                found.add(
                    "global_hash",
                    f"stored {_short(row.global_hash)} does not follow from the previous "
                    "global hash and this row's bytes",
                    p,
                    tid,
                )
            g_true = global_link(g_true, data)
            state[0] = row.seq if isinstance(row.seq, int) else state[0] + 1
            state[1] = ticket_link(state[1], data)
            state[2] = row.ticket_hash
            g_stored = row.global_hash
            count += 1
            if checkpoint is not None and count == checkpoint.count:
                at_checkpoint = _snapshot(g_true, heads)
            if head_before is not None and count == head_before[0]:
                at_head = (g_true, g_stored)
    except StoreError as exc:
        found.add("read", f"the store could not be read to the end: {exc}", expected_position)
    final = _snapshot(g_true, heads)
    if head_before is not None:
        head_after = _read_head(store, found)
        if head_after is not None:
            _check_head_row(head_before, head_after, at_head, count, g_true, g_stored, found)
    if checkpoint is not None:
        _check_against(checkpoint, count, at_checkpoint, found)
    return VerifyReport(
        count=count,
        tickets=final[1],
        global_head=final[0],
        tickets_digest=final[2],
        problems=tuple(found.problems),
        problem_count=found.count,
        checkpoint=checkpoint,
    )


def _read_head(store: EventStore, found: _Collector) -> tuple[int, str] | None:
    """The store's head row, if it keeps one (a failure to read it is reported)."""
    if not isinstance(store, _HasHeadRow):
        return None
    try:
        return store.head_row()
    except StoreError as exc:
        found.add("head", f"the head row could not be read: {exc}")
        return None


def _check_head_row(
    before: tuple[int, str],
    after: tuple[int, str],
    at_head: tuple[str, str] | None,
    count: int,
    g_true: str,
    g_stored: str,
    found: _Collector,
) -> None:
    """The head row (next position, global hash) must be where the rows end.

    ``before`` was read before the rows, ``after`` after them; appends committed
    meanwhile move the head on, so ``before`` may be behind the rows read and
    ``after`` ahead of them, never the other way round.  ``at_head`` is the chain
    (recomputed, stored) after ``before``'s count of rows.
    """
    if before[0] > count:
        found.add(
            "head",
            f"the head row says the next position is {before[0]}, the rows end at {count}: "
            "the head was moved on or rows were removed behind it (头部记录超前于事件)",
            count,
        )
    elif after[0] < count:
        found.add(
            "head",
            f"the head row says the next position is {after[0]}, the rows end at {count}: "
            "the head was moved back or rows were put behind it (头部记录落后于事件)",
            count,
        )
    elif at_head is not None and (before[1] != at_head[0] or before[1] != at_head[1]):
        found.add(
            "head",
            f"the head row's global hash {_short(before[1])} is not the chain's "
            f"{_short(at_head[0])} after {before[0]} events "
            "(头部哈希与事件不符)",
            before[0],
        )
    elif after[0] == count and (after[1] != g_true or after[1] != g_stored):
        found.add(
            "head",
            f"the head row's global hash {_short(after[1])} is not the chain's "
            f"{_short(g_true)} after {count} events (头部哈希与事件不符)",
            count,
        )


def _check_against(
    cp: Checkpoint, count: int, snap: tuple[str, int, str] | None, found: _Collector
) -> None:
    if snap is None:
        found.add(
            "checkpoint.count",
            f"the store holds {count} events, the checkpoint of {cp.at.isoformat()} "
            f"counted {cp.count}: events were removed (truncated or deleted)",
            count,
        )
        return
    g_head, tickets, digest = snap
    if g_head != cp.global_head:
        found.add(
            "checkpoint.global_head",
            f"the first {cp.count} events hash to {_short(g_head)}, the checkpoint of "
            f"{cp.at.isoformat()} says {_short(cp.global_head)}: events before position "
            f"{cp.count} were altered, reordered, inserted or removed",
        )
    if tickets != cp.tickets:
        found.add(
            "checkpoint.tickets",
            f"{tickets} tickets in the first {cp.count} events, the checkpoint says "
            f"{cp.tickets}: a ticket was deleted or added",
        )
    if digest != cp.tickets_digest:
        found.add(
            "checkpoint.tickets_digest",
            f"the tickets' heads after {cp.count} events differ from the checkpoint's: "
            "some ticket's history was changed",
        )


def checkpoint(store: EventStore, at: datetime) -> Checkpoint:
    """A checkpoint of everything the store holds, taken at ``at`` (supplied by you).

    The store is verified first: a store that does not verify raises
    :class:`~fireflow.store.errors.VerificationFailed` instead of a checkpoint
    that would vouch for it.
    """
    _aware(at)
    report = verify(store)
    if not report.ok:
        raise VerificationFailed(report)
    return Checkpoint(
        count=report.count,
        global_head=report.global_head,
        tickets=report.tickets,
        tickets_digest=report.tickets_digest,
        at=at,
    )
