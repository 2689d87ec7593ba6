"""The model layer: the records rules read and build, and the plan a history follows.

* :class:`Command` (with :class:`ActorIn` and :class:`EvidenceIn`): a request
  to fire a trigger on a ticket; pydantic at the boundary, where bad data
  raises a typed error (:func:`typed_error`), never pydantic's own;
* :class:`TicketState`: everything the rules need to know about a ticket, the
  fold of its events (attrs, frozen);
* the plan binding: a ticket's ``report`` event records the plan's id and
  :func:`plan_digest`, a digest of the plan's rule-relevant content
  (:func:`plan_rule_data`); the engine refuses to continue a history under a
  plan whose id or digest differs, unless the caller migrates it explicitly
  (docs/lifecycle.md, "Events bound to their plan").

This module sits beside :mod:`fireflow.events` and :mod:`fireflow.states`,
below the rules that read tickets and the engine (:mod:`fireflow.ticket`,
which re-exports these names), so ``fireflow/rules/`` imports the model, never
the engine.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

import attrs
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from fireflow.errors import InputLimitExceeded, InvalidArgument, NaiveDatetime, PlanMismatch
from fireflow.events import Actor, Evidence, parse_time, shared_actor
from fireflow.plan import (
    ADDED_ENGINE_RULES,
    ADDED_SETTINGS,
    ENGINE_RULES,
    Plan,
    Settings,
    SpotCheckSettings,
    added_rule_entries,
)
from fireflow.plan.routing import Routing
from fireflow.states import INITIAL_STATE
from fireflow.text import FreeText, Name, check_name, escape_for_terminal

__all__ = [
    "MAX_ITEMS",
    "REFERRAL_CASES",
    "SOURCES",
    "ActorIn",
    "Command",
    "EvidenceIn",
    "Referral",
    "ReferralCase",
    "Source",
    "TicketState",
    "Trigger",
    "check_binding",
    "command_json_schema",
    "plan_binding",
    "plan_digest",
    "plan_rule_data",
    "typed_error",
]

Source = Literal["self_inspection", "town_inspection", "spot_check", "patrol", "public_report"]
SOURCES: tuple[str, ...] = (
    "self_inspection",
    "town_inspection",
    "spot_check",
    "patrol",
    "public_report",
)
Trigger = Literal[
    "report",
    "route",
    "set_deadline",
    "rectify",
    "apply_reinspection",
    "recheck_pass",
    "recheck_fail",
    "sign_off",
    "archive",
    "mark_overdue",
    "refuse",
    "escalate",
    "expose",
    "punish",
    "certify",
    "demolish",
    "clear",
    "resume",
    "reopen",
    "refer",
    "decide_referral",
    "migrate_plan",
]
#: The cases of 六(四) a referral names: 不作为/慢作为 (``slow``), 乱作为 (``wrong``),
#: 弄虚作假 (``falsified``), 隐瞒不报 (``concealed``), reports late, missing or from the
#: wrong sender (``report``).
ReferralCase = Literal["slow", "wrong", "falsified", "concealed", "report"]
REFERRAL_CASES: tuple[str, ...] = ("slow", "wrong", "falsified", "concealed", "report")
#: The most evidence items, participants or signers one command may carry.
MAX_ITEMS = 64
AgencyId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


def _optional_name(value: str) -> str:
    return check_name(value, "value") if value else value


#: A person's name: empty (not known) or a name under the text policy.
PersonName = Annotated[str, AfterValidator(_optional_name)]


# =========================================================================== #
# Commands (the boundary: pydantic)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return escape_for_terminal(text)


def typed_error(exc: ValidationError) -> InvalidArgument:
    """The typed error for pydantic's first complaint about a command's data.

    The field path (``evidence[3].sha256``) becomes the error's ``field``; the
    wording of a limit is the text policy's (:mod:`fireflow.text`), so a
    mistake reads the same whether the model or the engine finds it.  Naive
    datetimes become :class:`~fireflow.errors.NaiveDatetime`, limits
    :class:`~fireflow.errors.InputLimitExceeded`, the rest
    :class:`~fireflow.errors.InvalidArgument`.
    """
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _path(first["loc"]) or "<root>"
    kind = first["type"]
    ctx = first.get("ctx") or {}
    value = first.get("input")
    cause = ctx.get("error")
    if isinstance(cause, InvalidArgument) and not first["loc"]:
        path = ""  # raised by a nested model's own __init__: its field is the path
    if isinstance(cause, NaiveDatetime):
        return NaiveDatetime(path or cause.field)
    if isinstance(cause, InvalidArgument):
        if cause.field == "value":
            field = path or "value"
        else:
            field = f"{path}.{cause.field}" if path else cause.field
        message = str(cause).removeprefix(f"{cause.field}: ")
        if cause.rule:
            message = message.removesuffix(f" [{cause.rule}]")
        return type(cause)(field, message, rule=cause.rule)
    if kind in ("timezone_aware", "timezone_naive") or (
        kind == "datetime_type" and isinstance(value, datetime)
    ):
        return NaiveDatetime(path)
    if kind == "string_too_long":
        n = len(value) if isinstance(value, str) else "?"
        return InputLimitExceeded(path, f"{n} characters (at most {ctx.get('max_length')})")
    if kind == "too_long":
        return InputLimitExceeded(
            path, f"{ctx.get('actual_length')} items (at most {ctx.get('max_length')})"
        )
    if kind == "missing":
        return InvalidArgument(path, "required field missing (缺少必填字段)")
    if kind == "extra_forbidden":
        return InvalidArgument(path, "unknown field (未知字段)")
    if kind == "literal_error":
        return InvalidArgument(
            path, f"{_shown(value)} is not one of {ctx.get('expected')} (取值无效)"
        )
    if kind == "string_pattern_mismatch":
        return InvalidArgument(
            path, f"{_shown(value)} does not match {ctx.get('pattern')} (格式无效)"
        )
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = f"at least {ctx['ge']}" if "ge" in ctx else f"at most {ctx['le']}"
        return InputLimitExceeded(path, f"{_shown(value)} out of range ({bound}) (超出范围)")
    return InvalidArgument(path, f"{first['msg']}: {_shown(value)}")


class _In(BaseModel):
    """Commands and their parts.  Bad data raises a typed error, never pydantic's own.

    Direct construction, :meth:`model_validate` and :meth:`model_validate_json`
    all turn pydantic's ``ValidationError`` into the error of :func:`typed_error`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise typed_error(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate data (a mapping); bad data raises a typed error."""
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise typed_error(exc) from None

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any
    ) -> Self:
        """Validate JSON text; bad data raises a typed error."""
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise typed_error(exc) from None


