"""Run scenarios against the engine and say, step by step, what held and what did not.

:func:`run_scenario` drives the real engine (:class:`~fireflow.ticket.Ticket`,
the plan's calendar, routing and escalation rules) through a
:class:`~fireflow.testing.scenario.Scenario` and returns a
:class:`ScenarioResult`: every step ``ok``, ``failed`` (with what was
expected, what happened, and the rule at stake) or ``not_run`` (after a
failure, since later steps build on earlier ones).

>>> from fireflow.testing.scenario import parse_scenario
>>> s = parse_scenario('''
... id: demo
... title_zh: 示例
... title_en: Demo
... rules: [R-DUE-HOLIDAY]
... steps:
...   - deadline: {start: 2022-09-30, n: 1, expect: 2022-10-07}
... ''')
>>> result = run_scenario(s)
>>> result.ok
False
>>> print(result.failures[0].mismatches[0])
deadline.expect: expected 2022-10-07, actual 2022-10-08 [R-DUE-HOLIDAY]
"""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import attrs

from fireflow.errors import FireflowError, InvalidArgument, Problem, Refusal
from fireflow.events import Actor, Event
from fireflow.forms import DRAFT_HEADER, UncheckedCommunities, annex3
from fireflow.model import plan_binding
from fireflow.plan import BUILTIN_PLAN, Plan, builtin_plans, load_plan, validate_plan_data
from fireflow.plan.routing import Routing, route_for
from fireflow.rules.accountability import concealment_cases
from fireflow.rules.duties import Duty, duties_at
from fireflow.rules.escalation import Escalation, due_escalations
from fireflow.rules.obligations import duty_status, never_inspected
from fireflow.rules.reporting import (
    ObligationStatus,
    Submission,
    check_submission,
    report_escalations,
    status,
)
from fireflow.rules.spotcheck import (
    Community,
    Finding,
    Inspector,
    check_spot_check_window,
    commit,
    draw,
    draw_inputs,
    verify,
)
from fireflow.testing.scenario import (
    Annex3Step,
    CheckStep,
    CommandStep,
    DeadlineStep,
    DutiesExpect,
    DutyMatch,
    EscalationMatch,
    ObligationStep,
    PhaseStep,
    PlanDeadlineStep,
    PlanSettingStep,
    RouteStep,
    RoutingExpect,
    Scenario,
    ScenarioError,
    SpotCheckStep,
    SpotCheckWindowStep,
    Step,
    TicketExpect,
    is_scenario_file,
    load_scenario,
)
from fireflow.ticket import Command, Ticket, TicketState

__all__ = [
    "Coverage",
    "Mismatch",
    "PlanCache",
    "ScenarioResult",
    "StepResult",
    "builtin_suite",
    "builtin_suites",
    "find_scenario_files",
    "junit_xml",
    "rule_coverage",
    "run_paths",
    "run_scenario",
    "write_junit",
]

PlanSpec = str | os.PathLike[str] | Plan


# =========================================================================== #
# Results


@attrs.frozen
class Mismatch:
    """One expectation that did not hold: what, expected, actual, and the rule at stake."""

    what: str
    expected: str
    actual: str
    rule: str | None = None

    def __str__(self) -> str:
        tail = f" [{self.rule}]" if self.rule else ""
        return f"{self.what}: expected {self.expected}, actual {self.actual}{tail}"


