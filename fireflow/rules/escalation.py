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

A missed duty of an office is 不作为、慢作为 (六(四)): it goes to the party's supervisor
and the lead departments, who refer it to the efficiency office:

>>> t2 = Ticket("T2", plan)
>>> _ = t2.command("report", at, "town", community="C", town="T", category="fire_lane_vehicle",
...                subtype="private_car", location="inside", source="patrol")
>>> due = due_escalations(t2.state, at.add(days=4), plan)
>>> [(e.kind, e.rule, e.targets, e.accountable) for e in due]
[('slow', 'R-ACC-SLOW', ('housing', 'fire'), ('town',))]
"""

from __future__ import annotations

from datetime import datetime

import attrs

from fireflow.errors import NaiveDatetime
from fireflow.events import Actor
from fireflow.model import Referral, TicketState
from fireflow.plan import Plan
from fireflow.rules.duties import Duty, duties_at, routing_of

__all__ = ["Escalation", "due_escalations", "town_agencies"]


@attrs.frozen
class Escalation:
    """An escalation that is due: its kind, target agencies, rule and reason.

    ``accountable`` and ``persons`` name who is held to account (六(四)), where
    the case is one of accountability; ``case`` is the referral case
    (``slow``, ``wrong``, ``falsified``, ``concealed``) a ``refer`` event records.
    """

    kind: str
    targets: tuple[str, ...]
    rule: str
    reason_zh: str
    reason_en: str
    accountable: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    persons: tuple[str, ...] = attrs.field(default=(), kw_only=True)
    case: str | None = attrs.field(default=None, kw_only=True)


def town_agencies(plan: Plan) -> tuple[str, ...]:
    """The plan's agencies at town level (乡镇（街道）): who a concealment refers."""
    return tuple(a.id for a in plan.agencies if a.level == "town")


def _covered(
    referrals: tuple[Referral, ...],
    case: str,
    agency: str,
    person: str = "",
    since: datetime | None = None,
) -> bool:
    """Has a ``refer`` of ``case`` named the agency (and the person, if any) since ``since``?"""
    for r in referrals:
        if r.case != case or agency not in r.accountable:
            continue
        if person and person not in r.persons:
            continue
        if since is not None and datetime.fromisoformat(r.at) < since:
            continue
        return True
    return False


def _accountability(
    kind: str,
    case: str,
    plan: Plan,
    rule: str,
    zh: str,
    en: str,
    accountable: tuple[str, ...],
    persons: tuple[str, ...] = (),
    supervisor: str | None = None,
) -> Escalation:
    """A case for the lead departments (and the party's supervisor) to refer (转报)."""
    lead = plan.settings.accountability_lead
    targets = tuple(dict.fromkeys((*((supervisor,) if supervisor else ()), *lead)))
    office = plan.settings.accountability_office
    return Escalation(
        kind,
        targets,
        plan.cite(rule),
        f"{zh}，由牵头部门转报效能部门（{office}）督导问责",
        f"{en}: the lead departments refer it to the efficiency office ({office})",
        accountable=accountable,
        persons=persons,
        case=case,
    )


def _slow(state: TicketState, plan: Plan, duty: Duty, supervisor: str) -> Escalation | None:
    """A missed duty of a government party (不作为、慢作为), unless already referred."""
    owners = tuple(a for a in duty.agencies if not plan.is_property_company(a))
    owners = tuple(a for a in owners if not _covered(state.referrals, "slow", a, since=duty.since))
    if not owners:
        return None
    return _accountability(
        "slow",
        "slow",
        plan,
        "R-ACC-SLOW",
        f"逾期（{duty.due}）未{duty.label_zh}（不作为、慢作为）",
        f"{duty.label_en}: not done by {duty.due} (doing nothing, acting slowly)",
        owners,
        duty.persons,
        supervisor if supervisor not in owners else None,
    )


