"""Deprecated path of :mod:`fireflow.cli.console` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.console import *  # noqa: F403
from fireflow.cli.console import __all__  # noqa: F401

warnings.warn(
    "fireflow._console moved to fireflow.cli.console; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
