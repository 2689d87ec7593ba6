"""Deprecated: moved to :mod:`fireflow.plan.upgrade`; this path goes in the next minor version."""

from fireflow._moved import warn_moved
from fireflow.plan.upgrade import (
    FORMER_DEFAULTS,
    Change,
    Upgrade,
    required_hint,
    upgrade_file,
    upgrade_text,
)

__all__ = [
    "FORMER_DEFAULTS",
    "Change",
    "Upgrade",
    "required_hint",
    "upgrade_file",
    "upgrade_text",
]

warn_moved(__name__)
