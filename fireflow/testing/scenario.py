"""Scenario files (场景文件): conformance cases as data.

A scenario is a YAML file named ``*.scenario.yaml``: a plan, the rule ids it
covers, and steps.  A step is either a **command** on a ticket (``kind``,
``ticket``, ``at``, ``actor`` and the command's fields) with an optional
``expect`` block, or a standalone **expectation** (``check`` a ticket,
``deadline``, ``plan_deadline``, ``route``, ``phase``, ``spot_check``,
``plan_setting``).
``docs/conformance.md`` describes every key; :func:`scenario_json_schema`
gives the JSON Schema for editors.

>>> s = parse_scenario('''
... id: demo
... title_zh: 国庆假期顺延
... title_en: National Day rolls a deadline forward
... rules: [R-DUE-HOLIDAY]
... steps:
...   - deadline: {start: 2022-09-30, n: 1, expect: 2022-10-08}
... ''')
>>> s.id, s.plan, type(s.steps[0]).__name__
('demo', 'changle-2022', 'DeadlineStep')

Loading refuses a malformed file with a :class:`ScenarioError` that lists
every problem with its path and line.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import attrs
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from fireflow._yaml import capped, line_of, load_definition, problem_message, read_definition
from fireflow.errors import DefinitionError, Problem
from fireflow.plan import BUILTIN_PLAN, builtin_plans
from fireflow.states import STATES
from fireflow.text import check_name, check_text, escape_for_terminal
from fireflow.ticket import Source, TicketState, Trigger

__all__ = [
    "SCENARIO_FORMAT",
    "SCENARIO_SUFFIX",
    "ActorSpec",
    "Annex3Expect",
    "Annex3Finding",
    "Annex3Spec",
    "Annex3Step",
    "CheckStep",
    "CommandStep",
    "DeadlineSpec",
    "DeadlineStep",
    "DutiesExpect",
    "DutyMatch",
    "EscalationMatch",
    "EscalationsExpect",
    "EvidenceSpec",
    "ObligationExpect",
    "ObligationSpec",
    "ObligationStep",
    "PhaseSpec",
    "PhaseStep",
    "PlanDeadlineSpec",
    "PlanDeadlineStep",
    "PlanSettingSpec",
    "PlanSettingStep",
    "RefusedExpect",
    "RefusedSubmission",
    "RouteSpec",
    "RouteStep",
    "RoutingExpect",
    "Scenario",
    "ScenarioError",
    "SpotCheckExpect",
    "SpotCheckSpec",
    "SpotCheckStep",
    "SpotCheckWindowSpec",
    "SpotCheckWindowStep",
    "Step",
    "SubmissionSpec",
    "TicketExpect",
    "WrittenFor",
    "is_scenario_file",
    "load_scenario",
    "parse_scenario",
    "scenario_json_schema",
]

#: The format tag a scenario file may carry (optional; bumped on incompatible changes).
SCENARIO_FORMAT = "fireflow.scenario/1"
#: Only files ending like this are scenario files (other YAML is left alone).
SCENARIO_SUFFIX = ".scenario.yaml"

RuleId = Annotated[str, StringConstraints(pattern=r"^R-[A-Z0-9]+(-[A-Z0-9]+)*$", max_length=64)]
AgencyId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def _name(value: str) -> str:
    return check_name(value, "name")


def _text(value: str) -> str:
    return check_text(value, "text")


def _optional_name(value: str) -> str:
    return check_name(value, "name") if value else value


#: Ticket, community, town, person ids and names: the text policy of fireflow.text
#: (NFC; no control, bidirectional or invisible format characters; at most 128 characters).
Ident = Annotated[str, StringConstraints(min_length=1), AfterValidator(_name)]
NonEmpty = Annotated[str, StringConstraints(min_length=1), AfterValidator(_text)]
FreeText = Annotated[str, AfterValidator(_text)]
ErrorName = Literal["TransitionNotAllowed", "NotAuthorized", "InvalidCommand"]


class ScenarioError(DefinitionError, ValueError):
    """A scenario file is invalid.  ``problems`` lists every problem found.

    >>> try:
    ...     parse_scenario("{id: x, title_zh: 示例, title_en: Demo}", source="x.scenario.yaml")
    ... except ScenarioError as exc:
    ...     print(exc)
    scenario is invalid (场景文件有误, 2 problems):
      x.scenario.yaml:1: rules: Field required
      x.scenario.yaml:1: steps: Field required
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        lines = [f"scenario is invalid (场景文件有误, {n} problem{'s' if n != 1 else ''}):"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# =========================================================================== #
# Small value types with clerk-friendly shorthands


def _parse_when(value: Any) -> Any:
    """``2022-03-21 10:00`` (plan's time zone), or an ISO timestamp with an offset."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise ValueError(f"write a time too, e.g. '{value.isoformat()} 10:00' (时间须写到时分)")
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"not a date and time: {value!r}; write e.g. '2022-03-21 10:00' "
                "or '2022-03-21T10:00+08:00'"
            ) from None
        if len(text) <= 10:
            raise ValueError(f"write a time too, e.g. '{text} 10:00' (时间须写到时分)")
        return parsed
    raise ValueError(f"expected a date and time, got {type(value).__name__}")


When = Annotated[
    datetime,
    BeforeValidator(_parse_when),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A local time in the plan's time zone ('2022-03-21 10:00') or "
            "an ISO-8601 timestamp with an offset ('2022-03-21T10:00+08:00').",
            "examples": ["2022-03-21 10:00", "2022-03-21T10:00:00+08:00"],
        }
    ),
]


def _known_state(value: str) -> str:
    if value not in STATES:
        raise ValueError(f"unknown ticket state {value!r}; known: {', '.join(STATES)}")
    return value


StateId = Annotated[
    str,
    AfterValidator(_known_state),
    WithJsonSchema({"type": "string", "enum": list(STATES)}),
]


class _Model(BaseModel):
    """Frozen, strict-about-extras base of every scenario model."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ActorSpec(_Model):
    """Who acts: an agency id and, optionally, a person.  Shorthand: ``town`` or ``town:李``."""

    agency: AgencyId
    person: Annotated[str, AfterValidator(_optional_name)] = ""

    def __str__(self) -> str:
        return f"{self.agency}:{self.person}" if self.person else self.agency


def _actor_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        agency, _, person = value.partition(":")
        return {"agency": agency.strip(), "person": person.strip()}
    return value


ActorField = Annotated[
    ActorSpec, BeforeValidator(_actor_shorthand, json_schema_input_type=str | ActorSpec)
]


class EvidenceSpec(_Model):
    """A photo or document.  Shorthand: just the kind (``photo_after``).

    Without ``sha256`` the runner uses the SHA-256 of ``note`` (or of the
    kind): scenarios test rules, not photos.
    """

    kind: Literal["photo_before", "photo_after", "document"]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    note: str = ""

    def to_data(self) -> dict[str, str]:
        """The evidence as command data (``kind``, ``sha256``, ``note``)."""
        digest = self.sha256 or hashlib.sha256((self.note or self.kind).encode()).hexdigest()
        return {"kind": self.kind, "sha256": digest, "note": self.note}


def _evidence_shorthand(value: Any) -> Any:
    return {"kind": value} if isinstance(value, str) else value


EvidenceField = Annotated[
    EvidenceSpec, BeforeValidator(_evidence_shorthand, json_schema_input_type=str | EvidenceSpec)
]


# =========================================================================== #
# Expectations


class RefusedExpect(_Model):
    """The command must be refused with this error (and rule, and field, when given)."""

    error: ErrorName
    rule: RuleId | None = None
    field: str | None = None


class RoutingExpect(_Model):
    """Parts of a ticket's routing.  Only the keys written are compared.

    Agency lists (``cooperating``, ``enforcers``) are compared as sets;
    ``rules`` must be among the rules the route cites; ``certifier: null``
    expects no certifier.
    """

    route: str | None = None
    rectifier: AgencyId | None = None
    lead: AgencyId | None = None
    supervisor: AgencyId | None = None
    recheck_lead: AgencyId | None = None
    cooperating: tuple[AgencyId, ...] | None = None
    enforcers: tuple[AgencyId, ...] | None = None
    certifier: AgencyId | None = None
    rules: tuple[RuleId, ...] = ()


class EscalationMatch(_Model):
    """An escalation pattern: every key written must match (agency and person lists as sets)."""

    kind: str | None = None
    rule: RuleId | None = None
    targets: tuple[AgencyId, ...] | None = None
    accountable: tuple[AgencyId, ...] | None = None
    persons: tuple[str, ...] | None = None


class EscalationsExpect(_Model):
    """The escalations due at a moment (``at``; default: the step's time)."""

    at: When | None = None
    includes: tuple[EscalationMatch, ...] = ()
    excludes: tuple[EscalationMatch, ...] = ()
    count: Annotated[int, Field(ge=0)] | None = None


_STATE_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(TicketState))


