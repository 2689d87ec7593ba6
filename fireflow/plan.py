"""Campaign plans as validated data (方案即数据).

A plan is a YAML file (see ``docs/plan-format.md`` for why YAML and for every
field).  :func:`load_plan` reads a built-in plan by name or a file by path,
validates its structure *and* its cross-references, and reports every problem
at once as a :class:`~fireflow.errors.PlanError`, each with the file, the
path of the field and, where known, the line.

>>> plan = load_plan("changle-2022")
>>> [p.id for p in plan.phases]
['mobilization', 'self_inspection', 'rectification', 'spot_check', 'consolidation']
>>> plan.phase_on(date(2022, 3, 16)).name_zh
'整改落实'
>>> plan.rule("R-DUE-LEDGER").clause
'五(二)'
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import attrs
import pendulum
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from fireflow._yaml import capped, line_of, load_definition, problem_message, read_definition
from fireflow.calendar import (
    Calendar,
    ChainSource,
    ChineseCalendarSource,
    CorrectedSource,
    Correction,
    HolidaySource,
    OverrideSource,
    YearData,
    correction_problems,
)
from fireflow.errors import InvalidArgument, PlanError, PlanNotFound, Problem
from fireflow.text import FreeText, check_name, check_text, escape_for_terminal

__all__ = [
    "ADDED_ENGINE_RULES",
    "ADDED_SETTINGS",
    "MAX_PLAN_YEAR",
    "MIN_PLAN_YEAR",
    "PLAN_FORMAT",
    "Agency",
    "Authority",
    "Category",
    "Deadline",
    "DerivedFrom",
    "DutyDays",
    "EngineRules",
    "Form",
    "HolidayCorrection",
    "HolidayOverride",
    "HolidaySettings",
    "Label",
    "Phase",
    "PhaseDuty",
    "Plan",
    "ProgressReports",
    "ReportDeadline",
    "ReviewNote",
    "Route",
    "RuleEntry",
    "Settings",
    "SpotCheckSettings",
    "Subtype",
    "Text",
    "YearCoverage",
    "added_rule_entries",
    "builtin_plans",
    "calendar_coverage",
    "calendar_for_plan",
    "dump_plan",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
    "reach_years",
    "report_deadlines",
]

#: The format tag every plan file carries; bumped on incompatible changes.
PLAN_FORMAT = "fireflow.plan/1"

#: The decisions of the engine that cite a rule, and the built-in (Changle) id of each.
#: A plan names its own id for each in ``engine_rules`` (default: these ids); the engine
#: cites :meth:`Plan.cite` of them, and validation refuses a plan whose catalogue lacks one.
ENGINE_RULES: dict[str, str] = {
    "phases": "R-CAL-PHASES",  # 五: a date inside the campaign, the phase of a day
    "due_inclusive": "R-DUE-INCLUSIVE",  # "X月X日前" includes that day
    "holiday": "R-DUE-HOLIDAY",  # a due day on a rest day
    "open": "R-TKT-OPEN",  # report: a hazard enters the ledger
    "deadline": "R-TKT-DEADLINE",  # every transition into rectifying sets a deadline
    "reinspect": "R-TKT-REINSPECT",  # rectify, apply, re-check
    "sign_off": "R-TKT-SIGNOFF",  # sign-off and filing
    "recheck_fail": "R-TKT-FAIL",  # a failed re-check returns to rectification
    "spot_check_reopen": "R-TKT-SPOTCHECK",  # reopen after a spot check
    "roles": "R-AUTH-ROLES",  # who performs a step
    "separation": "R-AUTH-SEPARATION",  # who may not sign
    "overdue": "R-ESC-OVERDUE",  # past the deadline
    "refusal": "R-ESC-REFUSAL",  # refused after dissuasion
    "expose": "R-ESC-EXPOSE",  # exposure on the notice board
    "property": "R-ESC-PROPERTY",  # the property company's cooperation
    "official": "R-ESC-OFFICIAL",  # accountability of officials
    "building": "R-ROUTE-BUILDING",  # certify and demolish
    "new_community": "R-ROUTE-SIGN",  # a 新建 community
    "spot_ratio": "R-SPOT-RATIO",  # the spot-check ratio
    "spot_random": "R-SPOT-DOUBLE-RANDOM",  # the double-random draw
    "spot_window": "R-SPOT-WINDOW",  # reopening only inside the spot-check phase
    "duty_route": "R-DUTY-ROUTE",  # route and set the deadline after a report
    "duty_recheck": "R-DUTY-RECHECK",  # organise the re-check after an application
    "duty_sign_off": "R-DUTY-SIGNOFF",  # sign off after a passed re-check
    "duty_archive": "R-DUTY-ARCHIVE",  # photograph and file after sign-off
    "acc_slow": "R-ACC-SLOW",  # 不作为、慢作为: a missed duty
    "acc_wrong": "R-ACC-WRONG",  # 乱作为: repeated refused attempts
    "acc_falsified": "R-ACC-FALSIFIED",  # 弄虚作假: a sign-off a spot check proves untrue
    "acc_concealed": "R-ACC-CONCEALED",  # 隐瞒不报: first found by the district spot check
}
#: The engine rules added after plan format 1 was fixed: a plan whose catalogue lacks one
#: (and whose ``engine_rules`` names no id of its own for it) gets the built-in entry when it
#: is loaded, so that plans written before these rules keep loading (a default reading).
#: Settings added after plans were bound to histories (issue 22), as paths in ``settings``;
#: while a plan leaves them at their defaults they are not part of its digest
#: (:func:`fireflow.model.plan_rule_data`), so a plan written before them keeps its digest.
ADDED_SETTINGS: tuple[tuple[str, ...], ...] = (
    ("duty_days",),
    ("property_companies",),
    ("max_refused_attempts",),
    ("concealment_sources",),
    ("spot_check", "phase"),
)
ADDED_ENGINE_RULES: tuple[str, ...] = (
    "spot_window",
    "duty_route",
    "duty_recheck",
    "duty_sign_off",
    "duty_archive",
    "acc_slow",
    "acc_wrong",
    "acc_falsified",
    "acc_concealed",
)
_CANONICAL_KEY = {rule: key for key, rule in ENGINE_RULES.items()}
#: Kept for callers of the earlier name: the built-in ids of :data:`ENGINE_RULES`.
ENGINE_RULE_IDS: tuple[str, ...] = tuple(ENGINE_RULES.values())

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
RuleId = Annotated[str, StringConstraints(pattern=r"^R-[A-Z0-9]+(-[A-Z0-9]+)*$", max_length=64)]


def _name(value: str) -> str:
    """An identifier or display name under the text policy (fireflow.text)."""
    return check_name(value, "name")


def _text(value: str) -> str:
    """Free text under the text policy: controls and invisible characters refused."""
    return check_text(value, "text", max_length=_MAX_PLAN_TEXT)


#: Free text in a plan (rule quotes, summaries) may be longer than a ticket's description.
_MAX_PLAN_TEXT = 20_000
#: The years a plan's dates may fall in (its ``year`` field's range): a phase ending on
#: 9999-12-31 leaves no room for a deadline after it and is refused when the plan loads.
MIN_PLAN_YEAR, MAX_PLAN_YEAR = 1949, 2200


def _plan_date(value: date) -> date:
    """A date of the plan inside :data:`MIN_PLAN_YEAR`-:data:`MAX_PLAN_YEAR`."""
    if not MIN_PLAN_YEAR <= value.year <= MAX_PLAN_YEAR:
        raise InvalidArgument(
            "value",
            f"{value} is outside the years {MIN_PLAN_YEAR}-{MAX_PLAN_YEAR} a plan may cover "
            "(日期超出方案年份范围)",
            rule="R-CAL-PHASES",
        )
    return value


#: A date in a plan: a real day inside the years a plan may cover.
PlanDate = Annotated[date, AfterValidator(_plan_date)]
NameText = Annotated[str, StringConstraints(min_length=1), AfterValidator(_name)]
NonEmpty = Annotated[str, StringConstraints(min_length=1), AfterValidator(_text)]
PlanText = Annotated[str, AfterValidator(_text)]
PeriodUnit = Literal["calendar", "working"]
Level = Literal["province", "city", "county", "district", "town", "community", "external"]
"""Where an agency sits: government levels from province down to town, then community
parties and external ones (experts)."""
GOVERNMENT_LEVELS: tuple[Level, ...] = ("province", "city", "county", "district", "town")
"""The levels of government departments (相关部门): by default they count at a re-check."""
HolidayPolicy = Literal["roll_forward", "roll_back", "none"]


class _Model(BaseModel):
    """Frozen, strict-about-extras base for every plan model."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Text(_Model):
    """A text people read: Chinese first, English for developers."""

    zh: NonEmpty
    en: NonEmpty

    def __str__(self) -> str:
        return f"{self.zh} ({self.en})"


