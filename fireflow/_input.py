"""Bounded reading of the files users hand to fireflow (JSON, JSON lines, CSV, text).

Every reader checks a file's size *before* reading it whole, refuses text that
is not UTF-8 (naming the line of the first bad byte), and refuses nesting
deeper than :data:`MAX_DEPTH`, so that a hostile file gets a typed
:class:`~fireflow.errors.InputLimitExceeded` (or
:class:`~fireflow.errors.InvalidArgument`) naming the file and the line, never
a ``MemoryError``, a ``RecursionError`` or ``_csv.Error``.

The limits (plan and scenario files have their own, in :mod:`fireflow._yaml`):

=============================  ============  =====================================
constant                       value         what
=============================  ============  =====================================
:data:`MAX_INPUT_BYTES`        8 MiB         a JSON or CSV input file (population,
                                             spot-check inputs, findings, towns)
:data:`MAX_LOG_BYTES`          256 MiB       a JSON-lines event or submission log
:data:`MAX_LINE_BYTES`         1 MiB         one line of a JSON-lines log
:data:`MAX_DEPTH`              32            nesting of lists and mappings
:data:`MAX_CSV_FIELD_CHARS`    131072        one CSV field (the ``csv`` module's)
:data:`MAX_PROBLEMS`           100           problems listed in one error
:data:`MAX_CHECKPOINT_FILE_BYTES`   64 KiB        a published checkpoint (``--checkpoint``)
=============================  ============  =====================================

>>> load_json_text('{"a": [1, 2]}', "inputs", "<data>")
{'a': [1, 2]}
>>> load_json_text("[" * 40 + "]" * 40, "inputs", "x.json")  # doctest: +ELLIPSIS
Traceback (most recent call last):
fireflow.errors.InputLimitExceeded: inputs: x.json: nesting deeper than 32 levels ...
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fireflow.errors import InputLimitExceeded, InvalidArgument

__all__ = [
    "MAX_CHECKPOINT_FILE_BYTES",
    "MAX_CSV_FIELD_CHARS",
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_LINE_BYTES",
    "MAX_LOG_BYTES",
    "MAX_PROBLEMS",
    "check_depth",
    "csv_rows",
    "decode_utf8",
    "iter_json_lines",
    "line_of_offset",
    "load_json_text",
    "read_json",
    "read_limited",
    "read_text",
]

#: The largest JSON or CSV input file read, in bytes (8 MiB).
MAX_INPUT_BYTES = 8 * 1024 * 1024
#: The largest JSON-lines log (events, submissions) read, in bytes (256 MiB).
MAX_LOG_BYTES = 256 * 1024 * 1024
#: The longest line of a JSON-lines log, in bytes (1 MiB).
MAX_LINE_BYTES = 1024 * 1024
#: The deepest nesting of lists and mappings accepted in any file (YAML or JSON).
MAX_DEPTH = 32
#: The longest CSV field accepted, in characters (the ``csv`` module's default limit).
MAX_CSV_FIELD_CHARS = 131_072
#: The most problems one error lists; the rest are counted, not listed.
MAX_PROBLEMS = 100
#: The largest checkpoint file read (``--checkpoint``), in bytes (64 KiB; one is ~400 bytes).
MAX_CHECKPOINT_FILE_BYTES = 64 * 1024

_MiB = 1024 * 1024


def _size_text(n: int) -> str:
    return f"{n // _MiB} MiB" if n % _MiB == 0 else f"{n} bytes"


def line_of_offset(data: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def read_limited(path: str | os.PathLike[str], limit: int, field: str) -> bytes:
    """The bytes of a file of at most ``limit`` bytes; checked before reading it whole.

    The size is checked with ``stat`` first and again while reading (a file
    that grows, or a device, is read no further than ``limit + 1`` bytes).
    A missing file or a folder is an :class:`InvalidArgument`.
    """
    p = Path(path)
    size = _regular_file_size(p, field)
    if size > limit:
        raise InputLimitExceeded(field, _too_large(p, size, limit))
    # opened without blocking and checked again once open: a path swapped for a pipe
    # after the check above cannot make the open (or the read) wait for a writer
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument(field, f"{p} is not a regular file (不是普通文件)")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputLimitExceeded(field, _too_large(p, len(data), limit, at_least=True))
    return data


def _regular_file_size(p: Path, field: str) -> int:
    """The size of a regular file; a missing file, a folder or a device or pipe is refused."""
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InvalidArgument(field, f"no such file: {p} (文件不存在)") from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(field, f"{p} is a folder, not a file (这是文件夹)")
    if not stat.S_ISREG(st.st_mode):  # a pipe or a device would be read without end
        raise InvalidArgument(field, f"{p} is not a regular file (不是普通文件)")
    return st.st_size


def _too_large(p: Path, size: int, limit: int, *, at_least: bool = False) -> str:
    more = "at least " if at_least else ""
    return (
        f"{p}: file too large ({more}{size} bytes; at most {_size_text(limit)}) "
        f"(文件过大, 上限 {_size_text(limit)})"
    )


def decode_utf8(data: bytes, source: str, field: str, *, bom: bool = True) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped when ``bom``).

    Bytes that are not UTF-8 (including encoded lone surrogates) are refused
    with the line they are on.
    """
    try:
        text = data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = line_of_offset(data, exc.start)
        raise InvalidArgument(
            field, f"{source}:{line}: not UTF-8 text ({exc.reason}) (不是 UTF-8 文本)"
        ) from None
    return text


