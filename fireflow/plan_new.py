"""Deprecated: moved to :mod:`fireflow.plan.derive`; this path goes in the next minor version."""

from fireflow._moved import warn_moved
from fireflow.plan.derive import (
    ReviewItem,
    derive_plan,
    district_words,
    foreign_text,
    move_date,
)

__all__ = [
    "ReviewItem",
    "derive_plan",
    "district_words",
    "foreign_text",
    "move_date",
]

warn_moved(__name__)
