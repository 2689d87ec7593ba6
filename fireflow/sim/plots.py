"""Plots of a simulation run: the phases as a Gantt chart, states over time, escalations.

Figures are built with matplotlib's object-oriented API on the Agg canvas,
attached inside each function: nothing touches pyplot or the global backend,
at import or later, so a notebook's own backend is left alone.  These PNG
plots are for notebooks and documents; the HTML report draws its charts as
SVG in the reader's browser (:mod:`fireflow.sim.svg`), Chinese on any machine.

Labels are Chinese with English when a CJK font is installed (Noto Sans CJK,
Source Han Sans, WenQuanYi, SimHei, Microsoft YaHei, PingFang, ...).
:func:`cjk_font` finds one even when it was installed after matplotlib built
its font cache: it looks in matplotlib's list, then at the usual font files
of Linux, macOS and Windows, then asks fontconfig (``fc-list :lang=zh``),
and registers the file it finds with matplotlib (no cache to clear).  Without
one, labels are English only (no "missing glyph" warning is ever raised) and
the ``fireflow.sim.plots`` logger says once how to get Chinese labels
(:data:`NO_CJK_FONT`).

>>> from fireflow import load_plan
>>> fig = plot_phases(load_plan("changle-2022"), english=True)
>>> [t.get_text() for t in fig.axes[0].get_yticklabels()][:2]
['Mobilization', 'Self-inspection']
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fireflow import output
from fireflow.plan import Plan
from fireflow.sim.extra import require_sim_extra
from fireflow.sim.svg import PHASE_COLOURS, STATE_COLOURS, state_labels
from fireflow.states import STATES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fireflow.sim.result import SimResult

__all__ = [
    "CJK_FONTS",
    "CJK_FONT_FILES",
    "NO_CJK_FONT",
    "PLOT_NAMES",
    "cjk_font",
    "find_cjk_font_files",
    "latin",
    "plot_escalations",
    "plot_phases",
    "plot_states",
    "save_plots",
]

#: The plots :func:`save_plots` writes, as ``NAME.png``.
PLOT_NAMES: tuple[str, ...] = ("phases", "states", "escalations")

#: Font families searched for Chinese labels, in order of preference.
CJK_FONTS: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Noto Serif CJK SC",
)


#: Font files with Chinese glyphs looked for when matplotlib's list has none (globs).
CJK_FONT_FILES: tuple[str, ...] = (
    # Debian and Ubuntu (fonts-noto-cjk, fonts-wqy-*, fonts-arphic-*), Fedora, Arch
    "/usr/share/fonts/opentype/noto/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/noto-cjk/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK*.tt[cf]",
    "/usr/share/fonts/opentype/source-han-sans/SourceHanSans*.[ot]t[cf]",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSans*.[ot]t[cf]",
    "/usr/share/fonts/truetype/wqy/wqy-*.tt[cf]",
    "/usr/share/fonts/wqy-*/wqy-*.tt[cf]",
    "/usr/share/fonts/truetype/arphic/*.tt[cf]",
    "/usr/share/fonts/truetype/droid/DroidSansFallback*.ttf",
    # macOS
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti*.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    # Windows
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/simsun.ttc",
)

#: What the ``fireflow.sim.plots`` logger says, once, when no CJK font is found.
NO_CJK_FONT = (
    "没有找到中文字体，PNG 图表只用英文标注（HTML 报告中的图表不受影响）。"
    "安装中文字体后即可显示中文，无需清除 matplotlib 缓存："
    "Debian/Ubuntu: sudo apt install fonts-noto-cjk；Fedora: sudo dnf install "
    "google-noto-sans-cjk-fonts。\n"
    "No CJK font found: the PNG plots are labelled in English (the HTML report's charts "
    "are not affected). Install one and fireflow finds it, no matplotlib cache to clear: "
    "Debian/Ubuntu: sudo apt install fonts-noto-cjk; Fedora: sudo dnf install "
    "google-noto-sans-cjk-fonts; macOS and Windows ship one."
)

_log = logging.getLogger(__name__)


def _has_chinese(path: str) -> str | None:
    """The family name of the font file ``path`` when it has Chinese glyphs, else None."""
    from matplotlib.ft2font import FT2Font  # noqa: PLC0415

    try:
        font = FT2Font(path)
        if all(font.get_char_index(ord(ch)) for ch in "中文消防"):
            return str(font.family_name)
    except (OSError, RuntimeError, ValueError):
        return None
    return None


def find_cjk_font_files(
    patterns: tuple[str, ...] | None = None, *, fontconfig: bool = True
) -> list[str]:
    """Font files with Chinese glyphs: the known places (``patterns``, default
    :data:`CJK_FONT_FILES`), then fontconfig (``fc-list :lang=zh``).

    Each file is checked for the glyphs of 中文消防; the list is sorted within
    each source, so the same machine gives the same answer.
    """
    import glob  # noqa: PLC0415

    found: list[str] = []
    for pattern in CJK_FONT_FILES if patterns is None else patterns:
        found += sorted(glob.glob(pattern))
    fc_list = shutil.which("fc-list") if fontconfig else None
    if fc_list is not None:
        try:
            listed = subprocess.run(  # noqa: S603 (a fixed command, no shell)
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=20,
                check=False,
            )  # fmt: skip
            files = (line.split(":", 1)[0].strip() for line in listed.stdout.splitlines())
            found += sorted(f for f in files if f)
        except (OSError, subprocess.SubprocessError):
            pass
    return [f for f in dict.fromkeys(found) if _has_chinese(f) is not None]


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None (searched once).

    matplotlib's own list first (:data:`CJK_FONTS`); then the files of
    :func:`find_cjk_font_files`, the first of which is registered with
    matplotlib (``fontManager.addfont``): a font installed after matplotlib
    built its cache is found without clearing it.
    """
    require_sim_extra()
    from matplotlib import font_manager  # noqa: PLC0415

    names = [f.name for f in font_manager.fontManager.ttflist]
    for wanted in CJK_FONTS:
        for name in names:
            if name == wanted or name.startswith(wanted):
                return name
    for path in find_cjk_font_files():
        family = _has_chinese(path)
        if family is not None:
            font_manager.fontManager.addfont(path)
            return family
    return None


