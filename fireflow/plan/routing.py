"""Responsibility routing (四(二)(三)): category + location + subtype -> parties.

Routing reads only the plan; ``docs/routing.md`` explains the rules.

>>> from fireflow.plan import load_plan
>>> r = route_for(load_plan("changle-2022"), "fire_lane_vehicle", "around", "zombie_vehicle")
>>> r.rectifier, r.rules
('traffic_police', ('R-ROUTE-LANE-OUT', 'R-ROUTE-LANE-FIRE'))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from fireflow.errors import InvalidArgument
from fireflow.plan.parts import Route

if TYPE_CHECKING:
    from fireflow.plan.plan import Plan

__all__ = ["Location", "Routing", "find_routing", "route_for"]

Location = Literal["inside", "around"]


@attrs.frozen
class Routing:
    """The parties of a ticket and the rules that named them."""

    route: str
    rectifier: str
    lead: str
    supervisor: str
    recheck_lead: str
    cooperating: tuple[str, ...]
    enforcers: tuple[str, ...]
    certifier: str | None
    rules: tuple[str, ...]

    def role(self, role: str) -> tuple[str, ...]:
        """The agencies playing a route role (``rectifier``, ``enforcers``, ...)."""
        value = getattr(self, role)
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)

    def to_data(self) -> dict[str, object]:
        """JSON-compatible data."""
        return {
            "route": self.route,
            "rectifier": self.rectifier,
            "lead": self.lead,
            "supervisor": self.supervisor,
            "recheck_lead": self.recheck_lead,
            "cooperating": list(self.cooperating),
            "enforcers": list(self.enforcers),
            "certifier": self.certifier,
            "rules": list(self.rules),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Routing:
        """Rebuild from :meth:`to_data`; equal routings are shared, not rebuilt."""
        key = (
            data["route"],
            data["rectifier"],
            data["lead"],
            data["supervisor"],
            data["recheck_lead"],
            tuple(data["cooperating"]),
            tuple(data["enforcers"]),
            data.get("certifier"),
            tuple(data["rules"]),
        )
        found = _SHARED.get(key)
        if found is None:
            found = cls(*key)
            if len(_SHARED) < _SHARED_MAX:  # bounded: odd stored data cannot grow it forever
                _SHARED[key] = found
        return found


#: Routings rebuilt from events are shared: a province's tickets use a handful of routes.
_SHARED: dict[tuple[Any, ...], Routing] = {}
_SHARED_MAX = 4096


def _score(route: Route, location: str, subtype: str, new_community: bool) -> int | None:
    if route.location not in (location, "any"):
        return None
    if route.subtypes and subtype not in route.subtypes:
        return None
    if route.new_community is not None and route.new_community != new_community:
        return None
    return (
        (4 if route.new_community is not None else 0)
        + (2 if route.location == location else 0)
        + (1 if route.subtypes else 0)
    )


def route_for(
    plan: Plan,
    category: str,
    location: str,
    subtype: str | None = None,
    *,
    new_community: bool = False,
) -> Routing:
    """The routing of a hazard; the most specific matching route wins.

    ``new_community``: the community is new (新建, R-ROUTE-SIGN); see
    :meth:`~fireflow.plan.Plan.is_new_community`.  A route that names it
    (``new_community: true`` or ``false``) beats every route that does not.
    Raises :class:`~fireflow.errors.InvalidArgument` for an unknown category,
    subtype or location, naming the field.  The answer is kept by the plan
    (:meth:`~fireflow.plan.Plan.routing`); :func:`find_routing` computes it.

    >>> from fireflow.plan import load_plan
    >>> plan = load_plan("changle-2022")
    >>> route_for(plan, "lane_or_sign_missing", "inside", "sign").lead
    'town'
    >>> route_for(plan, "lane_or_sign_missing", "inside", "sign", new_community=True).lead
    'housing'
    """
    return plan.routing(category, location, subtype, new_community=new_community)


def find_routing(
    plan: Plan,
    category: str,
    location: str,
    subtype: str | None = None,
    *,
    new_community: bool = False,
) -> Routing:
    """:func:`route_for` computed afresh, without the plan's kept answers."""
    cat = plan.category(category)
    if location not in ("inside", "around"):
        raise InvalidArgument("location", f"expected 'inside' or 'around', got {location!r}")
    if subtype is not None:
        cat.subtype(subtype)
    best: tuple[int, int, Route] | None = None
    for order, route in enumerate(plan.routes):
        if route.category != category:
            continue
        score = _score(route, location, subtype or "", new_community)
        if score is not None and (best is None or score > best[0]):
            best = (score, -order, route)
    if best is None:
        raise InvalidArgument(
            "category",
            f"no route for {category!r} {location!r} {subtype!r} in plan {plan.id}",
            rule="R-AUTH-ROLES",
        )
    r = best[2]
    return Routing(
        route=r.id,
        rectifier=r.rectifier,
        lead=r.lead,
        supervisor=r.supervisor,
        recheck_lead=r.recheck_lead,
        cooperating=r.cooperating,
        enforcers=r.enforcers,
        certifier=r.certifier,
        rules=r.rules,
    )
