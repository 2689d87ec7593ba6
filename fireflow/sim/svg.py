"""Charts as inline SVG, drawn by the reader's browser: text stays text, Chinese needs no font here.

The HTML report (:meth:`~fireflow.sim.result.SimResult.write_report`) embeds
these charts in the page.  Every label is an SVG ``<text>`` node, so the
browser that opens the page draws the Chinese with its own fonts: the machine
that ran the simulation needs no CJK font, and nothing is fetched from the
internet.  The charts are built with :mod:`xml.etree.ElementTree`, which
escapes every name; no markup is assembled from strings.

Layout is computed here from a conservative estimate of each text's width
(:func:`text_width`: a CJK character is one em, Latin letters as wide as
DejaVu Sans, the widest common fallback); a label that does not fit its place
is shortened with "…" and keeps its full text in a ``<title>`` tooltip.
Titles are not drawn inside the charts: the page gives each chart a caption.

* :func:`phases_svg`: the phases as a Gantt chart, with every report deadline;
* :func:`states_svg`: tickets per state at the end of each day, stacked;
* :func:`escalations_svg`: escalations per target agency, stacked by rule;
* :func:`towns_svg`: one small chart per town (open, overdue, filed);
* :func:`lifecycle_svg`: the ticket lifecycle of :mod:`fireflow.states` (for the docs).

>>> from fireflow import load_plan
>>> svg = phases_svg(load_plan("changle-2022"))
>>> svg.startswith("<svg") and "动员部署" in svg
True
>>> text_width("金峰 ab", 10)
35.8
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, SubElement, tostring

from fireflow.errors import InvalidArgument
from fireflow.plan import Deadline, Plan
from fireflow.states import LIFECYCLE, STATES, Lifecycle

if TYPE_CHECKING:
    from fireflow.sim.result import SimResult

__all__ = [
    "CHART_NAMES",
    "FONT_FAMILY",
    "PHASE_COLOURS",
    "STATE_COLOURS",
    "charts",
    "escalations_by_agency",
    "escalations_svg",
    "fit",
    "lifecycle_svg",
    "phases_svg",
    "state_labels",
    "states_svg",
    "text_width",
    "town_series",
    "towns_svg",
]

#: The charts :func:`charts` returns, in page order.
CHART_NAMES: tuple[str, ...] = ("phases", "states", "escalations", "towns")

#: The font list every chart asks the browser for (CJK fonts first, then any sans-serif).
FONT_FAMILY = (
    "'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC',"
    "'WenQuanYi Micro Hei','Noto Sans SC',SimHei,sans-serif"
)

_SVG_NS = "http://www.w3.org/2000/svg"
_FONT = 11.0  # the chart text size, px
_SMALL = 10.0
#: The colours of phases and of states, shared by the SVG charts and the PNG plots.
PHASE_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
STATE_COLOURS = {
    "reported": "#bab0ac",
    "routed": "#9c755f",
    "rectifying": "#f28e2b",
    "overdue": "#e15759",
    "refused": "#b07aa1",
    "escalated": "#ff9da7",
    "certified": "#edc948",
    "rectified": "#76b7b2",
    "reinspection_requested": "#4e79a7",
    "passed": "#8cd17d",
    "signed_off": "#59a14f",
    "archived": "#2f6b2f",
}
#: The groups of the per-town charts: state -> group.
_TOWN_GROUPS: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    ("overdue", "逾期、拒改或移交", "#e15759", frozenset({"overdue", "refused", "escalated"})),
    (
        "open",
        "整改中",
        "#f28e2b",
        frozenset(STATES) - {"new", "overdue", "refused", "escalated", "archived"},
    ),
    ("archived", "已归档", "#59a14f", frozenset({"archived"})),
)

# Advance widths of the printable ASCII characters (U+0020 to U+007E) in DejaVu Sans, the
# widest usual fallback font, in hundredths of an em, rounded up.  Any other character that
# is not wide counts one em.
# fmt: off
_ASCII_EM: tuple[int, ...] = (
    32, 41, 46, 84, 64, 96, 78, 28, 40, 40, 50, 84, 32, 37, 32, 34,
    64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 34, 34, 84, 84, 84, 54,
    100, 69, 69, 70, 78, 64, 58, 78, 76, 30, 30, 66, 56, 87, 75, 79,
    61, 79, 70, 64, 62, 74, 69, 99, 69, 62, 69, 40, 34, 40, 84, 50,
    50, 62, 64, 55, 64, 62, 36, 64, 64, 28, 28, 58, 28, 98, 64, 62,
    64, 64, 42, 53, 40, 64, 60, 82, 60, 60, 53, 64, 34, 64, 84,
)
# fmt: on


def text_width(text: str, size: float) -> float:
    """A conservative width (px) of ``text`` at font size ``size`` (px).

    Wide and full-width characters (Chinese) count one em; printable ASCII
    its advance in DejaVu Sans; anything else one em.

    >>> text_width("一区一档", 12)
    48.0
    """
    hundredths = 0
    for ch in text:
        code = ord(ch)
        if 0x20 <= code <= 0x7E:
            hundredths += _ASCII_EM[code - 0x20]
        else:
            hundredths += 100
    return round(hundredths * size / 100, 1)


def fit(text: str, width: float, size: float) -> str:
    """``text`` shortened with "…" until it fits ``width`` px at ``size`` ("" if nothing fits).

    >>> fit("物业小区消防通道专项联合整治", 60, 12)
    '物业小区…'
    """
    if text_width(text, size) <= width:
        return text
    for n in range(len(text) - 1, 0, -1):
        short = text[:n].rstrip() + "…"
        if text_width(short, size) <= width:
            return short
    return ""


# --------------------------------------------------------------------------- drawing


def _n(x: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros (same number, same bytes)."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg(width: float, height: float, label: str) -> Element:
    root = Element(
        "svg",
        {
            "xmlns": _SVG_NS,
            "viewBox": f"0 0 {_n(width)} {_n(height)}",
            "width": _n(width),
            "height": _n(height),
            "role": "img",
            "font-family": FONT_FAMILY,
            "font-size": _n(_FONT),
            "class": "chart",
        },
    )
    root.set("aria-label", label)
    SubElement(root, "title").text = label
    return root


def _text(
    parent: Element,
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = _FONT,
    fill: str = "#222",
    tooltip: str | None = None,
    width: float | None = None,
) -> Element | None:
    """A text node whose baseline sits at ``y``; shortened to ``width`` when given."""
    shown = fit(text, width, size) if width is not None else text
    if not shown:
        return None
    node = SubElement(parent, "text", {"x": _n(x), "y": _n(y), "fill": fill})
    if anchor != "start":
        node.set("text-anchor", anchor)
    if size != _FONT:
        node.set("font-size", _n(size))
    node.text = shown
    full = tooltip if tooltip is not None else (text if shown != text else None)
    if full:
        SubElement(node, "title").text = full
    return node


def _rect(parent: Element, x: float, y: float, w: float, h: float, fill: str, **extra: str) -> None:
    attrs = {"x": _n(x), "y": _n(y), "width": _n(max(w, 0.0)), "height": _n(max(h, 0.0))}
    attrs["fill"] = fill
    attrs.update(extra)
    SubElement(parent, "rect", attrs)


def _line(parent: Element, x1: float, y1: float, x2: float, y2: float, **extra: str) -> None:
    attrs = {"x1": _n(x1), "y1": _n(y1), "x2": _n(x2), "y2": _n(y2)}
    attrs.setdefault("stroke", "#999")
    attrs.update(extra)
    SubElement(parent, "line", attrs)


def _out(root: Element) -> str:
    return tostring(root, encoding="unicode", short_empty_elements=True)


def _nice_step(top: float, ticks: int = 5) -> int:
    raw = max(top, 1.0) / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return max(1, int(m * magnitude))
    return max(1, int(10 * magnitude))  # pragma: no cover (the loop always returns)


def _months(start: date, end: date) -> list[date]:
    out = []
    d = date(start.year, start.month, 1)
    while d <= end:
        if d >= start:
            out.append(d)
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return out


def _month_axis(
    g: Element, start: date, end: date, x0: float, day_w: float, y: float, bottom: float
) -> None:
    """Month ticks (``1月`` ...) under a time axis from ``start`` to ``end``."""
    _line(g, x0, y, x0 + ((end - start).days + 1) * day_w, y, stroke="#666")
    months = _months(start, end)
    for i, m in enumerate(months):
        x = x0 + (m - start).days * day_w
        _line(g, x, y, x, y + 4, stroke="#666")
        nxt = months[i + 1] if i + 1 < len(months) else end + timedelta(days=1)
        room = (nxt - m).days * day_w
        label = f"{m.month}月" if m.year == start.year else f"{m.year}-{m.month:02d}"
        _text(g, x + 2, bottom, label, size=_SMALL, fill="#444", width=room - 3)


def _legend(
    g: Element, items: Sequence[tuple[str, str, str | None]], x0: float, y0: float, width: float
) -> float:
    """Coloured swatches with labels, wrapped into rows; returns the height used."""
    x, y, row_h = x0, y0, 18.0
    for label, colour, tooltip in items:
        w = 14 + text_width(label, _SMALL) + 14
        if x > x0 and x + w > x0 + width:
            x, y = x0, y + row_h
        _rect(g, x, y + 2, 10, 10, colour)
        _text(g, x + 14, y + 11, label, size=_SMALL, tooltip=tooltip, width=width - 14)
        x += w
    return y - y0 + row_h


# --------------------------------------------------------------------------- charts


def phases_svg(plan: Plan, deadlines: Sequence[Deadline] | None = None) -> str:
    """The phases as a Gantt chart, and every report deadline (``plan.deadlines()``).

    Each deadline is a row with a diamond on its due day (after the holiday
    policy) and, when that differs, a hollow diamond on the day the plan
    writes.  Labels are Chinese; the English name and the id are tooltips.
    """
    dls = list(deadlines) if deadlines is not None else list(plan.deadlines())
    rows: list[tuple[str, str]] = [(p.name.zh, f"{p.name.en} ({p.id})") for p in plan.phases]
    rows += [(d.name_zh, _deadline_tip(d)) for d in dls]
    label_w = min(320.0, max(text_width(zh, _FONT) for zh, _ in rows) + 12)
    plot_w, row_h, top = 640.0, 22.0, 8.0
    days = (plan.end - plan.start).days + 1
    day_w = plot_w / days
    x0 = label_w + 8
    height = top + row_h * len(rows) + 34
    width = x0 + plot_w + 48
    root = _svg(width, height, f"{plan.name.zh}：阶段与报送期限")
    g = SubElement(root, "g")
    for i, (zh, tip) in enumerate(rows):
        _text(g, label_w, top + i * row_h + 15, zh, anchor="end", tooltip=tip, width=label_w - 4)
    for i, p in enumerate(plan.phases):
        y = top + i * row_h
        left = x0 + (p.start - plan.start).days * day_w
        bar = p.days * day_w
        colour = PHASE_COLOURS[i % len(PHASE_COLOURS)]
        _rect(g, left, y + 4, bar, row_h - 8, colour)
        span = f"{p.start:%m-%d} – {p.end:%m-%d}"
        sw = text_width(span, _SMALL)
        if sw + 8 <= bar:
            _text(g, left + bar / 2, y + 15, span, anchor="middle", size=_SMALL, fill="#fff")
        elif left + bar + 4 + sw <= x0 + plot_w + 44:
            _text(g, left + bar + 4, y + 15, span, size=_SMALL)
        else:
            _text(g, left - 4, y + 15, span, anchor="end", size=_SMALL)
    first = len(plan.phases)
    if dls:
        _line(g, 0, top + first * row_h, width, top + first * row_h, stroke="#ccc")
    for j, d in enumerate(dls, start=first):
        due, nominal = d.due, d.nominal
        y = top + j * row_h + 11
        x = x0 + ((due - plan.start).days + 0.5) * day_w
        _line(g, x, top, x, top + len(rows) * row_h, stroke="#bbb", **{"stroke-dasharray": "2 3"})
        SubElement(g, "path", {"d": _diamond(x, y, 5), "fill": "#333"})
        xn = x
        if nominal != due:
            xn = x0 + ((nominal - plan.start).days + 0.5) * day_w
            SubElement(g, "path", {"d": _diamond(xn, y, 5), "fill": "#fff", "stroke": "#333"})
        label = f"{due:%m-%d}"
        if x + 8 + text_width(label, _SMALL) <= width - 2:
            _text(g, x + 8, y + 4, label, size=_SMALL)
        else:
            _text(g, min(x, xn) - 8, y + 4, label, size=_SMALL, anchor="end")
    _month_axis(g, plan.start, plan.end, x0, day_w, top + len(rows) * row_h + 4, height - 8)
    return _out(root)


def _deadline_tip(d: Deadline) -> str:
    parts = [d.name_en, f"({d.id})"]
    if d.nominal != d.due:
        parts.append(f"方案日期 {d.nominal:%m-%d}，顺延至 {d.due:%m-%d}")
    return " ".join(parts)


def _diamond(x: float, y: float, r: float) -> str:
    return _pd("M", x, y - r, "L", x + r, y, "L", x, y + r, "L", x - r, y, "Z")


def _stack(
    xs: Sequence[float],
    series: Sequence[Sequence[int]],
    y_base: float,
    scale: float,
) -> list[str]:
    """Path data of stacked areas (one per series, bottom first)."""
    lower = [0] * len(xs)
    out = []
    for values in series:
        upper = [a + b for a, b in zip(lower, values, strict=True)]
        top_pts = [f"{_n(x)} {_n(y_base - u * scale)}" for x, u in zip(xs, upper, strict=True)]
        low_pts = [
            f"{_n(x)} {_n(y_base - lo * scale)}"
            for x, lo in zip(reversed(xs), reversed(lower), strict=True)
        ]
        out.append("M" + "L".join(top_pts) + "L" + "L".join(low_pts) + "Z")
        lower = upper
    return out


def _y_axis(
    g: Element, x: float, y_base: float, plot_h: float, top_value: int, width: float
) -> float:
    """Grid lines and tick labels; returns the scale (px per ticket)."""
    step = _nice_step(top_value)
    top = max(step, math.ceil(max(top_value, 1) / step) * step)
    scale = plot_h / top
    for v in range(0, top + 1, step):
        y = y_base - v * scale
        _line(g, x, y, x + width, y, stroke="#e5e5e5")
        _text(g, x - 4, y + 4, f"{v:,}", anchor="end", size=_SMALL, fill="#444")
    return scale


def states_svg(result: SimResult) -> str:
    """Tickets per state at the end of each day, stacked, with the phases named along the top."""
    plan = result.plan
    daily = result.daily
    shown = [i for i, s in enumerate(STATES) if s != "new" and any(row[i] for row in daily)]
    labels = {s.id: s for s in LIFECYCLE.states}
    peak = max((sum(row[i] for i in shown) for row in daily), default=0)
    axis_w = text_width(f"{_nice_step(peak) * 6:,}", _SMALL) + 10
    x0, plot_w, top, plot_h = axis_w + 4, 760.0, 24.0, 240.0
    days = len(result.dates)
    day_w = plot_w / max(days, 1)
    width = x0 + plot_w + 12
    legend_items = [
        (labels[STATES[i]].zh, STATE_COLOURS.get(STATES[i], "#999"), labels[STATES[i]].en)
        for i in shown
    ]
    legend_h = _legend_height(legend_items, width - x0)
    height = top + plot_h + 30 + legend_h + 6
    root = _svg(width, height, f"{result.name}：隐患状态（每日末）")
    g = SubElement(root, "g")
    start = result.dates[0]
    for i, p in enumerate(plan.phases):
        left = x0 + max(0, (p.start - start).days) * day_w
        right = x0 + min(days, (p.end - start).days + 1) * day_w
        if right <= left:
            continue
        colour = PHASE_COLOURS[i % len(PHASE_COLOURS)]
        _rect(g, left, top, right - left, plot_h, colour, **{"fill-opacity": "0.08"})
        _text(g, (left + right) / 2, top - 8, p.name.zh, anchor="middle", size=_SMALL,
              fill="#555", tooltip=p.name.en, width=right - left - 4)  # fmt: skip
    y_base = top + plot_h
    scale = _y_axis(g, x0, y_base, plot_h, peak, plot_w)
    xs = [x0 + (d + 0.5) * day_w for d in range(days)]
    series = [[row[i] for row in daily] for i in shown]
    for i, path in zip(shown, _stack(xs, series, y_base, scale), strict=True):
        node = SubElement(g, "path", {"d": path, "fill": STATE_COLOURS.get(STATES[i], "#999")})
        SubElement(node, "title").text = f"{labels[STATES[i]].zh} {labels[STATES[i]].en}"
    _month_axis(g, start, result.dates[-1], x0, day_w, y_base, y_base + 16)
    _legend(g, legend_items, x0, y_base + 26, width - x0)
    return _out(root)


def _legend_height(items: Sequence[tuple[str, str, str | None]], width: float) -> float:
    return _legend(Element("g"), items, 0, 0, width)


def escalations_by_agency(
    result: SimResult,
) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Agencies (most escalations first), rules (sorted) and counts, from the run's records."""
    counts: dict[tuple[str, str], int] = {}
    totals: dict[str, int] = {}
    for e in result.escalations:
        for agency in e.targets:
            counts[(agency, e.rule)] = counts.get((agency, e.rule), 0) + 1
            totals[agency] = totals.get(agency, 0) + 1
    agencies = sorted(totals, key=lambda a: (-totals[a], a))
    rules = sorted({r for _, r in counts})
    return agencies, rules, counts


