"""Campaign plans as validated data (方案即数据).

A plan is a YAML file (``docs/plan-format.md`` says why YAML and describes every
field).  :func:`load_plan` reads a built-in plan by name or a file by path and reports
every problem at once as a :class:`~fireflow.errors.PlanError`.  The package:
:mod:`~fireflow.plan.parts` (the pieces), :mod:`~fireflow.plan.plan` (:class:`Plan`),
:mod:`~fireflow.plan.deadlines` (the join with the calendar),
:mod:`~fireflow.plan.checks` (cross-references), :mod:`~fireflow.plan.load`,
:mod:`~fireflow.plan.routing`, :mod:`~fireflow.plan.derive` (a plan for another
district), :mod:`~fireflow.plan.upgrade` and :mod:`~fireflow.plan.html`.

>>> from datetime import date
>>> plan = load_plan(BUILTIN_PLAN)
>>> [p.id for p in plan.phases]
['mobilization', 'self_inspection', 'rectification', 'spot_check', 'consolidation']
>>> plan.phase_on(date(2022, 3, 16)).name_zh
'整改落实'
>>> plan.rule("R-DUE-LEDGER").clause
'五(二)'
"""

from fireflow.plan.deadlines import (
    Deadline,
    YearCoverage,
    calendar_coverage,
    calendar_for_plan,
    reach_years,
    report_deadlines,
)

# Today's names of fireflow.plan, unchanged since it was one module; the names below,
# re-exported explicitly, are public too (BUILTIN_PLAN, ENGINE_RULES, the field types).
from fireflow.plan.load import BUILTIN_PLAN as BUILTIN_PLAN
from fireflow.plan.load import (
    added_rule_entries,
    builtin_plans,
    dump_plan,
    load_plan,
    parse_plan,
    plan_json_schema,
)
from fireflow.plan.load import plan_json_schema_text as plan_json_schema_text
from fireflow.plan.load import validate_plan_data as validate_plan_data
from fireflow.plan.parts import (
    ADDED_ENGINE_RULES,
    ADDED_SETTINGS,
    MAX_PLAN_YEAR,
    MIN_PLAN_YEAR,
    PLAN_FORMAT,
    Agency,
    Authority,
    Category,
    DerivedFrom,
    DutyDays,
    EngineRules,
    Form,
    HolidayCorrection,
    HolidayOverride,
    HolidaySettings,
    Label,
    Phase,
    PhaseDuty,
    ProgressReports,
    ReportDeadline,
    ReviewNote,
    Route,
    RuleEntry,
    Settings,
    SpotCheckSettings,
    Subtype,
    Text,
)
from fireflow.plan.parts import ENGINE_RULE_IDS as ENGINE_RULE_IDS
from fireflow.plan.parts import ENGINE_RULES as ENGINE_RULES
from fireflow.plan.parts import GOVERNMENT_LEVELS as GOVERNMENT_LEVELS
from fireflow.plan.parts import ROLES as ROLES
from fireflow.plan.parts import HolidayPolicy as HolidayPolicy
from fireflow.plan.parts import Id as Id
from fireflow.plan.parts import Level as Level
from fireflow.plan.parts import NameText as NameText
from fireflow.plan.parts import NonEmpty as NonEmpty
from fireflow.plan.parts import PeriodUnit as PeriodUnit
from fireflow.plan.parts import PlanDate as PlanDate
from fireflow.plan.parts import PlanText as PlanText
from fireflow.plan.parts import RuleId as RuleId
from fireflow.plan.plan import Plan

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
