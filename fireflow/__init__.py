"""fireflow: a deterministic rules engine for fire-passage rectification campaigns.

消防通道专项整治规则引擎.  The public API is re-exported here; everything else
lives in clearly named submodules.

>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> plan.district.zh
'福州市长乐区'
"""

from fireflow.calendar import (
    Calendar,
    ChainSource,
    ChineseCalendarSource,
    Deadline,
    HolidaySource,
    OverrideSource,
    Period,
    ProvisionalDate,
    YearData,
)
from fireflow.errors import (
    CalendarDataMissing,
    DefinitionError,
    FireflowError,
    InvalidArgument,
    NaiveDatetime,
    PlanError,
    PlanNotFound,
    Problem,
)
from fireflow.plan import (
    Phase,
    Plan,
    RuleEntry,
    builtin_plans,
    dump_plan,
    load_plan,
    parse_plan,
    plan_json_schema,
)

__version__ = "0.1.0"

__all__ = [
    "Calendar",
    "CalendarDataMissing",
    "ChainSource",
    "ChineseCalendarSource",
    "Deadline",
    "DefinitionError",
    "FireflowError",
    "HolidaySource",
    "InvalidArgument",
    "NaiveDatetime",
    "OverrideSource",
    "Period",
    "Phase",
    "Plan",
    "PlanError",
    "PlanNotFound",
    "Problem",
    "ProvisionalDate",
    "RuleEntry",
    "YearData",
    "__version__",
    "builtin_plans",
    "dump_plan",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
]
