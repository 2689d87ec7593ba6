"""Calibration (校准): fit the behaviour model to an event log, real or simulated.

:func:`calibrate` reads a campaign's history (a list of events, an event store
or the path of a fireflow SQLite store, verified first) and estimates every
:class:`~fireflow.sim.Behaviour` setting that the log identifies, each with its
number of observations and, where it is cheap, a standard error and an
approximate 95% interval:

* **rates** (binomial, standard error ``sqrt(p(1-p)/n)``, Wilson interval):
  ``recheck_fail_rate`` (failed / all re-checks), ``refusal_probability`` and
  ``stall_refusal_probability`` (refusals per deadline set without
  enforcement), ``punish_probability`` (punishments per refusal escalated),
  ``report_late_probability`` (from the submissions, per town too),
  ``around_share`` and ``subtype_weights`` (shares of the reports);
* **times** (log-normal in whole active days, fitted by maximum likelihood on
  the rounding intervals, with right-censoring where an escalation or the end
  of the campaign cut the wait short; the standard error of the log-median
  from the curvature of the likelihood): ``rectify_working_days`` per
  category, ``enforcement_working_days``; the offices' times (五(三))
  ``route_working_days`` (report to route), ``recheck_working_days`` (the
  application to the re-check, less the day the town's queue adds),
  ``sign_off_working_days`` (pass to sign-off), ``archive_working_days``
  (sign-off to filing), each ``(0, 0)`` when every wait is 0 (the same day);
* **referrals** (六(四)): ``refer_probability`` (``slow`` referrals per office wait
  that ran a whole active day past its ``settings.duty_days`` period),
  ``decide_probability`` (outcomes recorded per referral made early enough to
  be decided in the campaign) and ``decide_working_days`` (the most common gap);
* **fixed delays** (the most common gap): ``refusal_after_working_days``,
  ``overdue_grace_working_days``, ``certify_working_days``,
  ``demolish_working_days``;
* **stalling companies**, with a population that names each community's
  company: a two-class mixture over companies (a company stalls or not, once
  for the campaign) fitted by expectation-maximisation:
  ``stall_probability``, ``stall_slowdown``, ``stall_refusal_probability``;
  each company's posterior probability of stalling and its refusal rate are in
  :attr:`Calibration.companies`;
* **hazard rates** per phase and category (Poisson with the communities' size
  factors as exposure), with a population; ``phase_sources``, ``action_time``
  and ``work_on_rest_days`` from the events themselves.

What a log cannot identify keeps the value of ``base`` (the defaults unless
given) and is listed, with the reason, in :attr:`Calibration.not_identified`;
docs/simulator.md ("Calibration") explains each.

>>> from fireflow import load_plan
>>> from fireflow.sim import Behaviour, generate_population, simulate
>>> plan = load_plan("changle-2022")
>>> population = generate_population(60, seed=4)
>>> truth = Behaviour(recheck_fail_rate=0.3)
>>> fit = calibrate(simulate(plan, population, truth, seed=4).events, plan, population=population)
>>> est = fit.estimate("recheck_fail_rate")
>>> abs(est.value - 0.3) < 3 * est.se
True
>>> fit.behaviour.recheck_fail_rate == est.value
True
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, time, timedelta
from statistics import NormalDist
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from fireflow._html import page, table_block
from fireflow.errors import CorruptHistory, InvalidArgument
from fireflow.events import Event
from fireflow.history import verified_history
from fireflow.plan import Plan
from fireflow.rules import reporting
from fireflow.sim.behaviour import DUTY_STEPS, Behaviour
from fireflow.sim.population import Population
from fireflow.store.sqlite import SQLiteStore
from fireflow.ticket import fold_each

__all__ = [
    "Calibration",
    "CompanyFit",
    "Estimate",
    "TownFit",
    "calibrate",
    "fit_lognormal_days",
    "read_log",
]

_N = NormalDist()
_Z95 = 1.959963984540054
#: Kinds of events after which a ticket waits for its party to rectify; True: after enforcement.
_ENTERS = {
    "set_deadline": False,
    "recheck_fail": False,
    "reopen": False,
    "clear": True,
    "resume": True,
    "demolish": True,
}
_ENFORCE = ("clear", "resume", "certify")
#: The offices' steps (五(三)): the event that starts the wait, the one that ends it, and the
#: duty (a key of :data:`fireflow.sim.behaviour.DUTY_STEPS`).  ``reopen`` cuts a wait short.
_OFFICE_WAITS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "report": (("route",), "route"),
    "apply_reinspection": (("recheck_pass", "recheck_fail"), "recheck"),
    "recheck_pass": (("sign_off",), "sign_off"),
    "sign_off": (("archive",), "archive"),
}
#: The states in which a referral of a missed office duty is made (a ``slow`` case).
_OFFICE_WAIT_STATES = ("reported", "routed", "reinspection_requested", "passed", "signed_off")

#: Settings no event log identifies, and why (docs/simulator.md, "Calibration").
NOT_IDENTIFIED: Mapping[str, str] = {
    "reference_households": "a unit of the hazard rates: only rate x size factor is identified",
    "size_exponent": "kept: fitting it needs the households of every community and "
    "many reports per community; the rates are fitted with it held",
    "inspection_capacity": "only a lower bound is seen (inspections per town and day) "
    "while a town's queue lasts; idle capacity leaves no event",
    "third_party_inspectors": "a third-party inspection is recorded as a town inspection "
    "source; only the reporter tells them apart, not the team size",
    "third_party_capacity": "as inspection_capacity: idle capacity leaves no event",
    "recheck_capacity": "only binding capacity shows (a queue); idle capacity leaves no event",
    "spot_check_inspectors": "the inspector pool is in the draw (附件3), not in the ticket log",
    "spot_check_capacity": "visits that find nothing leave no event in the ticket log",
    "spot_check_reopen_rate": "the denominator (categories checked and found rectified) "
    "is in the findings of 附件3, not in the ticket log",
}


# =========================================================================== #
# Results


@attrs.frozen
class Estimate:
    """One fitted setting: its value (as the Behaviour holds it) and how sure the fit is.

    ``name`` is the Behaviour field, with ``.category`` (or ``.phase.category``)
    for per-category settings; ``n`` the observations used; ``se`` the standard
    error (of a probability, or of the log of a median time) when the fit gives
    one cheaply; ``low``/``high`` an approximate 95% interval of the value.
    """

    name: str
    value: Any
    n: int
    se: float | None = None
    low: float | None = None
    high: float | None = None
    note: str = ""


@attrs.frozen
class CompanyFit:
    """A property company: its deadlines (no enforcement), refusals, and P(stalls)."""

    company: str
    spells: int
    refusals: int
    stall_posterior: float

    @property
    def refusal_rate(self) -> float:
        """Refusals per deadline set without enforcement (NaN without any)."""
        return self.refusals / self.spells if self.spells else math.nan


@attrs.frozen
class TownFit:
    """A town's reports (六(六)): obligations, late ones, and the late share with its error."""

    town: str
    reports: int
    late: int

    @property
    def late_share(self) -> float:
        """Late submissions over all (NaN without any)."""
        return self.late / self.reports if self.reports else math.nan

    @property
    def se(self) -> float:
        """Binomial standard error of :attr:`late_share`."""
        return _binomial_se(self.late, self.reports)


