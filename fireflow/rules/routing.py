"""Deprecated: moved to :mod:`fireflow.plan.routing`; this path goes in the next minor version."""

from fireflow._moved import warn_moved
from fireflow.plan.routing import (
    Location,
    Routing,
    route_for,
)

__all__ = [
    "Location",
    "Routing",
    "route_for",
]

warn_moved(__name__)