class Label(Text):
    """A display name (of the plan, an agency, a phase, ...): one line, under the name policy.

    Names are what people compare by eye, so they follow :func:`fireflow.text.check_name`:
    NFC, no control, bidirectional or invisible format characters.
    """

    zh: NameText
    en: NameText


class Agency(_Model):
    """A department or party named by the plan (区住建局, 物业服务企业, ...)."""

    id: Id
    name: Label
    level: Level
    note: PlanText = ""


class Subtype(_Model):
    """A finer kind of hazard inside a category (e-bike, zombie car, ...)."""

    id: Id
    name: Label


class Category(_Model):
    """A hazard category (整治重点, 二(一)-(四))."""

    id: Id
    name: Label
    clause: PlanText
    covers: Text
    subtypes: tuple[Subtype, ...] = ()

    def subtype(self, subtype_id: str) -> Subtype:
        """The subtype with this id; :class:`InvalidArgument` if unknown."""
        for s in self.subtypes:
            if s.id == subtype_id:
                return s
        raise InvalidArgument("subtype", f"unknown subtype {subtype_id!r} of category {self.id!r}")


class Phase(_Model):
    """A campaign phase (工作步骤): an inclusive window of dates."""

    id: Id
    name: Label
    start: PlanDate
    end: PlanDate
    clause: PlanText
    summary: Text

    @property
    def name_zh(self) -> str:
        """The Chinese name, e.g. ``动员部署``."""
        return self.name.zh

    @property
    def name_en(self) -> str:
        """The English name, e.g. ``Mobilization``."""
        return self.name.en

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.start <= d <= self.end

    @property
    def days(self) -> int:
        """Number of days in the window, both ends included."""
        return (self.end - self.start).days + 1


class ReportDeadline(_Model):
    """A fixed-date report obligation written in the plan ("X月X日前报送")."""

    id: Id
    name: Label
    nominal: PlanDate
    senders: tuple[Id, ...]
    recipients: tuple[Id, ...]
    rule: RuleId
    clause: PlanText
    contents: tuple[Text, ...] = ()
    """Minimum contents (等内容 means the list is a minimum)."""
    named_person: bool = False
    """The sender must name the person responsible (专人, 六(六)); a submission without one
    is refused at record time (:func:`fireflow.rules.reporting.check_submission`)."""


class ProgressReports(_Model):
    """每阶段结束前5日 (六(六)): a progress report before each phase ends.

    ``reading`` (an interpretation, R-DUE-PROGRESS): ``on`` = due on the day
    ``offset`` units before the phase end; ``no_later_than`` = the same day is
    the latest, any earlier day in the phase is on time; ``within`` = any day of
    the last ``offset`` days of the phase, the phase end being the latest.
    """

    rule: RuleId
    clause: PlanText
    name: Label
    senders: tuple[Id, ...]
    """Who reports; ``[]``: the plan has no progress reports (none are due, none shown)."""
    recipients: tuple[Id, ...]
    offset: Annotated[int, Field(ge=0, le=366)] = 5
    unit: PeriodUnit = "calendar"
    reading: Literal["on", "no_later_than", "within"] = "on"
    named_person: bool = True
    """六(六) 安排专人…书面报送: a progress report names the person responsible (专人)."""


class SpotCheckSettings(_Model):
    """抽查 settings (五(四), 六(五))."""

    ratio: Annotated[float, Field(gt=0, le=1)] = 0.10
    rounding: Literal["ceil"] = "ceil"
    base: Literal["district", "town", "with_problems"] = "district"
    method: Literal["double_random", "simple_random"] = "double_random"
    lead: tuple[Id, ...]
    """The agencies that lead the spot check (no default: the plan names its own)."""
    participants: tuple[Id, ...] = ()
    phase: Id | None = "spot_check"
    """R-SPOT-WINDOW, 五(四) 抽查核实阶段（7月16日至10月15日）: the phase (by id) inside which the
    district spot check may reopen a ticket; None: no window (default: ``spot_check``; a plan
    without a phase of that id has no window)."""


class DutyDays(_Model):
    """The periods of the offices' duties on a ticket (五(三)); the plan gives no number.

    Each is a **default** reading (R-DUTY-*), counted in ``unit`` from the day the step
    became due (the first day not counted, 民法典 第二百零一条), rest days rolled by the
    plan's holiday policy.
    """

    route: Annotated[int, Field(ge=1, le=366)] = 3
    """R-DUTY-ROUTE: route the hazard and set its deadline, counted from the report."""
    recheck: Annotated[int, Field(ge=1, le=366)] = 5
    """R-DUTY-RECHECK: organise the re-check, counted from the application (申报复验)."""
    sign_off: Annotated[int, Field(ge=1, le=366)] = 3
    """R-DUTY-SIGNOFF: the acceptance people sign, counted from the passed re-check."""
    archive: Annotated[int, Field(ge=1, le=366)] = 5
    """R-DUTY-ARCHIVE: photograph and file (拍照建档), counted from the sign-off."""
    unit: Literal["calendar", "working"] = "working"


# --- obligations (issue 22 items 5, 8: phase duties as obligations) -------- #


class PhaseDuty(_Model):
    """A phase duty of the plan as an obligation (五(一)-(五), 六(五)-(六)).

    ``senders`` owe it (a kind of party: ``town``, ``property``), ``recipients`` are
    whom the plan names to receive it (none where the plan names none).  ``due`` is
    the last day; None means the end of ``phase`` (a default reading: the plan gives
    no date, R-OBL-DEFAULT-DUE).  ``per`` says whether every town or every community
    owes it.  ``every`` names the setting of a recurring duty's interval in days
    (``joint_meeting_interval_days``, 六(五) 定期): one obligation per interval of the
    phase, each due on the interval's last day.  ``public`` marks a duty whose record
    is published (一公开).  Records are :class:`fireflow.rules.reporting.Submission`
    with ``report_id`` = ``id``.
    """

    id: Id
    name: Label
    phase: Id
    senders: tuple[Id, ...]
    recipients: tuple[Id, ...] = ()
    due: date | None = None
    per: Literal["town", "community", "district"] = "town"
    every: Literal["joint_meeting_interval_days"] | None = None
    rule: RuleId
    clause: PlanText
    contents: tuple[Text, ...] = ()
    """Minimum contents of the record (e.g. the responsibility list, leader, liaison)."""
    named_person: bool = False
    public: bool = False


