"""The hazard-ticket lifecycle, declared once, as data (隐患工单生命周期).

:data:`LIFECYCLE` lists every state and every transition with Chinese and
English labels and the rule ids that allow it.  Two engines are built from
it and nothing else:

* :func:`compiled_table`: a plain ``dict`` from ``(state, trigger)`` to the
  destination, used by :func:`fireflow.ticket.evolve` for bulk replay and
  simulation;
* :func:`build_machine`: a ``transitions`` machine for live, inspectable ticket
  objects (trigger methods, ``may_*``) and diagrams.

A property test proves that both agree on every sequence of triggers.  The
lifecycle is structural: category-specific preconditions (only an illegal
building is certified) and authority live in :mod:`fireflow.rules` and are
checked by :func:`fireflow.ticket.decide`.

>>> table = compiled_table()
>>> table[("reinspection_requested", "recheck_fail")]
'rectifying'
>>> "demolish" in triggers_from("certified")
True
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "EVENT_KINDS",
    "FINAL_STATES",
    "INITIAL_STATE",
    "INTO_RECTIFYING",
    "LIFECYCLE",
    "LIFECYCLE_TABLE",
    "RECORD_ONLY_KINDS",
    "SETTINGS_AUTHORIZED",
    "STATES",
    "TRIGGERS",
    "Lifecycle",
    "StateDef",
    "TransitionDef",
    "build_machine",
    "compiled_table",
    "graphviz",
    "mermaid",
    "triggers_from",
]


@attrs.frozen
class StateDef:
    """A ticket state: id, labels, whether it is final, who acts in it."""

    id: str
    zh: str
    en: str
    actors: tuple[str, ...]
    """Route roles (or agency ids) expected to act next in this state."""
    final: bool = False


@attrs.frozen
class TransitionDef:
    """A trigger moving a ticket from any of ``sources`` to ``dest``.

    ``dest`` equal to the source (``None`` here) is an internal transition: the
    event is recorded, the state stays.
    """

    trigger: str
    sources: tuple[str, ...]
    dest: str | None
    zh: str
    en: str
    rules: tuple[str, ...]
    """The lifecycle rules of the trigger: the first is cited when the trigger is refused in
    a state that does not allow it.  An accepted event cites what its step in
    :mod:`fireflow.ticket` returns, one source (the lifecycle rule of the step, the
    ticket's own route where the step is a route duty, the calendar rules of a deadline)."""


@attrs.frozen
class Lifecycle:
    """States and transitions, validated when built (no unreachable states)."""

    states: tuple[StateDef, ...]
    transitions: tuple[TransitionDef, ...]
    initial: str
    _states_by_id: dict[str, StateDef] = attrs.field(init=False, eq=False, repr=False)
    _transitions_by_trigger: dict[str, TransitionDef] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_states_by_id", {s.id: s for s in self.states})
        object.__setattr__(
            self, "_transitions_by_trigger", {t.trigger: t for t in self.transitions}
        )
        ids = [s.id for s in self.states]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate state ids")
        known = set(ids)
        for t in self.transitions:
            for s in (*t.sources, *([t.dest] if t.dest else [])):
                if s not in known:
                    raise ValueError(f"transition {t.trigger!r} names unknown state {s!r}")
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            for s in t.sources:
                if (s, t.trigger) in seen:
                    raise ValueError(f"two transitions for {t.trigger!r} from {s!r}")
                seen.add((s, t.trigger))
        reach = {self.initial}
        frontier = [self.initial]
        while frontier:
            s = frontier.pop()
            for t in self.transitions:
                if s in t.sources and t.dest and t.dest not in reach:
                    reach.add(t.dest)
                    frontier.append(t.dest)
        if reach != known:
            raise ValueError(f"unreachable states: {sorted(known - reach)}")
        for st in self.states:
            if not st.final and not any(st.id in t.sources for t in self.transitions):
                raise ValueError(f"state {st.id!r} is not final but has no way out")

    def state(self, state_id: str) -> StateDef:
        """The declaration of a state (``KeyError`` if unknown)."""
        return self._states_by_id[state_id]

    def transition(self, trigger: str) -> TransitionDef:
        """The declaration of a trigger (``KeyError`` if unknown)."""
        return self._transitions_by_trigger[trigger]


_S = StateDef
_T = TransitionDef
#: The open states where an agency's own enforcement duty applies (``punish``: 四(二)
#: 消防部门…依法进行查处; which agencies may, and on which hazards, is route data).  Not
#: ``certified``: only an illegal building gets there, and no agency punishes it directly.
_OPEN = (
    "reported",
    "routed",
    "rectifying",
    "overdue",
    "refused",
    "escalated",
    "rectified",
    "reinspection_requested",
    "passed",
)

#: Every state after ``new``: a referral for accountability (六(四)) and its outcome may be
#: recorded whatever happened to the hazard since, ``archived`` included.
_AFTER_REPORT = (*_OPEN, "certified", "signed_off", "archived")

#: The one declaration of the ticket lifecycle.
LIFECYCLE = Lifecycle(
    initial="new",
    states=(
        _S("new", "未登记", "Not yet recorded", ("reporter",)),
        _S("reported", "已登记", "Recorded in the ledger", ("lead",)),
        _S("routed", "已分派", "Routed to the responsible parties", ("lead",)),
        _S("rectifying", "限期整改中", "Rectifying by the deadline", ("rectifier",)),
        _S("overdue", "逾期未整改", "Overdue", ("rectifier", "lead", "supervisor")),
        _S("refused", "拒不整改", "Refused after dissuasion", ("lead", "supervisor")),
        _S("escalated", "已移交执法", "Escalated to the enforcing agencies", ("enforcers",)),
        _S("certified", "已认定违建", "Certified an illegal building", ("lead",)),
        _S("rectified", "整改完毕", "Rectified, re-inspection to apply for", ("rectifier",)),
        _S("reinspection_requested", "已申报复验", "Re-inspection applied for", ("recheck_lead",)),
        _S("passed", "复查合格", "Re-check passed", ("acceptance",)),
        _S("signed_off", "已签字验收", "Signed off", ("recheck_lead",)),
        _S("archived", "已归档", "Filed in the community dossier", ("spot_checker",), final=True),
    ),
    transitions=(
        _T("report", ("new",), "reported", "登记隐患", "Record a hazard", ("R-TKT-OPEN",)),
        _T("route", ("reported",), "routed", "分派责任", "Route", ("R-AUTH-ROLES",)),
        _T(
            "set_deadline",
            ("routed",),
            "rectifying",
            "限期整改",
            "Set a rectification deadline",
            ("R-TKT-DEADLINE",),
        ),
        _T(
            "rectify",
            ("rectifying", "overdue"),
            "rectified",
            "整改完毕",
            "Report rectification done",
            ("R-TKT-REINSPECT",),
        ),
        _T(
            "apply_reinspection",
            ("rectified",),
            "reinspection_requested",
            "申报复验",
            "Apply for re-inspection",
            ("R-TKT-REINSPECT",),
        ),
        _T(
            "recheck_pass",
            ("reinspection_requested",),
            "passed",
            "复查合格",
            "Re-check passed",
            ("R-TKT-REINSPECT",),
        ),
        _T(
            "recheck_fail",
            ("reinspection_requested",),
            "rectifying",
            "复查不合格，重新限期整改",
            "Re-check failed: new deadline",
            ("R-TKT-FAIL",),
        ),
        _T(
            "sign_off",
            ("passed",),
            "signed_off",
            "验收签字",
            "Sign off",
            ("R-TKT-SIGNOFF", "R-AUTH-SEPARATION"),
        ),
        _T(
            "archive",
            ("signed_off",),
            "archived",
            "拍照建档归档",
            "Photograph and file in the dossier",
            ("R-TKT-SIGNOFF",),
        ),
        # R-ESC-OVERDUE; from ``rectified`` too: 五(三) 隐患整改完毕，物业服务企业要立即申报复验,
        # so a rectification past its deadline and never applied for is overdue as well
        _T(
            "mark_overdue",
            ("rectifying", "rectified"),
            "overdue",
            "逾期",
            "Mark overdue",
            ("R-ESC-OVERDUE",),
        ),
        _T(
            "refuse",
            ("rectifying", "overdue"),
            "refused",
            "劝阻无效，拒不整改",
            "Record a refusal after dissuasion",
            ("R-ESC-REFUSAL",),
        ),
        _T(
            "escalate",
            ("refused", "overdue"),
            "escalated",
            "移交公安、消防、城管等部门",
            "Escalate to the enforcing agencies",
            ("R-ESC-REFUSAL", "R-ESC-OVERDUE"),
        ),
        _T(
            "expose",
            ("refused", "escalated"),
            None,
            "公示栏曝光",
            "Expose on the notice board",
            ("R-ESC-EXPOSE",),
        ),
        _T(
            "punish",
            _OPEN,
            None,
            "依法查处",
            "Investigate and punish",
            ("R-ESC-REFUSAL",),
        ),
        _T(
            "certify",
            ("rectifying", "overdue", "refused", "escalated"),
            "certified",
            "认定违章建筑",
            "Certify an illegal building",
            ("R-ROUTE-BUILDING",),
        ),
        _T(
            "demolish",
            ("certified",),
            "rectifying",
            "依法拆除",
            "Demolish",
            ("R-ROUTE-BUILDING",),
        ),
        _T(
            "clear",
            ("escalated",),
            "rectifying",
            "清理车辆、杂物",
            "Clear vehicles and goods",
            ("R-ESC-REFUSAL",),
        ),
        _T(
            "resume",
            ("refused", "escalated"),
            "rectifying",
            "恢复整改",
            "Back to rectification",
            ("R-ESC-REFUSAL",),
        ),
        _T(
            "reopen",
            ("passed", "signed_off", "archived"),
            "rectifying",
            "抽查发现整改不到位，责令整改",
            "Reopened by a spot check",
            ("R-TKT-SPOTCHECK",),
        ),
        # 六(四) 由牵头部门转报效能部门进行督导问责: a record, not a state; authorized by
        # settings.accountability_lead and settings.accountability_office (SETTINGS_AUTHORIZED)
        _T(
            "refer",
            _AFTER_REPORT,
            None,
            "转报效能部门督导问责",
            "Refer for accountability",
            ("R-ESC-OFFICIAL",),
        ),
        _T(
            "decide_referral",
            _AFTER_REPORT,
            None,
            "记录问责结果",
            "Record the outcome of a referral",
            ("R-ESC-OFFICIAL",),
        ),
    ),
)

STATES: tuple[str, ...] = tuple(s.id for s in LIFECYCLE.states)
#: Triggers whose authority comes from the plan's settings, not its ``authority`` entries:
#: ``refer`` by ``settings.accountability_lead`` (牵头部门), ``decide_referral`` by
#: ``settings.accountability_office`` (效能部门), 六(四).
SETTINGS_AUTHORIZED: frozenset[str] = frozenset({"refer", "decide_referral"})
TRIGGERS: tuple[str, ...] = tuple(t.trigger for t in LIFECYCLE.transitions)
#: Event kinds outside the lifecycle: recorded in a ticket's history, no transition.
#: ``attempt_refused`` (a refused attempt) and ``plan_migrated`` (the ticket
#: continues under another plan, docs/lifecycle.md), with their labels.
RECORD_ONLY_KINDS: Mapping[str, tuple[str, str]] = {
    "attempt_refused": ("被拒绝的操作", "Refused attempt"),
    "plan_migrated": ("改用新版方案", "Plan migrated"),
}
#: Every kind an event may have: a lifecycle trigger or a record-only kind.
EVENT_KINDS: tuple[str, ...] = (*TRIGGERS, *RECORD_ONLY_KINDS)
INITIAL_STATE: str = LIFECYCLE.initial
FINAL_STATES: frozenset[str] = frozenset(s.id for s in LIFECYCLE.states if s.final)


@functools.cache
def compiled_table(lifecycle: Lifecycle = LIFECYCLE) -> Mapping[tuple[str, str], str]:
    """``(state, trigger) -> destination`` for every allowed transition."""
    table: dict[tuple[str, str], str] = {}
    for t in lifecycle.transitions:
        for s in t.sources:
            table[(s, t.trigger)] = t.dest or s
    return table


#: The built-in lifecycle's compiled table, ``(state, trigger) -> destination``: the one
#: lookup :func:`fireflow.ticket.decide` checks a command against and
#: :func:`fireflow.ticket.evolve` applies an event through.
LIFECYCLE_TABLE: Mapping[tuple[str, str], str] = compiled_table()
#: The triggers whose transition (re)enters ``rectifying``: their events may carry the
#: deadline they set (R-TKT-DEADLINE), and entering counts even from ``rectifying`` itself.
INTO_RECTIFYING: frozenset[str] = frozenset(
    t.trigger for t in LIFECYCLE.transitions if t.dest == "rectifying"
)


def triggers_from(state: str, lifecycle: Lifecycle = LIFECYCLE) -> tuple[str, ...]:
    """The triggers allowed in ``state``, in declaration order."""
    return tuple(t.trigger for t in lifecycle.transitions if state in t.sources)


def build_machine(model: Any, initial: str | None = None, lifecycle: Lifecycle = LIFECYCLE) -> Any:
    """A ``transitions`` machine for ``model`` (adds trigger and ``may_*`` methods).

    One machine per live object: for bulk work use :func:`compiled_table`.
    """
    from transitions import Machine  # noqa: PLC0415 (only live objects pay the import)

    return Machine(
        model=model,
        states=list(STATES if lifecycle is LIFECYCLE else (s.id for s in lifecycle.states)),
        transitions=[
            {"trigger": t.trigger, "source": list(t.sources), "dest": t.dest}
            for t in lifecycle.transitions
        ],
        initial=initial or lifecycle.initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


def _mermaid_id(state: str) -> str:
    ident = re.sub(r"[^A-Za-z0-9_]", "_", state)
    return f"s_{ident}"


def mermaid(lifecycle: Lifecycle = LIFECYCLE, *, english: bool = False) -> str:
    """The lifecycle as Mermaid ``stateDiagram-v2`` text with Chinese labels.

    >>> print(mermaid().splitlines()[0])
    stateDiagram-v2
    """
    lines = ["stateDiagram-v2"]
    for s in lifecycle.states:
        label = f"{s.zh} {s.en}" if english else s.zh
        lines.append(f'    state "{label}" as {_mermaid_id(s.id)}')
    lines.append(f"    [*] --> {_mermaid_id(lifecycle.initial)}")
    for t in lifecycle.transitions:
        label = f"{t.zh} {t.trigger}" if not english else f"{t.zh} {t.en}"
        label = label.replace(":", " ").replace(";", " ")
        for src in t.sources:
            dest = t.dest or src
            lines.append(f"    {_mermaid_id(src)} --> {_mermaid_id(dest)} : {label}")
    for s in lifecycle.states:
        if s.final:
            lines.append(f"    {_mermaid_id(s.id)} --> [*]")
    return "\n".join(lines) + "\n"


def graphviz(lifecycle: Lifecycle = LIFECYCLE) -> str:
    """The lifecycle as Graphviz DOT text (render with ``dot -Tsvg`` where installed)."""
    lines = ["digraph ticket {", '  rankdir=LR; node [shape=box, fontname="Noto Sans CJK SC"];']
    for s in lifecycle.states:
        shape = ", peripheries=2" if s.final else ""
        lines.append(f'  {s.id} [label="{s.zh}\\n{s.id}"{shape}];')
    for t in lifecycle.transitions:
        for src in t.sources:
            lines.append(f'  {src} -> {t.dest or src} [label="{t.zh}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