def _wrong(state: TicketState, plan: Plan) -> list[Escalation]:
    """Agencies whose refused attempts reach ``max_refused_attempts`` (乱作为)."""
    counts: dict[str, list[Actor]] = {}
    for a in state.refused_by:
        counts.setdefault(a.agency, []).append(a)
    out: list[Escalation] = []
    limit = plan.settings.max_refused_attempts
    for agency, actors in counts.items():
        if len(actors) < limit or _covered(state.referrals, "wrong", agency):
            continue
        persons = tuple(dict.fromkeys(a.person for a in actors if a.person))
        out.append(
            _accountability(
                "wrong",
                "wrong",
                plan,
                "R-ACC-WRONG",
                f"{agency} 在本隐患上被拒绝的越权操作 {len(actors)} 次（乱作为）",
                f"{agency} made {len(actors)} refused attempts on this ticket (acting wrongly)",
                (agency,),
                persons,
            )
        )
    return out


def _falsified(state: TicketState, plan: Plan) -> Escalation | None:
    """Signers of a sign-off a spot check reopened (弄虚作假), until every one is referred."""
    open_ = [
        s
        for s in state.falsified_signers
        if not _covered(state.referrals, "falsified", s.agency, s.person)
    ]
    if not open_:
        return None
    return _accountability(
        "falsified",
        "falsified",
        plan,
        "R-ACC-FALSIFIED",
        "已签字验收的问题经抽查发现整改不到位（弄虚作假）",
        "a sign-off the spot check found untrue (falsified acceptance)",
        tuple(dict.fromkeys(s.agency for s in open_)),
        tuple(dict.fromkeys(s.person for s in open_ if s.person)),
    )


