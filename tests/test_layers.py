"""Imports point down only (DESIGN.md "Layers"), checked on the source.

The layering as built (docs/architecture.md):

    cli ── sim, store, testing, forms, reports_cli
             │
    ticket (decide / evolve / fold, the Ticket facade)
             │
    rules that read tickets: escalation, explain, spotcheck, reporting
             │
    model (Command, ActorIn, EvidenceIn, TicketState, the plan binding)
             │
    rules that only read the plan: routing
             │
    states, events ── plan (joins the calendar to a plan)
                        │
                      calendar (counts days; knows nothing of plans)
                        │
                      errors, text
"""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "fireflow"

#: module -> fireflow modules it must never import (directly, at any depth in the file)
FORBIDDEN = {
    "errors": ["plan", "calendar", "states", "events", "ticket", "rules", "store", "sim", "cli"],
    "plan": ["ticket", "rules", "store", "sim", "cli", "testing", "forms"],
    "calendar": ["plan", "ticket", "rules", "store", "sim", "cli", "testing", "forms"],
    "states": ["plan", "calendar", "ticket", "rules", "store", "sim", "cli", "testing"],
    "events": ["plan", "calendar", "ticket", "rules", "store", "sim", "cli", "testing"],
    "rules/routing": ["model", "ticket", "store", "sim", "cli", "testing", "forms"],
    "model": [
        "ticket",
        "store",
        "sim",
        "cli",
        "testing",
        "forms",
        "rules.escalation",
        "rules.explain",
        "rules.spotcheck",
        "rules.reporting",
    ],
    "ticket": ["store", "sim", "cli", "testing", "forms", "rules.escalation", "rules.spotcheck"],
    "rules/escalation": ["ticket", "store", "sim", "cli", "testing", "forms"],
    "rules/explain": ["ticket", "store", "sim", "cli", "testing", "forms"],
    "rules/duties": ["ticket", "store", "sim", "cli", "testing", "forms", "rules.escalation"],
    "rules/accountability": ["ticket", "store", "sim", "cli", "testing", "forms"],
    "rules/spotcheck": ["ticket", "store", "sim", "cli", "testing"],
    "rules/reporting": ["ticket", "store", "sim", "cli", "testing"],
    "store/base": ["sim", "cli", "testing", "forms"],
    "store/sqlite": ["sim", "cli", "testing", "forms"],
    "sim/engine": ["cli", "store"],
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fireflow"):
            found.add(node.module.removeprefix("fireflow").lstrip("."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fireflow."):
                    found.add(alias.name.removeprefix("fireflow."))
    return found


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_point_down(module):
    imported = _imports(PKG / f"{module}.py")
    bad = sorted(m for m in imported for f in FORBIDDEN[module] if m == f or m.startswith(f + "."))
    assert not bad, f"fireflow/{module}.py imports {bad}"


def test_pure_core_reads_no_clock_and_no_global_random():
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PKG)
        for needle in (
            "datetime.now(",
            "date.today(",
            "time.time(",
            "pendulum.now(",
            "random.random(",
        ):
            assert needle not in text, f"{rel} uses {needle}"
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                names = {a.name for a in node.names}
                assert names <= {"Random"}, f"{rel} imports {names} from random"


def test_the_calendar_knows_nothing_of_plans():
    # The scan above reads every import in the file, TYPE_CHECKING blocks included;
    # here no code or annotation names a plan type either (the parsed tree keeps
    # annotations as expressions), and the join sits above: plan imports calendar.
    tree = ast.parse((PKG / "calendar.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"Plan", "TYPE_CHECKING", "Deadline"}
    assert "calendar" in _imports(PKG / "plan.py")


def test_the_import_scan_sees_real_imports():
    # guards the guard: the scanner must find what ticket.py really imports
    assert {"rules.routing", "states", "events", "plan"} <= _imports(PKG / "ticket.py")


def test_rules_import_the_model_not_the_engine():
    # #12: the records rules read and build live in fireflow.model, beside events and states
    for path in sorted((PKG / "rules").glob("*.py")):
        assert "ticket" not in _imports(path), f"fireflow/rules/{path.name} imports the engine"
    assert "model" in _imports(PKG / "rules" / "spotcheck.py")
    assert {"model", "rules.routing"} <= _imports(PKG / "ticket.py")
