"""A plan as HTML tables in a notebook (``Plan._repr_html_``): name, phases, deadlines, categories.

The tables are built from :mod:`fireflow._html`'s blocks, so every name and note of
the plan file is escaped.

>>> from fireflow.plan import load_plan
>>> out = plan_html(load_plan("changle-2022"))
>>> "工作步骤 Phases" in out, "<script" in out
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fireflow._html import heading, page, paragraph, table_block
from fireflow.errors import FireflowError

if TYPE_CHECKING:
    from fireflow.plan.plan import Plan

__all__ = ["plan_html"]


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
        deadlines = paragraph(str(exc))
    categories = table_block(
        ["类别 category", "名称", "name", "细类 subtypes"],
        [[c.id, c.name.zh, c.name.en, tuple(s.id for s in c.subtypes)] for c in plan.categories],
        caption="整治重点 Hazard categories",
    )
    return page(heading(title), phases, deadlines, categories)
