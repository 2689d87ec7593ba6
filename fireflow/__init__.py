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
    CorrectedSource,
    Correction,
    HolidaySource,
    OverrideSource,
    Period,
    ProvisionalDate,
    YearData,
)
from fireflow.errors import (
    CalendarDataMissing,
    CorruptHistory,
    DefinitionError,
    FireflowError,
    InputLimitExceeded,
    InvalidArgument,
    InvalidCommand,
    NaiveDatetime,
    NotAuthorized,
    PlanError,
    PlanMismatch,
    PlanNotFound,
    Problem,
    Refusal,
    TransitionNotAllowed,
)
from fireflow.events import (
    Actor,
    Event,
    Evidence,
    canonical_bytes,
    event_from_data,
    event_to_data,
)
from fireflow.model import plan_binding, plan_digest, plan_rule_data
from fireflow.plan import (
    Deadline,
    Phase,
    Plan,
    RuleEntry,
    builtin_plans,
    calendar_for_plan,
    dump_plan,
    load_plan,
    parse_plan,
    plan_json_schema,
)
from fireflow.plan.routing import Routing, route_for
from fireflow.rules.accountability import concealment_cases, district_escalations
from fireflow.rules.duties import Duty, duties_at, duties_of
from fireflow.rules.escalation import Escalation, due_escalations
from fireflow.rules.explain import explain
from fireflow.states import LIFECYCLE, mermaid
from fireflow.store import (
    Checkpoint,
    ConcurrencyConflict,
    DuplicateEventId,
    EventStore,
    MemoryStore,
    SQLiteStore,
    StoreBusy,
    StoreError,
    VerifyReport,
)
from fireflow.ticket import (
    ActorIn,
    Command,
    EvidenceIn,
    Ticket,
    TicketState,
    authorize,
    command_json_schema,
    decide,
    evolve,
    fold,
    fold_all,
    refusal_event,
)

__version__ = "0.1.0"

__all__ = [
    "LIFECYCLE",
    "Actor",
    "ActorIn",
    "Calendar",
    "CalendarDataMissing",
    "ChainSource",
    "Checkpoint",
    "ChineseCalendarSource",
    "Command",
    "ConcurrencyConflict",
    "CorrectedSource",
    "Correction",
    "CorruptHistory",
    "Deadline",
    "DefinitionError",
    "DuplicateEventId",
    "Duty",
    "Escalation",
    "Event",
    "EventStore",
    "Evidence",
    "EvidenceIn",
    "FireflowError",
    "HolidaySource",
    "InputLimitExceeded",
    "InvalidArgument",
    "InvalidCommand",
    "MemoryStore",
    "NaiveDatetime",
    "NotAuthorized",
    "OverrideSource",
    "Period",
    "Phase",
    "Plan",
    "PlanError",
    "PlanMismatch",
    "PlanNotFound",
    "Problem",
    "ProvisionalDate",
    "Refusal",
    "Routing",
    "RuleEntry",
    "SQLiteStore",
    "StoreBusy",
    "StoreError",
    "Ticket",
    "TicketState",
    "TransitionNotAllowed",
    "VerifyReport",
    "YearData",
    "__version__",
    "authorize",
    "builtin_plans",
    "calendar_for_plan",
    "canonical_bytes",
    "command_json_schema",
    "concealment_cases",
    "decide",
    "district_escalations",
    "due_escalations",
    "dump_plan",
    "duties_at",
    "duties_of",
    "event_from_data",
    "event_to_data",
    "evolve",
    "explain",
    "fold",
    "fold_all",
    "load_plan",
    "mermaid",
    "parse_plan",
    "plan_binding",
    "plan_digest",
    "plan_json_schema",
    "plan_rule_data",
    "refusal_event",
    "route_for",
]
