"""The pytest plugin: ``*.scenario.yaml`` files become test items (PYTEST_DONT_REWRITE).

Registered through the ``pytest11`` entry point, so a project that installs
fireflow and drops scenario files into its tests folder has them run by
``pytest``, one item per file.  Nothing else changes: other YAML files are
left alone, and a project without scenario files sees no difference.

Options: ``--fireflow-plan NAME|PATH`` runs every scenario on that plan
instead of the plan each scenario names (to check another district's plan
against a suite).  A scenario with ``xfail: <reason>`` is a known gap, run
as a strict xfail.

A failure names the step, what was expected, what happened, and the rule::

    场景 scenario demo: ...
      FAILED step 3 of 5 (line 21): set_deadline T1 by town at 2022-03-21 10:00
        deadline:
          expected: 2022-03-25
          actual:   2022-03-24
          rule:     R-TKT-DEADLINE 四(四)、五(三) 限期整改 (Rectification deadline)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from fireflow.testing.runner import PlanCache, ScenarioResult
    from fireflow.testing.scenario import Scenario

__all__ = [
    "ScenarioFailed",
    "ScenarioFile",
    "ScenarioItem",
    "pytest_addoption",
    "pytest_collect_file",
]

_CACHE_KEY = pytest.StashKey["PlanCache"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--fireflow-plan``."""
    group = parser.getgroup("fireflow", "fireflow conformance scenarios")
    group.addoption(
        "--fireflow-plan",
        dest="fireflow_plan",
        default=None,
        metavar="NAME|PATH",
        help="run every *.scenario.yaml on this plan (built-in name or plan file) "
        "instead of the plan it names",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """Collect ``*.scenario.yaml`` files (only those)."""
    if file_path.name.endswith(".scenario.yaml"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(AssertionError):
    """Raised by a scenario item whose scenario did not hold; carries the result."""

    def __init__(self, result: ScenarioResult) -> None:
        self.result = result
        super().__init__(result.report())


class ScenarioFile(pytest.File):
    """A scenario file: one item, named after the scenario's id."""

    def collect(self) -> Iterator[ScenarioItem]:
        """Load the file; a malformed file is a collection error listing every problem."""
        from fireflow.testing.scenario import ScenarioError, load_scenario  # noqa: PLC0415

        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from None
        item = ScenarioItem.from_parent(self, name=scenario.id, scenario=scenario)
        if scenario.xfail is not None:
            item.add_marker(pytest.mark.xfail(reason=scenario.xfail, strict=True))
        yield item


class ScenarioItem(pytest.Item):
    """One scenario, run through :func:`fireflow.testing.runner.run_scenario`."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        for rule in scenario.rules:
            self.user_properties.append(("rule", rule))

    def _plans(self) -> PlanCache:
        from fireflow.testing.runner import PlanCache  # noqa: PLC0415

        stash = self.config.stash
        if _CACHE_KEY not in stash:
            stash[_CACHE_KEY] = PlanCache(self.config.getoption("fireflow_plan"))
        return stash[_CACHE_KEY]

    def runtest(self) -> None:
        """Run the scenario; raise :class:`ScenarioFailed` when a step does not hold."""
        from fireflow.testing.runner import run_scenario  # noqa: PLC0415

        result = run_scenario(self.scenario, plans=self._plans())
        if result.skipped is not None:  # written for another plan than --fireflow-plan
            pytest.skip(result.skipped)
        if not result.ok:
            raise ScenarioFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        """The scenario's own report (step, expected, actual, rule), not a traceback."""
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.report()
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the scenario lives and what it is called."""
        return self.path, 0, f"scenario {self.scenario.id}: {self.scenario.title_zh}"
