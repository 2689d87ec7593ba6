"""The HTML fireflow writes: templates only, escaped, printable, charts whose text fits.

* no HTML is assembled from strings in the package (the templates do it);
* hostile plan and population names are shown as text everywhere;
* the simulation report has what an official needs (inputs, assumptions, the
  simulated-data notice, per-town tables, open communities, deadlines,
  escalations, charts), counts as integers, dates on one line, departments by
  their Chinese names;
* the SVG charts keep their labels as text nodes, load nothing, and their text
  fits: no two labels overlap and every label is inside the chart, by
  conservative font metrics (DejaVu Sans from matplotlib, one em per CJK
  character) and, where Chromium is installed, by the browser's own
  ``getBBox`` of every text node.

The reviewed screenshot ``tests/reference/report-charts.png`` shows the charts
rendered by headless Chromium on a machine whose matplotlib has no CJK font (the
browser used its own: WenQuanYi Micro Hei); regenerate it with
``python tests/test_report_html.py screenshot OUT.png`` and look at it before
replacing the reference.
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import pytest
from chromium import chromium, run_chromium
from chromium import measured as chromium_measured
from hypothesis import given
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.sim import Behaviour, generate_population, simulate
from fireflow.sim import svg as svg_mod
from fireflow.sim.population import Community, Population
from fireflow.templates import number, render

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "fireflow"
PLAN = load_plan("changle-2022")
EVIL = '<script>alert("x")</script>\'"&'
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def run():
    behaviour = Behaviour(stall_probability=0.3, recheck_fail_rate=0.2)
    return simulate(PLAN, generate_population(120, seed=4), behaviour, seed=2022, name="基线")


@pytest.fixture(scope="module")
def report(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return run.write_report(out).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def hostile():
    """A plan and a population whose every name a person reads is hostile markup."""
    plan = PLAN.model_copy(
        update={
            "name": PLAN.name.model_copy(update={"zh": "方案" + EVIL, "en": "Plan" + EVIL}),
            "district": PLAN.district.model_copy(update={"zh": "区" + EVIL}),
        }
    )
    plan = plan.model_copy(
        update={
            "agencies": tuple(
                a.model_copy(update={"name": a.name.model_copy(update={"zh": a.name.zh + EVIL})})
                for a in PLAN.agencies
            )
        }
    )
    base = generate_population(12, seed=3)
    communities = tuple(
        Community(
            id=f"C{i}{EVIL}",
            name=f"小区{EVIL}{i}",
            town=f"镇{EVIL}{i % 3}",
            company=f"物业{EVIL}",
            households=c.households,
            buildings=c.buildings,
        )
        for i, c in enumerate(base.communities)
    )
    population = Population(communities, source=f"file{EVIL}.csv")
    return simulate(plan, population, Behaviour(refusal_probability=0.3), seed=1, name=EVIL)


# --------------------------------------------------------------------------- no HTML from strings

#: HTML and SVG elements ("<data>" and "<root>" stay placeholders in messages).
_ELEMENTS = [
    "html",
    "head",
    "body",
    "title",
    "style",
    "script",
    "meta",
    "link",
    "base",
    "div",
    "span",
    "p",
    "a",
    "br",
    "hr",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "col",
    "colgroup",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "img",
    "figure",
    "figcaption",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "small",
    "sub",
    "sup",
    "code",
    "pre",
    "blockquote",
    "form",
    "input",
    "button",
    "select",
    "option",
    "textarea",
    "label",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "source",
    "canvas",
    "noscript",
    "template",
    "details",
    "summary",
    "svg",
    "g",
    "path",
    "rect",
    "line",
    "circle",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "defs",
    "marker",
    "use",
    "image",
    "foreignObject",
]
_TAG = re.compile(r"</?(" + "|".join(_ELEMENTS) + r")(\s|/?>|$)|<!DOCTYPE", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def html_in_strings(source: str) -> list[tuple[int, str]]:
    """Every string literal (plain or f-string part) of ``source`` that holds an HTML tag."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and _TAG.search(node.value)
        ):
            found.append((node.lineno, node.value[:60]))
    return found


