"""The lifecycle declaration, its two engines (table and ``transitions``), and its diagrams."""

from __future__ import annotations

import re

import pytest
import transitions
from hypothesis import given
from hypothesis import strategies as st

from fireflow.states import (
    FINAL_STATES,
    INITIAL_STATE,
    LIFECYCLE,
    STATES,
    TRIGGERS,
    Lifecycle,
    StateDef,
    TransitionDef,
    build_machine,
    compiled_table,
    graphviz,
    mermaid,
    triggers_from,
)

MERMAID_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model:
    state: str


# --------------------------------------------------------------------------- #
# The declaration


def test_declaration_is_valid():
    # rebuilding it runs every validation again
    again = Lifecycle(LIFECYCLE.states, LIFECYCLE.transitions, LIFECYCLE.initial)
    assert again == LIFECYCLE
    assert INITIAL_STATE == "new"
    assert {"archived"} == FINAL_STATES
    assert len(set(STATES)) == len(STATES) == 13
    assert len(set(TRIGGERS)) == len(TRIGGERS) == 21
    for t in LIFECYCLE.transitions:
        assert t.rules, t.trigger
        assert all(r.startswith("R-") for r in t.rules)
        assert t.zh
        assert t.en
        for s in t.sources:
            assert s in STATES
        assert t.dest is None or t.dest in STATES
    for s in LIFECYCLE.states:
        assert s.zh
        assert s.en
        if not s.final:
            assert triggers_from(s.id), s.id


def test_every_state_reachable_from_initial():
    table = compiled_table()
    reach = {INITIAL_STATE}
    frontier = [INITIAL_STATE]
    while frontier:
        s = frontier.pop()
        for (src, _), dest in table.items():
            if src == s and dest not in reach:
                reach.add(dest)
                frontier.append(dest)
    assert reach == set(STATES)


def test_compiled_table_matches_declaration():
    table = compiled_table()
    expected = {(s, t.trigger): (t.dest or s) for t in LIFECYCLE.transitions for s in t.sources}
    assert dict(table) == expected
    assert table[("reinspection_requested", "recheck_fail")] == "rectifying"
    assert table[("refused", "expose")] == "refused"  # internal transition
    assert ("new", "archive") not in table
    # R-ESC-OVERDUE, 五(三) 整改完毕…立即申报复验: a rectification not applied for is overdue too
    assert (
        table[("rectified", "mark_overdue")] == table[("rectifying", "mark_overdue")] == "overdue"
    )


def test_mark_overdue_from_rectified_in_machine_and_diagram():
    class M:
        pass

    m = M()
    build_machine(m, initial="rectified")
    assert m.may_mark_overdue()
    m.mark_overdue()
    assert m.state == "overdue"
    assert "mark_overdue" in triggers_from("rectified")
    assert "    s_rectified --> s_overdue : 逾期 mark_overdue" in mermaid().splitlines()


@pytest.mark.parametrize(
    ("states", "transitions_", "initial", "message"),
    [
        (
            (StateDef("a", "甲", "A", ()), StateDef("a", "甲", "A", (), final=True)),
            (),
            "a",
            "duplicate",
        ),
        (
            (StateDef("a", "甲", "A", (), final=True),),
            (TransitionDef("x", ("a",), "zz", "x", "x", ("R-X",)),),
            "a",
            "unknown state",
        ),
        (
            (StateDef("a", "甲", "A", ()), StateDef("b", "乙", "B", (), final=True)),
            (
                TransitionDef("x", ("a",), "b", "x", "x", ("R-X",)),
                TransitionDef("x", ("a",), "a", "x", "x", ("R-X",)),
            ),
            "a",
            "two transitions",
        ),
        (
            (StateDef("a", "甲", "A", (), final=True), StateDef("b", "乙", "B", (), final=True)),
            (),
            "a",
            "unreachable",
        ),
        (
            (StateDef("a", "甲", "A", ()), StateDef("b", "乙", "B", ())),
            (TransitionDef("x", ("a",), "b", "x", "x", ("R-X",)),),
            "a",
            "no way out",
        ),
    ],
)
def test_invalid_declarations_are_refused(states, transitions_, initial, message):
    with pytest.raises(ValueError, match=message):
        Lifecycle(states, transitions_, initial)


# --------------------------------------------------------------------------- #
# The two engines agree


