"""The discrete-event simulation: one day at a time over the plan's calendar.

Every ticket moves only through the real engine: each step is a
:class:`~fireflow.ticket.Command` handed to :func:`~fireflow.ticket.decide`,
and each event it returns is applied with :func:`~fireflow.ticket.evolve`
(the compiled lifecycle table).  The simulator decides *when* things happen
and *who* acts (from the plan's authority and routing); the rules decide
whether they may, and record why.  Escalations come from
:func:`~fireflow.rules.escalation.due_escalations`.

A day, for each day of the campaign (nothing on rest days unless the
behaviour says ``work_on_rest_days``), all at ``behaviour.action_time``:

1. spot-check visits (五(四)): reopen closed tickets found not rectified;
   record new hazards;
2. new hazards: self-inspection (one day per community), the town's joint
   inspection (``inspection_capacity`` communities per town per day, plus
   third-party inspectors), patrols; each is reported, routed and given a
   deadline;
3. re-checks queued on earlier days (``recheck_capacity`` per town per day);
4. scheduled actions: rectification and the application for re-inspection,
   overdue marks, escalations, enforcement, certification and demolition; the
   offices' delayed steps (route, joining the re-check queue, sign-off, filing:
   ``Behaviour.route_working_days`` and the like), the look at a duty on its
   first late day, and the efficiency office's decisions.

Accountability (六(四)): the cases :func:`~fireflow.rules.escalation.due_escalations`
reports (a missed duty of a government party, a department's failed work, a
sign-off the spot check overturned, a concealed hazard) are recorded once each; a
lead department refers each with ``refer_probability`` (``refer``), and the
efficiency office records the outcome (``decide_referral``).

Randomness is drawn per community, never from a stream shared by the whole
district, so a run split by town (:mod:`fireflow.sim.shard`) draws exactly the
numbers one process draws.  Each community has five counter-based streams
(``arrivals``, ``fate``, ``recheck``, ``spotcheck``, ``duties``: SplitMix64, keyed with
SHA-256 of the seed and the community's id); a town's inspection order sorts its
communities by SHA-256 of (seed, ``order``, id); a company stalls when the
SHA-256 of (seed, ``companies``, name) says so; a report obligation is sent late
when SHA-256 of (seed, ``reports``, report, town, community) says so.  Nothing
reads the wall clock, the global ``random`` or the iteration order of a set: the
same inputs and seed give the same event log, byte for byte.

A ticket's id is ``T<town>-<n>`` (the town's position in the population and the
ticket's number in its town), and the log's order is the town's order: every
event of the first town (by day, then in the order of the day's steps), then the
second town's, and so on.  :meth:`SimResult.log_digest` is the SHA-256 of the
towns' SHA-256 digests in that order (each over the town's canonical event
bytes), so shards hash their own towns and the parent joins 32 bytes per town.

>>> from fireflow import load_plan
>>> from fireflow.sim import generate_population
>>> r = simulate(load_plan("changle-2022"), generate_population(12, seed=3), seed=5)
>>> r.kpis["tickets"] == sum(1 for e in r.events if e.kind == "report")
True
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
import math
import random
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import date, datetime, timedelta
from statistics import NormalDist
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

import attrs

from fireflow.calendar import Calendar
from fireflow.errors import InvalidArgument
from fireflow.events import Actor, Event, canonical_bytes
from fireflow.plan import Plan
from fireflow.plan.routing import Routing
from fireflow.rules import reporting, spotcheck
from fireflow.rules.accountability import concealment_cases
from fireflow.rules.duties import duties_at
from fireflow.rules.escalation import Escalation, due_escalations
from fireflow.sim.behaviour import DUTY_STEPS, Behaviour
from fireflow.sim.population import Population
from fireflow.sim.result import (
    AccountabilityRecord,
    EscalationRecord,
    ReportRecord,
    SimResult,
    SpotCheckRecord,
)
from fireflow.states import STATES
from fireflow.ticket import ActorIn, Command, EvidenceIn, TicketState, decide, evolve

__all__ = ["SIMULATED_PHOTO", "STREAMS", "LogMode", "simulate", "stream", "uniform_stream"]

#: The evidence reference of every photo in a simulated run (拍照建档): there are no real
#: photos, so each ``photo_before`` / ``photo_after`` names this digest of a fixed text.
SIMULATED_PHOTO: str = hashlib.sha256(b"fireflow.sim: a simulated photo, no image").hexdigest()

#: The random streams of each community (counter-based, keyed from (seed, community id)).
STREAMS: tuple[str, ...] = ("arrivals", "fate", "recheck", "spotcheck", "duties")
_ARRIVALS, _FATE, _RECHECK, _SPOTCHECK, _DUTIES = range(5)
_NS = len(STREAMS)  # streams per community
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (the golden ratio)
_M64 = (1 << 64) - 1
_TO_UNIT = 1.0 / (1 << 53)


def report_days_late(seed: int, b: Behaviour, o: reporting.Obligation) -> int:
    """How late the simulator sends the obligation ``o``: 0 on time, else working days.

    One draw per obligation, from SHA-256 of the seed, the report, the town and the
    community (never from a shared stream), so a shard draws what one process draws:
    late with ``report_late_probability``, by ``report_late_working_days``.
    """
    lo, hi = b.report_late_working_days
    name = f"{o.report_id}/{o.town}/{o.community or ''}"
    digest = hashlib.sha256(f"fireflow.sim/{seed}/reports/{name}".encode()).digest()
    late = (int.from_bytes(digest[:8], "big") >> 11) * _TO_UNIT < b.report_late_probability
    n = lo + int((int.from_bytes(digest[8:16], "big") >> 11) * _TO_UNIT * (hi - lo + 1))
    return n if late else 0


def report_sent_on(due: date, days_late: int, b: Behaviour, cal: Calendar) -> date:
    """The day a report due on ``due`` is sent: the active day before, or ``days_late`` after."""
    if days_late:
        if b.work_on_rest_days:
            return due + timedelta(days=days_late)
        return cal.deadline(due, days_late, "working")
    if b.work_on_rest_days:
        return due - timedelta(days=1)
    return cal.previous_working_day(due, include=False)


#: What a run keeps of its event log: every event, only their digest, or nothing.
LogMode = Literal["keep", "digest", "none"]

# Scheduled actions (the low 4 bits of an agenda entry; the ticket number above them).
_RECTIFY, _OVERDUE, _ESC_OVERDUE, _REFUSE, _ENFORCE, _CERTIFY, _DEMOLISH = range(7)
# the offices' delayed steps, the check of a missed duty, the efficiency office's decision
_ROUTE, _QUEUE_RECHECK, _SIGN_OFF, _ARCHIVE, _MISSED, _DECIDE = range(7, 13)
#: The states whose duty is an office's step (R-DUTY-*): a missed-duty check acts on them.
_OFFICE_STATES = frozenset(("reported", "routed", "reinspection_requested", "passed", "signed_off"))
_CLOSED = ("passed", "signed_off", "archived")
_CLEARABLE = ("R-ROUTE-LANE-IN", "R-ROUTE-LANE-OUT", "R-ROUTE-EVAC")
_NOTE_BITS = {"property": 1, "spot_check": 2, "official": 4}
_STD_NORMAL = NormalDist()

# Who acts, in order of preference; "role:x" is the route's party x.  The first one the
# plan's authority allows is taken, else the first agency the authority names.
_PREFER: dict[str, tuple[str, ...]] = {
    "route": ("town",),
    "set_deadline": ("town", "role:lead"),
    "rectify": ("role:rectifier",),
    "apply_reinspection": ("role:rectifier",),
    "recheck_pass": ("role:recheck_lead",),
    "recheck_fail": ("role:recheck_lead",),
    "sign_off": ("role:recheck_lead",),
    "archive": ("role:recheck_lead",),
    "mark_overdue": ("town", "role:lead"),
    "refuse": ("role:lead", "town"),
    "escalate": ("town", "role:lead"),
    "expose": ("committee", "town"),
    "punish": ("fire", "role:enforcers"),
    "certify": ("role:certifier", "planning"),
    "demolish": ("town",),
    "clear": ("town", "role:lead"),
    "resume": ("town", "role:lead"),
}
_REPORTER: dict[str, tuple[str, ...]] = {
    "self_inspection": ("property", "town"),
    "town_inspection": ("town",),
    "third_party": ("third_party", "town"),
    "patrol": ("town",),
    "public_report": ("public", "town"),
}
_REASON = {
    "recheck_fail": "复查不合格，重新限期整改",
    "recheck_pass": "复查合格",
    "refuse": "劝阻无效，拒不整改",
    "clear": "执法部门清理",
    "resume": "恢复整改",
    "reopen": "抽查发现整改不到位，责令整改",
    "punish": "依法查处",
    "certify": "认定违章建筑",
    "decide_referral": "效能部门已督导问责（模拟）",
}


def stream(seed: int, name: str) -> random.Random:
    """A named :class:`random.Random` stream of ``seed``: the same in every process.

    The simulator itself draws per community (:func:`uniform_stream`); this
    stays for callers that want a stream of their own derived from a run's seed.

    >>> stream(1, "fate").random() == stream(1, "fate").random()
    True
    """
    digest = hashlib.sha256(f"fireflow.sim/{seed}/{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))  # noqa: S311 (simulation, not secrets)


def _community_keys(seed: int, community_id: str) -> array[int]:
    """The stream keys of a community: SHA-256 of (seed, id), as four 64-bit words, and
    for ``duties`` (added later, so the first four keep their values) the first word of
    SHA-256 of (seed, id, ``duties``)."""
    digest = hashlib.sha256(f"fireflow.sim/{seed}/community/{community_id}".encode()).digest()
    more = hashlib.sha256(f"fireflow.sim/{seed}/community/{community_id}/duties".encode())
    words = [int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8)]
    return array("Q", [*words, int.from_bytes(more.digest()[:8], "big")])


def _hash_unit(seed: int, kind: str, name: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of (seed, kind, name): one draw, no stream."""
    digest = hashlib.sha256(f"fireflow.sim/{seed}/{kind}/{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) * _TO_UNIT


class _Uniforms:
    """Counter-based uniforms in [0, 1), one SplitMix64 stream per slot.

    Slot ``5 * community + stream`` holds the stream's state (its key plus
    ``n`` times the increment after ``n`` draws); a draw advances the state and
    returns the SplitMix64 output's top 53 bits (Steele, Lea and Flood, *Fast
    splittable pseudorandom number generators*, 2014).  Eight bytes per stream,
    where a :class:`random.Random` holds 2.5 KB: a million communities fit.
    """

    __slots__ = ("state",)

    def __init__(self, slots: int) -> None:
        self.state = array("Q", bytes(8 * slots))

    def __call__(self, slot: int) -> float:
        x = (self.state[slot] + _GAMMA) & _M64
        self.state[slot] = x
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
        return ((x ^ (x >> 31)) >> 11) * _TO_UNIT


def uniform_stream(seed: int, community_id: str, name: str) -> Callable[[], float]:
    """The stream ``name`` (one of :data:`STREAMS`) of a community: its uniforms in order.

    >>> u = uniform_stream(1, "C00001", "fate")
    >>> first = [u() for _ in range(3)]
    >>> first == [uniform_stream(1, "C00001", "fate")() for _ in range(1)] + first[1:]
    True
    >>> all(0 <= x < 1 for x in first)
    True
    """
    if name not in STREAMS:
        raise InvalidArgument("name", f"expected one of {', '.join(STREAMS)}, got {name!r}")
    draws = _Uniforms(1)
    draws.state[0] = _community_keys(seed, community_id)[STREAMS.index(name)]
    return lambda: draws(0)


def _pick(cum: Sequence[float], u: float) -> int:
    """The index a uniform ``u`` picks from cumulative weights ``cum`` (as ``choices`` does)."""
    return min(bisect.bisect_right(cum, u * cum[-1]), len(cum) - 1)


def _poisson(draw: Callable[[int], float], slot: int, lam: float) -> int:
    """A Poisson draw from stream ``slot`` (Knuth's method; a rounded normal above 30)."""
    if lam <= 0:
        return 0
    if lam > 30:
        u = min(max(draw(slot), 1e-12), 1 - 1e-12)
        return max(0, round(lam + math.sqrt(lam) * _STD_NORMAL.inv_cdf(u)))
    limit = math.exp(-lam)
    k = 0
    p = draw(slot)
    while p > limit:
        k += 1
        p *= draw(slot)
    return k


def _lognormal_days(u: float, median: float, sigma: float) -> int:
    """Whole days from one uniform: the log-normal quantile, rounded."""
    u = min(max(u, 1e-12), 1 - 1e-12)
    return max(0, round(median * math.exp(sigma * _STD_NORMAL.inv_cdf(u))))


class _Run:
    """One simulation run of some towns (a shard): the mutable working state.

    ``towns`` are the indices (in ``population.towns``) of the towns this run
    simulates; ``None`` is all of them.  A town's tickets, events and numbers
    depend only on the town, the plan, the behaviour, the seed and the
    district-wide spot-check draw, never on the other towns of the run.
    ``has_problems``: the communities with a ticket at the start of the spot
    check, when the plan's draw base is ``with_problems`` and this run does
    not hold every town (see :mod:`fireflow.sim.shard`).  Never shared, never
    reused.
    """

    def __init__(
        self,
        plan: Plan,
        population: Population,
        behaviour: Behaviour,
        seed: int,
        log: LogMode,
        towns: Sequence[int] | None = None,
        has_problems: frozenset[int] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidArgument("seed", f"expected a whole number, got {seed!r}")
        if log not in ("keep", "digest", "none"):
            raise InvalidArgument("log", f"expected 'keep', 'digest' or 'none', got {log!r}")
        behaviour.check(plan)
        self.plan = plan
        self.population = population
        self.b = behaviour
        self.seed = seed
        self.log_mode = log
        self.cal = plan.calendar
        self.tz = ZoneInfo(plan.timezone)
        self.has_problems = has_problems

        # ---- days
        self.start = plan.start
        self.n_days = (plan.end - plan.start).days + 1
        self.dates = [plan.start + timedelta(days=i) for i in range(self.n_days)]
        t = behaviour.action_time
        self.ats = [
            datetime(d.year, d.month, d.day, t.hour, t.minute, tzinfo=self.tz) for d in self.dates
        ]
        self.active = [
            behaviour.work_on_rest_days or self.cal.is_working_day(d) for d in self.dates
        ]
        self.act_days = [i for i, a in enumerate(self.active) if a]
        pos = [0] * (self.n_days + 1)
        count = 0
        for i in range(self.n_days):
            pos[i] = count
            count += 1 if self.active[i] else 0
        pos[self.n_days] = count
        self.pos = pos
        phase_of: list[int] = []
        for d in self.dates:
            idx = next(j for j, p in enumerate(plan.phases) if p.start <= d <= p.end)
            phase_of.append(idx)
        self.phase_of = phase_of

        # ---- population
        self.towns = population.towns
        town_ix = {t: i for i, t in enumerate(self.towns)}
        self.companies = population.companies
        company_ix = {c: i for i, c in enumerate(self.companies)}
        comms = population.communities
        self.comm_town = [town_ix[c.town] for c in comms]
        self.comm_company = [company_ix[c.company] if c.company else -1 for c in comms]
        ref = behaviour.reference_households
        self.comm_size = [
            (c.households / ref) ** behaviour.size_exponent if c.households > 0 else 1.0
            for c in comms
        ]
        self.stalling = stalling_companies(population, behaviour, seed)
        n_towns = len(self.towns)
        shard = range(n_towns) if towns is None else sorted(set(towns))
        self.shard_towns: list[int] = list(shard)
        self.in_shard = bytearray(n_towns)
        for town in self.shard_towns:
            self.in_shard[town] = 1
        self.shard_comms = [c for c, town in enumerate(self.comm_town) if self.in_shard[town]]
        self.u = _Uniforms(_NS * len(comms))
        state = self.u.state
        for c in self.shard_comms:
            state[_NS * c : _NS * c + _NS] = _community_keys(seed, comms[c].id)

        # ---- tickets (parallel lists, index k)
        self.states: list[TicketState] = []
        self.t_town = array("i")
        self.t_comm = array("i")
        self.t_report_day = array("i")
        self.t_archived_day = array("i")
        self.t_plan_kind = array("b")
        self.t_plan_day = array("i")
        self.t_notes = array("b")
        self.t_seq = array("i")  # the ticket's number in its town, from 0
        self.town_tickets: list[list[int]] = [[] for _ in range(n_towns)]
        self.ever_overdue = 0

        # ---- counts and the timeline
        self.sidx = {s: i for i, s in enumerate(STATES)}
        self.S = len(STATES)
        self.counts = [0] * self.S
        self.tcounts = [0] * (self.S * len(self.towns))
        self.daily: list[tuple[int, ...]] = []
        # per-town counts are stored sparsely: each day, the towns that changed
        self.town_updates: list[tuple[array[int], array[int]]] = []
        self.touched = bytearray(len(self.towns))
        self.touched_list: list[int] = []

        # ---- the log, per town
        self.town_events: list[list[Event]] = [[] for _ in range(n_towns)]
        self.town_hash = [hashlib.sha256() for _ in range(n_towns)]
        self.n_events = 0
        self.kind_counts: dict[str, int] = {}
        # per town; an escalation's ``ticket`` is the ticket's number in its town
        self.escalations: list[list[EscalationRecord]] = [[] for _ in range(n_towns)]
        # per town: missed duties, accountability cases, decisions (六(四))
        self.accountability: list[list[AccountabilityRecord]] = [[] for _ in range(n_towns)]
        self.noticed: set[tuple[Any, ...]] = set()  # cases recorded once (membership only)
        self.stale_actions = 0

        # ---- the agenda and queues
        self.agenda: dict[int, list[int]] = {}
        self.rechecks: list[deque[int]] = [deque() for _ in self.towns]
        self.inspect_queue: list[deque[int]] = [deque() for _ in self.towns]
        self.arrivals: dict[int, list[tuple[int, int, bool]]] = {}
        self.inspections = 0
        self.inspections_third_party = 0
        self.late_day: dict[int, int] = {}

        # ---- spot check
        self.spot_visits: dict[int, list[int]] = {}
        self.spot_members: dict[int, list[int]] = {}
        self.spot_draw: spotcheck.Draw | None = None
        self.spot_assignment: dict[int, spotcheck.Assignment] = {}
        self.spot_required = 0
        self.spot_checked: list[list[SpotCheckRecord]] = [[] for _ in range(n_towns)]

        # ---- caches
        self._templates: dict[tuple[str, str], Command] = {}
        self._actors: dict[tuple[str, str], str] = {}
        self._recheck_parties: dict[str, tuple[tuple[ActorIn, ...], tuple[ActorIn, ...]]] = {}
        self._actor_in: dict[str, ActorIn] = {}
        self.photo_sources = frozenset(plan.settings.photo_required_sources)
        self.photo_before = (
            EvidenceIn.model_construct(kind="photo_before", sha256=SIMULATED_PHOTO, note=""),
        )
        self.photo_after = (
            EvidenceIn.model_construct(kind="photo_after", sha256=SIMULATED_PHOTO, note=""),
        )
        self.dossier = next((d for d in plan.deadlines() if d.id == "dossier"), None)
        self.dossier_stats: dict[str, int] | None = None
        self._phase_draw_cache: dict[int, tuple[list[str], list[float], float]] = {}
        self._subtypes: dict[str, tuple[list[str], list[float]]] = {}
        self._duty_late: dict[tuple[str, int], int] = {}
        self.steps = {kind: getattr(behaviour, name) for kind, name in DUTY_STEPS.items()}
        days = plan.settings.duty_days
        self.duty_periods = {
            "route": days.route,
            "recheck": days.recheck,
            "sign_off": days.sign_off,
            "archive": days.archive,
        }
        self.lead_referrer = plan.settings.accountability_lead[0]
        self.office = plan.settings.accountability_office
        self.town_ids = frozenset(a.id for a in plan.agencies if a.level == "town")

    # ================================================================ helpers
    def add_active(self, i: int, n: int) -> int:
        """The n-th active day after day i (n = 0: i if active, else the next); -1 past the end."""
        j = self.pos[i] + n if n == 0 else self.pos[i + 1] + n - 1
        return self.act_days[j] if j < len(self.act_days) else -1

    def first_late_day(self, deadline: date) -> int:
        """The first active day on which the deadline has passed at action time; -1 if none."""
        o = deadline.toordinal()
        found = self.late_day.get(o)
        if found is not None:
            return found
        i = max(0, (deadline - self.start).days)
        j = self.add_active(i, 0) if i < self.n_days else -1
        while j != -1 and not self.cal.is_late(deadline, self.ats[j]):
            j = self.add_active(j, 1)
        self.late_day[o] = j
        return j

    def actor_in(self, agency: str) -> ActorIn:
        """A trusted, library-built actor (no validation needed)."""
        found = self._actor_in.get(agency)
        if found is None:
            found = self._actor_in[agency] = ActorIn.model_construct(agency=agency, person="")
        return found

    def who(self, trigger: str, routing: Routing | None, prefer: Sequence[str] = ()) -> str:
        """The agency that performs ``trigger``: the first preference the authority allows."""
        key = (
            trigger if not prefer else f"{trigger}:{prefer[0]}",
            routing.route if routing else "",
        )
        found = self._actors.get(key)
        if found is not None:
            return found
        entry = self.plan.authority_for(trigger)
        allowed: list[str] = []
        if entry is not None:
            allowed.extend(entry.agencies)
            if routing is not None:
                for role in entry.roles:
                    allowed.extend(routing.role(role))
        allowed = list(dict.fromkeys(allowed))
        if not allowed:
            raise InvalidArgument(
                "plan",
                f"the plan names nobody who may {trigger} (R-AUTH-ROLES)",
                rule="R-AUTH-ROLES",
            )
        choice = allowed[0]
        for p in (*prefer, *_PREFER.get(trigger, ())):
            candidates = routing.role(p[5:]) if p.startswith("role:") and routing else (p,)
            hit = next((c for c in candidates if c in allowed), None)
            if hit is not None:
                choice = hit
                break
        self._actors[key] = choice
        return choice

    def recheck_parties(self, routing: Routing) -> tuple[tuple[ActorIn, ...], tuple[ActorIn, ...]]:
        """(participants, signers) of a re-check on this route (五(三), R-AUTH-SEPARATION)."""
        found = self._recheck_parties.get(routing.route)
        if found is not None:
            return found
        st = self.plan.settings
        lead = self.who("recheck_pass", routing)
        # 五(三): government departments other than the rectifier count (R-TKT-REINSPECT)
        levels = {a.id: a.level for a in self.plan.agencies}
        known = {a for a, level in levels.items() if level in st.recheck_counting_levels}
        banned = {lead, routing.rectifier, *st.non_signing_agencies}
        pool = [
            a
            for a in dict.fromkeys(
                (
                    routing.supervisor,
                    *routing.cooperating,
                    *st.accountability_lead,
                    *st.spot_check.lead,
                )
            )
            if a not in banned and a in known
        ]
        lead_counts = lead != routing.rectifier and lead in known
        need = max(1, st.min_recheck_agencies - (1 if lead_counts else 0))
        participants = pool[:need]
        signers = [
            a
            for a in (lead, *participants)
            if a != routing.rectifier and a not in st.non_signing_agencies and a in known
        ]
        if not signers:
            raise InvalidArgument(
                "plan",
                f"route {routing.route!r}: nobody may sign off a re-check (R-AUTH-SEPARATION)",
            )
        # R-TKT-SIGNOFF: a named acceptance person of each signing department, who takes
        # part in the re-check (the lead's among the participants) and then signs
        named = {
            a: ActorIn.model_construct(agency=a, person=f"{self.plan.agency(a).name.zh}验收人")
            for a in dict.fromkeys((*signers, *participants))
        }
        found = (
            tuple(named[a] for a in dict.fromkeys((*participants, *signers))),
            tuple(named[a] for a in signers),
        )
        self._recheck_parties[routing.route] = found
        return found

    def duty_late_day(self, kind: str, day: int) -> int:
        """The first active day on which an office's duty ``kind`` begun on ``day`` is late.

        The duty's period is ``settings.duty_days`` (R-DUTY-ROUTE, R-DUTY-RECHECK,
        R-DUTY-SIGNOFF, R-DUTY-ARCHIVE), counted as :func:`fireflow.rules.duties.duties_at`
        counts it; -1 when it is not late before the end of the campaign.
        """
        key = (kind, day)
        found = self._duty_late.get(key)
        if found is None:
            unit = self.plan.settings.duty_days.unit
            due = self.cal.period(self.dates[day], self.duty_periods[kind], unit).due
            found = self._duty_late[key] = self.first_late_day(due)
        return found

    def office_step(self, k: int, day: int, kind: str, action: int) -> bool:
        """Delay an office's step ``kind`` (behaviour ``DUTY_STEPS``); False: do it now.

        A delay of 0 (a median of 0 draws nothing) is the same day.  Otherwise the
        step is scheduled, and so is a missed-duty check on the duty's first late
        day when that comes first.
        """
        median, sigma = self.steps[kind]
        if median <= 0:
            return False
        n = _lognormal_days(self.u(_NS * self.t_comm[k] + _DUTIES), median, sigma)
        if n == 0:
            return False
        when = self.add_active(day, n)
        self.schedule(when, k, action)
        late = self.duty_late_day(kind, day)
        if late != -1 and (when == -1 or late < when):
            self.schedule(late, k, _MISSED)
        return True

    def schedule(self, day: int, k: int, action: int) -> None:
        """Put an action on the agenda (nothing past the end of the campaign)."""
        if day >= 0:
            self.agenda.setdefault(day, []).append(k << 4 | action)

    # ================================================================ the engine
    def execute(self, k: int, kind: str, agency: str, day: int, **extra: Any) -> TicketState:
        """decide + evolve one command on ticket k; count, log and return the new state."""
        state = self.states[k]
        tmpl = self._templates.get((kind, agency))
        if tmpl is None:
            tmpl = Command.model_construct(
                kind=cast(Any, kind),
                ticket_id=state.ticket_id,
                at=self.ats[day],
                actor=self.actor_in(agency),
            )
            self._templates[kind, agency] = tmpl
        extra["ticket_id"] = state.ticket_id
        extra["at"] = self.ats[day]
        return self.execute_command(k, Command.trusted(tmpl, extra))

    def execute_command(self, k: int, command: Command) -> TicketState:
        """decide + evolve a ready command on ticket k."""
        state = self.states[k]
        events = decide(state, command, self.plan)
        new = state
        for e in events:
            new = evolve(new, e)
            self.kind_counts[e.kind] = self.kind_counts.get(e.kind, 0) + 1
        self.n_events += len(events)
        town = self.t_town[k]
        if self.log_mode != "none":
            hasher = self.town_hash[town]
            for e in events:
                hasher.update(canonical_bytes(e))
            if self.log_mode == "keep":
                self.town_events[town].extend(events)
        self.states[k] = new
        if new.state != state.state:
            s0, s1 = self.sidx[state.state], self.sidx[new.state]
            base = town * self.S
            self.counts[s0] -= 1
            self.counts[s1] += 1
            self.tcounts[base + s0] -= 1
            self.tcounts[base + s1] += 1
            if not self.touched[town]:
                self.touched[town] = 1
                self.touched_list.append(town)
        return new

    def open_ticket(self, day: int, c: int, phase: int, source: str, reporter: str) -> None:
        """Record a new hazard in community c: report, route, set the deadline."""
        u, slot = self.u, _NS * c + _ARRIVALS
        cats, cum, _ = self.phase_draw(phase)
        category = cats[_pick(cum, u(slot))]
        names, weights = self.subtypes(category)
        subtype = names[_pick(weights, u(slot))] if names else None
        location = "around" if u(slot) < self.b.around_share.get(category, 0.0) else "inside"
        k = len(self.states)
        community = self.population.communities[c]
        town = self.comm_town[c]
        in_town = self.town_tickets[town]
        seq = len(in_town)
        in_town.append(k)
        self.states.append(TicketState(f"T{town + 1:05d}-{seq + 1:05d}"))
        for arr_, value in (
            (self.t_town, town),
            (self.t_comm, c),
            (self.t_report_day, day),
            (self.t_archived_day, -1),
            (self.t_plan_day, -1),
            (self.t_seq, seq),
        ):
            arr_.append(value)
        self.t_plan_kind.append(0)
        self.t_notes.append(0)
        self.counts[0] += 1
        self.tcounts[town * self.S] += 1
        members = self.spot_members.get(c)
        if members is not None:
            members.append(k)
        extra: dict[str, Any] = {
            "community": community.id,
            "town": community.town,
            "category": category,
            "subtype": subtype,
            "location": location,
            "source": source,
        }
        if source in self.photo_sources:
            extra["evidence"] = self.photo_before
        self.execute(k, "report", reporter, day, **extra)
        if not self.office_step(k, day, "route", _ROUTE):
            self.route(k, day)

    def route(self, k: int, day: int) -> None:
        """The town routes the hazard and sets its deadline (R-DUTY-ROUTE); rectifying starts."""
        routing = self.execute(k, "route", self.who("route", None), day).routing
        self.execute(k, "set_deadline", self.who("set_deadline", routing), day)
        self.entered_rectifying(k, day, enforced=False)

    def phase_draw(self, phase: int) -> tuple[list[str], list[float], float]:
        """(categories, cumulative rates, total rate) of a phase."""
        found = self._phase_draw_cache.get(phase)
        if found is None:
            rates = self.b.hazard_rates.get(self.plan.phases[phase].id, {})
            cats = [c for c, r in rates.items() if r > 0]
            cum: list[float] = []
            total = 0.0
            for c in cats:
                total += rates[c]
                cum.append(total)
            found = self._phase_draw_cache[phase] = (cats, cum, total)
        return found

    def subtypes(self, category: str) -> tuple[list[str], list[float]]:
        """(subtypes, cumulative weights) of a category (both empty: no subtypes)."""
        found = self._subtypes.get(category)
        if found is None:
            weights = self.b.subtype_weights.get(category, {})
            cum: list[float] = []
            total = 0.0
            for w in weights.values():
                total += w
                cum.append(total)
            found = self._subtypes[category] = (list(weights), cum)
        return found

    def entered_rectifying(self, k: int, day: int, *, enforced: bool) -> None:
        """A ticket just got a deadline: draw what its party does next and schedule it."""
        state = self.states[k]
        slot = _NS * self.t_comm[k] + _FATE
        u_refuse, u_time = self.u(slot), self.u(slot)
        routing = state.routing
        assert routing is not None
        company = self.comm_company[self.t_comm[k]]
        stalls = company >= 0 and self.stalling[company] and routing.rectifier == "property"
        p_refuse = self.b.stall_refusal_probability if stalls else self.b.refusal_probability
        if not enforced and u_refuse < p_refuse:
            self.schedule(self.add_active(day, self.b.refusal_after_working_days), k, _REFUSE)
            return
        if routing.certifier is not None and state.certified_by is None:
            self.t_plan_kind[k] = _CERTIFY
            self.t_plan_day[k] = self.add_active(day, self.b.certify_working_days)
        else:
            median, sigma = self.b.rectify_working_days[state.category]
            n = _lognormal_days(u_time, median, sigma)
            if stalls and not enforced:
                n = round(n * self.b.stall_slowdown)
            self.t_plan_kind[k] = _RECTIFY
            self.t_plan_day[k] = self.add_active(day, n)
        self.schedule_progress(k)

    def schedule_progress(self, k: int) -> None:
        """Schedule the planned step, or the overdue mark if the deadline passes first."""
        deadline = self.states[k].deadline
        assert deadline is not None
        late = self.first_late_day(deadline)
        planned = self.t_plan_day[k]
        if planned != -1 and (late == -1 or planned < late):
            self.schedule(planned, k, self.t_plan_kind[k])
        else:
            self.schedule(late, k, _OVERDUE)

    # ================================================================ actions
    def do_action(self, k: int, action: int, day: int) -> None:
        """Run one scheduled action on ticket k (a stale one is counted and skipped)."""
        state = self.states[k]
        s = state.state
        if action >= _ROUTE:
            self.office_action(k, action, day)
            return
        routing = state.routing
        assert routing is not None
        if action == _RECTIFY and s in ("rectifying", "overdue"):
            rectifier = self.who("rectify", routing)
            self.execute(k, "rectify", rectifier, day)
            self.execute(k, "apply_reinspection", self.who("apply_reinspection", routing), day)
            if not self.office_step(k, day, "recheck", _QUEUE_RECHECK):
                self.rechecks[self.t_town[k]].append(k)
            # the queue can hold it past R-DUTY-RECHECK too: look on the first late day
            late = self.duty_late_day("recheck", day)
            if late != -1:
                self.schedule(late, k, _MISSED)
        elif action == _CERTIFY and s in ("rectifying", "overdue"):
            self.execute(k, "certify", self.who("certify", routing), day, reason=_REASON["certify"])
            self.schedule(self.add_active(day, self.b.demolish_working_days), k, _DEMOLISH)
        elif action == _OVERDUE and s == "rectifying":
            self.execute(k, "mark_overdue", self.who("mark_overdue", routing), day)
            if self.states[k].overdue_marked == 1:
                self.ever_overdue += 1
            rectifier = self.states[k].rectified_by or routing.rectifier
            self.missed(k, day, "rectify", self.plan.cite("R-TKT-DEADLINE"), (rectifier,))
            if not self.plan.is_property_company(rectifier):
                self.account(k, day)  # a department's missed deadline: R-ACC-SLOW
            escalate_on = self.add_active(day, self.b.overdue_grace_working_days)
            planned = self.t_plan_day[k]
            if planned != -1 and (escalate_on == -1 or planned <= escalate_on):
                self.schedule(planned, k, self.t_plan_kind[k])
            else:
                self.schedule(escalate_on, k, _ESC_OVERDUE)
        elif action == _ESC_OVERDUE and s == "overdue":
            self.escalate(k, day, "overdue")
        elif action == _REFUSE and s in ("rectifying", "overdue"):
            self.execute(k, "refuse", self.who("refuse", routing), day, reason=_REASON["refuse"])
            self.escalate(k, day, "refusal")
        elif action == _ENFORCE and s == "escalated":
            if routing.certifier is not None:
                self.execute(
                    k, "certify", self.who("certify", routing), day, reason=_REASON["certify"]
                )
                self.schedule(self.add_active(day, self.b.demolish_working_days), k, _DEMOLISH)
            elif any(r in _CLEARABLE for r in routing.rules):
                self.execute(k, "clear", self.who("clear", routing), day, reason=_REASON["clear"])
                self.entered_rectifying(k, day, enforced=True)
            else:
                self.execute(
                    k, "resume", self.who("resume", routing), day, reason=_REASON["resume"]
                )
                self.entered_rectifying(k, day, enforced=True)
        elif action == _DEMOLISH and s == "certified":
            with_ = tuple(self.actor_in(a) for a in routing.cooperating[:1])
            self.execute(k, "demolish", self.who("demolish", routing), day, participants=with_)
            self.entered_rectifying(k, day, enforced=True)
        else:
            self.stale_actions += 1

    def office_action(self, k: int, action: int, day: int) -> None:
        """An office's delayed step, a missed-duty check, or the office's decision."""
        s = self.states[k].state
        if action == _ROUTE and s == "reported":
            self.route(k, day)
        elif action == _QUEUE_RECHECK and s == "reinspection_requested":
            self.rechecks[self.t_town[k]].append(k)
        elif action == _SIGN_OFF and s == "passed":
            self.sign_off(k, day)
        elif action == _ARCHIVE and s == "signed_off":
            self.archive(k, day)
        elif action == _MISSED:
            if s in _OFFICE_STATES:  # else done in time: nothing to check, nothing stale
                self.account(k, day, missed=True)
        elif action == _DECIDE:
            self.decide(k, day)
        else:
            self.stale_actions += 1

    def missed(self, k: int, day: int, duty: str, rule: str, parties: tuple[str, ...]) -> None:
        """Record a duty past its day (who owed it, under which rule)."""
        self.accountability[self.t_town[k]].append(
            AccountabilityRecord(
                day, self.t_seq[k], self.states[k].ticket_id, "missed", duty, rule, parties, False
            )
        )

    def account(self, k: int, day: int, *, concealed: bool = False, missed: bool = False) -> None:
        """Act on the accountability cases due for ticket k (六(四)), each once.

        With ``missed``, first record the duties past their day
        (:func:`~fireflow.rules.duties.duties_at`).  Each new case of
        :func:`~fireflow.rules.escalation.due_escalations` (``slow``, ``official``,
        ``falsified``, ``concealed``) is recorded; a lead department refers it with
        ``refer_probability`` (``refer``), and the efficiency office records the
        outcome ``decide_working_days`` later with ``decide_probability``.
        """
        state = self.states[k]
        at = self.ats[day]
        if missed:
            for d in duties_at(state, at, self.plan):
                seen = ("missed", k, d.kind, d.since)
                if d.late and d.kind != "decide_referral" and seen not in self.noticed:
                    self.noticed.add(seen)
                    self.missed(k, day, d.kind, d.rule, d.agencies)
        for esc in due_escalations(state, at, self.plan, concealed=concealed):
            if esc.case is None or esc.kind == "referral":
                continue
            key: tuple[Any, ...] = (esc.kind, k, esc.accountable, esc.persons)
            if esc.kind == "slow":
                key += (state.state, state.entered_at)
            if key in self.noticed:
                continue
            self.noticed.add(key)
            self.refer(k, day, esc)

    def refer(self, k: int, day: int, esc: Escalation) -> None:
        """Record a case; a lead department refers it with ``refer_probability``."""
        slot = _NS * self.t_comm[k] + _DUTIES
        referred = self.u(slot) < self.b.refer_probability
        town, seq, tid = self.t_town[k], self.t_seq[k], self.states[k].ticket_id
        self.accountability[town].append(
            AccountabilityRecord(
                day, seq, tid, "case", esc.kind, esc.rule, esc.accountable, referred
            )
        )
        self.escalation(k, day, esc, "refer" if referred else "notice")
        if not referred:
            return
        assert esc.case is not None
        self.execute(
            k,
            "refer",
            self.lead_referrer,
            day,
            case=esc.case,
            accountable=esc.accountable,
            persons=esc.persons,
            reason=esc.reason_zh,
        )
        if self.u(slot) < self.b.decide_probability:
            self.schedule(self.add_active(day, self.b.decide_working_days), k, _DECIDE)

    def decide(self, k: int, day: int) -> None:
        """The efficiency office records the outcome of the ticket's oldest open referral."""
        state = self.states[k]
        r = next((r for r in state.referrals if r.open), None)
        if r is None:
            self.stale_actions += 1
            return
        self.execute(
            k,
            "decide_referral",
            self.office,
            day,
            referral=r.event_id,
            outcome=_REASON["decide_referral"],
        )
        self.accountability[self.t_town[k]].append(
            AccountabilityRecord(
                day,
                self.t_seq[k],
                state.ticket_id,
                "decided",
                r.case,
                self.plan.cite("R-ESC-OFFICIAL"),
                r.accountable,
                True,
            )
        )

    def escalate(self, k: int, day: int, kind: str) -> None:
        """Escalate what :func:`due_escalations` says is due (refusal or overdue), then enforce."""
        state = self.states[k]
        routing = state.routing
        assert routing is not None
        at = self.ats[day]
        for esc in due_escalations(state, at, self.plan):
            if esc.kind == kind:
                self.execute(
                    k,
                    "escalate",
                    self.who("escalate", routing),
                    day,
                    targets=esc.targets,
                    reason=esc.reason_zh,
                )
                self.escalation(k, day, esc, "event")
            elif esc.kind == "expose" and self.b.expose_refusals:
                self.execute(k, "expose", self.who("expose", routing), day)
                self.escalation(k, day, esc, "event")
        slot = _NS * self.t_comm[k] + _FATE
        if kind == "refusal" and self.u(slot) < self.b.punish_probability:
            self.execute(k, "punish", self.who("punish", routing), day, reason=_REASON["punish"])
        median, sigma = self.b.enforcement_working_days
        n = _lognormal_days(self.u(slot), median, sigma)
        self.schedule(self.add_active(day, n), k, _ENFORCE)

    def notices(self, k: int, day: int, kinds: tuple[str, ...]) -> None:
        """Record escalations that are due but change no state (once per ticket and kind)."""
        for esc in due_escalations(self.states[k], self.ats[day], self.plan):
            bit = _NOTE_BITS.get(esc.kind, 0)
            if esc.kind in kinds and bit and not self.t_notes[k] & bit:
                self.t_notes[k] |= bit
                self.escalation(k, day, esc, "notice")

    def escalation(self, k: int, day: int, esc: Any, via: str) -> None:
        """Record an escalation of ticket k (under its town, numbered within the town)."""
        self.escalations[self.t_town[k]].append(
            EscalationRecord(
                day, self.t_seq[k], self.states[k].ticket_id, esc.kind, esc.rule, esc.targets, via
            )
        )

    def recheck(self, k: int, day: int) -> None:
        """The town-led re-check (五(三)): pass, sign off and file, or fail with a new deadline."""
        state = self.states[k]
        if state.state != "reinspection_requested":
            self.stale_actions += 1
            return
        routing = state.routing
        assert routing is not None
        participants, _ = self.recheck_parties(routing)
        lead = self.who("recheck_pass", routing)
        if self.u(_NS * self.t_comm[k] + _RECHECK) < self.b.recheck_fail_rate:
            self.execute(
                k,
                "recheck_fail",
                lead,
                day,
                participants=participants,
                reason=_REASON["recheck_fail"],
            )
            self.notices(k, day, ("property",))
            if self.states[k].failed_rechecks >= self.plan.settings.max_failed_rechecks:
                self.account(k, day)  # a department's work failing: R-ACC-SLOW
            self.entered_rectifying(k, day, enforced=False)
            return
        self.execute(
            k, "recheck_pass", lead, day, participants=participants, reason=_REASON["recheck_pass"]
        )
        if not self.office_step(k, day, "sign_off", _SIGN_OFF):
            self.sign_off(k, day)

    def sign_off(self, k: int, day: int) -> None:
        """The acceptance people sign (R-TKT-SIGNOFF); filing follows (maybe later)."""
        routing = self.states[k].routing
        assert routing is not None
        _, signers = self.recheck_parties(routing)
        self.execute(k, "sign_off", self.who("sign_off", routing), day, signers=signers)
        if not self.office_step(k, day, "archive", _ARCHIVE):
            self.archive(k, day)

    def archive(self, k: int, day: int) -> None:
        """The town photographs and files the ticket (拍照建档)."""
        routing = self.states[k].routing
        assert routing is not None
        self.execute(k, "archive", self.who("archive", routing), day, evidence=self.photo_after)
        if self.t_archived_day[k] == -1:
            self.t_archived_day[k] = day

    # ================================================================ phases
    def enter_phase(self, day: int, phase: int) -> None:
        """Prepare a phase's arrivals on its first day."""
        ph = self.plan.phases[phase]
        source = self.b.phase_sources.get(ph.id)
        if source is None:
            return
        last = (ph.end - self.start).days
        days = self.act_days[self.pos[day] : self.pos[last + 1]]
        if not days:
            return
        u, n = self.u, len(days)
        if source == "town_inspection":
            # each town's order: its communities sorted by SHA-256 of (seed, "order", id)
            per_town: list[list[tuple[bytes, int]]] = [[] for _ in self.towns]
            ids = self.population.communities
            for c in self.shard_comms:
                key = hashlib.sha256(f"fireflow.sim/{self.seed}/order/{ids[c].id}".encode())
                per_town[self.comm_town[c]].append((key.digest(), c))
            for t in self.shard_towns:
                self.inspect_queue[t] = deque(c for _, c in sorted(per_town[t]))
        elif source == "spot_check":
            self.draw_spot_check(day, days)
        elif source == "self_inspection":
            for c in self.shard_comms:
                when = days[int(u(_NS * c + _ARRIVALS) * n)]
                self.arrivals.setdefault(when, []).append((c, phase, True))
        else:  # patrol, public_report: each hazard on its own day
            _, _, total = self.phase_draw(phase)
            for c in self.shard_comms:
                slot = _NS * c + _ARRIVALS
                for _ in range(_poisson(u, slot, total * self.comm_size[c])):
                    when = days[int(u(slot) * n)]
                    self.arrivals.setdefault(when, []).append((c, phase, False))

    def community_hazards(self, day: int, c: int, phase: int, source: str, reporter: str) -> int:
        """Draw and record the hazards found in community c on this visit."""
        _, _, total = self.phase_draw(phase)
        n = _poisson(self.u, _NS * c + _ARRIVALS, total * self.comm_size[c])
        for _ in range(n):
            self.open_ticket(day, c, phase, source, reporter)
        return n

    def draw_spot_check(self, day: int, days: Sequence[int]) -> None:
        """The plan's 双随机 draw (R-SPOT-RATIO, R-SPOT-DOUBLE-RANDOM); schedule the visits.

        The inputs are the population (a community ``has_problems`` when it has a
        ticket by now) and an inspector pool of ``spot_check_inspectors`` per agency
        of the spot check; the draw's seed is derived from the run's seed.  The
        draw depends on the run only when the plan's base is ``with_problems``;
        a run of some towns is then given the district's communities with tickets.
        """
        st = self.plan.settings.spot_check
        # the flags enter the draw's seed: set them only where they matter, so the draw
        # of any other base depends on the communities and the seed alone
        with_tickets: Set[int] = frozenset()
        if st.base == "with_problems":
            with_tickets = set(self.t_comm) if self.has_problems is None else self.has_problems
        communities = [
            spotcheck.Community(c.id, c.town, c.name, i in with_tickets)
            for i, c in enumerate(self.population.communities)
        ]
        inspectors = [
            spotcheck.Inspector(f"{agency}-{n + 1:02d}", agency)
            for agency in dict.fromkeys((*st.lead, *st.participants))
            for n in range(self.b.spot_check_inspectors)
        ]
        inputs = spotcheck.draw_inputs(self.plan, communities, inspectors)
        result = spotcheck.draw(inputs, f"fireflow.sim/{self.seed}/spot-check-draw")
        self.spot_draw = result
        self.spot_required = sum(s.required for s in result.strata)
        index = {c.id: i for i, c in enumerate(self.population.communities)}
        members: dict[int, list[int]] = {}
        for a in result.assignments:
            c = index[a.community]
            members[c] = []
            self.spot_assignment[c] = a
        for t, c in enumerate(self.t_comm):
            m = members.get(c)
            if m is not None:
                m.append(t)
        self.spot_members = members
        cap = max(1, self.b.spot_check_capacity)
        for i, a in enumerate(result.assignments):
            slot = i // cap
            c = index[a.community]
            if slot < len(days) and self.in_shard[self.comm_town[c]]:
                self.spot_visits.setdefault(days[slot], []).append(c)

    def spot_visit(self, day: int, c: int, phase: int) -> None:
        """A visit (附件3): findings per category, reopen orders, new hazards.

        For each category with closed tickets, the team finds it not rectified
        with ``spot_check_reopen_rate``;
        :func:`~fireflow.rules.spotcheck.findings_to_commands` turns the findings
        into ``reopen`` commands (R-TKT-SPOTCHECK), each decided like any other.
        """
        assert self.spot_draw is not None
        assignment = self.spot_assignment[c]
        community = self.population.communities[c]
        closed = [k for k in self.spot_members.get(c, ()) if self.states[k].state in _CLOSED]
        slot = _NS * c + _SPOTCHECK
        findings = [
            spotcheck.Finding(community.id, category, self.u(slot) >= self.b.spot_check_reopen_rate)
            for category in dict.fromkeys(self.states[k].category for k in closed)
        ]
        by_id = {self.states[k].ticket_id: k for k in closed}
        orders = spotcheck.findings_to_commands(
            self.plan,
            attrs.evolve(self.spot_draw, assignments=(assignment,)),
            findings,
            [self.states[k] for k in closed],
            self.ats[day],
        )
        for order in orders.reopen:
            k = by_id[order.command.ticket_id]
            self.execute_command(k, order.command)
            self.notices(k, day, ("spot_check",))
            self.account(k, day)  # a sign-off the check overturned: R-ACC-FALSIFIED
            self.entered_rectifying(k, day, enforced=False)
        lead = assignment.agencies[:1] or self.plan.settings.spot_check.lead
        reporter = self.who("report", None, lead)
        found = self.community_hazards(day, c, phase, "spot_check", reporter)
        if found:  # first found here, never reported by the community: R-ACC-CONCEALED
            members = self.spot_members.get(c, [])
            new = {self.states[k].ticket_id: k for k in members[len(members) - found :]}
            for case in concealment_cases([self.states[k] for k in members], self.plan):
                if case.ticket_id in new:
                    self.account(new[case.ticket_id], day, concealed=True)
        self.spot_checked[self.comm_town[c]].append(
            SpotCheckRecord(day, c, len(closed), len(orders.reopen), found, assignment.inspectors)
        )

    # ================================================================ the loop
    def run(
        self, progress: Callable[[int, int], None] | None, *, stop_at_spot_check: bool = False
    ) -> None:
        """Every day of the campaign, in order.

        With ``stop_at_spot_check``, stop where the spot-check draw would be made
        (the first day of a ``spot_check`` phase); see :mod:`fireflow.sim.shard`.
        """
        b = self.b
        current_phase = -1
        for day in range(self.n_days):
            if self.phase_of[day] != current_phase:
                current_phase = self.phase_of[day]
                ph = self.plan.phases[current_phase].id
                if stop_at_spot_check and b.phase_sources.get(ph) == "spot_check":
                    return
                self.enter_phase(day, current_phase)
            if self.active[day]:
                self.run_day(day, current_phase, b)
            self.snapshot(day)
            if progress is not None:
                progress(day + 1, self.n_days)

    def run_day(self, day: int, phase: int, b: Behaviour) -> None:
        """One active day (see the module docs for the order)."""
        for c in self.spot_visits.pop(day, ()):
            self.spot_visit(day, c, phase)
        source = b.phase_sources.get(self.plan.phases[phase].id)
        for c, ph, visit in self.arrivals.pop(day, ()):
            src = b.phase_sources[self.plan.phases[ph].id]
            who = self.who("report", None, _REPORTER[src])
            if visit:  # a self-inspection: every hazard of the community, today
                self.community_hazards(day, c, ph, src, who)
            else:
                self.open_ticket(day, c, ph, src, who)
        if source == "town_inspection":
            town_who = self.who("report", None, _REPORTER["town_inspection"])
            third_who = self.who("report", None, _REPORTER["third_party"])
            extra = b.third_party_inspectors * b.third_party_capacity
            for queue in self.inspect_queue:
                for slot in range(b.inspection_capacity + extra):
                    if not queue:
                        break
                    c = queue.popleft()
                    third = slot >= b.inspection_capacity
                    self.inspections += 1
                    self.inspections_third_party += 1 if third else 0
                    who = third_who if third else town_who
                    self.community_hazards(day, c, phase, "town_inspection", who)
        for queue in self.rechecks:
            for _ in range(min(len(queue), b.recheck_capacity)):
                self.recheck(queue.popleft(), day)
        todo = self.agenda.pop(day, None)
        if todo:
            i = 0
            while i < len(todo):
                entry = todo[i]
                self.do_action(entry >> 4, entry & 15, day)
                i += 1
                more = self.agenda.pop(day, None)  # actions scheduled for today, by today
                if more:
                    todo.extend(more)

    def snapshot(self, day: int) -> None:
        """Record the end-of-day counts (per town: only the towns that changed today)."""
        self.daily.append(tuple(self.counts))
        towns = sorted(self.touched_list)
        S, tc = self.S, self.tcounts
        self.town_updates.append(
            (array("i", towns), array("i", [n for t in towns for n in tc[t * S : t * S + S]]))
        )
        for t in towns:
            self.touched[t] = 0
        self.touched_list = []
        if self.dossier is not None and self.dates[day] == self.dossier.due:
            self.dossier_stats = {
                "tickets": len(self.states),
                **{s: self.counts[i] for s, i in self.sidx.items()},
            }

    # ================================================================ reports
    def reports(self) -> tuple[list[ReportRecord], list[list[EscalationRecord]]]:
        """Simulated submissions of the report obligations (六(六)) of this run's towns.

        :func:`~fireflow.rules.reporting.obligations` lists them (the ledger per
        community, the others per town); each is sent the active day before its
        due day, or late with ``report_late_probability`` (one draw per
        obligation, from SHA-256 of the seed, the report, the town and the
        community); :func:`~fireflow.rules.reporting.status` judges them at the
        end of the campaign and :func:`~fireflow.rules.reporting.report_escalations`
        says which go to the efficiency office (R-ESC-OFFICIAL).  Returns one
        record per report of the plan and the escalations per town of the run.
        """
        b = self.b
        t = b.action_time
        towns: dict[str, list[str]] = {self.towns[town]: [] for town in self.shard_towns}
        for c in self.shard_comms:
            community = self.population.communities[c]
            towns[community.town].append(community.id)
        fixed = {d.id: d for d in self.plan.deadlines_fixed}
        contents = {i: tuple(c.zh for c in d.contents) for i, d in fixed.items()}
        sent_at: dict[tuple[date, int], datetime] = {}
        actors: dict[str, Actor] = {}
        submissions: list[reporting.Submission] = []
        obligations = reporting.obligations(self.plan, towns, self.cal) if towns else []
        for o in obligations:
            key = (o.due, report_days_late(self.seed, b, o))
            when = sent_at.get(key)
            if when is None:
                sent = report_sent_on(o.due, key[1], b, self.cal)
                when = sent_at[key] = datetime(
                    sent.year, sent.month, sent.day, t.hour, t.minute, tzinfo=self.tz
                )
            by = actors.get(o.senders[0])
            if by is None:
                by = actors[o.senders[0]] = Actor(o.senders[0])
            submissions.append(
                reporting.Submission(
                    report_id=o.report_id,
                    town=o.town,
                    community=o.community,
                    submitted_at=when,
                    by=by,
                    contents=contents.get(o.report_id, ()),
                )
            )
        end = self.cal.due_instant(self.plan.end)
        statuses = reporting.status(self.plan, towns, submissions, end, self.cal) if towns else []
        counts: dict[str, dict[str, int]] = {}
        for st in statuses:
            per = counts.setdefault(st.obligation.report_id, {})
            per[st.state] = per.get(st.state, 0) + 1
        last = self.n_days - 1
        town_ix = {town: i for i, town in enumerate(self.towns)}
        escalations: list[list[EscalationRecord]] = [[] for _ in self.towns]
        for esc in reporting.report_escalations(self.plan, statuses):
            day = min(last, max(0, (self._due_of(esc.report_id) - self.start).days))
            subject = f"{esc.report_id}@{esc.town}" + (f"/{esc.community}" if esc.community else "")
            escalations[town_ix[esc.town]].append(
                EscalationRecord(day, -1, subject, esc.kind, esc.rule, esc.targets, "notice")
            )
        out: list[ReportRecord] = []
        for d in self.plan.deadlines(self.cal):
            per = counts.get(d.id, {})
            out.append(
                ReportRecord(
                    d.id,
                    d.name_zh,
                    d.name_en,
                    d.due,
                    sum(per.values()),
                    per.get("on_time", 0),
                    per.get("late", 0),
                    per.get("missing", 0),
                    d.rules,
                )
            )
        return out, [escalations[town] for town in self.shard_towns]

    def _due_of(self, report_id: str) -> date:
        return next(d.due for d in self.plan.deadlines(self.cal) if d.id == report_id)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a run.

    A run makes millions of objects that live to its end (frozen states,
    events, routings); the collector would scan them again and again (about a
    tenth of a large run) while reference counting frees what the run drops.
    The collector is switched back on after the run, also when it fails, if it
    was on before, and then collects anything cyclic as usual.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def stalling_companies(population: Population, behaviour: Behaviour, seed: int) -> list[bool]:
    """Which property companies stall: one draw per company from SHA-256 of (seed, its name)."""
    p = behaviour.stall_probability
    return [_hash_unit(seed, "companies", name) < p for name in population.companies]


def simulate(
    plan: Plan,
    population: Population,
    behaviour: Behaviour | None = None,
    *,
    seed: int = 0,
    name: str = "baseline",
    log: LogMode = "keep",
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    client: Any = None,
) -> SimResult:
    """Simulate the campaign of ``plan`` over ``population``; return a :class:`SimResult`.

    ``log`` says what to keep of the event log: ``"keep"`` every event and every
    ticket's final state (for replay), ``"digest"`` only the log's SHA-256 (for
    large runs), ``"none"`` only counts; the timelines and KPIs are the same in
    every mode.  ``progress(done_days, total_days)`` is called after each day
    (a sharded run calls it once, at the end).  The run ends on the plan's last
    day; actions scheduled later are not simulated.

    ``workers=N`` splits the campaign by town into ``N`` shards run on ``N``
    local processes; ``client`` (a :class:`dask.distributed.Client`) runs one
    shard per Dask worker.  The result is the same, byte for byte, as the run in
    one process (see :mod:`fireflow.sim.shard`).
    """
    from fireflow.sim import shard  # noqa: PLC0415 (shard builds on this module)

    return shard.simulate_sharded(
        plan,
        population,
        behaviour or Behaviour(),
        seed=seed,
        name=name,
        log=log,
        progress=progress,
        workers=workers,
        client=client,
    )