def test_no_html_is_built_from_strings_in_the_package():
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        hits = html_in_strings(path.read_text(encoding="utf-8"))
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert not found, f"HTML assembled in Python (use a template in fireflow/templates): {found}"


def test_the_html_scan_sees_markup_in_strings():
    source = (
        'x = f"<td>{v}</td>"\ny = "<tr>" + z\nw = "".join(["<br>", a])\n'
        'page = """<!DOCTYPE html>"""\nok = "a < b and c > d"\nalso = "1 <2"\n'
        'def f():\n    """A docstring may say <td>."""\n'
        'msg = "<data>: bad"\nr = f"<SimResult {n}>"\n'
    )
    assert sorted({line for line, _ in html_in_strings(source)}) == [1, 2, 3, 4]


def test_every_template_is_package_data_and_autoescaped():
    templates = sorted(p.name for p in (PKG / "templates").glob("*.j2"))
    assert {"base.html.j2", "sim_report.html.j2", "dossier.html.j2"} <= set(templates)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"templates/*.j2"' in text
    assert render("base.html.j2", title=EVIL).count("&lt;script&gt;") == 1


# --------------------------------------------------------------------------- escaping


def test_hostile_names_are_text_in_the_report_the_summary_and_the_charts(hostile, tmp_path):
    page = hostile.write_report(tmp_path).read_text(encoding="utf-8")
    summary = hostile._repr_html_()
    for text in (page, summary):
        assert "<script>" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "镇&lt;script&gt;" in page  # the town table and the small multiples
    assert "小区&lt;script&gt;" in page or hostile.kpis["open_at_end"] == 0
    for name, chart in svg_mod.charts(hostile).items():
        root = ET.fromstring(chart)  # well-formed: every name escaped by ElementTree
        texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
        if name in ("towns", "escalations"):
            assert "<script>" in texts or "…" in texts, name  # shown as text, not markup
    assert page.count("<script") == 0


def test_hostile_community_names_are_escaped_in_the_dossier():
    from fireflow.forms import dossier, dossier_html
    from fireflow.ticket import Ticket

    t = Ticket("T-1", PLAN)
    t.command(
        "report", _at(3, 21), "town", "李" + EVIL, community="小区" + EVIL, town="镇" + EVIL,
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection", description=EVIL,
    )  # fmt: skip
    page = dossier_html(dossier(t.events, "小区" + EVIL, PLAN))
    assert "<script>" not in page
    assert page.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&#39;&#34;&amp;") >= 4


