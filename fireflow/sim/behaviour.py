"""How the people in a simulated campaign behave: every parameter stated and documented.

A :class:`Behaviour` is a frozen value: change it with :meth:`Behaviour.replace`
(or ``attrs.evolve``).  The defaults are a plausible Changle-sized campaign,
not measurements: they give about four hazards per community over the year,
most found in self-inspection and the town inspection, a fifth of the quick
fixes late, and a few refusals.

Time is counted in *active days*: working days of the plan's calendar
(weekends and public holidays skipped, make-up working days counted), or
every day when ``work_on_rest_days`` is set.  Every action of a day happens at
``action_time`` (10:00) in the plan's time zone.

>>> b = Behaviour()
>>> b.hazard_rates["rectification"]["fire_lane_vehicle"]
0.4
>>> b.replace(stall_probability=1 / 3).stall_probability
0.3333333333333333
>>> round(b.expected_hazards_per_community(), 2)
4.06
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import time
from typing import Any

import attrs

from fireflow.errors import InvalidArgument
from fireflow.plan import Plan

__all__ = ["DEFAULT_HAZARD_RATES", "DEFAULT_PHASE_SOURCES", "DUTY_STEPS", "Behaviour"]

#: Mean hazards per community (of ``reference_households`` households) found in each
#: phase, per category.  ``spot_check`` rates apply to the spot-checked communities only.
DEFAULT_HAZARD_RATES: Mapping[str, Mapping[str, float]] = {
    "self_inspection": {
        "evacuation_blocked": 1.2,
        "fire_lane_vehicle": 0.5,
        "spacing_illegal_building": 0.05,
        "lane_or_sign_missing": 0.3,
    },
    "rectification": {
        "evacuation_blocked": 0.8,
        "fire_lane_vehicle": 0.4,
        "spacing_illegal_building": 0.1,
        "lane_or_sign_missing": 0.2,
    },
    "spot_check": {
        "evacuation_blocked": 0.3,
        "fire_lane_vehicle": 0.2,
        "lane_or_sign_missing": 0.1,
    },
    "consolidation": {
        "evacuation_blocked": 0.25,
        "fire_lane_vehicle": 0.15,
        "spacing_illegal_building": 0.02,
        "lane_or_sign_missing": 0.03,
    },
}

#: How hazards are found in each phase (the ``source`` of the ``report`` command):
#: ``self_inspection`` (the property company, one day per community), ``town_inspection``
#: (the town's joint inspection, limited by capacity), ``spot_check`` (the 10% check),
#: ``patrol`` and ``public_report`` (each hazard on its own day).
DEFAULT_PHASE_SOURCES: Mapping[str, str] = {
    "self_inspection": "self_inspection",
    "rectification": "town_inspection",
    "spot_check": "spot_check",
    "consolidation": "patrol",
}

_DEFAULT_SUBTYPES: Mapping[str, Mapping[str, float]] = {
    "evacuation_blocked": {
        "goods": 0.45,
        "ebike_parked": 0.25,
        "ebike_charging": 0.2,
        "exit_sealed": 0.1,
    },
    "fire_lane_vehicle": {
        "private_car": 0.5,
        "unplated_vehicle": 0.08,
        "zombie_vehicle": 0.1,
        "motor_vehicle": 0.12,
        "goods": 0.15,
        "stall": 0.05,
    },
    "spacing_illegal_building": {"structure": 1.0},
    "lane_or_sign_missing": {"sign": 0.8, "lane_layout": 0.2},
}

_DEFAULT_RECTIFY: Mapping[str, tuple[float, float]] = {
    "evacuation_blocked": (1.5, 0.8),
    "fire_lane_vehicle": (1.5, 0.9),
    "spacing_illegal_building": (10.0, 0.6),
    "lane_or_sign_missing": (10.0, 0.6),
}

#: The offices' steps the behaviour times: duty kind
#: (:data:`fireflow.rules.duties.LIFECYCLE_DUTIES`) -> the field of :class:`Behaviour`
#: holding its (median, sigma) in active days.
DUTY_STEPS: Mapping[str, str] = {
    "route": "route_working_days",
    "recheck": "recheck_working_days",
    "sign_off": "sign_off_working_days",
    "archive": "archive_working_days",
}

_SOURCES = ("self_inspection", "town_inspection", "spot_check", "patrol", "public_report")


def _nested(value: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {str(k): {str(c): float(r) for c, r in v.items()} for k, v in value.items()}


def _flat(value: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()}


def _subtypes(value: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """The default weights, with the categories given replaced."""
    return {**_nested(_DEFAULT_SUBTYPES), **_nested(value)}


def _pairs(value: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """The default (median, sigma) pairs, with the categories given replaced."""
    merged = {**_DEFAULT_RECTIFY, **value}
    return {str(k): (float(v[0]), float(v[1])) for k, v in merged.items()}


def _pair(value: tuple[float, float]) -> tuple[float, float]:
    """A (median, sigma) pair as two floats (a list from a file is accepted)."""
    median, sigma = value
    return (float(median), float(sigma))


def _probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(name, f"a probability must be between 0 and 1, got {value!r}")


def _count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(name, f"expected a whole number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Behaviour:
    """The behaviour model of a simulated campaign.  Every field is a stated assumption.

    **Finding hazards**

    * ``hazard_rates``: phase id -> category id -> mean hazards per community
      found in that phase (Poisson; the whole table is replaced when given), for a community of
      ``reference_households`` households.  Default: :data:`DEFAULT_HAZARD_RATES`
      (about 4 per community in the year).
    * ``phase_sources``: phase id -> how hazards are found there (the report
      ``source``); see :data:`DEFAULT_PHASE_SOURCES`.  Phases not listed find
      nothing.
    * ``subtype_weights``: category id -> subtype id -> relative frequency
      (categories not given keep their default weights).
    * ``around_share``: category id -> share of hazards found *around* the
      community rather than inside (default: 0.3 of fire-lane vehicles).
    * ``reference_households``, ``size_exponent``: a community's rates are
      multiplied by ``(households / reference_households) ** size_exponent``
      (400 households, exponent 0.5; 1 when households are unknown).

    **Rectifying**

    * ``rectify_working_days``: category id -> (median, sigma) of a log-normal
      time to rectify, in active days, rounded to a whole number (0 = the same
      day).  Drawn again each time a ticket enters ``rectifying``.  Categories
      not given keep their default (evacuation and fire lanes (1.5, 0.8-0.9),
      buildings and signs (10, 0.6)).
    * ``refusal_probability``: the party refuses after dissuasion (四(二)),
      drawn each time a ticket enters ``rectifying`` on its own (not after
      enforcement); the refusal is recorded ``refusal_after_working_days`` later.
    * ``stall_probability``: a property company stalls (drawn once per company):
      on the tickets it rectifies (route ``rectifier`` = ``property``) its times
      to rectify are multiplied by ``stall_slowdown`` and it refuses with
      ``stall_refusal_probability``.
    * ``recheck_fail_rate``: a re-check (复查) fails and the ticket goes back to
      rectifying with a new deadline (R-TKT-FAIL).
    * ``certify_working_days``, ``demolish_working_days``: for illegal buildings,
      planning certifies this many active days after the deadline is set, and the
      town demolishes this many after certification (R-ROUTE-BUILDING).

    **Overdue tickets and escalation**

    * ``overdue_grace_working_days``: a ticket marked overdue (R-ESC-OVERDUE) and
      still not rectified this many active days later is escalated (the targets
      come from :func:`fireflow.rules.escalation.due_escalations`).
    * ``enforcement_working_days``: (median, sigma) of the log-normal time from an
      escalation to the enforcers clearing the passage (``clear``), the town
      resuming rectification (``resume``) or planning certifying (``certify``).
    * ``expose_refusals``: a refusal is also exposed on the notice board (R-ESC-EXPOSE).
    * ``punish_probability``: after a refusal is escalated, ``fire`` (or the
      plan's enforcer) investigates and punishes (``punish``).

    **Capacity**

    * ``inspection_capacity``: communities a town's joint team inspects per active
      day in a ``town_inspection`` phase (五(三)).
    * ``third_party_inspectors``, ``third_party_capacity``: third-party fire
      experts per town (五(三) allows them to join), each inspecting this many
      more communities per active day; their reports name ``third_party``.
    * ``recheck_capacity``: re-checks a town performs per active day; the queue
      is first come, first served.

    **Spot check (五(四))**

    Which communities are checked, and by whom, is the plan's 双随机 draw
    (:func:`fireflow.rules.spotcheck.draw`, under ``settings.spot_check``: ratio,
    base, method; change those with :func:`~fireflow.sim.plan_overrides`).

    * ``spot_check_inspectors``: inspectors in the pool per agency of the spot
      check (the plan's lead and participating agencies); the draw sends a team
      of two to each drawn community.
    * ``spot_check_capacity``: communities checked per active day, from the
      first day of the phase.
    * ``spot_check_reopen_rate``: for each category with closed tickets (passed,
      signed off or archived) in a checked community, the check finds it not
      rectified (附件3); :func:`fireflow.rules.spotcheck.findings_to_commands`
      then reopens every closed ticket of that category (R-TKT-SPOTCHECK).

    **Reports (六(六))**

    * ``report_late_probability``: a report is sent late; it then arrives
      ``report_late_working_days`` (low, high; uniform) active days after its due
      day (after the end of the campaign: missing).  Otherwise it arrives the
      active day before.  One report per obligation of
      :func:`fireflow.rules.reporting.obligations` (the ledger per community, the
      others per town); :func:`~fireflow.rules.reporting.status` judges them.

    **The offices' duties (五(三), 六(四))**

    How long the town and the departments take over each step of a ticket that is
    theirs, as (median, sigma) of a log-normal time in active days, rounded to a
    whole number; a median of 0 means the same day (no draw).  A step done after
    its day under the plan's periods (``settings.duty_days``: R-DUTY-ROUTE,
    R-DUTY-RECHECK, R-DUTY-SIGNOFF, R-DUTY-ARCHIVE, by default 3, 5, 3 and 5
    working days) is a missed duty (不作为、慢作为, R-ACC-SLOW).  The defaults
    are all 0: every office acts on the day, as the simulator did before these
    settings existed, so a default run misses an office duty only where the
    re-check queue (``recheck_capacity``) holds a re-check past R-DUTY-RECHECK.

    * ``route_working_days``: from the report to ``route`` and ``set_deadline``
      (both the same day; R-DUTY-ROUTE counts both from the report);
    * ``recheck_working_days``: from the application for re-inspection to the
      town putting the ticket in its re-check queue (then ``recheck_capacity``);
    * ``sign_off_working_days``: from a passed re-check to ``sign_off``;
    * ``archive_working_days``: from ``sign_off`` to ``archive`` (拍照建档).

    **Accountability (六(四) 由牵头部门转报效能部门进行督导问责)**

    * ``refer_probability``: when an accountability case becomes due (a missed
      duty of a government party, repeated failed re-checks of a department's
      work, a sign-off the spot check overturned, a hazard concealed; as
      :func:`fireflow.rules.escalation.due_escalations` reports it), a lead
      department (``settings.accountability_lead``) refers it on the day it is
      noticed (``refer``); one draw per case.  Default 1: every case is referred.
    * ``decide_probability``: the efficiency office records the outcome of a
      referral (``decide_referral``), ``decide_working_days`` active days after
      it; one draw per referral.  Defaults 1 and 10.

    **Time**

    * ``work_on_rest_days``: if True, every day is an active day (nothing is
      skipped for weekends or holidays); by default nothing happens on rest days.
    * ``action_time``: the local time of every action (10:00).
    """

    hazard_rates: Mapping[str, Mapping[str, float]] = attrs.field(
        default=DEFAULT_HAZARD_RATES, converter=_nested, hash=False
    )
    phase_sources: Mapping[str, str] = attrs.field(
        default=DEFAULT_PHASE_SOURCES, converter=_flat, hash=False
    )
    subtype_weights: Mapping[str, Mapping[str, float]] = attrs.field(
        default=_DEFAULT_SUBTYPES, converter=_subtypes, hash=False
    )
    around_share: Mapping[str, float] = attrs.field(
        factory=lambda: {"fire_lane_vehicle": 0.3}, converter=_flat, hash=False
    )
    reference_households: float = 400.0
    size_exponent: float = 0.5
    rectify_working_days: Mapping[str, tuple[float, float]] = attrs.field(
        default=_DEFAULT_RECTIFY, converter=_pairs, hash=False
    )
    refusal_probability: float = 0.03
    refusal_after_working_days: int = 1
    stall_probability: float = 0.1
    stall_slowdown: float = 3.0
    stall_refusal_probability: float = 0.15
    recheck_fail_rate: float = 0.1
    certify_working_days: int = 5
    demolish_working_days: int = 10
    overdue_grace_working_days: int = 3
    enforcement_working_days: tuple[float, float] = (5.0, 0.5)
    expose_refusals: bool = True
    punish_probability: float = 0.5
    inspection_capacity: int = 1
    third_party_inspectors: int = 0
    third_party_capacity: int = 2
    recheck_capacity: int = 10
    spot_check_inspectors: int = 2
    spot_check_capacity: int = 3
    spot_check_reopen_rate: float = 0.15
    report_late_probability: float = 0.1
    report_late_working_days: tuple[int, int] = (1, 5)
    route_working_days: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_pair)
    recheck_working_days: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_pair)
    sign_off_working_days: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_pair)
    archive_working_days: tuple[float, float] = attrs.field(default=(0.0, 0.0), converter=_pair)
    refer_probability: float = 1.0
    decide_probability: float = 1.0
    decide_working_days: int = 10
    work_on_rest_days: bool = False
    action_time: time = time(10, 0)

    def __attrs_post_init__(self) -> None:
        for name in (
            "refusal_probability",
            "stall_probability",
            "stall_refusal_probability",
            "recheck_fail_rate",
            "punish_probability",
            "spot_check_reopen_rate",
            "report_late_probability",
            "refer_probability",
            "decide_probability",
        ):
            _probability(name, getattr(self, name))
        for name in (
            "refusal_after_working_days",
            "certify_working_days",
            "demolish_working_days",
            "overdue_grace_working_days",
            "inspection_capacity",
            "third_party_inspectors",
            "third_party_capacity",
            "recheck_capacity",
            "spot_check_capacity",
            "spot_check_inspectors",
            "decide_working_days",
        ):
            _count(name, getattr(self, name))
        if self.recheck_capacity < 1:
            raise InvalidArgument("recheck_capacity", "a town must re-check at least 1 a day")
        if self.spot_check_inspectors < 1:
            raise InvalidArgument("spot_check_inspectors", "the pool needs at least 1 per agency")
        if self.stall_slowdown <= 0:
            raise InvalidArgument("stall_slowdown", "must be positive")
        if self.reference_households <= 0:
            raise InvalidArgument("reference_households", "must be positive")
        low, high = self.report_late_working_days
        if not 1 <= low <= high:
            raise InvalidArgument("report_late_working_days", "expected 1 <= low <= high")
        for name, (median, sigma) in (
            *self.rectify_working_days.items(),
            ("enforcement_working_days", self.enforcement_working_days),
        ):
            if median <= 0 or sigma < 0:
                raise InvalidArgument(
                    "rectify_working_days" if name != "enforcement_working_days" else name,
                    f"{name}: median must be positive and sigma >= 0",
                )
        for name in DUTY_STEPS.values():
            median, sigma = getattr(self, name)
            if not (math.isfinite(median) and math.isfinite(sigma)) or median < 0 or sigma < 0:
                raise InvalidArgument(name, "expected (median, sigma), both finite and >= 0")
        for phase, rates in self.hazard_rates.items():
            for category, rate in rates.items():
                if not math.isfinite(rate) or rate < 0:
                    raise InvalidArgument(
                        f"hazard_rates.{phase}.{category}", "must be a finite rate >= 0"
                    )
        for phase, source in self.phase_sources.items():
            if source not in _SOURCES:
                raise InvalidArgument(
                    f"phase_sources.{phase}",
                    f"unknown source {source!r}; use one of {', '.join(_SOURCES)}",
                )
        for category, share in self.around_share.items():
            _probability(f"around_share.{category}", share)
        if self.action_time.tzinfo is not None:
            raise InvalidArgument("action_time", "give a local time without a time zone")

    def replace(self, **changes: Any) -> Behaviour:
        """A copy with some fields changed (validated again)."""
        return attrs.evolve(self, **changes)

    def check(self, plan: Plan) -> None:
        """Refuse ids the plan does not know, naming the field.

        Every category a phase can find needs a rectification time and subtype
        weights for each subtype it draws; every phase and category must exist
        in the plan.
        """
        phases = {p.id for p in plan.phases}
        categories = {c.id: c for c in plan.categories}
        for phase in (*self.hazard_rates, *self.phase_sources):
            if phase not in phases:
                raise InvalidArgument(f"behaviour.{phase}", f"unknown phase {phase!r} in the plan")
        for phase, rates in self.hazard_rates.items():
            if any(rates.values()) and phase not in self.phase_sources:
                raise InvalidArgument(
                    f"phase_sources.{phase}", "hazards are found in this phase: name their source"
                )
            for category, rate in rates.items():
                if category not in categories:
                    raise InvalidArgument(
                        f"hazard_rates.{phase}.{category}", f"unknown category {category!r}"
                    )
                if rate > 0 and category not in self.rectify_working_days:
                    raise InvalidArgument(
                        f"rectify_working_days.{category}", "no time to rectify for this category"
                    )
                known = {s.id for s in categories[category].subtypes}
                weights = self.subtype_weights.get(category, {})
                if rate > 0 and known and not any(w > 0 for w in weights.values()):
                    raise InvalidArgument(
                        f"subtype_weights.{category}", "the category needs subtype weights"
                    )
                for sub in weights:
                    if sub not in known:
                        raise InvalidArgument(
                            f"subtype_weights.{category}.{sub}", f"unknown subtype {sub!r}"
                        )
        for category in (*self.around_share, *self.rectify_working_days, *self.subtype_weights):
            if category not in categories:
                raise InvalidArgument("behaviour", f"unknown category {category!r}")

    def expected_hazards_per_community(self, spot_check_ratio: float = 0.1) -> float:
        """Mean hazards per community of reference size over the campaign.

        The ``spot_check`` source counts only for the checked share.
        """
        total = 0.0
        for phase, rates in self.hazard_rates.items():
            factor = spot_check_ratio if self.phase_sources.get(phase) == "spot_check" else 1.0
            total += factor * sum(rates.values())
        return total
