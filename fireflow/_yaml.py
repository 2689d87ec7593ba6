"""YAML definitions read strictly: duplicate keys refused, a line for every field path.

Shared by the plan loader and the scenario loader, so both report problems
the same way: every problem with its source, field path and line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from fireflow.errors import Problem

__all__ = ["line_of", "load_definition"]


def load_definition(
    text: str, source: str, error: Callable[[list[Problem]], Exception], what: str
) -> tuple[Any, dict[str, int], list[Problem]]:
    """Parse YAML text with the safe loader.

    Returns the data, a map from field path (``phases[2].end``) to line, and
    the duplicate-key problems found.  Text that is not YAML (or empty, or
    holding an impossible value) raises ``error`` with one problem.
    """
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _index_lines(node, "", lines, problems, source)
            data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error([Problem(source, "", f"not valid YAML: {exc}", line=line)]) from None
    except ValueError as exc:  # e.g. an impossible unquoted date such as 2022-02-30
        raise error([Problem(source, "", f"invalid value in YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise error([Problem(source, "", f"empty {what} file")])
    return data, lines, problems


def _index_lines(
    node: yaml.Node, path: str, lines: dict[str, int], problems: list[Problem], source: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in seen:
                problems.append(
                    Problem(source, child, "duplicate key", line=key_node.start_mark.line + 1)
                )
            seen.add(key)
            _index_lines(value_node, child, lines, problems, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, f"{path}[{i}]", lines, problems, source)


def line_of(lines: Mapping[str, int], path: str) -> int | None:
    """The line of a field path, or of its nearest parent that has one."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("")
