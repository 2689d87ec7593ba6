"""Deprecated path of :mod:`fireflow.cli.sim` (warns on import; removed in 0.3)."""

import warnings

from fireflow.cli.sim import *  # noqa: F403
from fireflow.cli.sim import __all__  # noqa: F401

warnings.warn(
    "fireflow.sim.cli moved to fireflow.cli.sim; the old path is removed in 0.3",
    DeprecationWarning,
    stacklevel=2,
)

if __name__ == "__main__":  # pragma: no cover
    main()  # noqa: F405
