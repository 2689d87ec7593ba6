"""Output helpers shared by the command-line modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from fireflow.errors import FireflowError

__all__ = ["console", "print_json", "run_app"]


def console() -> Console:
    """A rich console; wide and unwrapped when not on a terminal (pipes, tests)."""
    return Console(soft_wrap=False, width=200 if not sys.stdout.isatty() else None)


def print_json(data: Any) -> None:
    """Stable JSON for other programs: sorted keys, Chinese kept as text."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


def run_app(app: typer.Typer, argv: list[str] | None, prog_name: str) -> int:
    """Run a typer app and return its exit code; a :class:`FireflowError` is printed, code 1."""
    try:
        app(args=argv, prog_name=prog_name, standalone_mode=True)
    except SystemExit as exc:  # click ends every run with SystemExit
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except FireflowError as exc:
        typer.echo(f"错误 error: {exc}", err=True)
        return 1
    return 0
