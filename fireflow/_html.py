"""Small HTML tables for notebooks (``_repr_html_``): every piece of text escaped here.

Jupyter shows an object's ``_repr_html_()``.  This module knows tables and pages,
no domain type: the plan (:mod:`fireflow.plan.html`), ticket states
(:mod:`fireflow.model_html`), scenarios and calibrations (in :mod:`fireflow.sim`)
build their tables next to their types from the blocks here (headings,
paragraphs, tables of plain text), rendered by the template ``repr.html.j2``
with autoescaping, like every HTML page fireflow writes
(:mod:`fireflow.templates`): a name or note in a plan file never becomes markup.

>>> out = table(["字段 field", "值 value"], [["name", "<b>x</b> & y"]], caption="a & b")
>>> "<td>&lt;b&gt;x&lt;/b&gt; &amp; y</td>" in out, "<caption>a &amp; b</caption>" in out
(True, True)
>>> "<b>" in out
False
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal

import attrs

__all__ = [
    "Block",
    "cell",
    "escape",
    "heading",
    "page",
    "paragraph",
    "table",
    "table_block",
]


def cell(value: Any) -> str:
    """The plain text shown for ``value`` in a table cell (the template escapes it).

    >>> cell(None), cell(2.50), cell(("a", "b")), cell(date(2022, 7, 15))
    ('', '2.5', 'a、b', '2022-07-15')
    """
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "、".join(str(v) for v in value)
    return str(value)


def escape(value: Any) -> str:
    """The text of ``value`` for HTML (``&``, ``<``, ``>``, both quotes escaped).

    >>> escape('"<script>"'), escape(None), escape(2.50)
    ('&quot;&lt;script&gt;&quot;', '', '2.5')
    """
    return html.escape(cell(value), quote=True)


@attrs.frozen
class Block:
    """One piece of a notebook table page: a heading, a paragraph or a table."""

    kind: Literal["heading", "text", "table"]
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    caption: str = ""


def table_block(
    header: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: str = ""
) -> Block:
    """A table of plain cells (see :func:`cell`)."""
    return Block(
        "table",
        header=tuple(cell(h) for h in header),
        rows=tuple(tuple(cell(c) for c in row) for row in rows),
        caption=cell(caption),
    )


def page(*blocks: Block) -> str:
    """The blocks rendered by ``repr.html.j2`` (autoescaped: no text becomes markup)."""
    from fireflow.templates import render  # noqa: PLC0415

    return render("repr.html.j2", blocks=blocks)


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: str = "") -> str:
    """A table of escaped cells (the header and the caption escaped too)."""
    return page(table_block(header, rows, caption=caption))


def heading(text: str) -> Block:
    """A heading block."""
    return Block("heading", text=cell(text))


def paragraph(text: str) -> Block:
    """A paragraph block."""
    return Block("text", text=cell(text))