def _at(m, d):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime(2022, m, d, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


# --------------------------------------------------------------------------- contents


def test_the_report_says_it_is_simulated_and_states_its_inputs(run, report):
    assert report.count("模拟数据 Simulated data") >= 3  # the notice, and top and bottom of pages
    assert 'class="mark simulated page top"' in report
    assert "seed 2022 · seed 2022" not in report
    assert report.count("<th>随机种子 Seed</th><td>2022</td>") == 1
    assert run.population.source in report
    assert "<code>stall_probability</code></td><td>0.3</td>" in report
    assert "<code>recheck_fail_rate</code></td><td>0.2</td>" in report
    assert [a["name"] for a in run.assumptions()] == ["stall_probability", "recheck_fail_rate"]
    assert ">value<" not in report  # the KPI header is bilingual: 数值 Value
    assert "数值 Value" in report


def test_counts_are_integers_and_dates_stay_on_one_line(run, report):
    kpis = report.split("<h2>指标 KPIs</h2>", 1)[1].split("</table>", 1)[0]
    values = re.findall(r'<td class="num">([^<]*)</td>', kpis)
    assert len(values) == len(run.kpis)
    for (key, value), shown in zip(run.kpis.items(), values, strict=True):
        if isinstance(value, int):
            assert shown == f"{value:,}", key
            assert ".0" not in shown
    assert re.search(r"\d\.0<", report) is None  # no 300.0 anywhere
    assert number(300.0) == "300"
    assert number(1285.0) == "1,285"
    dates = re.findall(r"<td[^>]*>(2022-\d\d-\d\d)</td>", report)
    assert dates
    assert all(f'<td class="date">{d}</td>' in report for d in dates)  # every date cell is nowrap
    assert ".date { white-space: nowrap; }" in report
    assert "@page { size: A4;" in report
    assert "section.part { break-before: page;" in report


def test_per_town_rows_add_up_to_the_kpis(run):
    rows = run.town_rows()
    assert [r["town"] for r in rows] == list(run.population.towns)

    def total(key):
        return sum(r[key] for r in rows)

    k = run.kpis
    assert total("communities") == k["communities"]
    assert total("tickets") == k["tickets"]
    assert total("overdue") == k["overdue_tickets"]
    assert total("open_at_end") == k["open_at_end"]
    assert total("filed_on_time") == k["rectified_by_dossier"]
    assert total("reports_late") == k["reports_late"] + k["reports_missing"]
    assert total("escalations") == len(run.escalations)
    frame = run.town_table()
    assert str(frame["tickets"].dtype) == "int64"


def test_open_communities_are_the_communities_with_unfiled_tickets(run, report):
    rows = run.open_communities()
    open_tickets = [s for s in run.states if s.state != "archived"]
    assert sum(r["open"] for r in rows) == len(open_tickets)
    assert {r["id"] for r in rows} == {s.community for s in open_tickets}
    keys = [(-r["overdue"], -r["open"]) for r in rows]
    assert keys == sorted(keys)
    for r in rows:
        assert f'<td title="{r["id"]}">{r["name"]}</td>' in report


def test_departments_are_named_in_chinese_with_ids_in_tooltips(run, report):
    escalations = report.split("Escalations by agency and rule</h2>", 1)[1].split("</table>")[0]
    names = {a.id: a.name.zh for a in PLAN.agencies}
    agencies = re.findall(r'<td title="([a-z_]+)">([^<]+)</td>', escalations)
    assert agencies
    for agency_id, shown in agencies:
        assert shown == names[agency_id]
    shown = re.sub(r"<title>[^<]*</title>", "", report)  # SVG tooltips may hold ids
    assert re.search(r">(town|housing|fire|urban|police|traffic_police)<", shown) is None


def test_every_deadline_and_report_is_listed(run, report):
    table = report.split("Deadlines and reports</h2>", 1)[1].split("</table>", 1)[0]
    for d in PLAN.deadlines():
        assert f'<td title="{d.id}">{d.name_zh}' in table
        assert f'<td class="date">{d.due.isoformat()}</td>' in table
    summary = next(d for d in PLAN.deadlines() if d.id == "summary")
    assert summary.nominal != summary.due  # 12-10 is a Saturday: both days are shown
    assert f'<td class="date">{summary.nominal.isoformat()}</td>' in table


def test_the_report_has_every_chart_inline_and_loads_nothing(run, report):
    for name in svg_mod.CHART_NAMES:
        assert f'<figure id="chart-{name}">' in report
    assert "<img" not in report
    assert "<script" not in report
    assert re.search(r"""(src|href)=["']?(https?:)?//""", report) is None
    assert "@import" not in report
    assert "url(http" not in report


def test_the_notebook_summary_is_a_compact_kpi_and_town_table(run):
    html = run._repr_html_()
    assert html.startswith('<div class="fireflow-sim">')
    assert html.count("<table") == 2
    assert "<html" not in html
    assert "<style" not in html
    for town in run.population.towns:
        assert f"<td>{town}</td>" in html
    assert "模拟数据" in html


def test_the_report_is_the_same_bytes_for_the_same_run(run, tmp_path):
    again = simulate(run.plan, run.population, run.behaviour, seed=run.seed, name=run.name)
    assert again.report_html() == run.report_html()


# --------------------------------------------------------------------------- charts


def test_charts_keep_chinese_labels_as_svg_text(run):
    charts = svg_mod.charts(run)
    texts = {}
    for name, chart in charts.items():
        root = ET.fromstring(chart)
        assert root.tag == f"{SVG}svg"
        texts[name] = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
        assert "http" not in chart.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "<image" not in chart
        assert "href" not in chart
    shown = " ".join(texts["phases"])
    for p in PLAN.phases:
        assert p.name.zh in shown
    escalated = {a for e in run.escalations for a in e.targets}
    for a in PLAN.agencies:
        if a.id in escalated:
            assert a.name.zh in " ".join(texts["escalations"])
    for town in run.population.towns:
        assert town in " ".join(texts["towns"])
    assert any("已归档" in t for t in texts["states"])


def _boxes_by_metrics(chart: str) -> tuple[tuple[float, float], list[tuple[str, tuple]]]:
    """The text boxes of a chart by conservative metrics (the layout's own estimate)."""
    root = ET.fromstring(chart)
    _, _, w, h = (float(v) for v in root.get("viewBox").split())
    base = float(root.get("font-size"))
    boxes = []
    for t in root.iter(f"{SVG}text"):
        text = t.text or ""
        size = float(t.get("font-size", base))
        width = svg_mod.text_width(text, size)
        x, y = float(t.get("x")), float(t.get("y"))
        anchor = t.get("text-anchor", "start")
        left = x - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
        boxes.append((text, (left, y - 0.88 * size, width, 1.16 * size)))  # ascent + descent
    return (w, h), boxes


def _problems(size: tuple[float, float], boxes, slack: float = 0.5) -> list[str]:
    w, h = size
    out = []
    for text, (x, y, bw, bh) in boxes:
        if x < -slack or y < -slack or x + bw > w + slack or y + bh > h + slack:
            out.append(f"outside the chart: {text!r} at {(x, y, bw, bh)} in {w}x{h}")
    for (t1, (x1, y1, w1, h1)), (t2, (x2, y2, w2, h2)) in combinations(boxes, 2):
        dx = min(x1 + w1, x2 + w2) - max(x1, x2)
        dy = min(y1 + h1, y2 + h2) - max(y1, y2)
        if dx > slack and dy > slack:
            out.append(f"overlap: {t1!r} and {t2!r}")
    return out


def _charts_to_check(run, hostile):
    yield "lifecycle", svg_mod.lifecycle_svg()
    for r in (run, hostile):
        yield from svg_mod.charts(r).items()


def test_text_fits_by_font_metrics(run, hostile):
    for name, chart in _charts_to_check(run, hostile):
        size, boxes = _boxes_by_metrics(chart)
        assert boxes, name
        assert not _problems(size, boxes), name


def test_the_width_estimate_is_at_least_dejavu_sans():
    """The layout's estimate never undercuts the widest common fallback font."""
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    font = TTFont(font_manager.findfont("DejaVu Sans"))
    cmap, hmtx = font.getBestCmap(), font["hmtx"]
    upem = font["head"].unitsPerEm
    samples = [
        "".join(chr(c) for c in range(0x20, 0x7F)),
        "R-ESC-OVERDUE R-TKT-SPOTCHECK",
        "12-31 01-01 – 01-31 1,500",
        "WWWWMMMMmmmm@@@%%%",
        "Phase progress report (Consolidation)",
    ]
    for s in samples:
        for ch in s:
            real = hmtx[cmap[ord(ch)]][0] / upem * 10
            assert svg_mod.text_width(ch, 10) >= real - 0.05, ch
    assert svg_mod.text_width("金峰镇", 10) == 30.0


# --------------------------------------------------------------------------- PNG plots


def _build_test_cjk_font(path: Path) -> None:
    """A tiny TrueType font, "Fireflow Test CJK": a one-em box for every CJK character."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder([".notdef", "box"])
    ranges = ((0x3000, 0x303F), (0x4E00, 0x9FFF), (0xFF00, 0xFFEF), (0x201C, 0x201D))
    fb.setupCharacterMap({c: "box" for lo, hi in ranges for c in range(lo, hi + 1)})
    pen = TTGlyphPen(None)
    pen.moveTo((100, -100))
    pen.lineTo((100, 800))
    pen.lineTo((900, 800))
    pen.lineTo((900, -100))
    pen.closePath()
    fb.setupGlyf({".notdef": TTGlyphPen(None).glyph(), "box": pen.glyph()})
    fb.setupHorizontalMetrics({".notdef": (500, 0), "box": (1000, 100)})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "Fireflow Test CJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    fb.save(str(path))


@pytest.fixture
def cjk_installed_late(tmp_path, monkeypatch):
    """A CJK font that matplotlib's font cache has never seen, in a place fireflow looks."""
    from matplotlib import font_manager

    from fireflow.sim import plots

    _build_test_cjk_font(tmp_path / "FireflowTestCJK.ttf")
    monkeypatch.setattr(plots, "CJK_FONTS", ())  # as if matplotlib's list had none
    monkeypatch.setattr(plots, "CJK_FONT_FILES", (str(tmp_path / "*.ttf"),))
    monkeypatch.setattr(plots.shutil, "which", lambda name: None)  # no fontconfig
    monkeypatch.setattr(font_manager.fontManager, "ttflist", list(font_manager.fontManager.ttflist))
    plots.cjk_font.cache_clear()
    yield plots
    plots.cjk_font.cache_clear()


@pytest.fixture
def no_cjk_font(monkeypatch):
    from fireflow.sim import plots

    monkeypatch.setattr(plots, "CJK_FONTS", ())
    monkeypatch.setattr(plots, "CJK_FONT_FILES", ())
    monkeypatch.setattr(plots.shutil, "which", lambda name: None)
    plots.cjk_font.cache_clear()
    plots._say_no_cjk_font.cache_clear()
    yield plots
    plots.cjk_font.cache_clear()
    plots._say_no_cjk_font.cache_clear()


def _png_problems(fig) -> list[str]:
    """Text outside the figure or overlapping other text, as drawn by matplotlib."""
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = []
    for ax in fig.axes:
        for labels, limits, i in (
            (ax.get_xticklabels(), ax.get_xlim(), 0),
            (ax.get_yticklabels(), ax.get_ylim(), 1),
        ):
            lo, hi = sorted(limits)
            for t in labels:
                if not lo <= t.get_position()[i] <= hi:
                    t.set_visible(False)  # a tick outside the view is not drawn
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or t.get_figure() is None:
            continue
        b = t.get_window_extent(renderer)
        boxes.append((t.get_text(), (b.x0, fig.bbox.height - b.y1, b.width, b.height)))
    return _problems((fig.bbox.width, fig.bbox.height), boxes, slack=1.0)


def test_the_png_check_sees_a_clipped_title_and_overlapping_labels():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.set_title("Changle District joint campaign against blocked fire passages " * 2)
    ax.text(0.5, 0.5, "Mobilization")
    ax.text(0.52, 0.5, "Self-inspection")
    problems = _png_problems(fig)
    assert any(p.startswith("outside") and "Changle" in p for p in problems)
    assert any(p.startswith("overlap") and "Mobilization" in p for p in problems)


def test_png_plots_find_a_font_installed_after_matplotlibs_cache(cjk_installed_late, run):
    plots = cjk_installed_late
    assert plots.find_cjk_font_files() == [
        str(Path(plots.CJK_FONT_FILES[0]).parent / "FireflowTestCJK.ttf")
    ]
    assert plots.cjk_font() == "Fireflow Test CJK"
    fig = plots.plot_phases(PLAN)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "动员部署 Mobilization"
    for fig in (plots.plot_phases(PLAN), plots.plot_states(run), plots.plot_escalations(run)):
        assert not _png_problems(fig)
    names = [t.get_text() for t in plots.plot_escalations(run).axes[0].get_yticklabels()]
    assert "区住建局" in names
    assert "housing" not in " ".join(names)


def test_png_plots_without_a_cjk_font_are_english_and_say_once_how_to_fix_it(
    no_cjk_font, run, caplog
):
    plots = no_cjk_font
    with caplog.at_level("WARNING", logger="fireflow.sim.plots"):
        figs = [plots.plot_phases(PLAN), plots.plot_states(run), plots.plot_escalations(run)]
        plots.plot_states(run)
    said = [r.getMessage() for r in caplog.records if r.name == "fireflow.sim.plots"]
    assert said == [plots.NO_CJK_FONT]
    assert "apt install fonts-noto-cjk" in said[0]
    assert "没有找到中文字体" in said[0]
    for fig in figs:
        texts = " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
        assert all(ord(ch) < 0x2E80 for ch in texts), texts[:200]
        assert not _png_problems(fig)
    caplog.clear()
    with caplog.at_level("WARNING", logger="fireflow.sim.plots"):
        plots.plot_phases(PLAN, english=True)  # asked for English: nothing to say
    assert not caplog.records


_MEASURE = """
<script>
window.addEventListener("load", () => {
  const out = [];
  document.querySelectorAll("svg.chart").forEach((svg, i) => {
    const vb = svg.viewBox.baseVal;
    const boxes = [];
    svg.querySelectorAll("text").forEach((t) => {
      const b = t.getBBox();
      boxes.push([t.textContent, [b.x, b.y, b.width, b.height]]);
    });
    out.push({id: svg.closest("[id]") ? svg.closest("[id]").id : String(i),
              size: [vb.width, vb.height], boxes: boxes});
  });
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _charts_page(charts: dict[str, str]) -> str:
    figures = "".join(f'<figure id="{n}">{c}</figure>' for n, c in charts.items())
    style = "<style>svg{max-width:100%;height:auto;display:block;margin:0 0 12px 0}</style>"
    head = f'<!DOCTYPE html><html lang="zh-CN"><meta charset="utf-8">{style}'
    return f"{head}<body>{figures}</body></html>"


@pytest.mark.skipif(chromium() is None, reason="no headless Chromium on this machine")
def test_text_fits_in_headless_chromium(run, hostile, report, tmp_path):
    charts = dict(_charts_to_check(run, hostile))
    pages = {
        "report": report,
        "charts": _charts_page({f"{k}-{i}": v for i, (k, v) in enumerate(charts.items())}),
    }
    bad = (
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 80 20" '
        'font-size="11"><text x="2" y="14">R-ESC-OVERDUE</text><text x="30" y="14">R-ESC-OFFICIAL'
        "</text></svg>"
    )
    pages["bad"] = _charts_page({"bad": bad})
    for label, html in pages.items():
        page = tmp_path / f"{label}.html"
        page.write_text(html.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
        measured = chromium_measured(page)
        if label == "bad":  # the check sees what it must refuse
            (chart,) = measured
            problems = _problems(tuple(chart["size"]), [(t, tuple(b)) for t, b in chart["boxes"]])
            assert any(p.startswith("overlap") for p in problems)
            assert any(p.startswith("outside") for p in problems)
            continue
        assert len(measured) >= 4
        for chart in measured:
            boxes = [(t, tuple(b)) for t, b in chart["boxes"] if t.strip()]
            assert boxes
            assert all(b[2] > 0 and not math.isnan(b[2]) for _, b in boxes)
            problems = _problems(tuple(chart["size"]), boxes, slack=1.0)
            assert not problems, (label, chart["id"], problems[:5])


def screenshot(path: Path, tmp: Path) -> None:
    """Render the charts of a Changle-sized run in headless Chromium into ``path`` (PNG)."""
    result = simulate(PLAN, generate_population(300, seed=1), seed=2022, name="baseline")
    charts = svg_mod.charts(result)
    del charts["towns"]
    page = tmp / "charts.html"
    page.write_text(_charts_page(charts), encoding="utf-8")
    res = run_chromium(page, f"--screenshot={path}", "--window-size=960,1000")
    if res.returncode != 0:
        raise SystemExit(res.stderr)


if __name__ == "__main__":  # python tests/test_report_html.py screenshot OUT.png
    import tempfile

    if sys.argv[1:2] == ["screenshot"]:
        with tempfile.TemporaryDirectory() as d:
            screenshot(Path(sys.argv[2]).resolve(), Path(d))


# --------------------------------------------------------------------------- docs offline

_EXTERNAL_TAG = re.compile(
    r"<(script|link|img|iframe|source|embed)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//",
    re.IGNORECASE,
)
_EXTERNAL_CSS = re.compile(r"(@import\s+(url\()?|url\()\s*[\"']?(https?:)?//", re.IGNORECASE)


def test_the_lifecycle_picture_in_the_docs_is_up_to_date():
    """docs/img/lifecycle.svg is lifecycle_svg() byte for byte (regenerate: docs/lifecycle.md)."""
    committed = (ROOT / "docs" / "img" / "lifecycle.svg").read_bytes()
    assert committed == svg_mod.lifecycle_svg().encode("utf-8")
    root = ET.fromstring(committed)
    texts = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    from fireflow.states import LIFECYCLE

    for state in LIFECYCLE.states:
        assert state.zh in texts
        assert state.id in texts
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    moves = sum(len(t.sources) for t in LIFECYCLE.transitions if t.dest is not None)
    assert len(arrows) == moves
    for page in ("lifecycle.md", "index.md"):
        assert "](img/lifecycle.svg)" in (ROOT / "docs" / page).read_text(encoding="utf-8")


def test_the_external_reference_scan_sees_cdn_links():
    assert _EXTERNAL_TAG.search('<script src="https://cdnjs.cloudflare.com/x.js"></script>')
    assert _EXTERNAL_TAG.search("<link rel=stylesheet href=//cdn.example/x.css>")
    assert not _EXTERNAL_TAG.search('<script src="js/base.js"></script><a href="https://x">')
    assert _EXTERNAL_CSS.search("@import url('https://fonts.example/css');")
    assert not _EXTERNAL_CSS.search("url(\"data:image/svg+xml,%3csvg xmlns='http://www.w3.org'\")")


def test_the_built_docs_load_nothing_from_the_internet(tmp_path):
    pytest.importorskip("mkdocs")  # the docs extra; .ci/run installs it, so CI never skips
    site = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 10
    found = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        found += [f"{page.name}: {m.group(0)}" for m in _EXTERNAL_TAG.finditer(text)]
        found += [f"{page.name}: {m.group(0)}" for m in _EXTERNAL_CSS.finditer(text)]
    for css in sorted(site.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        found += [f"{css.name}: {m.group(0)}" for m in _EXTERNAL_CSS.finditer(text)]
    assert not found, found
    lifecycle = (site / "lifecycle.html").read_text(encoding="utf-8")
    assert '<img alt="The ticket lifecycle' in lifecycle
    assert (site / "img" / "lifecycle.svg").read_bytes() == svg_mod.lifecycle_svg().encode()


# --------------------------------------------------------------------------- properties

_names = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=40
    )
    .map(str.strip)
    .filter(bool)
)


@given(_names)
def test_any_name_round_trips_through_a_template_as_text(name):
    from html.parser import HTMLParser

    class Title(HTMLParser):
        text = ""
        inside = False

        def handle_starttag(self, tag, attrs):
            self.inside = tag == "title"

        def handle_endtag(self, tag):
            self.inside = False

        def handle_data(self, data):
            if self.inside:
                self.text += data

    page = render("base.html.j2", title=name)
    parser = Title(convert_charrefs=True)
    parser.feed(page)
    assert parser.text == name
    assert page.count("<") == render("base.html.j2", title="x").count("<")


@given(_names, st.floats(min_value=0, max_value=300), st.sampled_from([10.0, 11.0, 13.0]))
def test_a_shortened_label_fits_and_keeps_its_start(name, width, size):
    shown = svg_mod.fit(name, width, size)
    if shown:
        assert svg_mod.text_width(shown, size) <= width
        assert shown == name or (shown.endswith("…") and name.startswith(shown[:-1].rstrip()))
    else:
        assert svg_mod.text_width(name[:1] + "…", size) > width or not name
