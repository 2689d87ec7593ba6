"""Deprecated path of :mod:`fireflow.cli.store` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.store import *  # noqa: F403
from fireflow.cli.store import __all__  # noqa: F401

warnings.warn(
    "fireflow.store.cli moved to fireflow.cli.store; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
