"""A ticket's history in plain Chinese and English, each step with its rules.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("T1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", community="C", town="T", category="fire_lane_vehicle",
...               subtype="private_car", location="inside", source="patrol")
>>> print(explain(t.events, plan)[0].splitlines()[0])
#1 2022-03-21 10:00 乡镇（街道）政府: 登记隐患 (Record a hazard) → 已登记
"""

from __future__ import annotations

from collections.abc import Iterable

import pendulum

from fireflow.events import Event
from fireflow.plan import Plan
from fireflow.states import LIFECYCLE, compiled_table

__all__ = ["explain"]


def explain(events: Iterable[Event], plan: Plan) -> list[str]:
    """One paragraph per event: who did what, the new state, and why (rules, clauses)."""
    table = compiled_table()
    state = LIFECYCLE.initial
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
        else:
            t = LIFECYCLE.transition(e.kind)
            state = table.get((state, e.kind), state)
            head = f"#{e.seq} {when} {who}: {t.zh} ({t.en}) → {LIFECYCLE.state(state).zh}"
        lines = [head]
        if "deadline" in e.payload:
            lines.append(f"    整改期限 deadline: {e.payload['deadline']}")
        for rid in e.rules:
            try:
                rule = plan.rule(rid)
            except Exception:
                lines.append(f"    {rid}")
                continue
            lines.append(f"    {rid} {rule.clause}: {rule.text_zh}")
            lines.append(f"        {rule.gloss_en}")
        out.append("\n".join(lines))
    return out
