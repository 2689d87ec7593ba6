"""One ticket driven by many actors: the lifecycle's safety invariants hold."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from fireflow import load_plan
from fireflow.errors import InvalidCommand, NotAuthorized, Refusal
from fireflow.rules.escalation import due_escalations
from fireflow.states import TRIGGERS, triggers_from
from fireflow.ticket import SOURCES, Ticket, fold

PLAN = load_plan("changle-2022")
AGENCIES = tuple(a.id for a in PLAN.agencies)
SH = ZoneInfo("Asia/Shanghai")
START = datetime(2022, 3, 16, 9, tzinfo=SH)
PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64}
PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}
_COUNTERS = {"version", "refused_attempts", "last_at"}
#: every (category, location, subtype) the plan can route
HAZARDS = tuple(
    (c.id, loc, s.id) for c in PLAN.categories for loc in ("inside", "around") for s in c.subtypes
)


def _allowed_agencies(ticket, kind):
    entry = PLAN.authority_for(kind)
    if entry is None:
        return ()
    out = set(entry.agencies)
    if ticket.state.routing is not None:
        for role in entry.roles:
            out.update(ticket.state.routing.role(role))
    return tuple(sorted(out))


class TicketMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ticket = Ticket("S1", PLAN)
        self.at = START
        self.refusals = 0
        self.accepted = 0

    @initialize()
    def start(self):
        assert self.ticket.state.state == "new"

    @rule(data=st.data())
    def command(self, data):
        t = self.ticket
        state = t.state
        allowed = triggers_from(state.state)
        if allowed and data.draw(st.integers(0, 9), label="bias") < 8:
            kind = data.draw(st.sampled_from(allowed), label="kind")
        else:
            kind = data.draw(st.sampled_from(TRIGGERS), label="kind")
        good = _allowed_agencies(t, kind)
        if good and data.draw(st.booleans(), label="pick allowed agency"):
            agency = data.draw(st.sampled_from(good), label="agency")
        else:
            agency = data.draw(st.sampled_from(AGENCIES), label="agency")
        step = data.draw(st.one_of(st.integers(0, 48), st.integers(49, 24 * 40)), label="hours")
        self.at = self.at + timedelta(hours=step)
        at = self.at
        if data.draw(st.integers(0, 30), label="backwards") == 0:
            at = at - timedelta(hours=data.draw(st.integers(1, 48), label="back by"))
        fields = self._fields(data, kind)
        before = t.state
        n_events = len(t.events)
        exc: Refusal | None = None
        try:
            events = t.command(kind, at, agency, **fields)
        except Refusal as caught:
            exc = caught
        if exc is not None:
            self.refusals += 1
            after = t.state
            assert after.state == before.state
            assert exc.state == before.state
            assert exc.trigger == kind
            changed = {
                f.name
                for f in attrs.fields(type(before))
                if getattr(before, f.name) != getattr(after, f.name)
            }
            assert changed <= _COUNTERS, changed
            if isinstance(exc, NotAuthorized):
                assert len(t.events) == n_events + 1
                assert t.events[-1].kind == "attempt_refused"
                assert after.refused_attempts == before.refused_attempts + 1
                assert after.version == before.version + 1
            else:
                assert after == before
                assert len(t.events) == n_events
            if before.last_at is not None and at < before.last_at:
                assert isinstance(exc, InvalidCommand)
                assert exc.field == "at"
            return
        self.accepted += 1
        assert len(events) == 1
        assert events[0].kind == kind
        assert events[0].rules
        assert t.state.version == before.version + 1
        assert before.last_at is None or at >= before.last_at
        assert kind in allowed

    def _fields(self, data, kind):
        fields = {}
        if kind == "report":
            category, location, subtype = data.draw(st.sampled_from(HAZARDS), label="hazard")
            source = data.draw(st.sampled_from(SOURCES), label="source")
            fields.update(
                community="小区A",
                town="金峰镇",
                category=category,
                location=location,
                subtype=subtype,
                source=source,
            )
            if data.draw(st.integers(0, 4), label="photo") > 0:
                fields["evidence"] = [PHOTO_BEFORE]
        elif kind in ("recheck_pass", "recheck_fail"):
            parts = data.draw(
                st.lists(st.sampled_from(AGENCIES), max_size=3, unique=True), label="participants"
            )
            fields["participants"] = [{"agency": a} for a in parts]
        elif kind == "sign_off":
            pool = (*self.ticket.state.recheck_agencies, *AGENCIES)
            signers = data.draw(
                st.lists(st.sampled_from(pool), max_size=3, unique=True), label="signers"
            )
            fields["signers"] = [{"agency": a, "person": "人"} for a in signers]
        elif kind == "archive":
            if data.draw(st.integers(0, 4), label="photo_after") > 0:
                fields["evidence"] = [PHOTO_AFTER]
        elif kind == "escalate" and data.draw(st.integers(0, 4), label="targets?") == 0:
            fields["targets"] = data.draw(
                st.lists(st.sampled_from(AGENCIES), min_size=1, max_size=3), label="targets"
            )
        elif kind in ("set_deadline", "recheck_fail", "resume", "reopen") and (
            data.draw(st.integers(0, 4), label="override?") == 0
        ):
            fields["days"] = data.draw(st.integers(1, 40), label="days")
            fields["unit"] = data.draw(st.sampled_from(["calendar", "working"]), label="unit")
        return fields

    # ------------------------------------------------------------------ #

    @invariant()
    def archived_only_after_independent_multi_agency_check(self):
        s = self.ticket.state
        if s.state in ("signed_off", "archived"):
            assert len(set(s.recheck_agencies)) >= PLAN.settings.min_recheck_agencies
            assert s.signers
            rectifier = s.rectified_by
            assert rectifier is not None
            for signer in s.signers:
                assert signer.agency != rectifier
                assert signer.agency != s.routing.rectifier
                assert signer.agency != "third_party"
                assert signer.agency in s.recheck_agencies
        if s.state == "archived":
            assert any(e.kind == "photo_after" for e in s.evidence)
            kinds = [e.kind for e in self.ticket.events if e.kind != "attempt_refused"]
            assert kinds[-3:] == ["recheck_pass", "sign_off", "archive"]

    @invariant()
    def demolition_needs_certification(self):
        s = self.ticket.state
        if s.demolished:
            assert s.certified_by == "planning"
            assert s.category == "spacing_illegal_building"
        if s.certified_by is not None:
            assert s.certified_by == "planning"

    @invariant()
    def deadline_not_before_report(self):
        s = self.ticket.state
        if s.deadline is not None:
            assert s.reported_at is not None
            assert s.deadline >= PLAN.local_date(s.reported_at)
        if s.state in ("rectifying", "overdue"):
            assert s.deadline is not None

    @invariant()
    def escalations_have_targets(self):
        s = self.ticket.state
        for when in (self.at, self.at + timedelta(days=60)):
            for esc in due_escalations(s, when, PLAN):
                assert esc.targets
                assert all(isinstance(x, str) and x for x in esc.targets)
                assert esc.rule.startswith("R-")

    @invariant()
    def fold_is_deterministic(self):
        events = self.ticket.events
        if events:
            assert fold(events) == self.ticket.state
            assert fold(list(events)) == fold(events)
        else:
            assert self.ticket.state.state == "new"

    @invariant()
    def machine_in_step(self):
        t = self.ticket
        for trig in TRIGGERS:
            assert t.may(trig) == (trig in triggers_from(t.state.state))


TicketMachine.TestCase.settings = settings(
    TicketMachine.TestCase.settings, max_examples=50, stateful_step_count=40
)
TestTicketMachine = TicketMachine.TestCase


def test_driver_reaches_deep_states():
    """A sanity check that a state-biased driver reaches the deep states (no hypothesis)."""
    rnd = random.Random(1)
    reached = set()
    for _ in range(200):
        m = TicketMachine()
        for _ in range(40):
            t = m.ticket
            allowed = triggers_from(t.state.state)
            if not allowed:
                break
            kind = rnd.choice(allowed)
            agencies = _allowed_agencies(t, kind) or AGENCIES
            m.at += timedelta(hours=rnd.randint(0, 200))
            fields = {}
            if kind == "report":
                c, loc, sub = rnd.choice(HAZARDS)
                fields = {"community": "A", "town": "T", "category": c, "location": loc,
                          "subtype": sub, "source": "patrol"}  # fmt: skip
            elif kind.startswith("recheck"):
                fields = {"participants": [{"agency": "housing"}, {"agency": "fire"}]}
            elif kind == "sign_off":
                fields = {"signers": [{"agency": "fire"}]}
            elif kind == "archive":
                fields = {"evidence": [PHOTO_AFTER]}
            try:
                t.command(kind, m.at, rnd.choice(agencies), **fields)
            except Refusal:
                continue
            reached.add(t.state.state)
    assert {"archived", "certified", "escalated", "overdue", "passed"} <= reached