@attrs.frozen
class StepResult:
    """The outcome of one step (``index`` counts from 1, as people do)."""

    index: int
    label: str
    status: Literal["ok", "failed", "not_run"]
    line: int | None = None
    rule: str | None = None
    note: str = ""
    mismatches: tuple[Mismatch, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the step ran and every expectation held."""
        return self.status == "ok"


@attrs.frozen
class ScenarioResult:
    """The outcome of a scenario: its steps, or the error that stopped it from running."""

    scenario_id: str
    title_zh: str
    title_en: str
    rules: tuple[str, ...]
    path: str | None
    plan_id: str | None
    steps: tuple[StepResult, ...] = ()
    error: str | None = None
    xfail: str | None = None
    rule_titles: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    skipped: str | None = None
    """Why the scenario did not run: it was written for another plan than the one given."""

    @property
    def ok(self) -> bool:
        """True when the scenario loaded, its plan loaded, it ran, and every step held."""
        return self.error is None and self.skipped is None and all(s.ok for s in self.steps)

    @property
    def outcome(self) -> Literal["passed", "failed", "xfailed", "xpassed", "skipped"]:
        """``passed``/``failed``; for a known gap (``xfail``) ``xfailed``/``xpassed``;
        ``skipped`` for a scenario written for another plan than the one given."""
        if self.skipped is not None:
            return "skipped"
        if self.xfail is not None:
            return "xpassed" if self.ok else "xfailed"
        return "passed" if self.ok else "failed"

    @property
    def counts_as_failure(self) -> bool:
        """A failure, or a known gap that unexpectedly passed (strict xfail)."""
        return self.outcome in ("failed", "xpassed")

    @property
    def failures(self) -> tuple[StepResult, ...]:
        """The failed steps."""
        return tuple(s for s in self.steps if s.status == "failed")

    def report(self) -> str:
        """A readable account of the failure (or a one-line success)."""
        head = f"场景 scenario {self.scenario_id}: {self.title_zh} ({self.title_en})"
        lines = [head]
        if self.path:
            lines.append(f"  file: {self.path}")
        if self.plan_id:
            lines.append(f"  plan: {self.plan_id}")
        lines.append(f"  rules: {', '.join(self.rules)}")
        if self.xfail is not None:
            lines.append(f"  known gap (xfail): {self.xfail}")
        if self.skipped is not None:
            lines.append(f"  skipped (跳过): {self.skipped}")
            return "\n".join(lines)
        if self.error is not None:
            lines.append("  error (不能运行 could not run):")
            lines += [f"    {line}" for line in self.error.splitlines()]
            return "\n".join(lines)
        if self.ok:
            lines.append(f"  ok: {len(self.steps)} steps passed")
            return "\n".join(lines)
        total = len(self.steps)
        for step in self.failures:
            where = f" (line {step.line})" if step.line else ""
            lines.append(f"  FAILED step {step.index} of {total}{where}: {step.label}")
            if step.note:
                lines.append(f"    说明 note: {step.note}")
            for m in step.mismatches:
                lines.append(f"    {m.what}:")
                lines.append(f"      expected: {m.expected}")
                lines.append(f"      actual:   {m.actual}")
                rule = m.rule or step.rule
                if rule:
                    title = self.rule_titles.get(rule, "")
                    lines.append(f"      rule:     {rule} {title}".rstrip())
                else:
                    lines.append(f"      rules of this scenario: {', '.join(self.rules)}")
        skipped = sum(1 for s in self.steps if s.status == "not_run")
        if skipped:
            lines.append(f"  ({skipped} later step(s) not run)")
        return "\n".join(lines)


# =========================================================================== #
# Plans


def _merge(base: Any, extra: Any) -> Any:
    """Mappings merge key by key; anything else replaces."""
    if isinstance(base, Mapping) and isinstance(extra, Mapping):
        out = dict(base)
        for key, value in extra.items():
            out[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(extra)


class PlanCache:
    """Plans resolved for scenarios, loaded once per run.

    ``override`` (a built-in name, a path, or a :class:`~fireflow.plan.Plan`)
    replaces every scenario's own ``plan``; a scenario's ``plan_overrides``
    still apply on top of it.
    """

    def __init__(self, override: PlanSpec | None = None) -> None:
        self.override = override
        self._base: dict[str, Plan] = {}
        self._varied: dict[tuple[str, str], Plan] = {}

    def _load(self, spec: PlanSpec, base_dir: Path) -> tuple[str, Plan]:
        if isinstance(spec, Plan):
            return f"<plan {spec.id}>", spec  # only ever the one override plan
        if isinstance(spec, str) and spec in builtin_plans():
            key = f"builtin:{spec}"
        else:
            p = Path(spec)
            key = str((p if p.is_absolute() else base_dir / p).resolve())
        if key not in self._base:
            self._base[key] = load_plan(key.removeprefix("builtin:"))
        return key, self._base[key]

    def base_plan_for(self, scenario: Scenario) -> Plan:
        """The plan a scenario runs on (its own, or the override), before its overrides."""
        return self._base_for(scenario)[1]

    def _base_for(self, scenario: Scenario) -> tuple[str, Plan]:
        if self.override is not None:
            return self._load(self.override, Path.cwd())
        return self._load(scenario.plan, scenario.base_dir())

    def plan_for(self, scenario: Scenario) -> Plan:
        """The plan a scenario runs on (its own, or the override), with its overrides."""
        key, plan = self._base_for(scenario)
        if not scenario.plan_overrides:
            return plan
        text = json.dumps(scenario.plan_overrides, sort_keys=True, default=str)
        if (key, text) not in self._varied:
            source = f"{scenario.path or scenario.id}: plan_overrides on {plan.id}"
            data = _merge(plan.to_data(), _jsonable(scenario.plan_overrides))
            self._varied[(key, text)] = validate_plan_data(data, source)
        return self._varied[(key, text)]


# =========================================================================== #
# Running


def _jsonable(value: Any) -> Any:
    """YAML values as JSON data: dates as ISO text, tuples as lists."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)


class _Run:
    """The state of one scenario run: the plan, the tickets, the current time."""

    def __init__(self, scenario: Scenario, plan: Plan) -> None:
        self.scenario = scenario
        self.plan = plan
        self.tz = ZoneInfo(plan.timezone)
        self.tickets: dict[str, Ticket] = {}
        self.now: datetime | None = None

    def instant(self, value: datetime | None) -> datetime:
        if value is None:
            if self.now is None:  # pragma: no cover (the scenario model refuses this)
                raise ValueError("no time given and no earlier step to take it from")
            return self.now
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=self.tz)
        return value

    def local(self, value: datetime) -> str:
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def ticket(self, ticket_id: str) -> Ticket:
        if ticket_id not in self.tickets:
            self.tickets[ticket_id] = Ticket(ticket_id, self.plan)
        return self.tickets[ticket_id]

    # ----------------------------------------------------------- step labels
    def label(self, step: Step) -> str:
        if isinstance(step, CommandStep):
            when = f" at {self.local(self.instant(step.at))}" if step.at or self.now else ""
            return f"{step.kind} {step.ticket} by {step.actor}{when}"
        if isinstance(step, CheckStep):
            return f"check {step.check}"
        if isinstance(step, DeadlineStep):
            d = step.deadline
            return f"deadline {d.start} + {d.n} {d.unit}"
        if isinstance(step, PlanDeadlineStep):
            return f"plan_deadline {step.plan_deadline.id}"
        if isinstance(step, RouteStep):
            r = step.route
            return f"route {r.category} {r.location} {r.subtype or ''}".rstrip()
        if isinstance(step, PhaseStep):
            return f"phase on {step.phase.day}"
        if isinstance(step, SpotCheckStep):
            sc = step.spot_check
            return f"spot_check {sc.communities} communities in {sc.towns} town(s)"
        if isinstance(step, ObligationStep):
            return (
                f"obligation {step.obligation.id} at {self.local(self.instant(step.obligation.at))}"
            )
        if isinstance(step, SpotCheckWindowStep):
            return f"spot_check_window at {self.local(self.instant(step.spot_check_window.at))}"
        if isinstance(step, Annex3Step):
            return f"annex3 of {len(step.annex3.communities)} drawn community(ies)"
        return f"plan_setting {step.plan_setting.path}"

    # ------------------------------------------------------------------ steps
    def run_step(self, step: Step) -> list[Mismatch]:
        if isinstance(step, CommandStep):
            return self.command(step)
        if isinstance(step, CheckStep):
            at = self.instant(step.at) if (step.at or self.now) else None
            if at is not None:
                self.now = at
            ticket = self.tickets.get(step.check)
            if ticket is None:
                return [Mismatch("ticket", f"ticket {step.check}", "no such ticket yet")]
            return self.ticket_expect(ticket, step.expect, at, None)
        if isinstance(step, DeadlineStep):
            return self.deadline(step)
        if isinstance(step, PlanDeadlineStep):
            return self.plan_deadline(step)
        if isinstance(step, RouteStep):
            return self.route(step)
        if isinstance(step, PhaseStep):
            phase = self.plan.phase_on(step.phase.day)
            actual = None if phase is None else phase.id
            if actual != step.phase.expect:
                return [Mismatch("phase", _show(step.phase.expect), _show(actual), "R-CAL-PHASES")]
            return []
        if isinstance(step, SpotCheckStep):
            return self.spot_check(step)
        if isinstance(step, ObligationStep):
            return self.obligation(step)
        if isinstance(step, SpotCheckWindowStep):
            return self.spot_check_window(step)
        if isinstance(step, Annex3Step):
            return self.annex3(step)
        return self.plan_setting(step)

    def command(self, step: CommandStep) -> list[Mismatch]:
        at = self.instant(step.at)
        self.now = at
        ticket = self.ticket(step.ticket)
        expect = step.expect or TicketExpect()
        try:
            command = Command.model_validate(step.command_data(at))
        except InvalidArgument as exc:  # Command turns pydantic's errors into typed ones
            return [Mismatch("command", "a valid command", str(exc))]
        refusal: Refusal | None = None
        events: tuple[Event, ...] = ()
        try:
            events = ticket.execute(command)
        except Refusal as exc:
            refusal = exc
        out: list[Mismatch] = []
        wants_refusal = expect.refused is not None or expect.accepted is False
        if refusal is not None and not wants_refusal:
            return [
                Mismatch(
                    "outcome",
                    "accepted",
                    f"refused: {type(refusal).__name__}: {refusal}",
                    refusal.rule,
                )
            ]
        if refusal is None and wants_refusal:
            want = "refused"
            if expect.refused is not None:
                want = f"refused: {expect.refused.error}"
                if expect.refused.rule:
                    want += f" [{expect.refused.rule}]"
            rule = expect.refused.rule if expect.refused is not None else None
            return [Mismatch("outcome", want, f"accepted → {ticket.state.state}", rule)]
        if refusal is not None and expect.refused is not None:
            r = expect.refused
            name = type(refusal).__name__
            if name != r.error:
                out.append(Mismatch("refused.error", r.error, f"{name}: {refusal}", r.rule))
            if r.rule is not None and refusal.rule != r.rule:
                out.append(Mismatch("refused.rule", r.rule, f"{refusal.rule}: {refusal}", r.rule))
            if r.field is not None and refusal.field != r.field:
                out.append(Mismatch("refused.field", r.field, _show(refusal.field), r.rule))
        out += self.ticket_expect(ticket, expect, at, events[-1] if events else None)
        return out

    def ticket_expect(
        self,
        ticket: Ticket,
        expect: TicketExpect,
        at: datetime | None,
        event: Event | None,
    ) -> list[Mismatch]:
        out: list[Mismatch] = []
        state = ticket.state
        if expect.state is not None and state.state != expect.state:
            out.append(Mismatch("state", expect.state, state.state))
        if "deadline" in expect.model_fields_set and state.deadline != expect.deadline:
            out.append(Mismatch("deadline", _show(expect.deadline), _show(state.deadline)))
        if event is not None:
            out += _rules_check("rules", event.rules, expect.rules, expect.not_rules)
            if expect.rules_exact is not None and set(event.rules) != set(expect.rules_exact):
                want = sorted(expect.rules_exact)
                out.append(
                    Mismatch(
                        "rules_exact",
                        f"cites exactly {', '.join(want)}",
                        _show(list(event.rules)),
                        sorted(set(want) ^ set(event.rules))[0],
                    )
                )
        if expect.routing is not None:
            out += _routing_check(state.routing, expect.routing, "routing")
        if expect.values:
            data = state.to_data()
            for key, want in expect.values.items():
                got = data.get(key)
                if _jsonable(want) != got and not _same_set(want, got):
                    out.append(Mismatch(f"values.{key}", _show(want), _show(got)))
        esc = expect.escalations
        if esc is not None:
            moment = self.instant(esc.at) if esc.at is not None else at
            if moment is None:  # pragma: no cover (the scenario model refuses this)
                return [*out, Mismatch("escalations.at", "a moment", "none")]
            cases = concealment_cases([t.state for t in self.tickets.values()], self.plan)
            concealed = any(c.ticket_id == state.ticket_id for c in cases)
            due = due_escalations(state, moment, self.plan, concealed=concealed)
            when = self.local(moment)
            out += _matched(
                f"escalations at {when}", due, esc, _esc_matches, _show_pattern, _show_due
            )
        if expect.duties is not None:
            out += self.duties_expect(state, expect.duties, at)
        return out

    def duties_expect(
        self, state: TicketState, want: DutiesExpect, at: datetime | None
    ) -> list[Mismatch]:
        moment = self.instant(want.at) if want.at is not None else at
        if moment is None:  # pragma: no cover (the scenario model refuses this)
            return [Mismatch("duties.at", "a moment", "none")]
        owed = duties_at(state, moment, self.plan)
        when = self.local(moment)
        return _matched(
            f"duties at {when}", owed, want, _duty_matches, _show_duty_pattern, _show_duties
        )

    def deadline(self, step: DeadlineStep) -> list[Mismatch]:
        d = step.deadline
        period = self.plan.calendar.period(d.start, d.n, d.unit)
        out: list[Mismatch] = []
        rule = step.rule or "R-DUE-HOLIDAY"
        if period.due != d.expect:
            out.append(Mismatch("deadline.expect", _show(d.expect), _show(period.due), rule))
        if d.last_day is not None and period.last_day != d.last_day:
            out.append(
                Mismatch("deadline.last_day", _show(d.last_day), _show(period.last_day), rule)
            )
        out += _rules_check("deadline.rules", period.rules, d.rules, d.not_rules)
        return out

    def plan_deadline(self, step: PlanDeadlineStep) -> list[Mismatch]:
        spec = step.plan_deadline
        found = {d.id: d for d in self.plan.deadlines()}
        if spec.id not in found:
            return [Mismatch("plan_deadline.id", spec.id, f"known: {', '.join(sorted(found))}")]
        d = found[spec.id]
        out: list[Mismatch] = []
        for key in ("due", "nominal", "earliest"):
            want = getattr(spec, key)
            got = getattr(d, key)
            if want is not None and got != want:
                out.append(Mismatch(f"plan_deadline.{key}", _show(want), _show(got), d.rule))
        for key in ("senders", "recipients"):
            want_set = getattr(spec, key)
            got_set = getattr(d, key)
            if want_set is not None and set(want_set) != set(got_set):
                out.append(
                    Mismatch(f"plan_deadline.{key}", _show(want_set), _show(got_set), d.rule)
                )
        out += _rules_check("plan_deadline.rules", d.rules, spec.rules, spec.not_rules)
        return out

    # --- obligations and the spot-check window (issue 22 items 5-8) ---------
    def obligation(self, step: ObligationStep) -> list[Mismatch]:
        spec = step.obligation
        rule = step.rule
        towns = {str(k): list(v) for k, v in (spec.towns or {"T1": ("C01",)}).items()}
        town = spec.town or next(iter(towns), "")
        head = spec.id.split(".", maxsplit=1)[0]
        if any(d.id == head and d.per == "district" for d in self.plan.duties):
            town = self.plan.district.zh  # a district duty: the district sends it
        at = self.instant(spec.at)
        subs = []
        try:
            for x in spec.submissions:
                subs.append(
                    Submission(
                        report_id=x.report or _record_id(self.plan, spec.id),
                        town=x.town or town,
                        submitted_at=self.instant(x.at),
                        by=Actor(x.by.agency, x.by.person),
                        contents=x.contents,
                        community=x.community or spec.community,
                    )
                )
            statuses = [
                *status(self.plan, towns, [s for s in subs if _is_report(self.plan, s)], at),
                *duty_status(
                    self.plan, towns, subs, at, tickets=[t.state for t in self.tickets.values()]
                ),
            ]
        except FireflowError as exc:
            return [Mismatch("obligation", "a status", f"error: {exc}", rule)]
        mine = [
            s
            for s in statuses
            if s.obligation.report_id == spec.id
            and s.obligation.town in (town, self.plan.district.zh)
            and (spec.community is None or s.obligation.community == spec.community)
        ]
        if not mine:
            known = sorted({s.obligation.report_id for s in statuses})
            return [Mismatch("obligation.id", spec.id, f"known: {', '.join(known)}", rule)]
        found: ObligationStatus = mine[0]
        o = found.obligation
        rule = rule or o.rule
        want = spec.expect
        out: list[Mismatch] = []
        for key, got in (
            ("due", o.due),
            ("nominal", o.nominal),
            ("default_due", o.default_due),
            ("state", found.state),
            ("responsible", found.responsible),
        ):
            wanted = getattr(want, key)
            if wanted is not None and wanted != got:
                out.append(Mismatch(f"obligation.{key}", _show(wanted), _show(got), rule))
        for key, got_set in (
            ("senders", o.senders),
            ("recipients", o.recipients),
            ("wrong_senders", found.wrong_senders),
            ("missing_contents", found.missing_contents),
        ):
            wanted_set = getattr(want, key)
            if wanted_set is not None and set(wanted_set) != set(got_set):
                out.append(Mismatch(f"obligation.{key}", _show(wanted_set), _show(got_set), rule))
        out += _rules_check("obligation.rules", found.rules, want.rules, want.not_rules)
        if "refused" in want.model_fields_set:
            out += self._refused(o, subs, want, rule)
        due = report_escalations(self.plan, [found])
        for pattern in want.escalations:
            if not any(_esc_matches(e, pattern) for e in due):
                out.append(
                    Mismatch("obligation.escalations", _show(pattern.model_dump()), _show(
                        [(e.kind, e.rule, list(e.targets)) for e in due]), rule)
                )  # fmt: skip
        for pattern in want.no_escalation:
            if any(_esc_matches(e, pattern) for e in due):
                out.append(
                    Mismatch("obligation.no_escalation", f"none like {_show(pattern.model_dump())}",
                             _show([(e.kind, e.rule, list(e.targets)) for e in due]), rule)
                )  # fmt: skip
        if spec.never_inspected is not None:
            got_list = [c for t, c in never_inspected(statuses, spec.id)]
            if set(got_list) != set(spec.never_inspected):
                out.append(
                    Mismatch(
                        "obligation.never_inspected",
                        _show(sorted(spec.never_inspected)),
                        _show(got_list),
                        rule,
                    )
                )
        return out

    def _refused(
        self, o: Any, subs: Sequence[Submission], want: Any, rule: str | None
    ) -> list[Mismatch]:
        if not subs:
            return [Mismatch("obligation.refused", "a submission to check", "none", rule)]
        try:
            check_submission(self.plan, o, subs[0])
        except InvalidArgument as exc:
            if want.refused is None:
                return [Mismatch("obligation.refused", "accepted", f"refused: {exc}", rule)]
            out = []
            if want.refused.rule is not None and exc.rule != want.refused.rule:
                out.append(Mismatch("obligation.refused.rule", want.refused.rule,
                                    _show(exc.rule), rule))  # fmt: skip
            if want.refused.field is not None and exc.field != want.refused.field:
                out.append(Mismatch("obligation.refused.field", want.refused.field,
                                    _show(exc.field), rule))  # fmt: skip
            return out
        if want.refused is not None:
            return [Mismatch("obligation.refused", "refused", "accepted", rule)]
        return []

    def spot_check_window(self, step: SpotCheckWindowStep) -> list[Mismatch]:
        spec = step.spot_check_window
        at = self.instant(spec.at)
        try:
            check_spot_check_window(self.plan, at)
            accepted, why = True, "accepted"
        except InvalidArgument as exc:
            accepted, why = False, f"refused: {exc}"
        if accepted != spec.accepted:
            want = "accepted" if spec.accepted else "refused"
            return [Mismatch("spot_check_window", want, why, step.rule or "R-SPOT-WINDOW")]
        return []

    def annex3(self, step: Annex3Step) -> list[Mismatch]:
        spec = step.annex3
        rule = step.rule or "R-SPOT-RATIO"
        sc = self.plan.settings.spot_check
        every = self.plan.settings.model_copy(
            update={"spot_check": sc.model_copy(update={"ratio": 1.0})}
        )
        plan = self.plan.model_copy(update={"settings": every})
        agencies = dict.fromkeys((*sc.lead, *sc.participants))
        try:
            inputs = draw_inputs(
                plan,
                [Community(c, spec.town) for c in spec.communities],
                [Inspector(f"{a}-1", a) for a in agencies],
            )
            drawn = draw(inputs, _ANNEX3_SEED)
            events = [e for t in self.tickets.values() for e in t.events]
            findings = [Finding(f.community, f.category, f.compliant) for f in spec.findings]
            df = annex3(events, self.plan, drawn, findings, draft=spec.draft)
        except UncheckedCommunities as exc:
            out = []
            if spec.expect.refused is False:
                out.append(Mismatch("annex3", "a final form", f"refused: {exc}", rule))
            unchecked = spec.expect.unchecked
            named = sorted(c for c, _ in exc.communities)
            if unchecked is not None and set(unchecked) != set(named):
                out.append(
                    Mismatch("annex3.unchecked", _show(sorted(unchecked)), _show(named), rule)
                )
            return out
        except FireflowError as exc:
            return [Mismatch("annex3", "a form", f"error: {exc}", rule)]
        except ImportError:  # pandas, the forms extra
            return [Mismatch("annex3", "a form", "needs pip install fireflow[forms]", rule)]
        out = []
        if spec.expect.refused:
            out.append(Mismatch("annex3", "refused (未核查的抽中小区)", "a final form", rule))
        marked = DRAFT_HEADER in df.columns
        if spec.expect.draft_marked is not None and marked != spec.expect.draft_marked:
            out.append(Mismatch("annex3.draft_marked", _show(spec.expect.draft_marked),
                                _show(marked), rule))  # fmt: skip
        rows = df.set_index("小区")
        for community, cells in spec.expect.cells.items():
            for category, want in cells.items():
                try:
                    cell = str(rows.loc[community, self.plan.category(category).name.zh])
                except (KeyError, InvalidArgument):
                    cell = "(no such cell)"
                if cell != want:
                    out.append(Mismatch(f"annex3.{community}.{category}", want, cell, rule))
        return out

    def route(self, step: RouteStep) -> list[Mismatch]:
        r = step.route
        try:
            routing = route_for(
                self.plan, r.category, r.location, r.subtype, new_community=r.new_community
            )
        except FireflowError as exc:
            return [Mismatch("route", "a routing", f"error: {exc}", step.rule)]
        return _routing_check(routing, r.expect, "route")

    def spot_check(self, step: SpotCheckStep) -> list[Mismatch]:
        sc = step.spot_check
        width = max(2, len(str(sc.communities)))
        communities = [
            Community(f"C{i + 1:0{width}d}", f"T{i % sc.towns + 1}") for i in range(sc.communities)
        ]
        settings = self.plan.settings.spot_check
        agencies = sc.inspectors or (*settings.lead, *settings.participants)
        inspectors = [Inspector(f"{a}-1", a) for a in dict.fromkeys(agencies)]
        inputs = draw_inputs(self.plan, communities, inspectors, team_size=sc.team_size)
        result = draw(inputs, sc.seed)
        want = sc.expect
        out: list[Mismatch] = []
        ratio, random_rule = "R-SPOT-RATIO", "R-SPOT-DOUBLE-RANDOM"
        required = sum(s.required for s in result.strata)
        if want.required is not None and required != want.required:
            out.append(Mismatch("spot_check.required", str(want.required), str(required), ratio))
        drawn = result.communities
        if want.drawn is not None and len(drawn) != want.drawn:
            out.append(Mismatch("spot_check.drawn", str(want.drawn), str(len(drawn)), ratio))
        if want.communities is not None and set(want.communities) != set(drawn):
            out.append(
                Mismatch("spot_check.communities", _show(want.communities), _show(drawn), ratio)
            )
        out += _rules_check("spot_check.rules", result.rules, want.rules, ())
        if draw(inputs, sc.seed) != result:
            out.append(Mismatch("spot_check", "the same draw from the same seed", "another draw",
                                random_rule))  # fmt: skip
        if not verify(commit(inputs, sc.seed), inputs, sc.seed, result):
            out.append(Mismatch("spot_check", "a draw that verifies", "verify failed", random_rule))
        lead = set(settings.lead)
        unled = [a.community for a in result.assignments if not lead & set(a.agencies)]
        if unled:
            out.append(
                Mismatch("spot_check.teams", "a lead-agency inspector in every team",
                         f"none in {_show(unled)}", random_rule)
            )  # fmt: skip
        return out

    def plan_setting(self, step: PlanSettingStep) -> list[Mismatch]:
        spec = step.plan_setting
        try:
            got = _lookup(self.plan.to_data(), spec.path)
        except LookupError as exc:
            return [Mismatch(spec.path, "a value", f"no such path ({exc.args[0]})")]
        if spec.includes is None:
            want = _jsonable(spec.equals)
            if got != want and not _same_set(want, got):
                return [Mismatch(spec.path, _show(want), _show(got))]
            return []
        out: list[Mismatch] = []
        for item in spec.includes:
            want = _jsonable(item)
            present = (
                want in got
                if isinstance(got, list)
                else isinstance(got, Mapping)
                and isinstance(want, Mapping)
                and all(got.get(k) == v for k, v in want.items())
            )
            if not present:
                out.append(Mismatch(f"{spec.path} includes", _show(want), _show(got)))
        return out


