"""Verified history, opened once (可信历史): stores, checkpoints and JSON-lines logs.

Official documents (forms, dossiers, reports), calibration and the service read
history here:

* :func:`read_history`: the events of an SQLite store, its hash chains verified
  first (against a :class:`~fireflow.store.chain.Checkpoint` when given), or of a
  JSON-lines log, every line checked as an append to a store would check it; the
  :class:`History` says how far they are vouched for (``verified``, ``anchored``,
  ``simulated`` 模拟数据, ``left_out``);
* :func:`verified_history`: the events of an open store (any backend), decoded from
  exactly the rows that verified;
* :func:`read_events`: events without verification.

docs/reports.md ("Documents only from verified history") has the reasoning.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import attrs

from fireflow._input import MAX_LINE_BYTES, iter_json_lines
from fireflow.errors import CorruptHistory, FireflowError, InputLimitExceeded, InvalidArgument
from fireflow.events import Event, event_from_data
from fireflow.store.base import EventStore, StoredRow, prepare_batch
from fireflow.store.chain import Checkpoint, VerifyReport, decode_event, verify
from fireflow.store.errors import CorruptRecord, VerificationFailed
from fireflow.store.sqlite import SQLiteStore
from fireflow.ticket import fold_each

__all__ = [
    "MAX_LOG_LINE",
    "SIMULATED_ORIGIN",
    "History",
    "RecordingStore",
    "VerifiedHistory",
    "corrupt_history",
    "foldable",
    "is_store",
    "read_events",
    "read_history",
    "store_heads",
    "store_origin",
    "verified_history",
    "verified_rows",
]


_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_store(path: Path) -> bool:
    """Is ``path`` an SQLite file (a fireflow event store) rather than JSON lines?"""
    try:
        with path.open("rb") as f:
            return f.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def store_heads(path: Path) -> dict[str, str]:
    """The hash-chain head of every ticket in an SQLite store (opened read-only, not verified)."""
    with SQLiteStore(path, readonly=True) as store:
        return {t: store.head(t) for t in store.tickets()}


#: The longest line of a JSON-lines event log, in bytes, refused before parsing
#: (eight times the largest encoded event a store accepts: room for JSON escapes).
MAX_LOG_LINE = MAX_LINE_BYTES
_EVENT_KEYS = frozenset(
    ("event_id", "ticket_id", "seq", "kind", "at", "actor", "payload", "evidence", "rules")
)
_ACTOR_KEYS = frozenset(("agency", "person"))
_EVIDENCE_KEYS = frozenset(("kind", "sha256", "note"))


def _unknown(data: dict[Any, Any], known: frozenset[str], where: str) -> None:
    extra = sorted(str(k) for k in data if k not in known)
    if extra:
        raise InvalidArgument(
            where, f"unknown key(s) {', '.join(map(repr, extra[:5]))} (不允许未知字段)"
        )


def _log_event(data: object, where: str) -> Event:
    """One line of a JSON-lines log as an event: the exact shape of ``event_to_data``."""
    if not isinstance(data, dict):
        raise InvalidArgument(where, "expected a JSON object (one event per line)")
    _unknown(data, _EVENT_KEYS, where)
    for key in ("event_id", "ticket_id", "kind", "at"):
        if not isinstance(data.get(key), str):
            raise InvalidArgument(f"{where}.{key}", "missing or not text")
    seq = data.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidArgument(f"{where}.seq", "missing or not an integer")
    actor = data.get("actor")
    if not isinstance(actor, dict):
        raise InvalidArgument(f"{where}.actor", "missing or not an object")
    _unknown(actor, _ACTOR_KEYS, f"{where}.actor")
    for key in ("agency", "person"):
        if key in actor and not isinstance(actor[key], str):
            raise InvalidArgument(f"{where}.actor.{key}", "not text")
    if not isinstance(data.get("payload", {}), dict):
        raise InvalidArgument(f"{where}.payload", "not an object")
    evidence = data.get("evidence", [])
    if not isinstance(evidence, list):
        raise InvalidArgument(f"{where}.evidence", "not a list")
    for j, item in enumerate(evidence):
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where}.evidence[{j}]", "not an object")
        _unknown(item, _EVIDENCE_KEYS, f"{where}.evidence[{j}]")
        for key in ("kind", "sha256", "note"):
            if key in item and not isinstance(item[key], str):
                raise InvalidArgument(f"{where}.evidence[{j}].{key}", "not text")
    rules = data.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise InvalidArgument(f"{where}.rules", "not a list of rule ids")
    return event_from_data(data)


def _read_log(path: Path) -> list[Event]:
    """A JSON-lines log, every line checked as an append to a store would check it."""
    return [e for _, e in _read_log_lines(path)]


def _read_log_lines(path: Path) -> list[tuple[int, Event]]:
    """:func:`_read_log` with each event's line number."""
    out: list[tuple[int, Event]] = []
    versions: dict[str, int] = {}
    seen: set[str] = set()
    # size, line length, UTF-8 and nesting are bounded by the shared reader
    for n, data in iter_json_lines(path, "events"):
        try:
            event = _log_event(data, "event")
            ticket = event.ticket_id
            # the checks and limits of an append: ids, kind, time, text, payload size,
            # seq following the ticket's previous event without a gap
            ((checked, _),) = prepare_batch(ticket, [event], versions.get(ticket, 0))
        except FireflowError as exc:
            kind = InputLimitExceeded if isinstance(exc, InputLimitExceeded) else InvalidArgument
            raise kind("events", f"{path}:{n}: {exc}") from None
        except (TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise InvalidArgument("events", f"{path}:{n}: malformed event ({exc})") from None
        if checked.event_id in seen:
            raise InvalidArgument(
                "events", f"{path}:{n}: event id {checked.event_id!r} appears twice"
            )
        seen.add(checked.event_id)
        versions[ticket] = checked.seq
        out.append((n, checked))
    return out


def read_events(path: Path) -> list[Event]:
    """The events of a JSON-lines file or of an SQLite store, in their recorded order.

    A store is opened read-only and *not* verified (documents use
    :func:`read_history`); every line of a JSON-lines file passes the checks of
    an append to a store.  An error names the file and line.
    """
    if is_store(path):
        with SQLiteStore(path, readonly=True) as store:
            return [s.event for s in store.read_all()]
    return _read_log(path)


@attrs.frozen
class History:
    """Events for an official document, and how far they are vouched for.

    ``verification`` is JSON data for the document (see
    :func:`fireflow.forms.mark_form`): ``verified``, ``source`` (``"store"`` or
    ``"event_log"``), ``reason`` when not verified, and for a store the figures
    recomputed from it (``store``: ``count``, ``tickets``, ``global_head``,
    ``tickets_digest``) and the ``checkpoint`` it matched.  ``heads`` are the
    tickets' chain heads of a store (``None`` for a log).  ``left_out`` lists the
    tickets whose history the engine cannot fold (corrupt history), each with
    ``ticket_id``, ``community`` (from its report, when readable), ``event_id``,
    ``seq``, ``where`` and ``reason``; their events are not in ``events``.
    """

    events: list[Event]
    verification: dict[str, Any]
    heads: dict[str, str] | None = None
    report: VerifyReport | None = None

    @property
    def verified(self) -> bool:
        """True when the events come from a store whose chains verified."""
        return self.verification.get("verified") is True


class RecordingStore:
    """A store seen through :func:`fireflow.store.chain.verify`, keeping the rows it read.

    A document is built from exactly the bytes that were verified, not from a
    second read that could differ.  A store without ``integrity_check`` (memory,
    PostgreSQL) answers ``["ok"]``.
    """

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self.seen: list[StoredRow] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def integrity_check(self) -> list[str]:
        check = getattr(self._store, "integrity_check", None)
        return list(check()) if check is not None else ["ok"]

    def rows(self, from_position: int = 0) -> Iterator[StoredRow]:
        for row in self._store.rows(from_position):
            self.seen.append(row)
            yield row


def verified_rows(
    store: EventStore, checkpoint: Checkpoint | None = None
) -> tuple[VerifyReport, list[StoredRow]]:
    """Verify ``store``'s chains (against ``checkpoint`` when given): the report, and
    exactly the rows the verification read, in global order."""
    recorder = RecordingStore(store)
    report = verify(cast("EventStore", recorder), checkpoint)
    return report, recorder.seen


@attrs.frozen
class VerifiedHistory:
    """A store's events decoded from exactly the rows that verified, and the record.

    ``heads`` are the tickets' chain heads; ``positions[i]`` is ``events[i]``'s
    global position.
    """

    events: list[Event]
    heads: dict[str, str]
    report: VerifyReport
    positions: list[int] = attrs.field(factory=list)

    @property
    def verification(self) -> dict[str, Any]:
        """The ``verification`` mapping the forms print (:func:`fireflow.forms.mark_form`)."""
        r = self.report
        return {
            "verified": r.ok,
            "source": "store",
            "store": {
                "count": r.count,
                "tickets": r.tickets,
                "global_head": r.global_head,
                "tickets_digest": r.tickets_digest,
            },
            "checkpoint": None,
        }


def verified_history(store: EventStore) -> VerifiedHistory:
    """The events of an open ``store``, from exactly the rows its chains were verified on.

    A store that does not verify raises
    :class:`~fireflow.store.errors.VerificationFailed`: nothing is decoded.

    >>> from fireflow.store import MemoryStore
    >>> h = verified_history(MemoryStore())
    >>> h.events, h.report.ok, h.verification["verified"]
    ([], True, True)
    """
    report, rows = verified_rows(store)
    if not report.ok:
        raise VerificationFailed(report)
    events: list[Event] = []
    heads: dict[str, str] = {}
    positions: list[int] = []
    for row in rows:
        events.append(decode_event(row.data, row.position))
        positions.append(row.position)
        heads[row.ticket_id] = row.ticket_hash
    return VerifiedHistory(events, heads, report, positions)


_UNCHAINED = "JSON-lines 事件日志没有哈希链 a JSON-lines event log has no hash chain"


#: The ``origin`` a store written by the simulator records (``fireflow.sim.log.ORIGIN``).
SIMULATED_ORIGIN = "fireflow.sim"


def store_origin(path: Path) -> str | None:
    """The ``origin`` an SQLite store records in ``fireflow_meta`` (read-only), if any.

    The simulator's stores record :data:`SIMULATED_ORIGIN`: their documents are
    marked 模拟数据 on every page.  The value is outside the hash chains: it can
    add the mark, and a store without it is simply not known to be simulated.  Read
    ``immutable``, as :func:`read_history`'s store is: no ``-wal`` or ``-shm`` file is made.
    """
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = con.execute("SELECT value FROM fireflow_meta WHERE key = 'origin'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return str(row[0]) if row is not None else None


def foldable(
    events: list[Event], where: dict[str, str]
) -> tuple[list[Event], list[dict[str, Any]]]:
    """The events of the tickets the engine can fold, and the tickets left out and why.

    ``where`` maps an event id to its place (``position 4``, ``events.jsonl:7``).
    One ticket's corrupt history never blocks the documents of the others: its
    events are dropped and the documents say which ticket was left out and why.
    """
    _, broken = fold_each(events)
    if not broken:
        return events, []
    left_out = []
    for tid in sorted(broken):
        event, error = broken[tid]
        report = next((e for e in events if e.ticket_id == tid and e.kind == "report"), None)
        community = report.payload.get("community") if report is not None else None
        left_out.append(
            {
                "ticket_id": tid,
                "community": community if isinstance(community, str) else None,
                "event_id": event.event_id,
                "seq": event.seq,
                "where": where.get(event.event_id, ""),
                "reason": str(error),
            }
        )
    return [e for e in events if e.ticket_id not in broken], left_out


def corrupt_history(entry: dict[str, Any]) -> CorruptHistory:
    """The typed error for one ticket :func:`read_history` left out."""
    return CorruptHistory(entry["ticket_id"], entry["where"], entry["reason"])


def read_history(
    path: Path, *, checkpoint: Checkpoint | None = None, unverified: bool = False
) -> History:
    """The events of a store, verified first, or of a JSON-lines log, checked line by line.

    A store that does not verify (or does not match ``checkpoint``) raises
    :class:`~fireflow.store.errors.VerificationFailed`, unless ``unverified`` is
    true: then the rows that still decode are returned with
    ``verification["verified"]`` false and the reason.  A ``checkpoint`` with a
    JSON-lines log raises :class:`~fireflow.errors.InvalidArgument`.
    """
    if not is_store(path):
        if path.is_file() and path.stat().st_size == 0:
            raise InvalidArgument(
                "events", f"{path}: an empty file, neither a store nor an event log (空文件)"
            )
        if checkpoint is not None:
            raise InvalidArgument(
                "checkpoint", "a JSON-lines log has no hash chain to check against a checkpoint"
            )
        numbered = _read_log_lines(path)
        log_events, left_out = foldable(
            [e for _, e in numbered], {e.event_id: f"{path.name}:{n}" for n, e in numbered}
        )
        return History(
            log_events,
            {
                "verified": False,
                "source": "event_log",
                "reason": _UNCHAINED,
                "left_out": left_out,
            },
        )
    with SQLiteStore(path, readonly=True) as store:
        report, seen = verified_rows(store, checkpoint)
    figures = {
        "count": report.count,
        "tickets": report.tickets,
        "global_head": report.global_head,
        "tickets_digest": report.tickets_digest,
    }
    decoded: list[Event] = []
    heads: dict[str, str] = {}
    where: dict[str, str] = {}
    for row in seen:
        try:
            event = decode_event(row.data, row.position)
        except CorruptRecord:
            continue  # only when the store did not verify: reported below
        decoded.append(event)
        where[event.event_id] = f"position {row.position}"
        heads[row.ticket_id] = row.ticket_hash
    events, left_out = foldable(decoded, where)
    for gone in left_out:
        heads.pop(gone["ticket_id"], None)
    verification: dict[str, Any] = {
        "verified": report.ok,
        "source": "store",
        "store": figures,
        "checkpoint": checkpoint.to_data() if checkpoint is not None else None,
        "anchored": report.ok and checkpoint is not None,
        "simulated": store_origin(path) == SIMULATED_ORIGIN,
        "left_out": left_out,
    }
    if not report.ok:
        if not unverified:
            raise VerificationFailed(report)
        first = str(report.problems[0]) if report.problems else ""
        verification["reason"] = (
            f"事件库未通过校验 the store does not verify: {report.problem_count} problem(s); "
            f"first: {first}"
        )
    return History(events, verification, heads if report.ok else None, report)
