"""Output helpers shared by the command-line modules, and the one place errors become exit codes.

:func:`run_app` runs every ``fireflow`` command.  Whatever the input, the
command ends with one of these exit statuses and never with a traceback:

======  ==================================================================
``0``   success
``1``   a refusal, a failed check, or bad input: a :class:`FireflowError`,
        a file that cannot be read or written (``OSError``), text that is
        not valid UTF-8 or holds lone surrogates (``UnicodeError``), input
        nested too deeply (``RecursionError``), a malformed CSV
        (``csv.Error``), malformed YAML (``yaml.YAMLError``), input too
        large for memory (``MemoryError``)
``2``   a usage error: an unknown command or option, a missing or
        malformed argument, a number outside its documented limit
``70``  an internal error (``EX_SOFTWARE``): an exception fireflow did not
        expect.  It is a bug: the line names the exception type and asks for
        a report (see ``docs/security.md``)
``130`` interrupted (Ctrl-C)
======  ==================================================================

Errors are one line on standard error, Chinese and English,
``错误 error: ...`` (a plan with several problems lists them on the
following lines, indented).  Every line that can carry user or stored text
goes through :func:`fireflow.text.escape_for_terminal`.
"""

from __future__ import annotations

import csv
import json
import sys
from importlib import metadata
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape as markup_escape
from typer import core as typer_core

try:  # typer 0.2x vendors click; earlier versions use click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - older typer
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from fireflow._secrets import redact
from fireflow.errors import FireflowError
from fireflow.text import escape_for_terminal

__all__ = [
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "EXIT_USAGE",
    "MAX_ERROR_LINES",
    "MAX_ERROR_LINE_LENGTH",
    "console",
    "error_line",
    "fail",
    "print_json",
    "rich_text",
    "run_app",
    "term",
    "version_text",
]

#: A refusal, a failed check or bad input.
EXIT_INPUT = 1
#: A usage error (unknown option, malformed or out-of-range argument).
EXIT_USAGE = 2
#: An exception fireflow did not expect: a bug (``EX_SOFTWARE`` of sysexits.h).
EXIT_INTERNAL = 70
#: At most this many lines of one error are printed (the rest are counted).
MAX_ERROR_LINES = 40
#: At most this many characters of one line of an error are printed.
MAX_ERROR_LINE_LENGTH = 1000

_REPORT_HINT = (
    "这是 fireflow 的缺陷，请报告 this is a bug in fireflow: please report it with the command "
    "you ran (see docs/security.md)"
)


def console() -> Console:
    """A rich console; wide and unwrapped when not on a terminal (pipes, tests)."""
    return Console(soft_wrap=False, width=200 if not sys.stdout.isatty() else None)


def term(text: object) -> str:
    """``text`` for a terminal: each line escaped (:func:`escape_for_terminal`), newlines kept.

    >>> print(term("金峰\\u202e小区\\n第二行"))
    金峰\\u202e小区
    第二行
    """
    return "\n".join(escape_for_terminal(line) for line in str(text).split("\n"))


def rich_text(text: object) -> str:
    """``text`` for a rich console or table: escaped like :func:`term`, and no markup.

    >>> print(rich_text("[bold]x[/bold]"))
    \\[bold]x\\[/bold]
    """
    return markup_escape(term(text))


