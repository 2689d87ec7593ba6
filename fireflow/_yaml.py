"""YAML definitions read strictly and within bounds.

Shared by the plan loader and the scenario loader, so both report problems
the same way: every problem with its source, field path and line.

* Duplicate keys are refused.
* The document is composed from parser events by a bounded composer: at most
  :data:`MAX_YAML_NODES` nodes, nesting at most :data:`MAX_DEPTH` deep, and
  aliases that expand to at most :data:`MAX_ALIAS_NODES` nodes in all.  The
  size an alias expands to is counted when the alias is met, *before*
  anything is constructed, so a "billion laughs" file of a few hundred bytes
  is refused at once.  A recursive alias is refused.
* A file is at most :data:`MAX_DEFINITION_BYTES` bytes (checked before it is
  read whole), and an error lists at most :data:`MAX_PROBLEMS` problems (the
  rest are counted).
* An unquoted value that looks like a date but is not one (``2022-02-30``) is
  read as text, so that it is reported with its field path and line exactly
  like the quoted one.

>>> text = "a: [1, 2]\\nb: {c: 2022-02-28}\\n"
>>> data, lines, problems = load_definition(text, "<data>", ValueError, "plan")
>>> data, lines["b.c"], problems
({'a': [1, 2], 'b': {'c': datetime.date(2022, 2, 28)}}, 2, [])
>>> load_definition("a: &x [1, 2]\\nb: [*x, *x]\\n", "<data>", ValueError, "plan")[0]
{'a': [1, 2], 'b': [[1, 2], [1, 2]]}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from fireflow._input import MAX_DEPTH, MAX_PROBLEMS, read_limited
from fireflow.errors import FireflowError, InvalidArgument, Problem
from fireflow.text import escape_for_terminal

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_PROBLEMS",
    "MAX_YAML_NODES",
    "capped",
    "line_of",
    "load_definition",
    "problem_message",
    "read_definition",
]

#: The largest plan or scenario file read, in bytes (1 MiB; the Changle plan is about 50 KB).
MAX_DEFINITION_BYTES = 1024 * 1024
#: The most YAML nodes (scalars, lists, mappings) one plan or scenario file may hold
#: (the Changle plan has about 1,800).
MAX_YAML_NODES = 20_000
#: The most nodes all the aliases (``*name``) of one file may expand to, together.
MAX_ALIAS_NODES = 10_000

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present

ErrorFactory = Callable[[list[Problem]], Exception]


class _Refused(Exception):
    """A limit reached while composing: the problem, then the composer unwinds."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_definition(
    path: str | os.PathLike[str], source: str, error: ErrorFactory, what: str
) -> str:
    """The UTF-8 text of a plan or scenario file of at most :data:`MAX_DEFINITION_BYTES`.

    Size, folders, missing files and bytes that are not UTF-8 are reported as
    one problem through ``error`` (the line of a bad byte included).
    """
    try:
        data = read_limited(path, MAX_DEFINITION_BYTES, what)
    except FireflowError as exc:
        message = str(exc).removeprefix(f"{what}: ").removeprefix(f"{path}: ")
        raise error([Problem(source, "", message)]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            [Problem(source, "", f"not UTF-8 text: {exc.reason} (不是 UTF-8 文本)", line=line)]
        ) from None


