"""No private name crosses a module boundary inside fireflow (issue 24 item 4).

What two modules share is public in the lower one, or the code moves.  The scan
parses every module of the package with :mod:`ast` (imports inside functions
included) and reports

* ``from fireflow.x import _name`` (relative imports resolved), and
* ``alias._name`` where ``alias`` is a fireflow module imported by this module
  (``import fireflow.x as alias``, ``from fireflow import x``).

Dunder names (``__version__``) are not private.  A module with a leading
underscore (``fireflow._html``) is the package's own, but the names it offers are
public ones: importing them is fine.

:data:`ALLOWED` lists the crossings that remain, each with why; it may only
shrink: the test fails when an entry is no longer needed.
"""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "fireflow"

Crossing = tuple[str, str, str]  # (importing module, module named, private name)

#: The crossings that remain, each with why (they live in files other work moves now).
ALLOWED: dict[Crossing, str] = {
    ("fireflow.sim.shard", "fireflow.sim.engine", "_Run"): (
        "the shard worker drives the simulator's run object; sim/engine.py is being split "
        "(issue 24 item 6, the simulator's work): _Run gets a public name there"
    ),
}


def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def crossings(root: pathlib.Path) -> Iterator[tuple[Crossing, int]]:
    """Every private name one module of the package at ``root`` takes from another."""
    package = root.name
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> fireflow module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == package:
                        if a.asname:
                            aliases[a.asname] = a.name
                        else:
                            aliases[package] = package
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                if source.split(".")[0] != package:
                    continue
                for a in node.names:
                    sub = f"{source}.{a.name}"
                    if sub in files:
                        aliases[a.asname or a.name] = sub
                    elif _private(a.name) and source != name:
                        yield (name, source, a.name), node.lineno
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not (isinstance(value, ast.Name) and value.id in aliases):
                continue
            # fireflow.a.b._x: the module is the longest prefix that is a module
            dotted = [aliases[value.id], *reversed(chain[1:])]
            while len(dotted) > 1 and ".".join(dotted) not in files:
                dotted.pop()
            source = ".".join(dotted)
            if source != name:
                yield (name, source, node.attr), node.lineno


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


FOUND = sorted(set(crossings(PKG)))


def test_no_private_name_crosses_a_module_boundary() -> None:
    unexpected = [f"{m} line {n}: {s}.{x}" for (m, s, x), n in FOUND if (m, s, x) not in ALLOWED]
    assert not unexpected, (
        "private names taken from another module (make them public in the lower module, "
        "or move the code):\n" + "\n".join(unexpected)
    )


def test_the_allow_list_only_shrinks() -> None:
    seen = {c for c, _ in FOUND}
    stale = sorted(set(ALLOWED) - seen)
    assert not stale, f"no longer needed: remove from ALLOWED: {stale}"
    assert all(why.strip() for why in ALLOWED.values())


# --- the test of the test ------------------------------------------------------------------


def _toy(tmp_path: pathlib.Path, files: dict[str, str]) -> list[Crossing]:
    root = tmp_path / "toy"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted({c for c, _ in crossings(root)})


def test_the_scan_finds_every_form_of_crossing(tmp_path: pathlib.Path) -> None:
    found = _toy(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "_x = 1\n_y = 2\n__version__ = '1'\ndef _z(): pass\n",
            "a.py": "from toy.low import _x, __version__\n",
            "b.py": "import toy.low as low\nprint(low._y)\n",
            "c.py": "def f():\n    from toy import low\n    return low._z()\n",
            "d.py": "import toy.low\nprint(toy.low._x)\n",
            "pkg/__init__.py": "",
            "pkg/e.py": "from ..low import _y\nfrom . import f\n",
            "pkg/f.py": "_own = 1\nprint(_own)\n",
            "g.py": "from toy._priv import public\n",
            "_priv.py": "public = 1\n",
        },
    )
    assert found == [
        ("toy.a", "toy.low", "_x"),
        ("toy.b", "toy.low", "_y"),
        ("toy.c", "toy.low", "_z"),
        ("toy.d", "toy.low", "_x"),
        ("toy.pkg.e", "toy.low", "_y"),
    ]


@pytest.mark.parametrize("text", ["x = 1\n", "from toy.low import x\nprint(x._attr)\n"])
def test_the_scan_leaves_public_names_and_objects_alone(tmp_path: pathlib.Path, text: str) -> None:
    assert _toy(tmp_path, {"__init__.py": "", "low.py": "x = 1\n", "a.py": text}) == []