def _same_set(want: Any, got: Any) -> bool:
    """Lists of plain values compared as sets (agency lists carry no order)."""
    w, g = _jsonable(want), got
    if not (isinstance(w, list) and isinstance(g, list)):
        return False
    if any(isinstance(x, dict | list) for x in (*w, *g)):
        return False
    return len(w) == len(g) and set(w) == set(g)


def _rules_check(
    what: str, cited: Sequence[str], must: Sequence[str], must_not: Sequence[str]
) -> list[Mismatch]:
    out: list[Mismatch] = []
    for rule in must:
        if rule not in cited:
            out.append(Mismatch(what, f"cites {rule}", _show(list(cited)), rule))
    for rule in must_not:
        if rule in cited:
            out.append(Mismatch(what, f"does not cite {rule}", _show(list(cited)), rule))
    return out


def _routing_check(routing: Routing | None, want: RoutingExpect, what: str) -> list[Mismatch]:
    if routing is None:
        return [Mismatch(what, "a routing", "not routed yet", "R-AUTH-ROLES")]
    out: list[Mismatch] = []
    rule = routing.rules[0] if routing.rules else None
    for key in sorted(want.model_fields_set - {"rules"}):
        expected = getattr(want, key)
        actual = getattr(routing, key)
        same = (
            set(expected) == set(actual)
            if isinstance(expected, tuple) and isinstance(actual, tuple)
            else expected == actual
        )
        if not same:
            out.append(Mismatch(f"{what}.{key}", _show(expected), _show(actual), rule))
    out += _rules_check(f"{what}.rules", routing.rules, want.rules, ())
    return out


