"""Event stores: durable, tamper-evident history of tickets (事件库).

* :class:`EventStore`: the interface (append with an expected version, read one
  ticket, read everything in one global order).
* :class:`SQLiteStore`: the embedded default, one SQLite file (WAL,
  ``synchronous=FULL``, ``BEGIN IMMEDIATE``, retries with backoff).
* :class:`MemoryStore`: the same contract in memory.
* :class:`PostgresStore` (:mod:`fireflow.store.postgres`): the same contract on a
  PostgreSQL server (the ``postgres`` extra, psycopg 3); imported on first use, so
  the other stores need no driver.
* :mod:`fireflow.store.chain`: hash chains, :func:`verify`, :class:`Checkpoint`.
* :func:`subscribe` and :class:`Consumer`
  (:mod:`fireflow.store.subscription`): new events as they are appended, and a
  consumer that resumes from its checkpoint.
* :func:`copy_store` (:mod:`fireflow.store.transfer`): one store's history into
  another, row for row (SQLite ⇄ PostgreSQL).

>>> from datetime import datetime, timezone
>>> from fireflow.events import Actor, Event
>>> store = MemoryStore()
>>> at = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)
>>> e = Event(event_id="T1/1", ticket_id="T1", seq=1, kind="rectify", at=at,
...           actor=Actor("property"))
>>> _ = store.append("T1", [e], expected_version=0)
>>> import attrs
>>> other = attrs.evolve(e, event_id="T1/other")  # a second clerk decided on version 0 too
>>> store.append("T1", [other], expected_version=0)
Traceback (most recent call last):
...
fireflow.store.errors.ConcurrencyConflict: ticket T1: expected version 0, the store has 1 (...)

The ticket index moved to :mod:`fireflow.views` (it folds events through the
engine): ``fireflow.store.TicketIndex`` (and ``TicketRow``, ``IndexOutOfStep``,
``IndexRefused``) still answer, with a :class:`DeprecationWarning`, until 0.3.
"""

import warnings

from fireflow.store.base import (
    MAX_BATCH,
    MAX_EVENT_BYTES,
    AppendResult,
    EventStore,
    StoredEvent,
    StoredRow,
)
from fireflow.store.chain import (
    GENESIS,
    Checkpoint,
    Mismatch,
    VerifyReport,
    checkpoint,
    verify,
)
from fireflow.store.errors import (
    CheckpointMismatch,
    ConcurrencyConflict,
    CorruptRecord,
    DuplicateEventId,
    StoreBusy,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    VerificationFailed,
)
from fireflow.store.memory import MemoryStore
from fireflow.store.sqlite import SQLiteStore
from fireflow.store.subscription import Consumer, FileCheckpoint, subscribe
from fireflow.store.transfer import copy_store

_POSTGRES = ("ForeignSchema", "PostgresStore", "SchemaTooNew")
_MOVED_TO_VIEWS = ("IndexOutOfStep", "IndexRefused", "TicketIndex", "TicketRow")


def __getattr__(name: str) -> object:
    """The deprecation shim of the names that moved to :mod:`fireflow.views` (they warn),
    and ``PostgresStore`` and its errors, imported when first asked for (they need psycopg)."""
    if name in _POSTGRES:
        from fireflow.store import postgres  # noqa: PLC0415 (optional driver)

        return getattr(postgres, name)
    if name in _MOVED_TO_VIEWS:
        warnings.warn(
            f"fireflow.store.{name} moved to fireflow.views.{name}; the old path is removed "
            "in the next minor version",
            DeprecationWarning,
            stacklevel=2,
        )
        from fireflow import views  # noqa: PLC0415 (deprecation shim: views sit above the store)

        return getattr(views, name)
    raise AttributeError(f"module 'fireflow.store' has no attribute {name!r}")


__all__ = [
    "GENESIS",
    "MAX_BATCH",
    "MAX_EVENT_BYTES",
    "AppendResult",
    "Checkpoint",
    "CheckpointMismatch",
    "ConcurrencyConflict",
    "Consumer",
    "CorruptRecord",
    "DuplicateEventId",
    "EventStore",
    "FileCheckpoint",
    "ForeignSchema",
    "MemoryStore",
    "Mismatch",
    "PostgresStore",
    "SQLiteStore",
    "SchemaTooNew",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "StoredEvent",
    "StoredRow",
    "VerificationFailed",
    "VerifyReport",
    "checkpoint",
    "copy_store",
    "subscribe",
    "verify",
]
