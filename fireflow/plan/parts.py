"""The pieces of a plan: agencies, phases, deadlines, settings, routes, rules (pydantic).

Every piece is frozen and refuses unknown fields; ``docs/plan-format.md`` explains each
field and the reading behind each default.  :class:`fireflow.plan.Plan` holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from fireflow.errors import InvalidArgument
from fireflow.text import FreeText, check_name, check_text

__all__ = [
    "ADDED_ENGINE_RULES",
    "ADDED_SETTINGS",
    "ENGINE_RULES",
    "ENGINE_RULE_IDS",
    "ENGINE_RULE_KEYS",
    "GOVERNMENT_LEVELS",
    "MAX_PLAN_YEAR",
    "MIN_PLAN_YEAR",
    "PLAN_FORMAT",
    "ROLES",
    "Agency",
    "Authority",
    "Category",
    "DerivedFrom",
    "DutyDays",
    "EngineRules",
    "Form",
    "HolidayCorrection",
    "HolidayOverride",
    "HolidayPolicy",
    "HolidaySettings",
    "Id",
    "Label",
    "Level",
    "NameText",
    "NonEmpty",
    "PeriodUnit",
    "Phase",
    "PhaseDuty",
    "PlanDate",
    "PlanPart",
    "PlanText",
    "ProgressReports",
    "ReportDeadline",
    "ReviewNote",
    "Route",
    "RuleEntry",
    "RuleId",
    "Settings",
    "SpotCheckSettings",
    "Subtype",
    "Text",
]

#: The format tag every plan file carries; bumped on incompatible changes.
PLAN_FORMAT = "fireflow.plan/1"

#: The decisions of the engine that cite a rule, and the built-in (Changle) id of each.
#: A plan names its own id for each in ``engine_rules`` (default: these ids); the engine
#: cites :meth:`Plan.cite <fireflow.plan.Plan.cite>` of them, and validation refuses a plan
#: whose catalogue lacks one.
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
#: The key of :data:`ENGINE_RULES` for each built-in id (what ``Plan.cite`` looks up).
ENGINE_RULE_KEYS: dict[str, str] = {rule: key for key, rule in ENGINE_RULES.items()}
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


class PlanPart(BaseModel):
    """Frozen, strict-about-extras base for every plan model."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Text(PlanPart):
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


class Agency(PlanPart):
    """A department or party named by the plan (区住建局, 物业服务企业, ...)."""

    id: Id
    name: Label
    level: Level
    note: PlanText = ""


class Subtype(PlanPart):
    """A finer kind of hazard inside a category (e-bike, zombie car, ...)."""

    id: Id
    name: Label


class Category(PlanPart):
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


class Phase(PlanPart):
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


class ReportDeadline(PlanPart):
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


class ProgressReports(PlanPart):
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


class SpotCheckSettings(PlanPart):
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


class DutyDays(PlanPart):
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


class PhaseDuty(PlanPart):
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


class Settings(PlanPart):
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


class HolidayOverride(PlanPart):
    """The rest days and make-up working days of one year, set by the plan.

    A year with an override ignores the built-in holiday data for that year:
    rest days = weekends + ``rest_days`` - ``work_days``.
    """

    year: Annotated[int, Field(ge=1949, le=2200)]
    rest_days: tuple[PlanDate, ...] = ()
    work_days: tuple[PlanDate, ...] = ()
    note: PlanText = ""


class HolidayCorrection(PlanPart):
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


class HolidaySettings(PlanPart):
    """Where official holidays come from, per-year overrides and single-day corrections."""

    source: Literal["chinese_calendar", "none"] = "chinese_calendar"
    overrides: tuple[HolidayOverride, ...] = ()
    corrections: tuple[HolidayCorrection, ...] = ()


class RuleEntry(PlanPart):
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


class Form(PlanPart):
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


class Route(PlanPart):
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


class Authority(PlanPart):
    """Who may fire a trigger: fixed agencies and/or route roles (R-AUTH-ROLES)."""

    trigger: Id
    agencies: tuple[Id, ...] = ()
    roles: tuple[
        Literal["rectifier", "lead", "supervisor", "recheck_lead", "enforcers", "cooperating"], ...
    ] = ()
    rules: tuple[RuleId, ...]


class EngineRules(PlanPart):
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


class DerivedFrom(PlanPart):
    """The plan a plan was made from by ``fireflow plan new`` (:mod:`fireflow.plan_new`)."""

    plan: NonEmpty
    """The source plan's id."""
    district: Label
    year: Annotated[int, Field(ge=1949, le=2200)]


class ReviewNote(PlanPart):
    """A place marked for review (待复核) by ``fireflow plan new``; delete it once checked."""

    path: NonEmpty
    """The field, e.g. ``rules[3].quote_zh``."""
    kind: Literal["district", "year", "date", "number", "id", "calendar", "holidays"]
    found: tuple[PlanText, ...] = ()
    note: PlanText = ""
