"""The ``sim`` extra: the simulator's tables and plots need pandas and matplotlib.

>>> require_sim_extra()  # both installed here (the test extra includes sim)
"""

from __future__ import annotations

import importlib.util

__all__ = ["require_sim_extra"]


def require_sim_extra() -> None:
    """Raise :class:`ImportError` naming the ``sim`` extra when pandas or matplotlib is missing."""
    missing = [m for m in ("pandas", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"the simulator's tables and plots need {' and '.join(missing)}: "
            "pip install 'fireflow[sim]'"
        )