def escalations_svg(result: SimResult) -> str:
    """Escalations per target agency (Chinese name), stacked by rule, the total at the bar's end."""
    agencies, rules, counts = escalations_by_agency(result)
    names = {a.id: a.name.zh for a in result.plan.agencies}
    row_h, top = 24.0, 6.0
    label_w = min(260.0, max([text_width(names.get(a, a), _FONT) for a in agencies] or [60]) + 12)
    plot_w = 560.0
    x0 = label_w + 8
    width = x0 + plot_w + 60
    if not agencies:
        root = _svg(width, 40, f"{result.name}：移交与问责")
        _text(root, width / 2, 24, "无移交或问责 No escalations", anchor="middle")
        return _out(root)
    titles = _rule_titles(result.plan, rules)
    legend_items = [
        (r, PHASE_COLOURS[j % len(PHASE_COLOURS)], titles.get(r)) for j, r in enumerate(rules)
    ]
    legend_h = _legend_height(legend_items, width - x0)
    totals = {a: sum(counts.get((a, r), 0) for r in rules) for a in agencies}
    peak = max(totals.values())
    plot_h = row_h * len(agencies)
    height = top + plot_h + 26 + legend_h + 6
    root = _svg(width, height, f"{result.name}：移交与问责（按部门、规则）")
    g = SubElement(root, "g")
    scale = plot_w / peak
    for i, a in enumerate(agencies):
        y = top + i * row_h
        _text(g, label_w, y + 16, names.get(a, a), anchor="end", tooltip=a, width=label_w - 4)
        left = x0
        for j, r in enumerate(rules):
            v = counts.get((a, r), 0)
            if v:
                _rect(g, left, y + 4, v * scale, row_h - 8, PHASE_COLOURS[j % 7])
                left += v * scale
        _text(g, left + 4, y + 16, f"{totals[a]:,}", size=_SMALL)
    y_axis = top + plot_h + 2
    _line(g, x0, top, x0, y_axis, stroke="#666")
    _legend(g, legend_items, x0, y_axis + 8, width - x0)
    return _out(root)