def read_text(path: str | os.PathLike[str], field: str, limit: int = MAX_INPUT_BYTES) -> str:
    """A UTF-8 text file of at most ``limit`` bytes (byte-order mark dropped)."""
    return decode_utf8(read_limited(path, limit, field), str(path), field)


def check_depth(value: Any, field: str, source: str, limit: int = MAX_DEPTH) -> None:
    """Refuse data nested deeper than ``limit`` lists and mappings (iteratively, no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise InputLimitExceeded(field, _too_deep(source, limit))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def _too_deep(source: str, limit: int) -> str:
    return f"{source}: nesting deeper than {limit} levels (嵌套层数超过上限 {limit})"


def load_json_text(text: str, field: str, source: str, *, line: int | None = None) -> Any:
    """Parse JSON text with nesting bounded by :data:`MAX_DEPTH`; typed errors only."""
    where = source if line is None else f"{source}:{line}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        at = exc.lineno if line is None else line
        raise InvalidArgument(field, f"{source}:{at}: not JSON ({exc.msg}) (不是 JSON)") from None
    except RecursionError:
        raise InputLimitExceeded(field, _too_deep(where, MAX_DEPTH)) from None
    except ValueError as exc:  # e.g. an integer with too many digits
        raise InvalidArgument(field, f"{where}: invalid JSON value ({exc})") from None
    check_depth(data, field, where)
    return data


def read_json(path: str | os.PathLike[str], field: str, limit: int = MAX_INPUT_BYTES) -> Any:
    """A JSON file, bounded in size (``limit``) and nesting (:data:`MAX_DEPTH`)."""
    data = read_limited(path, limit, field)
    return load_json_text(decode_utf8(data, str(path), field, bom=False), field, str(path))


def iter_json_lines(
    path: str | os.PathLike[str], field: str, limit: int = MAX_LOG_BYTES
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSON-lines file.

    The file is read line by line: at most ``limit`` bytes in all and
    :data:`MAX_LINE_BYTES` per line; each line's nesting is bounded by
    :data:`MAX_DEPTH`.
    """
    p = Path(path)
    source = str(p)
    size = _regular_file_size(p, field)
    if size > limit:
        raise InputLimitExceeded(field, _too_large(p, size, limit))
    total = 0
    with p.open("rb") as fh:
        for n, raw in enumerate(iter(lambda: fh.readline(MAX_LINE_BYTES + 1), b""), start=1):
            total += len(raw)
            if total > limit:
                raise InputLimitExceeded(field, _too_large(p, total, limit, at_least=True))
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise InputLimitExceeded(
                    field,
                    f"{source}:{n}: line longer than {_size_text(MAX_LINE_BYTES)} "
                    f"(单行超过 {_size_text(MAX_LINE_BYTES)})",
                )
            try:
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidArgument(
                    field, f"{source}:{n}: not UTF-8 text ({exc.reason}) (不是 UTF-8 文本)"
                ) from None
            if line.strip():
                yield n, load_json_text(line, field, source, line=n)


def csv_rows(text: str, field: str, source: str) -> list[list[str]]:
    """The rows of CSV text; a malformed or oversize field is a typed error with its line."""
    reader = csv.reader(io.StringIO(text))
    rows: list[list[str]] = []
    try:
        for row in reader:
            if any(len(cell) > MAX_CSV_FIELD_CHARS for cell in row):  # a raised global limit
                raise csv.Error("field larger than field limit")
            rows.append(row)
    except csv.Error as exc:
        raise InputLimitExceeded(
            field,
            f"{source}:{reader.line_num}: malformed CSV ({exc}; a field holds at most "
            f"{MAX_CSV_FIELD_CHARS} characters) (CSV 格式错误或字段过长)",
        ) from None
    return rows
