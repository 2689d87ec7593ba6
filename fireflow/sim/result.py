"""What a simulation run gives back: timelines, KPIs, the event log, tables and plots.

Everything a notebook wants is a :mod:`pandas` DataFrame built on first use
(pandas and matplotlib are the ``sim`` extra: ``pip install 'fireflow[sim]'``).
:attr:`SimResult.kpis` is a plain ``dict`` of numbers with stable keys, the
row a Monte Carlo sweep collects; :data:`KPI_LABELS` names each in Chinese
and English.

KPI definitions (all counts are tickets unless said otherwise):

* ``rectified_by_dossier_share``: of the tickets recorded by the end of the
  dossier due day (R-DUE-DOSSIER, 07-15 in Changle), the share that were
  archived (re-checked, signed off and filed: 一区一档) at that moment.
* ``overdue_tickets``: tickets marked overdue at least once (R-ESC-OVERDUE);
  ``overdue_at_dossier``: in state ``overdue`` at the end of the dossier due day.
* ``escalations``: ``escalate`` events; :meth:`SimResult.escalation_table`
  lists every escalation with its rule and target agencies, both the events
  (refusal, overdue, exposure) and the notices that change no state
  (R-ESC-PROPERTY after repeated failed re-checks, R-TKT-SPOTCHECK after a
  spot check reopens a ticket) and the accountability cases (via ``refer`` when
  a lead department referred them, else ``notice``), all as
  :func:`~fireflow.rules.escalation.due_escalations` reported them.
* ``spot_check_coverage``: communities visited / communities; the plan asks for
  at least ``spot_check_required`` (ceil of 10%).
* ``reports_due``, ``reports_late``, ``reports_missing``: report obligations
  (:func:`fireflow.rules.reporting.obligations`: the ledger per community, the
  others per town) and their state at the end of the campaign
  (:func:`fireflow.rules.reporting.status`: late = sent after the end of the
  due day); each late or missing one is also a notice
  (:func:`fireflow.rules.reporting.report_escalations`): R-ESC-OFFICIAL for a
  town's report, R-ESC-PROPERTY for a property company's ledger.
* ``duties_missed``: duties past their day (an office's step past its
  ``settings.duty_days`` period, R-DUTY-*, noticed on its first late active
  day; a rectification past its deadline, at the overdue mark), by the kind of
  the party that owed it (``_town``, ``_department``, ``_property``);
  ``accountability_cases``: cases of 六(四) due (R-ACC-SLOW, R-ACC-FALSIFIED,
  R-ACC-CONCEALED), each once; ``referrals``: ``refer`` events (``_town``,
  ``_department``: of the cases referred, those naming one); ``referrals_decided``:
  ``decide_referral`` events.  :meth:`SimResult.accountability_table` gives them
  per party.
* ``notices_reports_official``: the towns' reports late or missing (R-ESC-OFFICIAL,
  to the efficiency office through the lead departments);
  ``notices_reports_property``: the property companies' ledgers late or missing
  (R-ESC-PROPERTY, to housing and fire).
* spot-check KPIs come from the plan's 双随机 draw
  (:func:`fireflow.rules.spotcheck.draw`) and the reopen orders of
  :func:`fireflow.rules.spotcheck.findings_to_commands`.
"""

from __future__ import annotations

import functools
import math
import os
from array import array
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from fireflow import output
from fireflow.errors import InvalidArgument
from fireflow.events import Event, event_to_data
from fireflow.plan import Deadline, Plan
from fireflow.sim.behaviour import Behaviour
from fireflow.sim.extra import require_sim_extra
from fireflow.sim.population import Population
from fireflow.states import STATES
from fireflow.ticket import TicketState

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "KPI_LABELS",
    "AccountabilityRecord",
    "EscalationRecord",
    "ReportRecord",
    "SimResult",
    "SpotCheckRecord",
    "compare",
    "format_kpi",
    "require_sim_extra",
]

