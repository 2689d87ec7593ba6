"""Copying a store's history into another store (导出导入): SQLite ⇄ PostgreSQL.

:func:`copy_store` reads every event of a verified source in the global order and
appends it to an **empty** destination, one ticket's consecutive events per batch,
with the version each batch was written on.  Appends store the canonical bytes
and link both chains from the bytes alone, so the destination holds the very
same rows: the same positions, bytes and chain hashes, and therefore the same
:func:`~fireflow.store.chain.checkpoint` and the same consumer checkpoints
(:class:`~fireflow.store.subscription.Position`).  The destination is verified
at the end and must match the source's figures.

>>> from fireflow.store import MemoryStore, checkpoint
>>> from fireflow.testing.store_contract import contract_history, AT
>>> src, dst = MemoryStore(), MemoryStore()
>>> _ = src.append("T1", contract_history("T1", 3), 0)
>>> copy_store(src, dst).count
3
>>> checkpoint(src, AT) == checkpoint(dst, AT)
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from fireflow.errors import InvalidArgument
from fireflow.events import Event
from fireflow.store.base import MAX_BATCH, Batch, EventStore
from fireflow.store.chain import VerifyReport, verify
from fireflow.store.errors import StoreError, VerificationFailed
from fireflow.store.sqlite import SQLiteStore

__all__ = ["COPY_CHUNK", "copy_store", "is_postgres_url", "open_store", "opened"]

#: Events appended per ``append_many`` call (one transaction each).
COPY_CHUNK = 1000


def copy_store(
    source: EventStore, destination: EventStore, *, verified: VerifyReport | None = None
) -> VerifyReport:
    """Copy every event of ``source`` into the empty ``destination``; return its verification.

    ``source`` must verify (:class:`~fireflow.store.errors.VerificationFailed`
    otherwise, nothing copied); ``destination`` must hold no event
    (:class:`~fireflow.errors.InvalidArgument` on ``destination``).  A copy cut
    short (a crash, a lost server) leaves a prefix of the history in the
    destination, whole batches only: empty it and copy again.  The result is
    :func:`~fireflow.store.chain.verify` of the destination, checked against the
    source's figures (:class:`~fireflow.store.errors.StoreError` if they differ).
    ``verified`` is the source's :func:`~fireflow.store.chain.verify` report when the
    caller has just made it (it is not made twice).
    """
    for field, store in (("source", source), ("destination", destination)):
        if not isinstance(store, EventStore):
            raise InvalidArgument(field, f"expected an event store, got {type(store).__name__}")
    if source is destination:
        raise InvalidArgument("destination", "the source itself")
    if destination.count() != 0:
        raise InvalidArgument(
            "destination",
            f"holds {destination.count()} events; copy only into an empty store (目标库非空)",
        )
    before = verify(source) if verified is None else verified
    if not before.ok:
        raise VerificationFailed(before)
    chunk: list[Batch] = []
    size = 0
    run: list[Event] = []
    for se in source.read_all():
        e = se.event
        if run and (run[-1].ticket_id != e.ticket_id or len(run) >= MAX_BATCH):
            chunk.append((run[0].ticket_id, run, run[0].seq - 1))
            run = []
        if size >= COPY_CHUNK and not run:
            destination.append_many(chunk)
            chunk, size = [], 0
        run.append(e)
        size += 1
    if run:
        chunk.append((run[0].ticket_id, run, run[0].seq - 1))
    if chunk:
        destination.append_many(chunk)
    after = verify(destination)
    if not after.ok:
        raise VerificationFailed(after)
    if (after.count, after.global_head, after.tickets_digest) != (
        before.count,
        before.global_head,
        before.tickets_digest,
    ):
        raise StoreError(
            f"the copy differs from its source: {after.count} events (source {before.count}), "
            "another chain head (复制结果与源库不符)"
        )
    return after


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database rather than an SQLite file.

    >>> is_postgres_url("postgresql://fireflow@db/changle"), is_postgres_url("changle.db")
    (True, False)
    """
    return url.startswith(("postgresql://", "postgres://")) or "dbname=" in url


def open_store(
    url: str, *, readonly: bool, create: bool = False, schema: str = "fireflow"
) -> EventStore:
    """The store ``url`` names (an SQLite file or a PostgreSQL connection string), open.

    ``readonly`` opens it for reading only; ``create`` lets a writer create it.  The
    caller closes it; :func:`opened` closes it for you.
    """
    if not isinstance(url, str) or not url:
        raise InvalidArgument("url", "expected an SQLite file or a postgresql:// URL")
    if is_postgres_url(url):
        from fireflow.store.postgres import PostgresStore  # noqa: PLC0415 (optional driver)

        return PostgresStore(url, schema=schema, create=create, readonly=readonly)
    return SQLiteStore(Path(url), create=create, readonly=readonly)


@contextlib.contextmanager
def opened(
    url: str, *, readonly: bool, create: bool = False, schema: str = "fireflow"
) -> Iterator[EventStore]:
    """:func:`open_store`, closed after.

    ``readonly`` opens it for reading only; ``create`` lets a writer create it.
    """
    store = open_store(url, readonly=readonly, create=create, schema=schema)
    try:
        yield store
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
