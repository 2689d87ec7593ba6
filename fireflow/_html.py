"""Small HTML tables for notebooks (``_repr_html_``): every piece of text escaped here.

Jupyter shows an object's ``_repr_html_()``.  Plans, ticket states,
scenarios and calibrations use the builders of this module, which turn values
into plain text blocks (headings, paragraphs, tables) rendered by the template
``repr.html.j2`` with autoescaping, like every HTML page fireflow writes
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
from typing import TYPE_CHECKING, Any, Literal

import attrs

from fireflow.errors import FireflowError

if TYPE_CHECKING:
    from fireflow.model import TicketState
    from fireflow.plan import Plan
    from fireflow.sim.calibrate import Calibration

__all__ = [
    "calibration_html",
    "escape",
    "heading",
    "plan_html",
    "scenario_html",
    "table",
    "ticket_html",
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


def plan_html(plan: Plan) -> str:
    """A plan: its name, its phases, its report deadlines and its categories."""
    title = f"{plan.name.zh} · {plan.name.en} ({plan.id}, {plan.year}, {plan.timezone})"
    phases = table_block(
        ["阶段 phase", "名称", "name", "开始 start", "结束 end", "条款 clause"],
        [[p.id, p.name.zh, p.name.en, p.start, p.end, p.clause] for p in plan.phases],
        caption="工作步骤 Phases",
    )
    try:
        deadlines = table_block(
            ["报送 report", "名称", "截止 due", "报送单位 senders", "条款 rule"],
            [[d.id, d.name_zh, d.due, d.senders, d.rule] for d in plan.deadlines()],
            caption="报送节点 Report deadlines",
        )
    except FireflowError as exc:  # a year with no holiday data: say so, show the rest
        deadlines = Block("text", text=str(exc))
    categories = table_block(
        ["类别 category", "名称", "name", "细类 subtypes"],
        [[c.id, c.name.zh, c.name.en, tuple(s.id for s in c.subtypes)] for c in plan.categories],
        caption="整治重点 Hazard categories",
    )
    return page(heading(title), phases, deadlines, categories)


_TICKET_FIELDS = (
    ("ticket_id", "工单 ticket"),
    ("state", "状态 state"),
    ("community", "小区 community"),
    ("town", "乡镇 town"),
    ("category", "类别 category"),
    ("subtype", "细类 subtype"),
    ("location", "位置 location"),
    ("source", "来源 source"),
    ("reported_at", "发现 reported"),
    ("deadline", "整改期限 deadline"),
    ("rectified_by", "整改 rectified by"),
    ("failed_rechecks", "复查不合格 failed re-checks"),
    ("escalated_to", "上报 escalated to"),
    ("reopened", "抽查重新整改 reopened"),
    ("version", "事件数 events"),
)


def ticket_html(state: TicketState) -> str:
    """A ticket's state as a two-column table (its route, signers and evidence included)."""
    from fireflow.states import LIFECYCLE  # noqa: PLC0415

    labels = {s.id: f"{s.zh} {s.id}" for s in LIFECYCLE.states}
    rows: list[list[Any]] = []
    for name, label in _TICKET_FIELDS:
        value = getattr(state, name)
        if name == "state":
            value = labels.get(value, value)
        if value in (None, "", ()):
            continue
        rows.append([label, value])
    if state.routing is not None:
        r = state.routing
        rows.append(["路线 route", f"{r.route}: {r.rectifier} (lead {r.lead})"])
        rows.append(["依据 rules", r.rules])
    if state.signers:
        rows.append(["验收人 signers", [f"{a.agency} {a.person}".strip() for a in state.signers]])
    if state.evidence:
        rows.append(["证据 evidence", [e.kind for e in state.evidence]])
    return page(
        table_block(["字段 field", "值 value"], rows, caption=f"工单 Ticket {state.ticket_id}")
    )


def scenario_html(scenario: Any) -> str:
    """A sweep scenario: its name, its plan (if its own) and the behaviour it changes."""
    from fireflow.sim.behaviour import Behaviour  # noqa: PLC0415

    default = Behaviour()
    rows = [
        [a.name, getattr(scenario.behaviour, a.name), getattr(default, a.name)]
        for a in attrs.fields(Behaviour)
        if getattr(scenario.behaviour, a.name) != getattr(default, a.name)
    ]
    plan = "" if scenario.plan is None else f" · plan {scenario.plan.id}"
    return page(
        heading(f"情景 Scenario {scenario.name}{plan}"),
        table_block(
            ["设定 setting", "值 value", "默认 default"],
            rows or [["(默认 defaults)", "", ""]],
        ),
    )


def calibration_html(calibration: Calibration) -> str:
    """The fitted settings (value, n, standard error, 95% interval) and those kept."""
    fitted = table_block(
        ["设定 setting", "估计 value", "n", "标准误 se", "95% 区间 interval"],
        calibration.rows(),
        caption=f"校准 Calibration: {calibration.tickets} 件隐患 tickets, "
        f"{calibration.events} 条事件 events",
    )
    kept = table_block(
        ["设定 setting", "无法从日志识别的原因 why the log does not identify it"],
        list(calibration.not_identified.items()),
        caption="保留默认 Kept from the base behaviour",
    )
    return page(fitted, kept)
