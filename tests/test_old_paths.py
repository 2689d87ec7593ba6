"""Old module paths keep working until 0.3, and warn (issue 24 item 3).

Each old path is a short shim: importing it raises a :class:`DeprecationWarning`
naming the new home, and its public names are the very objects of the new module.
Nothing in fireflow, the tests or the docs imports a shim (``tests/test_layers.py``
places them in the top layer; warnings are errors in the suite).
"""

from __future__ import annotations

import importlib
import sys

import pytest

#: old path -> the modules its names now come from
MOVED: dict[str, tuple[str, ...]] = {
    "fireflow.reports_cli": ("fireflow.cli.reports", "fireflow.history"),
    "fireflow.tickets_cli": ("fireflow.cli.tickets",),
    "fireflow._console": ("fireflow.cli.console",),
    "fireflow.store.cli": ("fireflow.cli.store",),
    "fireflow.sim.cli": ("fireflow.cli.sim",),
    "fireflow.testing.cli": ("fireflow.cli.conformance",),
    "fireflow.service.cli": ("fireflow.cli.serve",),
    "fireflow.store.index": ("fireflow.views.tickets",),
}

#: names documented at the old paths (docs/, CHANGELOG), each checked by identity
DOCUMENTED: dict[str, tuple[str, ...]] = {
    "fireflow.reports_cli": (
        "read_history",
        "read_events",
        "History",
        "SIMULATED_ORIGIN",
        "MAX_LOG_LINE",
        "register",
    ),
    "fireflow.tickets_cli": ("register", "tickets", "open_store"),
    "fireflow._console": ("run_app", "print_json", "fail", "EXIT_USAGE"),
    "fireflow.store.cli": ("store_app", "main", "problem_lines"),
    "fireflow.sim.cli": ("simulate_command", "app", "main", "MISSING_EXTRA"),
    "fireflow.testing.cli": ("conformance_app",),
    "fireflow.service.cli": ("serve_app",),
    "fireflow.store.index": ("TicketIndex", "TicketRow", "IndexOutOfStep", "IndexRefused"),
}


def _fresh_import(name: str) -> object:
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_gives_the_same_objects(old):
    with pytest.warns(DeprecationWarning, match=rf"{old} moved to {MOVED[old][0]}"):
        shim = _fresh_import(old)
    homes = [importlib.import_module(m) for m in MOVED[old]]
    public = list(shim.__all__)
    assert set(DOCUMENTED[old]) <= set(public)
    for name in public:
        home = next(h for h in homes if hasattr(h, name))
        assert getattr(shim, name) is getattr(home, name), f"{old}.{name}"
    # short: a shim holds re-exports only, no code of its own
    source = shim.__file__
    assert source is not None
    with open(source, encoding="utf-8") as f:
        assert "def " not in f.read()


@pytest.mark.parametrize("name", ["TicketIndex", "TicketRow", "IndexOutOfStep", "IndexRefused"])
def test_the_store_package_still_answers_for_the_index(name):
    store = importlib.import_module("fireflow.store")
    views = importlib.import_module("fireflow.views")
    moved = rf"fireflow\.store\.{name} moved to fireflow\.views"
    with pytest.warns(DeprecationWarning, match=moved):
        old = getattr(store, name)
    assert old is getattr(views, name)
    assert name not in store.__all__  # the new home is fireflow.views


def test_the_store_package_still_refuses_unknown_names():
    store = importlib.import_module("fireflow.store")
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        store.Nothing  # noqa: B018


def test_the_console_script_is_the_cli_package():
    from importlib.metadata import entry_points

    (script,) = (e for e in entry_points(group="console_scripts") if e.name == "fireflow")
    assert script.value == "fireflow.cli:entry"
    cli = importlib.import_module("fireflow.cli")
    assert script.load() is cli.entry
