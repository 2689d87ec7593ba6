"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""

import os
import sys


def env_int(name, default):
    """A positive whole number from the environment, or ``default``; exit 2 on a bad value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        print(f"{name} must be a positive whole number, got {raw!r}", file=sys.stderr)
        sys.exit(2)
    return value