#: KPI key -> (Chinese, English) label, in display order.
KPI_LABELS: dict[str, tuple[str, str]] = {
    "communities": ("小区数", "Communities"),
    "towns": ("乡镇（街道）数", "Towns"),
    "companies": ("物业服务企业数", "Property companies"),
    "stalling_companies": ("消极拖延的物业企业", "Stalling property companies"),
    "inspections": ("乡镇检查小区次数", "Town inspections of communities"),
    "inspections_third_party": ("其中第三方检查", "of which by third-party experts"),
    "tickets": ("登记隐患", "Hazards recorded (tickets)"),
    "events": ("事件数", "Events in the log"),
    "archived": ("年末已整改归档", "Filed at the end"),
    "archived_share": ("年末整改归档率", "Share filed at the end"),
    "open_at_end": ("年末未办结", "Still open at the end"),
    "dossier_tickets": ("档案报送日前登记", "Recorded by the dossier due day"),
    "rectified_by_dossier": ("档案报送日前整改归档", "Filed by the dossier due day"),
    "rectified_by_dossier_share": ("按期整改归档率", "Share filed by the dossier due day"),
    "overdue_tickets": ("曾逾期隐患", "Tickets ever overdue"),
    "overdue_at_dossier": ("档案报送日仍逾期", "Overdue at the dossier due day"),
    "refusals": ("拒不整改", "Refusals after dissuasion"),
    "escalations": ("移交执法", "Escalations (escalate events)"),
    "exposures": ("公示曝光", "Exposures on the notice board"),
    "punishments": ("依法查处", "Investigated and punished"),
    "notices_property": ("物业企业配合不力", "Property company cooperating poorly"),
    "notices_spot_check": ("抽查责令整改", "Ordered to finish after a spot check"),
    "notices_official": (
        "部门整改多次复查不合格（推进不力）",
        "Department's work failing re-checks repeatedly (R-ACC-SLOW)",
    ),
    "notices_reports_official": (
        "乡镇报送逾期或未报（转效能部门）",
        "Towns' reports late or missing (to the efficiency office, R-ESC-OFFICIAL)",
    ),
    "notices_reports_property": (
        "物业企业台账逾期或未报（住建、消防）",
        "Property companies' ledgers late or missing (to housing and fire, R-ESC-PROPERTY)",
    ),
    "duties_missed": ("逾期未履职（次）", "Duties missed (past their day)"),
    "duties_missed_town": ("其中乡镇（街道）", "of which by towns"),
    "duties_missed_department": ("其中部门", "of which by departments"),
    "duties_missed_property": ("其中物业企业", "of which by property companies"),
    "accountability_cases": ("应督导问责情形", "Accountability cases due (六(四))"),
    "referrals": ("牵头部门转报效能部门", "Referred by the lead departments (refer)"),
    "referrals_town": ("其中问责乡镇（街道）", "of which naming a town"),
    "referrals_department": ("其中问责部门", "of which naming a department"),
    "referrals_decided": ("效能部门已记录结果", "Referral outcomes recorded (decide_referral)"),
    "recheck_failures": ("复查不合格", "Failed re-checks"),
    "mean_days_to_archive": ("平均办结天数", "Mean days from report to filing"),
    "spot_check_required": ("应抽查小区（不低于10%）", "Communities to spot-check (>= 10%)"),
    "spot_check_communities": ("已抽查小区", "Communities spot-checked"),
    "spot_check_coverage": ("抽查覆盖率", "Spot-check coverage"),
    "spot_check_tickets": ("抽查复核的已办结隐患", "Closed tickets checked on site"),
    "spot_check_reopened": ("抽查发现整改不到位", "Reopened by the spot check"),
    "spot_check_new": ("抽查新发现隐患", "New hazards found by the spot check"),
    "reports_due": ("应报送材料（份）", "Reports due (obligations)"),
    "reports_late": ("逾期报送（份）", "Reports sent late"),
    "reports_missing": ("年末仍未报送（份）", "Reports still missing at the end"),
    "reports_late_share": ("逾期报送率", "Share of reports late or missing"),
}

#: KPIs that are means (shown with one decimal even when whole).
_FRACTIONAL = {"mean_days_to_archive"}

_SHARES = {
    "archived_share",
    "rectified_by_dossier_share",
    "spot_check_coverage",
    "reports_late_share",
}


class EscalationRecord(NamedTuple):
    """An escalation as the rules reported it, and how the run acted on it.

    ``ticket`` is the ticket's index (-1 for a report), ``subject`` the ticket id
    or ``report@town[/community]``.  ``via`` is ``event`` (an ``escalate`` or
    ``expose`` event was recorded), ``refer`` (an accountability case a lead
    department referred: a ``refer`` event was recorded) or ``notice`` (due, but
    no event follows from it: R-ESC-PROPERTY, R-TKT-SPOTCHECK, R-ESC-OFFICIAL, a
    case nobody referred).
    """

    day: int
    ticket: int
    subject: str
    kind: str
    rule: str
    targets: tuple[str, ...]
    via: str


class AccountabilityRecord(NamedTuple):
    """A missed duty, an accountability case or a referral's outcome (六(四)), as the run saw it.

    ``what`` is ``missed`` (a duty past its day: ``kind`` is the duty of
    :data:`fireflow.rules.duties.LIFECYCLE_DUTIES`, ``parties`` who owed it,
    ``rule`` its rule: R-DUTY-* for an office, R-TKT-DEADLINE for the rectifier),
    ``case`` (an accountability case due: ``kind`` is the escalation kind
    ``slow``, ``official``, ``falsified`` or ``concealed``, ``parties`` the
    accountable agencies, ``referred`` whether a lead department referred it) or
    ``decided`` (the efficiency office recorded a referral's outcome; ``kind``
    is the referral's case).  ``ticket`` is the ticket's index, as in
    :class:`EscalationRecord`.
    """

    day: int
    ticket: int
    subject: str
    what: str
    kind: str
    rule: str
    parties: tuple[str, ...]
    referred: bool