class ActorIn(_In):
    """An actor in a command: agency id and person."""

    agency: AgencyId
    person: PersonName = ""

    def to_actor(self) -> Actor:
        """The inside value object (equal actors are shared: they are frozen)."""
        return shared_actor(self.agency, self.person)


class EvidenceIn(_In):
    """Evidence in a command: a photo or document referenced by its SHA-256."""

    kind: Literal["photo_before", "photo_after", "document"]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    note: FreeText = ""

    def to_evidence(self) -> Evidence:
        """The inside value object."""
        return Evidence(self.kind, self.sha256, self.note)


class Command(_In):
    """A request to fire a trigger on a ticket, with what the step needs.

    Fields beyond ``kind``, ``ticket_id``, ``at`` and ``actor`` are used by the
    triggers that need them (``report``: community, town, category, subtype,
    location, source, and optionally delivered_on or new_community (新建, R-ROUTE-SIGN);
    ``recheck_*``: participants; ``sign_off``: signers;
    ``escalate``: targets; deadlines: days and unit).
    """

    kind: Trigger
    ticket_id: Name
    at: AwareDatetime
    actor: ActorIn
    command_id: Name | None = None
    community: Name | None = None
    town: Name | None = None
    category: Name | None = None
    subtype: Name | None = None
    location: Literal["inside", "around"] | None = None
    source: Source | None = None
    description: FreeText = ""
    evidence: tuple[EvidenceIn, ...] = Field(default=(), max_length=MAX_ITEMS)
    days: Annotated[int, Field(ge=1, le=366)] | None = None
    unit: Literal["calendar", "working"] | None = None
    participants: tuple[ActorIn, ...] = Field(default=(), max_length=MAX_ITEMS)
    signers: tuple[ActorIn, ...] = Field(default=(), max_length=MAX_ITEMS)
    targets: tuple[AgencyId, ...] = Field(default=(), max_length=MAX_ITEMS)
    reason: FreeText = ""
    delivered_on: date | None = None
    """``report``: the day the community was delivered (交付), R-ROUTE-SIGN."""
    new_community: bool | None = None
    """``report``: the community is new (新建) or not, R-ROUTE-SIGN; wins over the date."""
    case: ReferralCase | None = None
    """``refer``: the case of 六(四) (R-ACC-*); ``reason`` says why (in Chinese)."""
    accountable: tuple[AgencyId, ...] = Field(default=(), max_length=MAX_ITEMS)
    """``refer``: the agencies held to account."""
    persons: tuple[PersonName, ...] = Field(default=(), max_length=MAX_ITEMS)
    """``refer``: the people held to account, where the history names them."""
    referral: Name | None = None
    """``decide_referral``: the ``event_id`` of the ``refer`` event decided."""
    outcome: FreeText = ""
    """``decide_referral``: the outcome the efficiency office records."""

    @classmethod
    def trusted(cls, template: Command, changes: Mapping[str, Any]) -> Command:
        """``template`` with ``changes``, not validated: for already-validated internal callers.

        The fast constructor of commands the library builds itself from values it
        checked (the simulator's: one template per step and agency, then the ticket,
        the time and the step's fields).  The result equals
        ``template.model_copy(update=changes)``: nothing is validated, and the fields
        given are the template's and the changed ones.  Anything from outside goes
        through :meth:`model_validate`; ``tests/test_hot_paths.py`` checks that the two
        agree on valid values, fields given included.

        It is built through pydantic's pickle protocol (``__setstate__``, what
        :mod:`pickle` and :mod:`copy` restore a model with), at less than half the cost
        of ``model_copy`` and a tenth of ``model_construct``; nothing here writes
        pydantic's attributes itself.

        >>> import pendulum
        >>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
        >>> template = Command(kind="rectify", ticket_id="T1", at=at,
        ...                    actor=ActorIn(agency="property"))
        >>> c = Command.trusted(template, {"ticket_id": "T2", "reason": "整改"})
        >>> c.ticket_id, c.reason, template.ticket_id
        ('T2', '整改', 'T1')
        >>> c == template.model_copy(update={"ticket_id": "T2", "reason": "整改"})
        True
        """
        out = _new_command(cls)
        _restore(
            out,
            {
                "__dict__": {**template.__dict__, **changes},
                "__pydantic_fields_set__": template.model_fields_set | changes.keys(),
                "__pydantic_extra__": None,
                "__pydantic_private__": None,
            },
        )
        return out


