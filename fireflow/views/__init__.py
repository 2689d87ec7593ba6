"""Views: projections of the log, above the engine (DESIGN.md "Layers").

* :class:`TicketIndex` (:mod:`fireflow.views.tickets`): live ticket views kept up to
  date from a store's global log, one row per ticket (:class:`TicketRow`), queried in SQL.

Verified history for documents (stores, checkpoints, JSON-lines logs) is
:mod:`fireflow.history`, in the same layer.  docs/store.md has the reasoning.
"""

from fireflow.views.tickets import (
    INDEX_FORMAT,
    MAX_LIMIT,
    OPEN_STATES,
    OVERDUE_SOURCES,
    IndexOutOfStep,
    IndexRefused,
    TicketIndex,
    TicketRow,
)

__all__ = [
    "INDEX_FORMAT",
    "MAX_LIMIT",
    "OPEN_STATES",
    "OVERDUE_SOURCES",
    "IndexOutOfStep",
    "IndexRefused",
    "TicketIndex",
    "TicketRow",
]
