"""Escalation and accountability (四(二), 六(二)(四)): what is due at a moment.

The caller supplies the moment; the library never reads the clock.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("T1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", community="C", town="T", category="fire_lane_vehicle",
...               subtype="private_car", location="inside", source="patrol")
>>> _ = t.command("route", at, "town"); _ = t.command("set_deadline", at, "town")
>>> [e.rule for e in due_escalations(t.state, at.add(days=5), plan)]
['R-ESC-OVERDUE']
"""

from __future__ import annotations

from datetime import datetime

import attrs

from fireflow.errors import NaiveDatetime
from fireflow.model import TicketState
from fireflow.plan import Plan

__all__ = ["Escalation", "due_escalations"]


@attrs.frozen
class Escalation:
    """An escalation that is due: its kind, target agencies, rule and reason."""

    kind: str
    targets: tuple[str, ...]
    rule: str
    reason_zh: str
    reason_en: str


def due_escalations(state: TicketState, at: datetime, plan: Plan) -> list[Escalation]:
    """Every escalation due for ``state`` at the aware instant ``at``, in a fixed order.

    * refusal (R-ESC-REFUSAL): a refused ticket not yet escalated goes to the
      plan's ``settings.refusal_report_to`` (公安、消防、城管) and the route's
      enforcers (等); exposure on the notice board (R-ESC-EXPOSE) is due too;
    * overdue (R-ESC-OVERDUE): past the deadline with no application for
      re-inspection (still rectifying, or ``rectified`` and not applied for:
      五(三) 整改完毕…立即申报复验) goes to the town (lead) and the supervising
      agency; ``mark_overdue`` acts on it from either state;
    * repeated failed re-checks (R-ESC-PROPERTY): ``max_failed_rechecks`` or
      more: the property company's cooperation goes to the plan's
      ``settings.property_escalation_to`` (Changle: ``housing`` and ``fire``);
    * spot-check findings (R-TKT-SPOTCHECK, R-ESC-OFFICIAL): a reopened ticket
      orders the responsible department to finish, and a ticket that had been
      signed off as rectified is referred to the efficiency office (弄虚作假).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    out: list[Escalation] = []
    routing = state.routing
    if routing is None:
        return out
    if state.state == "refused":
        out.append(
            Escalation(
                "refusal",
                tuple(dict.fromkeys((*plan.settings.refusal_report_to, *routing.enforcers))),
                plan.cite("R-ESC-REFUSAL"),
                "劝阻无效拒不改正，立即反馈属地公安、消防、城管等部门",
                "refused after dissuasion: report to police, fire, urban management",
            )
        )
    if state.state in ("refused", "escalated") and not state.exposed:
        out.append(
            Escalation(
                "expose",
                _exposers(plan, routing.lead),
                plan.cite("R-ESC-EXPOSE"),
                "通过小区公示栏等方式曝光，发动业主共同督促整改",
                "expose on the community notice board and mobilise owners",
            )
        )
    if (
        state.state in ("rectifying", "overdue", "rectified")
        and state.deadline is not None
        and plan.calendar.is_late(state.deadline, at)
    ):
        out.append(
            Escalation(
                "overdue",
                tuple(dict.fromkeys((routing.lead, routing.supervisor))),
                plan.cite("R-ESC-OVERDUE"),
                f"逾期（期限 {state.deadline}）未申报复验",
                f"past the deadline {state.deadline} without applying for re-inspection",
            )
        )
    if state.failed_rechecks >= plan.settings.max_failed_rechecks and state.state not in (
        "passed",
        "signed_off",
        "archived",
    ):
        out.append(
            Escalation(
                "property",
                plan.settings.property_escalation_to,
                plan.cite("R-ESC-PROPERTY"),
                f"复查{state.failed_rechecks}次不合格，物业企业配合落实不力",
                f"{state.failed_rechecks} failed re-checks: the property company cooperates poorly",
            )
        )
    if state.reopened and state.state == "rectifying":
        out.append(
            Escalation(
                "spot_check",
                (routing.rectifier, routing.lead),
                plan.cite("R-TKT-SPOTCHECK"),
                "抽查发现整治不彻底、整改不到位，责令相关责任部门整改到位",
                "spot check found rectification incomplete: ordered to finish",
            )
        )
    if state.reopened_after_signoff and state.state == "rectifying":
        out.append(
            Escalation(
                "official",
                (plan.settings.accountability_office,),
                plan.cite("R-ESC-OFFICIAL"),
                "已验收问题经抽查仍未整改到位，由牵头部门转报效能部门督导问责",
                "signed-off work found incomplete: referred to the efficiency office",
            )
        )
    return out


def _exposers(plan: Plan, lead: str) -> tuple[str, ...]:
    """Who exposes on the notice board: the route's lead, then the plan's ``expose`` agencies."""
    entry = plan.authority_for("expose")
    return tuple(dict.fromkeys((lead, *(entry.agencies if entry else ()))))