def due_escalations(
    state: TicketState, at: datetime, plan: Plan, *, concealed: bool = False
) -> list[Escalation]:
    """Every escalation due for ``state`` at the aware instant ``at``, in a fixed order.

    * refusal (R-ESC-REFUSAL): a refused ticket not yet escalated goes to the
      plan's ``settings.refusal_report_to`` (公安、消防、城管) and the route's
      enforcers (等); exposure on the notice board (R-ESC-EXPOSE) is due too;
    * overdue (R-ESC-OVERDUE): past the deadline with no application for
      re-inspection (still rectifying, or ``rectified`` and not applied for:
      五(三) 整改完毕…立即申报复验) goes to the town (lead) and the supervising
      agency; ``mark_overdue`` acts on it from either state;
    * repeated failed re-checks: ``max_failed_rechecks`` or more.  Where the
      rectifier is a property company (``settings.property_companies``), its
      cooperation goes to ``settings.property_escalation_to`` (R-ESC-PROPERTY);
      where a government department rectified, it is a case of official
      accountability (R-ACC-SLOW, 推进不力、成效不明显);
    * spot-check findings (R-TKT-SPOTCHECK): a reopened ticket orders the
      responsible department to finish;
    * accountability (六(四) 由牵头部门转报效能部门进行督导问责): each goes to the lead
      departments (``settings.accountability_lead``; for a missed duty also the
      party's supervisor), names the accountable agencies and persons, and stays
      due until a ``refer`` event of its case names them, whatever happens to the
      hazard: a missed duty of a government party (``slow``, R-ACC-SLOW, from
      :func:`fireflow.rules.duties.duties_at`), ``max_refused_attempts`` refused
      attempts by one agency (``wrong``, R-ACC-WRONG), the signers of a sign-off
      a spot check reopened (``falsified``, R-ACC-FALSIFIED) and, when the caller
      passes ``concealed=True`` (found across tickets by
      :func:`fireflow.rules.accountability.concealment_cases`), the town
      (``concealed``, R-ACC-CONCEALED);
    * a referral whose outcome is not recorded goes to the efficiency office
      (``referral``, R-ESC-OFFICIAL).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime("at")
    out: list[Escalation] = []
    routing = routing_of(state, plan)
    recorded = state.routing
    if recorded is not None and state.state == "refused":
        out.append(
            Escalation(
                "refusal",
                tuple(dict.fromkeys((*plan.settings.refusal_report_to, *recorded.enforcers))),
                plan.cite("R-ESC-REFUSAL"),
                "劝阻无效拒不改正，立即反馈属地公安、消防、城管等部门",
                "refused after dissuasion: report to police, fire, urban management",
            )
        )
    if recorded is not None and state.state in ("refused", "escalated") and not state.exposed:
        out.append(
            Escalation(
                "expose",
                _exposers(plan, recorded.lead),
                plan.cite("R-ESC-EXPOSE"),
                "通过小区公示栏等方式曝光，发动业主共同督促整改",
                "expose on the community notice board and mobilise owners",
            )
        )
    if (
        recorded is not None
        and state.state in ("rectifying", "overdue", "rectified")
        and state.deadline is not None
        and plan.calendar.is_late(state.deadline, at)
    ):
        out.append(
            Escalation(
                "overdue",
                tuple(dict.fromkeys((recorded.lead, recorded.supervisor))),
                plan.cite("R-ESC-OVERDUE"),
                f"逾期（期限 {state.deadline}）未申报复验",
                f"past the deadline {state.deadline} without applying for re-inspection",
            )
        )
    if (
        recorded is not None
        and state.failed_rechecks >= plan.settings.max_failed_rechecks
        and state.state not in ("passed", "signed_off", "archived")
    ):
        rectifier = state.rectified_by or recorded.rectifier
        n = state.failed_rechecks
        if plan.is_property_company(rectifier):
            out.append(
                Escalation(
                    "property",
                    plan.settings.property_escalation_to,
                    plan.cite("R-ESC-PROPERTY"),
                    f"复查{n}次不合格，物业企业配合落实不力",
                    f"{n} failed re-checks: the property company cooperates poorly",
                    accountable=(rectifier,),
                )
            )
        elif not _covered(state.referrals, "slow", rectifier):
            out.append(
                _accountability(
                    "official",
                    "slow",
                    plan,
                    "R-ACC-SLOW",
                    f"{rectifier} 整改复查{n}次不合格（推进不力、成效不明显）",
                    f"{n} failed re-checks of work by {rectifier} (weak work, little effect)",
                    (rectifier,),
                    (),
                    recorded.supervisor,
                )
            )
    if recorded is not None and state.reopened and state.state == "rectifying":
        out.append(
            Escalation(
                "spot_check",
                (recorded.rectifier, recorded.lead),
                plan.cite("R-TKT-SPOTCHECK"),
                "抽查发现整治不彻底、整改不到位，责令相关责任部门整改到位",
                "spot check found rectification incomplete: ordered to finish",
            )
        )
    if routing is not None:
        for duty in duties_at(state, at, plan):
            if duty.late and duty.kind != "decide_referral":
                slow = _slow(state, plan, duty, routing.supervisor)
                if slow is not None:
                    out.append(slow)
    out += _wrong(state, plan)
    falsified = _falsified(state, plan)
    if falsified is not None:
        out.append(falsified)
    if concealed:
        towns = town_agencies(plan) or ((routing.lead,) if routing is not None else ())
        if towns and not any(_covered(state.referrals, "concealed", a) for a in towns):
            out.append(
                _accountability(
                    "concealed",
                    "concealed",
                    plan,
                    "R-ACC-CONCEALED",
                    f"{state.town}{state.community}的自查和乡镇检查均未报告、区级抽查首先发现的"
                    f"隐患（隐瞒不报）",
                    f"first found by the district spot check in {state.community} ({state.town}), "
                    "where no self-inspection or town inspection reported it (concealment)",
                    towns,
                )
            )
    office = plan.settings.accountability_office
    for r in state.referrals:
        if r.open:
            out.append(
                Escalation(
                    "referral",
                    (office,),
                    plan.cite("R-ESC-OFFICIAL"),
                    f"牵头部门已转报（{r.event_id}），待效能部门督导问责并记录结果",
                    f"referred ({r.event_id}): the efficiency office is to decide and record it",
                    accountable=r.accountable,
                    persons=r.persons,
                    case=r.case,
                )
            )
    return out


def _exposers(plan: Plan, lead: str) -> tuple[str, ...]:
    """Who exposes on the notice board: the route's lead, then the plan's ``expose`` agencies."""
    entry = plan.authority_for("expose")
    return tuple(dict.fromkeys((lead, *(entry.agencies if entry else ()))))
