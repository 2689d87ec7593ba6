"""Imports point down only and run in no circle (DESIGN.md "Layers"), checked on the source.

:func:`import_graph` reads every module of fireflow with :mod:`ast` and records each
import of a fireflow module: at module level *and* inside functions and methods,
``import fireflow.x``, ``from fireflow.x import y`` (an edge to ``fireflow.x.y`` when
``y`` is a module, else to ``fireflow.x``) and relative imports; imports under
``if TYPE_CHECKING:`` are left out (they never run).  The implicit import of a parent
package (importing ``fireflow.store.base`` runs ``fireflow/store/__init__.py``) is not
an edge: every module would otherwise depend on the package facade.  The imports inside
a module-level ``__getattr__`` (allowed only as a deprecation shim, checked below) are
the edges of a node of their own, ``<module>.__getattr__``, placed with the old paths.

:data:`LAYERS` is the layer table of docs/architecture.md (the two are compared by a
test), bottom first; a module may import its own layer and the layers below.  A
package named in the table covers its submodules unless one is named itself.

:data:`KNOWN_VIOLATIONS` lists today's imports that go up or close a circle, each with
the work that removes it.  The test fails on any other upward import or circle, and
also when a listed import has gone or no longer offends: the list only shrinks.
"""

from __future__ import annotations

import ast
import pathlib
import re
from collections.abc import Callable, Iterable, Mapping

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "fireflow"
ARCHITECTURE = PKG.parent / "docs" / "architecture.md"

#: The layers, bottom first: (name, modules and packages in it).  docs/architecture.md
#: shows the same table, top first.  ``cli`` may import anything and nothing imports it;
#: the old paths (deprecation shims, and the imports inside a module ``__getattr__``,
#: which the scan records as the module ``<package>.__getattr__``) sit above it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "fireflow.errors",
            "fireflow._secrets",
            "fireflow.text",
            "fireflow._input",
            "fireflow._yaml",
            "fireflow.output",
            "fireflow.templates",
            "fireflow._html",
            "fireflow.conformance",
            "fireflow._moved",
        ),
    ),
    ("calendar", ("fireflow.calendar",)),
    ("records", ("fireflow.states", "fireflow.events")),
    ("store", ("fireflow.store",)),
    (
        "plan",
        (
            "fireflow.plan",
            "fireflow.plan_html",
            "fireflow.plan_new",
            "fireflow.plan_upgrade",
            "fireflow.rules.routing",
        ),
    ),
    ("model", ("fireflow.model", "fireflow.model_html")),
    ("rules", ("fireflow.rules",)),
    ("engine", ("fireflow.ticket",)),
    ("views", ("fireflow.history", "fireflow.views")),
    ("drivers", ("fireflow.forms", "fireflow.scorecard", "fireflow.sim", "fireflow.testing")),
    ("faces", ("fireflow", "fireflow.service")),
    ("cli", ("fireflow.cli",)),
    (
        "deprecated",
        (
            "fireflow._console",
            "fireflow.reports_cli",
            "fireflow.tickets_cli",
            "fireflow.store.cli",
            "fireflow.store.index",
            "fireflow.store.__getattr__",
            "fireflow.sim.cli",
            "fireflow.testing.cli",
            "fireflow.service.cli",
        ),
    ),
)

#: Imports that go up or close a circle today: (importer, imported) -> the work that
#: removes it.  An entry whose import has gone, or no longer offends, fails the test.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {
    ("fireflow.sim.engine", "fireflow.sim.shard"): (
        "circle engine -> shard -> engine (and shard -> sweep -> engine): simulate() hands "
        "sharded runs to shard, which builds on engine's private _Run (issue 24 item 4)"
    ),
}


# --- the graph --------------------------------------------------------------------------


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node, at any depth, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _nodes(other)
            continue
        yield child
        yield from _nodes(child)


