"""The conformance kit: scenario files, their runner, rule coverage, and test helpers.

Districts that adapt the plan and vendors that embed the engine prove that
their build still obeys the rules with **scenario files** (``*.scenario.yaml``):

* :mod:`fireflow.testing.scenario`: the file format (pydantic models, JSON Schema);
* :mod:`fireflow.testing.runner`: run scenarios, rule coverage, JUnit XML;
* :mod:`fireflow.testing.plugin`: the pytest plugin (entry point ``pytest11``);
* :mod:`fireflow.cli.conformance`: ``fireflow conformance run|coverage|schema``;
* :mod:`fireflow.testing.paths`: simple paths through the lifecycle, turned
  into commands and scenarios (model-based test generation);
* :mod:`fireflow.testing.population`: synthetic towns, communities, companies.

The hypothesis helpers need the ``testing`` extra and are imported from their
modules, never from here (so that the plan-only and CLI users need no
hypothesis): :mod:`fireflow.testing.strategies` (plan variations,
populations, commands, event sequences) and :mod:`fireflow.testing.machine`
(the ``RuleBasedStateMachine``).

>>> from fireflow.testing import builtin_suite, run_paths
>>> results = run_paths([builtin_suite("changle-2022")])
>>> all(r.ok for r in results), len(results) >= 28
(True, True)
"""

from fireflow.testing.paths import (
    authorized_agencies,
    path_to_scenario,
    paths_to_scenarios,
    realize_path,
    simple_paths,
)
from fireflow.testing.population import (
    Community,
    Population,
    PropertyCompany,
    Town,
    generate_population,
)
from fireflow.testing.runner import (
    Coverage,
    Mismatch,
    PlanCache,
    ScenarioResult,
    StepResult,
    builtin_suite,
    builtin_suites,
    find_scenario_files,
    junit_xml,
    rule_coverage,
    run_paths,
    run_scenario,
    write_junit,
)
from fireflow.testing.scenario import (
    SCENARIO_FORMAT,
    Scenario,
    ScenarioError,
    is_scenario_file,
    load_scenario,
    parse_scenario,
    scenario_json_schema,
)

__all__ = [
    "SCENARIO_FORMAT",
    "Community",
    "Coverage",
    "Mismatch",
    "PlanCache",
    "Population",
    "PropertyCompany",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "StepResult",
    "Town",
    "authorized_agencies",
    "builtin_suite",
    "builtin_suites",
    "find_scenario_files",
    "generate_population",
    "is_scenario_file",
    "junit_xml",
    "load_scenario",
    "parse_scenario",
    "path_to_scenario",
    "paths_to_scenarios",
    "realize_path",
    "rule_coverage",
    "run_paths",
    "run_scenario",
    "scenario_json_schema",
    "simple_paths",
    "write_junit",
]