# Command.trusted's two steps, looked up once: a bare object, then pydantic's pickle restore.
_new_command = Command.__new__
_restore = Command.__setstate__


def command_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Command`."""
    return Command.model_json_schema()


# =========================================================================== #
# State


@attrs.frozen
class Referral:
    """A referral for accountability recorded on a ticket (``refer``, 六(四)), and its outcome.

    ``at`` is the ISO time of the ``refer`` event; ``outcome`` is None until the
    efficiency office records one (``decide_referral``).
    """

    event_id: str
    at: str
    case: str
    accountable: tuple[str, ...]
    persons: tuple[str, ...]
    reason_zh: str
    outcome: str | None = None

    @property
    def open(self) -> bool:
        """True until the outcome is recorded."""
        return self.outcome is None


def _item_data(item: Any) -> dict[str, Any]:
    """An attrs item of a state's tuple as JSON data (its tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.asdict(item).items()}


@attrs.frozen
class TicketState:
    """Everything the rules need to know about a ticket: the fold of its events."""

    ticket_id: str
    state: str = INITIAL_STATE
    version: int = 0
    community: str = ""
    town: str = ""
    category: str = ""
    subtype: str | None = None
    location: str = ""
    source: str = ""
    reported_at: datetime | None = None
    last_at: datetime | None = None
    routing: Routing | None = None
    deadline: date | None = None
    deadline_rules: tuple[str, ...] = ()
    deadlines_set: int = 0
    rectified_by: str | None = None
    certified_by: str | None = None
    failed_rechecks: int = 0
    recheck_agencies: tuple[str, ...] = ()
    recheck_people: tuple[Actor, ...] = ()
    """Who took part in the last re-check (its actor and participants), R-TKT-SIGNOFF."""
    signers: tuple[Actor, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    escalated_to: tuple[str, ...] = ()
    exposed: int = 0
    punished: int = 0
    reopened: int = 0
    reopened_after_signoff: int = 0
    after_photo: bool = False
    refused_attempts: int = 0
    overdue_marked: int = 0
    demolished: bool = False
    plan_id: str = ""
    plan_digest: str = ""
    delivered_on: date | None = None
    """When the community was delivered (交付), as reported (R-ROUTE-SIGN)."""
    new_community: bool | None = None
    """Whether the report said the community is new (新建), as reported (R-ROUTE-SIGN)."""
    entered_at: datetime | None = None
    """When the ticket entered its current state (internal transitions leave it): the
    start of the offices' duties (R-DUTY-*)."""
    refused_by: tuple[Actor, ...] = ()
    """Who made each refused attempt, in order (乱作为, R-ACC-WRONG)."""
    falsified_signers: tuple[Actor, ...] = ()
    """The signers of every sign-off a spot check later reopened (弄虚作假, R-ACC-FALSIFIED)."""
    referrals: tuple[Referral, ...] = ()
    """Referrals for accountability (``refer``) with their outcomes (六(四))."""

    def _repr_html_(self) -> str:
        """The state as an HTML table in a notebook (every value escaped)."""
        from fireflow.model_html import ticket_html  # noqa: PLC0415 (delegating, DESIGN.md)

        return ticket_html(self)

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data."""
        out: dict[str, Any] = {}
        for a in attrs.fields(TicketState):
            v = getattr(self, a.name)
            if isinstance(v, datetime | date):
                v = v.isoformat()
            elif isinstance(v, Routing):
                v = v.to_data()
            elif isinstance(v, tuple):
                v = [_item_data(x) if attrs.has(type(x)) else x for x in v]
            out[a.name] = v
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TicketState:
        """Rebuild a state from :meth:`to_data` output (or parsed JSON)."""
        fields = {a.name: a for a in attrs.fields(TicketState)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise InvalidArgument(unknown[0], "unknown field in ticket state data")
        kw: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                kw[name] = None
            elif name in ("reported_at", "last_at", "entered_at"):
                kw[name] = parse_time(value, name)
            elif name in ("deadline", "delivered_on"):
                kw[name] = date.fromisoformat(value)
            elif name == "routing":
                kw[name] = Routing.from_data(value)
            elif name in ("signers", "recheck_people", "refused_by", "falsified_signers"):
                kw[name] = tuple(Actor(**x) for x in value)
            elif name == "referrals":
                kw[name] = tuple(
                    Referral(
                        **{
                            **x,
                            "accountable": tuple(x["accountable"]),
                            "persons": tuple(x["persons"]),
                        }
                    )
                    for x in value
                )
            elif name == "evidence":
                kw[name] = tuple(Evidence(**x) for x in value)
            elif isinstance(value, list):
                kw[name] = tuple(value)
            else:
                kw[name] = value
        return cls(**kw)


# =========================================================================== #
# The plan a ticket is bound to

# Prose and labels people read, left out of the digest (everything else is in it):
# every label (a mapping of exactly ``zh`` and ``en``) and these fields.
_PROSE_TOP = ("source", "derived_from", "review")
_PROSE_IN = {
    "agencies": ("note",),
    "routes": ("note",),
    "forms": ("names", "title_en"),
    "rules": (
        "title_zh",
        "title_en",
        "quote_zh",
        "text_zh",
        "gloss_en",
        "default_zh",
        "default_en",
    ),
}


def _without_labels(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_labels(v)
            for k, v in value.items()
            if not (isinstance(v, dict) and set(v) == {"zh", "en"})
            and not (
                isinstance(v, list)
                and v
                and all(isinstance(x, dict) and set(x) == {"zh", "en"} for x in v)
            )
        }
    if isinstance(value, list):
        return [_without_labels(v) for v in value]
    return value


def _default_json(model: type[BaseModel], name: str) -> Any:
    """The JSON form of a field's default (tuples as lists, models as mappings)."""
    default = model.model_fields[name].default
    if isinstance(default, BaseModel):
        return default.model_dump(mode="json")
    return list(default) if isinstance(default, tuple) else default


#: The JSON defaults of :data:`~fireflow.plan.ADDED_SETTINGS`, by path.
_ADDED_DEFAULTS: dict[tuple[str, ...], Any] = {
    path: _default_json(SpotCheckSettings if len(path) == 2 else Settings, path[-1])
    for path in ADDED_SETTINGS
}


def _without_added_defaults(data: dict[str, Any]) -> None:
    """Leave out what was added to the format later while it holds its default (in place).

    The settings of :data:`~fireflow.plan.ADDED_SETTINGS` at their defaults, the
    ``engine_rules`` of :data:`~fireflow.plan.ADDED_ENGINE_RULES` at their built-in ids, and
    the catalogue entries of those rules equal to the built-in ones (id, clause, topic,
    basis): a plan written before them, loaded now, keeps the digest its histories recorded.
    """
    settings = data.get("settings") or {}
    for path, default in _ADDED_DEFAULTS.items():
        holder = settings
        for key in path[:-1]:
            holder = holder.get(key) or {}
        if holder.get(path[-1], default) == default:
            holder.pop(path[-1], None)
    engine = data.get("engine_rules") or {}
    for key in ADDED_ENGINE_RULES:
        if engine.get(key) == ENGINE_RULES[key]:
            del engine[key]
    builtin = {
        rid: {k: entry.get(k) for k in ("id", "clause", "topic", "basis")}
        for rid, entry in added_rule_entries().items()
    }
    data["rules"] = [r for r in data.get("rules") or () if builtin.get(r.get("id")) != r]
    # The phase duties (``duties``, 五(一)-(五), 六(五)) and whether a report names its person
    # (``named_person``, 六(六) 专人) decide report obligations, recorded as submissions
    # outside ticket histories, never a ticket's events: neither is part of the digest, nor
    # the catalogue entries only the duties cite.
    duty_rules = {d.get("rule") for d in data.pop("duties", None) or ()}
    progress = data.get("progress_reports")
    for item in [*(data.get("deadlines") or ()), *([progress] if progress else [])]:
        item.pop("named_person", None)
    data["rules"] = [r for r in data["rules"] if r.get("id") not in duty_rules]


def plan_rule_data(plan: Plan) -> dict[str, Any]:
    """The part of a plan that decides what the engine does: what :func:`plan_digest` hashes.

    The plan's data as JSON (``model_dump(mode="json")``), without the prose
    and labels people read: every ``{zh, en}`` label (names, covers,
    summaries, report contents), the top-level ``source``, agencies' and
    routes' ``note``, forms' ``names`` and ``title_en``, and the wording of
    the rule catalogue (``title_*``, ``quote_zh``, ``text_zh``, ``gloss_en``,
    ``default_*``).  Ids, clauses, dates, settings, routes, authority and the
    holiday settings stay: change any of them and the digest changes.  What was added
    to the format after plans were bound to histories is left out while it holds its
    default (:data:`~fireflow.plan.ADDED_SETTINGS`, the engine rules of
    :data:`~fireflow.plan.ADDED_ENGINE_RULES` and their built-in catalogue entries), so
    that a plan written before them keeps its digest; the phase duties and ``named_person``
    decide report obligations, not ticket events, and are left out too.

    >>> from fireflow import load_plan
    >>> data = plan_rule_data(load_plan("changle-2022"))
    >>> "name" in data, data["id"], sorted(data["rules"][0])
    (False, 'changle-2022', ['basis', 'clause', 'id', 'topic'])
    """
    data: dict[str, Any] = plan.model_dump(mode="json", by_alias=True)
    for key in _PROSE_TOP:
        data.pop(key, None)
    for section, keys in _PROSE_IN.items():
        for item in data.get(section) or ():
            for key in keys:
                item.pop(key, None)
    out: dict[str, Any] = _without_labels(data)
    _without_added_defaults(out)
    return out


_BINDINGS: dict[int, tuple[weakref.ref[Plan], tuple[str, str]]] = {}


def plan_digest(plan: Plan) -> str:
    """``sha256:`` and the hex SHA-256 of :func:`plan_rule_data` as canonical JSON.

    Canonical JSON: keys sorted, no insignificant white space, text as UTF-8
    (not escaped), so the digest is the same in every process and under any
    ``PYTHONHASHSEED``.  It names the version of a plan's rules: a ticket's
    ``report`` event records it (with the plan's id), and a history is only
    continued under a plan with the same id and digest (docs/lifecycle.md).
    """
    return plan_binding(plan)[1]


def plan_binding(plan: Plan) -> tuple[str, str]:
    """``(plan id, plan digest)``, computed once per plan object."""
    key = id(plan)  # an identity cache, checked through a weak reference; never an order
    found = _BINDINGS.get(key)
    if found is not None and found[0]() is plan:
        return found[1]
    text = json.dumps(
        plan_rule_data(plan), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    binding = (plan.id, "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest())
    if len(_BINDINGS) >= 64:
        for k in [k for k, (ref, _) in _BINDINGS.items() if ref() is None]:
            del _BINDINGS[k]
    _BINDINGS[key] = (weakref.ref(plan), binding)
    return binding


def check_binding(
    state: TicketState, plan: Plan, migrate_from: tuple[str, str] | None = None
) -> None:
    """Refuse a history bound to another plan, unless ``migrate_from`` names that plan.

    ``state`` is a folded ticket; a history written before plan binding (no plan
    digest) passes under any plan.  Raises :class:`~fireflow.errors.PlanMismatch`,
    or :class:`~fireflow.errors.InvalidArgument` for a ``migrate_from`` that is not
    the history's own ``(plan id, plan digest)``.

    >>> from fireflow.plan import load_plan
    >>> check_binding(TicketState("T1"), load_plan("changle-2022")) is None
    True
    """
    if migrate_from is not None:
        if len(migrate_from) != 2:
            raise InvalidArgument("migrate_from", "expected (plan id, plan digest)")
        if tuple(migrate_from) != (state.plan_id, state.plan_digest):
            raise InvalidArgument(
                "migrate_from",
                f"the history is bound to {state.plan_id or 'no plan'!r} "
                f"({state.plan_digest or '-'}), not {migrate_from[0]!r} ({migrate_from[1]})",
            )
        return
    if not state.plan_digest:  # written before plan binding: read as before
        return
    given = plan_binding(plan)
    if (state.plan_id, state.plan_digest) != given:
        raise PlanMismatch(state.ticket_id, (state.plan_id, state.plan_digest), given)
