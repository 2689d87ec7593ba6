"""Events: what happened to a ticket, as frozen records with a canonical encoding.

An :class:`Event` is immutable (attrs, frozen, slotted).  :func:`canonical_bytes`
gives the one byte encoding used for hashing and storage: JSON with keys
sorted, no insignificant white space, text normalised to NFC, no floats.
:func:`event_to_data` / :func:`event_from_data` convert to and from plain JSON
data without loss.

>>> import pendulum
>>> e = Event(
...     event_id="T1/1", ticket_id="T1", seq=1, kind="report",
...     at=pendulum.datetime(2022, 3, 20, 9, tz="Asia/Shanghai"),
...     actor=Actor("town", "王科长"), payload={"category": "evacuation_blocked"},
... )
>>> event_from_data(event_to_data(e)) == e
True
>>> canonical_bytes(e).decode()[:41]
'{"actor":{"agency":"town","person":"王科长"}'
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs
import orjson

from fireflow.errors import InputLimitExceeded, InvalidArgument, NaiveDatetime
from fireflow.text import refusal_reason, refused_character

__all__ = [
    "MAX_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "NAME_KEYS",
    "Actor",
    "Event",
    "Evidence",
    "EvidenceKind",
    "canonical_bytes",
    "canonical_bytes_if_plain",
    "check_event_text",
    "check_json_value",
    "check_text",
    "event_from_data",
    "event_to_data",
    "is_name_key",
    "parse_time",
    "shared_actor",
    "trusted_event",
]

#: The largest encoded payload accepted (bytes of canonical JSON).
MAX_PAYLOAD_BYTES = 64 * 1024
#: The deepest nesting of lists and mappings accepted in a payload.
MAX_DEPTH = 16

EvidenceKind = Literal["photo_before", "photo_after", "document"]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _nfc_text(value: str) -> str:
    return _nfc_str(value)


def _nfc_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Payload text kept in NFC, so that encoding and decoding lose nothing.

    The common case (plain JSON data already in NFC) is recognised in one pass
    of compiled code: encode the payload, test the bytes; only otherwise walk it.
    """
    try:
        raw = orjson.dumps(payload)
    except TypeError:  # not plain JSON (orjson.JSONEncodeError): walk it, report later
        return _nfc(dict(payload))  # type: ignore[no-any-return]
    if raw.isascii() or unicodedata.is_normalized("NFC", raw.decode("utf-8")):
        return dict(payload)
    return _nfc(dict(payload))  # type: ignore[no-any-return]


@attrs.frozen(order=True)
class Actor:
    """Who acted: an agency id and, where known, a person (经办人, text kept in NFC)."""

    agency: str
    person: str = attrs.field(default="", converter=_nfc_text)

    def __str__(self) -> str:
        return f"{self.agency}:{self.person}" if self.person else self.agency


@attrs.frozen
class Evidence:
    """A piece of evidence, referenced by the SHA-256 of its content (拍照建档)."""

    kind: EvidenceKind
    sha256: str
    note: str = attrs.field(default="", converter=_nfc_text)

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("photo_before", "photo_after", "document"):
            raise InvalidArgument("evidence.kind", f"unknown evidence kind {self.kind!r}")
        if not _SHA256.match(self.sha256):
            raise InvalidArgument("evidence.sha256", "expected 64 lowercase hex digits")