@attrs.frozen
class Calibration:
    """The outcome of :func:`calibrate`: the fitted :class:`Behaviour` and the evidence.

    ``estimates`` are the identified settings (see :class:`Estimate`);
    ``not_identified`` maps every setting kept from ``base`` to the reason;
    ``companies`` and ``towns`` are the per-company and per-town fits;
    ``tickets`` and ``events`` count the history read.
    """

    behaviour: Behaviour
    estimates: tuple[Estimate, ...]
    not_identified: Mapping[str, str]
    companies: tuple[CompanyFit, ...] = ()
    towns: tuple[TownFit, ...] = ()
    tickets: int = 0
    events: int = 0

    def estimate(self, name: str) -> Estimate:
        """The estimate called ``name``; :class:`InvalidArgument` naming the known ones."""
        for e in self.estimates:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.estimates)
        raise InvalidArgument("name", f"no estimate {name!r}; known: {known}")

    def rows(self) -> list[tuple[str, str, int, str, str]]:
        """(setting, value, n, standard error, 95% interval) as text, one per estimate."""
        out = []
        for e in self.estimates:
            se = "" if e.se is None else f"{e.se:.3g}"
            ci = "" if e.low is None or e.high is None else f"{e.low:.3g} – {e.high:.3g}"
            out.append((e.name, _text(e.value), e.n, se, ci))
        return out

    def __repr__(self) -> str:
        return (
            f"<Calibration: {len(self.estimates)} settings fitted from {self.tickets} tickets, "
            f"{len(self.not_identified)} kept>"
        )

    def _repr_html_(self) -> str:
        """The fitted settings (value, n, standard error, 95% interval) and those kept."""
        fitted = table_block(
            ["设定 setting", "估计 value", "n", "标准误 se", "95% 区间 interval"],
            self.rows(),
            caption=f"校准 Calibration: {self.tickets} 件隐患 tickets, {self.events} 条事件 events",
        )
        kept = table_block(
            ["设定 setting", "无法从日志识别的原因 why the log does not identify it"],
            list(self.not_identified.items()),
            caption="保留默认 Kept from the base behaviour",
        )
        return page(fitted, kept)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return str(value)


# =========================================================================== #
# Small statistics


def _binomial_se(k: int, n: int) -> float:
    if n == 0:
        return math.nan
    p = k / n
    return math.sqrt(p * (1 - p) / n)


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rate(name: str, k: int, n: int, note: str = "") -> Estimate:
    low, high = _wilson(k, n)
    return Estimate(name, k / n, n, _binomial_se(k, n), low, high, note)


