"""Deprecated: moved to :mod:`fireflow.plan.html`; this path goes in the next minor version."""

from fireflow._moved import warn_moved
from fireflow.plan.html import (
    plan_html,
)

__all__ = [
    "plan_html",
]

warn_moved(__name__)
