"""Cross-reference checks (fireflow.plan.checks) on hostile data: a typed error, never a crash.

Every field of the built-in plan (the first two items of each list) is replaced, one at a
time, by a value of the wrong kind; loading must raise PlanError naming problems, not a
TypeError from inside the checks (DESIGN.md "Refuse loudly").
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from fireflow.errors import PlanError
from fireflow.plan import BUILTIN_PLAN, load_plan, validate_plan_data
from fireflow.plan.checks import cross_reference_problems

BASE = load_plan(BUILTIN_PLAN).to_data()


def _paths(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data[:2]):
            yield (*path, i)
            yield from _paths(value, (*path, i))


def _replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    here = data
    for key in path[:-1]:
        here = here[key]
    here[path[-1]] = value
    return data


@pytest.mark.parametrize("value", [7, [], {}, None, "zzz", ["x", 1], [{}]], ids=repr)
def test_a_field_of_the_wrong_kind_is_a_plan_error(value):
    for path in _paths(BASE):
        data = _replaced(path, value)
        try:
            validate_plan_data(data, "<hostile>")
        except PlanError:
            continue


@pytest.mark.parametrize(
    ("path", "value"),
    [
        # a list where a rule id belongs, and a number where the rules belong
        (("routes", 0, "rules", 0), []),
        (("routes", 0, "rules"), 7),
        (("authority", 0, "rules"), 7),
        # a list where a subtype id belongs, in the category goods on the fire lane name
        (("categories", 1, "subtypes", 0, "id"), []),
    ],
)
def test_hostile_values_the_checks_once_crashed_on(path, value):
    data = _replaced(path, value)
    list(cross_reference_problems(data))  # no TypeError from inside the checks
    with pytest.raises(PlanError) as caught:
        validate_plan_data(data, "<hostile>")
    where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".")
    assert where in [p.path for p in caught.value.problems]


@pytest.mark.parametrize("section", ["routes", "authority"])
def test_rules_written_as_text_are_not_read_letter_by_letter(section):
    # `rules: zzz` is pydantic's problem (a list is expected), not three unknown rules 'z'
    data = _replaced((section, 0, "rules"), "zzz")
    assert not [m for _, m, _ in cross_reference_problems(data) if "unknown rule 'z'" in m]
    with pytest.raises(PlanError) as caught:
        validate_plan_data(data, "<hostile>")
    assert f"{section}[0].rules" in [p.path for p in caught.value.problems]
