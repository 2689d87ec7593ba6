"""Deprecated path of :mod:`fireflow.cli.serve` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.serve import *  # noqa: F403
from fireflow.cli.serve import __all__  # noqa: F401

warnings.warn(
    "fireflow.service.cli moved to fireflow.cli.serve; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
