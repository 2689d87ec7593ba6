"""docs/security.md states every limit with its value: the values must be the code's."""

import pathlib

import pytest

from fireflow import _input, _yaml, text
from fireflow.calendar import MAX_PERIOD
from fireflow.rules import spotcheck
from fireflow.sim.population import MAX_POPULATION
from fireflow.sim.sweep import MAX_SWEEP_RUNS, MAX_WORKERS
from fireflow.store import subscription
from fireflow.views import tickets as index

DOC = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text("utf-8")

# (constant's value, the row of the docs table that states it)
LIMITS = [
    (text.MAX_NAME_LENGTH, 128, "| `MAX_NAME_LENGTH`"),
    (text.MAX_TEXT_LENGTH, 2000, "| `MAX_TEXT_LENGTH`"),
    (_yaml.MAX_DEFINITION_BYTES, 1024 * 1024, "| `MAX_DEFINITION_BYTES`"),
    (_yaml.MAX_YAML_NODES, 20_000, "| `MAX_YAML_NODES`"),
    (_yaml.MAX_ALIAS_NODES, 10_000, "| `MAX_ALIAS_NODES`"),
    (_input.MAX_DEPTH, 32, "| `MAX_DEPTH`: nesting in YAML"),
    (_input.MAX_PROBLEMS, 100, "| `MAX_PROBLEMS`"),
    (_input.MAX_INPUT_BYTES, 8 * 1024 * 1024, "| `MAX_INPUT_BYTES`"),
    (_input.MAX_CSV_FIELD_CHARS, 131_072, "| `MAX_CSV_FIELD_CHARS`"),
    (_input.MAX_LOG_BYTES, 256 * 1024 * 1024, "| `MAX_LOG_BYTES`"),
    (_input.MAX_LINE_BYTES, 1024 * 1024, "| `MAX_LINE_BYTES`"),
    (MAX_POPULATION, 1_000_000, "| `generate_population(communities)`"),
    (MAX_SWEEP_RUNS, 10_000, "| `sweep(...)` scenarios"),
    (MAX_WORKERS, 256, "| `sweep(..., workers=)`"),
    (spotcheck.MIN_SEED_BITS, 128, "| `MIN_SEED_BITS`"),
    (spotcheck.MAX_SEED_BYTES, 1024, "| `MAX_SEED_BYTES`"),
    (index.MAX_LIMIT, 1_000_000, "| `MAX_LIMIT`"),
    (subscription.MAX_CHECKPOINT_BYTES, 4096, "| `MAX_CHECKPOINT_BYTES`"),
    (_input.MAX_CHECKPOINT_FILE_BYTES, 64 * 1024, "| `MAX_CHECKPOINT_FILE_BYTES`"),
]
# how the docs write each value
SHOWN = {
    128: ["128 "],
    2000: ["2000 "],
    1024 * 1024: ["1 MiB", "1024 bytes"],
    20_000: ["20,000"],
    10_000: ["10,000"],
    32: ["| 32 |"],
    100: ["| 100 |"],
    8 * 1024 * 1024: ["8 MiB"],
    131_072: ["131,072"],
    256 * 1024 * 1024: ["256 MiB"],
    1024: ["1024 bytes"],
    1_000_000: ["1,000,000"],
    256: ["1 to 256"],
    4096: ["4096 bytes"],
    64 * 1024: ["65536 bytes (64 KiB)"],
}


def test_the_scheduler_and_plan_year_limits_in_the_docs_are_the_codes():
    from fireflow.plan import MAX_PLAN_YEAR, MIN_PLAN_YEAR
    from fireflow.sim.shard import SCHEDULER_TIMEOUT

    assert f"SCHEDULER_TIMEOUT` ({SCHEDULER_TIMEOUT:g} s)" in DOC
    assert (MIN_PLAN_YEAR, MAX_PLAN_YEAR) == (1949, 2200)
    assert f"`MIN_PLAN_YEAR` to `MAX_PLAN_YEAR`, {MIN_PLAN_YEAR} to {MAX_PLAN_YEAR}" in DOC


@pytest.mark.parametrize(("value", "expected", "row"), LIMITS, ids=[r for _, _, r in LIMITS])
def test_each_documented_limit_is_the_codes(value, expected, row):
    assert value == expected, "the code changed: update docs/security.md and this table"
    line = next((ln for ln in DOC.splitlines() if ln.startswith(row)), None)
    assert line is not None, f"docs/security.md has no row {row!r}"
    assert any(s in line for s in SHOWN[expected]), line


def test_the_calendar_limits_in_the_docs_are_the_calendars():
    # the CLI table states the same bounds as the calendar API
    for unit, words in (("calendar", "days"), ("working", "working days"), ("month", "months")):
        assert f"N from 1 to {MAX_PERIOD[unit]} {words}" in DOC
    assert f"N from 1 to {MAX_PERIOD['year']} years" in DOC
