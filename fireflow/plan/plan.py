"""The plan as one validated value (:class:`Plan`) and its lookups.

Build one with :func:`fireflow.plan.load_plan` or :func:`fireflow.plan.parse_plan`;
``docs/plan-format.md`` describes the file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, StringConstraints

from fireflow.calendar import Calendar
from fireflow.errors import InvalidArgument
from fireflow.plan.deadlines import Deadline, calendar_for_plan, report_deadlines
from fireflow.plan.parts import (
    ENGINE_RULE_KEYS,
    Agency,
    Authority,
    Category,
    DerivedFrom,
    EngineRules,
    Form,
    HolidaySettings,
    Label,
    NonEmpty,
    PeriodUnit,
    Phase,
    PhaseDuty,
    PlanPart,
    PlanText,
    ProgressReports,
    ReportDeadline,
    ReviewNote,
    Route,
    RuleEntry,
    Settings,
)
from fireflow.plan.routing import Routing, find_routing

__all__ = ["Plan"]


class Plan(PlanPart):
    """A campaign plan.  Build it with :func:`load_plan` or :func:`parse_plan`."""

    format: Literal["fireflow.plan/1"]
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    name: Label
    district: Label
    year: Annotated[int, Field(ge=1949, le=2200)]
    timezone: NonEmpty = "Asia/Shanghai"
    source: PlanText = ""
    derived_from: DerivedFrom | None = None
    """The plan this one was made from (``fireflow plan new``), or None."""
    review: tuple[ReviewNote, ...] = ()
    """Places still to review (``fireflow plan new``); ``plan check`` lists them."""
    agencies: tuple[Agency, ...]
    categories: tuple[Category, ...]
    phases: tuple[Phase, ...]
    deadlines_fixed: tuple[ReportDeadline, ...] = Field(alias="deadlines")
    progress_reports: ProgressReports
    duties: tuple[PhaseDuty, ...] = ()
    """Phase duties as obligations (五(一)-(五), 六(五)-(六)); none in a plan of the old format."""
    forms: tuple[Form, ...] = ()
    settings: Settings
    holidays: HolidaySettings = HolidaySettings()
    rules: tuple[RuleEntry, ...]
    routes: tuple[Route, ...] = ()
    authority: tuple[Authority, ...] = ()
    engine_rules: EngineRules = EngineRules()
    """The rule id each decision of the engine cites (default: the built-in ids)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def cite(self, rule: str) -> str:
        """The plan's id for a rule the engine cites by its built-in id (others unchanged).

        >>> from fireflow.plan import load_plan
        >>> load_plan("changle-2022").cite("R-TKT-OPEN")
        'R-TKT-OPEN'
        """
        key = ENGINE_RULE_KEYS.get(rule)
        return rule if key is None else str(getattr(self.engine_rules, key))

    def cite_all(self, rules: tuple[str, ...]) -> tuple[str, ...]:
        """:meth:`cite` of each rule, in order, each id once (an accepted event's ``rules``).

        Answers are kept per tuple of ids: the engine asks this for every event, and a
        plan's steps cite a few dozen distinct tuples.

        >>> from fireflow.plan import load_plan
        >>> load_plan("changle-2022").cite_all(("R-TKT-OPEN", "R-TKT-OPEN", "R-AUTH-ROLES"))
        ('R-TKT-OPEN', 'R-AUTH-ROLES')
        """
        cache = self._cited
        found = cache.get(rules)
        if found is None:
            found = tuple(dict.fromkeys(self.cite(r) for r in rules))
            if len(cache) < 4096:  # bounded: a caller passing ever-new tuples gets no growth
                cache[tuple(rules)] = found
        return found

    def has_agency(self, agency_id: str) -> bool:
        """Does the plan know this agency id?

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> plan.has_agency("fire"), plan.has_agency("nobody")
        (True, False)
        """
        return agency_id in self._index["agency"]

    def _repr_html_(self) -> str:
        """The plan as HTML tables in a notebook (phases, deadlines, categories; escaped)."""
        from fireflow.plan.html import plan_html  # noqa: PLC0415 (delegating, DESIGN.md)

        return plan_html(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Plan:
        """A copy (pydantic's); cached lookups and the calendar are rebuilt for it."""
        copy = super().model_copy(update=update, deep=deep)
        for cached in ("_index", "_cited", "_routings", "calendar"):
            copy.__dict__.pop(cached, None)
        return copy

    # ------------------------------------------------------------------ lookups
    @functools.cached_property
    def _cited(self) -> dict[tuple[str, ...], tuple[str, ...]]:
        return {}

    @functools.cached_property
    def _routings(self) -> dict[tuple[str, str, str | None, bool], Routing]:
        return {}

    @functools.cached_property
    def _index(self) -> dict[str, dict[str, Any]]:
        return {
            "agency": {a.id: a for a in self.agencies},
            "category": {c.id: c for c in self.categories},
            "phase": {p.id: p for p in self.phases},
            "rule": {r.id: r for r in self.rules},
            "form": {f.id: f for f in self.forms},
            "route": {r.id: r for r in self.routes},
            "authority": {a.trigger: a for a in self.authority},
        }

    def _get(self, kind: str, key: str) -> Any:
        try:
            return self._index[kind][key]
        except KeyError:
            known = ", ".join(self._index[kind])
            raise InvalidArgument(kind, f"unknown {kind} id {key!r}; known: {known}") from None

    def agency(self, agency_id: str) -> Agency:
        """The agency with this id; :class:`InvalidArgument` if unknown."""
        return self._get("agency", agency_id)  # type: ignore[no-any-return]

    def category(self, category_id: str) -> Category:
        """The hazard category with this id; :class:`InvalidArgument` if unknown."""
        return self._get("category", category_id)  # type: ignore[no-any-return]

    def phase(self, phase_id: str) -> Phase:
        """The phase with this id; :class:`InvalidArgument` if unknown."""
        return self._get("phase", phase_id)  # type: ignore[no-any-return]

    def rule(self, rule_id: str) -> RuleEntry:
        """The catalogue entry of a rule id; :class:`InvalidArgument` if unknown."""
        return self._get("rule", rule_id)  # type: ignore[no-any-return]

    def route(self, route_id: str) -> Route:
        """The route with this id; :class:`InvalidArgument` if unknown."""
        return self._get("route", route_id)  # type: ignore[no-any-return]

    def authority_for(self, trigger: str) -> Authority | None:
        """The authority entry of a trigger, or None when the plan names none."""
        found: Authority | None = self._index["authority"].get(trigger)
        return found

    def routing(
        self,
        category: str,
        location: str,
        subtype: str | None = None,
        *,
        new_community: bool = False,
    ) -> Routing:
        """The routing of a hazard (:func:`fireflow.plan.routing.route_for`), kept per plan.

        Answers are kept: the engine asks this for every report, and a plan has a few
        dozen (category, location, subtype) keys.

        >>> from fireflow.plan import load_plan
        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> found = plan.routing("fire_lane_vehicle", "inside", "zombie_vehicle")
        >>> found.route, plan.routing("fire_lane_vehicle", "inside", "zombie_vehicle") is found
        ('fire_lane_inside_unplated', True)
        """
        key = (category, location, subtype, new_community)
        found = self._routings.get(key)
        if found is None:
            found = find_routing(self, category, location, subtype, new_community=new_community)
            self._routings[key] = found
        return found

    def form(self, form_id: str) -> Form:
        """The annex form with this id; :class:`InvalidArgument` if unknown."""
        return self._get("form", form_id)  # type: ignore[no-any-return]

    @property
    def start(self) -> date:
        """First day of the campaign (the first phase's start)."""
        return self.phases[0].start

    @property
    def end(self) -> date:
        """Last day of the campaign (the last phase's end)."""
        return self.phases[-1].end

    def local_date(self, value: date | datetime, field: str = "date") -> date:
        """A date, or the date of an aware datetime in the plan's time zone.

        >>> from fireflow.plan import load_plan
        >>> import pendulum
        >>> plan = load_plan("changle-2022")
        >>> plan.local_date(pendulum.datetime(2022, 3, 15, 17, 0, tz="UTC"))
        datetime.date(2022, 3, 16)
        """
        return self.calendar.to_date(value, field)

    def phase_on(self, d: date | datetime) -> Phase | None:
        """The phase a day belongs to (R-CAL-PHASES), or None outside the campaign.

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> plan.phase_on(date(2022, 7, 16)).id
        'spot_check'
        >>> plan.phase_on(date(2023, 1, 1)) is None
        True
        """
        day = self.local_date(d, "d")
        for p in self.phases:
            if p.start <= day <= p.end:
                return p
        return None

    # ------------------------------------------------------------ the calendar
    @functools.cached_property
    def calendar(self) -> Calendar:
        """The plan's calendar: built-in holiday data, corrections and the plan's overrides.

        Built by :func:`calendar_for_plan`; call that for another holiday source
        or provisional estimates.
        """
        return calendar_for_plan(self)

    def provisional(self) -> Plan:
        """This plan with provisional estimates for years without holiday data.

        Its :attr:`calendar` (used by every engine that computes dates) is
        :func:`calendar_for_plan` with ``allow_provisional=True``: dates in a year
        without official data or override are estimates, marked provisional.

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022").provisional()
        >>> plan.calendar.is_provisional(date(2100, 1, 4)), plan == load_plan("changle-2022")
        (True, True)
        """
        copy = self.model_copy()
        copy.__dict__["calendar"] = calendar_for_plan(copy, allow_provisional=True)
        return copy

    def deadlines(self, calendar: Calendar | None = None) -> list[Deadline]:
        """Every report deadline of the plan, in date order.

        Ids: ``ledger``, ``dossier``, ``summary`` and ``progress.<phase id>``.
        ``calendar`` defaults to :attr:`calendar`; pass another one to use a
        replaced holiday source or provisional estimates.

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> d = {x.id: x for x in plan.deadlines()}
        >>> d["summary"].nominal, d["summary"].due  # 12-10 is a Saturday
        (datetime.date(2022, 12, 10), datetime.date(2022, 12, 12))
        """
        return report_deadlines(self, calendar or self.calendar)

    def is_new_community(self, delivered_on: date | None, new_community: bool | None) -> bool:
        """Is a community new (新建, R-ROUTE-SIGN)?  What the report says wins; else the date.

        A report may say ``new_community`` outright, or give the delivery (交付) date, which
        makes the community new when ``settings.new_community_since`` is set and the date is
        on or after it (a default reading: the plan does not define 新建).

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> plan.is_new_community(date(2021, 6, 1), None), plan.is_new_community(None, True)
        (False, True)
        """
        if new_community is not None:
            return new_community
        since = self.settings.new_community_since
        return delivered_on is not None and since is not None and delivered_on >= since

    def rectification_period(self, category_id: str) -> tuple[int, PeriodUnit]:
        """The default rectification period of a category (R-TKT-DEADLINE)."""
        self.category(category_id)
        return self.settings.rectification_days[category_id], self.settings.period_unit

    def spot_check_window(self) -> Phase | None:
        """The phase inside which the district spot check may reopen tickets (R-SPOT-WINDOW).

        None when ``settings.spot_check.phase`` is None or names no phase of the plan.

        >>> from fireflow.plan import load_plan
        >>> w = load_plan("changle-2022").spot_check_window()
        >>> w.start, w.end
        (datetime.date(2022, 7, 16), datetime.date(2022, 10, 15))
        """
        wanted = self.settings.spot_check.phase
        found: Phase | None = self._index["phase"].get(wanted) if wanted else None
        return found

    def is_property_company(self, agency_id: str | None) -> bool:
        """Is the agency a property-service company (``settings.property_companies``)?

        >>> from fireflow.plan import load_plan
        >>> plan = load_plan("changle-2022")
        >>> plan.is_property_company("property"), plan.is_property_company("urban")
        (True, False)
        """
        return agency_id is not None and agency_id in self.settings.property_companies

    # ---------------------------------------------------------- serialisation
    def to_data(self) -> dict[str, Any]:
        """The plan as plain JSON-compatible data, ready to write as a file."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=False)

    def to_yaml(self) -> str:
        """The plan as YAML text that :func:`parse_plan` reads back equal."""
        return yaml.dump(
            self.to_data(), Dumper=_PlanDumper, allow_unicode=True, sort_keys=False, width=100
        )


# --------------------------------------------------------------------------- #
# YAML out


class _PlanDumper(yaml.SafeDumper):
    """SafeDumper that double-quotes text holding U+0085 (NEXT LINE).

    With ``allow_unicode`` PyYAML writes U+0085 raw, and YAML 1.1 reads it back
    as a line break; in double quotes it is escaped (``\\N``) and survives.
    """


def _represent_text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = '"' if "\x85" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_PlanDumper.add_representer(str, _represent_text)