def _time_text_only(value: Any) -> Any:
    """YAML 1.1 reads an unquoted 17:30 as the number 1050: refuse numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            "write the time as quoted text, e.g. '17:30' (unquoted YAML reads 17:30 as 1050)"
        )
    return value


class Settings(_Model):
    """The settings behind every **default** reading of the plan.

    Each field names the rule it parameterises; ``docs/plan-format.md`` explains
    them all.
    """

    holiday_policy: HolidayPolicy = "roll_forward"
    """R-DUE-HOLIDAY: a due date on a rest day moves to the next working day
    (民法典 第二百零三条), to the previous one, or stays."""
    rest_days: Literal["observed", "holidays_only"] = "observed"
    """R-DUE-HOLIDAY: ``observed`` = weekends and public holidays as actually
    observed after make-up days (调休); ``holidays_only`` = public holidays only."""
    due_inclusive: bool = True
    """R-DUE-INCLUSIVE: "X月X日前" includes that day."""
    period_unit: PeriodUnit = "calendar"
    """R-DUE-HOLIDAY / R-TKT-DEADLINE: the unit of rectification periods."""
    rectification_days: Mapping[Id, Annotated[int, Field(ge=1, le=366)]]
    """R-TKT-DEADLINE: rectification period (限期) per hazard category."""
    rectification_cap: Id | None = None
    """R-TKT-DEADLINE: the id of a fixed report deadline (``deadlines``) that no rectification
    deadline may run past (a deadline that would is cut to that due day, citing the deadline's
    own rule); None: rectification deadlines may run past every report date."""
    office_close: Annotated[time | None, BeforeValidator(_time_text_only)] = None
    """R-DUE-HOLIDAY: None = a due day ends at 24:00; else at this local time."""
    spot_check: SpotCheckSettings
    """No default: its ``lead`` names the plan's own agencies."""
    accountability_lead: tuple[Id, ...]
    """R-ESC-OFFICIAL: who the 牵头部门 of 六(四) is (no default: the plan's own agencies)."""
    accountability_office: Id
    """R-ESC-OFFICIAL: the office that officials are referred to (效能部门; no default)."""
    property_escalation_to: tuple[Id, ...]
    """R-ESC-PROPERTY, 六(四) 由区住建局、区消防救援大队…予以严肃查处: who a property company
    that cooperates poorly (``max_failed_rechecks`` failed re-checks) escalates to (no
    default: the plan's own agencies)."""
    max_failed_rechecks: Annotated[int, Field(ge=1)] = 2
    """R-TKT-FAIL / R-ESC-PROPERTY: failed re-checks after which the ticket escalates."""
    min_recheck_agencies: Annotated[int, Field(ge=1)] = 2
    """R-TKT-REINSPECT: distinct agencies at a re-check (the town and relevant departments)."""
    photo_required_sources: tuple[
        Literal["self_inspection", "town_inspection", "spot_check", "patrol", "public_report"], ...
    ] = ("self_inspection",)
    """R-TKT-OPEN: report sources that must come with a photo (拍照建档)."""
    non_signing_agencies: tuple[Id, ...] = ()
    """R-AUTH-SEPARATION: agencies that inspect but never sign off."""
    joint_meeting_interval_days: Annotated[int, Field(ge=1)] = 30
    """六(五): the frequency of 定期 joint meetings."""
    goods_on_fire_lane: tuple[Id, Id] | None = None
    """Goods piled on a fire-truck lane (四(三)): (category, subtype); None: the plan files
    them under no particular category (the report's own category stands)."""
    new_community_since: PlanDate | None = None
    """R-ROUTE-SIGN, 四(二): a 新建 community is one delivered (交付) on or after this date
    (None: not by date; then only a report that says ``new_community`` makes one new)."""
    refusal_report_to: tuple[Id, ...] = ()
    """R-ESC-REFUSAL, 四(二) 立即反馈属地公安、消防、城管等部门: the agencies a refusal is always
    reported to; 等 lets a route's enforcers or the caller add more, never drop these."""
    recheck_counting_levels: tuple[Level, ...] = GOVERNMENT_LEVELS
    """R-TKT-REINSPECT, 五(三) 再组织相关部门复查: agency levels that count toward
    ``min_recheck_agencies`` and whose people may sign off (default: every government
    level, :data:`GOVERNMENT_LEVELS`); the rectifier never counts."""
    duty_days: DutyDays = DutyDays()
    """R-DUTY-ROUTE, R-DUTY-RECHECK, R-DUTY-SIGNOFF, R-DUTY-ARCHIVE (五(三)): the periods of
    the offices' duties on a ticket (default readings: the plan gives no number)."""
    property_companies: tuple[Id, ...] = ("property",)
    """R-ESC-PROPERTY, 六(四) 物业企业工作配合落实不力的: the agencies that are property-service
    companies; only their failures go to ``property_escalation_to``, a government
    department's failure is an official-accountability case (R-ACC-SLOW)."""
    max_refused_attempts: Annotated[int, Field(ge=1)] = 3
    """R-ACC-WRONG, 六(四) 乱作为: refused attempts by one agency on one ticket after which
    the lead departments are to refer it (default reading)."""
    concealment_sources: tuple[
        Literal["self_inspection", "town_inspection", "spot_check", "patrol", "public_report"], ...
    ] = ("self_inspection", "town_inspection")
    """R-ACC-CONCEALED, 六(四) 隐瞒不报: the report sources of the community's own and the
    town's inspections (五(二)(三)); a hazard first found by the district spot check in a
    community where none of these reported its category is a concealment case."""


class HolidayOverride(_Model):
    """The rest days and make-up working days of one year, set by the plan.

    A year with an override ignores the built-in holiday data for that year:
    rest days = weekends + ``rest_days`` - ``work_days``.
    """

    year: Annotated[int, Field(ge=1949, le=2200)]
    rest_days: tuple[PlanDate, ...] = ()
    work_days: tuple[PlanDate, ...] = ()
    note: PlanText = ""


class HolidayCorrection(_Model):
    """One day of the official holiday data corrected, citing the document.

    For an error in the ``chinese_calendar`` data found before the package
    is fixed: ``kind`` is what the day really is (``working`` for a make-up
    working day the data lacks, ``rest`` for a missing rest day); ``source``
    cites the official notice (required).
    """

    date: PlanDate
    kind: Literal["working", "rest"]
    source: Annotated[FreeText, Field(min_length=1)]
    """The official document that says what the day is (required)."""
    note: FreeText = ""


class HolidaySettings(_Model):
    """Where official holidays come from, per-year overrides and single-day corrections."""

    source: Literal["chinese_calendar", "none"] = "chinese_calendar"
    overrides: tuple[HolidayOverride, ...] = ()
    corrections: tuple[HolidayCorrection, ...] = ()


class RuleEntry(_Model):
    """One rule of the catalogue, with the clause that backs it."""

    id: RuleId
    clause: PlanText
    topic: Literal[
        "calendar", "reporting", "ticket", "routing", "escalation", "spotcheck", "authority"
    ]
    basis: Literal["plan", "default", "mixed"]
    """``plan`` = plan text; ``default`` = a library reading; ``mixed`` = both."""
    title_zh: NonEmpty
    title_en: NonEmpty
    quote_zh: PlanText
    text_zh: NonEmpty
    gloss_en: NonEmpty
    default_zh: PlanText = ""
    default_en: PlanText = ""

    @property
    def is_default(self) -> bool:
        """True when any part of the rule is a default reading, not plan text."""
        return self.basis != "plan"


class Form(_Model):
    """An annex form (附件); ``names`` keeps every name the plan uses for it."""

    id: Id
    number: Annotated[int, Field(ge=1)]
    names: tuple[NameText, ...]
    clause: PlanText
    title_en: NonEmpty


ROLES: tuple[str, ...] = (
    "rectifier",
    "lead",
    "supervisor",
    "recheck_lead",
    "enforcers",
    "cooperating",
)
"""Route roles an authority entry may name instead of fixed agencies."""


class Route(_Model):
    """Who rectifies, leads, re-checks and enforces for a kind of hazard (四(二)(三)).

    A route matches a ticket by category, location (``inside`` the community,
    ``around`` it, or ``any``) and subtype (empty = any subtype).  The most
    specific match wins: a named location beats ``any``, named subtypes beat
    none.
    """

    id: Id
    category: Id
    location: Literal["inside", "around", "any"] = "any"
    subtypes: tuple[Id, ...] = ()
    rectifier: Id
    """Who does the rectification (the property company inside its community)."""
    lead: Id
    """Who leads the work on the ticket (sets the deadline, records refusals)."""
    supervisor: Id
    """The supervising agency that overdue tickets escalate to (R-ESC-OVERDUE)."""
    cooperating: tuple[Id, ...] = ()
    recheck_lead: Id
    """Who leads the re-check and signs off (no default: the plan names its own agency)."""
    enforcers: tuple[Id, ...] = ()
    """Who a refusal is reported to (R-ESC-REFUSAL)."""
    certifier: Id | None = None
    """Who must certify before demolition (R-ROUTE-BUILDING), when any."""
    new_community: bool | None = None
    """Match only tickets of new (``True``) or of other (``False``) communities; ``None``: any
    (R-ROUTE-SIGN, 四(二) 新建物业小区)."""
    punishers: tuple[Id, ...] = ()
    """Agencies that may ``punish`` on this route in any open state, without waiting for an
    escalation (四(二) 消防部门…对占用、堵塞、封闭消防车通道…依法进行查处)."""
    punish_rules: tuple[RuleId, ...] = ()
    """The rules a direct ``punish`` cites: a subset of ``rules``."""
    rules: tuple[RuleId, ...]
    note: PlanText = ""


class Authority(_Model):
    """Who may fire a trigger: fixed agencies and/or route roles (R-AUTH-ROLES)."""

    trigger: Id
    agencies: tuple[Id, ...] = ()
    roles: tuple[
        Literal["rectifier", "lead", "supervisor", "recheck_lead", "enforcers", "cooperating"], ...
    ] = ()
    rules: tuple[RuleId, ...]