@functools.cache
def _say_no_cjk_font() -> None:
    _log.warning(NO_CJK_FONT)


def _mdates() -> Any:
    """matplotlib.dates (untyped functions: kept behind Any)."""
    import matplotlib.dates  # noqa: PLC0415

    return matplotlib.dates


def _english(english: bool | None) -> bool:
    if english is True:
        return True
    if cjk_font() is None:
        _say_no_cjk_font()
        return True
    return False


@contextmanager
def _style(english: bool) -> Iterator[None]:
    import matplotlib  # noqa: PLC0415

    rc: Any = {"axes.spines.top": False, "axes.spines.right": False}
    font = cjk_font()
    if not english and font is not None:
        # a list of families: glyphs missing from the CJK font fall back to DejaVu Sans
        rc["font.family"] = [font, "DejaVu Sans"]
        rc["axes.unicode_minus"] = False
    with matplotlib.rc_context(rc):
        yield


def _figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    # constrained layout keeps titles, tick labels and axis labels inside the figure
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` columns (a CJK character is two)."""
    lines, line, cols = [], "", 0
    for word in re.split(r"(?<=[ ])", text):
        w = sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in word)
        if line and cols + w > width:
            lines.append(line.rstrip())
            line, cols = "", 0
        line, cols = line + word, cols + w
    lines.append(line.rstrip())
    return "\n".join(lines)


def _drop_overlapping(fig: Figure, texts: list[Any]) -> None:
    """Hide each text that would overlap one drawn before it (for labels placed in data space)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    kept: list[Any] = []
    for t in texts:
        box = t.get_window_extent(renderer)
        if any(box.overlaps(k) for k in kept):
            t.set_visible(False)
        else:
            kept.append(box)


def latin(text: str) -> str:
    """``text`` without wide (CJK) characters, for fonts that lack them.

    >>> latin("Community dossiers (一区一档)")
    'Community dossiers'
    """
    kept = "".join(ch for ch in text if unicodedata.east_asian_width(ch) not in ("W", "F"))
    kept = re.sub(r"[(\[]\s*[)\]]", "", kept)
    return re.sub(r"\s+", " ", kept).strip()


def _name(name: str, english: bool) -> str:
    return (latin(name) or "run") if english else name


def _label(zh: str, en: str, english: bool) -> str:
    return latin(en) if english else f"{zh} {en}"


def _date_axis(ax: Any) -> None:
    mdates = _mdates()

    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))


def plot_phases(plan: Plan, *, english: bool | None = None) -> Figure:
    """The phases as a Gantt chart, and every report deadline of ``plan.deadlines()``.

    Each deadline is a milestone row: a diamond on its due day (after the
    holiday policy) and, when that differs, a hollow mark on the nominal day.
    ``english``: None = Chinese and English when a CJK font exists, else English.
    """
    require_sim_extra()
    mdates = _mdates()
    en = _english(english)
    deadlines = plan.deadlines()
    rows = len(plan.phases) + len(deadlines)
    with _style(en):
        fig = _figure(11, 1.2 + 0.38 * rows)
        ax = fig.add_subplot(1, 1, 1)
        labels: list[str] = []
        for i, p in enumerate(plan.phases):
            left = mdates.date2num(p.start)
            colour = PHASE_COLOURS[i % len(PHASE_COLOURS)]
            ax.barh(i, p.days, left=left, height=0.6, color=colour)
            span = f"{p.start:%m-%d} – {p.end:%m-%d}"
            if p.days >= 45:
                ax.text(left + p.days / 2, i, span, ha="center", va="center", color="white",
                        fontsize=8)  # fmt: skip
            else:
                ax.text(left + p.days + 2, i, span, ha="left", va="center", fontsize=8)
            labels.append(_label(p.name.zh, p.name.en, en))
        for j, d in enumerate(deadlines, start=len(plan.phases)):
            due = mdates.date2num(d.due)
            ax.axvline(due + 0.5, color="#999999", linewidth=0.6, linestyle=":", zorder=0)
            ax.plot([due + 0.5], [j], marker="D", color="#333333", markersize=5)
            if d.nominal != d.due:
                ax.plot([mdates.date2num(d.nominal) + 0.5], [j], marker="D", markersize=5,
                        markerfacecolor="none", markeredgecolor="#333333")  # fmt: skip
            ax.text(due + 4, j, f"{d.due:%m-%d}", ha="left", va="center", fontsize=7)
            labels.append(latin(d.name_en) if en else d.name_zh)
        ax.set_yticks(range(rows))
        ax.set_yticklabels(labels, fontsize=8)
        ax.axhline(len(plan.phases) - 0.5, color="#cccccc", linewidth=0.8)
        ax.set_ylim(rows - 0.4, -0.6)
        ax.set_xlim(mdates.date2num(plan.start) - 3, mdates.date2num(plan.end) + 12)
        _date_axis(ax)
        title = latin(plan.name.en) if en else f"{plan.name.zh}\n{plan.name.en}"
        ax.set_title(_wrap(title, 120), fontsize=10)
        ax.set_xlabel(_label("日期", f"Date ({plan.year}, {plan.timezone})", en))
    return fig


def plot_states(result: SimResult, *, english: bool | None = None) -> Figure:
    """Tickets per state over time, stacked, with the phases shaded behind."""
    require_sim_extra()
    mdates = _mdates()

    en = _english(english)
    labels = state_labels(en)
    timeline = result.timeline
    shown = [s for s in STATES if s != "new" and int(timeline[s].max()) > 0]
    with _style(en):
        fig = _figure(11, 5)
        ax = fig.add_subplot(1, 1, 1)
        phase_names = []
        for i, p in enumerate(result.plan.phases):
            ax.axvspan(
                mdates.date2num(p.start), mdates.date2num(p.end + timedelta(days=1)),
                color=PHASE_COLOURS[i % len(PHASE_COLOURS)], alpha=0.08, linewidth=0,
            )  # fmt: skip
            phase_names.append(ax.text(
                mdates.date2num(p.start) + p.days / 2, 1.0,
                latin(p.name.en) if en else p.name.zh,
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7,
                color="#555555",
            ))  # fmt: skip
        x = mdates.date2num(list(result.dates))
        if shown:
            ax.stackplot(
                x,
                [timeline[s].to_numpy() for s in shown],
                labels=[labels[s] for s in shown],
                colors=[STATE_COLOURS.get(s, "#999999") for s in shown],
            )
            fig.legend(loc="outside lower center", fontsize=7, ncol=min(4, len(shown)),
                       frameon=False)  # fmt: skip
        _date_axis(ax)
        ax.set_xlim(x[0], x[-1] + 1)
        ax.set_ylabel(_label("隐患数", "Tickets", en))
        title = _label("隐患状态（每日末）", "Ticket states at the end of each day", en)
        ax.set_title(f"{title} · {_name(result.name, en)}", fontsize=10, pad=16)
        fig.canvas.draw()  # lay out, then hide phase names that do not fit their span
        _drop_overlapping(fig, phase_names)
    return fig


def plot_escalations(result: SimResult, *, english: bool | None = None) -> Figure:
    """Escalations per target agency, stacked by rule."""
    require_sim_extra()
    en = _english(english)
    table = result.escalations_by_agency()
    names = {a.id: a.name for a in result.plan.agencies}
    with _style(en):
        fig = _figure(10, 4.5)
        ax = fig.add_subplot(1, 1, 1)
        if table.empty:
            ax.text(0.5, 0.5, _label("无移交或问责", "No escalations", en), ha="center")
            ax.set_axis_off()
        else:
            rules = [c for c in table.columns if c != "total"]
            agencies = list(table.index)
            left = [0] * len(agencies)
            for j, rule in enumerate(rules):
                values = [int(v) for v in table[rule]]
                ax.barh(
                    range(len(agencies)), values, left=left, label=rule,
                    color=PHASE_COLOURS[j % len(PHASE_COLOURS)],
                )  # fmt: skip
                left = [a + b for a, b in zip(left, values, strict=True)]
            ax.set_yticks(range(len(agencies)))
            ax.set_yticklabels(
                [(latin(names[a].en) if en else names[a].zh) if a in names else a for a in agencies]
            )
            ax.invert_yaxis()
            ax.legend(fontsize=7, frameon=False, loc="lower right")
            ax.set_xlabel(_label("次数", "Escalations (per target agency)", en))
        title = _label("移交与问责（按部门、规则）", "Escalations by agency and rule", en)
        ax.set_title(f"{title} · {_name(result.name, en)}", fontsize=10)

    return fig


def save_plots(
    result: SimResult, out_dir: str | os.PathLike[str], *, english: bool | None = None
) -> dict[str, Path]:
    """Write ``phases.png``, ``states.png`` and ``escalations.png``; return name -> path.

    Each is drawn into memory and written atomically (:mod:`fireflow.output`);
    ``out_dir`` is created when missing, refused when it is a link or a file.
    """
    out = output.prepare_folder(out_dir, create=True)
    for name in PLOT_NAMES:  # refuse a link or a folder among them before drawing anything
        output.check_destination(out / f"{name}.png")
    en = _english(english)
    figures = {
        "phases": plot_phases(result.plan, english=en),
        "states": plot_states(result, english=en),
        "escalations": plot_escalations(result, english=en),
    }
    paths: dict[str, Path] = {}
    with _style(en):
        for name, fig in figures.items():
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
            paths[name] = output.write_bytes(out / f"{name}.png", buf.getvalue())
    return paths