def _esc_matches(e: Escalation, pattern: EscalationMatch) -> bool:
    return (
        (pattern.kind is None or e.kind == pattern.kind)
        and (pattern.rule is None or e.rule == pattern.rule)
        and (pattern.targets is None or set(pattern.targets) == set(e.targets))
        and (pattern.accountable is None or set(pattern.accountable) == set(e.accountable))
        and (pattern.persons is None or set(pattern.persons) == set(e.persons))
    )


def _matched(
    what: str,
    items: Sequence[Any],
    want: Any,
    matches: Callable[[Any, Any], bool],
    show_pattern: Callable[[Any], str],
    show_items: Callable[[Sequence[Any]], str],
) -> list[Mismatch]:
    """Hold ``items`` (escalations or duties due) to ``want``'s includes, excludes and count."""
    out: list[Mismatch] = []
    for pattern in want.includes:
        if not any(matches(i, pattern) for i in items):
            out.append(
                Mismatch(f"{what} include", show_pattern(pattern), show_items(items), pattern.rule)
            )
    for pattern in want.excludes:
        if any(matches(i, pattern) for i in items):
            out.append(
                Mismatch(
                    f"{what} exclude",
                    f"no {show_pattern(pattern)}",
                    show_items(items),
                    pattern.rule,
                )
            )
    if want.count is not None and len(items) != want.count:
        out.append(Mismatch(f"{what} count", str(want.count), show_items(items)))
    return out


