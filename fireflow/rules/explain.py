"""A ticket's history in plain Chinese and English, each step with its rules.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("T1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", community="C", town="T", category="fire_lane_vehicle",
...               subtype="private_car", location="inside", source="patrol")
>>> first = explain(t.events, plan)[0].splitlines()
>>> print(first[0])
#1 2022-03-21 10:00 乡镇（街道）政府: 登记隐患 (Record a hazard) → 已登记
>>> print(first[1][:62])
    方案 plan: 福州市长乐区物业小区消防通道专项联合整治行动方案 (changle-2022, 2022), 版本
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pendulum

from fireflow.events import Event
from fireflow.model import TicketState, plan_digest
from fireflow.plan import Plan
from fireflow.rules.duties import describe_duties, duties_at
from fireflow.rules.escalation import due_escalations
from fireflow.states import LIFECYCLE, RECORD_ONLY_KINDS, compiled_table

__all__ = ["explain"]


def _plan_line(plan: Plan, version: str, payload: Any, id_key: str, digest_key: str) -> list[str]:
    line = f"    方案 plan: {plan.name.zh} ({plan.id}, {plan.year}), 版本 version {version}"
    recorded = (payload.get(id_key, ""), payload.get(digest_key, ""))
    if not recorded[1]:
        return [line, "    (此记录未绑定方案 history written before plans were recorded)"]
    if recorded != (plan.id, version):
        return [
            line,
            f"    记录所依据的方案 recorded under: {recorded[0]}, 版本 version {recorded[1]}",
        ]
    return [line]


def explain(
    events: Iterable[Event],
    plan: Plan,
    *,
    state: TicketState | None = None,
    at: datetime | None = None,
) -> list[str]:
    """One paragraph per event: who did what, the new state, and why (rules, clauses).

    The ``report`` paragraph names the plan and its version (the digest of its
    rules, :func:`fireflow.model.plan_digest`), and says so when the history
    was recorded under another version or under none.  A referral (``refer``)
    shows its case, who is held to account and why; its outcome
    (``decide_referral``) the outcome.  Given the ticket's ``state`` (the fold
    of ``events``) and an aware instant ``at``, a last paragraph lists what is
    due at that instant: each duty (who, by when, the rule:
    :func:`fireflow.rules.duties.duties_at`) and each escalation due with the
    agencies and persons it holds to account.

    >>> import pendulum
    >>> from fireflow import load_plan
    >>> from fireflow.ticket import Ticket
    >>> plan = load_plan("changle-2022")
    >>> t = Ticket("T1", plan)
    >>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    >>> _ = t.command("report", at, "town", community="C", town="T", category="evacuation_blocked",
    ...               subtype="goods", location="inside", source="patrol")
    >>> print(explain(t.events, plan, state=t.state, at=at.add(days=4))[-1].replace(") ", ")\\n"))
    待办 due at 2022-03-25 10:00:
        乡镇（街道）政府: 分派责任并限定整改期限 (route the hazard and set its deadline)
    期限 due 2022-03-24 已逾期 late [R-DUTY-ROUTE]
        升级 escalation slow → housing, fire: 问责 accountable town [R-ACC-SLOW]
    """
    table = compiled_table()
    version = ""
    current = LIFECYCLE.initial
    out: list[str] = []
    for e in events:
        local = pendulum.instance(e.at).in_timezone(plan.timezone)
        when = local.strftime("%Y-%m-%d %H:%M")
        try:
            who = plan.agency(e.actor.agency).name.zh
        except Exception:
            who = e.actor.agency
        if e.actor.person:
            who += f"（{e.actor.person}）"
        if e.kind == "attempt_refused":
            head = (
                f"#{e.seq} {when} {who}: 被拒绝的操作 refused attempt ({e.payload.get('trigger')})"
            )
        elif e.kind in RECORD_ONLY_KINDS:
            zh, en = RECORD_ONLY_KINDS[e.kind]
            head = f"#{e.seq} {when} {who}: {zh} ({en})"
        else:
            t = LIFECYCLE.transition(e.kind)
            current = table.get((current, e.kind), current)
            head = f"#{e.seq} {when} {who}: {t.zh} ({t.en}) → {LIFECYCLE.state(current).zh}"
        lines = [head]
        if e.kind in ("report", "plan_migrated"):
            version = version or plan_digest(plan)
            if e.kind == "report":
                lines += _plan_line(plan, version, e.payload, "plan_id", "plan_digest")
            else:
                lines.append(
                    f"    自 from {e.payload.get('from_id')} {e.payload.get('from_digest')}"
                    f" 至 to {e.payload.get('to_id')} {e.payload.get('to_digest')}"
                )
                lines += _plan_line(plan, version, e.payload, "to_id", "to_digest")[1:]
            if e.payload.get("reason") and e.kind == "plan_migrated":
                lines.append(f"    理由 reason: {e.payload['reason']}")
        if "deadline" in e.payload:
            lines.append(f"    整改期限 deadline: {e.payload['deadline']}")
        if e.kind == "refer":
            p = e.payload
            persons = "、".join(p.get("persons", ())) or "-"
            lines.append(
                f"    问责情形 case: {p.get('case')}; 被问责单位 accountable: "
                f"{', '.join(p.get('accountable', ()))}; 人员 persons: {persons}"
            )
            lines.append(f"    理由 reason: {p.get('reason_zh', '')}")
        elif e.kind == "decide_referral":
            referral, outcome = e.payload.get("referral"), e.payload.get("outcome")
            lines.append(f"    转报 referral {referral}: 结果 outcome {outcome}")
        for rid in e.rules:
            try:
                rule = plan.rule(rid)
            except Exception:
                lines.append(f"    {rid}")
                continue
            lines.append(f"    {rid} {rule.clause}: {rule.text_zh}")
            lines.append(f"        {rule.gloss_en}")
        out.append("\n".join(lines))
    if state is not None and at is not None:
        out.append(_due_paragraph(state, at, plan))
    return out


def _due_paragraph(state: TicketState, at: datetime, plan: Plan) -> str:
    """What is due at ``at``: the duties, then the escalations with who is held to account."""
    local = pendulum.instance(at).in_timezone(plan.timezone).strftime("%Y-%m-%d %H:%M")
    lines = [f"待办 due at {local}:"]
    lines += [f"    {line}" for line in describe_duties(duties_at(state, at, plan), plan)]
    for esc in due_escalations(state, at, plan):
        held = ""
        if esc.accountable:
            held = f": 问责 accountable {', '.join(esc.accountable)}"
            if esc.persons:
                held += f"（{'、'.join(esc.persons)}）"
        lines.append(
            f"    升级 escalation {esc.kind} → {', '.join(esc.targets)}{held} [{esc.rule}]"
        )
    if len(lines) == 1:
        lines.append("    无 nothing due")
    return "\n".join(lines)