class ReportRecord(NamedTuple):
    """One report of the plan: obligations, and how many were on time, late, missing."""

    id: str
    name_zh: str
    name_en: str
    due: date
    senders: int
    on_time: int
    late: int
    missing: int
    rules: tuple[str, ...]


class SpotCheckRecord(NamedTuple):
    """One spot-check visit: closed tickets checked, reopened, new hazards, the team."""

    day: int
    community: int
    checked: int
    reopened: int
    found: int
    team: tuple[str, ...]


@attrs.define(eq=False, slots=False, repr=False, kw_only=True)
class SimResult:
    """The outcome of :func:`~fireflow.sim.simulate`.

    * :attr:`kpis`: the KPIs as a dict (see :data:`KPI_LABELS`), :meth:`kpi_table`
      as a DataFrame with labels;
    * :attr:`timeline`: date x state counts (end of each day);
      :attr:`timeline_by_town`: the same per town (a (date, town) MultiIndex);
    * :attr:`events`: the event log (when kept), :meth:`log_digest` its SHA-256;
    * :attr:`tickets`: every ticket's final :class:`~fireflow.ticket.TicketState`;
    * :meth:`escalation_table`, :meth:`escalations_by_agency`,
      :meth:`report_table`, :meth:`spot_check_table`;
    * :meth:`plot_phases`, :meth:`plot_states`, :meth:`plot_escalations`,
      :meth:`save_plots`, :meth:`write_report`.
    """

    name: str
    plan: Plan
    population: Population
    behaviour: Behaviour
    seed: int
    dates: list[date]
    active: list[bool]
    states: list[TicketState] | None
    ticket_town: array[int]
    ticket_report_day: array[int]
    ticket_archived_day: array[int]
    daily: list[tuple[int, ...]]
    town_updates: list[tuple[array[int], array[int]]]
    events: list[Event] | None
    digest: str | None
    n_events: int
    kind_counts: dict[str, int]
    escalations: list[EscalationRecord]
    spot_checked: list[SpotCheckRecord]
    spot_required: int
    reports: list[ReportRecord]
    dossier: Deadline | None
    dossier_stats: dict[str, int] | None
    ever_overdue: int
    stalling: int
    stale_actions: int
    inspections: int
    inspections_third_party: int
    accountability: list[AccountabilityRecord] = attrs.field(factory=list)

    def __repr__(self) -> str:
        return (
            f"<SimResult {self.name!r}: plan {self.plan.id}, {len(self.population)} communities, "
            f"seed {self.seed}, {len(self.ticket_town)} tickets, {self.n_events} events>"
        )

    # ------------------------------------------------------------------ raw
    @property
    def tickets(self) -> list[TicketState]:
        """Every ticket's final state, town by town in the order they were recorded.

        Kept when the run kept its log (``log="keep"``).
        """
        if self.states is None:
            raise InvalidArgument("log", "this run kept no ticket states (log='keep' keeps them)")
        return self.states

    def log_digest(self) -> str:
        """SHA-256 (hex) of the event log: of the towns' SHA-256 digests, in town order.

        Each town's digest is over the canonical bytes of its events, concatenated
        in log order (see :mod:`fireflow.sim.engine`).  Available when the run
        kept the events (``log="keep"``) or hashed them (``log="digest"``).
        """
        if self.digest is None:
            raise InvalidArgument("log", "this run kept no event log (log='none')")
        return self.digest

    # ------------------------------------------------------------------ KPIs
    @functools.cached_property
    def kpis(self) -> dict[str, int | float]:
        """The KPIs (keys of :data:`KPI_LABELS`), plain numbers; NaN where undefined."""
        final = dict(zip(STATES, self.daily[-1], strict=True))
        n = len(self.ticket_town)
        kc = self.kind_counts
        archived_days = [
            a - r
            for a, r in zip(self.ticket_archived_day, self.ticket_report_day, strict=True)
            if a >= 0
        ]
        notices = {"property": 0, "spot_check": 0, "official": 0, "report": 0}
        property_reports = 0
        for e in self.escalations:
            if e.kind.startswith("report_"):
                notices["report"] += 1
                property_reports += e.rule == self.plan.cite("R-ESC-PROPERTY")
            elif e.via == "notice" or e.kind == "official":
                notices[e.kind] = notices.get(e.kind, 0) + 1
        party = self.party_kind
        missed = {"town": 0, "department": 0, "property": 0}
        referred = {"town": 0, "department": 0, "property": 0}
        cases = 0
        for a in self.accountability:
            if a.what == "missed":
                missed[party(a.parties[0]) if a.parties else "department"] += 1
            elif a.what == "case":
                cases += 1
                if a.referred:
                    for kind in dict.fromkeys(party(p) for p in a.parties):
                        referred[kind] += 1
        dossier = self.dossier_stats or {}
        d_tickets = dossier.get("tickets", 0)
        d_archived = dossier.get("archived", 0)
        visited = len(self.spot_checked)
        due = sum(r.senders for r in self.reports)
        late = sum(r.late for r in self.reports)
        missing = sum(r.missing for r in self.reports)
        nan = float("nan")
        return {
            "communities": len(self.population),
            "towns": len(self.population.towns),
            "companies": len(self.population.companies),
            "stalling_companies": self.stalling,
            "inspections": self.inspections,
            "inspections_third_party": self.inspections_third_party,
            "tickets": n,
            "events": self.n_events,
            "archived": final["archived"],
            "archived_share": final["archived"] / n if n else nan,
            "open_at_end": n - final["archived"],
            "dossier_tickets": d_tickets,
            "rectified_by_dossier": d_archived,
            "rectified_by_dossier_share": d_archived / d_tickets if d_tickets else nan,
            "overdue_tickets": self.ever_overdue,
            "overdue_at_dossier": dossier.get("overdue", 0),
            "refusals": kc.get("refuse", 0),
            "escalations": kc.get("escalate", 0),
            "exposures": kc.get("expose", 0),
            "punishments": kc.get("punish", 0),
            "notices_property": notices["property"],
            "notices_spot_check": notices["spot_check"],
            "notices_official": notices["official"],
            "notices_reports_official": notices["report"] - property_reports,
            "notices_reports_property": property_reports,
            "duties_missed": sum(missed.values()),
            "duties_missed_town": missed["town"],
            "duties_missed_department": missed["department"],
            "duties_missed_property": missed["property"],
            "accountability_cases": cases,
            "referrals": self.kind_counts.get("refer", 0),
            "referrals_town": referred["town"],
            "referrals_department": referred["department"],
            "referrals_decided": self.kind_counts.get("decide_referral", 0),
            "recheck_failures": kc.get("recheck_fail", 0),
            "mean_days_to_archive": sum(archived_days) / len(archived_days)
            if archived_days
            else nan,
            "spot_check_required": self.spot_required,
            "spot_check_communities": visited,
            "spot_check_coverage": visited / len(self.population),
            "spot_check_tickets": sum(s.checked for s in self.spot_checked),
            "spot_check_reopened": sum(s.reopened for s in self.spot_checked),
            "spot_check_new": sum(s.found for s in self.spot_checked),
            "reports_due": due,
            "reports_late": late,
            "reports_missing": missing,
            "reports_late_share": (late + missing) / due if due else nan,
        }

    def party_kind(self, agency: str) -> str:
        """``property`` (a property company), ``town`` (a town-level agency) or ``department``."""
        if self.plan.is_property_company(agency):
            return "property"
        if self.plan.has_agency(agency) and self.plan.agency(agency).level == "town":
            return "town"
        return "department"

    def accountability_rows(self) -> list[dict[str, Any]]:
        """Per party (agency): duties missed, accountability cases, referrals, outcomes.

        One dict per agency the run's records name (六(四)), in the plan's agency
        order: ``party``, ``kind`` (:meth:`party_kind`), ``duties_missed`` (duties
        past their day it owed), ``cases`` (accountability cases naming it),
        ``referred`` (of those, referred by a lead department), ``decided``
        (referral outcomes recorded), ``reports_late`` (report obligations late
        or missing: the towns' reports under the first town-level agency, the
        property companies' ledgers under the first property company).
        """
        order = [a.id for a in self.plan.agencies]
        rows: dict[str, dict[str, Any]] = {}

        def row(agency: str) -> dict[str, Any]:
            found = rows.get(agency)
            if found is None:
                found = rows[agency] = {
                    "party": agency,
                    "kind": self.party_kind(agency),
                    **dict.fromkeys(
                        ("duties_missed", "cases", "referred", "decided", "reports_late"), 0
                    ),
                }
            return found

        for a in self.accountability:
            column = {"missed": "duties_missed", "case": "cases", "decided": "decided"}[a.what]
            for p in dict.fromkeys(a.parties):
                r = row(p)
                r[column] += 1
                r["referred"] += a.what == "case" and a.referred
        property_rule = self.plan.cite("R-ESC-PROPERTY")
        companies = self.plan.settings.property_companies
        towns = [a.id for a in self.plan.agencies if a.level == "town"]
        for e in self.escalations:
            if e.kind in ("report_late", "report_missing"):
                senders = companies if e.rule == property_rule else towns
                if senders:
                    row(senders[0])["reports_late"] += 1
        rank = {a: i for i, a in enumerate(order)}
        return [rows[a] for a in sorted(rows, key=lambda a: (rank.get(a, len(rank)), a))]

    def accountability_table(self) -> pd.DataFrame:
        """:meth:`accountability_rows` as a DataFrame (index: party)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        columns = ["party", "kind", "duties_missed", "cases", "referred", "decided"]
        columns.append("reports_late")
        return pd.DataFrame(self.accountability_rows(), columns=columns).set_index("party")

    def kpi_table(self) -> pd.DataFrame:
        """The KPIs with their Chinese and English labels (index: KPI key)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        rows = [(k, *KPI_LABELS[k], v) for k, v in self.kpis.items()]
        # object dtype: counts stay int (300), shares stay float; one float column would
        # turn every count into 300.0
        frame = pd.DataFrame(rows, columns=["kpi", "指标", "KPI", "value"], dtype=object)
        return frame.set_index("kpi")

    # -------------------------------------------------------------- timelines
    @functools.cached_property
    def timeline(self) -> pd.DataFrame:
        """Tickets per state at the end of each day (index: date; one column per state)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        index = pd.DatetimeIndex(self.dates, name="date")
        frame = pd.DataFrame(self.daily, columns=list(STATES), index=index)
        return frame.drop(columns=["new"])

    @functools.cached_property
    def timeline_by_town(self) -> pd.DataFrame:
        """Tickets per state per town at the end of each day (index: (date, town))."""
        require_sim_extra()
        import numpy as np  # noqa: PLC0415 (pandas brings it)
        import pandas as pd  # noqa: PLC0415

        towns = list(self.population.towns)
        n = len(STATES)
        current = np.zeros((len(towns), n), dtype=np.int64)
        per_day = np.empty((len(self.dates), len(towns), n), dtype=np.int64)
        for day, (changed, values) in enumerate(self.town_updates):
            if len(changed):
                current[np.frombuffer(changed, dtype=np.intc)] = np.frombuffer(
                    values, dtype=np.intc
                ).reshape(-1, n)
            per_day[day] = current
        index = pd.MultiIndex.from_product(
            [pd.DatetimeIndex(self.dates), towns], names=["date", "town"]
        )
        frame = pd.DataFrame(per_day.reshape(-1, n), columns=list(STATES), index=index)
        return frame.drop(columns=["new"])

    def phase_table(self) -> pd.DataFrame:
        """The plan's phases (id, names, start, end, working days)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        rows = []
        for p in self.plan.phases:
            first, last = (p.start - self.plan.start).days, (p.end - self.plan.start).days
            rows.append(
                (p.id, p.name.zh, p.name.en, p.start, p.end, sum(self.active[first : last + 1]))
            )
        return pd.DataFrame(
            rows, columns=["phase", "阶段", "name", "start", "end", "active_days"]
        ).set_index("phase")

    # ------------------------------------------------------------------ tables
    def escalation_table(self) -> pd.DataFrame:
        """One row per escalation and target agency: date, ticket, kind, rule, agency, via."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        rows = [
            (self.dates[e.day], e.subject, e.kind, e.rule, agency, e.via)
            for e in self.escalations
            for agency in e.targets
        ]
        return pd.DataFrame(rows, columns=["date", "subject", "kind", "rule", "agency", "via"])

    def escalations_by_agency(self) -> pd.DataFrame:
        """Escalations per target agency (rows) and rule (columns), with a total column."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        table = self.escalation_table()
        if table.empty:
            return pd.DataFrame(columns=["total"], dtype="int64")
        counts = table.pivot_table(
            index="agency", columns="rule", values="subject", aggfunc="count", fill_value=0
        )
        counts.columns.name = None
        counts["total"] = counts.sum(axis=1)
        return counts.sort_values(["total"], ascending=False, kind="stable").astype("int64")

    def report_table(self) -> pd.DataFrame:
        """Every report of the plan: due day, obligations, on time, late, missing, rules."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        rows = [
            (
                r.id,
                r.name_zh,
                r.name_en,
                r.due,
                r.senders,
                r.on_time,
                r.late,
                r.missing,
                " ".join(r.rules),
            )
            for r in self.reports
        ]
        columns = ["report", "名称", "name", "due", "due_submissions", "on_time", "late"]
        columns += ["missing", "rules"]
        return pd.DataFrame(rows, columns=columns).set_index("report")

    def spot_check_table(self) -> pd.DataFrame:
        """One row per visit: date, community, name, town, team, checked, reopened, found."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        comms = self.population.communities
        rows = [
            (
                self.dates[s.day],
                comms[s.community].id,
                comms[s.community].name,
                comms[s.community].town,
                " ".join(s.team),
                s.checked,
                s.reopened,
                s.found,
            )
            for s in self.spot_checked
        ]
        columns = ["date", "community", "name", "town", "team", "checked", "reopened", "found"]
        return pd.DataFrame(rows, columns=columns)

    def event_table(self) -> pd.DataFrame:
        """The kept event log as a DataFrame (one row per event)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        if self.events is None:
            raise InvalidArgument("log", "this run kept no event log (use log='keep')")
        rows = []
        for e in self.events:
            d = event_to_data(e)
            rows.append(
                (
                    d["ticket_id"],
                    d["seq"],
                    d["kind"],
                    e.at,
                    str(e.actor),
                    " ".join(e.rules),
                    d["payload"],
                )
            )
        return pd.DataFrame(
            rows, columns=["ticket", "seq", "kind", "at", "actor", "rules", "payload"]
        )

    # ------------------------------------------------------------------ plots
    def plot_phases(self) -> Figure:
        """The phases as a Gantt chart with the report deadlines."""
        from fireflow.sim.plots import plot_phases  # noqa: PLC0415

        return plot_phases(self.plan)

    def plot_states(self) -> Figure:
        """Ticket states stacked over time."""
        from fireflow.sim.plots import plot_states  # noqa: PLC0415

        return plot_states(self)

    def plot_escalations(self) -> Figure:
        """Escalations by target agency and rule."""
        from fireflow.sim.plots import plot_escalations  # noqa: PLC0415

        return plot_escalations(self)

    def save_plots(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write every plot as PNG into ``out_dir``; return name -> path."""
        from fireflow.sim.plots import save_plots  # noqa: PLC0415

        return save_plots(self, out_dir)

    # ------------------------------------------------------------------ per town
    def _town_of_subject(self) -> Callable[[str], int]:
        """Report subject (``id@town[/community]``) -> town index (-1 when unknown)."""
        towns = sorted(enumerate(self.population.towns), key=lambda t: -len(t[1]))

        def find(subject: str) -> int:
            rest = subject.split("@", 1)[1] if "@" in subject else ""
            for i, town in towns:  # the longest town name first: "/" may be in a name
                if rest == town or rest.startswith(town + "/"):
                    return i
            return -1

        return find

    def town_rows(self) -> list[dict[str, Any]]:
        """Per town (in population order): communities, tickets, ever overdue, filed by the
        dossier due day, open at the end, reports late or missing, escalations.

        ``filed_on_time`` counts the tickets filed (archived) by the end of the
        dossier due day (R-DUE-DOSSIER); summed over the towns it is the KPI
        ``rectified_by_dossier``.  ``reports_late`` counts the report
        obligations sent late or still missing (R-ESC-OFFICIAL notices);
        ``escalations`` every escalation of the town's tickets and reports
        (events and notices, as in :meth:`escalation_table`).
        """
        towns = self.population.towns
        rows = [
            dict.fromkeys(
                (
                    "communities",
                    "tickets",
                    "overdue",
                    "filed_on_time",
                    "open_at_end",
                    "reports_late",
                    "escalations",
                ),
                0,
            )
            for _ in towns
        ]
        index = {t: i for i, t in enumerate(towns)}
        for c in self.population.communities:
            rows[index[c.town]]["communities"] += 1
        dossier_day = (self.dossier.due - self.dates[0]).days if self.dossier is not None else -1
        for k, s in enumerate(self.tickets):
            row = rows[self.ticket_town[k]]
            row["tickets"] += 1
            row["overdue"] += s.overdue_marked > 0
            row["open_at_end"] += s.state != "archived"
            archived = self.ticket_archived_day[k]
            row["filed_on_time"] += 0 <= archived <= dossier_day
        find = self._town_of_subject()
        for e in self.escalations:
            town = self.ticket_town[e.ticket] if e.ticket >= 0 else find(e.subject)
            if town < 0:
                continue
            rows[town]["escalations"] += 1
            rows[town]["reports_late"] += e.kind in ("report_late", "report_missing")
        return [{"town": t, **row} for t, row in zip(towns, rows, strict=True)]

    def town_table(self) -> pd.DataFrame:
        """:meth:`town_rows` as a DataFrame (index: town; integer columns)."""
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame(self.town_rows()).set_index("town").astype("int64")

    def open_communities(self) -> list[dict[str, Any]]:
        """The communities with tickets not filed at the end of the campaign.

        One dict per community: ``id``, ``name``, ``town``, ``open`` (tickets
        not archived), ``overdue`` (of which overdue, refused or escalated at
        the end) and ``since`` (the day the oldest of them was recorded);
        the most overdue first, then the most open, then population order.
        """
        stuck = {"overdue", "refused", "escalated"}
        comms = self.population.communities
        by_name = {c.id: i for i, c in enumerate(comms)}
        per: dict[int, list[int]] = {}
        for k, s in enumerate(self.tickets):
            if s.state == "archived":
                continue
            i = by_name.get(s.community, -1)
            entry = per.setdefault(i, [0, 0, self.ticket_report_day[k]])
            entry[0] += 1
            entry[1] += s.state in stuck
            entry[2] = min(entry[2], self.ticket_report_day[k])
        out = []
        for i, (n_open, n_overdue, since) in sorted(
            per.items(), key=lambda item: (-item[1][1], -item[1][0], item[0])
        ):
            c = comms[i] if i >= 0 else None
            out.append(
                {
                    "id": c.id if c else "",
                    "name": c.name if c else "",
                    "town": c.town if c else "",
                    "open": n_open,
                    "overdue": n_overdue,
                    "since": self.dates[since].isoformat(),
                }
            )
        return out

    def assumptions(self) -> list[dict[str, str]]:
        """The behaviour settings of this run that differ from :class:`Behaviour`'s defaults.

        One dict per setting: ``name``, ``value`` and ``default`` as text.
        """
        default = Behaviour()
        out = []
        for field in attrs.fields(Behaviour):
            mine, theirs = getattr(self.behaviour, field.name), getattr(default, field.name)
            if _plain(mine) != _plain(theirs):
                out.append({"name": field.name, "value": _show(mine), "default": _show(theirs)})
        return out

    # ------------------------------------------------------------------ reports
    def _run_info(self) -> dict[str, Any]:
        digest: str | None
        try:
            digest = self.log_digest()
        except InvalidArgument:
            digest = None
        plan = self.plan
        return {
            "name": self.name,
            "plan_id": plan.id,
            "plan_zh": plan.name.zh,
            "plan_en": plan.name.en,
            "district_zh": plan.district.zh,
            "district_en": plan.district.en,
            "start": plan.start.isoformat(),
            "end": plan.end.isoformat(),
            "timezone": plan.timezone,
            "population": self.population.source or "—",
            "communities": len(self.population),
            "towns": len(self.population.towns),
            "companies": len(self.population.companies),
            "seed": self.seed,
            "tickets": len(self.ticket_town),
            "events": self.n_events,
            "digest": digest,
            "dossier_due": self.dossier.due.isoformat() if self.dossier is not None else None,
        }

    def _kpi_rows(self) -> list[dict[str, str]]:
        return [
            {"key": k, "zh": KPI_LABELS[k][0], "en": KPI_LABELS[k][1], "value": format_kpi(k, v)}
            for k, v in self.kpis.items()
        ]

    def _town_context(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        if self.states is None:  # a large run that kept no states: the page says so
            return [], {}
        towns = self.town_rows()
        keys = [k for k in towns[0] if k != "town"] if towns else []
        return towns, {k: sum(int(t[k]) for t in towns) for k in keys}

    def summary_html(self) -> str:
        """A compact HTML summary for notebooks: the run, its KPIs and the per-town table."""
        from fireflow.templates import render  # noqa: PLC0415

        towns, total = self._town_context()
        return render(
            "sim_summary.html.j2",
            run=self._run_info(),
            kpis=self._kpi_rows(),
            towns=towns,
            town_total=total,
        )

    def _repr_html_(self) -> str:
        return self.summary_html()

    def report_html(self, files: Sequence[str] = ()) -> str:
        """The report page (template ``sim_report.html.j2``), charts as inline SVG.

        ``files`` are the names of the data files written beside it, linked at
        the end.  Every text is escaped by the template; the charts
        (:mod:`fireflow.sim.svg`) keep their labels as SVG text, so the reader's
        browser draws the Chinese and nothing is loaded from the internet.
        """
        from markupsafe import Markup  # noqa: PLC0415 (comes with jinja2)

        from fireflow.sim import svg  # noqa: PLC0415
        from fireflow.templates import render  # noqa: PLC0415

        plan = self.plan
        towns, total = self._town_context()
        communities = [] if self.states is None else self.open_communities()
        nominal = {d.id: d.nominal.isoformat() for d in plan.deadlines()}
        reports = [
            {
                "id": r.id,
                "name_zh": r.name_zh,
                "name_en": r.name_en,
                "nominal": nominal.get(r.id, r.due.isoformat()),
                "due": r.due.isoformat(),
                "senders": r.senders,
                "on_time": r.on_time,
                "late": r.late,
                "missing": r.missing,
                "rules": list(r.rules),
            }
            for r in self.reports
        ]
        agencies, rules, counts = svg.escalations_by_agency(self)
        names = {a.id: a.name.zh for a in plan.agencies}
        escalations = {
            "rules": rules,
            "agencies": [
                {
                    "id": a,
                    "zh": names.get(a, a),
                    "counts": [counts.get((a, r), 0) for r in rules],
                    "total": sum(counts.get((a, r), 0) for r in rules),
                }
                for a in agencies
            ],
        }
        party_labels = {
            "town": "乡镇（街道） town",
            "department": "部门 department",
            "property": "物业企业 property company",
        }
        parties = [
            {**r, "zh": names.get(r["party"], r["party"]), "kind_label": party_labels[r["kind"]]}
            for r in self.accountability_rows()
        ]
        cited = sorted({*rules, *(x for r in self.reports for x in r.rules)})
        rule_names, rule_clauses = {}, {}
        for rid in cited:
            try:
                entry = plan.rule(rid)
            except InvalidArgument:
                continue
            rule_names[rid], rule_clauses[rid] = entry.title_zh, entry.clause
        rule_titles = {r: f"{rule_names[r]}（{rule_clauses[r]}）" for r in rule_names}
        drawn = svg.charts(self)
        charts = [
            {"name": name, "zh": zh, "en": en, "svg": Markup(drawn[name])}  # noqa: S704 (ElementTree-built SVG: every text escaped)
            for name, (zh, en) in _CHART_CAPTIONS.items()
        ]
        run = self._run_info()
        mark = f"模拟数据 Simulated data · {plan.name.zh} · {self.name} · seed {self.seed}"
        return render(
            "sim_report.html.j2",
            title=f"模拟数据 · {plan.name.zh} · 推演报告 · {self.name}",
            page_mark={"cls": "mark simulated", "text": mark},
            run=run,
            assumptions=self.assumptions(),
            kpis=self._kpi_rows(),
            towns=towns,
            town_total=total,
            communities=communities[:_MAX_COMMUNITIES_SHOWN],
            communities_total=len(communities),
            reports=reports,
            escalations=escalations,
            parties=parties,
            rule_titles=rule_titles,
            rule_names=rule_names,
            rule_clauses=rule_clauses,
            charts=charts,
            files=list(files),
        )

    def write_report(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``index.html``, the tables (CSV) and the plots (PNG) into ``out_dir``.

        ``index.html`` is :meth:`report_html`: a page to read and to print (A4),
        its charts inline SVG drawn by the reader's browser.  The PNGs
        (:func:`fireflow.sim.plots.save_plots`) are for documents and have
        Chinese labels only where a CJK font is installed.  Every file is
        written atomically through :mod:`fireflow.output`: the CSVs are for
        Excel and WPS (byte-order mark, CRLF, counts as integers, population
        names that look like formulas neutralised); ``out_dir`` is created
        when missing and refused when it is a symbolic link or a file, as is
        a link or a folder in place of one of the files.  Returns the path of
        ``index.html``.
        """
        require_sim_extra()
        import pandas as pd  # noqa: PLC0415

        out = output.prepare_folder(out_dir, create=True)
        timeline = self.timeline.reset_index(drop=True)
        timeline.insert(0, "date", [d.isoformat() for d in self.dates])
        by_town = self.timeline_by_town.reset_index(drop=True)
        towns = self.population.towns
        by_town.insert(0, "town", [t for _ in self.dates for t in towns])
        by_town.insert(0, "date", [d.isoformat() for d in self.dates for _ in towns])
        from fireflow.sim.plots import PLOT_NAMES  # noqa: PLC0415

        data = (
            "timeline.csv",
            "timeline_by_town.csv",
            "kpis.csv",
            "accountability.csv",
            # per ticket: only when the run kept its states (log="keep")
            *(() if self.states is None else ("towns.csv", "open_communities.csv")),
        )
        pngs = tuple(f"{n}.png" for n in PLOT_NAMES)
        for name in (*data, *pngs, "index.html"):  # all checked before any write
            output.check_destination(out / name)
        output.write_frame_csv(out / "timeline.csv", timeline)
        output.write_frame_csv(out / "timeline_by_town.csv", by_town)
        output.write_frame_csv(out / "kpis.csv", self.kpi_table(), index=True)
        output.write_frame_csv(out / "accountability.csv", self.accountability_table(), index=True)
        if self.states is not None:
            output.write_frame_csv(out / "towns.csv", self.town_table(), index=True)
            columns = ["id", "name", "town", "open", "overdue", "since"]
            output.write_frame_csv(
                out / "open_communities.csv",
                pd.DataFrame(self.open_communities(), columns=columns),
            )
        self.save_plots(out)
        return output.write_text(out / "index.html", self.report_html((*data, *pngs)))


_MAX_COMMUNITIES_SHOWN = 300
_CHART_CAPTIONS: dict[str, tuple[str, str]] = {
    "phases": ("阶段与报送期限", "Phases and report deadlines"),
    "states": ("隐患状态（每日末）", "Ticket states at the end of each day"),
    "escalations": ("移交与问责（按部门、规则）", "Escalations by agency and rule"),
    "towns": ("分乡镇隐患状态（同一纵轴）", "Tickets per town, on one scale"),
}


def _plain(value: Any) -> Any:
    """A setting as comparable plain data (mappings as sorted items, tuples as lists)."""
    if isinstance(value, Mapping):
        return sorted((str(k), _plain(v)) for k, v in value.items())
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    """A setting for people: mappings as ``key: value`` pairs, numbers as they are."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_show(v)}" for k, v in value.items())
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_kpi(key: str, value: int | float) -> str:
    """A KPI value for people: shares as percentages, NaN as a dash."""
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if key in _SHARES:
            return f"{value:.1%}"
        if key not in _FRACTIONAL and value.is_integer():  # a count stays a count: 300, not 300.0
            return f"{int(value):,}"
        return f"{value:,.1f}"
    return f"{value:,}"


def compare(*results: SimResult, labels: bool = True) -> pd.DataFrame:
    """The KPIs of several runs side by side (one column per run, named by ``result.name``).

    With ``labels`` the first two columns are the Chinese and English labels.
    Runs with the same name get ``#2``, ``#3`` appended.
    """
    require_sim_extra()
    import pandas as pd  # noqa: PLC0415

    if not results:
        raise InvalidArgument("results", "compare needs at least one result")
    columns: dict[str, list[Any]] = {}
    if labels:
        columns["指标"] = [zh for zh, _ in KPI_LABELS.values()]
        columns["KPI"] = [en for _, en in KPI_LABELS.values()]
    seen: dict[str, int] = {}
    for r in results:
        n = seen.get(r.name, 0) + 1
        seen[r.name] = n
        name = r.name if n == 1 else f"{r.name}#{n}"
        columns[name] = [r.kpis[k] for k in KPI_LABELS]
    frame = pd.DataFrame(columns, index=pd.Index(list(KPI_LABELS), name="kpi"), dtype=object)
    return frame