def _state_values(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if value is None:
        return None
    for key in value:
        if key not in _STATE_FIELDS:
            raise ValueError(f"unknown ticket field {key!r}; known: {', '.join(_STATE_FIELDS)}")
    return value


class DutyMatch(_Model):
    """A duty pattern (R-DUTY-*): every key written must match (agency and person lists as sets)."""

    kind: str | None = None
    rule: RuleId | None = None
    agencies: tuple[AgencyId, ...] | None = None
    persons: tuple[str, ...] | None = None
    due: date | None = None
    late: bool | None = None


class DutiesExpect(_Model):
    """The duties owed on the ticket at a moment (``at``; default: the step's time)."""

    at: When | None = None
    includes: tuple[DutyMatch, ...] = ()
    excludes: tuple[DutyMatch, ...] = ()
    count: Annotated[int, Field(ge=0)] | None = None


class TicketExpect(_Model):
    """What must hold after a command (or at a ``check`` step).

    ``accepted`` (the default when a command step has no ``refused``) or
    ``refused``; then the ticket's ``state``, ``deadline`` (``null`` = none),
    ``rules`` the new event cites (at least these), ``not_rules`` it must not
    cite, ``rules_exact`` every rule it cites (these and no others, in any order),
    ``routing``, ``escalations`` due at a moment (concealment found across the
    scenario's tickets), ``duties`` owed at a moment, and ``values`` of any
    other ticket field (as in ``TicketState.to_data()``).
    """

    accepted: bool | None = None
    refused: RefusedExpect | None = None
    state: StateId | None = None
    deadline: date | None = None
    rules: tuple[RuleId, ...] = ()
    not_rules: tuple[RuleId, ...] = ()
    rules_exact: Annotated[tuple[RuleId, ...], Field(min_length=1)] | None = None
    """Every rule the new event cites: these and no others, in any order."""
    routing: RoutingExpect | None = None
    escalations: EscalationsExpect | None = None
    duties: DutiesExpect | None = None
    """The duties owed at a moment (:func:`fireflow.rules.duties.duties_at`)."""
    values: Annotated[dict[str, Any] | None, AfterValidator(_state_values)] = None

    @model_validator(mode="after")
    def _consistent(self) -> TicketExpect:
        if self.refused is not None and self.accepted:
            raise ValueError("a step cannot be both accepted and refused")
        cites = self.rules or self.not_rules or self.rules_exact is not None
        if (self.refused is not None or self.accepted is False) and cites:
            raise ValueError("a refused command records no event: drop rules/not_rules/rules_exact")
        if self.rules_exact is not None and len(set(self.rules_exact)) != len(self.rules_exact):
            raise ValueError("rules_exact names a rule twice")
        return self


# =========================================================================== #
# Steps


class _StepBase(_Model):
    rule: RuleId | None = None
    """The rule this step shows (named in failure reports)."""
    note: FreeText = ""
    """A remark for people (说明), shown in reports."""


class CommandStep(_StepBase):
    """A command on a ticket; ``at`` defaults to the previous step's time."""

    kind: Trigger
    ticket: Ident
    at: When | None = None
    actor: ActorField
    command_id: Ident | None = None
    community: Ident | None = None
    town: Ident | None = None
    category: Ident | None = None
    subtype: Ident | None = None
    location: Literal["inside", "around"] | None = None
    source: Source | None = None
    description: FreeText = ""
    evidence: tuple[EvidenceField, ...] = ()
    days: Annotated[int, Field(ge=1, le=366)] | None = None
    unit: Literal["calendar", "working"] | None = None
    participants: tuple[ActorField, ...] = ()
    signers: tuple[ActorField, ...] = ()
    targets: tuple[AgencyId, ...] = ()
    reason: FreeText = ""
    delivered_on: date | None = None
    new_community: bool | None = None
    case: Literal["slow", "wrong", "falsified", "concealed", "report"] | None = None
    accountable: tuple[AgencyId, ...] = ()
    persons: tuple[str, ...] = ()
    referral: Ident | None = None
    outcome: FreeText = ""
    expect: TicketExpect | None = None

    def command_data(self, at: datetime) -> dict[str, Any]:
        """The step as :class:`~fireflow.ticket.Command` data at the instant ``at``."""
        data: dict[str, Any] = {
            "kind": self.kind,
            "ticket_id": self.ticket,
            "at": at,
            "actor": self.actor.model_dump(),
        }
        optional = ("command_id", "community", "town", "category", "subtype", "location")
        for key in (*optional, "source", "days", "unit", "delivered_on", "new_community"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.description:
            data["description"] = self.description
        if self.reason:
            data["reason"] = self.reason
        if self.evidence:
            data["evidence"] = [e.to_data() for e in self.evidence]
        if self.participants:
            data["participants"] = [p.model_dump() for p in self.participants]
        if self.signers:
            data["signers"] = [s.model_dump() for s in self.signers]
        if self.targets:
            data["targets"] = list(self.targets)
        for key in ("case", "referral"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.accountable:
            data["accountable"] = list(self.accountable)
        if self.persons:
            data["persons"] = list(self.persons)
        if self.outcome:
            data["outcome"] = self.outcome
        return data


class CheckStep(_StepBase):
    """Expectations on a ticket without a command (``check: T1``)."""

    check: Ident
    at: When | None = None
    expect: TicketExpect

    @model_validator(mode="after")
    def _no_outcome(self) -> CheckStep:
        e = self.expect
        if (
            e.accepted is not None
            or e.refused is not None
            or e.rules
            or e.not_rules
            or e.rules_exact is not None
        ):
            raise ValueError("a check step runs no command: use state, deadline, routing, ...")
        return self


class DeadlineSpec(_Model):
    """A legal period: ``n`` units after ``start`` is due on ``expect``."""

    start: date
    n: Annotated[int, Field(ge=1, le=10_000)]
    unit: Literal["calendar", "working", "month", "year"] = "calendar"
    expect: date
    last_day: date | None = None
    """The raw last day before the holiday policy (when given)."""
    rules: tuple[RuleId, ...] = ()
    not_rules: tuple[RuleId, ...] = ()


class DeadlineStep(_StepBase):
    """``deadline: {start, n, unit, expect}``: the plan's calendar (R-DUE-HOLIDAY)."""

    deadline: DeadlineSpec


class PlanDeadlineSpec(_Model):
    """A report deadline of the plan (``ledger``, ``summary``, ``progress.<phase>``)."""

    id: NonEmpty
    due: date | None = None
    nominal: date | None = None
    earliest: date | None = None
    senders: tuple[AgencyId, ...] | None = None
    recipients: tuple[AgencyId, ...] | None = None
    rules: tuple[RuleId, ...] = ()
    not_rules: tuple[RuleId, ...] = ()


class PlanDeadlineStep(_StepBase):
    """``plan_deadline: {id, due}``: a report deadline of the plan."""

    plan_deadline: PlanDeadlineSpec


class RouteSpec(_Model):
    """A hazard and the routing it must get."""

    category: NonEmpty
    location: Literal["inside", "around"]
    subtype: str | None = None
    new_community: bool = False
    """The community is new (新建, R-ROUTE-SIGN)."""
    expect: RoutingExpect


class RouteStep(_StepBase):
    """``route: {category, location, subtype, expect}``: routing without a ticket."""

    route: RouteSpec


class PhaseSpec(_Model):
    """The phase a day belongs to (``expect: null`` = outside the campaign)."""

    day: date
    expect: str | None


class PhaseStep(_StepBase):
    """``phase: {day, expect}``: the campaign phases (R-CAL-PHASES)."""

    phase: PhaseSpec


class SpotCheckExpect(_Model):
    """What a spot-check draw must give: counts, the sample, the rules it cites."""

    required: Annotated[int, Field(ge=0)] | None = None
    """Communities the ratio requires: ceil(ratio x N), per stratum, summed."""
    drawn: Annotated[int, Field(ge=0)] | None = None
    communities: tuple[Ident, ...] | None = None
    """The drawn community ids (compared as a set)."""
    rules: tuple[RuleId, ...] = ()


class SpotCheckSpec(_Model):
    """A spot-check draw (五(四), 六(五)) over a synthetic district.

    ``communities`` ids ``C01``.. are spread over ``towns`` towns ``T1``..
    in turn; the inspector pool has one person per agency of ``inspectors``
    (default: the plan's spot-check lead and participants).  Besides
    ``expect``, the runner checks that the same seed draws the same sample,
    that the published commitment verifies, and that every team has an
    inspector of a lead agency.
    """

    communities: Annotated[int, Field(ge=0, le=10_000)]
    towns: Annotated[int, Field(ge=1, le=1_000)] = 1
    seed: NonEmpty
    inspectors: tuple[AgencyId, ...] | None = None
    team_size: Annotated[int, Field(ge=1, le=16)] = 2
    expect: SpotCheckExpect


class SpotCheckStep(_StepBase):
    """``spot_check: {communities, towns, seed, expect}``: the spot-check draw."""

    spot_check: SpotCheckSpec


class PlanSettingSpec(_Model):
    """A value in the plan's data, by path (``settings.spot_check.ratio``).

    ``[n]`` indexes a list, ``[name]`` picks the item whose ``id`` (or
    ``trigger``) is ``name``: ``authority[reopen].agencies``.  ``equals``
    compares the whole value; ``includes`` checks that every given item is in
    a list (or that a key/value pair is in a mapping).
    """

    path: NonEmpty
    equals: Any = None
    includes: tuple[Any, ...] | None = None

    @model_validator(mode="after")
    def _one_check(self) -> PlanSettingSpec:
        if ("equals" in self.model_fields_set) == (self.includes is not None):
            raise ValueError("give exactly one of equals or includes")
        return self


class PlanSettingStep(_StepBase):
    """``plan_setting: {path, equals}``: a setting of the plan."""

    plan_setting: PlanSettingSpec


# --- obligations and the spot-check window (issue 22 items 5-8) ----------- #


class SubmissionSpec(_Model):
    """A record of a report or a duty (a :class:`~fireflow.rules.reporting.Submission`).

    ``report`` defaults to the step's obligation id, ``town`` and ``community``
    to the step's; ``by`` is ``agency`` or ``agency:person``.
    """

    by: ActorField
    at: When
    report: NonEmpty | None = None
    town: Ident | None = None
    community: Ident | None = None
    contents: tuple[NonEmpty, ...] = ()


class RefusedSubmission(_Model):
    """A submission refused for its obligation: the rule and the field named."""

    rule: RuleId | None = None
    field: str | None = None


class ObligationExpect(_Model):
    """What an obligation must be at the step's moment.  Only the keys written are compared.

    ``refused`` checks the first submission against the obligation at record
    time (:func:`~fireflow.rules.reporting.check_submission`): the rule and the
    field of the refusal, or ``null`` for "accepted".
    """

    due: date | None = None
    nominal: date | None = None
    senders: tuple[AgencyId, ...] | None = None
    recipients: tuple[AgencyId, ...] | None = None
    default_due: bool | None = None
    state: Literal["on_time", "late", "missing", "not_yet_due"] | None = None
    wrong_senders: tuple[AgencyId, ...] | None = None
    responsible: str | None = None
    missing_contents: tuple[str, ...] | None = None
    rules: tuple[RuleId, ...] = ()
    not_rules: tuple[RuleId, ...] = ()
    refused: RefusedSubmission | None = None
    escalations: tuple[EscalationMatch, ...] = ()
    """Escalations about this obligation that must be due (each pattern matches one)."""
    no_escalation: tuple[EscalationMatch, ...] = ()
    """Escalations about this obligation that must not be due."""


class ObligationSpec(_Model):
    """A report or phase-duty obligation at a moment (五(一)-(五), 六(四)-(六)).

    ``towns`` (default ``{T1: [C01]}``) is the district; ``town`` and
    ``community`` pick the obligation (default: the first town, and its first
    community for a per-community one); ``submissions`` are the records; the
    status is taken at ``at``.  Tickets reported by earlier command steps count
    as inspections (a self-inspection or town inspection in its phase proves the
    community inspected, R-OBL-SELF-INSPECT, R-OBL-TOWN-INSPECT).  A district
    duty (``per: district``) is sent by the district: ``town`` is ignored.
    """

    id: NonEmpty
    at: When
    towns: dict[Ident, tuple[Ident, ...]] | None = None
    town: Ident | None = None
    community: Ident | None = None
    submissions: tuple[SubmissionSpec, ...] = ()
    never_inspected: tuple[Ident, ...] | None = None
    """The communities listed as never inspected for this duty (coverage), as a set."""
    expect: ObligationExpect


class ObligationStep(_StepBase):
    """``obligation: {id, at, submissions, expect}``: a report or duty and its status."""

    obligation: ObligationSpec


class SpotCheckWindowSpec(_Model):
    """Is a spot-check finding made at ``at`` accepted (R-SPOT-WINDOW)?"""

    at: When
    accepted: bool


class SpotCheckWindowStep(_StepBase):
    """``spot_check_window: {at, accepted}``: the spot-check phase (五(四))."""

    spot_check_window: SpotCheckWindowSpec


class Annex3Finding(_Model):
    """An on-site finding: community, category, compliant (五(四) 现场核实)."""

    community: Ident
    category: Ident
    compliant: bool


class Annex3Expect(_Model):
    """What Annex 3 must be.  ``refused``: a final form is refused (drawn communities
    lack findings); ``unchecked``: the communities named by the refusal (as a set);
    ``cells``: community -> category -> the text of the cell (未核查, 未发现问题, 存在问题)."""

    refused: bool | None = None
    unchecked: tuple[Ident, ...] | None = None
    cells: dict[Ident, dict[Ident, str]] = Field(default_factory=dict)
    draft_marked: bool | None = None


class Annex3Spec(_Model):
    """Annex 3 over the tickets of earlier command steps, with every listed community drawn.

    ``communities`` (in ``town``) are all drawn (the step draws with ratio 1);
    ``findings`` are the on-site results; ``draft`` asks for a draft.
    """

    communities: Annotated[tuple[Ident, ...], Field(min_length=1, max_length=1000)]
    town: Ident = "T1"
    findings: tuple[Annex3Finding, ...] = ()
    draft: bool = False
    expect: Annex3Expect


class Annex3Step(_StepBase):
    """``annex3: {communities, findings, draft, expect}``: the spot-check form (五(四))."""

    annex3: Annex3Spec


_STEP_KEYS: tuple[tuple[str, str], ...] = (
    ("kind", "command"),
    ("check", "check"),
    ("deadline", "deadline"),
    ("plan_deadline", "plan_deadline"),
    ("route", "route"),
    ("phase", "phase"),
    ("spot_check", "spot_check"),
    ("plan_setting", "plan_setting"),
    ("obligation", "obligation"),
    ("spot_check_window", "spot_check_window"),
    ("annex3", "annex3"),
)
_STEP_TYPES: Mapping[type, str] = {
    CommandStep: "command",
    CheckStep: "check",
    DeadlineStep: "deadline",
    PlanDeadlineStep: "plan_deadline",
    RouteStep: "route",
    PhaseStep: "phase",
    SpotCheckStep: "spot_check",
    PlanSettingStep: "plan_setting",
    ObligationStep: "obligation",
    SpotCheckWindowStep: "spot_check_window",
    Annex3Step: "annex3",
}


def _step_tag(value: Any) -> str | None:
    if isinstance(value, Mapping):
        for key, tag in _STEP_KEYS:
            if key in value:
                return tag
        return None
    return _STEP_TYPES.get(type(value))


Step = Annotated[
    Annotated[CommandStep, Tag("command")]
    | Annotated[CheckStep, Tag("check")]
    | Annotated[DeadlineStep, Tag("deadline")]
    | Annotated[PlanDeadlineStep, Tag("plan_deadline")]
    | Annotated[RouteStep, Tag("route")]
    | Annotated[PhaseStep, Tag("phase")]
    | Annotated[SpotCheckStep, Tag("spot_check")]
    | Annotated[PlanSettingStep, Tag("plan_setting")]
    | Annotated[ObligationStep, Tag("obligation")]
    | Annotated[SpotCheckWindowStep, Tag("spot_check_window")]
    | Annotated[Annex3Step, Tag("annex3")],
    Discriminator(
        _step_tag,
        custom_error_type="step_kind",
        custom_error_message="a step needs one of: kind (a command), check, deadline, "
        "plan_deadline, route, phase, spot_check, plan_setting, obligation, "
        "spot_check_window, annex3",
    ),
]
_TAGS = frozenset(tag for _, tag in _STEP_KEYS)


class WrittenFor(_Model):
    """The plan a scenario was written for: its id and, optionally, its digest.

    ``digest`` is :func:`fireflow.plan_digest` of that plan (``sha256:`` and 64 hex
    digits); with it, a plan that keeps the id but changes its rules counts as another
    plan.  See :func:`fireflow.testing.runner.run_scenario` for what a mismatch does.
    """

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)]
    digest: (
        Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$", max_length=71)] | None
    ) = None


class Scenario(_Model):
    """A conformance scenario: a plan, the rules it covers, and steps.

    ``plan`` is a built-in plan name or a path relative to the scenario file;
    ``plan_overrides`` is merged into the plan's data (mappings merge key by
    key, anything else replaces) and validated like a plan file.
    ``xfail`` marks a known gap: the reason why the scenario is expected to
    fail (strict: a pass is reported).  ``written_for`` names the plan the
    scenario was written for (id, optionally digest); a scenario whose ``plan``
    is a built-in name was written for that plan unless it says otherwise.
    """

    format: Literal["fireflow.scenario/1"] = "fireflow.scenario/1"
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)]
    title_zh: NonEmpty
    title_en: NonEmpty
    rules: Annotated[tuple[RuleId, ...], Field(min_length=1)]
    plan: NonEmpty = BUILTIN_PLAN
    plan_overrides: dict[str, Any] = Field(default_factory=dict)
    xfail: str | None = None
    written_for: WrittenFor | None = None
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _first_time(self) -> Scenario:
        for i, step in enumerate(self.steps):
            if isinstance(step, CommandStep | CheckStep):
                if step.at is None and not (
                    isinstance(step, CheckStep)
                    and step.expect.escalations is not None
                    and step.expect.escalations.at is not None
                ):
                    raise ValueError(
                        f"step {i + 1} needs 'at': the first command has no earlier time to reuse"
                    )
                break
        return self

    @property
    def path(self) -> Path | None:
        """The file the scenario was loaded from (None for text)."""
        return self._path

    def line_of(self, index: int) -> int | None:
        """The line of step ``index`` (0-based) in its file, when known."""
        return self._lines.get(f"steps[{index}]")

    def intended_plan(self) -> WrittenFor | None:
        """The plan the scenario was written for: ``written_for``, else its built-in ``plan``.

        None when neither says (a scenario naming a plan file and no ``written_for``).
        """
        if self.written_for is not None:
            return self.written_for
        return WrittenFor(id=self.plan) if self.plan in builtin_plans() else None

    def base_dir(self) -> Path:
        """The folder relative plan paths are resolved against."""
        return self._path.parent if self._path is not None else Path.cwd()

    def to_yaml(self) -> str:
        """The scenario as YAML text that :func:`parse_scenario` reads back to the same data."""
        data = self.model_dump(mode="json", exclude_unset=True, exclude={"format"})
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON Schema of scenario files (for editors and other systems).

    >>> scenario_json_schema()["title"]
    'fireflow conformance scenario (fireflow.scenario/1)'
    """
    schema = Scenario.model_json_schema()
    schema["$id"] = "https://fireflow.invalid/schema/scenario-1.json"
    schema["title"] = "fireflow conformance scenario (fireflow.scenario/1)"
    return schema


# =========================================================================== #
# Loading


def is_scenario_file(path: str | os.PathLike[str]) -> bool:
    """True for file names ending in ``.scenario.yaml`` (only those are collected)."""
    return Path(path).name.endswith(SCENARIO_SUFFIX)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario file; :class:`ScenarioError` lists every problem."""
    p = Path(path)
    # at most MAX_DEFINITION_BYTES, checked before the file is read whole
    text = read_definition(p, str(p), ScenarioError, "scenario")
    return parse_scenario(text, source=str(p), path=p)


def parse_scenario(
    text: str, source: str = "<data>", *, path: str | os.PathLike[str] | None = None
) -> Scenario:
    """Parse and validate scenario YAML text.

    ``source`` names the text in errors; ``path`` (when given) is where
    relative plan paths are resolved from.
    """
    data, lines, problems = load_definition(text, source, ScenarioError, "scenario")
    if not isinstance(data, Mapping):
        raise ScenarioError([*problems, Problem(source, "", "a scenario must be a mapping")])
    scenario: Scenario | None = None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = _path(err["loc"])
            problems.append(
                Problem(source, where, problem_message(err), line=line_of(lines, where))
            )
    if problems:
        ordered = sorted(problems, key=lambda p: (p.line or 10**9, p.path, p.message))
        raise ScenarioError(capped(ordered, source))
    assert scenario is not None  # no problems means it validated
    scenario._path = Path(path) if path is not None else None
    scenario._lines = lines
    return scenario


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(previous, int) and part in _TAGS and out.startswith("steps"):
            previous = None  # the step-type tag pydantic adds after the index
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = escape_for_terminal(str(part))  # paths are printed: keys come from the file
            out += f".{key}" if out else key
        previous = part
    return out
