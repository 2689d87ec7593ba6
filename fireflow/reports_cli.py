"""Deprecated path of :mod:`fireflow.cli.reports` and :mod:`fireflow.history`.

Importing it warns; it is removed in 0.3.
"""

import warnings

from fireflow.cli.reports import (
    dossier_command,
    forms_app,
    register,
    report_app,
    spotcheck_app,
)
from fireflow.history import (
    MAX_LOG_LINE,
    SIMULATED_ORIGIN,
    History,
    corrupt_history,
    is_store,
    read_events,
    read_history,
    store_heads,
    store_origin,
)

__all__ = [
    "MAX_LOG_LINE",
    "SIMULATED_ORIGIN",
    "History",
    "corrupt_history",
    "dossier_command",
    "forms_app",
    "is_store",
    "read_events",
    "read_history",
    "register",
    "report_app",
    "spotcheck_app",
    "store_heads",
    "store_origin",
]

warnings.warn(
    "fireflow.reports_cli moved to fireflow.cli.reports and fireflow.history; "
    "the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
