"""Deprecated path of :mod:`fireflow.cli.conformance` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.conformance import *  # noqa: F403
from fireflow.cli.conformance import __all__  # noqa: F401

warnings.warn(
    "fireflow.testing.cli moved to fireflow.cli.conformance; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
