"""The HTML pages fireflow writes, from Jinja2 templates with autoescaping.

Every page (the simulation report, its notebook summary, the community
dossier) is a template of this folder (``*.html.j2``) extending one base
layout (``base.html.j2``: A4 print styles, a page break before each section,
dates kept on one line, an optional mark on the top and bottom of every
printed page).  Autoescaping is on for every template, so a name from a plan
or a population is shown as text, never run as markup; the only markup that
enters a page from Python is the SVG of :mod:`fireflow.sim.svg`, built with
:mod:`xml.etree.ElementTree` (which escapes every text) and passed as
:class:`markupsafe.Markup`.

>>> print(render("base.html.j2", title="<b>金峰</b>").splitlines()[5])
<title>&lt;b&gt;金峰&lt;/b&gt;</title>
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2

__all__ = ["environment", "number", "render"]


def number(value: Any, digits: int = 1) -> str:
    """A count as an integer with thousands separators, a float with ``digits`` decimals.

    A float that is a whole number is a count too (``300.0`` is shown ``300``);
    NaN is a dash.

    >>> number(1285.0), number(1285), number(41.25), number(float("nan"))
    ('1,285', '1,285', '41.2', '–')
    """
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def percent(value: Any) -> str:
    """A share as a percentage with one decimal; NaN as a dash.

    >>> percent(0.8125), percent(float("nan"))
    ('81.2%', '–')
    """
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{float(value):.1%}"


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: package templates, autoescaping, undefined names refused."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fireflow", "templates"),
        autoescape=jinja2.select_autoescape(default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["number"] = number
    env.filters["percent"] = percent
    return env


def render(name: str, /, **context: Any) -> str:
    """The template ``name`` rendered with ``context`` (autoescaped)."""
    return environment().get_template(name).render(**context)