def _duty_matches(d: Duty, pattern: DutyMatch) -> bool:
    return (
        (pattern.kind is None or d.kind == pattern.kind)
        and (pattern.rule is None or d.rule == pattern.rule)
        and (pattern.agencies is None or set(pattern.agencies) == set(d.agencies))
        and (pattern.persons is None or set(pattern.persons) == set(d.persons))
        and (pattern.due is None or d.due == pattern.due)
        and (pattern.late is None or d.late == pattern.late)
    )


def _show_duty_pattern(p: DutyMatch) -> str:
    parts = [p.kind or "any duty"]
    if p.rule:
        parts.append(f"[{p.rule}]")
    if p.agencies is not None:
        parts.append(f"by {_show(p.agencies)}")
    if p.due is not None:
        parts.append(f"due {p.due}")
    if p.late is not None:
        parts.append("late" if p.late else "not late")
    return " ".join(parts)


def _show_duties(owed: Sequence[Duty]) -> str:
    if not owed:
        return "no duty owed"
    return "; ".join(
        f"{d.kind} [{d.rule}] by {_show(d.agencies)} due {d.due}{' late' if d.late else ''}"
        for d in owed
    )


def _show_pattern(p: EscalationMatch) -> str:
    parts = [p.kind or "any kind"]
    if p.rule:
        parts.append(f"[{p.rule}]")
    if p.targets is not None:
        parts.append(f"→ {_show(p.targets)}")
    return " ".join(parts)


