"""The model layer's plan binding: which plan, in which version, a ticket's history follows.

A ticket's ``report`` event records the plan's id and :func:`plan_digest`, a
digest of the plan's rule-relevant content (:func:`plan_rule_data`).  The
engine (:mod:`fireflow.ticket`) refuses to continue a history under a plan
whose id or digest differs, unless the caller migrates it explicitly
(docs/lifecycle.md, "Events bound to their plan").

This module sits beside :mod:`fireflow.plan`, below the rules and the engine,
so that both (and :func:`fireflow.rules.explain.explain`) use one definition.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from typing import Any

from fireflow.plan import Plan

__all__ = ["plan_binding", "plan_digest", "plan_rule_data"]

# Prose and labels people read, left out of the digest (everything else is in it):
# every label (a mapping of exactly ``zh`` and ``en``) and these fields.
_PROSE_TOP = ("source",)
_PROSE_IN = {
    "agencies": ("note",),
    "routes": ("note",),
    "forms": ("names", "title_en"),
    "rules": (
        "title_zh",
        "title_en",
        "quote_zh",
        "text_zh",
        "gloss_en",
        "default_zh",
        "default_en",
    ),
}


def _without_labels(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_labels(v)
            for k, v in value.items()
            if not (isinstance(v, dict) and set(v) == {"zh", "en"})
            and not (
                isinstance(v, list)
                and v
                and all(isinstance(x, dict) and set(x) == {"zh", "en"} for x in v)
            )
        }
    if isinstance(value, list):
        return [_without_labels(v) for v in value]
    return value


def plan_rule_data(plan: Plan) -> dict[str, Any]:
    """The part of a plan that decides what the engine does: what :func:`plan_digest` hashes.

    The plan's data as JSON (``model_dump(mode="json")``), without the prose
    and labels people read: every ``{zh, en}`` label (names, covers,
    summaries, report contents), the top-level ``source``, agencies' and
    routes' ``note``, forms' ``names`` and ``title_en``, and the wording of
    the rule catalogue (``title_*``, ``quote_zh``, ``text_zh``, ``gloss_en``,
    ``default_*``).  Ids, clauses, dates, settings, routes, authority and the
    holiday settings stay: change any of them and the digest changes.

    >>> from fireflow import load_plan
    >>> data = plan_rule_data(load_plan("changle-2022"))
    >>> "name" in data, data["id"], sorted(data["rules"][0])
    (False, 'changle-2022', ['basis', 'clause', 'id', 'topic'])
    """
    data: dict[str, Any] = plan.model_dump(mode="json", by_alias=True)
    for key in _PROSE_TOP:
        data.pop(key, None)
    for section, keys in _PROSE_IN.items():
        for item in data.get(section) or ():
            for key in keys:
                item.pop(key, None)
    out: dict[str, Any] = _without_labels(data)
    return out


_BINDINGS: dict[int, tuple[weakref.ref[Plan], tuple[str, str]]] = {}


def plan_digest(plan: Plan) -> str:
    """``sha256:`` and the hex SHA-256 of :func:`plan_rule_data` as canonical JSON.

    Canonical JSON: keys sorted, no insignificant white space, text as UTF-8
    (not escaped), so the digest is the same in every process and under any
    ``PYTHONHASHSEED``.  It names the version of a plan's rules: a ticket's
    ``report`` event records it (with the plan's id), and a history is only
    continued under a plan with the same id and digest (docs/lifecycle.md).
    """
    return plan_binding(plan)[1]


def plan_binding(plan: Plan) -> tuple[str, str]:
    """``(plan id, plan digest)``, computed once per plan object."""
    key = id(plan)  # an identity cache, checked through a weak reference; never an order
    found = _BINDINGS.get(key)
    if found is not None and found[0]() is plan:
        return found[1]
    text = json.dumps(
        plan_rule_data(plan), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    binding = (plan.id, "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest())
    if len(_BINDINGS) >= 64:
        for k in [k for k, (ref, _) in _BINDINGS.items() if ref() is None]:
            del _BINDINGS[k]
    _BINDINGS[key] = (weakref.ref(plan), binding)
    return binding