@given(st.lists(st.sampled_from(TRIGGERS), max_size=30))
def test_machine_and_table_agree(triggers):
    table = compiled_table()
    model = _Model()
    build_machine(model)
    state = INITIAL_STATE
    assert model.state == state
    for trig in triggers:
        may = getattr(model, f"may_{trig}")()
        allowed = (state, trig) in table
        assert may == allowed, (state, trig)
        if allowed:
            assert getattr(model, trig)() is True
            state = table[(state, trig)]
        else:
            with pytest.raises(transitions.MachineError):
                getattr(model, trig)()
        assert model.state == state


def test_machine_refuses_a_known_bad_trigger():
    model = _Model()
    build_machine(model)
    with pytest.raises(transitions.MachineError):
        model.archive()
    assert model.state == "new"


@pytest.mark.parametrize("state", STATES)
def test_triggers_from_matches_machine(state):
    model = _Model()
    build_machine(model, initial=state)
    assert model.state == state
    allowed = {t for t in TRIGGERS if getattr(model, f"may_{t}")()}
    assert allowed == set(triggers_from(state))


# --------------------------------------------------------------------------- #
# Diagrams

_ARROW = re.compile(r"^\s*(\S+) --> (\S+)(?: : (.*))?$")


def _mermaid_parts(text: str):
    ids: dict[str, str] = {}
    edges: list[tuple[str, str, str]] = []
    for line in text.splitlines()[1:]:
        m = re.match(r'^\s*state "([^"]*)" as (\S+)$', line)
        if m:
            ids[m.group(2)] = m.group(1)
            continue
        m = _ARROW.match(line)
        assert m, line
        edges.append((m.group(1), m.group(2), m.group(3) or ""))
    return ids, edges


@pytest.mark.parametrize("english", [False, True])
def test_mermaid(english):
    text = mermaid(english=english)
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    ids, edges = _mermaid_parts(text)
    assert len(ids) == len(STATES)
    for ident in ids:
        assert MERMAID_ID.match(ident), ident
    # each state is declared once, with its Chinese label, under a distinct id
    labels = list(ids.values())
    by_state = {}
    for s in LIFECYCLE.states:
        matches = [i for i, lab in ids.items() if lab.split(" ")[0] == s.zh]
        assert len(matches) == 1, s.id
        by_state[s.id] = matches[0]
        if english:
            assert s.en in ids[matches[0]]
    assert len(set(by_state.values())) == len(STATES)
    assert all(re.search(r"[\u4e00-\u9fff]", lab) for lab in labels)
    for _, _, label in edges:
        assert ":" not in label
        assert ";" not in label
    edge_set = {(a, b) for a, b, _ in edges}
    for t in LIFECYCLE.transitions:
        for src in t.sources:
            dest = t.dest or src
            assert (by_state[src], by_state[dest]) in edge_set, (t.trigger, src)
            assert any(
                a == by_state[src] and b == by_state[dest] and t.zh.replace(":", " ") in lab
                for a, b, lab in edges
            ), (t.trigger, src)
            if not english:
                assert any(a == by_state[src] and t.trigger in lab for a, _, lab in edges), (
                    t.trigger
                )
    assert ("[*]", by_state[INITIAL_STATE]) in edge_set
    for f in FINAL_STATES:
        assert (by_state[f], "[*]") in edge_set
    n_edges = sum(len(t.sources) for t in LIFECYCLE.transitions) + 1 + len(FINAL_STATES)
    assert len(edges) == n_edges


def test_mermaid_ids_are_valid_for_awkward_state_names():
    lc = Lifecycle(
        states=(
            StateDef("1-start", "开始", "Start", ()),
            StateDef("end state", "结束", "End", (), final=True),
        ),
        transitions=(TransitionDef("go", ("1-start",), "end state", "走", "Go", ("R-X",)),),
        initial="1-start",
    )
    ids, edges = _mermaid_parts(mermaid(lc))
    assert len(ids) == 2
    assert all(MERMAID_ID.match(i) for i in ids)
    assert len({a for a, _, _ in edges} | {b for _, b, _ in edges}) == 3  # two ids and [*]


def test_graphviz_mentions_every_state_and_transition():
    text = graphviz()
    assert text.startswith("digraph ticket {")
    assert text.rstrip().endswith("}")
    for s in LIFECYCLE.states:
        assert re.search(rf"^\s*{s.id} \[label=\"{s.zh}", text, re.MULTILINE), s.id
    for t in LIFECYCLE.transitions:
        for src in t.sources:
            assert f'{src} -> {t.dest or src} [label="{t.zh}"]' in text
    assert "peripheries=2" in text
