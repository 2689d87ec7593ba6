"""The errors the event stores raise, all below :class:`~fireflow.errors.FireflowError`.

Bad input to a store (a payload too large, a naive datetime, an event for
another ticket, a gap in ``seq``) raises the general input errors of
:mod:`fireflow.errors` (:class:`~fireflow.errors.InvalidArgument`,
:class:`~fireflow.errors.InputLimitExceeded`,
:class:`~fireflow.errors.NaiveDatetime`) with ``field`` naming the offending
field, for example ``events[2].payload``.  The errors here are about the
store itself: someone else wrote first, the file is busy, a stored row is
damaged.

>>> err = ConcurrencyConflict("CL-0001", expected=3, actual=4)
>>> err.field, err.expected, err.actual
('expected_version', 3, 4)
>>> print(err)
ticket CL-0001: expected version 3, the store has 4 (版本冲突: 他人已先写入, read again and retry)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fireflow._secrets import REDACTED, redact, secrets_of
from fireflow.errors import FireflowError

if TYPE_CHECKING:  # for the annotation only: no import at run time
    from fireflow.store.chain import VerifyReport

__all__ = [
    "REDACTED",
    "CheckpointMismatch",
    "ConcurrencyConflict",
    "CorruptRecord",
    "DuplicateEventId",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "VerificationFailed",
    "redact",
    "secrets_of",
]


class StoreError(FireflowError):
    """Something is wrong with an event store (its file, its rows, a concurrent writer).

    The message never shows a password: a connection string or a path that holds
    one (``postgresql://user:password@…``) is shown with it removed (:func:`redact`).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConcurrencyConflict(StoreError):
    """The ticket's stored version is not the version the caller expected.

    Another writer appended to the ticket since the caller read it.  Nothing
    was written: read the ticket again, decide again, and retry.  ``field``
    is ``"expected_version"``; ``expected`` and ``actual`` are the versions.
    """

    def __init__(self, ticket_id: str, *, expected: int, actual: int) -> None:
        self.ticket_id = ticket_id
        self.expected = expected
        self.actual = actual
        self.field = "expected_version"
        super().__init__(
            f"ticket {ticket_id}: expected version {expected}, the store has {actual} "
            "(版本冲突: 他人已先写入, read again and retry)"
        )


class DuplicateEventId(StoreError, ValueError):
    """An event id is already stored with *different* content.

    Re-sending the very same event is fine (the store returns the stored
    result); re-using an id for another event is refused.  ``field`` names the
    event in the batch, ``position`` is where the stored one is.
    """

    def __init__(self, event_id: str, *, field: str, position: int) -> None:
        self.event_id = event_id
        self.field = field
        self.position = position
        super().__init__(
            f"{field}: event id {event_id!r} is already stored at position {position} "
            "with different content (事件编号重复)"
        )


class StoreBusy(StoreError):
    """The store's file stayed locked by other writers through every retry.

    Nothing was written.  ``path`` is the file, ``attempts`` how many times the
    write lock was asked for.
    """

    def __init__(self, path: str, *, attempts: int) -> None:
        self.path = path
        self.attempts = attempts
        super().__init__(
            f"{path}: the database stayed locked through {attempts} attempts "
            "(数据库忙, try again later)"
        )


class StoreNotFound(StoreError, FileNotFoundError):
    """There is no store at that path (and the caller asked not to create one)."""

    def __init__(self, path: str) -> None:
        self.path = redact(path)
        self.field = "path"
        super().__init__(f"{path}: no event store at this path (事件库不存在)")


class CorruptRecord(StoreError):
    """A stored row cannot be read back as the event it claims to be.

    ``position`` is the row's place in the global order, ``field`` what is wrong
    with it (``data``, ``data.seq``, ...).  :func:`fireflow.store.chain.verify`
    reports such rows instead of raising.
    """

    def __init__(self, position: int, field: str, message: str) -> None:
        self.position = position
        self.field = field
        super().__init__(f"stored row at position {position}: {field}: {message} (记录损坏)")


class VerificationFailed(StoreError):
    """The store does not verify; ``report`` (a
    :class:`~fireflow.store.chain.VerifyReport`) lists every mismatch found."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        first = report.problems[0] if report.problems else None
        super().__init__(
            f"the store does not verify ({report.problem_count} problem(s))"
            + (f"; first: {first}" if first else "")
        )


class StoreUnavailable(StoreError):
    """The database server cannot be reached, refused the login, or went away.

    Nothing is known to be written by the failed call: an append that raised this
    may or may not have committed; re-send it (appends are idempotent).
    ``target`` names the server and database (never the password).
    """

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.field = "conninfo"
        super().__init__(
            f"{target}: the database server is unavailable: {reason} (数据库服务器不可用)"
        )


class CheckpointMismatch(StoreError):
    """The event a consumer (or a subscription) saw last is not in the store any more.

    The store was restored from an older backup, truncated, rewritten or replaced
    by another store: delivering from the saved position on would skip or repeat
    events of another history, so the consumer stops instead.  ``name`` is the
    consumer's (``None`` for a bare subscription), ``position`` the event's place,
    ``expected`` the chain hash the consumer saw there and ``found`` the hash the
    store holds now (``None`` when it holds nothing there).  ``field`` is
    ``"checkpoint"``.

    >>> err = CheckpointMismatch("hotline", 9, "restored", expected="a" * 64, found="b" * 64)
    >>> print(err)  # doctest: +ELLIPSIS
    consumer hotline: the event it saw at position 9 (chain hash aaaaaaaaaaaa…) ...
    """

    def __init__(
        self,
        name: str | None,
        position: int,
        reason: str,
        *,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.name = name
        self.position = position
        self.expected = expected
        self.found = found
        self.field = "checkpoint"
        who = "subscription" if name is None else f"consumer {name}"
        saw = f" (chain hash {expected[:12]}…)" if expected else ""
        now = f"; the store holds {found[:12]}… there" if found else ""
        super().__init__(
            f"{who}: the event it saw at position {position}{saw} does not match the "
            f"store{now}: {reason} (消费者检查点与事件库不符，已停止：事件库被恢复或替换)"
        )