def _show_due(due: Sequence[Escalation]) -> str:
    if not due:
        return "no escalation due"
    return "; ".join(f"{e.kind} [{e.rule}] → {_show(e.targets)}" for e in due)


def _lookup(data: Any, path: str) -> Any:
    """``a.b[2].c`` or ``authority[reopen].agencies`` in plain plan data."""
    value = data
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]"):
            key = part[1:-1]
            if not isinstance(value, list):
                raise LookupError(f"{key}: not a list")
            if key.isdigit():
                if int(key) >= len(value):
                    raise LookupError(f"[{key}]: only {len(value)} items")
                value = value[int(key)]
                continue
            match = [
                v
                for v in value
                if isinstance(v, Mapping) and key in (v.get("id"), v.get("trigger"))
            ]
            if not match:
                raise LookupError(f"[{key}]: no item with that id")
            value = match[0]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise LookupError(part)
    return value


def _written_for_mismatch(scenario: Scenario, plan: Plan) -> str:
    """Why ``plan`` is not the plan the scenario was written for ("" when it is)."""
    intended = scenario.intended_plan()
    if intended is None:
        return ""
    plan_id, digest = plan_binding(plan)
    if intended.id != plan_id:
        return f"written for plan {intended.id}, not {plan_id} (为方案 {intended.id} 编写)"
    if intended.digest is not None and intended.digest != digest:
        return (
            f"written for plan {intended.id} {intended.digest[:19]}…, "
            f"not this version {digest[:19]}…: another version of the plan "
            "(为该方案的另一版本编写)"
        )
    return ""


