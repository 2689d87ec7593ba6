"""Accountability across tickets (六(四) 督导问责): concealment, and a district's escalations.

六(四): 对于在此次专项整治工作中工作推进不力、成效不明显，存在不作为、慢作为、乱作为、
弄虚作假、隐瞒不报的，由牵头部门转报效能部门进行督导问责.  Most cases are read from one
ticket (:func:`fireflow.rules.escalation.due_escalations`); concealment (隐瞒不报) needs
the other tickets of the community: a hazard first found by the district spot check
(a report with source ``spot_check``) in a community where neither the self-inspection
nor the town's inspection (``settings.concealment_sources``) reported that category
before it (R-ACC-CONCEALED, a default reading).

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> at = pendulum.datetime(2022, 8, 1, 10, tz="Asia/Shanghai")
>>> found = dict(community="金峰小区", town="金峰镇", location="inside", source="spot_check")
>>> a = Ticket("A", plan)
>>> _ = a.command("report", at, "housing", category="fire_lane_vehicle", subtype="goods", **found)
>>> [(c.ticket_id, c.accountable, c.rule) for c in concealment_cases({"A": a.state}, plan)]
[('A', ('town',), 'R-ACC-CONCEALED')]
>>> [e.kind for e in district_escalations({"A": a.state}, at, plan)["A"]]
['concealed']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from fireflow.model import TicketState
from fireflow.plan import Plan
from fireflow.rules.duties import routing_of
from fireflow.rules.escalation import Escalation, due_escalations, town_agencies

__all__ = ["ConcealmentCase", "concealment_cases", "district_escalations"]


@attrs.frozen
class ConcealmentCase:
    """A hazard the district spot check found first, in a community that reported none of it."""

    ticket_id: str
    town: str
    community: str
    category: str
    accountable: tuple[str, ...]
    """The agencies held to account: the plan's town-level agencies (乡镇（街道）)."""
    rule: str
    reason_zh: str
    reason_en: str


def _values(states: Mapping[str, TicketState] | Iterable[TicketState]) -> list[TicketState]:
    return list(states.values() if isinstance(states, Mapping) else states)


def concealment_cases(
    states: Mapping[str, TicketState] | Iterable[TicketState], plan: Plan
) -> list[ConcealmentCase]:
    """Every concealment case (隐瞒不报, R-ACC-CONCEALED) among ``states``, in their order.

    A ticket reported with source ``spot_check`` is a case when no ticket of the
    same town and community, of the same category, was reported with a source in
    ``settings.concealment_sources`` (self-inspection, town inspection) at or
    before it.  Pure: it reads the states only; one pass to index, one to check.
    """
    items = _values(states)
    sources = frozenset(plan.settings.concealment_sources)
    first_seen: dict[tuple[str, str, str], datetime] = {}
    for st in items:
        if st.source in sources and st.reported_at is not None:
            key = (st.town, st.community, st.category)
            seen = first_seen.get(key)
            if seen is None or st.reported_at < seen:
                first_seen[key] = st.reported_at
    rule = plan.cite("R-ACC-CONCEALED")
    towns = town_agencies(plan)
    out: list[ConcealmentCase] = []
    for st in items:
        if st.source != "spot_check" or st.reported_at is None:
            continue
        seen = first_seen.get((st.town, st.community, st.category))
        if seen is not None and seen <= st.reported_at:
            continue
        routing = routing_of(st, plan)
        accountable = towns or ((routing.lead,) if routing is not None else ())
        out.append(
            ConcealmentCase(
                st.ticket_id,
                st.town,
                st.community,
                st.category,
                accountable,
                rule,
                f"{st.town}{st.community}的{st.category}类隐患由区级抽查首先发现，"
                "自查和乡镇检查均未报告（隐瞒不报）",
                f"{st.category} in {st.community} ({st.town}) first found by the district "
                "spot check; neither self-inspection nor the town's inspection reported it",
            )
        )
    return out


def district_escalations(
    states: Mapping[str, TicketState] | Iterable[TicketState],
    at: datetime,
    plan: Plan,
    *,
    town: str | None = None,
) -> dict[str, list[Escalation]]:
    """:func:`~fireflow.rules.escalation.due_escalations` of many tickets, concealment included.

    The escalations due at ``at`` for every ticket of ``states`` (a town's with
    ``town``), by ticket id, in the order of ``states``; tickets with none are
    left out.  Concealment is found across all of ``states``
    (:func:`concealment_cases`), so pass the whole district's tickets.
    """
    items = _values(states)
    concealed = {c.ticket_id for c in concealment_cases(items, plan)}
    out: dict[str, list[Escalation]] = {}
    for st in items:
        if town is not None and st.town != town:
            continue
        due = due_escalations(st, at, plan, concealed=st.ticket_id in concealed)
        if due:
            out[st.ticket_id] = due
    return out
