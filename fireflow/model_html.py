"""A ticket's state as an HTML table in a notebook (``TicketState._repr_html_``).

Built from :mod:`fireflow._html`'s blocks, so every value is escaped; the state is
shown with its Chinese label from the lifecycle declaration (:mod:`fireflow.states`).

>>> from fireflow.model import TicketState
>>> out = ticket_html(TicketState(ticket_id="T-1", state="reported", community="<b>x</b>"))
>>> "&lt;b&gt;x&lt;/b&gt;" in out, "工单 Ticket T-1" in out
(True, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fireflow._html import page, table_block
from fireflow.states import LIFECYCLE

if TYPE_CHECKING:
    from fireflow.model import TicketState

__all__ = ["ticket_html"]

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
