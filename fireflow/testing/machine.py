"""A hypothesis state machine that drives one ticket with many actors and checks the safety rules.

Needs ``hypothesis`` (the ``testing`` extra).  Subclass :class:`TicketMachine`
to run it on your plan or to add invariants, and expose its ``TestCase`` to
pytest::

    from hypothesis import settings
    from fireflow.testing.machine import TicketMachine

    class MyPlanMachine(TicketMachine):
        plan_source = "plans/example-2027.yaml"

    MyPlanMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=40)
    TestMyPlan = MyPlanMachine.TestCase

Every step either draws a command (``command``: mostly triggers the state
allows and agencies the plan authorizes, some wrong ones, now and then a time
going backwards) or steers the ticket on (``advance``: a forward trigger, an
agency the engine accepts, well-formed fields), so that a good share of runs
reach ``signed_off``, ``archived`` and a reopen (recorded as hypothesis events,
``reached ...``).  Each checks that a refusal changes nothing but the recorded
attempt, and that an accepted command produced one event citing its rules.

The invariants are the lifecycle's safety rules: nothing is filed without an
independent multi-agency re-check, a signature and a photo taken since the last
failed re-check or reopen (R-TKT-SIGNOFF, R-AUTH-SEPARATION); no demolition
without certification (R-ROUTE-BUILDING); a deadline whenever rectification
runs (R-TKT-DEADLINE); escalations always name targets and a rule; the fold of
the events is the state; the live ``transitions`` machine agrees with the
compiled table.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

import attrs
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fireflow.errors import InvalidCommand, NotAuthorized, Refusal
from fireflow.events import Actor, Event
from fireflow.plan import BUILTIN_PLAN, Plan, load_plan
from fireflow.rules.duties import LIFECYCLE_DUTIES, duties_at
from fireflow.rules.escalation import due_escalations
from fireflow.states import LIFECYCLE, RECORD_ONLY_KINDS, TRIGGERS, triggers_from
from fireflow.testing.paths import (
    authorized_agencies,
    default_start,
    hazards_of,
    referral_fields,
    reopen_time,
)
from fireflow.ticket import SOURCES, Command, Ticket, TicketState, decide, fold

__all__ = ["TicketMachine"]

_PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64}
_PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}
#: Fields a refused (but recorded) attempt may change: not the clock (``last_at``), as in
#: the engine, so that a refused attempt never pushes the ticket's time forward.
_COUNTERS = frozenset({"version", "refused_attempts", "refused_by"})
#: Triggers that start a new rectification with a new deadline (R-TKT-DEADLINE).
_NEW_DEADLINE = frozenset({"set_deadline", "recheck_fail", "resume", "reopen", "clear", "demolish"})
#: The triggers that move a ticket on towards its end, per state (drawn by ``advance``;
#: a failed re-check now and then, so that the after-photo must be taken again).
FORWARD: dict[str, tuple[str, ...]] = {
    "new": ("report",),
    "reported": ("route",),
    "routed": ("set_deadline",),
    "rectifying": ("rectify",),
    "overdue": ("rectify",),
    "refused": ("resume",),
    "escalated": ("resume",),
    "certified": ("demolish",),
    "rectified": ("apply_reinspection",),
    "reinspection_requested": ("recheck_pass", "recheck_pass", "recheck_pass", "recheck_fail"),
    "passed": ("sign_off",),
    "signed_off": ("archive",),
    "archived": ("reopen",),
}
#: The ends recorded as hypothesis events after each run.
REACHED = ("signed_off", "archived", "reopened")


class TicketMachine(RuleBasedStateMachine):
    """One ticket, many actors, the lifecycle's safety invariants after every step.

    Class attributes to override: ``plan_source`` (a built-in plan name or a
    plan file; or override :meth:`make_plan`), ``ticket_id``, ``start_at``
    (default: :func:`~fireflow.testing.paths.default_start`), and
    ``max_step_hours`` (how far the clock may jump between commands).
    """

    plan_source: ClassVar[str | os.PathLike[str]] = BUILTIN_PLAN
    ticket_id: ClassVar[str] = "S1"
    start_at: ClassVar[datetime | None] = None
    max_step_hours: ClassVar[int] = 24 * 40

    def __init__(self) -> None:
        super().__init__()
        self.plan = self.make_plan()
        self.ticket = Ticket(self.ticket_id, self.plan)
        self.at = self.start_at or default_start(self.plan)
        self.agencies = tuple(a.id for a in self.plan.agencies)
        self.hazards = hazards_of(self.plan)
        self.refusals = 0
        self.accepted = 0
        #: states the ticket has been in after an accepted command (and "reopened")
        self.reached: set[str] = set()

    @classmethod
    def make_plan(cls) -> Plan:
        """The plan the machine runs on (``load_plan(plan_source)``; built-ins are cached)."""
        return load_plan(cls.plan_source)

    @initialize()
    def start(self) -> None:
        """A fresh ticket is ``new``."""
        assert self.ticket.state.state == "new"

    @rule(data=st.data())
    def command(self, data: st.DataObject) -> None:
        """Draw a command (often a wrong one) and run it through :meth:`execute`."""
        state = self.ticket.state
        allowed = triggers_from(state.state)
        if allowed and data.draw(st.integers(0, 9), label="bias") < 8:
            kind = data.draw(st.sampled_from(allowed), label="kind")
        else:
            kind = data.draw(st.sampled_from(TRIGGERS), label="kind")
        good = authorized_agencies(state, kind, self.plan)
        pick_allowed = data.draw(st.booleans(), label="pick allowed agency")
        if good and pick_allowed:
            agency = data.draw(st.sampled_from(sorted(good)), label="agency")
        else:
            agency = data.draw(st.sampled_from(self.agencies), label="agency")
        step = data.draw(
            st.one_of(st.integers(0, 48), st.integers(49, max(49, self.max_step_hours))),
            label="hours",
        )
        self.at = self.at + timedelta(hours=step)
        at = self.at
        if data.draw(st.integers(0, 30), label="backwards") == 0:
            at = at - timedelta(hours=data.draw(st.integers(1, 48), label="back by"))
        self.execute(kind, at, agency, self.fields(data, kind))

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        """Steer the ticket along its lifecycle with a well-formed command.

        Mostly (7 in 8) a forward trigger of the state (see :data:`FORWARD`), else
        any trigger the state allows; the first agency the engine accepts among
        those the plan authorizes, with fields that satisfy the step's own rules
        (valid re-check participants, independent signers; an after-photo with the
        rectification or the filing, now and then with neither, which the filing
        must refuse) and a clock that moves forward (past the deadline for
        ``mark_overdue``).

        Without it, random commands rarely get past the re-check, the sign-off and
        the archive; with it, a good share of runs reach ``signed_off``,
        ``archived`` and a reopen, where the lifecycle's end invariants bite.
        """
        state = self.ticket.state
        allowed = triggers_from(state.state)
        forward = [k for k in FORWARD.get(state.state, ()) if k in allowed]
        if forward and data.draw(st.integers(0, 7), label="forward?") > 0:  # 7 in 8
            kind = data.draw(st.sampled_from(forward), label="kind")
        else:
            kind = data.draw(st.sampled_from(allowed), label="kind")
        self.at = self.at + timedelta(hours=data.draw(st.integers(1, 48), label="hours"))
        if kind == "mark_overdue" and state.deadline is not None:
            self.at = max(self.at, self.plan.calendar.due_instant(state.deadline))
        if kind == "reopen":  # R-SPOT-WINDOW: the spot check reopens inside its phase
            self.at = reopen_time(self.plan, self.at)
        candidates = authorized_agencies(state, kind, self.plan) or self.agencies
        chosen = candidates[0]
        fields: dict[str, Any] = {}
        for agency in candidates:
            fields = self.steered_fields(data, state, kind, agency)
            try:
                command = Command.model_validate(
                    {
                        "kind": kind,
                        "ticket_id": self.ticket_id,
                        "at": self.at,
                        "actor": {"agency": agency},
                        **fields,
                    }
                )
                decide(state, command, self.plan)
            except (Refusal, ValueError):  # pydantic's ValidationError is a ValueError
                continue
            chosen = agency
            break
        self.execute(kind, self.at, chosen, fields)

    def steered_fields(
        self, data: st.DataObject, state: TicketState, kind: str, agency: str
    ) -> dict[str, Any]:
        """Fields for ``kind`` meant to be accepted (override along with :meth:`fields`)."""
        settings = self.plan.settings
        rectifier = state.routing.rectifier if state.routing is not None else None
        if kind == "report":
            category, location, subtype = data.draw(st.sampled_from(self.hazards), label="hazard")
            fields: dict[str, Any] = {
                "community": "小区A",
                "town": "金峰镇",
                "category": category,
                "location": location,
                "source": data.draw(st.sampled_from(SOURCES), label="source"),
                "evidence": [_PHOTO_BEFORE],
            }
            if subtype is not None:
                fields["subtype"] = subtype
            return fields
        if kind in ("recheck_pass", "recheck_fail"):
            excluded = {agency, state.rectified_by, rectifier, *settings.non_signing_agencies}
            others = [a for a in self.agencies if a not in excluded]
            need = max(settings.min_recheck_agencies - 1, 1)
            return {"participants": [{"agency": a, "person": "人"} for a in others[:need]]}
        if kind == "sign_off":
            # 五(三) 复查合格后由验收相关责任人签字: a named person of the last re-check
            excluded = {state.rectified_by, rectifier, *settings.non_signing_agencies}
            signers = [
                {"agency": p.agency, "person": p.person}
                for p in state.recheck_people
                if p.person and p.agency not in excluded
            ]
            return {"signers": signers[:1]}
        if kind in ("refer", "decide_referral"):
            return referral_fields(state, kind, self.plan)
        if kind in ("rectify", "archive") and data.draw(st.booleans(), label="photo_after"):
            # the after-photo comes with the rectification or with the filing
            return {"evidence": [_PHOTO_AFTER]}
        return {}

    def execute(self, kind: str, at: datetime, agency: str, fields: dict[str, Any]) -> None:
        """Run one command and check what a refusal or an acceptance did."""
        t = self.ticket
        before = t.state
        allowed = triggers_from(before.state)
        n_events = len(t.events)
        exc: Refusal | None = None
        try:
            events = t.command(kind, at, agency, **fields)
        except Refusal as caught:
            exc = caught
        if exc is not None:
            self.refusals += 1
            after = t.state
            assert after.state == before.state, "a refusal changed the state"
            assert exc.state == before.state
            assert exc.trigger == kind
            changed = {
                f.name
                for f in attrs.fields(type(before))
                if getattr(before, f.name) != getattr(after, f.name)
            }
            assert changed <= _COUNTERS, f"a refusal changed {sorted(changed)}"
            if isinstance(exc, NotAuthorized):
                assert len(t.events) == n_events + 1
                assert t.events[-1].kind == "attempt_refused"
                assert after.refused_attempts == before.refused_attempts + 1
                assert after.version == before.version + 1
            else:
                assert after == before
                assert len(t.events) == n_events
            if before.last_at is not None and at < before.last_at:
                assert isinstance(exc, InvalidCommand), "time going backwards must be refused"
                assert exc.field == "at"
            return
        self.accepted += 1
        assert len(events) == 1
        assert events[0].kind == kind
        assert events[0].rules, "an accepted command must cite its rules"
        assert t.state.version == before.version + 1
        assert before.last_at is None or at >= before.last_at
        assert kind in allowed
        self.check_resets(before, events[0], t.state)
        self.reached.add(t.state.state)
        if kind == "reopen":
            self.reached.add("reopened")

    def check_resets(self, before: TicketState, event: Event, after: TicketState) -> None:
        """What an accepted step must reset, exactly as the engine does.

        The clock moves to the event's time; a failed re-check and a reopen clear the
        after-photo (a new rectification needs a new photo, R-TKT-SIGNOFF), a reopen the
        re-check and its signers (R-TKT-SPOTCHECK); every step into a new rectification
        sets the event's deadline and clears who rectified (R-TKT-DEADLINE, R-TKT-FAIL);
        ``mark_overdue`` counts once (R-ESC-OVERDUE); nothing else resets a flag.
        """
        kind = event.kind
        assert after.last_at == event.at, "an accepted step moves the clock to its time"
        photo = any(x.kind == "photo_after" for x in event.evidence)
        if kind in ("recheck_fail", "reopen"):
            assert not after.after_photo, f"{kind} must reset the after-photo"
        else:
            assert after.after_photo == (before.after_photo or photo)
        if kind == "reopen":
            assert (after.signers, after.recheck_agencies, after.recheck_people) == ((), (), ())
            assert after.reopened == before.reopened + 1
        if kind in ("recheck_pass", "recheck_fail"):
            assert after.recheck_people == tuple(
                Actor(p["agency"], p["person"]) for p in event.payload["people"]
            )
        if kind in _NEW_DEADLINE and "deadline" in event.payload:
            assert after.deadline == date.fromisoformat(event.payload["deadline"])
            assert after.deadlines_set == before.deadlines_set + 1
            assert after.rectified_by is None
        else:
            assert (after.deadline, after.deadlines_set) == (before.deadline, before.deadlines_set)
        marked = 1 if kind == "mark_overdue" else 0
        assert after.overdue_marked == before.overdue_marked + marked
        assert after.failed_rechecks == before.failed_rechecks + (kind == "recheck_fail")

    def teardown(self) -> None:
        """Record how far the run got (``--hypothesis-show-statistics`` shows the shares)."""
        for end in REACHED:
            if end in self.reached:
                event(f"reached {end}")

    def fields(self, data: st.DataObject, kind: str) -> dict[str, Any]:
        """The command fields for ``kind`` (override to draw your own)."""
        fields: dict[str, Any] = {}
        if kind == "report":
            category, location, subtype = data.draw(st.sampled_from(self.hazards), label="hazard")
            source = data.draw(st.sampled_from(SOURCES), label="source")
            fields.update(
                community="小区A",
                town="金峰镇",
                category=category,
                location=location,
                source=source,
            )
            if subtype is not None:
                fields["subtype"] = subtype
            if data.draw(st.integers(0, 4), label="photo") > 0:
                fields["evidence"] = [_PHOTO_BEFORE]
        elif kind in ("recheck_pass", "recheck_fail"):
            parts = data.draw(
                st.lists(st.sampled_from(self.agencies), max_size=3, unique=True),
                label="participants",
            )
            fields["participants"] = [{"agency": a, "person": "人"} for a in parts]
        elif kind == "sign_off":
            s = self.ticket.state
            pool = (
                *((p.agency, p.person or "人") for p in s.recheck_people),
                *((a, "人") for a in self.agencies),
            )
            signers = data.draw(
                st.lists(st.sampled_from(pool), max_size=3, unique=True), label="signers"
            )
            fields["signers"] = [{"agency": a, "person": n} for a, n in signers]
        elif kind == "archive":
            if data.draw(st.integers(0, 4), label="photo_after") > 0:
                fields["evidence"] = [_PHOTO_AFTER]
        elif kind == "escalate" and data.draw(st.integers(0, 4), label="targets?") == 0:
            fields["targets"] = data.draw(
                st.lists(st.sampled_from(self.agencies), min_size=1, max_size=3), label="targets"
            )
        elif kind in ("set_deadline", "recheck_fail", "resume", "reopen") and (
            data.draw(st.integers(0, 4), label="override?") == 0
        ):
            fields["days"] = data.draw(st.integers(1, 40), label="days")
            fields["unit"] = data.draw(st.sampled_from(["calendar", "working"]), label="unit")
        return fields

    # ------------------------------------------------------------ invariants

    @invariant()
    def archived_only_after_independent_multi_agency_check(self) -> None:
        """R-TKT-SIGNOFF, R-AUTH-SEPARATION: checked by several agencies, signed by others."""
        s = self.ticket.state
        if s.state in ("signed_off", "archived"):
            assert len(set(s.recheck_agencies)) >= self.plan.settings.min_recheck_agencies
            assert s.signers, "signed off without signers"
            assert s.rectified_by is not None
            assert s.routing is not None
            for signer in s.signers:
                assert signer.agency != s.rectified_by, "the rectifier signed its own re-check"
                assert signer.agency != s.routing.rectifier
                assert signer.agency not in self.plan.settings.non_signing_agencies
                assert signer.agency in s.recheck_agencies
                assert signer in s.recheck_people, "a signer who took no part in the re-check"
        if s.state == "archived":
            done = [e for e in self.ticket.events if e.kind not in RECORD_ONLY_KINDS]
            # the steps that moved the ticket (``punish`` and ``expose`` keep the state)
            moves = [e.kind for e in done if LIFECYCLE.transition(e.kind).dest is not None]
            assert moves[-3:] == ["recheck_pass", "sign_off", "archive"]
            # the photo must show this rectification: one taken before a failed
            # re-check or a reopen does not count (R-TKT-SIGNOFF)
            reset = max(
                (i for i, e in enumerate(done) if e.kind in ("recheck_fail", "reopen")), default=-1
            )
            assert any(x.kind == "photo_after" for e in done[reset + 1 :] for x in e.evidence), (
                "filed without a photo taken since the last failed re-check or reopen"
            )

    @invariant()
    def demolition_needs_certification(self) -> None:
        """R-ROUTE-BUILDING: demolition only after the route's certifier certified."""
        s = self.ticket.state
        certifier = s.routing.certifier if s.routing is not None else None
        if s.demolished:
            assert certifier is not None, "demolished a hazard that is not a building"
            assert s.certified_by == certifier
        if s.certified_by is not None:
            assert s.certified_by == certifier

    @invariant()
    def deadline_not_before_report(self) -> None:
        """R-TKT-DEADLINE: rectification always runs against a deadline after the report."""
        s = self.ticket.state
        if s.deadline is not None:
            assert s.reported_at is not None
            assert s.deadline >= self.plan.local_date(s.reported_at)
        if s.state in ("rectifying", "overdue"):
            assert s.deadline is not None, "rectifying without a deadline"

    @invariant()
    def escalations_have_targets(self) -> None:
        """Every due escalation names targets and a rule."""
        s = self.ticket.state
        for when in (self.at, self.at + timedelta(days=60)):
            for esc in due_escalations(s, when, self.plan):
                assert esc.targets
                assert all(isinstance(x, str) and x for x in esc.targets)
                assert esc.rule.startswith("R-")

    @invariant()
    def duties_follow_the_state(self) -> None:
        """R-DUTY-*, 六(四): the duty the state implies, owed by known agencies; a missed one
        is escalated (overdue, refusal or slow) unless a referral already names its parties."""
        s = self.ticket.state
        for when in (self.at, self.at + timedelta(days=60)):
            owed = duties_at(s, when, self.plan)
            kinds = [d.kind for d in owed if d.kind != "decide_referral"]
            implied = LIFECYCLE_DUTIES.get(s.state)
            assert kinds == ([implied[0]] if implied is not None else []), (s.state, kinds)
            due = due_escalations(s, when, self.plan)
            kinds_due = {e.kind for e in due}
            for d in owed:
                assert d.agencies
                assert all(self.plan.has_agency(a) for a in d.agencies)
                if d.late and not kinds_due & {"overdue", "refusal", "slow"}:
                    assert all(any(a in r.accountable for r in s.referrals) for a in d.agencies)

    @invariant()
    def fold_is_deterministic(self) -> None:
        """A ticket's state is the fold of its events."""
        events = self.ticket.events
        if events:
            assert fold(events) == self.ticket.state
            assert fold(list(events)) == fold(events)
        else:
            assert self.ticket.state.state == "new"

    @invariant()
    def machine_in_step(self) -> None:
        """The live ``transitions`` machine allows exactly what the compiled table allows."""
        t = self.ticket
        for trig in TRIGGERS:
            assert t.may(trig) == (trig in triggers_from(t.state.state))
