"""Output helpers shared by the command-line modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

__all__ = ["console", "print_json"]


def console() -> Console:
    """A rich console; wide and unwrapped when not on a terminal (pipes, tests)."""
    return Console(soft_wrap=False, width=200 if not sys.stdout.isatty() else None)


def print_json(data: Any) -> None:
    """Stable JSON for other programs: sorted keys, Chinese kept as text."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
