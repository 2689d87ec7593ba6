"""Module paths that moved, and the warning their old paths give for one minor version.

Each old path is a short shim that re-exports the public names of its new module and
calls :func:`warn_moved` on import.  Nothing in fireflow imports a shim; the test suite
imports each once (tests/test_moved.py) and skips them otherwise (conftest.py).
"""

from __future__ import annotations

import warnings

__all__ = ["MOVED", "warn_moved"]

#: Old module path -> new module path (issue 24: layers as folders).
MOVED: dict[str, str] = {
    "fireflow.plan_html": "fireflow.plan.html",
    "fireflow.plan_new": "fireflow.plan.derive",
    "fireflow.plan_upgrade": "fireflow.plan.upgrade",
    "fireflow.rules.routing": "fireflow.plan.routing",
}


def warn_moved(old: str) -> None:
    """Warn (:class:`DeprecationWarning`) that module ``old`` moved to ``MOVED[old]``.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_moved("fireflow.plan_new")
    >>> print(caught[0].message)
    fireflow.plan_new moved to fireflow.plan.derive: import it from there (the old path goes ...)
    """
    warnings.warn(
        f"{old} moved to {MOVED[old]}: import it from there "
        "(the old path goes in the next minor version)",
        DeprecationWarning,
        stacklevel=3,
    )
