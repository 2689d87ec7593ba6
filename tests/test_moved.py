"""Old module paths keep working for one minor version, with a DeprecationWarning (issue 24).

The only test that imports the shims; conftest.py keeps every other import of them out.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re
import sys

import pytest

import fireflow.plan
from fireflow._moved import MOVED
from fireflow.plan import BUILTIN_PLAN

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The old paths the docs and the CHANGELOG named before the plan became a package.
PLAN_PATHS = {
    "fireflow.plan_html": "fireflow.plan.html",
    "fireflow.plan_new": "fireflow.plan.derive",
    "fireflow.plan_upgrade": "fireflow.plan.upgrade",
    "fireflow.rules.routing": "fireflow.plan.routing",
}


def test_every_old_plan_path_is_listed():
    assert PLAN_PATHS.items() <= MOVED.items()


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_gives_the_same_objects(old, monkeypatch):
    new = importlib.import_module(MOVED[old])
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{re.escape(old)} moved to ") as caught:
        shim = importlib.import_module(old)
    # the warning blames the importing code, not the shim or the registry
    assert not caught[0].filename.endswith((old.replace(".", "/") + ".py", "_moved.py"))
    assert shim.__all__, old
    assert set(shim.__all__) <= set(new.__all__)
    for name in shim.__all__:
        assert getattr(shim, name) is getattr(new, name), f"{old}.{name}"


def _imported(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_nothing_imports_an_old_path():
    shims = {ROOT / (old.replace(".", "/") + ".py") for old in MOVED}
    offenders = []
    for folder in ("fireflow", "tests", "examples", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in shims or path == pathlib.Path(__file__):
                continue
            hits = _imported(ast.parse(path.read_text(encoding="utf-8"))) & MOVED.keys()
            offenders += [f"{path.relative_to(ROOT)}: {hit}" for hit in sorted(hits)]
    pattern = re.compile(r"(?:from|import)\s+(" + "|".join(map(re.escape, MOVED)) + r")\b")
    for path in sorted((ROOT / "docs").glob("*.md")):
        for hit in pattern.findall(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}: {hit}")
    assert not offenders


#: The public names of fireflow.plan while it was one module (its __all__ and the other
#: public names callers imported): the package keeps every one.
PLAN_ALL = [
    "ADDED_ENGINE_RULES", "ADDED_SETTINGS", "MAX_PLAN_YEAR", "MIN_PLAN_YEAR", "PLAN_FORMAT",
    "Agency", "Authority", "Category", "Deadline", "DerivedFrom", "DutyDays", "EngineRules",
    "Form", "HolidayCorrection", "HolidayOverride", "HolidaySettings", "Label", "Phase",
    "PhaseDuty", "Plan", "ProgressReports", "ReportDeadline", "ReviewNote", "Route",
    "RuleEntry", "Settings", "SpotCheckSettings", "Subtype", "Text", "YearCoverage",
    "added_rule_entries", "builtin_plans", "calendar_coverage", "calendar_for_plan",
    "dump_plan", "load_plan", "parse_plan", "plan_json_schema", "reach_years",
    "report_deadlines",
]  # fmt: skip
PLAN_OTHER_PUBLIC = [
    "ENGINE_RULES", "ENGINE_RULE_IDS", "GOVERNMENT_LEVELS", "HolidayPolicy", "Id", "Level",
    "NameText", "NonEmpty", "PeriodUnit", "PlanDate", "PlanText", "ROLES", "RuleId",
    "plan_json_schema_text", "validate_plan_data",
]  # fmt: skip


def test_the_plan_package_keeps_every_name_of_the_module():
    assert fireflow.plan.__all__ == PLAN_ALL
    for name in PLAN_ALL + PLAN_OTHER_PUBLIC:
        assert hasattr(fireflow.plan, name), name
    assert fireflow.plan.Plan.__module__ == "fireflow.plan.plan"


#: Library files that still write the built-in plan's name (issue 24 item 5): none left; the
#: list only shrinks.
NAME_PENDING: dict[str, str] = {}


def _name_literals(tree: ast.AST) -> int:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in docstrings
        and isinstance(node.value, str)
        and BUILTIN_PLAN in node.value
    )


def test_the_builtin_plan_is_named_once_in_library_code():
    # docstrings (and the doctests in them) may write the name; code uses BUILTIN_PLAN
    counts = {
        path.relative_to(ROOT).as_posix(): _name_literals(ast.parse(path.read_text("utf-8")))
        for path in sorted((ROOT / "fireflow").rglob("*.py"))
    }
    named = {path for path, n in counts.items() if n}
    assert counts["fireflow/plan/load.py"] == 1
    assert named - NAME_PENDING.keys() == {"fireflow/plan/load.py"}
    assert NAME_PENDING.keys() <= named, "a pending file no longer names it: drop it"
