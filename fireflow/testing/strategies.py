"""Public hypothesis strategies for property tests of fireflow and of code built on it.

Needs ``hypothesis`` (the ``testing`` extra).  Every strategy draws *valid*
objects of the library: plan data that validates, populations, commands a
ticket could receive, and event sequences produced by the real engine.

* :func:`plan_data` / :func:`plans`: variations of a plan, within what the
  plan format allows (settings, readings, phase windows, time zone, an extra
  agency, holiday overrides);
* :func:`populations`: towns, communities, property companies from a seed;
* :func:`hazards`, :func:`instants`: the raw material of commands;
* :func:`commands`: a command for a ticket in a given state;
* :func:`event_sequences`: the events of one ticket driven by drawn commands.

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, database=None)
... @given(plans())
... def check(plan):
...     assert [p.start for p in plan.phases] == sorted(p.start for p in plan.phases)
>>> check()
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from fireflow.errors import NotAuthorized, Refusal
from fireflow.events import Event
from fireflow.plan import BUILTIN_PLAN, Level, Plan, load_plan, validate_plan_data
from fireflow.states import SETTINGS_AUTHORIZED, TRIGGERS, triggers_from
from fireflow.testing.paths import (
    authorized_agencies,
    default_start,
    hazards_of,
    referral_fields,
    reopen_time,
)
from fireflow.testing.population import TOWN_NAMES, Population, generate_population
from fireflow.ticket import SOURCES, Command, TicketState, decide, evolve, refusal_event

__all__ = [
    "TIMEZONES",
    "commands",
    "event_sequences",
    "hazards",
    "instants",
    "plan_data",
    "plans",
    "populations",
]

#: Time zones a plan variation may use: IANA zones with DST and odd offsets.
TIMEZONES: tuple[str, ...] = (
    "Asia/Shanghai",
    "UTC",
    "Asia/Urumqi",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Europe/London",
    "America/New_York",
    "America/St_Johns",
    "Australia/Sydney",
    "Pacific/Kiritimati",
)

_PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64}
_PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}

# texts the text policy (fireflow.text) accepts: no controls, format characters or separators
_texts = (
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp")),
        min_size=1,
        max_size=16,
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: bool(s.strip()))
)
_ids = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


def _base(base: Plan | str) -> Plan:
    return base if isinstance(base, Plan) else load_plan(base)


@st.composite
def _windows(draw: st.DrawFn, first: date, last: date, n: int) -> list[tuple[date, date]]:
    """``n`` contiguous inclusive windows from ``first`` to ``last``."""
    span = (last - first).days
    if n <= 1 or span < n - 1:
        return [(first, last)] if n == 1 else []
    offsets = draw(
        st.lists(st.integers(1, span), min_size=n - 1, max_size=n - 1, unique=True).map(sorted)
    )
    starts = [first, *(first + timedelta(days=o) for o in offsets)]
    ends = [s - timedelta(days=1) for s in starts[1:]] + [last]
    return list(zip(starts, ends, strict=True))


@st.composite
def _plan_data(draw: st.DrawFn, base: Plan) -> dict[str, Any]:
    data = copy.deepcopy(base.to_data())
    s = data["settings"]
    pr = data["progress_reports"]
    maybe = st.booleans()
    first, last = base.start, base.end

    if draw(maybe):
        s["holiday_policy"] = draw(st.sampled_from(["roll_forward", "roll_back", "none"]))
    if draw(maybe):
        s["rest_days"] = draw(st.sampled_from(["observed", "holidays_only"]))
    if draw(maybe):
        s["due_inclusive"] = draw(st.booleans())
    if draw(maybe):
        s["period_unit"] = draw(st.sampled_from(["calendar", "working"]))
    if draw(maybe):
        s["rectification_days"] = {
            c["id"]: draw(st.integers(min_value=1, max_value=366)) for c in data["categories"]
        }
    if draw(maybe):
        ids = [d["id"] for d in data["deadlines"]]
        s["rectification_cap"] = draw(st.one_of(st.none(), st.sampled_from(ids))) if ids else None
    if draw(maybe):
        s["office_close"] = draw(
            st.one_of(st.none(), st.times().map(lambda t: t.replace(microsecond=0).isoformat()))
        )
    if draw(maybe):
        s["spot_check"]["ratio"] = draw(
            st.floats(min_value=0.001, max_value=1.0, allow_nan=False, allow_infinity=False)
        )
    if draw(maybe):
        s["new_community_since"] = draw(
            st.one_of(st.none(), st.dates(first, last).map(date.isoformat))
        )
    if draw(maybe):
        s["max_failed_rechecks"] = draw(st.integers(min_value=1, max_value=10))
    if draw(maybe):
        pr["offset"] = draw(st.integers(min_value=0, max_value=40))
    if draw(maybe):
        pr["unit"] = draw(st.sampled_from(["calendar", "working"]))
    if draw(maybe):
        pr["reading"] = draw(st.sampled_from(["on", "no_later_than", "within"]))
    if draw(maybe):
        data["timezone"] = draw(st.sampled_from(TIMEZONES))
    if draw(maybe) and len(data["phases"]) > 1:
        windows = draw(_windows(first, last, len(data["phases"])))
        for ph, (start, end) in zip(data["phases"], windows, strict=True):
            ph["start"], ph["end"] = start.isoformat(), end.isoformat()
    if draw(maybe) and data["deadlines"]:
        i = draw(st.integers(0, len(data["deadlines"]) - 1))
        data["deadlines"][i]["nominal"] = draw(st.dates(first, last).map(date.isoformat))
    if draw(maybe):
        # 等 ("and others"): the agency list and recipient lists are open
        known = {a["id"] for a in data["agencies"]}
        new_id = draw(_ids.filter(lambda i: i not in known))
        data["agencies"].append(
            {
                "id": new_id,
                "name": {"zh": draw(_texts), "en": draw(_texts)},
                "level": draw(st.sampled_from(sorted(get_args(Level)))),
                "note": draw(st.one_of(st.just(""), _texts)),
            }
        )
        if data["deadlines"]:
            data["deadlines"][0]["recipients"].append(new_id)
    if draw(maybe):
        data["name"]["zh"] = draw(_texts)
        data["source"] = draw(st.one_of(st.just(""), _texts))
    if draw(maybe):
        year = base.year + 9  # a year without official data: the override makes it known
        days = st.dates(date(year, 1, 1), date(year, 12, 31))
        chosen = draw(st.lists(days, max_size=12, unique=True))
        split = draw(st.integers(min_value=0, max_value=len(chosen)))
        data["holidays"]["overrides"] = [
            {
                "year": year,
                "rest_days": sorted(d.isoformat() for d in chosen[:split]),
                "work_days": sorted(d.isoformat() for d in chosen[split:]),
                "note": "",
            }
        ]
    if draw(maybe):
        # settings left at their defaults: none of them names an id of the base plan
        optional = sorted(k for k in _OPTIONAL_SETTINGS if k in s)
        for key in draw(st.lists(st.sampled_from(optional), unique=True)) if optional else ():
            del s[key]
    if draw(maybe):
        # another district's agencies: every agency id renamed wherever it is used
        suffix = draw(st.sampled_from(["_b", "_x2", "_gl"]))
        data = _renamed_agencies(data, suffix)
    return data


#: Settings with a default that names no plan id (leaving them out is valid for any plan).
_OPTIONAL_SETTINGS = (
    "holiday_policy",
    "rest_days",
    "due_inclusive",
    "period_unit",
    "rectification_cap",
    "office_close",
    "max_failed_rechecks",
    "min_recheck_agencies",
    "photo_required_sources",
    "non_signing_agencies",
    "joint_meeting_interval_days",
    "goods_on_fire_lane",
    "new_community_since",
    "refusal_report_to",
    "recheck_counting_levels",
)


def _renamed_agencies(data: dict[str, Any], suffix: str) -> dict[str, Any]:
    """``data`` with every agency id ``a`` written ``a + suffix`` wherever a value names it.

    Agency references are values equal to an agency id (ids of other kinds never
    equal one in the plans this varies; text fields are never a bare id).
    """
    ids = {a["id"] for a in data["agencies"]}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if isinstance(value, str) and value in ids and key not in _TEXT_KEYS:
            return value + suffix
        return value

    out: dict[str, Any] = walk(data)
    return out


_TEXT_KEYS = frozenset(
    {
        "zh",
        "en",
        "note",
        "clause",
        "source",
        "quote_zh",
        "text_zh",
        "level",
        "recheck_counting_levels",
        "per",  # duties: town, community or district (a level word, never an agency id)
    }
)
"""Keys whose values are text or agency levels, never agency ids (`town` is both)."""


def plan_data(base: Plan | str = BUILTIN_PLAN) -> st.SearchStrategy[dict[str, Any]]:
    """Plan data (as in a plan file) varied from ``base``; every draw validates.

    Varied: every setting of ``settings``, the reading of the progress
    reports, the time zone, the phase windows (contiguous, same campaign),
    a fixed deadline's date, an added agency (等), names, a holiday
    override for a year without official data, settings left at their
    defaults, and every agency id renamed (another district's agencies).
    """
    return _plan_data(_base(base))


def plans(base: Plan | str = BUILTIN_PLAN) -> st.SearchStrategy[Plan]:
    """Validated :class:`~fireflow.plan.Plan` objects varied from ``base``."""
    return plan_data(base).map(lambda d: validate_plan_data(d, "<hypothesis>"))


def populations(
    *,
    min_towns: int = 1,
    max_towns: int = 8,
    min_communities: int = 0,
    max_communities: int = 60,
    max_companies: int = 10,
) -> st.SearchStrategy[Population]:
    """Synthetic districts (:func:`~fireflow.testing.population.generate_population`)."""
    max_towns = min(max_towns, len(TOWN_NAMES))
    return st.builds(
        generate_population,
        seed=st.integers(0, 2**32 - 1),
        towns=st.integers(min_towns, max_towns),
        communities=st.integers(min_communities, max_communities),
        companies=st.integers(1, max_companies),
        new_share=st.sampled_from([0.0, 0.2, 0.5, 1.0]),
    )


def hazards(plan: Plan) -> st.SearchStrategy[tuple[str, str, str | None]]:
    """A hazard of ``plan``: (category, location, subtype or None)."""
    return st.sampled_from(hazards_of(plan))


def instants(
    plan: Plan, *, first: date | None = None, last: date | None = None
) -> st.SearchStrategy[datetime]:
    """Aware instants between ``first`` and ``last`` (default: the campaign, a day in from
    each end, so that the instant lies in the campaign in the plan's zone whatever zone it is
    written in: the engine refuses a command dated before the campaign), any of
    :data:`TIMEZONES` (imaginary DST-gap times left out)."""
    lo = first or plan.start + timedelta(days=1)
    hi = last or plan.end - timedelta(days=1)
    if hi < lo:  # a campaign of a day or two: its own days
        lo, hi = first or plan.start, last or plan.end
    return st.datetimes(
        min_value=datetime(lo.year, lo.month, lo.day),  # noqa: DTZ001 (bounds of an aware strategy)
        max_value=datetime(hi.year, hi.month, hi.day, 23, 59, 59),  # noqa: DTZ001
        timezones=st.sampled_from([ZoneInfo(z) for z in TIMEZONES]),
        allow_imaginary=False,
    )


@st.composite
def _command(
    draw: st.DrawFn,
    state: TicketState,
    plan: Plan,
    after: datetime | None,
    likely_valid: bool,
) -> Command:
    allowed = triggers_from(state.state)
    if draw(st.integers(0, 7), label="accountability?") > 0:
        # a referral is allowed in every state: drawn 1 in 8, so that tickets still move on
        allowed = tuple(k for k in allowed if k not in SETTINGS_AUTHORIZED)
    if allowed and (likely_valid or draw(st.integers(0, 9), label="bias") < 8):
        kind = draw(st.sampled_from(allowed), label="kind")
    else:
        kind = draw(st.sampled_from(TRIGGERS), label="kind")
    agencies = tuple(a.id for a in plan.agencies)
    good = authorized_agencies(state, kind, plan)
    if good and (likely_valid or draw(st.booleans(), label="pick allowed agency")):
        agency = draw(st.sampled_from(good), label="agency")
    else:
        agency = draw(st.sampled_from(agencies), label="agency")
    now = after or state.last_at or default_start(plan)
    hours = draw(st.one_of(st.integers(0, 48), st.integers(49, 24 * 30)), label="hours")
    at = now + timedelta(hours=hours)
    if kind == "mark_overdue" and state.deadline is not None and draw(st.booleans(), label="late"):
        at = max(at, plan.calendar.due_instant(state.deadline))
    if kind == "reopen" and draw(st.booleans(), label="in window"):
        at = reopen_time(plan, at)  # R-SPOT-WINDOW: the spot check reopens inside its phase
    if not likely_valid and draw(st.integers(0, 30), label="backwards") == 0:
        at = now - timedelta(hours=draw(st.integers(1, 48), label="back by"))
    fields: dict[str, Any] = {}
    if kind == "report":
        category, location, subtype = draw(hazards(plan), label="hazard")
        fields.update(
            community=draw(
                st.sampled_from(["金峰小区", "海景花园", "航城新村"]), label="community"
            ),
            town=draw(st.sampled_from(TOWN_NAMES), label="town"),
            category=category,
            location=location,
            source=draw(st.sampled_from(SOURCES), label="source"),
        )
        if subtype is not None:
            fields["subtype"] = subtype
        if likely_valid or draw(st.integers(0, 4), label="photo") > 0:
            fields["evidence"] = [_PHOTO_BEFORE]
    elif kind in ("recheck_pass", "recheck_fail"):
        if likely_valid:
            pool = [a for a in agencies if a != agency]
            parts = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
        else:
            parts = draw(st.lists(st.sampled_from(agencies), max_size=3, unique=True))
        fields["participants"] = [{"agency": a, "person": "人"} for a in parts]
    elif kind == "sign_off":
        barred = {state.rectified_by, *plan.settings.non_signing_agencies}
        if state.routing is not None:
            barred.add(state.routing.rectifier)
        # 五(三): the named people of the last re-check sign (R-TKT-SIGNOFF)
        fit: list[tuple[str, str]] = [
            (p.agency, p.person)
            for p in state.recheck_people
            if p.person and p.agency not in barred
        ]
        people = (
            fit
            if likely_valid and fit
            else [*fit, *((a, "人") for a in (*state.recheck_agencies, *agencies))]
        )
        signers = draw(st.lists(st.sampled_from(people), max_size=3, unique=True), label="signers")
        fields["signers"] = [{"agency": a, "person": n} for a, n in signers]
    elif kind == "archive":
        if likely_valid or draw(st.integers(0, 4), label="photo_after") > 0:
            fields["evidence"] = [_PHOTO_AFTER]
    elif kind in ("refer", "decide_referral"):
        fields.update(referral_fields(state, kind, plan))
        if kind == "refer":
            fields["case"] = draw(
                st.sampled_from(["slow", "wrong", "falsified", "concealed", "report"]),
                label="case",
            )
            pool = [a for a in agencies if not plan.is_property_company(a)] or list(agencies)
            fields["accountable"] = draw(
                st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True),
                label="accountable",
            )
    elif kind == "escalate" and draw(st.integers(0, 4), label="targets?") == 0:
        fields["targets"] = draw(st.lists(st.sampled_from(agencies), min_size=1, max_size=3))
    elif kind in ("set_deadline", "recheck_fail", "resume", "reopen", "clear", "demolish") and (
        draw(st.integers(0, 4), label="override?") == 0
    ):
        fields["days"] = draw(st.integers(1, 40), label="days")
        fields["unit"] = draw(st.sampled_from(["calendar", "working"]), label="unit")
    return Command.model_validate(
        {
            "kind": kind,
            "ticket_id": state.ticket_id,
            "at": at,
            "actor": {"agency": agency},
            **fields,
        }
    )


def commands(
    state: TicketState,
    plan: Plan,
    *,
    after: datetime | None = None,
    likely_valid: bool = False,
) -> st.SearchStrategy[Command]:
    """A command for a ticket in ``state``: trigger, actor, time and fields.

    By default mostly triggers the state allows and agencies the plan
    authorizes, with wrong ones mixed in (and, rarely, a time going
    backwards), so that refusals are exercised too.  ``likely_valid`` draws
    only allowed triggers, authorized agencies and well-formed fields; the
    engine may still refuse (a deadline not yet passed, ``certify`` on a
    hazard that is not a building).  Times start from ``after`` (default: the
    ticket's last event, or :func:`~fireflow.testing.paths.default_start`).
    """
    return _command(state, plan, after, likely_valid)


@st.composite
def _event_sequences(
    draw: st.DrawFn,
    plan: Plan,
    ticket_id: str,
    max_commands: int,
    likely_valid: bool,
) -> tuple[Event, ...]:
    state = TicketState(ticket_id)
    events: list[Event] = []
    now: datetime | None = None
    for _ in range(draw(st.integers(0, max_commands), label="commands")):
        command = draw(commands(state, plan, after=now, likely_valid=likely_valid))
        try:
            produced: Sequence[Event] = decide(state, command, plan)
        except NotAuthorized as exc:
            produced = (refusal_event(state, command, exc),)
        except Refusal:
            continue
        if state.last_at is None or command.at >= state.last_at:
            now = command.at
        for e in produced:
            state = evolve(state, e)
            events.append(e)
    return tuple(events)


def event_sequences(
    plan: Plan | str = BUILTIN_PLAN,
    *,
    ticket_id: str = "T1",
    max_commands: int = 30,
    likely_valid: bool = True,
) -> st.SearchStrategy[tuple[Event, ...]]:
    """The events of one ticket, produced by driving the real engine with drawn commands.

    Refused commands leave no event, except refused authorizations, which
    the engine records (``attempt_refused``), as :class:`~fireflow.ticket.Ticket`
    does.  ``fold(events)`` is always the ticket's state.
    """
    return _event_sequences(_base(plan), ticket_id, max_commands, likely_valid)
