"""Deprecated path of :mod:`fireflow.views.tickets` (warns on import; removed in 0.3)."""

import warnings

from fireflow.views.tickets import *  # noqa: F403
from fireflow.views.tickets import __all__  # noqa: F401

warnings.warn(
    "fireflow.store.index moved to fireflow.views.tickets; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)