def load_definition(
    text: str, source: str, error: ErrorFactory, what: str
) -> tuple[Any, dict[str, int], list[Problem]]:
    """Parse YAML text with the safe loader, within the limits of this module.

    Returns the data, a map from field path (``phases[2].end``) to line, and
    the duplicate-key problems found.  Text that is not YAML (or empty, or
    beyond a limit) raises ``error`` with one problem.
    """
    _check_text(text, source, error)
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    loader = _Loader(text)
    try:
        node = _compose(loader, source)
        if node is not None:
            _index_lines(node, "", lines, problems, source)
            data = loader.construct_document(node)
    except _Refused as exc:
        raise error([exc.problem]) from None
    except yaml.YAMLError as exc:
        raise error(
            [Problem(source, "", f"not valid YAML: {exc}", line=_error_line(exc, text))]
        ) from None
    except (ValueError, TypeError) as exc:  # a value the constructor cannot build
        raise error([Problem(source, "", f"invalid value in YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if node is None:
        raise error([Problem(source, "", f"empty {what} file")])
    return data, lines, problems


def _error_line(exc: yaml.YAMLError, text: str) -> int | None:
    """The line of a YAML error: its mark, or the position of a refused character."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        # libyaml may put the end of a stream without a final newline on the next line
        return min(int(mark.line) + 1, text.count("\n") + 1)
    position = getattr(exc, "position", None)
    if isinstance(position, int):  # a ReaderError: libyaml counts bytes of UTF-8
        if _Loader is yaml.SafeLoader:
            return text.count("\n", 0, position) + 1
        return text.encode("utf-8").count(b"\n", 0, position) + 1
    return None


def _check_text(text: str, source: str, error: ErrorFactory) -> None:
    if len(text) > MAX_DEFINITION_BYTES or len(text.encode("utf-8", "surrogatepass")) > (
        MAX_DEFINITION_BYTES
    ):
        raise error(
            [
                Problem(
                    source,
                    "",
                    f"text too large (at most {MAX_DEFINITION_BYTES} bytes of UTF-8) "
                    f"(文件过大, 上限 {MAX_DEFINITION_BYTES // 1024 // 1024} MiB)",
                )
            ]
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise error(
            [Problem(source, "", "lone surrogate refused (不允许孤立代理字符)", line=line)]
        ) from None


# --------------------------------------------------------------------------- #
# The bounded composer


class _Open:
    """A list or mapping being composed: its node, path, and pending key."""

    __slots__ = ("height", "key", "node", "path", "size")

    def __init__(self, node: yaml.CollectionNode, path: str) -> None:
        self.node = node
        self.path = path
        self.key: yaml.Node | None = None
        self.size = 1
        self.height = 1


def _child_path(top: _Open) -> str:
    if isinstance(top.node, yaml.SequenceNode):
        return f"{top.path}[{len(top.node.value)}]"
    if top.key is None:
        return top.path
    key = escape_for_terminal(str(top.key.value)) if isinstance(top.key, yaml.ScalarNode) else "?"
    return f"{top.path}.{key}" if top.path else key


def _line(event: Any) -> int | None:
    mark = getattr(event, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _compose(loader: Any, source: str) -> yaml.Node | None:
    """Compose the single document of the stream, counting as it goes."""
    loader.get_event()  # StreamStartEvent
    if loader.check_event(yaml.StreamEndEvent):
        loader.get_event()
        return None
    loader.get_event()  # DocumentStartEvent
    anchors: dict[str, yaml.Node] = {}
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded height)
    stack: list[_Open] = []
    nodes = 0
    alias_nodes = 0
    root: yaml.Node | None = None

    def refuse(event: Any, message: str) -> _Refused:
        path = _child_path(stack[-1]) if stack else ""
        return _Refused(Problem(source, path, message, line=_line(event)))

    def attach(node: yaml.Node, size: int, height: int) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        top = stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if isinstance(top.node, yaml.SequenceNode):
            top.node.value.append(node)
        elif top.key is None:
            top.key = node
        else:
            top.node.value.append((top.key, node))
            top.key = None

    while root is None:
        event: Any = loader.get_event()
        if isinstance(event, yaml.AliasEvent):
            target = anchors.get(str(event.anchor))
            if target is None:
                raise refuse(event, f"unknown alias *{event.anchor} (未定义的别名)")
            if id(target) not in sizes:
                raise refuse(event, f"recursive alias *{event.anchor} refused (不允许递归别名)")
            size, height = sizes[id(target)]
            alias_nodes += size
            if alias_nodes > MAX_ALIAS_NODES:
                raise refuse(
                    event,
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes "
                    f"(别名展开超过上限 {MAX_ALIAS_NODES} 个节点)",
                )
            if len(stack) + height > MAX_DEPTH:
                raise refuse(event, _too_deep())
            attach(target, size, height)
            continue
        if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise refuse(
                    event,
                    f"more than {MAX_YAML_NODES} YAML nodes (节点数超过上限 {MAX_YAML_NODES})",
                )
        if isinstance(event, yaml.ScalarEvent):
            node: yaml.Node = _scalar_node(loader, event)
            if event.anchor is not None:
                anchors[event.anchor] = node
            sizes[id(node)] = (1, 0)
            attach(node, 1, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(stack) + 1 > MAX_DEPTH:
                raise refuse(event, _too_deep())
            sequence = isinstance(event, yaml.SequenceStartEvent)
            kind: Any = yaml.SequenceNode if sequence else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(kind, None, event.implicit)
            collection = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = collection
            path = _child_path(stack[-1]) if stack else ""
            stack.append(_Open(collection, path))
        elif isinstance(event, yaml.CollectionEndEvent):
            done = stack.pop()
            done.node.end_mark = event.end_mark
            sizes[id(done.node)] = (done.size, done.height)
            attach(done.node, done.size, done.height)
        else:  # pragma: no cover - the parser guarantees the event order
            raise _Refused(Problem(source, "", f"unexpected YAML event {event}"))
    loader.get_event()  # DocumentEndEvent
    if not loader.check_event(yaml.StreamEndEvent):
        extra = loader.get_event()
        raise _Refused(
            Problem(
                source,
                "",
                "not valid YAML: expected a single document (只能有一个 YAML 文档)",
                line=_line(extra),
            )
        )
    loader.get_event()
    return root


def _too_deep() -> str:
    return f"nesting deeper than {MAX_DEPTH} levels (嵌套层数超过上限 {MAX_DEPTH})"


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_INT = "tag:yaml.org,2002:int"
_STR = "tag:yaml.org,2002:str"


def _scalar_node(loader: Any, event: Any) -> yaml.ScalarNode:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
    if event.tag is None and (tag == _TIMESTAMP or (tag == _INT and len(event.value) > 1000)):
        # An impossible date (2022-02-30) or an integer too long for int(): read
        # as the text it is, so the model reports it with its path and line.
        try:
            loader.construct_object(node)  # kept: construct_document reuses it
        except ValueError:
            node.tag = _STR
            loader.constructed_objects.pop(node, None)
            loader.recursive_objects.pop(node, None)
    return node


def _index_lines(
    node: yaml.Node, path: str, lines: dict[str, int], problems: list[Problem], source: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = escape_for_terminal(str(key_node.value))  # paths are printed
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


def capped(problems: Sequence[Problem], source: str) -> list[Problem]:
    """The first :data:`MAX_PROBLEMS` problems, then one that counts the rest.

    >>> many = [Problem("p.yaml", f"x{i}", "unknown key") for i in range(250)]
    >>> out = capped(many, "p.yaml")
    >>> len(out), out[-1].message
    (101, '150 more problems not listed (250 in all) (另有 150 个问题未列出, 共 250 个)')
    """
    if len(problems) <= MAX_PROBLEMS:
        return list(problems)
    rest = len(problems) - MAX_PROBLEMS
    return [
        *problems[:MAX_PROBLEMS],
        Problem(
            source,
            "",
            f"{rest} more problems not listed ({len(problems)} in all) "
            f"(另有 {rest} 个问题未列出, 共 {len(problems)} 个)",
        ),
    ]


def problem_message(err: Mapping[str, Any]) -> str:
    """A pydantic error's message, or the text policy's own words when it refused the value."""
    ctx = err.get("ctx") or {}
    cause = ctx.get("error") if isinstance(ctx, Mapping) else None
    if isinstance(cause, InvalidArgument):
        return str(cause).removeprefix(f"{cause.field}: ")
    return str(err["msg"])