def import_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """Module -> the modules of the package at ``root`` that it imports (see the docstring)."""
    package = root.name
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        _imports = _scanner(package, files, name, path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        shim = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
        if shim:  # a module __getattr__ (a deprecation shim): a node of its own
            tree.body = [n for n in tree.body if n not in shim]
            graph[f"{name}.__getattr__"] = _imports(ast.Module(body=shim, type_ignores=[]))
        graph[name] = _imports(tree) - {name}
    return graph


def _scanner(
    package: str, files: Mapping[str, pathlib.Path], name: str, path: pathlib.Path
) -> Callable[[ast.AST], set[str]]:
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def imports(tree: ast.AST) -> set[str]:
        found: set[str] = set()
        for node in _nodes(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                if source.split(".")[0] != package:
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    found.add(sub if sub in files else source)
        unknown = sorted(found - files.keys())
        assert not unknown, f"{name} imports modules that do not exist: {unknown}"
        return found

    return imports


def layer_of(layers: Iterable[tuple[str, Iterable[str]]]) -> Callable[[str], int]:
    """A function giving a module's layer (its index, 0 at the bottom) from a layer table."""
    rank = {module: i for i, (_, modules) in enumerate(layers) for module in modules}

    def of(module: str) -> int:
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            name = ".".join(parts[:n])
            if name in rank and (n == len(parts) or n > 1):  # the top package: only itself
                return rank[name]
        raise KeyError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")

    return of


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The circles of a graph: its strongly connected parts of two or more modules, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    parts: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                if len(part) > 1:
                    parts.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(parts)


def _reaches(graph: Mapping[str, Iterable[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def problems(
    graph: Mapping[str, set[str]],
    layers: Iterable[tuple[str, Iterable[str]]],
    known: Mapping[tuple[str, str], str],
) -> list[str]:
    """Every upward import and circle not in ``known``, and every stale entry of ``known``."""
    table = list(layers)
    of = layer_of(table)
    names = [name for name, _ in table]
    found: list[str] = []
    for module in sorted(graph):
        for target in sorted(graph[module]):
            if of(target) > of(module) and (module, target) not in known:
                found.append(
                    f"upward import: {module} ({names[of(module)]}) imports "
                    f"{target} ({names[of(target)]})"
                )
    rest = {m: {t for t in ts if (m, t) not in known} for m, ts in graph.items()}
    found += [f"import circle: {' <-> '.join(part)}" for part in strongly_connected(rest)]
    for module, target in sorted(known):
        if target not in graph.get(module, set()):
            found.append(f"known violation gone, remove it from the list: {module} -> {target}")
        elif of(target) <= of(module) and not _reaches(graph, target, module):
            found.append(f"known violation no longer offends, remove it: {module} -> {target}")
    return found


GRAPH = import_graph(PKG)


# --- fireflow itself ---------------------------------------------------------------------


def test_imports_point_down_and_run_in_no_circle():
    found = problems(GRAPH, LAYERS, KNOWN_VIOLATIONS)
    assert not found, "\n".join(found)


def test_every_module_has_a_layer():
    of = layer_of(LAYERS)
    for module in sorted(GRAPH):
        of(module)  # raises, naming the module, when it has none


def test_the_docs_show_the_same_layer_table():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `?(\w+)`? \| (.+?) \|", text, flags=re.MULTILINE)
    documented = {
        name: tuple(re.findall(r"`([\w.]+)`", modules)) for _, name, modules in reversed(rows)
    }
    assert [int(n) for n, _, _ in rows] == list(range(len(LAYERS), 0, -1))
    assert documented == dict(LAYERS)


def test_a_module_getattr_is_only_a_deprecation_shim():
    # no hidden imports (issue 24 item 2): a module __getattr__ may only forward old names,
    # with a DeprecationWarning; the lazy optional driver beside it needs no upward import
    shims = sorted(m.removesuffix(".__getattr__") for m in GRAPH if m.endswith(".__getattr__"))
    assert shims == ["fireflow.store"]
    for module in shims:
        path = PKG.parent.joinpath(*module.split("."), "__init__.py")
        (fn,) = (
            n
            for n in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"
        )
        names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        assert "DeprecationWarning" in names, f"{module}.__getattr__ is not a deprecation shim"
    assert "fireflow.views" in GRAPH["fireflow.store.__getattr__"]
    assert not GRAPH["fireflow.store"] & {"fireflow.views", "fireflow.views.tickets"}


def test_nothing_imports_the_command_line():
    # cli may import anything; only the old paths (deprecation shims) import it
    of = layer_of(LAYERS)
    cli = of("fireflow.cli")
    for module, imported in sorted(GRAPH.items()):
        if of(module) < cli:
            assert not {m for m in imported if m.startswith("fireflow.cli")}, module


def test_the_scan_sees_imports_at_every_depth():
    # guards the guard on the real source: module-level imports, one inside a function
    # and one inside a method
    ticket = GRAPH["fireflow.ticket.decision"]
    assert {"fireflow.rules.duties", "fireflow.states", "fireflow.plan"} <= ticket
    assert "fireflow.templates" in GRAPH["fireflow._html"]  # inside _html.page
    assert "fireflow.sim.plots" in GRAPH["fireflow.sim.result"]  # inside SimResult.plot_*


def test_plots_and_results_run_in_no_circle():
    # SimResult.plot_* delegate to the plots (inside the methods); the plots take SimResult
    # only as a type, and the labels and the extra check from below (svg, extra)
    assert "fireflow.sim.plots" in GRAPH["fireflow.sim.result"]
    assert not _reaches(GRAPH, "fireflow.sim.plots", "fireflow.sim.result")


def test_html_tables_know_no_domain_type():
    # the circle plan -> _html -> sim.behaviour -> plan is gone: _html knows tables and pages
    assert GRAPH["fireflow._html"] <= {"fireflow.errors", "fireflow.templates"}
    assert not _reaches(GRAPH, "fireflow.plan", "fireflow.sim.behaviour")
    assert not _reaches(GRAPH, "fireflow.model", "fireflow.sim")


#: The edges allowed to read the wall clock, each with why.  Everything else takes time as an
#: argument or an injected clock (DESIGN.md "Deterministic").
CLOCK_EDGES = {
    "service/clock.py": "the HTTP service's default clock (utc_now), injected into every part",
}


def test_pure_core_reads_no_clock_and_no_global_random():
    for path in sorted(PKG.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PKG)
        clock = ("datetime.now(", "date.today(", "time.time(", "time.time_ns(", "pendulum.now(")
        for needle in (*clock, "random.random("):
            if needle in clock and rel.as_posix() in CLOCK_EDGES:
                continue
            assert needle not in text, f"{rel} uses {needle}"
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                names = {a.name for a in node.names}
                assert names <= {"Random"}, f"{rel} imports {names} from random"


def test_the_calendar_knows_nothing_of_plans():
    # no code or annotation names a plan type either (the parsed tree keeps annotations as
    # expressions), not even under TYPE_CHECKING, and the join sits above: plan imports calendar
    tree = ast.parse((PKG / "calendar.py").read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"Plan", "TYPE_CHECKING", "Deadline"}
    assert GRAPH["fireflow.calendar"] <= {"fireflow.errors", "fireflow.text"}
    assert "fireflow.calendar" in GRAPH["fireflow.plan.deadlines"]


def test_rules_import_the_model_not_the_engine():
    # #12: the records rules read and build live in fireflow.model, beside events and states
    for module, imported in GRAPH.items():
        if module.startswith("fireflow.rules"):
            assert not any(m.split(".")[:2] == ["fireflow", "ticket"] for m in imported), (
                f"{module} imports the engine"
            )
    assert "fireflow.model" in GRAPH["fireflow.rules.spotcheck"]
    assert {"fireflow.model", "fireflow.rules.duties"} <= GRAPH["fireflow.ticket.decision"]


def test_the_plan_imports_only_the_calendar_states_and_the_foundation():
    # the plan package sits above the store in the table, but needs none of it (DESIGN.md:
    # plan/ beside the records, using the calendar); the old paths only re-export
    foundation = set(dict(LAYERS)["foundation"])
    allowed = foundation | {"fireflow.calendar", "fireflow.states"}
    for module, imported in sorted(GRAPH.items()):
        if module == "fireflow.plan" or module.startswith("fireflow.plan."):
            outside = {m for m in imported if m.split(".")[:2] != ["fireflow", "plan"]}
            assert outside <= allowed, f"{module} imports {sorted(outside - allowed)}"


def test_the_parts_of_the_plan_know_no_plan():
    # Plan is built from the parts and keeps the answers of routing and deadlines: those take
    # a Plan only as a type (under TYPE_CHECKING, not an edge)
    for module in ("parts", "routing", "deadlines", "checks", "html"):
        assert "fireflow.plan.plan" not in GRAPH[f"fireflow.plan.{module}"], module
        assert "fireflow.plan.load" not in GRAPH[f"fireflow.plan.{module}"], module
    assert GRAPH["fireflow.plan.parts"] <= {"fireflow.errors", "fireflow.text"}


def test_the_plan_modules_import_no_private_name():
    # what two modules of the plan share is public in the lower one (issue 24 item 4)
    for path in sorted((PKG / "plan").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fireflow"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"plan/{path.name} imports {private} from {node.module}"


# --- the test of the test ------------------------------------------------------------------

TOY_LAYERS = (("low", ("toy.low",)), ("mid", ("toy.mid", "toy.pkg")), ("top", ("toy",)))


def _toy(tmp_path: pathlib.Path, files: Mapping[str, str]) -> dict[str, set[str]]:
    root = tmp_path / "toy"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return import_graph(root)


def test_the_scan_reads_every_kind_of_import(tmp_path):
    graph = _toy(
        tmp_path,
        {
            "low.py": "from typing import TYPE_CHECKING\n"
            "import os\n"
            "if TYPE_CHECKING:\n    from toy.mid import M\n"
            "else:\n    from toy import pkg\n",
            "mid.py": "import toy.low\n"
            "def f():\n    from .pkg import sub\n"
            "class C:\n    def m(self):\n        import toy.pkg.sub as s\n",
            "pkg/__init__.py": "from . import sub\nfrom ..low import x\n",
            "pkg/sub.py": "from toy.pkg import thing\nfrom .. import mid\n",
            "top.py": "from toy import low\n"
            "def __getattr__(name):\n    from toy import mid\n    return mid\n",
        },
    )
    assert graph == {
        "toy": set(),
        "toy.low": {"toy.pkg"},  # the TYPE_CHECKING branch left out, its else kept
        "toy.mid": {"toy.low", "toy.pkg.sub"},  # module level, in a function, in a method
        "toy.pkg": {"toy.pkg.sub", "toy.low"},  # relative, from a package's __init__
        "toy.pkg.sub": {"toy.pkg", "toy.mid"},  # a name from a package; a module from a parent
        "toy.top": {"toy.low"},
        "toy.top.__getattr__": {"toy.mid"},  # a module __getattr__: a node of its own
    }


def test_the_check_finds_circles_and_upward_imports(tmp_path):
    graph = _toy(
        tmp_path,
        {
            "low.py": "def f():\n    from toy import mid\n",  # up, and a circle with mid
            "mid.py": "from toy import low\n",
        },
    )
    found = problems(graph, TOY_LAYERS, {})
    assert found == [
        "upward import: toy.low (low) imports toy.mid (mid)",
        "import circle: toy.low <-> toy.mid",
    ]
    # listed as known, both offences pass ...
    assert problems(graph, TOY_LAYERS, {("toy.low", "toy.mid"): "why"}) == []
    # ... a circle within one layer is found too, and a stale entry fails
    same = {"toy": set(), "toy.low": set(), "toy.mid": {"toy.pkg"}, "toy.pkg": {"toy.mid"}}
    assert problems(same, TOY_LAYERS, {("toy.low", "toy.mid"): "why"}) == [
        "import circle: toy.mid <-> toy.pkg",
        "known violation gone, remove it from the list: toy.low -> toy.mid",
    ]
    down = {"toy": {"toy.mid"}, "toy.low": set(), "toy.mid": {"toy.low"}, "toy.pkg": set()}
    assert problems(down, TOY_LAYERS, {("toy.mid", "toy.low"): "why"}) == [
        "known violation no longer offends, remove it: toy.mid -> toy.low"
    ]


def test_a_module_outside_the_table_is_named():
    with pytest.raises(KeyError, match=r"toy\.new is in no layer"):
        layer_of(TOY_LAYERS)("toy.new")
    assert layer_of(TOY_LAYERS)("toy.pkg.sub") == 1  # a package covers its submodules