def run_scenario(
    scenario: Scenario, plan: PlanSpec | None = None, *, plans: PlanCache | None = None
) -> ScenarioResult:
    """Run one scenario; ``plan`` replaces the scenario's own plan when given.

    Never raises for a failing expectation or a plan that does not load: the
    result says what went wrong.  A scenario written for another plan
    (:meth:`~fireflow.testing.scenario.Scenario.intended_plan`: another id, or
    the same id with another digest) is ``skipped`` when a plan replaces its
    own, and an error when its own plan is not the one it declares.
    """
    cache = plans if plans is not None else PlanCache(plan)
    base = ScenarioResult(
        scenario_id=scenario.id,
        title_zh=scenario.title_zh,
        title_en=scenario.title_en,
        rules=scenario.rules,
        path=str(scenario.path) if scenario.path else None,
        plan_id=None,
        xfail=scenario.xfail,
    )
    try:
        base_plan = cache.base_plan_for(scenario)
        mismatch = _written_for_mismatch(scenario, base_plan)
        if mismatch and cache.override is not None:
            return attrs.evolve(base, plan_id=base_plan.id, skipped=mismatch)
        if mismatch:
            return attrs.evolve(
                base,
                plan_id=base_plan.id,
                error=f"{mismatch}: update written_for, or the scenario, to its plan "
                "(场景声明的方案与其方案不一致)",
            )
        the_plan = cache.plan_for(scenario)
    except FireflowError as exc:
        return attrs.evolve(base, error=str(exc))
    titles = {r.id: f"{r.clause} {r.title_zh} ({r.title_en})" for r in the_plan.rules}
    unknown = [r for r in scenario.rules if r not in titles]
    if unknown:
        return attrs.evolve(
            base,
            plan_id=the_plan.id,
            error=f"rules not in the catalogue of plan {the_plan.id}: {', '.join(unknown)}",
        )
    run = _Run(scenario, the_plan)
    results: list[StepResult] = []
    failed = False
    for i, step in enumerate(scenario.steps):
        label = run.label(step)
        common = StepResult(
            index=i + 1,
            label=label,
            status="not_run",
            line=scenario.line_of(i),
            rule=step.rule,
            note=step.note,
        )
        if failed:
            results.append(common)
            continue
        try:
            mismatches = run.run_step(step)
        except FireflowError as exc:
            mismatches = [Mismatch("step", "to run", f"error: {exc}", getattr(exc, "rule", None))]
        if mismatches:
            failed = True
            results.append(attrs.evolve(common, status="failed", mismatches=tuple(mismatches)))
        else:
            results.append(attrs.evolve(common, status="ok"))
    return attrs.evolve(base, plan_id=the_plan.id, steps=tuple(results), rule_titles=titles)


# =========================================================================== #
# Files, folders, suites


def builtin_suites() -> list[str]:
    """Names of the conformance suites shipped with fireflow.

    >>> builtin_suites()
    ['changle-2022']
    """
    folder = resources.files("fireflow.conformance")
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))


def builtin_suite(name: str = BUILTIN_PLAN) -> Path:
    """The folder of a built-in suite (its ``*.scenario.yaml`` files)."""
    if name not in builtin_suites():
        raise ScenarioError(
            [Problem(name, "", f"no built-in suite {name!r}; known: {', '.join(builtin_suites())}")]
        )
    return Path(str(resources.files("fireflow.conformance") / name))


