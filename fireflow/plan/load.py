"""Reading, parsing and writing plans; the built-in plans; the JSON Schema of the format.

Every problem of a plan is reported at once as a :class:`~fireflow.errors.PlanError`,
each with the file, the path of the field and, where known, the line
(``docs/plan-format.md``).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fireflow import output
from fireflow._yaml import capped, line_of, load_definition, problem_message, read_definition
from fireflow.errors import PlanError, PlanNotFound, Problem
from fireflow.plan.checks import cross_reference_problems
from fireflow.plan.parts import ADDED_ENGINE_RULES, ENGINE_RULES
from fireflow.plan.plan import Plan
from fireflow.text import escape_for_terminal

__all__ = [
    "BUILTIN_PLAN",
    "added_rule_entries",
    "builtin_plans",
    "dump_plan",
    "load_plan",
    "parse_plan",
    "plan_json_schema",
    "plan_json_schema_text",
    "validate_plan_data",
]

#: The name of the plan shipped as the default: Changle district, Fuzhou, 2022.  Library
#: code names it through this constant only.
BUILTIN_PLAN = "changle-2022"


def builtin_plans() -> list[str]:
    """Names of the plans shipped with fireflow.

    >>> builtin_plans()
    ['changle-2022']
    """
    folder = resources.files("fireflow") / "plans"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def load_plan(name_or_path: str | os.PathLike[str]) -> Plan:
    """Load a built-in plan by name, or a plan file by path, and validate it.

    Raises :class:`~fireflow.errors.PlanError` listing every problem (the
    first :data:`~fireflow._yaml.MAX_PROBLEMS`, then their count), or
    :class:`~fireflow.errors.PlanNotFound`.  A file is read within the limits
    of :mod:`fireflow._yaml` (size, nodes, aliases, nesting).
    """
    if isinstance(name_or_path, str) and name_or_path in builtin_plans():
        return _load_builtin(name_or_path)
    path = Path(name_or_path)
    if path.is_file():
        # at most MAX_DEFINITION_BYTES, checked before the file is read whole
        text = read_definition(path, str(path), PlanError, "plan")
        return parse_plan(text, source=str(path))
    raise PlanNotFound(str(name_or_path), builtin_plans())


@functools.lru_cache(maxsize=8)
def _load_builtin(name: str) -> Plan:
    text = (resources.files("fireflow") / "plans" / f"{name}.yaml").read_text(encoding="utf-8")
    return parse_plan(text, source=f"<builtin:{name}>")


def parse_plan(text: str, source: str = "<data>") -> Plan:
    """Parse and validate plan YAML text (``source`` names it in errors)."""
    data, lines, problems = load_definition(text, source, PlanError, "plan")
    return validate_plan_data(data, source, lines, problems)


def validate_plan_data(
    data: Any,
    source: str = "<data>",
    lines: Mapping[str, int] | None = None,
    problems: Sequence[Problem] = (),
) -> Plan:
    """Validate already-parsed plan data; report structure and cross-reference problems together."""
    lines = lines or {}
    found = list(problems)
    if not isinstance(data, Mapping):
        raise PlanError([*found, Problem(source, "", "a plan must be a mapping of fields")])
    data = _with_added_rules(data)
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            path = _path(err["loc"])
            found.append(Problem(source, path, problem_message(err), line=line_of(lines, path)))
    for path, message, rule in cross_reference_problems(data):
        found.append(Problem(source, path, message, rule=rule, line=line_of(lines, path)))
    if found:
        ordered = sorted(found, key=lambda p: (p.line or 10**9, p.path, p.message))
        raise PlanError(capped(ordered, source), total=len(ordered))
    assert plan is not None
    return plan


@functools.cache
def added_rule_entries() -> dict[str, Mapping[str, Any]]:
    """The built-in (Changle) catalogue entries of :data:`ADDED_ENGINE_RULES`, by rule id.

    What a plan written before these rules gets when it is loaded (plain data, as in a file).

    >>> sorted(added_rule_entries())[:2]
    ['R-ACC-CONCEALED', 'R-ACC-FALSIFIED']
    """
    text = (resources.files("fireflow") / "plans" / f"{BUILTIN_PLAN}.yaml").read_text(
        encoding="utf-8"
    )
    raw = yaml.safe_load(text)
    wanted = {ENGINE_RULES[k] for k in ADDED_ENGINE_RULES}
    return {r["id"]: r for r in raw["rules"] if r.get("id") in wanted}


def _with_added_rules(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with the built-in entry of every added engine rule its catalogue lacks.

    Only where the plan's ``engine_rules`` names no id of its own for the rule: a plan
    written before the rule existed keeps loading, and the engine's citation of it has an
    entry (a default reading of the library, marked so by the entry's ``basis``).
    """
    rules = data.get("rules")
    if not isinstance(rules, list):
        return data
    declared = data.get("engine_rules")
    declared = declared if isinstance(declared, Mapping) else {}
    have = {r.get("id") for r in rules if isinstance(r, Mapping) and isinstance(r.get("id"), str)}
    builtin = added_rule_entries()
    missing = [
        dict(builtin[ENGINE_RULES[k]])
        for k in ADDED_ENGINE_RULES
        if k not in declared and ENGINE_RULES[k] not in have and ENGINE_RULES[k] in builtin
    ]
    if not missing:
        return data
    return {**data, "rules": [*rules, *missing]}


def dump_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
    """Write a plan as a YAML file that :func:`load_plan` reads back equal.

    The file is written atomically and a symbolic link is refused
    (:mod:`fireflow.output`).
    """
    output.write_text(path, plan.to_yaml())


def plan_json_schema() -> dict[str, Any]:
    """The JSON Schema of the plan format (for editors and other systems)."""
    schema = Plan.model_json_schema(by_alias=True)
    schema["$id"] = "https://fireflow.invalid/schema/plan-1.json"
    schema["title"] = "fireflow campaign plan (fireflow.plan/1)"
    return schema


def plan_json_schema_text() -> str:
    """The JSON Schema as stable, sorted JSON text."""
    return json.dumps(plan_json_schema(), ensure_ascii=False, indent=2, sort_keys=True)


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = escape_for_terminal(str(part))  # paths are printed: keys come from the file
            out += f".{key}" if out else key
    return out
