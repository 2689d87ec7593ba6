"""The service's clock: the one place the service reads the real time (it is an edge).

The library never reads the clock; the service needs "now" where a request
leaves an instant out, to stamp the audit log and webhook signatures.  Every
part of the service takes a ``clock`` argument (a function returning an aware
``datetime``) whose default is :func:`utc_now`; tests pass a fixed clock.

>>> utc_now().tzinfo is not None
True
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

#: A clock: returns the current instant, time-zone aware.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time, aware (UTC).

    The only read of the wall clock in the package, allowed here because the service
    is an edge (DESIGN.md: "time comes in as an argument (or an injected clock)");
    tests/test_layers.py lists this file as the one clock edge.
    """
    return datetime.now(UTC)