class EngineRules(_Model):
    """The rule id each decision of the engine cites (see :data:`ENGINE_RULES`).

    The built-in plan gives Changle's ids; another plan may give its own, each of
    which must be in its catalogue.
    """

    phases: RuleId = "R-CAL-PHASES"
    due_inclusive: RuleId = "R-DUE-INCLUSIVE"
    holiday: RuleId = "R-DUE-HOLIDAY"
    open: RuleId = "R-TKT-OPEN"
    deadline: RuleId = "R-TKT-DEADLINE"
    reinspect: RuleId = "R-TKT-REINSPECT"
    sign_off: RuleId = "R-TKT-SIGNOFF"
    recheck_fail: RuleId = "R-TKT-FAIL"
    spot_check_reopen: RuleId = "R-TKT-SPOTCHECK"
    roles: RuleId = "R-AUTH-ROLES"
    separation: RuleId = "R-AUTH-SEPARATION"
    overdue: RuleId = "R-ESC-OVERDUE"
    refusal: RuleId = "R-ESC-REFUSAL"
    expose: RuleId = "R-ESC-EXPOSE"
    property: RuleId = "R-ESC-PROPERTY"
    official: RuleId = "R-ESC-OFFICIAL"
    building: RuleId = "R-ROUTE-BUILDING"
    new_community: RuleId = "R-ROUTE-SIGN"
    spot_ratio: RuleId = "R-SPOT-RATIO"
    spot_random: RuleId = "R-SPOT-DOUBLE-RANDOM"
    spot_window: RuleId = "R-SPOT-WINDOW"
    duty_route: RuleId = "R-DUTY-ROUTE"
    duty_recheck: RuleId = "R-DUTY-RECHECK"
    duty_sign_off: RuleId = "R-DUTY-SIGNOFF"
    duty_archive: RuleId = "R-DUTY-ARCHIVE"
    acc_slow: RuleId = "R-ACC-SLOW"
    acc_wrong: RuleId = "R-ACC-WRONG"
    acc_falsified: RuleId = "R-ACC-FALSIFIED"
    acc_concealed: RuleId = "R-ACC-CONCEALED"


class DerivedFrom(_Model):
    """The plan a plan was made from by ``fireflow plan new`` (:mod:`fireflow.plan_new`)."""

    plan: NonEmpty
    """The source plan's id."""
    district: Label
    year: Annotated[int, Field(ge=1949, le=2200)]


class ReviewNote(_Model):
    """A place marked for review (待复核) by ``fireflow plan new``; delete it once checked."""

    path: NonEmpty
    """The field, e.g. ``rules[3].quote_zh``."""
    kind: Literal["district", "year", "date", "number", "id", "calendar", "holidays"]
    found: tuple[PlanText, ...] = ()
    note: PlanText = ""


