"""Project-wide pytest settings: hypothesis profiles, and no silent skips in CI.

The machine is shared and noisy, so no example has a deadline; ``ci`` is
derandomized so that a CI run is reproducible, and ``full``
(``FIREFLOW_FULL=1``) runs many more examples.  CI does not shrink.

Which profile runs: ``--hypothesis-profile NAME``, else ``full`` when
``FIREFLOW_FULL`` is set, ``ci`` when ``CI`` is set, ``dev`` otherwise.  The
profile is printed in the header of a ``-v`` run (by hypothesis); every run
prints pytest-randomly's seed (``-p randomly --randomly-seed=N`` replays an order).

Hypothesis mixes constants found in the source of every *local* module already
imported into what it draws (its "local constants" pool, filled as modules are
imported).  The pool, and with it what a derandomized test draws, therefore
depended on which tests ran before: the cause of the order-dependent results of
issue 17.  :func:`pytest_configure` imports every fireflow module before any test
runs, so the pool is the same whatever the order or selection of tests.

When ``CI`` is set, a skipped test fails the run unless its node id is listed in
:data:`ALLOWED_SKIPS` with the reason it may skip there (see
docs/development.md): a skip in CI usually means a missing dependency or an
unregistered command, which must not pass as green.  The check runs where the
test runs, so it holds on every pytest-xdist worker too.

The suite runs on every core (pytest-xdist: ``-n auto --dist loadscope`` in
pyproject.toml; each test module runs whole on one worker, so its module
fixtures are built once).  :func:`pytest_xdist_auto_num_workers` keeps a run that
names files or folders in one process, where starting workers costs more than it
saves; ``-n 2`` spreads such a run too, ``-n 0`` keeps the whole suite in one.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import warnings
from collections.abc import Generator

import pytest
from hypothesis import HealthCheck, Phase, settings

import fireflow
from fireflow._moved import MOVED

settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=100,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    # no shrinking in CI: a failure is reported at once (with its blob to replay),
    # so one bad example cannot eat the CI time budget
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
settings.register_profile("full", deadline=None, max_examples=2000)
settings.load_profile(
    "full" if os.environ.get("FIREFLOW_FULL") else "ci" if os.environ.get("CI") else "dev"
)

#: Tests that may be skipped in CI (node id -> why).  Every other skip fails CI.
#: Keep this list short and say why each entry cannot run on the CI machine.
ALLOWED_SKIPS: dict[str, str] = {}


#: The warning of an old module path (a deprecation shim of fireflow).
_MOVED = re.compile(r"fireflow\.\S+ moved to fireflow\.")
#: The old module paths (deprecation shims: :data:`fireflow._moved.MOVED` and the ones found
#: warning by :func:`pytest_configure`) warn when imported: only tests/test_moved.py and
#: tests/test_old_paths.py import them, and pytest collects no doctest of theirs.
collect_ignore = [module.replace(".", "/") + ".py" for module in sorted(MOVED)]


def pytest_configure(config: pytest.Config) -> None:
    """Import every fireflow module first: hypothesis's constant pool is then fixed."""
    for module in pkgutil.walk_packages(fireflow.__path__, "fireflow."):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                importlib.import_module(module.name)
            except ImportError:  # an optional extra not installed: its tests skip anyway
                continue
        moved = [w for w in caught if issubclass(w.category, DeprecationWarning)]
        if moved and all(_MOVED.match(str(w.message)) for w in moved):
            # an old path (a deprecation shim): forgotten again, so that any later import
            # warns, and fails the run (warnings are errors) unless the shim test expects it
            del sys.modules[module.name]
            shim_file = module.name.replace(".", "/") + ".py"
            if shim_file not in collect_ignore:
                collect_ignore.append(shim_file)
            parent, _, child = module.name.rpartition(".")
            if hasattr(sys.modules[parent], child):  # `from parent import child` imports it anew
                delattr(sys.modules[parent], child)
        else:
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per core for the whole suite, none for a run naming paths.

    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` (pytest-xdist's own setting) still decides when set.
    """
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return 0
    return None  # pytest-xdist's default: the cores this process may use


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def pytest_report_header(config: pytest.Config) -> list[str]:
    # hypothesis prints its profile and pytest-randomly its seed; this says the skip policy
    if _ci():
        return [f"fireflow: CI is set, a skip not in ALLOWED_SKIPS ({len(ALLOWED_SKIPS)}) fails"]
    return ["fireflow: CI is not set, skips are allowed"]


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        _ci()
        and report.skipped
        and not hasattr(report, "wasxfail")  # an expected failure is not a skip
        and item.nodeid not in ALLOWED_SKIPS
    ):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI: {_skip_reason(report)}\n"
            "A skip in CI fails the run unless its node id is in ALLOWED_SKIPS "
            "(conftest.py, documented in docs/development.md)."
        )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A whole module skipped at collection (``importorskip`` at the top) counts too."""
    report = yield
    if _ci() and report.skipped and collector.nodeid not in ALLOWED_SKIPS:
        report.outcome = "failed"
        report.longrepr = (
            f"module skipped in CI: {_skip_reason(report)}\n"
            "A skip in CI fails the run unless its node id is in ALLOWED_SKIPS "
            "(conftest.py, documented in docs/development.md)."
        )
    return report
