"""Plans of an earlier revision rewritten to today's format (``fireflow plan upgrade``).

The format tag ``fireflow.plan/1`` has not changed, but three revisions of December 2026
changed what a plan must say: named agencies instead of hidden Changle defaults, the
rectification cap, property escalation as data.  Each is recognised by what it changed, so
an upgrade is idempotent; the values written are the built-in plan's, each listed for
review.  The file is edited as text, so comments and layout are kept where possible.
``docs/adapting.md`` (section 7) has the table of revisions and the reasoning.

>>> old = '''format: fireflow.plan/1
... settings:   # readings
...   deadlines_may_pass_dossier: true   # 07-15 does not cap
... '''
>>> up = upgrade_text(old)
>>> print(up.text, end="")
format: fireflow.plan/1
settings:   # readings
  rectification_cap: null   # 07-15 does not cap
>>> [c.path for c in up.changes if c.done]
['settings.rectification_cap']
>>> upgrade_text(up.text).changed
False
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import yaml

from fireflow._yaml import load_definition, read_definition
from fireflow.errors import PlanError, Problem
from fireflow.plan.load import parse_plan
from fireflow.plan.parts import PLAN_FORMAT
from fireflow.text import escape_for_terminal

__all__ = [
    "FORMER_DEFAULTS",
    "Change",
    "Upgrade",
    "required_hint",
    "upgrade_file",
    "upgrade_text",
]

#: Settings a plan could leave out before the revisions, with the value that meant
#: (the built-in plan's value; a test holds them equal), the rule and whether the
#: setting is required today.  Paths are under ``settings``.
FORMER_DEFAULTS: dict[str, tuple[Any, str, bool]] = {
    "spot_check.lead": (["housing", "fire"], "R-SPOT-DOUBLE-RANDOM", True),
    "spot_check.participants": (["urban", "police", "planning"], "R-SPOT-DOUBLE-RANDOM", False),
    "accountability_lead": (["housing", "fire"], "R-ESC-OFFICIAL", True),
    "accountability_office": ("efficiency", "R-ESC-OFFICIAL", True),
    "property_escalation_to": (["housing", "fire"], "R-ESC-PROPERTY", True),
    "non_signing_agencies": (["third_party"], "R-AUTH-SEPARATION", False),
    "goods_on_fire_lane": (["fire_lane_vehicle", "goods"], "R-ROUTE-LANE", False),
    "refusal_report_to": (["police", "fire", "urban"], "R-ESC-REFUSAL", False),
}
#: A route's re-check lead before it was required (the built-in plan's on every route).
FORMER_RECHECK_LEAD = "town"
#: The order of the settings in the built-in plan: a setting written goes before the
#: first of those after it that the file has.
_SETTINGS_ORDER = (
    "holiday_policy", "rest_days", "due_inclusive", "period_unit", "rectification_days",
    "rectification_cap", "office_close", "spot_check", "accountability_lead",
    "accountability_office", "property_escalation_to", "max_failed_rechecks",
    "joint_meeting_interval_days", "non_signing_agencies", "goods_on_fire_lane",
    "new_community_since", "refusal_report_to", "recheck_counting_levels",
)  # fmt: skip
_SPOT_ORDER = ("ratio", "rounding", "base", "method", "lead", "participants")
_ROUTE_ORDER = (
    "id", "category", "location", "subtypes", "rectifier", "lead", "supervisor",
    "cooperating", "recheck_lead", "enforcers", "certifier", "rules",
)  # fmt: skip
_MARK = "fireflow plan upgrade"


@attrs.frozen
class Change:
    """One change the upgrade made (or a person must make: ``done`` is False)."""

    path: str
    """The field path, e.g. ``settings.rectification_cap``."""
    message: str
    """What changed and why, in Chinese with English beside."""
    rule: str | None = None
    review: bool = True
    """Whether a person should check the value (every value the upgrade chose)."""
    done: bool = True
    """False: the upgrade could not make it (the message says what to write)."""

    def __str__(self) -> str:
        mark = "+" if self.done else "!"
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{mark} {self.path}: {self.message}{rule}"


@attrs.frozen
class Upgrade:
    """The upgraded text, what changed, and whether it loads now."""

    text: str
    changes: tuple[Change, ...]
    comments_kept: bool = True
    problems: tuple[Problem, ...] = ()
    """What still keeps the upgraded plan from loading (empty: it loads)."""

    @property
    def changed(self) -> bool:
        """Whether the text differs from the file read."""
        return any(c.done for c in self.changes)


def required_hint(path: str) -> str | None:
    """A hint for a missing required setting: the value the built-in plan uses.

    >>> print(required_hint("settings.property_escalation_to"))
    the built-in plan writes property_escalation_to: [housing, fire] (R-ESC-PROPERTY)
    >>> required_hint("settings.max_failed_rechecks") is None
    True
    """
    key = path.removeprefix("settings.")
    if path.startswith("routes[") and path.endswith("].recheck_lead"):
        value: Any = FORMER_RECHECK_LEAD
        rule: str | None = "R-TKT-REINSPECT"
        key = "recheck_lead"
    elif path.startswith("settings.") and key in FORMER_DEFAULTS:
        value, rule, _ = FORMER_DEFAULTS[key]
    elif path == "settings.spot_check":
        value, rule = {"lead": FORMER_DEFAULTS["spot_check.lead"][0]}, "R-SPOT-DOUBLE-RANDOM"
    else:
        return None
    name = key.rsplit(".", 1)[-1]
    return f"the built-in plan writes {name}: {_flow(value)} ({rule})"


# --- text edits -------------------------------------------------------------------------


@attrs.frozen
class _Edit:
    start: int
    end: int
    text: str


class _CannotEdit(Exception):
    """The change cannot be made as a text edit (the plan is written anew instead)."""


def _flow(value: Any) -> str:
    dumped: str = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return dumped.strip().removesuffix("...").strip()


def _pairs(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value}


def _insert(
    text: str, node: yaml.MappingNode, key: str, value: Any, order: Sequence[str], note: str
) -> _Edit:
    """A new ``key: value`` line in a block mapping, before the next key in ``order``."""
    if node.flow_style or not node.value:
        raise _CannotEdit(key)
    pairs = _pairs(node)
    later = order[order.index(key) + 1 :] if key in order else ()
    following = next((pairs[k][0] for k in later if k in pairs), None)
    first = node.value[0][0]
    column = first.start_mark.column
    if following is not None and following is not first:
        at = following.start_mark.index - following.start_mark.column
        if text[at : following.start_mark.index].strip():  # not alone on its line
            raise _CannotEdit(key)
    else:  # after the last key, whose value must end on its own line
        last_value = node.value[-1][1]
        if isinstance(last_value, yaml.CollectionNode) and not last_value.flow_style:
            raise _CannotEdit(key)
        end = text.find("\n", last_value.end_mark.index)
        if end < 0:
            text_end = len(text)
            return _Edit(text_end, text_end, "\n" + _lines(key, value, column, note).rstrip("\n"))
        at = end + 1
    return _Edit(at, at, _lines(key, value, column, note))


def _lines(key: str, value: Any, column: int, note: str) -> str:
    pad = " " * column
    if isinstance(value, Mapping):
        inner = "".join(f"{pad}  {k}: {_flow(v)}\n" for k, v in value.items())
        return f"{pad}{key}:   # {note}\n{inner}"
    return f"{pad}{key}: {_flow(value)}   # {note}\n"


def _replace(text: str, key_node: yaml.Node, value_node: yaml.Node, new: str) -> _Edit:
    """``key: value`` replaced by ``new`` on its line (what follows, a comment, is kept)."""
    if not isinstance(value_node, yaml.ScalarNode) or value_node.end_mark.line != (
        key_node.start_mark.line
    ):
        raise _CannotEdit(str(key_node.value))
    return _Edit(key_node.start_mark.index, value_node.end_mark.index, new)


def _apply(text: str, edits: Sequence[_Edit]) -> str:
    out = text
    # from the end backwards; edits at one place are applied last first, so they stand in
    # the order they were made
    for _, e in sorted(enumerate(edits), key=lambda ie: (ie[1].start, ie[0]), reverse=True):
        out = out[: e.start] + e.text + out[e.end :]
    return out


# --- the revisions ----------------------------------------------------------------------


def _agencies(data: Mapping[str, Any]) -> set[str]:
    found = data.get("agencies")
    items = found if isinstance(found, list) else []
    return {str(a["id"]) for a in items if isinstance(a, Mapping) and "id" in a}


def _names_known(value: Any, known: set[str]) -> bool:
    if isinstance(value, list):
        return all(isinstance(v, str) and v in known for v in value)
    return isinstance(value, str) and value in known


def _categories_know(data: Mapping[str, Any], pair: Sequence[str]) -> bool:
    cats = data.get("categories")
    for c in cats if isinstance(cats, list) else []:
        if isinstance(c, Mapping) and c.get("id") == pair[0]:
            subs = c.get("subtypes")
            return any(isinstance(s, Mapping) and s.get("id") == pair[1] for s in subs or [])
    return False


_Thunk = Callable[[], _Edit] | None


def _mapping(node: yaml.Node | None, what: str) -> yaml.MappingNode:
    if not isinstance(node, yaml.MappingNode):
        raise _CannotEdit(what)
    return node


def _plan(
    text: str, data: Mapping[str, Any], root: yaml.MappingNode
) -> Iterator[tuple[Change, _Thunk]]:
    """Every change the revisions ask of this plan, with what makes its text edit.

    The edit is made later (it may raise :class:`_CannotEdit`); None: nothing to edit
    (the change could not be made, or another change's edit makes it).
    """
    top = _pairs(root)
    settings = data.get("settings")
    st: Mapping[str, Any] = settings if isinstance(settings, Mapping) else {}
    st_node = top["settings"][1] if "settings" in top else None
    st_pairs = _pairs(st_node) if st_node is not None else {}
    known = _agencies(data)

    # the rectification cap (plan choices as data)
    if "deadlines_may_pass_dossier" in st_pairs:
        k, v = st_pairs["deadlines_may_pass_dossier"]
        may_pass = st.get("deadlines_may_pass_dossier")
        fixed = data.get("deadlines")
        ids = (
            {d.get("id") for d in fixed if isinstance(d, Mapping)}
            if isinstance(fixed, list)
            else set()
        )
        if may_pass is False and "dossier" not in ids:
            yield (
                Change(
                    "settings.rectification_cap",
                    "deadlines_may_pass_dossier: false 须改写为 rectification_cap: "
                    "<封顶的报送期限 id>; this plan has no deadline 'dossier': name the deadline "
                    "that caps rectification deadlines",
                    "R-TKT-DEADLINE",
                    done=False,
                ),
                None,
            )
        else:
            cap = "null" if may_pass is not False else "dossier"
            yield (
                Change(
                    "settings.rectification_cap",
                    f"deadlines_may_pass_dossier: {_flow(may_pass)} → rectification_cap: {cap} "
                    "(同义改写 same meaning, new key)",
                    "R-TKT-DEADLINE",
                    review=False,
                ),
                lambda: _replace(text, k, v, f"rectification_cap: {cap}"),
            )

    # named agencies, no hidden defaults: a plan lacking a required one predates it
    spot = st.get("spot_check")
    spot_map: Mapping[str, Any] = spot if isinstance(spot, Mapping) else {}
    routes = data.get("routes")
    route_list = routes if isinstance(routes, list) else []
    before_named = (
        "accountability_lead" not in st
        or "accountability_office" not in st
        or "lead" not in spot_map
        or any(isinstance(r, Mapping) and "recheck_lead" not in r for r in route_list)
    )
    before_property = "property_escalation_to" not in st or "deadlines_may_pass_dossier" in st
    if before_property and not before_named:
        # older than the property revision, maybe not older than the named agencies: a
        # setting left out meant its former default only if the plan is older still
        for key, (value, rule, required) in FORMER_DEFAULTS.items():
            section, _, name = key.rpartition(".")
            if required or name in (spot_map if section else st):
                continue
            yield (
                Change(
                    f"settings.{key}",
                    f"请核对 check: written before 1 December 2026, leaving it out meant "
                    f"{_flow(value)} (the built-in plan's value); today it means none: write "
                    f"{key.rpartition('.')[2]}: {_flow(value)} if the plan means it",
                    rule,
                    done=False,
                ),
                None,
            )
    wanted = [k for k, (_, _, required) in FORMER_DEFAULTS.items() if required or before_named]
    for key in wanted:
        value, rule, _ = FORMER_DEFAULTS[key]
        section, _, name = key.rpartition(".")
        if name in (spot_map if section else st):
            continue
        path = f"settings.{key}"
        ok = (
            _categories_know(data, value)
            if key == "goods_on_fire_lane"
            else _names_known(value, known)
        )
        if not ok:
            yield (
                Change(
                    path,
                    f"须补写 required or formerly defaulted: {required_hint(path)}; "
                    "this plan lacks some of these ids: write your own",
                    rule,
                    done=False,
                ),
                None,
            )
            continue
        why = (
            "旧默认值，保持原意 the former default, written out so the plan keeps its meaning"
            if key != "property_escalation_to"
            else "以前固定为此 it was fixed to this before it became a setting"
        )
        note = f"{_MARK}: the built-in plan's value; review ({rule})"
        edit: _Thunk
        if section != "spot_check":
            edit = _thunk(text, st_node, "settings", name, value, _SETTINGS_ORDER, note)
        elif "spot_check" in st_pairs:
            edit = _thunk(text, st_pairs["spot_check"][1], key, name, value, _SPOT_ORDER, note)
        else:
            edit = None  # the whole section is written once, below
        yield Change(path, f"{_flow(value)}: {why}", rule), edit
    if "spot_check" not in st_pairs:
        spot_value = {
            k.split(".", 1)[1]: v
            for k, (v, _, _) in FORMER_DEFAULTS.items()
            if k.startswith("spot_check.") and _names_known(v, known)
        }
        if "lead" in spot_value:
            note = f"{_MARK}: the built-in plan's value; review (R-SPOT-DOUBLE-RANDOM)"
            yield (
                Change("settings.spot_check", "written as a section", "R-SPOT-DOUBLE-RANDOM"),
                _thunk(text, st_node, "settings", "spot_check", spot_value, _SETTINGS_ORDER, note),
            )
    route_nodes = top["routes"][1] if "routes" in top else None
    for i, route in enumerate(route_list):
        if not isinstance(route, Mapping) or "recheck_lead" in route:
            continue
        path = f"routes[{i}].recheck_lead"
        if FORMER_RECHECK_LEAD not in known:
            yield (
                Change(
                    path, f"须补写 required: {required_hint(path)}", "R-TKT-REINSPECT", done=False
                ),
                None,
            )
            continue
        node = route_nodes.value[i] if isinstance(route_nodes, yaml.SequenceNode) else None
        note = f"{_MARK}: the former default; review (R-TKT-REINSPECT)"
        yield (
            Change(path, f"{FORMER_RECHECK_LEAD}: 旧默认值 the former default", "R-TKT-REINSPECT"),
            _thunk(text, node, path, "recheck_lead", FORMER_RECHECK_LEAD, _ROUTE_ORDER, note),
        )


def _thunk(
    text: str,
    node: yaml.Node | None,
    what: str,
    key: str,
    value: Any,
    order: Sequence[str],
    note: str,
) -> Callable[[], _Edit]:
    return lambda: _insert(text, _mapping(node, what), key, value, order, note)


def _redo(data: Mapping[str, Any], changes: Sequence[Change]) -> str:
    """The plan written anew from its data with every change made (comments lost)."""
    plan: dict[str, Any] = dict(data)
    st = dict(plan.get("settings") or {})
    for c in changes:
        if not c.done:
            continue
        if c.path == "settings.rectification_cap":
            st["rectification_cap"] = (
                None if st.pop("deadlines_may_pass_dossier", True) is not False else "dossier"
            )
        elif c.path == "settings.spot_check":
            st["spot_check"] = dict(st.get("spot_check") or {})
        elif c.path.startswith("settings."):
            key = c.path.removeprefix("settings.")
            value = FORMER_DEFAULTS[key][0]
            if key.startswith("spot_check."):
                spot = dict(st.get("spot_check") or {})
                spot[key.split(".", 1)[1]] = value
                st["spot_check"] = spot
            else:
                st[key] = value
    plan["settings"] = st
    routes = [dict(r) if isinstance(r, Mapping) else r for r in plan.get("routes") or []]
    for c in changes:
        if c.done and c.path.startswith("routes["):
            routes[int(c.path[7 : c.path.index("]")])]["recheck_lead"] = FORMER_RECHECK_LEAD
    if routes:
        plan["routes"] = routes
    dumped: str = yaml.safe_dump(plan, allow_unicode=True, sort_keys=False, width=100)
    return f"# {_MARK}: written anew, the comments of the earlier file are lost\n{dumped}"


def upgrade_text(text: str, source: str = "<data>") -> Upgrade:
    """Upgrade plan YAML text (``source`` names it in errors).

    Raises :class:`~fireflow.errors.PlanError` for text that is not a plan at all
    (not YAML, beyond the limits of :mod:`fireflow._yaml`, control characters, not a
    mapping); problems left after the upgrade are returned in :attr:`Upgrade.problems`.
    """
    data, _, _ = load_definition(text, source, PlanError, "plan")
    if not isinstance(data, Mapping):
        raise PlanError([Problem(source, "", "a plan must be a mapping of fields (方案须为映射)")])
    if data.get("format") != PLAN_FORMAT:
        tag = escape_for_terminal(repr(data.get("format")))[:80]
        raise PlanError(
            [
                Problem(
                    source,
                    "format",
                    f"unknown plan format {tag}: this fireflow upgrades plans of format "
                    f"{PLAN_FORMAT} only (未知的方案格式)",
                )
            ]
        )
    root = yaml.compose(text, Loader=yaml.SafeLoader)  # within the limits checked above
    assert isinstance(root, yaml.MappingNode)
    found = list(_plan(text, data, root))
    changes = tuple(c for c, _ in found)
    kept = True
    try:
        new = _apply(text, [make() for c, make in found if c.done and make is not None])
    except _CannotEdit:
        kept = False
        new = _redo(data, changes)
    problems: tuple[Problem, ...] = ()
    try:
        parse_plan(new, source)
    except PlanError as exc:
        problems = exc.problems
    return Upgrade(new, changes, comments_kept=kept, problems=problems)


def upgrade_file(path: str | os.PathLike[str]) -> Upgrade:
    """Upgrade a plan file, read within the limits of :mod:`fireflow._yaml` (nothing written)."""
    text = read_definition(path, str(path), PlanError, "plan")
    return upgrade_text(text, str(path))