def find_scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Scenario files under ``paths``: files as given, folders searched for ``*.scenario.yaml``.

    A path that does not exist but names a built-in suite (``changle-2022``)
    means that suite.  Sorted, duplicates dropped.
    """
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            found += sorted(f for f in p.rglob("*" + ".scenario.yaml") if f.is_file())
        elif p.is_file():
            found.append(p)
        elif isinstance(item, str) and item in builtin_suites():
            found += sorted(builtin_suite(item).glob("*.scenario.yaml"))
        else:
            raise ScenarioError([Problem(str(p), "", "no such file or folder")])
    return list(dict.fromkeys(found))


def _load_all(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Scenario | ScenarioResult]:
    for f in find_scenario_files(paths):
        try:
            yield load_scenario(f)
        except ScenarioError as exc:
            yield ScenarioResult(
                scenario_id=f.name.removesuffix(".scenario.yaml")
                if is_scenario_file(f)
                else f.stem,
                title_zh="（无法读取）",
                title_en="(could not be read)",
                rules=(),
                path=str(f),
                plan_id=None,
                error=str(exc),
            )


def run_paths(
    paths: Iterable[str | os.PathLike[str]], plan: PlanSpec | None = None
) -> list[ScenarioResult]:
    """Run every scenario under ``paths`` (files, folders, built-in suite names)."""
    cache = PlanCache(plan)
    return [
        item if isinstance(item, ScenarioResult) else run_scenario(item, plans=cache)
        for item in _load_all(paths)
    ]


# =========================================================================== #
# Coverage


@attrs.frozen
class Coverage:
    """Which scenarios cover which rule of a plan's catalogue."""

    plan_id: str
    by_rule: Mapping[str, tuple[str, ...]]
    """Every rule id of the catalogue, in catalogue order, with its scenario ids."""
    unknown: Mapping[str, tuple[str, ...]]
    """Rule ids cited by scenarios but not in the catalogue, with the scenarios."""

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Rule ids without a scenario."""
        return tuple(r for r, ids in self.by_rule.items() if not ids)


#: The seed of the ``annex3`` step's draw (every listed community is drawn: ratio 1).
_ANNEX3_SEED = "annex3-step-5be1f0c7a9d24e6b8f3a1c0d9e7b6a52"


def _record_id(plan: Plan, obligation_id: str) -> str:
    """The id a record of an obligation carries: a recurring duty's own id, else the same."""
    head = obligation_id.split(".", maxsplit=1)[0]
    recurring = {d.id for d in plan.duties if d.every is not None}
    return head if head in recurring else obligation_id


def _is_report(plan: Plan, s: Submission) -> bool:
    """A submission of a report (not of a phase duty)."""
    return s.report_id.split(".")[0] not in {d.id for d in plan.duties}


def rule_coverage(scenarios: Iterable[Scenario], plan: Plan) -> Coverage:
    """The rules of ``plan`` each scenario claims to cover (its ``rules`` list)."""
    by_rule: dict[str, list[str]] = {r.id: [] for r in plan.rules}
    unknown: dict[str, list[str]] = {}
    for s in scenarios:
        for rule in s.rules:
            if rule in by_rule:
                by_rule[rule].append(s.id)
            else:
                unknown.setdefault(rule, []).append(s.id)
    return Coverage(
        plan_id=plan.id,
        by_rule={k: tuple(v) for k, v in by_rule.items()},
        unknown={k: tuple(v) for k, v in sorted(unknown.items())},
    )


# =========================================================================== #
# JUnit XML


def junit_xml(results: Sequence[ScenarioResult], name: str = "fireflow conformance") -> bytes:
    """The results as JUnit XML (UTF-8 bytes), one ``testcase`` per scenario.

    No timestamps or durations: the same results give the same bytes.
    """
    failures = sum(1 for r in results if r.error is None and r.counts_as_failure)
    errors = sum(1 for r in results if r.error is not None and r.xfail is None)
    skipped = sum(1 for r in results if r.outcome in ("xfailed", "skipped"))
    counts = {
        "tests": str(len(results)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
    }
    root = ET.Element("testsuites", {"name": name, **counts})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts})
    for r in results:
        attrs_ = {"classname": f"{r.plan_id or 'plan'}.{r.scenario_id}", "name": r.scenario_id}
        if r.path:
            attrs_["file"] = r.path
        case = ET.SubElement(suite, "testcase", attrs_)
        props = ET.SubElement(case, "properties")
        ET.SubElement(props, "property", {"name": "title_zh", "value": r.title_zh})
        for rule in r.rules:
            ET.SubElement(props, "property", {"name": "rule", "value": rule})
        first = r.failures[0].mismatches[0] if r.failures else None
        if r.outcome == "xfailed":
            ET.SubElement(case, "skipped", {"message": f"xfail: {r.xfail}"})
        elif r.skipped is not None:
            ET.SubElement(case, "skipped", {"message": r.skipped})
        elif r.error is not None:
            ET.SubElement(case, "error", {"message": r.error.splitlines()[0]}).text = r.report()
        elif r.outcome == "xpassed":
            message = f"known gap passed unexpectedly (xfail strict): {r.xfail}"
            ET.SubElement(case, "failure", {"message": message}).text = r.report()
        elif first is not None:
            step = r.failures[0]
            message = f"step {step.index}: {first}"
            ET.SubElement(case, "failure", {"message": message}).text = r.report()
    ET.indent(root)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def write_junit(results: Sequence[ScenarioResult], path: str | os.PathLike[str]) -> None:
    """Write :func:`junit_xml` to ``path``, atomically (:mod:`fireflow.output`)."""
    from fireflow import output  # noqa: PLC0415 (the one writer, needed only here)

    output.write_bytes(path, junit_xml(results))