class Plan(_Model):
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

        >>> load_plan("changle-2022").cite("R-TKT-OPEN")
        'R-TKT-OPEN'
        """
        key = _CANONICAL_KEY.get(rule)
        return rule if key is None else str(getattr(self.engine_rules, key))

    def cite_all(self, rules: tuple[str, ...]) -> tuple[str, ...]:
        """:meth:`cite` of each rule, in order, each id once (an accepted event's ``rules``).

        Answers are kept per tuple of ids: the engine asks this for every event, and a
        plan's steps cite a few dozen distinct tuples.

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

        >>> plan = load_plan("changle-2022")
        >>> plan.has_agency("fire"), plan.has_agency("nobody")
        (True, False)
        """
        return agency_id in self._index["agency"]

    def _repr_html_(self) -> str:
        """The plan as HTML tables in a notebook (phases, deadlines, categories; escaped)."""
        from fireflow.plan_html import plan_html  # noqa: PLC0415 (delegating, DESIGN.md)

        return plan_html(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Plan:
        """A copy (pydantic's); cached lookups and the calendar are rebuilt for it."""
        copy = super().model_copy(update=update, deep=deep)
        for cached in ("_index", "_cited", "calendar"):
            copy.__dict__.pop(cached, None)
        return copy

    # ------------------------------------------------------------------ lookups
    @functools.cached_property
    def _cited(self) -> dict[tuple[str, ...], tuple[str, ...]]:
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
            "routing": {},  # (category, location, subtype) -> Routing, filled by route_for
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

        >>> import pendulum
        >>> plan = load_plan("changle-2022")
        >>> plan.local_date(pendulum.datetime(2022, 3, 15, 17, 0, tz="UTC"))
        datetime.date(2022, 3, 16)
        """
        return self.calendar.to_date(value, field)

    def phase_on(self, d: date | datetime) -> Phase | None:
        """The phase a day belongs to (R-CAL-PHASES), or None outside the campaign.

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

        >>> w = load_plan("changle-2022").spot_check_window()
        >>> w.start, w.end
        (datetime.date(2022, 7, 16), datetime.date(2022, 10, 15))
        """
        wanted = self.settings.spot_check.phase
        found: Phase | None = self._index["phase"].get(wanted) if wanted else None
        return found

    def is_property_company(self, agency_id: str | None) -> bool:
        """Is the agency a property-service company (``settings.property_companies``)?

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


# =========================================================================== #
# The plan's calendar and report deadlines (the calendar itself knows no plans)


def calendar_for_plan(
    plan: Plan,
    *,
    source: HolidaySource | None = None,
    allow_provisional: bool = False,
) -> Calendar:
    """The calendar of a plan: its time zone, policy, corrections and overrides.

    The rest days of a year come from the plan's ``holidays.overrides`` when
    it has one, else from ``source`` (by default the ``chinese_calendar``
    data with :data:`~fireflow.calendar.BUILTIN_CORRECTIONS`, or nothing with
    ``holidays.source: none``) with the plan's ``holidays.corrections``
    applied.  ``plan.calendar`` is ``calendar_for_plan(plan)``, built once.

    >>> plan = load_plan("changle-2022")
    >>> rough = calendar_for_plan(plan, allow_provisional=True)
    >>> rough.deadline(date(2100, 9, 30), 1).provisional
    True
    """
    st = plan.settings
    overrides = OverrideSource(
        {
            o.year: YearData.from_days(
                o.year,
                o.rest_days,
                o.work_days,
                source=f"plan {plan.id} override",
                weekends=st.rest_days == "observed",
            )
            for o in plan.holidays.overrides
        }
    )
    base: HolidaySource
    if source is not None:
        base = source
    elif plan.holidays.source == "chinese_calendar":
        base = ChineseCalendarSource(st.rest_days)
    else:
        base = OverrideSource({})
    fixes = _corrections(plan.holidays.corrections)
    if fixes:
        base = CorrectedSource(base, fixes, field="holidays.corrections")
    return Calendar(
        source=ChainSource(overrides, base),
        timezone=plan.timezone,
        holiday_policy=st.holiday_policy,
        office_close=st.office_close,
        allow_provisional=allow_provisional,
    )


@attrs.frozen
class YearCoverage:
    """Where the rest days of one year come from, for a plan.

    ``kind`` is ``official`` (the ``chinese_calendar`` package, ``detail`` naming
    its version), ``corrected`` (official data with the plan's or the built-in
    single-day corrections), ``override`` (the plan's ``holidays.overrides``),
    ``provisional`` (an estimate, asked for) or ``missing`` (no data: dates in
    that year cannot be computed).
    """

    year: int
    kind: Literal["official", "corrected", "override", "provisional", "missing"]
    detail: str

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data."""
        return {"year": self.year, "kind": self.kind, "detail": self.detail}

    def __str__(self) -> str:
        zh = {
            "official": "官方数据",
            "corrected": "官方数据（单日更正）",
            "override": "方案给定",
            "provisional": "估算",
            "missing": "缺少数据",
        }[self.kind]
        return f"{self.year}: {zh} {self.kind} ({self.detail})"


def reach_years(plan: Plan) -> range:
    """The years the campaign and its longest deadlines can reach.

    From the first phase's year to the year of the campaign's last day plus the
    longest rectification period (a working-day period counted generously: two
    calendar days per working day, and a month for holidays and the roll forward).

    >>> reach_years(load_plan("changle-2022"))
    range(2022, 2024)
    """
    longest = max(plan.settings.rectification_days.values(), default=0)
    if plan.settings.period_unit == "working":
        longest = 2 * longest
    last = plan.end + timedelta(days=longest + 31)
    return range(plan.start.year, last.year + 1)


def calendar_coverage(
    plan: Plan, years: Sequence[int] | range | None = None, *, allow_provisional: bool = False
) -> list[YearCoverage]:
    """Where each year's rest days come from (default: :func:`reach_years`).

    >>> [(c.year, c.kind) for c in calendar_coverage(load_plan("changle-2022"))]
    [(2022, 'official'), (2023, 'official')]
    >>> calendar_coverage(load_plan("changle-2022"), [2005])[0].detail.split("; ")[1]
    'corrected: 2005-12-31 working'
    """
    overrides = {o.year: o for o in plan.holidays.overrides}
    base: HolidaySource | None = None
    if plan.holidays.source == "chinese_calendar":
        base = ChineseCalendarSource(plan.settings.rest_days)
    fixes = _corrections(plan.holidays.corrections)
    out: list[YearCoverage] = []
    for year in reach_years(plan) if years is None else years:
        if year in overrides:
            note = overrides[year].note
            detail = f"plan {plan.id} holidays.overrides" + (f": {note}" if note else "")
            out.append(YearCoverage(year, "override", detail))
            continue
        found = base.year_data(year) if base is not None else None
        if found is None:
            if allow_provisional:
                out.append(
                    YearCoverage(year, "provisional", "weekends and fixed-date holidays only")
                )
            else:
                out.append(
                    YearCoverage(
                        year,
                        "missing",
                        f"add holidays.overrides for {year} to the plan, or pass --provisional "
                        f"(在 holidays.overrides 中给出 {year} 年休息日，或用 --provisional)",
                    )
                )
            continue
        mine = [c for c in fixes if c.date.year == year]
        if mine:
            found = found.corrected(mine)
        if found.corrections:
            days = ", ".join(f"{c.date} {c.kind}" for c in found.corrections)
            source = found.source.split(",", 1)[0]
            out.append(YearCoverage(year, "corrected", f"{source}; corrected: {days}"))
        else:
            out.append(YearCoverage(year, "official", found.source))
    return out


def _corrections(entries: Sequence[HolidayCorrection]) -> tuple[Correction, ...]:
    return tuple(Correction(c.date, c.kind, source=c.source, note=c.note) for c in entries)


@attrs.frozen
class Deadline:
    """A report obligation of the plan, with its computed due date.

    ``nominal`` is the date the plan writes, ``due`` the last day on time
    after the inclusive reading and the holiday policy, ``earliest`` the first
    day of the submission window when the reading sets one.
    """

    id: str
    name_zh: str
    name_en: str
    nominal: date
    due: date
    recipients: tuple[str, ...]
    senders: tuple[str, ...]
    rule: str
    clause: str
    rules: tuple[str, ...]
    phase: str | None = None
    earliest: date | None = None
    provisional: bool = False

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data (dates as ISO strings)."""
        out: dict[str, object] = {}
        for a in attrs.fields(Deadline):
            v = getattr(self, a.name)
            out[a.name] = (
                v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v
            )
        return out


def report_deadlines(plan: Plan, calendar: Calendar) -> list[Deadline]:
    """Every report deadline of ``plan`` computed on ``calendar``, in date order.

    Fixed-date deadlines ("X月X日前", R-DUE-INCLUSIVE) end on the nominal day
    when inclusive, else the day before; progress reports follow the plan's
    reading of 每阶段结束前5日 (R-DUE-PROGRESS).  The holiday policy then
    applies (R-DUE-HOLIDAY).  ``plan.deadlines(calendar)`` calls it.
    """
    st = plan.settings
    out: list[Deadline] = []
    for fixed in plan.deadlines_fixed:
        last = fixed.nominal if st.due_inclusive else fixed.nominal - timedelta(days=1)
        due = calendar.adjust(last)
        rules = [fixed.rule, plan.cite("R-DUE-INCLUSIVE")]
        if due != last:
            rules.append(plan.cite("R-DUE-HOLIDAY"))
        out.append(
            Deadline(
                id=fixed.id,
                name_zh=fixed.name.zh,
                name_en=fixed.name.en,
                nominal=fixed.nominal,
                due=due,
                recipients=fixed.recipients,
                senders=fixed.senders,
                rule=fixed.rule,
                clause=fixed.clause,
                rules=tuple(rules),
                phase=None if (ph := plan.phase_on(fixed.nominal)) is None else ph.id,
                provisional=calendar.is_provisional(due),
            )
        )
    pr = plan.progress_reports
    # a campaign without 每阶段结束前N日 reports says so with `senders: []`: none are due
    for phase in plan.phases if pr.senders else ():
        if pr.offset == 0:
            nominal = phase.end
        elif pr.unit == "working":
            nominal = calendar.working_days_before(phase.end, pr.offset)
        else:
            nominal = phase.end - timedelta(days=pr.offset)
        nominal = max(nominal, phase.start)
        earliest: date | None = None
        if pr.reading == "on":
            last, earliest = nominal, nominal
        elif pr.reading == "no_later_than":
            last, earliest = nominal, phase.start
        else:  # within the last `offset` units of the phase
            last, earliest = phase.end, min(nominal + timedelta(days=1), phase.end)
        due = calendar.adjust(last)
        rules = [pr.rule]
        if due != last:
            rules.append(plan.cite("R-DUE-HOLIDAY"))
        out.append(
            Deadline(
                id=f"progress.{phase.id}",
                name_zh=f"{pr.name.zh}（{phase.name.zh}）",
                name_en=f"{pr.name.en} ({phase.name.en})",
                nominal=nominal,
                due=due,
                recipients=pr.recipients,
                senders=pr.senders,
                rule=pr.rule,
                clause=pr.clause,
                rules=tuple(rules),
                phase=phase.id,
                earliest=earliest,
                provisional=calendar.is_provisional(due),
            )
        )
    out.sort(key=lambda d: (d.due, d.nominal, d.id))
    return out


# =========================================================================== #
# Loading


def builtin_plans() -> list[str]:
    """Names of the plans shipped with fireflow.

    >>> builtin_plans()
    ['changle-2022']
    """
    folder = resources.files("fireflow") / "plans"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_plan(name_or_path: str | os.PathLike[str]) -> Plan:
    """Load a built-in plan by name, or a plan file by path, and validate it.

    Raises :class:`~fireflow.errors.PlanError` listing every problem (the
    first :data:`~fireflow._yaml.MAX_PROBLEMS`, then their count), or
    :class:`~fireflow.errors.PlanNotFound`.  A file is read within the limits
    of :mod:`fireflow._yaml` (size, nodes, aliases, nesting).
    """
    if isinstance(name_or_path, str) and name_or_path in builtin_plans():
        return _load_builtin(name_or_path)
    path = Path(name_or_path)
    if path.is_file():
        # at most MAX_DEFINITION_BYTES, checked before the file is read whole
        text = read_definition(path, str(path), PlanError, "plan")
        return parse_plan(text, source=str(path))
    raise PlanNotFound(str(name_or_path), builtin_plans())


@functools.lru_cache(maxsize=8)
def _load_builtin(name: str) -> Plan:
    text = (resources.files("fireflow") / "plans" / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_plan(text, source=f"<builtin:{name}>")


def parse_plan(text: str, source: str = "<data>") -> Plan:
    """Parse and validate plan YAML text (``source`` names it in errors)."""
    data, lines, problems = load_definition(text, source, PlanError, "plan")
    return validate_plan_data(data, source, lines, problems)


def validate_plan_data(
    data: Any,
    source: str = "<data>",
    lines: Mapping[str, int] | None = None,
    problems: Sequence[Problem] = (),
) -> Plan:
    """Validate already-parsed plan data; report structure and cross-reference problems together."""
    lines = lines or {}
    found = list(problems)
    if not isinstance(data, Mapping):
        raise PlanError([*found, Problem(source, "", "a plan must be a mapping of fields")])
    data = _with_added_rules(data)
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = _path(err["loc"])
            found.append(Problem(source, path, problem_message(err), line=line_of(lines, path)))
    for path, message, rule in _semantic_problems(data):
        found.append(Problem(source, path, message, rule=rule, line=line_of(lines, path)))
    if found:
        ordered = sorted(found, key=lambda p: (p.line or 10**9, p.path, p.message))
        raise PlanError(capped(ordered, source), total=len(ordered))
    assert plan is not None
    return plan


@functools.cache
def added_rule_entries() -> dict[str, Mapping[str, Any]]:
    """The built-in (Changle) catalogue entries of :data:`ADDED_ENGINE_RULES`, by rule id.

    What a plan written before these rules gets when it is loaded (plain data, as in a file).

    >>> sorted(added_rule_entries())[:2]
    ['R-ACC-CONCEALED', 'R-ACC-FALSIFIED']
    """
    text = (resources.files("fireflow") / "plans" / "changle-2022.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    wanted = {ENGINE_RULES[k] for k in ADDED_ENGINE_RULES}
    return {r["id"]: r for r in raw["rules"] if r.get("id") in wanted}


def _with_added_rules(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with the built-in entry of every added engine rule its catalogue lacks.

    Only where the plan's ``engine_rules`` names no id of its own for the rule: a plan
    written before the rule existed keeps loading, and the engine's citation of it has an
    entry (a default reading of the library, marked so by the entry's ``basis``).
    """
    rules = data.get("rules")
    if not isinstance(rules, list):
        return data
    declared = data.get("engine_rules")
    declared = declared if isinstance(declared, Mapping) else {}
    have = {r.get("id") for r in rules if isinstance(r, Mapping)}
    builtin = added_rule_entries()
    missing = [
        dict(builtin[ENGINE_RULES[k]])
        for k in ADDED_ENGINE_RULES
        if k not in declared and ENGINE_RULES[k] not in have and ENGINE_RULES[k] in builtin
    ]
    if not missing:
        return data
    return {**data, "rules": [*rules, *missing]}


def dump_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write a plan as a YAML file that :func:`load_plan` reads back equal.

    The file is written atomically and a symbolic link is refused
    (:mod:`fireflow.output`).
    """
    from fireflow import output  # noqa: PLC0415 (the one writer, needed only here)

    output.write_text(path, plan.to_yaml())


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the plan format (for editors and other systems)."""
    schema = Plan.model_json_schema(by_alias=True)
    schema["$id"] = "https://fireflow.invalid/schema/plan-1.json"
    schema["title"] = "fireflow campaign plan (fireflow.plan/1)"
    return schema


def plan_json_schema_text() -> str:
    """The JSON Schema as stable, sorted JSON text."""
    return json.dumps(plan_json_schema(), ensure_ascii=False, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- #
# YAML with duplicate keys refused and a line for every path


class _PlanDumper(yaml.SafeDumper):
    """SafeDumper that double-quotes text holding U+0085 (NEXT LINE).

    With ``allow_unicode`` PyYAML writes U+0085 raw, and YAML 1.1 reads it back
    as a line break; in double quotes it is escaped (``\\N``) and survives.
    """


def _represent_text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = '"' if "\x85" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_PlanDumper.add_representer(str, _represent_text)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = escape_for_terminal(str(part))  # paths are printed: keys come from the file
            out += f".{key}" if out else key
    return out


# --------------------------------------------------------------------------- #
# Cross-reference checks, run on the raw data so that they report alongside
# structural errors (a plan with a bad date *and* an unknown agency gets both).


def _items(data: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    seq = data.get(key)
    if isinstance(seq, list):
        for i, item in enumerate(seq):
            if isinstance(item, Mapping):
                yield i, item


def _list(value: Any) -> list[Any]:
    """A list from raw data, or an empty one (structure errors are pydantic's to report)."""
    return value if isinstance(value, list) else []


def _ids(data: Mapping[str, Any], key: str) -> set[str]:
    return {str(item["id"]) for _, item in _items(data, key) if "id" in item}


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _semantic_problems(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """Yield (path, message, rule) for every cross-reference problem."""
    agencies = _ids(data, "agencies")
    categories = _ids(data, "categories")
    rules = _ids(data, "rules")
    phases = _ids(data, "phases")

    for key in ("agencies", "categories", "phases", "deadlines", "duties", "rules", "forms"):
        seen: set[str] = set()
        for i, item in _items(data, key):
            ident = item.get("id")
            if isinstance(ident, str):
                if ident in seen:
                    yield f"{key}[{i}].id", f"duplicate id {ident!r}", None
                seen.add(ident)
    for i, cat in _items(data, "categories"):
        seen_sub: set[str] = set()
        subs = cat.get("subtypes")
        for j, sub in enumerate(subs if isinstance(subs, list) else []):
            sid = sub.get("id") if isinstance(sub, Mapping) else None
            if isinstance(sid, str):
                if sid in seen_sub:
                    yield f"categories[{i}].subtypes[{j}].id", f"duplicate subtype {sid!r}", None
                seen_sub.add(sid)

    def agency_refs(
        path: str, value: Any, rule: str | None = None
    ) -> Iterator[tuple[str, str, str | None]]:
        if isinstance(value, list | tuple):
            for j, ref in enumerate(value):
                if isinstance(ref, str) and ref not in agencies:
                    yield f"{path}[{j}]", f"unknown agency {ref!r}", rule

    def rule_ref(path: str, value: Any) -> Iterator[tuple[str, str, str | None]]:
        if isinstance(value, str) and value not in rules:
            yield path, f"unknown rule {value!r} (not in the rule catalogue)", None

    # time zone
    tz = data.get("timezone", "Asia/Shanghai")
    if isinstance(tz, str):
        try:
            pendulum.timezone(tz)
        except (pendulum.tz.exceptions.InvalidTimezone, ValueError):
            yield "timezone", f"unknown time zone {tz!r}", None

    # phases: ordered, each start <= end, contiguous, inside the campaign year
    year = data.get("year") if isinstance(data.get("year"), int) else None
    prev_end: date | None = None
    prev_id = ""
    for i, ph in _items(data, "phases"):
        start, end = _as_date(ph.get("start")), _as_date(ph.get("end"))
        if start and end and end < start:
            yield (
                f"phases[{i}].end",
                f"phase ends ({end}) before it starts ({start})",
                "R-CAL-PHASES",
            )
        if start and prev_end:
            gap = (start - prev_end).days
            if gap <= 0:
                yield (
                    f"phases[{i}].start",
                    f"phase overlaps {prev_id!r} (starts {start}, previous ends {prev_end})",
                    "R-CAL-PHASES",
                )
            elif gap > 1:
                yield (
                    f"phases[{i}].start",
                    f"gap of {gap - 1} day(s) after {prev_id!r}: phases must be contiguous",
                    "R-CAL-PHASES",
                )
        if year is not None and start and start.year != year and i == 0:
            yield (
                f"phases[{i}].start",
                f"campaign year is {year} but the first phase starts {start}",
                "R-CAL-PHASES",
            )
        elif year is not None:
            # every date left from another year, in the same round as the first one
            for key, day in (("start", start), ("end", end)):
                if day and day.year < year:
                    yield (
                        f"phases[{i}].{key}",
                        f"{day} is before the campaign year {year} (早于方案年度 {year})",
                        "R-CAL-PHASES",
                    )
        prev_end, prev_id = end, str(ph.get("id", ""))
    if not phases and isinstance(data.get("phases"), list):
        yield "phases", "a plan needs at least one phase", "R-CAL-PHASES"

    first = next((_as_date(p.get("start")) for _, p in _items(data, "phases")), None)
    last = prev_end
    for i, dl in _items(data, "deadlines"):
        yield from agency_refs(f"deadlines[{i}].senders", dl.get("senders"), dl.get("rule"))
        yield from agency_refs(f"deadlines[{i}].recipients", dl.get("recipients"), dl.get("rule"))
        yield from rule_ref(f"deadlines[{i}].rule", dl.get("rule"))
        nominal = _as_date(dl.get("nominal"))
        if nominal and year is not None and nominal.year < year:
            yield (
                f"deadlines[{i}].nominal",
                f"{nominal} is before the campaign year {year} (早于方案年度 {year})",
                dl.get("rule") if isinstance(dl.get("rule"), str) else None,
            )
        elif nominal and first and last and not first <= nominal <= last:
            yield (
                f"deadlines[{i}].nominal",
                f"{nominal} is outside the campaign ({first} to {last})",
                dl.get("rule") if isinstance(dl.get("rule"), str) else None,
            )
    if any(str(item.get("id", "")).startswith("progress") for _, item in _items(data, "deadlines")):
        yield "deadlines", "ids starting with 'progress' are reserved for progress reports", None

    pr = data.get("progress_reports")
    if isinstance(pr, Mapping):
        yield from agency_refs("progress_reports.senders", pr.get("senders"), "R-DUE-PROGRESS")
        yield from agency_refs(
            "progress_reports.recipients", pr.get("recipients"), "R-DUE-PROGRESS"
        )
        yield from rule_ref("progress_reports.rule", pr.get("rule"))

    # duties (issue 22 item 8): agencies, rules and phases they name exist
    report_ids = _ids(data, "deadlines")
    for i, du in _items(data, "duties"):
        yield from agency_refs(f"duties[{i}].senders", du.get("senders"), du.get("rule"))
        yield from agency_refs(f"duties[{i}].recipients", du.get("recipients"), du.get("rule"))
        yield from rule_ref(f"duties[{i}].rule", du.get("rule"))
        duty_rule = du.get("rule") if isinstance(du.get("rule"), str) else None
        duty_phase = du.get("phase")
        if isinstance(duty_phase, str) and duty_phase not in phases:
            yield f"duties[{i}].phase", f"unknown phase {duty_phase!r}", duty_rule
        ident = du.get("id")
        if isinstance(ident, str) and (ident in report_ids or ident.startswith("progress")):
            yield f"duties[{i}].id", f"{ident!r} is already a report id", duty_rule

    st = data.get("settings")
    if isinstance(st, Mapping):
        rd = st.get("rectification_days")
        if isinstance(rd, Mapping):
            for cid in rd:
                if cid not in categories:
                    yield (
                        f"settings.rectification_days.{cid}",
                        f"unknown category {cid!r}",
                        "R-TKT-DEADLINE",
                    )
            for cid in sorted(categories - {str(k) for k in rd}):
                yield (
                    "settings.rectification_days",
                    f"no rectification period for category {cid!r}",
                    "R-TKT-DEADLINE",
                )
        yield from agency_refs(
            "settings.non_signing_agencies", st.get("non_signing_agencies"), "R-AUTH-SEPARATION"
        )
        office = st.get("accountability_office")
        if isinstance(office, str) and office not in agencies:
            yield "settings.accountability_office", f"unknown agency {office!r}", "R-ESC-OFFICIAL"
        yield from agency_refs(
            "settings.accountability_lead", st.get("accountability_lead"), "R-ESC-OFFICIAL"
        )
        sc = st.get("spot_check")
        if isinstance(sc, Mapping):
            yield from agency_refs("settings.spot_check.lead", sc.get("lead"), "R-SPOT-RATIO")
            yield from agency_refs(
                "settings.spot_check.participants", sc.get("participants"), "R-SPOT-RATIO"
            )
            window = sc.get("phase")
            if isinstance(window, str) and window not in phases:
                yield (
                    "settings.spot_check.phase",
                    f"unknown phase {window!r} (known: {', '.join(sorted(phases)) or 'none'})",
                    "R-SPOT-WINDOW",
                )
        yield from agency_refs(
            "settings.property_companies", st.get("property_companies"), "R-ESC-PROPERTY"
        )
        yield from agency_refs(
            "settings.refusal_report_to", st.get("refusal_report_to"), "R-ESC-REFUSAL"
        )
        yield from agency_refs(
            "settings.property_escalation_to", st.get("property_escalation_to"), "R-ESC-PROPERTY"
        )
        if isinstance(st.get("property_escalation_to"), list) and not st["property_escalation_to"]:
            yield (
                "settings.property_escalation_to",
                "name at least one agency (至少一个部门)",
                "R-ESC-PROPERTY",
            )
        if "deadlines_may_pass_dossier" in st:
            yield (
                "settings.deadlines_may_pass_dossier",
                "replaced by settings.rectification_cap: write `rectification_cap: dossier` "
                "(the id of the capping deadline) for false, leave it out for true "
                "(改用 rectification_cap：写明封顶的报送期限 id)",
                "R-TKT-DEADLINE",
            )
        cap = st.get("rectification_cap")
        fixed = _ids(data, "deadlines")
        if isinstance(cap, str) and cap not in fixed:
            yield (
                "settings.rectification_cap",
                f"unknown deadline {cap!r} (known: {', '.join(sorted(fixed)) or 'none'}); "
                "the cap names one of the plan's fixed report deadlines",
                "R-TKT-DEADLINE",
            )
        goods = st.get("goods_on_fire_lane")
        if isinstance(goods, list) and len(goods) == 2:
            yield from _goods_problems(data, goods[0], goods[1])

    hol = data.get("holidays")
    if isinstance(hol, Mapping):
        seen_years: set[int] = set()
        for i, ov in _items(hol, "overrides"):
            oy = ov.get("year")
            if isinstance(oy, int):
                if oy in seen_years:
                    yield (
                        f"holidays.overrides[{i}].year",
                        f"two overrides for {oy}",
                        "R-DUE-HOLIDAY",
                    )
                seen_years.add(oy)
            rest = {d for d in map(_as_date, _list(ov.get("rest_days"))) if d}
            work = {d for d in map(_as_date, _list(ov.get("work_days"))) if d}
            for key, days in (("rest_days", rest), ("work_days", work)):
                for d in sorted(days):
                    if isinstance(oy, int) and d.year != oy:
                        yield (
                            f"holidays.overrides[{i}].{key}",
                            f"{d} is not in {oy}",
                            "R-DUE-HOLIDAY",
                        )
            for d in sorted(rest & work):
                yield (
                    f"holidays.overrides[{i}]",
                    f"{d} is both a rest day and a work day",
                    "R-DUE-HOLIDAY",
                )
        yield from _correction_problems(data, hol, seen_years)

    yield from _route_problems(data, agencies, categories, rules)
    yield from _sign_off_problems(data)

    if isinstance(data.get("rules"), list):
        declared = data.get("engine_rules")
        declared = declared if isinstance(declared, Mapping) else {}
        for key, builtin in ENGINE_RULES.items():
            rid = declared.get(key, builtin)
            if isinstance(rid, str) and rid not in rules:
                where = f"engine_rules.{key}" if key in declared else "rules"
                yield (
                    where,
                    f"the engine cites {rid} for {key!r} but the catalogue lacks it: add it to "
                    f"rules, or name the plan's own rule in engine_rules.{key} "
                    f"(引擎引用的规则须在规则目录中)",
                    None,
                )


def _sign_off_problems(data: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """Whoever may fire ``sign_off`` may also sign (R-TKT-SIGNOFF, R-AUTH-SEPARATION).

    Two rights meet at a sign-off (五(三) 复查合格后由验收相关责任人签字): the authority to
    record it (``authority`` entry ``sign_off``, by agency or route role) and the right to
    be a signer (an agency at a level of ``settings.recheck_counting_levels``, not in
    ``settings.non_signing_agencies``, not the ticket's rectifier, named, and present at
    the re-check).  A sign-off with no signers is signed by its actor, so every agency
    the authority names, and every agency a named role holds on any route, must be at a
    level that signs and not be a non-signing agency; the role ``rectifier`` is refused.
    An agency that rectified a ticket and leads its re-check (Changle's town on
    ``illegal_building``) records the sign-off with the other departments as signers.
    """
    levels = {str(a.get("id")): a.get("level") for _, a in _items(data, "agencies") if "id" in a}
    st = data.get("settings")
    st = st if isinstance(st, Mapping) else {}
    counting = st.get("recheck_counting_levels", GOVERNMENT_LEVELS)
    counting = set(counting) if isinstance(counting, list | tuple) else set(GOVERNMENT_LEVELS)
    never = {x for x in _list(st.get("non_signing_agencies")) if isinstance(x, str)}

    def why_not(agency: str) -> str | None:
        if agency in never:
            return "is in settings.non_signing_agencies"
        level = levels.get(agency)
        if isinstance(level, str) and level not in counting:
            return f"is at level {level!r}, not in settings.recheck_counting_levels"
        return None

    for i, au in _items(data, "authority"):
        if au.get("trigger") != "sign_off":
            continue
        for j, ref in enumerate(_list(au.get("agencies"))):
            if isinstance(ref, str) and ref in levels and (reason := why_not(ref)):
                yield (
                    f"authority[{i}].agencies[{j}]",
                    f"{ref!r} may fire sign_off but may not sign: it {reason} "
                    f"(可记录验收签字者须本身可签字)",
                    "R-AUTH-SEPARATION",
                )
        for j, role in enumerate(_list(au.get("roles"))):
            if role == "rectifier":
                yield (
                    f"authority[{i}].roles[{j}]",
                    "the rectifier never signs off its own re-check (整改方不得签字验收)",
                    "R-AUTH-SEPARATION",
                )
                continue
            for k, rt in _items(data, "routes"):
                held = rt.get(role) if isinstance(role, str) else None
                for ref in held if isinstance(held, list) else [held]:
                    if not isinstance(ref, str) or ref not in levels:
                        continue
                    # the route's own rectifier may still record the others' signatures
                    # (illegal_building: the town demolishes and leads the re-check)
                    if reason := why_not(ref):
                        yield (
                            f"routes[{k}].{role}",
                            f"{ref!r} holds role {role!r}, which may fire sign_off "
                            f"(authority[{i}]), but may not sign: it {reason} "
                            f"(可记录验收签字者须本身可签字)",
                            "R-AUTH-SEPARATION",
                        )


def _correction_problems(
    data: Mapping[str, Any], hol: Mapping[str, Any], override_years: set[int]
) -> Iterator[tuple[str, str, str | None]]:
    """A correction lies in a year with official data, changes its day, and comes once."""
    parsed: list[tuple[int, Correction]] = []
    for i, item in _items(hol, "corrections"):
        day, kind, cited = _as_date(item.get("date")), item.get("kind"), item.get("source")
        if day is None or kind not in ("working", "rest") or not isinstance(cited, str):
            continue  # a structure problem: pydantic reports it
        if day.year in override_years:
            yield (
                f"holidays.corrections[{i}].date",
                f"{day.year} is given whole by holidays.overrides: correct the override instead "
                f"({day.year}年已由 overrides 整年给定)",
                "R-DUE-HOLIDAY",
            )
            continue
        try:
            parsed.append((i, Correction(day, kind, source=cited)))
        except InvalidArgument:
            continue  # an empty or refused citation: pydantic reports it
    if not parsed:
        return
    base: HolidaySource = OverrideSource({})
    if hol.get("source", "chinese_calendar") == "chinese_calendar":
        st = data.get("settings")
        rest_days = st.get("rest_days", "observed") if isinstance(st, Mapping) else "observed"
        base = ChineseCalendarSource(
            "holidays_only" if rest_days == "holidays_only" else "observed"
        )
    for j, key, message in correction_problems(base, [c for _, c in parsed]):
        yield f"holidays.corrections[{parsed[j][0]}].{key}", message, "R-DUE-HOLIDAY"


def _goods_problems(
    data: Mapping[str, Any], cat_id: Any, sub_id: Any
) -> Iterator[tuple[str, str, str | None]]:
    for _, cat in _items(data, "categories"):
        if cat.get("id") == cat_id:
            subs = cat.get("subtypes")
            known = (
                {s.get("id") for s in subs if isinstance(s, Mapping)}
                if isinstance(subs, list)
                else set()
            )
            if not isinstance(sub_id, str) or sub_id not in known:
                yield (
                    "settings.goods_on_fire_lane[1]",
                    f"unknown subtype {sub_id!r} of {cat_id!r}",
                    None,
                )
            return
    yield "settings.goods_on_fire_lane[0]", f"unknown category {cat_id!r}", None


def _route_problems(
    data: Mapping[str, Any], agencies: set[str], categories: set[str], rules: set[str]
) -> Iterator[tuple[str, str, str | None]]:
    from fireflow.states import (  # noqa: PLC0415 (states is pure data)
        SETTINGS_AUTHORIZED,
        TRIGGERS,
    )

    subtypes: dict[str, set[str]] = {}
    for _, cat in _items(data, "categories"):
        subs = cat.get("subtypes")
        subtypes[str(cat.get("id"))] = {
            str(s.get("id"))
            for s in (subs if isinstance(subs, list) else [])
            if isinstance(s, Mapping)
        }
    seen: set[str] = set()
    for i, rt in _items(data, "routes"):
        where = f"routes[{i}]"
        rid = rt.get("id")
        if isinstance(rid, str) and rid in seen:
            yield f"{where}.id", f"duplicate id {rid!r}", "R-AUTH-ROLES"
        seen.add(str(rid))
        cat_id = rt.get("category")
        if isinstance(cat_id, str) and cat_id not in categories:
            yield f"{where}.category", f"unknown category {cat_id!r}", None
        for j, sub in enumerate(_list(rt.get("subtypes"))):
            if isinstance(cat_id, str) and cat_id in subtypes and str(sub) not in subtypes[cat_id]:
                yield f"{where}.subtypes[{j}]", f"unknown subtype {sub!r} of {cat_id!r}", None
        for key in ("rectifier", "lead", "supervisor", "recheck_lead", "certifier"):
            ref = rt.get(key)
            if isinstance(ref, str) and ref not in agencies:
                yield f"{where}.{key}", f"unknown agency {ref!r}", None
        for key in ("cooperating", "enforcers", "punishers"):
            value = rt.get(key)
            if isinstance(value, list):
                for j, ref in enumerate(value):
                    if isinstance(ref, str) and ref not in agencies:
                        yield f"{where}.{key}[{j}]", f"unknown agency {ref!r}", None
        for j, ref in enumerate(rt.get("rules") or []):
            if isinstance(ref, str) and ref not in rules:
                yield (
                    f"{where}.rules[{j}]",
                    f"unknown rule {ref!r} (not in the rule catalogue)",
                    None,
                )
        own = set(_list(rt.get("rules")))
        for j, ref in enumerate(_list(rt.get("punish_rules"))):
            if isinstance(ref, str) and ref not in own:
                yield (
                    f"{where}.punish_rules[{j}]",
                    f"{ref!r} is not among the route's rules: a ticket cites its own route only",
                    None,
                )
        if _list(rt.get("punishers")) and not _list(rt.get("punish_rules")):
            yield f"{where}.punish_rules", "punishers need the rules they act under", None
    if isinstance(data.get("routes"), list) and data.get("routes"):
        # (category, location, new community?) -> subtypes covered; "" = every subtype
        covered: dict[tuple[str, str, bool], set[str]] = {}
        for _, rt in _items(data, "routes"):
            route_cat, place = rt.get("category"), rt.get("location", "any")
            if not isinstance(route_cat, str) or place not in ("inside", "around", "any"):
                continue
            subs = {x for x in _list(rt.get("subtypes")) if isinstance(x, str)} or {""}
            flag = rt.get("new_community")
            for loc in ("inside", "around") if place == "any" else (place,):
                for new in (False, True):
                    if flag in (None, new):
                        covered.setdefault((route_cat, loc, new), set()).update(subs)
        for cid in sorted(categories):
            for loc in ("inside", "around"):
                for new in (False, True):
                    have = covered.get((cid, loc, new), set())
                    for sub in sorted(subtypes.get(cid, set())) or [""]:
                        if "" not in have and sub not in have:
                            yield (
                                "routes",
                                f"no route for category {cid!r}, location {loc!r}, "
                                f"subtype {sub!r}" + (", new community" if new else ""),
                                "R-AUTH-ROLES",
                            )
    seen_triggers: set[str] = set()
    for i, au in _items(data, "authority"):
        trig = au.get("trigger")
        if isinstance(trig, str):
            if trig not in TRIGGERS:
                yield f"authority[{i}].trigger", f"unknown trigger {trig!r}", "R-AUTH-ROLES"
            elif trig in SETTINGS_AUTHORIZED:
                yield (
                    f"authority[{i}].trigger",
                    f"{trig!r} is authorized by settings.accountability_lead and "
                    "settings.accountability_office, not by an authority entry "
                    "（由方案设置中的牵头部门和效能部门执行）",
                    "R-ESC-OFFICIAL",
                )
            if trig in seen_triggers:
                yield f"authority[{i}].trigger", f"two entries for {trig!r}", "R-AUTH-ROLES"
            seen_triggers.add(trig)
        value = au.get("agencies")
        if isinstance(value, list):
            for j, ref in enumerate(value):
                if isinstance(ref, str) and ref not in agencies:
                    yield f"authority[{i}].agencies[{j}]", f"unknown agency {ref!r}", "R-AUTH-ROLES"
        for j, ref in enumerate(au.get("rules") or []):
            if isinstance(ref, str) and ref not in rules:
                yield f"authority[{i}].rules[{j}]", f"unknown rule {ref!r}", None
    if isinstance(data.get("authority"), list) and data.get("authority"):
        for trig in TRIGGERS:
            if trig not in seen_triggers and trig not in SETTINGS_AUTHORIZED:
                yield "authority", f"no authority entry for trigger {trig!r}", "R-AUTH-ROLES"
