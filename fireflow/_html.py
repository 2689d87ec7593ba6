"""Small HTML tables for notebooks (``_repr_html_``): every piece of text escaped here.

Jupyter shows an object's ``_repr_html_()``.  Plans, ticket states,
scenarios and calibrations use the builders of this module, which take plain
values and escape every one of them (:func:`html.escape`, quotes included),
so a name or note in a plan file can never become markup.  The only markup is
the fixed tags written below.

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
from typing import TYPE_CHECKING, Any

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


def escape(value: Any) -> str:
    """The text of ``value`` for HTML (``&``, ``<``, ``>``, both quotes escaped).

    >>> escape('"<script>"'), escape(None), escape(2.50)
    ('&quot;&lt;script&gt;&quot;', '', '2.5')
    """
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        value = value.isoformat()
    elif isinstance(value, float):
        value = f"{value:.4g}"
    elif isinstance(value, tuple | list):
        value = "、".join(str(v) for v in value)
    return html.escape(str(value), quote=True)


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]], *, caption: str = "") -> str:
    """A ``<table>`` of escaped cells (the header and the caption escaped too)."""
    parts = ['<table class="fireflow">']
    if caption:
        parts.append(f"<caption>{escape(caption)}</caption>")
    parts.append("<thead><tr>")
    parts.extend(f"<th>{escape(h)}</th>" for h in header)
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>")
        parts.extend(f"<td>{escape(c)}</td>" for c in row)
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def heading(text: str, level: int = 4) -> str:
    """An escaped heading (``<h4>`` by default)."""
    level = min(max(int(level), 1), 6)
    return f"<h{level}>{escape(text)}</h{level}>"


def _div(*parts: str) -> str:
    return '<div class="fireflow">' + "".join(parts) + "</div>"


def plan_html(plan: Plan) -> str:
    """A plan: its name, its phases, its report deadlines and its categories."""
    title = f"{plan.name.zh} · {plan.name.en} ({plan.id}, {plan.year}, {plan.timezone})"
    phases = table(
        ["阶段 phase", "名称", "name", "开始 start", "结束 end", "条款 clause"],
        [[p.id, p.name.zh, p.name.en, p.start, p.end, p.clause] for p in plan.phases],
        caption="工作步骤 Phases",
    )
    try:
        deadlines = table(
            ["报送 report", "名称", "截止 due", "报送单位 senders", "条款 rule"],
            [[d.id, d.name_zh, d.due, d.senders, d.rule] for d in plan.deadlines()],
            caption="报送节点 Report deadlines",
        )
    except FireflowError as exc:  # a year with no holiday data: say so, show the rest
        deadlines = f"<p>{escape(exc)}</p>"
    categories = table(
        ["类别 category", "名称", "name", "细类 subtypes"],
        [[c.id, c.name.zh, c.name.en, tuple(s.id for s in c.subtypes)] for c in plan.categories],
        caption="整治重点 Hazard categories",
    )
    return _div(heading(title), phases, deadlines, categories)


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
    return table(["字段 field", "值 value"], rows, caption=f"工单 Ticket {state.ticket_id}")


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
    return _div(
        heading(f"情景 Scenario {scenario.name}{plan}"),
        table(
            ["设定 setting", "值 value", "默认 default"],
            rows or [["(默认 defaults)", "", ""]],
        ),
    )


def calibration_html(calibration: Calibration) -> str:
    """The fitted settings (value, n, standard error, 95% interval) and those kept."""
    fitted = table(
        ["设定 setting", "估计 value", "n", "标准误 se", "95% 区间 interval"],
        calibration.rows(),
        caption=f"校准 Calibration: {calibration.tickets} 件隐患 tickets, "
        f"{calibration.events} 条事件 events",
    )
    kept = table(
        ["设定 setting", "无法从日志识别的原因 why the log does not identify it"],
        list(calibration.not_identified.items()),
        caption="保留默认 Kept from the base behaviour",
    )
    return _div(fitted, kept)