def _rule_titles(plan: Plan, rules: Iterable[str]) -> dict[str, str]:
    out = {}
    for r in rules:
        try:
            entry = plan.rule(r)
        except InvalidArgument:  # a rule outside the catalogue keeps its id only
            continue
        out[r] = f"{entry.title_zh}（{entry.clause}）"
    return out


def town_series(result: SimResult) -> dict[str, list[tuple[int, ...]]]:
    """Per town, the tickets of each group of :data:`_TOWN_GROUPS` at the end of each day."""
    towns = list(result.population.towns)
    groups = [[STATES.index(s) for s in sorted(members)] for *_, members in _TOWN_GROUPS]
    n = len(STATES)
    current: list[tuple[int, ...]] = [(0,) * len(groups) for _ in towns]
    out: dict[str, list[tuple[int, ...]]] = {t: [] for t in towns}
    for changed, values in result.town_updates:
        for k, t in enumerate(changed):
            row = values[k * n : k * n + n]
            current[t] = tuple(sum(row[i] for i in idx) for idx in groups)
        for t, name in enumerate(towns):
            out[name].append(current[t])
    return out


def towns_svg(result: SimResult, columns: int = 4) -> str:
    """One small chart per town on one shared scale: overdue, in rectification and filed tickets."""
    series = town_series(result)
    towns = list(series)
    cell_w, cell_h, gap, head = 200.0, 96.0, 14.0, 18.0
    cols = max(1, min(columns, len(towns)))
    rows = math.ceil(len(towns) / cols)
    legend_items = [(zh, colour, key) for key, zh, colour, _ in _TOWN_GROUPS]
    width = cols * cell_w + (cols - 1) * gap + 8
    legend_h = _legend_height(legend_items, width - 8)
    height = rows * (cell_h + head + gap) + legend_h + 4
    root = _svg(width, height, f"{result.name}：分乡镇隐患状态")
    g = SubElement(root, "g")
    peak = max((sum(v) for rows_ in series.values() for v in rows_), default=0)
    top = max(1, peak)
    days = len(result.dates)
    tickets: dict[int, int] = {}
    for t in result.ticket_town:
        tickets[t] = tickets.get(t, 0) + 1
    for k, town in enumerate(towns):
        cx = 4 + (k % cols) * (cell_w + gap)
        cy = (k // cols) * (cell_h + head + gap)
        n = tickets.get(k, 0)
        count = f"{n:,}"
        _text(g, cx + cell_w, cy + 13, count, anchor="end", size=_SMALL, fill="#444",
              tooltip=f"{n:,} 件隐患 tickets")  # fmt: skip
        _text(g, cx, cy + 13, town, width=cell_w - text_width(count, _SMALL) - 8)
        base = cy + head + cell_h
        _rect(g, cx, cy + head, cell_w, cell_h, "#fafafa", stroke="#ddd")
        xs = [cx + (d + 0.5) * cell_w / days for d in range(0, days, 7)]
        rows_ = series[town][::7]
        data = [[r[j] for r in rows_] for j in range(len(_TOWN_GROUPS))]
        for (_, zh, colour, _m), path in zip(
            _TOWN_GROUPS, _stack(xs, data, base, (cell_h - 4) / top), strict=True
        ):
            node = SubElement(g, "path", {"d": path, "fill": colour})
            SubElement(node, "title").text = f"{town} {zh}"
    _legend(g, legend_items, 4, rows * (cell_h + head + gap), width - 8)
    return _out(root)


def charts(result: SimResult) -> dict[str, str]:
    """Every chart of the report, by name (:data:`CHART_NAMES`), as SVG markup."""
    return {
        "phases": phases_svg(result.plan),
        "states": states_svg(result),
        "escalations": escalations_svg(result),
        "towns": towns_svg(result),
    }


# --------------------------------------------------------------------------- lifecycle


def lifecycle_svg(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """The ticket lifecycle as an SVG picture, top to bottom, every transition an arrow.

    States are placed in rows by their shortest distance from the initial
    state (within a row, near the states they come from); each box shows the
    Chinese name and the id, a final state has a bold box.  A transition to a
    later row runs down; one back to an earlier row or within a row runs along
    the right-hand side.  Each arrow's tooltip names its trigger (Chinese and
    id).  Triggers that keep the state (``expose``, ``punish``) are listed
    under the picture.  The same lifecycle gives the same bytes.
    """
    by_id = {s.id: s for s in lifecycle.states}
    order = [s.id for s in lifecycle.states]
    edges: list[tuple[str, str, str]] = []
    in_place: list[str] = []
    for t in lifecycle.transitions:
        if t.dest is None:
            in_place.append(f"{t.zh} {t.trigger}")
            continue
        for src in t.sources:
            edges.append((src, t.dest, f"{t.zh} {t.trigger}"))
    rank = {lifecycle.initial: 0}
    queue = [lifecycle.initial]
    while queue:
        cur = queue.pop(0)
        for src, dst, _ in edges:
            if src == cur and dst not in rank:
                rank[dst] = rank[cur] + 1
                queue.append(dst)
    for sid in order:
        rank.setdefault(sid, max(rank.values()) + 1)
    rows: dict[int, list[str]] = {}
    for sid in order:
        rows.setdefault(rank[sid], []).append(sid)
    box_w = max(max(text_width(by_id[x].zh, 13), text_width(x, _SMALL)) for x in order) + 16
    box_h, gap_x, gap_y, left = 40.0, 26.0, 34.0, 12.0
    widest = max(len(v) for v in rows.values())
    span = widest * box_w + (widest - 1) * gap_x
    # order each row by where its states come from (mean x of their parents), then as declared
    x_of: dict[str, float] = {}
    for r in sorted(rows):
        members = rows[r]
        if r > 0:

            def parent_x(sid: str, r: int = r) -> float:
                xs = [x_of[a] for a, b, _ in edges if b == sid and a in x_of and rank[a] < r]
                return sum(xs) / len(xs) if xs else span / 2

            members.sort(key=lambda sid: (parent_x(sid), order.index(sid)))
        width = len(members) * box_w + (len(members) - 1) * gap_x
        for i, sid in enumerate(members):
            x_of[sid] = left + (span - width) / 2 + i * (box_w + gap_x) + box_w / 2
    y_of = {sid: 10 + rank[sid] * (box_h + gap_y) for sid in order}
    n_back = sum(1 for a, b, _ in edges if rank[b] <= rank[a])
    right_edge = left + span + 24 + 7 * n_back
    note = "原地操作（状态不变）In-place triggers: " + "、".join(in_place) if in_place else ""
    foot = 10 + (max(rows) + 1) * (box_h + gap_y)
    width = max(right_edge + 12, text_width(note, _SMALL) + 2 * left)
    height = foot + (36 if note else 16)
    root = _svg(width, height, "隐患工单生命周期 Ticket lifecycle")
    defs = SubElement(root, "defs")
    marker = SubElement(
        defs,
        "marker",
        {"id": "arrow", "viewBox": "0 0 10 10", "refX": "9", "refY": "5", "markerWidth": "7",
         "markerHeight": "7", "orient": "auto-start-reverse"},
    )  # fmt: skip
    SubElement(marker, "path", {"d": "M0 0L10 5L0 10Z", "fill": "#666"})
    lines = SubElement(root, "g", {"fill": "none", "stroke": "#888", "stroke-width": "1.2"})
    outs: dict[str, int] = {}
    back = 0
    for src, dst, label in edges:
        x1, y1, x2, y2 = x_of[src], y_of[src], x_of[dst], y_of[dst]
        if rank[dst] > rank[src]:
            k = outs.get(src, 0)
            outs[src] = k + 1
            sx = x1 + (k % 5 - 2) * 8
            mid = (y1 + box_h + y2) / 2
            d = _pd("M", sx, y1 + box_h, "C", sx, mid, x2, mid, x2, y2)
            colour = "#888"
        elif rank[dst] == rank[src]:  # an arc below the row to the right, above it to the left
            sign = 1 if x2 > x1 else -1
            edge_y = y1 + (box_h if sign > 0 else 0)
            bend = edge_y + sign * (10 + 4 * abs(x2 - x1) / (box_w + gap_x))
            d = _pd("M", x1 + sign * 12, edge_y, "C", x1 + sign * 12, bend, x2 - sign * 12, bend,
                    x2 - sign * 12, edge_y)  # fmt: skip
            colour = "#c0504d"
        elif rank[src] - rank[dst] == 1:  # one row up: from the top to the bottom
            d = _pd("M", x1 + 16, y1, "C", x1 + 16, y1 - gap_y / 2, x2 + 30, y2 + box_h + gap_y / 2,
                    x2 + 30, y2 + box_h)  # fmt: skip
            colour = "#c0504d"
        else:  # further up: along the right-hand side
            back += 1
            bulge = left + span + 24 + 7 * back
            sy, ey = y1 + box_h / 2 + 6, y2 + box_h / 2 - 6
            d = _pd("M", x1 + box_w / 2, sy, "C", bulge, sy, bulge, ey, x2 + box_w / 2, ey)
            colour = "#c0504d"
        path = SubElement(lines, "path", {"d": d, "marker-end": "url(#arrow)", "stroke": colour})
        SubElement(path, "title").text = f"{by_id[src].zh} → {by_id[dst].zh}：{label}"
    boxes = SubElement(root, "g")
    for sid in order:
        x, y = x_of[sid] - box_w / 2, y_of[sid]
        final = by_id[sid].final
        _rect(boxes, x, y, box_w, box_h, "#fff", stroke="#333",
              **{"stroke-width": "2.5" if final else "1", "rx": "4"})  # fmt: skip
        _text(boxes, x + box_w / 2, y + 17, by_id[sid].zh, anchor="middle", size=13,
              tooltip=by_id[sid].en)  # fmt: skip
        _text(boxes, x + box_w / 2, y + 32, sid, anchor="middle", size=_SMALL, fill="#555")
    legend = "粗框：终态；红线：回到前面或同一行的状态。Bold box: final; red: back or sideways."
    _text(root, left, foot + 4, legend, size=_SMALL, fill="#555")
    if note:
        _text(root, left, foot + 22, note, size=_SMALL, fill="#555")
    return _out(root) + "\n"


def _pd(*parts: str | float) -> str:
    """SVG path data: command letters as given, numbers through :func:`_n`."""
    out: list[str] = []
    number_before = False
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            number_before = False
        else:
            out.append((" " if number_before else "") + _n(p))
            number_before = True
    return "".join(out)


def state_labels(english: bool) -> dict[str, str]:
    """State id -> label for charts and plots (Chinese with English, or English only).

    >>> state_labels(False)["reported"], state_labels(True)["reported"]
    ('已登记 Recorded in the ledger', 'Recorded in the ledger')
    """
    return {s.id: s.en if english else f"{s.zh} {s.en}" for s in LIFECYCLE.states}
