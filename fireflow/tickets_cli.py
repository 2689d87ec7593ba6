"""Deprecated path of :mod:`fireflow.cli.tickets` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.tickets import *  # noqa: F403
from fireflow.cli.tickets import __all__  # noqa: F401

warnings.warn(
    "fireflow.tickets_cli moved to fireflow.cli.tickets; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