def _minimise(f: Callable[[Sequence[float]], float], x0: Sequence[float]) -> list[float]:
    """Nelder-Mead: a few hundred evaluations of a smooth function of a few variables."""
    n = len(x0)
    simplex = [list(x0)]
    for i in range(n):
        x = list(x0)
        x[i] += 0.3
        simplex.append(x)
    values = [f(x) for x in simplex]
    for _ in range(400 * n):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex = [simplex[i] for i in order]
        values = [values[i] for i in order]
        if (
            values[-1] - values[0] < 1e-9
            and max(abs(a - b) for x in simplex[1:] for a, b in zip(x, simplex[0], strict=True))
            < 1e-7
        ):
            break
        centre = [sum(x[i] for x in simplex[:-1]) / n for i in range(n)]
        worst = simplex[-1]
        refl = [c + (c - w) for c, w in zip(centre, worst, strict=True)]
        fr = f(refl)
        if fr < values[0]:
            exp = [c + 2 * (c - w) for c, w in zip(centre, worst, strict=True)]
            fe = f(exp)
            simplex[-1], values[-1] = (exp, fe) if fe < fr else (refl, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = refl, fr
        else:
            con = [c + 0.5 * (w - c) for c, w in zip(centre, worst, strict=True)]
            fc = f(con)
            if fc < values[-1]:
                simplex[-1], values[-1] = con, fc
            else:
                best = simplex[0]
                simplex = [best] + [
                    [b + 0.5 * (a - b) for a, b in zip(x, best, strict=True)] for x in simplex[1:]
                ]
                values = [values[0]] + [f(x) for x in simplex[1:]]
    i = min(range(n + 1), key=values.__getitem__)
    return simplex[i]


def _cdf(x: float, mu: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    return _N.cdf((math.log(x) - mu) / sigma)


#: Observations of a time in whole days: (days, censored) -> weight.  ``censored``: the
#: wait was cut short after ``days`` (the true time is longer).
Observations = Mapping[tuple[int, bool], float]


def _loglik(obs: Observations, mu: float, sigma: float, slowdown: float = 1.0) -> float:
    """Log-likelihood of whole-day times: a log-normal (times ``slowdown``), rounded.

    A stalling company's time is ``round(round(X) * slowdown)`` in the simulator; it is
    fitted as ``round(X * slowdown)``, which is smooth in ``slowdown`` (the exact form
    gives no odd days at all for a slowdown of 2, a likelihood with jumps).
    """
    if not obs:
        return 0.0
    mu += math.log(slowdown)
    total = 0.0
    for (d, censored), w in obs.items():
        if w <= 0:
            continue
        if censored:
            p = 1.0 - _cdf(d + 0.5, mu, sigma)
        else:
            p = _cdf(d + 0.5, mu, sigma) - (_cdf(d - 0.5, mu, sigma) if d > 0 else 0.0)
        total += w * math.log(max(p, 1e-300))
    return total


def fit_lognormal_days(
    obs: Observations, start: tuple[float, float] = (1.5, 0.8)
) -> tuple[float, float, float]:
    """(median, sigma, se of log median) of whole-day times, by maximum likelihood.

    ``obs`` maps ``(days, censored)`` to a weight (a count); the times are
    ``round(median * exp(sigma * Z))`` as the simulator draws them.

    The expected counts of 1,000 times drawn with median 2 and sigma 0.5, cut
    off at 6 days (the rest censored there), give back those settings:

    >>> def p(k):  # P(k - 0.5 < X < k + 0.5)
    ...     return _cdf(k + 0.5, math.log(2), 0.5) - _cdf(k - 0.5, math.log(2), 0.5)
    >>> obs = {(k, False): 1000 * p(k) for k in range(7)}
    >>> obs[(6, True)] = 1000 * (1 - _cdf(6.5, math.log(2), 0.5))
    >>> med, sigma, se = fit_lognormal_days(obs)
    >>> round(med, 2), round(sigma, 2), round(se, 3)
    (2.0, 0.5, 0.017)
    """

    def neg(x: Sequence[float]) -> float:
        return -_loglik(obs, x[0], math.exp(x[1]))

    x = _minimise(neg, (math.log(start[0]), math.log(max(start[1], 0.05))))
    mu, log_sigma = x
    h = 1e-3
    f0 = neg((mu, log_sigma))
    d2 = (neg((mu + h, log_sigma)) - 2 * f0 + neg((mu - h, log_sigma))) / (h * h)
    se = 1 / math.sqrt(d2) if d2 > 0 else math.nan
    return math.exp(mu), math.exp(log_sigma), se


# =========================================================================== #
# Reading history


def _foldable(events: list[Event], places: list[str]) -> list[Event]:
    """``events``, unless the engine cannot fold one ticket's history: then
    :class:`~fireflow.errors.CorruptHistory` names the first such event, as a fit of
    history that could not have been recorded would pass for a real one."""
    _, broken = fold_each(events)
    if broken:
        index = {id(e): i for i, e in enumerate(events)}
        event, error = min(broken.values(), key=lambda b: index[id(b[0])])
        raise CorruptHistory(event.ticket_id, places[index[id(event)]], str(error))
    return events


def read_log(source: Any) -> list[Event]:
    """Events from a sequence of events, an event store, or a path to an SQLite store.

    A store (or a path) is verified first; one that does not verify raises
    :class:`~fireflow.store.errors.VerificationFailed`, and history the engine
    cannot fold raises :class:`~fireflow.errors.CorruptHistory`.
    """
    if isinstance(source, str | os.PathLike):
        with SQLiteStore(source, readonly=True) as store:
            return read_log(store)
    if hasattr(source, "read_all") and hasattr(source, "rows"):
        history = verified_history(source)
        return _foldable(history.events, [f"position {p}" for p in history.positions])
    if isinstance(source, Iterable):
        events = list(source)
        for i, e in enumerate(events):
            if not isinstance(e, Event):
                raise InvalidArgument(f"events[{i}]", f"expected an Event, got {type(e).__name__}")
        return _foldable(events, [f"events[{i}]" for i in range(len(events))])
    raise InvalidArgument(
        "events_or_store", "expected events, an event store or the path of an SQLite store"
    )


@attrs.define
class _Ticket:
    events: list[Event] = attrs.field(factory=list)
    community: str = ""
    town: str = ""
    category: str = ""
    rectifier: str = ""
    certifier: bool = False


class _Days:
    """Active-day positions over the campaign (working days, or every day)."""

    def __init__(self, plan: Plan, every_day: bool) -> None:
        self.start = plan.start
        n = (plan.end - plan.start).days + 1
        cal = plan.calendar
        pos: list[int] = []
        count = 0
        for i in range(n):
            pos.append(count)
            if every_day or cal.is_working_day(plan.start + timedelta(days=i)):
                count += 1
        self.pos = pos
        self.last = count - 1

    def __call__(self, d: date) -> int:
        i = (d - self.start).days
        return self.pos[min(max(i, 0), len(self.pos) - 1)]


def _mode(values: Iterable[Any], default: Any) -> Any:
    counts = Counter(values)
    if not counts:
        return default
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]


# =========================================================================== #
# The fit


@attrs.define
class _Spells:
    """What the tickets' waits show, collected in one pass."""

    # (category, eligible company index or -1) -> (days, censored) -> count, no enforcement
    times: dict[tuple[str, int], Counter[tuple[int, bool]]] = attrs.field(factory=dict)
    enforced_times: dict[str, Counter[tuple[int, bool]]] = attrs.field(factory=dict)
    # company index (-1: not eligible to stall) -> [spells, refusals]
    refusals: dict[int, list[int]] = attrs.field(factory=dict)
    refusal_gaps: Counter[int] = attrs.field(factory=Counter)
    grace_gaps: Counter[int] = attrs.field(factory=Counter)
    certify_gaps: Counter[int] = attrs.field(factory=Counter)
    demolish_gaps: Counter[int] = attrs.field(factory=Counter)
    enforcement: Counter[tuple[int, bool]] = attrs.field(factory=Counter)
    refusal_escalations: int = 0
    punished: int = 0
    exposed: int = 0
    rechecks: int = 0
    recheck_fails: int = 0


def _walk(
    tickets: Mapping[str, _Ticket],
    day_of: Callable[[Event], date],
    days: _Days,
    company_of: Mapping[str, int],
) -> _Spells:
    out = _Spells()
    for t in tickets.values():
        company = company_of.get(t.community, -1) if t.rectifier == "property" else -1
        certified = False
        spell: tuple[int, bool] | None = None  # (start position, enforced)
        overdue_at: int | None = None
        escalated_at: int | None = None
        certify_from: int | None = None
        certified_at: int | None = None
        for e in t.events:
            p = days(day_of(e))
            kind = e.kind
            if kind in ("recheck_pass", "recheck_fail"):
                out.rechecks += 1
                out.recheck_fails += kind == "recheck_fail"
            if escalated_at is not None and kind in _ENFORCE:
                out.enforcement[(p - escalated_at, False)] += 1
                escalated_at = None
            if kind in _ENTERS:
                enforced = _ENTERS[kind]
                spell = (p, enforced)
                overdue_at = None
                if not enforced:
                    out.refusals.setdefault(company, [0, 0])[0] += 1
                if t.certifier and not certified and not enforced:
                    certify_from = p
                if kind == "demolish" and certified_at is not None:
                    out.demolish_gaps[p - certified_at] += 1
                continue
            if kind == "mark_overdue":
                overdue_at = p
            elif kind == "refuse" and spell is not None:
                out.refusals.setdefault(company, [0, 0])[1] += 1
                out.refusal_gaps[p - spell[0]] += 1
                spell = None
            elif kind == "escalate":
                if escalated_at is None:
                    escalated_at = p
                if "R-ESC-REFUSAL" in e.rules:
                    out.refusal_escalations += 1
                elif overdue_at is not None and "R-ESC-OVERDUE" in e.rules:
                    out.grace_gaps[p - overdue_at] += 1
                    overdue_at = None
                if spell is not None and not (t.certifier and not certified):
                    _observe(out, t.category, company, spell, p - spell[0], censored=True)
                spell = None
            elif kind == "punish":
                out.punished += 1
            elif kind == "expose":
                out.exposed += 1
            elif kind == "certify":
                certified = True
                certified_at = p
                if certify_from is not None:
                    out.certify_gaps[p - certify_from] += 1
                    certify_from = None
                spell = None
            elif kind == "rectify" and spell is not None:
                _observe(out, t.category, company, spell, p - spell[0], censored=False)
                spell = None
        if spell is not None and not (t.certifier and not certified):
            _observe(out, t.category, company, spell, days.last - spell[0], censored=True)
        if escalated_at is not None:
            out.enforcement[(days.last - escalated_at, True)] += 1
    return out


def _observe(
    out: _Spells, category: str, company: int, spell: tuple[int, bool], gap: int, *, censored: bool
) -> None:
    if spell[1]:
        out.enforced_times.setdefault(category, Counter())[(gap, censored)] += 1
    else:
        out.times.setdefault((category, company), Counter())[(gap, censored)] += 1


@attrs.define
class _Duties:
    """The offices' waits and the referrals in a log (six(四)), collected in one pass."""

    # duty kind -> (active days, censored) -> count
    waits: dict[str, Counter[tuple[int, bool]]] = attrs.field(factory=dict)
    missed: int = 0  # office waits that ran past their day by a whole active day
    referred: int = 0  # ``slow`` referrals made during such a wait
    refer_days: list[int] = attrs.field(factory=list)  # active position of every refer
    decide_gaps: Counter[int] = attrs.field(factory=Counter)


def _walk_duties(
    tickets: Mapping[str, _Ticket],
    day_of: Callable[[Event], date],
    days: _Days,
    plan: Plan,
) -> _Duties:
    """The office waits (report->route, apply->re-check, pass->sign_off, sign_off->archive).

    A wait is *missed* when an active day passed, after its last day under
    ``settings.duty_days``, before it ended (the day the simulator notices it and a
    lead department may refer it: R-ACC-SLOW); a ``refer`` of case ``slow`` while
    the wait is open is its referral.
    """
    out = _Duties()
    periods = plan.settings.duty_days
    span = {
        "route": periods.route,
        "recheck": periods.recheck,
        "sign_off": periods.sign_off,
        "archive": periods.archive,
    }
    cal = plan.calendar
    due_pos: dict[tuple[str, date], int] = {}

    def late_from(kind: str, start: date) -> int:
        """Active position of the first active day after the wait's last day."""
        found = due_pos.get((kind, start))
        if found is None:
            due = cal.period(start, span[kind], periods.unit).due
            found = due_pos[kind, start] = days(due + timedelta(days=1))
        return found

    for t in tickets.values():
        wait: tuple[str, tuple[str, ...], int, date] | None = None  # kind, ends, start, day
        refer_at: dict[str, int] = {}
        for e in t.events:
            d = day_of(e)
            p = days(d)
            if e.kind == "refer":
                out.refer_days.append(p)
                refer_at[e.event_id] = p
                if wait is not None and e.payload.get("case") == "slow":
                    out.referred += 1
                continue
            if e.kind == "decide_referral":
                start = refer_at.get(str(e.payload.get("referral")))
                if start is not None:
                    out.decide_gaps[p - start] += 1
                continue
            if wait is not None and (e.kind in wait[1] or e.kind == "reopen"):
                kind, _, start, first = wait
                censored = e.kind not in wait[1]
                out.waits.setdefault(kind, Counter())[(p - start, censored)] += 1
                # noticed: an active day after the last day, before this one
                out.missed += p > late_from(kind, first)
                wait = None
            found = _OFFICE_WAITS.get(e.kind)
            if found is not None:
                wait = (found[1], found[0], p, d)
        if wait is not None:
            kind, _, start, first = wait
            out.waits.setdefault(kind, Counter())[(days.last - start, True)] += 1
            out.missed += days.last >= late_from(kind, first)
    return out


def _fit_duties(
    duties: _Duties, base: Behaviour, days: _Days, estimates: list[Estimate], kept: dict[str, str]
) -> dict[str, Any]:
    """The offices' times, ``refer_probability``, ``decide_*``: the changes to ``base``."""
    changes: dict[str, Any] = {}
    for kind, name in DUTY_STEPS.items():
        counts = duties.waits.get(kind)
        if not counts:
            kept[name] = "no such wait in the history"
            continue
        obs: dict[tuple[int, bool], float] = {}
        for (seen, censored), n in counts.items():
            # the simulator re-checks the active day after a ticket joins the town's queue
            gap = max(0, seen - 1) if kind == "recheck" and not censored else seen
            obs[(gap, censored)] = obs.get((gap, censored), 0.0) + n
        n_obs = sum(counts.values())
        if all(gap == 0 for gap, censored in obs if not censored) and not any(
            censored and gap > 0 for gap, censored in obs
        ):
            changes[name] = (0.0, 0.0)
            estimates.append(Estimate(name, (0.0, 0.0), n_obs, note="every wait 0: the same day"))
            continue
        start = getattr(base, name)
        m, sd, se = fit_lognormal_days(obs, start if start[0] > 0 else (1.5, 0.8))
        changes[name] = (m, sd)
        ok = not math.isnan(se)
        estimates.append(
            Estimate(
                name,
                (m, sd),
                n_obs,
                se if ok else None,
                m * math.exp(-_Z95 * se) if ok else None,
                m * math.exp(_Z95 * se) if ok else None,
                "(median, sigma) in active days"
                + ("; the queue's day after joining taken off" if kind == "recheck" else ""),
            )
        )
    if duties.missed:
        est = _rate(
            "refer_probability",
            min(duties.referred, duties.missed),
            duties.missed,
            "slow referrals per office wait missed by a whole active day",
        )
        estimates.append(est)
        changes["refer_probability"] = est.value
    else:
        kept["refer_probability"] = "no office duty missed in the history"
    if duties.decide_gaps:
        gap = int(_mode(duties.decide_gaps.elements(), base.decide_working_days))
        estimates.append(
            Estimate(
                "decide_working_days",
                gap,
                sum(duties.decide_gaps.values()),
                note="the most common gap from refer to decide_referral",
            )
        )
        changes["decide_working_days"] = gap
    else:
        gap = base.decide_working_days
        kept["decide_working_days"] = "no referral decided in the history"
    # referrals made too late for a decision inside the campaign do not count
    eligible = sum(1 for p in duties.refer_days if p + gap <= days.last)
    if eligible:
        decided = sum(n for g, n in duties.decide_gaps.items())
        est = _rate(
            "decide_probability",
            min(decided, eligible),
            eligible,
            f"outcomes per referral made {gap} or more active days before the end",
        )
        estimates.append(est)
        changes["decide_probability"] = est.value
    else:
        kept["decide_probability"] = "no referral early enough to be decided in the history"
    return changes


def _fit_times(
    spells: _Spells, base: Behaviour, n_companies: int, estimates: list[Estimate]
) -> tuple[dict[str, tuple[float, float]], list[float], dict[str, float]]:
    """Times to rectify per category, and (with companies) the stalling mixture by EM.

    Returns the (median, sigma) per category and each company's P(stalls).
    """
    categories = sorted({c for c, _ in spells.times} | set(spells.enforced_times))
    refusal = spells.refusals
    other = refusal.get(-1, [0, 0])
    eligible = {k: v for k, v in refusal.items() if k >= 0}
    has_companies = n_companies > 0 and any(v[0] for v in eligible.values())
    pi, slowdown = base.stall_probability, base.stall_slowdown
    n_spells = sum(v[0] for v in refusal.values())
    p_r = min(max((sum(v[1] for v in refusal.values()) + 1) / (n_spells + 2), 1e-3), 0.5)
    p_sr = p_r
    post = [0.0] * n_companies
    slowdown_se = [math.nan]  # of log(slowdown), from the curvature at the last M step

    def obs_for(
        category: str, weights: Sequence[float], stall: bool
    ) -> dict[tuple[int, bool], float]:
        out: dict[tuple[int, bool], float] = {}
        for (c, company), counts in spells.times.items():
            if c != category:
                continue
            if company < 0:
                w = 0.0 if stall else 1.0
            else:
                w = weights[company] if stall else 1.0 - weights[company]
            for key, n in counts.items():
                out[key] = out.get(key, 0.0) + w * n
        if not stall:
            for key, n in spells.enforced_times.get(category, Counter()).items():
                out[key] = out.get(key, 0.0) + n
        return dict(out)

    def m_step_times(weights: Sequence[float]) -> None:
        nonlocal slowdown
        for c in categories:
            o0, o1 = obs_for(c, weights, False), obs_for(c, weights, True)

            def neg(
                x: Sequence[float], o0: Mapping[Any, float] = o0, o1: Mapping[Any, float] = o1
            ) -> float:
                mu, s = x[0], math.exp(x[1])
                return -(_loglik(o0, mu, s) + _loglik(o1, mu, s, slowdown))

            m, s = params[c]
            x = _minimise(neg, (math.log(m), math.log(max(s, 0.05))))
            params[c] = (math.exp(x[0]), math.exp(x[1]))
        if has_companies:

            def neg_s(x: Sequence[float]) -> float:
                sd = math.exp(x[0])
                return -sum(
                    _loglik(obs_for(c, weights, True), math.log(params[c][0]), params[c][1], sd)
                    for c in categories
                )

            log_s = _minimise(neg_s, (math.log(max(slowdown, 1.0)),))[0]
            slowdown = math.exp(log_s)
            h = 1e-3
            d2 = (neg_s((log_s + h,)) - 2 * neg_s((log_s,)) + neg_s((log_s - h,))) / (h * h)
            slowdown_se[0] = 1 / math.sqrt(d2) if d2 > 0 else math.nan

    # Starting values: each category's times fitted on the waits stalling cannot touch
    # (other parties, after enforcement) when there are enough, else on all of them.
    params: dict[str, tuple[float, float]] = {}
    for c in categories:
        clean = obs_for(c, [1.0] * n_companies, False)
        if sum(clean.values()) < 30:
            clean = obs_for(c, post, False)
        m, sd, _ = fit_lognormal_days(clean, base.rectify_working_days.get(c, (1.5, 0.8)))
        params[c] = (m, sd)
    if has_companies:
        # Start the mixture from two clusters of companies: the mean standardised log time
        # of each company's waits (plus its refusal rate), split at the largest gap.
        scores: dict[int, float] = {}
        for k, (n_k, r_k) in eligible.items():
            z: list[float] = []
            for c in categories:
                mu, sd = math.log(params[c][0]), params[c][1]
                for (d, censored), n in spells.times.get((c, k), Counter()).items():
                    if not censored:
                        z.extend([(math.log(max(d, 0.5)) - mu) / sd] * n)
            if n_k:
                scores[k] = (sum(z) / len(z) if z else 0.0) + (r_k / n_k - p_r) / max(p_r, 0.01)
        ordered = sorted(scores.values())
        if len(ordered) >= 2:
            gaps = [(ordered[i + 1] - ordered[i], i) for i in range(len(ordered) - 1)]
            upper = [g for g in gaps if g[1] >= len(ordered) // 2]  # stallers are the minority
            cut = ordered[max(upper or gaps)[1]]
            for k, sc in scores.items():
                post[k] = 0.9 if sc > cut else 0.1
        pi = min(max(sum(post) / n_companies, 1e-3), 1 - 1e-3)
        slowdown = 2.0
    if not has_companies:
        m_step_times(post)
    else:
        for _ in range(20):
            old = list(post)
            # M: the mixture weight, the two refusal rates, the times
            pi = min(max(sum(post) / n_companies, 1e-4), 1 - 1e-4)
            n0 = other[0] + sum((1 - post[k]) * v[0] for k, v in eligible.items())
            r0 = other[1] + sum((1 - post[k]) * v[1] for k, v in eligible.items())
            n1 = sum(post[k] * v[0] for k, v in eligible.items())
            r1 = sum(post[k] * v[1] for k, v in eligible.items())
            p_r = min(max(r0 / n0 if n0 else p_r, 1e-4), 1 - 1e-4)
            p_sr = min(max(r1 / n1 if n1 else p_sr, 1e-4), 1 - 1e-4)
            m_step_times(post)
            # E: each company's posterior probability of stalling
            for k in range(n_companies):
                spells_k, refusals_k = eligible.get(k, [0, 0])
                l0 = spells_k and (
                    refusals_k * math.log(p_r) + (spells_k - refusals_k) * math.log(1 - p_r)
                )
                l1 = spells_k and (
                    refusals_k * math.log(p_sr) + (spells_k - refusals_k) * math.log(1 - p_sr)
                )
                for c in categories:
                    counts = spells.times.get((c, k))
                    if counts:
                        mu, s = math.log(params[c][0]), params[c][1]
                        l0 += _loglik(dict(counts), mu, s)
                        l1 += _loglik(dict(counts), mu, s, slowdown)
                logit = math.log(pi) - math.log(1 - pi) + l1 - l0
                post[k] = 1 / (1 + math.exp(-logit)) if logit > -700 else 0.0
            if max((abs(a - b) for a, b in zip(old, post, strict=True)), default=0) < 1e-4:
                break
        se_pi = math.sqrt(pi * (1 - pi) / n_companies)
        estimates.append(
            Estimate(
                "stall_probability",
                pi,
                n_companies,
                se_pi,
                max(0.0, pi - _Z95 * se_pi),
                min(1.0, pi + _Z95 * se_pi),
                "EM over companies (a company stalls for the whole campaign)",
            )
        )
        n1i = round(n1)
        se_s = slowdown_se[0]
        estimates.append(
            Estimate(
                "stall_slowdown",
                slowdown,
                n1i,
                None if math.isnan(se_s) else se_s,
                None if math.isnan(se_s) else slowdown * math.exp(-_Z95 * se_s),
                None if math.isnan(se_s) else slowdown * math.exp(_Z95 * se_s),
                "EM: the ratio of a stalling company's times to rectify (se of its log)",
            )
        )
        se1 = math.sqrt(p_sr * (1 - p_sr) / n1) if n1 else math.nan
        estimates.append(
            Estimate(
                "stall_refusal_probability",
                p_sr,
                n1i,
                se1,
                max(0.0, p_sr - _Z95 * se1),
                min(1.0, p_sr + _Z95 * se1),
                "refusals per deadline at stalling companies (weighted by P(stalls))",
            )
        )
    n_all = sum(v[0] for v in refusal.values())
    if has_companies:
        se0 = math.sqrt(p_r * (1 - p_r) / n0) if n0 else math.nan
        estimates.append(
            Estimate(
                "refusal_probability",
                p_r,
                round(n0),
                se0,
                max(0.0, p_r - _Z95 * se0),
                min(1.0, p_r + _Z95 * se0),
                "refusals per deadline set without enforcement, other companies",
            )
        )
    elif n_all:
        r_all = sum(v[1] for v in refusal.values())
        estimates.append(
            _rate(
                "refusal_probability",
                r_all,
                n_all,
                "all parties pooled (no population: stalling companies not separated)",
            )
        )
    ses: dict[str, float] = {}
    for c in categories:
        o0, o1 = obs_for(c, post, False), obs_for(c, post, True)
        m, sd = params[c]
        h = 1e-3

        def f(
            mu: float, o0: Mapping[Any, float] = o0, o1: Mapping[Any, float] = o1, sd: float = sd
        ) -> float:
            return -(_loglik(o0, mu, sd) + _loglik(o1, mu, sd, slowdown))

        mu = math.log(m)
        d2 = (f(mu + h) - 2 * f(mu) + f(mu - h)) / (h * h)
        ses[c] = 1 / math.sqrt(d2) if d2 > 0 else math.nan
    return params, post, ses


def calibrate(
    events_or_store: Any,
    plan: Plan,
    *,
    population: Population | None = None,
    submissions: Iterable[reporting.Submission] | None = None,
    base: Behaviour | None = None,
) -> Calibration:
    """Fit the behaviour model to a campaign's history; return a :class:`Calibration`.

    ``events_or_store``: a sequence of events, an event store, or the path of a
    fireflow SQLite store (verified first).  ``population`` (the communities,
    their towns, companies and households) identifies the hazard rates and the
    stalling companies; ``submissions`` (the reports handed in, 六(六)) the
    report lateness.  Settings the history does not identify keep their value
    in ``base`` (default :class:`Behaviour`).
    """
    if not isinstance(plan, Plan):
        raise InvalidArgument("plan", f"expected a Plan, got {type(plan).__name__}")
    base = base if base is not None else Behaviour()
    events = read_log(events_or_store)
    if not events:
        raise InvalidArgument("events_or_store", "the history holds no events (没有事件)")
    tz = ZoneInfo(plan.timezone)
    cal = plan.calendar
    local = {e.event_id: e.at.astimezone(tz) for e in events}

    def day_of(e: Event) -> date:
        return local[e.event_id].date()

    estimates: list[Estimate] = []
    kept: dict[str, str] = dict(NOT_IDENTIFIED)

    # ---- time: rest days, the hour of action
    rest_day_events = sum(1 for e in events if not cal.is_working_day(day_of(e)))
    every_day = rest_day_events > 0
    estimates.append(
        Estimate(
            "work_on_rest_days", every_day, len(events), note=f"{rest_day_events} on rest days"
        )
    )
    t = _mode((local[e.event_id].time().replace(tzinfo=None) for e in events), base.action_time)
    estimates.append(Estimate("action_time", t, len(events), note="the most common local time"))
    days = _Days(plan, every_day)

    # ---- tickets
    tickets: dict[str, _Ticket] = {}
    for e in events:
        tickets.setdefault(e.ticket_id, _Ticket()).events.append(e)
    for tk in tickets.values():
        tk.events.sort(key=lambda e: e.seq)
        for e in tk.events:
            if e.kind == "report":
                p = e.payload
                tk.community, tk.town = str(p.get("community", "")), str(p.get("town", ""))
                tk.category = str(p.get("category", ""))
            elif e.kind == "route":
                routing = e.payload.get("routing") or {}
                tk.rectifier = str(routing.get("rectifier", ""))
                tk.certifier = routing.get("certifier") is not None
    reports = [
        tk.events[0] for tk in tickets.values() if tk.events and tk.events[0].kind == "report"
    ]

    # ---- what is found: sources, subtypes, around
    by_phase: dict[str, list[Event]] = {}
    for e in reports:
        phase = plan.phase_on(day_of(e))
        if phase is not None:
            by_phase.setdefault(phase.id, []).append(e)
    sources = {
        ph: _mode((str(e.payload.get("source", "")) for e in evs), "")
        for ph, evs in by_phase.items()
    }
    for ph, src in sorted(sources.items()):
        try:  # a source the simulator cannot model (a log may hold any the rules accept)
            Behaviour(phase_sources={ph: src})
        except InvalidArgument:
            del sources[ph]
            kept[f"phase_sources.{ph}"] = f"the most common source {src!r} is not simulated"
            continue
        estimates.append(Estimate(f"phase_sources.{ph}", src, len(by_phase[ph])))
    per_cat: dict[str, list[Event]] = {}
    for e in reports:
        per_cat.setdefault(str(e.payload.get("category", "")), []).append(e)
    subtypes: dict[str, dict[str, float]] = {}
    around: dict[str, float] = {}
    for cat, evs in sorted(per_cat.items()):
        n = len(evs)
        counts = Counter(str(e.payload.get("subtype")) for e in evs if e.payload.get("subtype"))
        if counts:
            total = sum(counts.values())
            subtypes[cat] = {s: counts[s] / total for s in sorted(counts)}
            for s in sorted(counts):
                estimates.append(_rate(f"subtype_weights.{cat}.{s}", counts[s], total))
        k = sum(1 for e in evs if e.payload.get("location") == "around")
        around[cat] = k / n
        estimates.append(_rate(f"around_share.{cat}", k, n))

    # ---- hazard rates, with the population as exposure
    hazard_rates = {ph: dict(r) for ph, r in base.hazard_rates.items()}
    company_of: dict[str, int] = {}
    companies: tuple[str, ...] = ()
    if population is not None:
        companies = population.companies
        cix = {c: i for i, c in enumerate(companies)}
        company_of = {c.id: cix[c.company] for c in population.communities if c.company}
        ref = base.reference_households
        exposure = sum(
            (c.households / ref) ** base.size_exponent if c.households > 0 else 1.0
            for c in population.communities
        )
        for ph, evs in sorted(by_phase.items()):
            if sources.get(ph) == "spot_check":
                kept[f"hazard_rates.{ph}"] = (
                    "the spot-checked communities are in the draw, not in the ticket log"
                )
                continue
            counts = Counter(str(e.payload.get("category", "")) for e in evs)
            rates: dict[str, float] = {}
            for cat in sorted(counts):
                k = counts[cat]
                rates[cat] = k / exposure
                se = math.sqrt(k) / exposure
                estimates.append(
                    Estimate(
                        f"hazard_rates.{ph}.{cat}",
                        rates[cat],
                        k,
                        se,
                        max(0.0, rates[cat] - _Z95 * se),
                        rates[cat] + _Z95 * se,
                        "Poisson per community of reference size; every community visited",
                    )
                )
            hazard_rates[ph] = rates
    else:
        kept["hazard_rates"] = "needs the population (communities with no ticket leave no event)"
        for name in ("stall_probability", "stall_slowdown", "stall_refusal_probability"):
            kept[name] = "needs the population (which company manages which community)"

    # ---- waits
    spells = _walk(tickets, day_of, days, company_of)
    if spells.rechecks:
        estimates.append(_rate("recheck_fail_rate", spells.recheck_fails, spells.rechecks))
    else:
        kept["recheck_fail_rate"] = "no re-check in the history"
    params, post, ses = _fit_times(spells, base, len(companies), estimates)
    fitted = {e.name for e in estimates}
    for name in ("stall_probability", "stall_slowdown", "stall_refusal_probability"):
        if name not in fitted and name not in kept:
            kept[name] = "no deadline set for a property company of the population"
    rectify = dict(base.rectify_working_days)
    for cat, (median, sigma) in sorted(params.items()):
        n = sum(sum(counts.values()) for (c, _), counts in spells.times.items() if c == cat) + sum(
            spells.enforced_times.get(cat, Counter()).values()
        )
        if n == 0:
            continue
        rectify[cat] = (median, sigma)
        se = ses.get(cat, math.nan)
        estimates.append(
            Estimate(
                f"rectify_working_days.{cat}",
                (median, sigma),
                n,
                None if math.isnan(se) else se,
                median * math.exp(-_Z95 * se) if not math.isnan(se) else None,
                median * math.exp(_Z95 * se) if not math.isnan(se) else None,
                "(median, sigma) in active days; escalations and the end censor the wait",
            )
        )
    if spells.enforcement:
        em, es, se = fit_lognormal_days(
            {k: float(v) for k, v in spells.enforcement.items()}, base.enforcement_working_days
        )
        estimates.append(
            Estimate(
                "enforcement_working_days",
                (em, es),
                sum(spells.enforcement.values()),
                se,
                em * math.exp(-_Z95 * se),
                em * math.exp(_Z95 * se),
            )
        )
        enforcement = (em, es)
    else:
        enforcement = base.enforcement_working_days
        kept["enforcement_working_days"] = "no escalation in the history"
    fixed: dict[str, int] = {}
    for name, gaps in (
        ("refusal_after_working_days", spells.refusal_gaps),
        ("overdue_grace_working_days", spells.grace_gaps),
        ("certify_working_days", spells.certify_gaps),
        ("demolish_working_days", spells.demolish_gaps),
    ):
        if gaps:
            fixed[name] = int(_mode(gaps.elements(), 0))
            estimates.append(
                Estimate(name, fixed[name], sum(gaps.values()), note="the most common gap")
            )
        else:
            kept[name] = "not seen in the history"
    if spells.refusal_escalations:
        estimates.append(
            _rate(
                "punish_probability",
                min(spells.punished, spells.refusal_escalations),
                spells.refusal_escalations,
            )
        )
    else:
        kept["punish_probability"] = "no refusal escalated in the history"
    expose = base.expose_refusals
    if spells.refusal_escalations:
        expose = spells.exposed > 0
        estimates.append(
            Estimate(
                "expose_refusals",
                expose,
                spells.refusal_escalations,
                note=f"{spells.exposed} exposures after refusals",
            )
        )
    else:
        kept["expose_refusals"] = "no refusal escalated in the history"

    # ---- the offices' duties and the referrals (五(三), 六(四))
    duty_changes = _fit_duties(
        _walk_duties(tickets, day_of, days, plan), base, days, estimates, kept
    )

    # ---- reports
    town_fits: list[TownFit] = []
    late_p = base.report_late_probability
    late_days = base.report_late_working_days
    subs = list(submissions) if submissions is not None else []
    if subs:
        due = {d.id: d.due for d in plan.deadlines(cal)}
        per_town: dict[str, list[int]] = {}
        late_gaps: list[int] = []
        for sub in subs:
            d = due.get(sub.report_id)
            if d is None:
                raise InvalidArgument(
                    "submissionsub.report_id", f"unknown report {sub.report_id!r} in this plan"
                )
            late = cal.is_late(d, sub.submitted_at)
            row = per_town.setdefault(sub.town, [0, 0])
            row[0] += 1
            row[1] += late
            if late:
                sent = sub.submitted_at.astimezone(tz).date()
                late_gaps.append(
                    (sent - d).days
                    if every_day
                    else sum(
                        1
                        for i in range(1, (sent - d).days + 1)
                        if cal.is_working_day(d + timedelta(days=i))
                    )
                )
        total = sum(r[0] for r in per_town.values())
        k_late = sum(r[1] for r in per_town.values())
        town_fits = [TownFit(town, r[0], r[1]) for town, r in sorted(per_town.items())]
        est = _rate("report_late_probability", k_late, total, "pooled over towns (see towns)")
        estimates.append(est)
        late_p = est.value
        if late_gaps:
            late_days = (max(1, min(late_gaps)), max(1, *late_gaps))
            estimates.append(
                Estimate(
                    "report_late_working_days",
                    late_days,
                    len(late_gaps),
                    note="the fewest and most active days late",
                )
            )
        else:
            kept["report_late_working_days"] = "no report was late"
    else:
        kept["report_late_probability"] = "needs the submissions (reports are not ticket events)"
        kept["report_late_working_days"] = "needs the submissions"

    values = {e.name: e.value for e in estimates}
    changes: dict[str, Any] = {
        "hazard_rates": hazard_rates,
        "phase_sources": {**base.phase_sources, **sources},
        "subtype_weights": subtypes,
        "around_share": {**base.around_share, **around},
        "rectify_working_days": rectify,
        "enforcement_working_days": enforcement,
        "expose_refusals": expose,
        "work_on_rest_days": every_day,
        "action_time": t if isinstance(t, time) else base.action_time,
        "report_late_probability": late_p,
        "report_late_working_days": late_days,
        **fixed,
        **duty_changes,
    }
    for name in (
        "recheck_fail_rate",
        "refusal_probability",
        "punish_probability",
        "stall_probability",
        "stall_slowdown",
        "stall_refusal_probability",
    ):
        if name in values:
            changes[name] = values[name]
    behaviour = base.replace(**changes)
    company_fits = tuple(
        CompanyFit(
            companies[k],
            spells.refusals.get(k, [0, 0])[0],
            spells.refusals.get(k, [0, 0])[1],
            post[k],
        )
        for k in range(len(companies))
    )
    return Calibration(
        behaviour=behaviour,
        estimates=tuple(estimates),
        not_identified=dict(sorted(kept.items())),
        companies=company_fits,
        towns=tuple(town_fits),
        tickets=len(tickets),
        events=len(events),
    )