def print_json(data: Any) -> None:
    """Stable JSON for other programs: sorted keys, Chinese kept as text."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


def version_text() -> str:
    """``fireflow X.Y.Z`` from the installed package's metadata.

    >>> version_text().startswith("fireflow ")
    True
    """
    try:
        return f"fireflow {metadata.version('fireflow')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "fireflow (version unknown: not installed)"


def _clip(line: str) -> str:
    if len(line) <= MAX_ERROR_LINE_LENGTH:
        return line
    return line[:MAX_ERROR_LINE_LENGTH] + " …"


def error_line(message: str, prefix: str = "错误 error") -> str:
    """The lines of an error message for a terminal: escaped, bounded, first one prefixed,
    any password of a connection string removed (:func:`fireflow._secrets.redact`).

    >>> print(error_line("CL-1\\x1b[2J: no such ticket"))
    错误 error: CL-1\\u001b[2J: no such ticket
    """
    message = redact(message)  # a connection string's password is never shown
    head = message[: MAX_ERROR_LINES * MAX_ERROR_LINE_LENGTH]
    lines = head.splitlines()[:MAX_ERROR_LINES] or [""]
    shown = [_clip(escape_for_terminal(line[: MAX_ERROR_LINE_LENGTH + 1])) for line in lines]
    more = message.count("\n", len("\n".join(lines))) if len(lines) == MAX_ERROR_LINES else 0
    if more:
        shown.append(f"  … 另有 {more} 行 and {more} more line(s)")
    shown[0] = f"{prefix}: {shown[0]}"
    return "\n".join(shown)


def fail(message: str, code: int = EXIT_INPUT) -> typer.Exit:
    """Print ``message`` as an error line and return the ``typer.Exit`` to raise."""
    typer.echo(error_line(message), err=True)
    return typer.Exit(code)


def _describe(exc: BaseException) -> tuple[str, int]:
    """The message and exit status for an exception that escaped a command."""
    if isinstance(exc, FireflowError):
        return str(exc), EXIT_INPUT
    if isinstance(exc, RecursionError):
        return "input nested too deeply (输入嵌套过深)", EXIT_INPUT
    if isinstance(exc, MemoryError):
        return "input too large for memory (输入过大)", EXIT_INPUT
    if isinstance(exc, UnicodeError):
        return f"text is not valid UTF-8 or holds lone surrogates (文本编码错误): {exc}", EXIT_INPUT
    if isinstance(exc, yaml.YAMLError):  # a reader that let the parser's error through
        return f"malformed YAML (YAML 格式错误): {exc}", EXIT_INPUT
    if isinstance(exc, csv.Error):
        return f"malformed CSV (CSV 格式错误): {exc}", EXIT_INPUT
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename}: is a folder, expected a file (应为文件而非文件夹)", EXIT_INPUT
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file or folder (文件不存在)", EXIT_INPUT
    if isinstance(exc, PermissionError):
        return f"{exc.filename}: permission denied (无权限)", EXIT_INPUT
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc} (文件读写错误)", EXIT_INPUT
    return f"{type(exc).__name__}: {exc}; {_REPORT_HINT}", EXIT_INTERNAL


def _clean_flag_labels(command: Any, seen: set[int]) -> None:
    """Drop typer's ``<bool>`` type label from flags (``--json``, ``--help``) in ``--help``.

    A flag takes no value, so a type column for it only misleads.  Acts on the
    command objects built for this run only.
    """
    if id(command) in seen:  # pragma: no cover - typer builds a tree
        return
    seen.add(id(command))
    ctx = command.context_class(command)
    params = [*command.params, command.get_help_option(ctx)]
    for param in params:
        if isinstance(param, typer_core.TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _clean_flag_labels(sub, seen)


def run_app(app: typer.Typer, argv: list[str] | None, prog_name: str) -> int:
    """Run a typer app and return its exit status (see the module's table); never raises."""
    try:
        command = typer.main.get_command(app)
        _clean_flag_labels(command, set())
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except SystemExit as exc:  # a command that exits on its own
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_INPUT)
    except NoArgsIsHelpError as exc:  # the help was printed
        return exc.exit_code
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog_name
        typer.echo(
            error_line(f"{exc.format_message()} (see '{where} --help')", "用法错误 usage error"),
            err=True,
        )
        return EXIT_USAGE
    except ClickException as exc:
        typer.echo(error_line(exc.format_message()), err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo(error_line("aborted (已中止)"), err=True)
        return EXIT_INPUT
    except KeyboardInterrupt:
        typer.echo(error_line("interrupted (已中断)"), err=True)
        return 130
    except Exception as exc:  # the last resort: one line, never a traceback
        message, code = _describe(exc)
        try:
            typer.echo(error_line(message), err=True)
        except Exception:  # the message itself was too large to print
            typer.echo(f"错误 error: {type(exc).__name__} (message too large to show)", err=True)
        return code
    return code if isinstance(code, int) else 0