def _freeze_time(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument("at", f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime("at")
    return value


@attrs.frozen(eq=True)
class Event:
    """One recorded fact about a ticket.

    ``seq`` counts from 1 per ticket; ``kind`` is a trigger of the lifecycle or
    ``attempt_refused`` (a refused attempt, recorded without changing state);
    ``rules`` are the rule ids that produced or allowed it.
    """

    event_id: str
    ticket_id: str
    seq: int
    kind: str
    at: datetime = attrs.field(converter=_freeze_time)
    actor: Actor
    payload: Mapping[str, Any] = attrs.field(factory=dict, hash=False, converter=_nfc_payload)
    evidence: tuple[Evidence, ...] = ()
    rules: tuple[str, ...] = ()


def parse_time(text: str, field: str = "at") -> datetime:
    """An ISO-8601 timestamp with an offset; naive text is refused."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise InvalidArgument(field, f"not an ISO-8601 timestamp: {text!r}") from None
    if value.tzinfo is None:
        raise NaiveDatetime(field)
    return value


#: Payload keys whose values are names or ids (and everything inside them): they follow
#: the name policy of :mod:`fireflow.text` (no control, bidirectional or invisible
#: character, tab and newline included).  So does every key ending in ``_id`` or ``_by``,
#: every mapping key, and an actor's ``person``.  Every other text is free text.
NAME_KEYS: frozenset[str] = frozenset(
    (
        "community",
        "town",
        "company",
        "person",
        "name",
        "agency",
        "agencies",
        "category",
        "subtype",
        "location",
        "source",
        "route",
        "routing",
        "with",
        "targets",
        "signers",
        "people",
        "participants",
        "trigger",
        "state",
        "kind",
    )
)
_PATH_TAIL = re.compile(r"(?:^|\.)([^.\[\]]*)(?:\[\d+\])*$")


def is_name_key(key: str) -> bool:
    """Does a payload key hold a name or an id (see :data:`NAME_KEYS`)?

    >>> is_name_key("community"), is_name_key("plan_id"), is_name_key("description")
    (True, True, False)
    """
    return key in NAME_KEYS or key.endswith(("_id", "_by"))


def _name_field(field: str) -> bool:
    """Is ``field`` (``events[0].payload.community``, ``...with[2]``) a name by its last key?"""
    m = _PATH_TAIL.search(field)
    return m is not None and is_name_key(m.group(1))


def check_json_value(
    value: Any, field: str = "payload", depth: int = 0, *, name: bool | None = None
) -> None:
    """Refuse what the canonical encoding cannot hold faithfully, or the text policy refuses.

    The one check of stored text, on every append path and when rows are read back:
    floats (not exact), lone surrogates, non-string keys, nesting deeper than
    :data:`MAX_DEPTH`; names and ids (:func:`is_name_key`, judged by ``field``'s last
    key unless ``name`` says) under the name policy, other text under the free-text
    policy (:mod:`fireflow.text`).  Each refusal names the field and the character.

    >>> check_json_value({"community": "金峰小区\\u200b"}, "payload")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fireflow.errors.InputLimitExceeded: payload.community: invisible format character U+200B ...
    >>> check_json_value({"description": "一\\n二"}, "payload")
    """
    if depth > MAX_DEPTH:
        raise InputLimitExceeded(field, f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if name is None:
        name = _name_field(field)
    if isinstance(value, float):
        raise InvalidArgument(field, "floats are not allowed (use integers or strings)")
    if isinstance(value, str):
        _check_text(value, field, name=name)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_value(item, f"{field}[{i}]", depth + 1, name=name)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgument(field, f"keys must be strings, got {k!r}")
            _check_text(k, field, name=True)
            check_json_value(v, f"{field}.{k}", depth + 1, name=name or is_name_key(k))
        return
    raise InvalidArgument(field, f"not JSON data: {type(value).__name__}")


def _check_text(text: str, field: str, *, name: bool = False) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputLimitExceeded(field, "lone surrogate in text") from None
    reason = refusal_reason(text, free_text=not name)
    if reason is not None:
        raise InputLimitExceeded(field, reason)


def check_event_text(event: Event, field: str = "event") -> None:
    """Every text of an event under the policy: ids and names, the actor, evidence notes,
    rule ids and the payload (:func:`check_json_value`).

    The one function the append checks, the JSON-lines reader and the readers of
    stored rows call, so that what is refused on the way in is refused on the way back.
    """
    for key in ("event_id", "ticket_id", "kind"):
        check_json_value(getattr(event, key), f"{field}.{key}", name=True)
    check_json_value(event.actor.agency, f"{field}.actor.agency", name=True)
    check_json_value(event.actor.person, f"{field}.actor.person", name=True)
    for j, ev in enumerate(event.evidence):
        check_json_value(ev.note, f"{field}.evidence[{j}].note", name=False)
    check_json_value(list(event.rules), f"{field}.rules", name=True)
    check_json_value(event.payload, f"{field}.payload")


def check_text(text: str) -> str:
    """Refuse lone surrogates and control characters in free text; return it in NFC.

    Used as a pydantic validator on the text fields of commands.
    """
    _check_text(text, "text")
    return _nfc_str(text)


def _nfc_str(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def _nfc(value: Any) -> Any:
    if isinstance(value, str):
        return _nfc_str(value)
    if isinstance(value, list | tuple):
        return [_nfc(v) for v in value]
    if isinstance(value, Mapping):  # a key that is not text is left for the checks to name
        return {(_nfc_str(k) if isinstance(k, str) else k): _nfc(v) for k, v in value.items()}
    return value


def event_to_data(event: Event) -> dict[str, Any]:
    """The event as plain JSON data (times as ISO-8601 with offset)."""
    data = _json_data(event)
    data["payload"] = _nfc(dict(event.payload))
    return data


def event_from_data(data: Mapping[str, Any], *, canonical: bool = False) -> Event:
    """Rebuild an event from :func:`event_to_data` output (or parsed JSON).

    ``canonical=True`` is for data freshly decoded from :func:`canonical_bytes`
    (an event store's rows), whose text is NFC already: the normalisation pass
    is skipped and the decoded payload is taken as it is, not copied.
    """
    if canonical:
        return _canonical_event(data)
    try:
        actor = data["actor"]
        fields: dict[str, Any] = {
            "event_id": str(data["event_id"]),
            "ticket_id": str(data["ticket_id"]),
            "seq": int(data["seq"]),
            "kind": str(data["kind"]),
            "at": parse_time(data["at"]),
            "actor": Actor(str(actor["agency"]), str(actor.get("person", ""))),
            "payload": dict(data.get("payload") or {}),
            "evidence": tuple(
                Evidence(e["kind"], e["sha256"], e.get("note", ""))
                for e in data.get("evidence", ())
            ),
            "rules": tuple(data.get("rules", ())),
        }
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0]), "missing field in event data") from None
    return Event(**fields)


# The slots' own setters: an event is filled in without going through the frozen
# ``__setattr__`` (about twice as fast as ``object.__setattr__`` by name).
(
    _SET_EVENT_ID,
    _SET_TICKET_ID,
    _SET_SEQ,
    _SET_KIND,
    _SET_AT,
    _SET_ACTOR,
    _SET_PAYLOAD,
    _SET_EVIDENCE,
    _SET_RULES,
) = (
    Event.__dict__[name].__set__
    for name in (
        "event_id",
        "ticket_id",
        "seq",
        "kind",
        "at",
        "actor",
        "payload",
        "evidence",
        "rules",
    )
)
# Actors repeat endlessly in a replay (an agency and, mostly, no person): share them.
_ACTORS: dict[tuple[str, str], Actor] = {}
_SHARED_MAX = 4096  # bounded: odd data cannot grow the shared tables forever


def shared_actor(agency: str, person: str) -> Actor:
    """The :class:`Actor` for ``(agency, person)``, one shared object per pair (bounded table).

    For the engine's hot paths, where the same actors repeat in every replay.

    >>> shared_actor("town", "") is shared_actor("town", "")
    True
    """
    key = (agency, person)
    found = _ACTORS.get(key)
    if found is None:
        if len(_ACTORS) >= _SHARED_MAX:
            _ACTORS.clear()
        found = _ACTORS[key] = Actor(agency, person)
    return found


# Rule lists repeat too (one per kind of step): checked once, then shared.
_RULES: dict[tuple[Any, ...], tuple[str, ...]] = {}


def _shared_rules(rules: tuple[Any, ...]) -> tuple[str, ...]:
    found = _RULES.get(rules)
    if found is None:
        for rule in rules:
            if type(rule) is not str:
                raise TypeError(f"rule ids must be text, got {rule!r}")
        if len(_RULES) >= _SHARED_MAX:
            _RULES.clear()
        found = _RULES[rules] = rules
    return found


def _canonical_event(data: Mapping[str, Any]) -> Event:
    """:func:`event_from_data` for canonical data: the converters' work is done.

    Every field must be there, as the canonical encoding writes them all, with
    the types it writes (text, an integer ``seq``, text rule ids); a missing one
    raises :class:`~fireflow.errors.InvalidArgument`, a wrong type :class:`TypeError`.
    """
    try:
        actor = data["actor"]
        event_id, ticket_id, seq = data["event_id"], data["ticket_id"], data["seq"]
        kind, at = data["kind"], data["at"]
        payload, evidence, rules = data["payload"], data["evidence"], data["rules"]
        person, agency = actor["person"], actor["agency"]
        if evidence:
            evidence = tuple(Evidence(e["kind"], e["sha256"], e.get("note", "")) for e in evidence)
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0]), "missing field in event data") from None
    if not (
        type(event_id) is str
        and type(ticket_id) is str
        and type(seq) is int
        and type(kind) is str
        and type(agency) is str
        and type(person) is str
    ):
        raise TypeError("event_id, ticket_id, kind and actor must be text, seq an integer")
    if rules:
        rules = tuple(rules)
        rules = _RULES.get(rules) or _shared_rules(rules)
    else:
        rules = ()
    return _filled(
        event_id,
        ticket_id,
        seq,
        kind,
        parse_time(at),
        _ACTORS.get((agency, person)) or shared_actor(agency, person),
        payload if type(payload) is dict else dict(payload),
        evidence or (),
        rules,
    )


def trusted_event(
    event_id: str,
    ticket_id: str,
    seq: int,
    kind: str,
    at: datetime,
    actor: Actor,
    payload: dict[str, Any],
    evidence: tuple[Evidence, ...],
    rules: tuple[str, ...],
) -> Event:
    """An :class:`Event` from values the engine built and checked (``decide``): a fast constructor.

    Only for already-validated internal callers: no converter runs, so the caller
    vouches for every value's type (``tests/test_hot_paths.py`` checks that it
    agrees with :class:`Event` built the plain way).

    The converters' work is done here at lower cost: the time must be aware and
    the payload's text is normalised to NFC only when it is not NFC already.
    """
    return _filled(
        event_id,
        ticket_id,
        seq,
        kind,
        _freeze_time(at),
        actor,
        _nfc_payload(payload),
        evidence,
        rules,
    )


def _filled(
    event_id: str,
    ticket_id: str,
    seq: int,
    kind: str,
    at: datetime,
    actor: Actor,
    payload: dict[str, Any],
    evidence: tuple[Evidence, ...],
    rules: tuple[str, ...],
) -> Event:
    """An :class:`Event` with its slots set directly: the caller has done the converters' work."""
    e = Event.__new__(Event)
    _SET_EVENT_ID(e, event_id)
    _SET_TICKET_ID(e, ticket_id)
    _SET_SEQ(e, seq)
    _SET_KIND(e, kind)
    _SET_AT(e, at)
    _SET_ACTOR(e, actor)
    _SET_PAYLOAD(e, payload)
    _SET_EVIDENCE(e, evidence)
    _SET_RULES(e, rules)
    return e


# A JSON escape of a control character: an odd run of backslashes before b, f, n, r, t or
# u00XX.  Tab, newline and carriage return are free text's but never a name's, so any of
# them sends the event to the full check, which knows which field holds it.
_ESCAPE_RUN = re.compile(r"(\\+)(?:[bfnrt]|u00[01][0-9a-f])")


def _refused_control(text: str) -> bool:
    """Does JSON text (``ensure_ascii=False``) encode a control character, or hold a
    character the text policy refuses everywhere (DEL, C1, bidirectional, invisible)?"""
    if "\\" in text and any(len(m.group(1)) % 2 for m in _ESCAPE_RUN.finditer(text)):
        return True
    return refused_character(text, free_text=True) is not None


# The encoder of canonical_bytes, built once (json.dumps builds one per call).
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def _plain(value: object, depth: int) -> bool:
    """JSON made of str keys, str/int/bool/None leaves, lists and dicts, not too deep."""
    if depth > MAX_DEPTH:
        return False
    t = type(value)
    if t is dict:
        if depth >= MAX_DEPTH and value:  # its values would be too deep, leaves included
            return False
        for k, v in value.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                return False
            tv = type(v)
            if tv is not str and tv is not int and v is not None and not _plain(v, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        return all(_plain(v, depth + 1) for v in value)  # type: ignore[attr-defined]
    return t is str or t is int or t is bool or value is None


def _json_data(e: Event) -> dict[str, Any]:
    """The event as JSON data, its payload as it is (what the fast encoding writes)."""
    return {
        "event_id": e.event_id,
        "ticket_id": e.ticket_id,
        "seq": e.seq,
        "kind": e.kind,
        "at": e.at.isoformat(),
        "actor": {"agency": e.actor.agency, "person": e.actor.person},
        "payload": e.payload,
        "evidence": [{"kind": x.kind, "sha256": x.sha256, "note": x.note} for x in e.evidence]
        if e.evidence
        else [],
        "rules": list(e.rules),
    }


def canonical_bytes_if_plain(e: Event) -> bytes | None:
    """The canonical bytes of an event whose text needs no change, else ``None``.

    This is :func:`canonical_bytes` without its per-value Python
    walk: the whole encoded text is checked at once (NFC, refused control
    characters, lone surrogates) and a walk over the containers checks key types,
    floats and depth.  The encoding is done by ``orjson`` (sorted keys), which
    writes exactly the bytes of the standard library's encoder for such data;
    the tests check that byte for byte.  Anything unusual returns ``None`` and takes the full path,
    which raises errors naming the field.  :func:`fireflow.store.chain.verify`
    re-encodes every stored event and compares.
    """
    payload = e.payload
    if type(payload) is not dict or not _plain(payload, 0):
        return None
    try:
        out = orjson.dumps(_json_data(e), option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an integer past 64 bits
        return None
    if out.isascii():  # NFC already; a refused control character shows as an escape or DEL
        if (b"\\" in out or b"\x7f" in out) and _refused_control(out.decode("ascii")):
            return None
        return out
    text = out.decode("utf-8")
    if _refused_control(text) or not unicodedata.is_normalized("NFC", text):
        return None
    return out


def canonical_bytes(event: Event) -> bytes:
    """The one byte encoding of an event: sorted keys, NFC text, no floats."""
    fast = canonical_bytes_if_plain(event)
    if fast is not None:
        return fast
    check_event_text(event)
    data = event_to_data(event)
    return _ENCODER.encode(data).encode("utf-8")
