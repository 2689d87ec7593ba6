"""The spot check of 五(四), drawn "双随机、一公开" (R-SPOT-RATIO, R-SPOT-DOUBLE-RANDOM).

Random objects (the communities), random inspectors (the teams), public
results: the draw is a pure function of its published inputs and a seed, so
anyone can re-run it.

1. Build the inputs (:func:`draw_inputs`): the plan's spot-check settings, the
   communities with their towns, the inspector pool (persons of the lead and
   participating agencies) and the conflicts of interest (a person tied to a
   community or to a whole town).
2. Before the draw, publish :func:`commit` (a SHA-256 over the seed and the
   digest of the inputs) together with the inputs.
3. Run :func:`draw` and publish the result *and the seed*.
4. Anyone runs :func:`verify` on the published commitment, inputs, seed and
   draw.

At least ``ceil(ratio x N)`` distinct communities are drawn (per town when
the plan's base is ``town``), computed exactly: 10% of 31 is 4, 10% of 30 is 3.
Each drawn community gets a team with at least one inspector of a lead agency
(``housing`` or ``fire``) and, where one is available, one of another agency;
nobody is ever sent to a community they are tied to.

>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> communities = [Community(f"C{i:02}", "金峰镇" if i < 16 else "首占镇") for i in range(31)]
>>> inspectors = [Inspector("H1", "housing"), Inspector("F1", "fire"),
...               Inspector("U1", "urban"), Inspector("P1", "police")]
>>> inputs = draw_inputs(plan, communities, inspectors, [Conflict("H1", town="金峰镇")])
>>> seed = "2022-07-16 长乐区抽查 e3b9a1c47d"
>>> c = commit(inputs, seed)
>>> d = draw(inputs, seed)
>>> len(d.assignments), d.strata[0].required, d.rules
(4, 4, ('R-SPOT-RATIO', 'R-SPOT-DOUBLE-RANDOM'))
>>> bool(verify(c, inputs, seed, d))
True
>>> bool(verify(c, inputs, seed + "x", d))
False
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any

import attrs

from fireflow.errors import InvalidArgument, NaiveDatetime
from fireflow.events import check_json_value
from fireflow.model import ActorIn, Command, TicketState
from fireflow.plan import Plan
from fireflow.states import compiled_table
from fireflow.text import check_name

__all__ = [
    "FORMAT",
    "MAX_SEED_BYTES",
    "MIN_SEED_BITS",
    "MIN_SEED_BYTES",
    "Assignment",
    "Check",
    "Commitment",
    "Community",
    "Conflict",
    "Draw",
    "DrawInputs",
    "Finding",
    "Inspector",
    "NoEligibleInspector",
    "OutsideSpotCheckPhase",
    "ReopenOrder",
    "SpotCheckOrders",
    "Stratum",
    "Unmatched",
    "VerifyResult",
    "check_spot_check_window",
    "commit",
    "draw",
    "draw_inputs",
    "findings_to_commands",
    "inputs_from_data",
    "required_count",
    "seed_strength",
    "verify",
]

#: The format tag of published inputs, commitments and draws.
FORMAT = "fireflow.spotcheck/1"
#: The shortest seed accepted: a short seed could be found from the commitment by trying.
MIN_SEED_BYTES = 16
#: The least apparent entropy of a seed, in bits (see :func:`seed_strength`).
MIN_SEED_BITS = 128
#: The longest seed accepted.
MAX_SEED_BYTES = 1024
_RATIO_RULE = "R-SPOT-RATIO"
_RANDOM_RULE = "R-SPOT-DOUBLE-RANDOM"
_MAX_ID = 128
_MAX_TEAM = 16


# =========================================================================== #
# Errors


class NoEligibleInspector(InvalidArgument):
    """No valid team exists for a community: every lead-agency inspector is tied to it.

    ``community`` and ``town`` name the community; ``field`` is ``inspectors``.
    """

    def __init__(self, community: str, town: str, message: str) -> None:
        self.community = community
        self.town = town
        super().__init__(
            "inspectors",
            f"no valid team for community {community!r} (town {town!r}): {message} "
            f"(小区“{community}”无可派检查组)",
            rule=_RANDOM_RULE,
        )


# =========================================================================== #
# Inputs


@attrs.frozen(order=True)
class Community:
    """A community of the population list (附件4): id, town, optional name.

    ``has_problems`` matters only when the plan's base is ``with_problems``.
    """

    id: str
    town: str
    name: str = ""
    has_problems: bool = False


@attrs.frozen(order=True)
class Inspector:
    """A person of the inspector pool: id, agency id, optional name."""

    id: str
    agency: str
    name: str = ""


@attrs.frozen(order=True)
class Conflict:
    """A tie between a person and a community or a whole town (exactly one of them)."""

    person: str
    community: str | None = None
    town: str | None = None
    note: str = ""


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _ident(value: Any, field: str, *, required: bool = True) -> str:
    """An id or name of the inputs, under the one text policy (fireflow.text)."""
    if not required and value == "":
        return ""
    return check_name(value, field, _MAX_ID)


@attrs.frozen
class DrawInputs:
    """Everything a draw depends on, in canonical order; publish it with the commitment.

    Build it with :func:`draw_inputs` (from a plan) or :meth:`from_data` (from
    published data).  ``ratio`` is read as the decimal the plan writes.
    """

    plan_id: str
    ratio: float
    base: str
    method: str
    lead: tuple[str, ...]
    participants: tuple[str, ...]
    team_size: int
    communities: tuple[Community, ...]
    inspectors: tuple[Inspector, ...]
    conflicts: tuple[Conflict, ...]

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data; :meth:`from_data` reads it back equal."""
        return {
            "format": FORMAT,
            "plan": self.plan_id,
            "ratio": repr(self.ratio),
            "rounding": "ceil",
            "base": self.base,
            "method": self.method,
            "lead": list(self.lead),
            "participants": list(self.participants),
            "team_size": self.team_size,
            "communities": [
                {"id": c.id, "town": c.town, "name": c.name, "has_problems": c.has_problems}
                for c in self.communities
            ],
            "inspectors": [
                {"id": i.id, "agency": i.agency, "name": i.name} for i in self.inspectors
            ],
            "conflicts": [
                {"person": x.person, "community": x.community, "town": x.town, "note": x.note}
                for x in self.conflicts
            ],
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DrawInputs:
        """Rebuild published inputs (the output of :meth:`to_data`), validating them."""
        if not isinstance(data, Mapping):
            raise InvalidArgument("inputs", "expected a JSON object")
        if data.get("format") != FORMAT:
            raise InvalidArgument("format", f"expected {FORMAT!r}, got {data.get('format')!r}")
        try:
            ratio = float(str(data["ratio"]))
        except (KeyError, ValueError):
            raise InvalidArgument("ratio", "expected a decimal number as text") from None
        if not 0 < ratio <= 1:
            raise InvalidArgument("ratio", f"must be in (0, 1], got {ratio}", rule=_RATIO_RULE)
        base = data.get("base")
        if base not in ("district", "town", "with_problems"):
            raise InvalidArgument("base", f"unknown base {base!r}", rule=_RATIO_RULE)
        method = data.get("method")
        if method not in ("double_random", "simple_random"):
            raise InvalidArgument("method", f"unknown method {method!r}", rule=_RANDOM_RULE)
        lead = tuple(_ident(a, f"lead[{i}]") for i, a in enumerate(_seq(data, "lead")))
        participants = tuple(
            _ident(a, f"participants[{i}]") for i, a in enumerate(_seq(data, "participants"))
        )
        return _build(
            plan_id=_ident(data.get("plan"), "plan"),
            ratio=ratio,
            base=str(base),
            method=str(method),
            lead=lead,
            participants=participants,
            team_size=data.get("team_size", 2),
            communities=_communities(_seq(data, "communities")),
            inspectors=_inspectors(_seq(data, "inspectors")),
            conflicts=_conflicts(_seq(data, "conflicts", required=False)),
            known_agencies=None,
        )

    def canonical_bytes(self) -> bytes:
        """The one byte encoding of the inputs: sorted keys, NFC text, no white space."""
        return json.dumps(
            self.to_data(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")

    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`canonical_bytes`."""
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def community(self, community_id: str) -> Community:
        """The community with this id; :class:`InvalidArgument` if unknown."""
        for c in self.communities:
            if c.id == community_id:
                return c
        raise InvalidArgument("community", f"unknown community {community_id!r}")


def _seq(data: Mapping[str, Any], key: str, *, required: bool = True) -> list[Any]:
    value = data.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidArgument(key, "expected a list")
    return list(value)


_COMMUNITY_KEYS = frozenset({"id", "town", "name", "has_problems"})
_INSPECTOR_KEYS = frozenset({"id", "agency", "name"})
_CONFLICT_KEYS = frozenset({"person", "community", "town", "note"})


def _item(value: Any, field: str, known: frozenset[str]) -> Mapping[str, Any]:
    """One object of a list in the draw inputs; a key it does not know is refused.

    A misspelt key (``has_problem``, ``comunity``) would otherwise be dropped without a
    word, and the draw made on other inputs than the ones the file seems to say.
    """
    if not isinstance(value, Mapping):
        raise InvalidArgument(field, "expected an object")
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise InvalidArgument(
            f"{field}.{unknown[0]}",
            f"unknown field in draw inputs (未知字段); known: {', '.join(sorted(known))}",
        )
    return value


def _communities(items: Sequence[Any]) -> list[Community]:
    out = []
    for i, raw in enumerate(items):
        item = _item(raw, f"communities[{i}]", _COMMUNITY_KEYS)
        flag = item.get("has_problems", False)
        if not isinstance(flag, bool):
            raise InvalidArgument(f"communities[{i}].has_problems", "expected true or false")
        out.append(
            Community(
                item.get("id", ""),  # type and content checked by _build
                item.get("town", ""),
                item.get("name", ""),
                flag,
            )
        )
    return out


def _inspectors(items: Sequence[Any]) -> list[Inspector]:
    out = []
    for i, raw in enumerate(items):
        item = _item(raw, f"inspectors[{i}]", _INSPECTOR_KEYS)
        out.append(Inspector(item.get("id", ""), item.get("agency", ""), item.get("name", "")))
    return out


def _conflicts(items: Sequence[Any]) -> list[Conflict]:
    out = []
    for i, raw in enumerate(items):
        item = _item(raw, f"conflicts[{i}]", _CONFLICT_KEYS)
        out.append(
            Conflict(
                item.get("person", ""),
                item.get("community"),
                item.get("town"),
                item.get("note", ""),
            )
        )
    return out


def _build(
    *,
    plan_id: str,
    ratio: float,
    base: str,
    method: str,
    lead: tuple[str, ...],
    participants: tuple[str, ...],
    team_size: Any,
    communities: Iterable[Community],
    inspectors: Iterable[Inspector],
    conflicts: Iterable[Conflict],
    known_agencies: frozenset[str] | None,
) -> DrawInputs:
    if isinstance(team_size, bool) or not isinstance(team_size, int):
        raise InvalidArgument("team_size", f"expected a whole number, got {team_size!r}")
    if not 1 <= team_size <= _MAX_TEAM:
        raise InvalidArgument("team_size", f"must be 1 to {_MAX_TEAM}, got {team_size}")
    if not lead:
        raise InvalidArgument("lead", "the spot check needs a lead agency", rule=_RATIO_RULE)
    pool_agencies = set(lead) | set(participants)

    seen: dict[str, int] = {}
    comms: list[Community] = []
    for i, c in enumerate(communities):
        where = f"communities[{i}]"
        cid = _ident(c.id, f"{where}.id")
        if cid in seen:
            raise InvalidArgument(f"{where}.id", f"duplicate community id {cid!r}")
        seen[cid] = i
        comms.append(
            Community(
                cid,
                _ident(c.town, f"{where}.town"),
                _ident(c.name, f"{where}.name", required=False),
                c.has_problems is True,
            )
        )
    towns = {c.town for c in comms}

    people: dict[str, int] = {}
    insp: list[Inspector] = []
    for i, p in enumerate(inspectors):
        where = f"inspectors[{i}]"
        pid = _ident(p.id, f"{where}.id")
        if pid in people:
            raise InvalidArgument(f"{where}.id", f"duplicate inspector id {pid!r}")
        people[pid] = i
        agency = _ident(p.agency, f"{where}.agency")
        if known_agencies is not None and agency not in known_agencies:
            raise InvalidArgument(f"{where}.agency", f"unknown agency {agency!r}")
        if agency not in pool_agencies:
            raise InvalidArgument(
                f"{where}.agency",
                f"agency {agency!r} is neither a lead ({', '.join(lead)}) nor a participant "
                f"({', '.join(participants)}) of the spot check",
                rule=_RANDOM_RULE,
            )
        insp.append(Inspector(pid, agency, _ident(p.name, f"{where}.name", required=False)))

    ties: set[Conflict] = set()
    for i, x in enumerate(conflicts):
        where = f"conflicts[{i}]"
        person = _ident(x.person, f"{where}.person")
        if person not in people:
            raise InvalidArgument(f"{where}.person", f"unknown inspector {person!r}")
        if (x.community is None) == (x.town is None):
            raise InvalidArgument(where, "name exactly one of community or town")
        note = _ident(x.note, f"{where}.note", required=False)
        if x.community is not None:
            cid = _ident(x.community, f"{where}.community")
            if cid not in seen:
                raise InvalidArgument(f"{where}.community", f"unknown community {cid!r}")
            ties.add(Conflict(person, community=cid, note=note))
        else:
            town = _ident(x.town, f"{where}.town")
            if town not in towns:
                raise InvalidArgument(f"{where}.town", f"no community in town {town!r}")
            ties.add(Conflict(person, town=town, note=note))

    return DrawInputs(
        plan_id=plan_id,
        ratio=ratio,
        base=base,
        method=method,
        lead=lead,
        participants=participants,
        team_size=team_size,
        communities=tuple(sorted(comms, key=lambda c: c.id)),
        inspectors=tuple(sorted(insp, key=lambda p: p.id)),
        conflicts=tuple(sorted(ties, key=_conflict_key)),
    )


def _conflict_key(x: Conflict) -> tuple[str, str, str, str]:
    return (x.person, x.community or "", x.town or "", x.note)


def draw_inputs(
    plan: Plan,
    communities: Iterable[Community],
    inspectors: Iterable[Inspector],
    conflicts: Iterable[Conflict] = (),
    *,
    team_size: int = 2,
) -> DrawInputs:
    """Validate and sort the inputs of a draw under ``plan``'s spot-check settings.

    Errors name the offending field (``communities[3].id``,
    ``inspectors[0].agency``, ``conflicts[2].person``, ...): duplicate ids,
    inspectors of agencies outside ``settings.spot_check.lead`` and
    ``participants``, conflicts naming unknown persons, communities or towns.
    """
    sc = plan.settings.spot_check
    return _build(
        plan_id=plan.id,
        ratio=sc.ratio,
        base=sc.base,
        method=sc.method,
        lead=sc.lead,
        participants=sc.participants,
        team_size=team_size,
        communities=communities,
        inspectors=inspectors,
        conflicts=conflicts,
        known_agencies=frozenset(a.id for a in plan.agencies),
    )


def inputs_from_data(data: Mapping[str, Any], plan: Plan) -> DrawInputs:
    """Inputs from JSON data: ``communities``, ``inspectors``, ``conflicts`` (and ``team_size``).

    Data carrying ``format`` is published inputs (:meth:`DrawInputs.from_data`)
    and must name ``plan``'s id; otherwise the settings come from ``plan``.
    """
    if not isinstance(data, Mapping):
        raise InvalidArgument("inputs", "expected a JSON object")
    if "format" in data:
        inputs = DrawInputs.from_data(data)
        if inputs.plan_id != plan.id:
            raise InvalidArgument(
                "plan", f"inputs are for plan {inputs.plan_id!r}, not {plan.id!r}"
            )
        return inputs
    unknown = sorted(set(data) - {"communities", "inspectors", "conflicts", "team_size"})
    if unknown:
        raise InvalidArgument(unknown[0], "unknown field in draw inputs")
    return draw_inputs(
        plan,
        _communities(_seq(data, "communities")),
        _inspectors(_seq(data, "inspectors")),
        _conflicts(_seq(data, "conflicts", required=False)),
        team_size=data.get("team_size", 2),
    )


def required_count(ratio: float, n: int) -> int:
    """``ceil(ratio x n)`` computed exactly on the decimal the plan writes (R-SPOT-RATIO).

    >>> required_count(0.1, 31), required_count(0.1, 30), required_count(0.1, 1)
    (4, 3, 1)
    """
    if n < 0:
        raise InvalidArgument("n", f"expected a count, got {n}")
    return math.ceil(Fraction(repr(ratio)) * n)


# =========================================================================== #
# Commit, draw, verify


_HEX = frozenset("0123456789abcdefABCDEF")
_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")


def _period(symbols: Sequence[object]) -> int:
    """The length of the shortest block that ``symbols`` repeats (prefix function)."""
    n = len(symbols)
    fail = [0] * n
    k = 0
    for i in range(1, n):
        while k and symbols[i] != symbols[k]:
            k = fail[k - 1]
        if symbols[i] == symbols[k]:
            k += 1
        fail[i] = k
    p = n - (fail[-1] if n else 0)
    return p if n % p == 0 else n


def _bits_per_symbol(block: Sequence[object]) -> float:
    if not all(isinstance(c, str) for c in block):
        return 8.0  # raw bytes
    chars = set(block)
    if chars <= set("0123456789"):
        return math.log2(10)
    if chars <= _HEX:
        return 4.0
    text = "".join(str(c) for c in block)
    if text.isascii() and text.isalpha() and (text.islower() or text.isupper()):
        return math.log2(26)
    if text.isascii() and text.isalpha():
        return math.log2(52)
    if text.isascii() and text.isalnum():
        return math.log2(62)
    if chars <= _BASE64:
        return 6.0
    return math.log2(95)  # printable ASCII, and the same flat rate for any other text


def seed_strength(seed: bytes | str) -> float:
    """The apparent entropy of a seed, in bits: a floor against obvious mistakes, not a proof.

    The seed is cut to the shortest block it repeats (``abcabc`` counts as
    ``abc``); one symbol repeated counts 0 bits.  Each symbol of the block then
    counts by the smallest alphabet that holds them all: decimal digits 3.32
    bits, hex digits 4, one-case letters 4.70, letters 5.70, letters and
    digits 5.95, the base64 alphabet 6, any other text 6.57 per character,
    bytes that are not printable ASCII 8.  Text-looking bytes count as text.

    >>> seed_strength("a" * 64)
    0.0
    >>> seed_strength("0123456789abcdef" * 2)  # 32 hex digits, but a block of 16 repeated
    64.0
    >>> seed_strength("9f86d081884c7d659a2feaa0c55ad015")  # secrets.token_hex(16)
    128.0
    >>> seed_strength(bytes(range(16)))
    128.0
    """
    if isinstance(seed, bytes) and all(0x20 <= b < 0x7F for b in seed):
        seed = seed.decode("ascii")
    symbols: Sequence[object] = list(seed)
    if not symbols:
        return 0.0
    block = symbols[: _period(symbols)]
    if len(set(block)) < 2:
        return 0.0
    return round(len(block) * _bits_per_symbol(block), 2)


def _seed_bytes(seed: bytes | str) -> bytes:
    if isinstance(seed, str):
        try:
            raw = _nfc(seed).encode("utf-8")  # any text, kept in NFC so that copies agree
        except UnicodeEncodeError:
            raise InvalidArgument("seed", "lone surrogate in the seed text") from None
    elif isinstance(seed, bytes):
        raw = seed
    else:
        raise InvalidArgument("seed", f"expected bytes or text, got {type(seed).__name__}")
    if len(raw) < MIN_SEED_BYTES:
        raise InvalidArgument(
            "seed",
            f"at least {MIN_SEED_BYTES} bytes (e.g. secrets.token_hex(16)); a short seed "
            "could be found from the commitment by trying",
            rule=_RANDOM_RULE,
        )
    if len(raw) > MAX_SEED_BYTES:
        raise InvalidArgument(
            "seed", f"{len(raw)} bytes, at most {MAX_SEED_BYTES} (种子过长)", rule=_RANDOM_RULE
        )
    bits = seed_strength(raw if isinstance(seed, bytes) else _nfc(seed))
    if bits < MIN_SEED_BITS:
        raise InvalidArgument(
            "seed",
            f"too weak: about {bits:g} bits of apparent entropy, at least {MIN_SEED_BITS} "
            "needed (种子随机性不足; one repeated character, a repeated block, or fewer than "
            "32 hex digits can be guessed from the commitment): make one with "
            "`fireflow spotcheck seed` or secrets.token_hex(32)",
            rule=_RANDOM_RULE,
        )
    return raw


def _tagged(tag: bytes, seed: bytes, inputs: DrawInputs) -> bytes:
    """SHA-256 over a domain tag, the length-prefixed seed and the inputs."""
    h = hashlib.sha256()
    h.update(FORMAT.encode() + b"\x00" + tag + b"\x00")
    h.update(len(seed).to_bytes(8, "big") + seed)
    h.update(inputs.canonical_bytes())
    return h.digest()


@attrs.frozen
class Commitment:
    """Published before the draw: it binds the (secret) seed and the inputs.

    ``commitment`` = SHA-256(tag, seed, canonical inputs); ``inputs_digest`` =
    SHA-256 of the canonical inputs, so anyone can check the published inputs.
    """

    plan_id: str
    inputs_digest: str
    commitment: str
    rules: tuple[str, ...] = (_RANDOM_RULE,)

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data."""
        return {
            "format": FORMAT,
            "plan": self.plan_id,
            "inputs_digest": self.inputs_digest,
            "commitment": self.commitment,
            "rules": list(self.rules),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Commitment:
        """Read a published commitment."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InvalidArgument("format", f"not a {FORMAT} commitment")
        return cls(
            plan_id=_ident(data.get("plan"), "plan"),
            inputs_digest=_hex(data.get("inputs_digest"), "inputs_digest"),
            commitment=_hex(data.get("commitment"), "commitment"),
            rules=tuple(str(r) for r in data.get("rules", (_RANDOM_RULE,))),
        )


def _hex(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise InvalidArgument(field, "expected 64 hex digits")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidArgument(field, "expected 64 hex digits") from None
    return value.lower()


def commit(inputs: DrawInputs, seed: bytes | str) -> Commitment:
    """The commitment to publish before the draw (R-SPOT-DOUBLE-RANDOM)."""
    raw = _seed_bytes(seed)
    return Commitment(inputs.plan_id, inputs.digest(), _tagged(b"commit", raw, inputs).hex())


@attrs.frozen
class Stratum:
    """One sampling stratum: the whole district (``key`` empty) or one town."""

    key: str
    population: int
    required: int


@attrs.frozen
class Assignment:
    """A drawn community and its team, with the rules.

    ``inspectors`` are the team's inspector ids, the first of a lead agency;
    ``agencies`` the agency of each, in the same order.
    """

    community: str
    town: str
    inspectors: tuple[str, ...]
    agencies: tuple[str, ...]
    rules: tuple[str, ...]


@attrs.frozen
class Draw:
    """The result of a draw: the strata, the drawn communities and their teams."""

    plan_id: str
    inputs_digest: str
    commitment: str
    method: str
    base: str
    ratio: str
    team_size: int
    strata: tuple[Stratum, ...]
    assignments: tuple[Assignment, ...]
    rules: tuple[str, ...]

    @property
    def communities(self) -> tuple[str, ...]:
        """The drawn community ids, in (town, id) order."""
        return tuple(a.community for a in self.assignments)

    def assignment(self, community: str) -> Assignment | None:
        """The assignment of a community, or None when it was not drawn."""
        for a in self.assignments:
            if a.community == community:
                return a
        return None

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data; :meth:`from_data` reads it back equal."""
        return {
            "format": FORMAT,
            "plan": self.plan_id,
            "inputs_digest": self.inputs_digest,
            "commitment": self.commitment,
            "method": self.method,
            "base": self.base,
            "ratio": self.ratio,
            "team_size": self.team_size,
            "strata": [
                {"key": s.key, "population": s.population, "required": s.required}
                for s in self.strata
            ],
            "assignments": [
                {
                    "community": a.community,
                    "town": a.town,
                    "inspectors": list(a.inspectors),
                    "agencies": list(a.agencies),
                    "rules": list(a.rules),
                }
                for a in self.assignments
            ],
            "rules": list(self.rules),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Draw:
        """Read a published draw."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InvalidArgument("format", f"not a {FORMAT} draw")
        try:
            return cls(
                plan_id=str(data["plan"]),
                inputs_digest=str(data["inputs_digest"]),
                commitment=str(data["commitment"]),
                method=str(data["method"]),
                base=str(data["base"]),
                ratio=str(data["ratio"]),
                team_size=int(data["team_size"]),
                strata=tuple(
                    Stratum(str(s["key"]), int(s["population"]), int(s["required"]))
                    for s in data["strata"]
                ),
                assignments=tuple(
                    Assignment(
                        str(a["community"]),
                        str(a["town"]),
                        tuple(str(x) for x in a["inspectors"]),
                        tuple(str(x) for x in a["agencies"]),
                        tuple(str(x) for x in a["rules"]),
                    )
                    for a in data["assignments"]
                ),
                rules=tuple(str(r) for r in data["rules"]),
            )
        except KeyError as exc:
            raise InvalidArgument(str(exc.args[0]), "missing field in draw data") from None
        except (TypeError, ValueError) as exc:
            raise InvalidArgument("draw", f"malformed draw data: {exc}") from None


def _below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n): rejection sampling on ``getrandbits`` (documented, stable)."""
    k = n.bit_length()
    r = rng.getrandbits(k)
    while r >= n:
        r = rng.getrandbits(k)
    return r


def _sample(rng: random.Random, items: Sequence[Community], k: int) -> list[Community]:
    """The first ``k`` places of a Fisher-Yates shuffle of ``items`` (already sorted)."""
    pool = list(items)
    for i in range(k):
        j = i + _below(rng, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


def _pick(rng: random.Random, pool: Sequence[Inspector], load: Mapping[str, int]) -> Inspector:
    """A uniform pick among the least-loaded inspectors of ``pool`` (sorted by id)."""
    least = min(load[p.id] for p in pool)
    fewest = [p for p in pool if load[p.id] == least]
    return fewest[_below(rng, len(fewest))]


def _strata(inputs: DrawInputs) -> list[tuple[str, list[Community]]]:
    if inputs.base == "town":
        by_town: dict[str, list[Community]] = {}
        for c in inputs.communities:
            by_town.setdefault(c.town, []).append(c)
        return [(t, by_town[t]) for t in sorted(by_town)]
    if inputs.base == "with_problems":
        return [("", [c for c in inputs.communities if c.has_problems])]
    return [("", list(inputs.communities))]


def _conflicted(inputs: DrawInputs) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    by_community = {(x.person, x.community) for x in inputs.conflicts if x.community is not None}
    by_town = {(x.person, x.town) for x in inputs.conflicts if x.town is not None}
    return by_community, by_town


def _team(
    rng: random.Random,
    inputs: DrawInputs,
    c: Community,
    load: dict[str, int],
    ties: tuple[set[tuple[str, str]], set[tuple[str, str]]],
) -> list[Inspector]:
    by_community, by_town = ties
    eligible = [
        p
        for p in inputs.inspectors
        if (p.id, c.id) not in by_community and (p.id, c.town) not in by_town
    ]
    leads = [p for p in eligible if p.agency in inputs.lead]
    if not leads:
        raise NoEligibleInspector(
            c.id,
            c.town,
            f"every inspector of the lead agencies ({', '.join(inputs.lead)}) "
            "is tied to it or the pool has none",
        )
    team = [_pick(rng, leads, load)]
    while len(team) < inputs.team_size:
        rest = [p for p in eligible if p not in team]
        if not rest:
            break
        agencies = {p.agency for p in team}
        fresh = [p for p in rest if p.agency not in agencies]
        team.append(_pick(rng, fresh or rest, load))
    for p in team:
        load[p.id] += 1
    return team


def draw(inputs: DrawInputs, seed: bytes | str) -> Draw:
    """Draw the communities and their teams, deterministically from ``inputs`` and ``seed``.

    The generator is :class:`random.Random` seeded with SHA-256(tag, seed,
    canonical inputs); every list is sorted before it is drawn from.  Per
    stratum (the district, or each town), ``required_count(ratio, N)``
    communities are taken from a Fisher-Yates shuffle; with ``double_random``
    each drawn community (in (town, id) order) gets a team: one inspector of a
    lead agency, then inspectors of agencies not yet in the team where
    available, each pick uniform among the eligible inspectors with the fewest
    assignments so far.  Raises :class:`NoEligibleInspector` naming a community
    no valid team can visit.
    """
    raw = _seed_bytes(seed)
    rng = random.Random(int.from_bytes(_tagged(b"draw", raw, inputs), "big"))  # noqa: S311 (a reproducible public draw, not a secret)
    strata: list[Stratum] = []
    chosen: list[Community] = []
    for key, members in _strata(inputs):
        k = required_count(inputs.ratio, len(members))
        strata.append(Stratum(key, len(members), k))
        chosen.extend(_sample(rng, members, k))
    chosen.sort(key=lambda c: (c.town, c.id))
    double = inputs.method == "double_random"
    rules = (_RATIO_RULE, _RANDOM_RULE) if double else (_RATIO_RULE,)
    load = {p.id: 0 for p in inputs.inspectors}
    ties = _conflicted(inputs)
    assignments: list[Assignment] = []
    for c in chosen:
        if double:
            team = _team(rng, inputs, c, load, ties)
            assignments.append(
                Assignment(
                    c.id,
                    c.town,
                    tuple(p.id for p in team),
                    tuple(p.agency for p in team),
                    rules,
                )
            )
        else:
            assignments.append(Assignment(c.id, c.town, (), (), rules))
    return Draw(
        plan_id=inputs.plan_id,
        inputs_digest=inputs.digest(),
        commitment=_tagged(b"commit", raw, inputs).hex(),
        method=inputs.method,
        base=inputs.base,
        ratio=repr(inputs.ratio),
        team_size=inputs.team_size,
        strata=tuple(strata),
        assignments=tuple(assignments),
        rules=rules,
    )


@attrs.frozen
class Check:
    """One check of a verification: its name, whether it holds, and why not."""

    name: str
    ok: bool
    detail: str = ""


@attrs.frozen
class VerifyResult:
    """The outcome of :func:`verify`; true when every check holds."""

    ok: bool
    checks: tuple[Check, ...]
    rules: tuple[str, ...] = (_RATIO_RULE, _RANDOM_RULE)

    def __bool__(self) -> bool:
        return self.ok

    def to_data(self) -> dict[str, Any]:
        """JSON-compatible data."""
        return {
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "rules": list(self.rules),
        }


def verify(
    commitment: Commitment, inputs: DrawInputs, seed: bytes | str, result: Draw
) -> VerifyResult:
    """Re-run a published draw and check it against its commitment.

    Checks: the inputs match the committed digest; the seed opens the
    commitment; re-running the draw gives the published draw; every stratum
    has its ``ceil(ratio x N)`` distinct communities; no inspector visits a
    community or town they are tied to.  A seed too short to be valid fails
    the ``seed`` check instead of raising.
    """
    checks: list[Check] = []
    digest = inputs.digest()
    checks.append(
        Check(
            "plan",
            commitment.plan_id == inputs.plan_id == result.plan_id,
            f"commitment {commitment.plan_id}, inputs {inputs.plan_id}, draw {result.plan_id}",
        )
    )
    checks.append(
        Check(
            "inputs",
            commitment.inputs_digest == digest == result.inputs_digest,
            "the published inputs are not the committed ones"
            if commitment.inputs_digest != digest
            else "the draw was made from other inputs"
            if result.inputs_digest != digest
            else "",
        )
    )
    try:
        opened = commit(inputs, seed)
        rerun: Draw | None = draw(inputs, seed)
        checks.append(Check("seed", True))
    except NoEligibleInspector as exc:
        opened, rerun = commit(inputs, seed), None
        checks.append(Check("seed", True))
        checks.append(Check("draw", False, str(exc)))
    except InvalidArgument as exc:
        checks.append(Check("seed", False, str(exc)))
        return VerifyResult(False, tuple(checks))
    checks.append(
        Check(
            "commitment",
            opened.commitment == commitment.commitment == result.commitment,
            "" if opened.commitment == commitment.commitment else "the seed does not open it",
        )
    )
    if rerun is not None:
        same = rerun.to_data() == result.to_data()
        checks.append(Check("draw", same, "" if same else "re-running gives another draw"))
    drawn = [a.community for a in result.assignments]
    distinct = len(set(drawn)) == len(drawn)
    per_key: dict[str, set[str]] = {}
    for a in result.assignments:
        per_key.setdefault(a.town if result.base == "town" else "", set()).add(a.community)
    short = [
        s.key or "district"
        for s in result.strata
        if len(per_key.get(s.key, set())) < required_count(inputs.ratio, s.population)
        or s.required < required_count(inputs.ratio, s.population)
    ]
    checks.append(
        Check(
            "ratio",
            distinct and not short,
            ("" if distinct else "a community is drawn twice; ")
            + (f"too few communities in {', '.join(short)}" if short else ""),
        )
    )
    by_community, by_town = _conflicted(inputs)
    clashes = [
        f"{p}@{a.community}"
        for a in result.assignments
        for p in a.inspectors
        if (p, a.community) in by_community or (p, a.town) in by_town
    ]
    checks.append(Check("conflicts", not clashes, ", ".join(clashes)))
    return VerifyResult(all(c.ok for c in checks), tuple(checks))


# =========================================================================== #
# Findings reopen tickets (R-TKT-SPOTCHECK)


@attrs.frozen
class Finding:
    """The on-site result for one category in a spot-checked community (附件3).

    ``compliant`` is False when the check finds the category's problem still
    there (整治不彻底、整改不到位).
    """

    community: str
    category: str
    compliant: bool
    note: str = ""


@attrs.frozen
class ReopenOrder:
    """A ``reopen`` command for the engine, with the finding behind it and its rules."""

    command: Command
    community: str
    category: str
    rules: tuple[str, ...]


@attrs.frozen
class Unmatched:
    """A finding with no ticket to reopen: a new hazard, or a ticket still open.

    ``open_tickets`` lists the community's tickets of that category that are
    not closed yet (nothing to reopen); when empty, open a new ticket with
    source ``spot_check``.
    """

    finding: Finding
    open_tickets: tuple[str, ...]
    reason_zh: str
    reason_en: str
    rules: tuple[str, ...]


@attrs.frozen
class SpotCheckOrders:
    """What the findings of a spot check ask of the engine."""

    reopen: tuple[ReopenOrder, ...]
    unmatched: tuple[Unmatched, ...]


class OutsideSpotCheckPhase(InvalidArgument):
    """A spot-check finding (or reopening) outside the spot-check phase (R-SPOT-WINDOW, 五(四)).

    ``phase`` is the phase the instant falls in (None: outside the campaign),
    ``window`` the spot-check phase's first and last day.
    """

    def __init__(self, field: str, message: str, *, rule: str, phase: str | None,
                 window: tuple[str, str]) -> None:  # fmt: skip
        self.phase = phase
        self.window = window
        super().__init__(field, message, rule=rule)


def check_spot_check_window(plan: Plan, at: datetime, field: str = "at") -> None:
    """Refuse an instant outside the spot-check phase (``settings.spot_check.phase``).

    五(四) 抽查核实阶段（7月16日至10月15日）: findings and the reopening they order
    are accepted only inside it (R-SPOT-WINDOW, a default reading).

    >>> import pendulum
    >>> from fireflow import load_plan
    >>> plan = load_plan("changle-2022")
    >>> check_spot_check_window(plan, pendulum.datetime(2022, 10, 15, 23, tz="Asia/Shanghai"))
    >>> check_spot_check_window(plan, pendulum.datetime(2022, 10, 16, 9, tz="Asia/Shanghai"))
    Traceback (most recent call last):
    ...
    fireflow.rules.spotcheck.OutsideSpotCheckPhase: at: 2022-10-16 is in ... [R-SPOT-WINDOW]
    """
    if not isinstance(at, datetime):
        raise InvalidArgument(field, f"expected an aware datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetime(field)
    window = plan.spot_check_window()
    day = plan.local_date(at, field)
    if window is None or day in window:
        return  # no window set (settings.spot_check.phase: null): findings at any time
    current = plan.phase_on(day)
    where = f"{current.name_zh} {current.id}" if current is not None else "outside the campaign"
    raise OutsideSpotCheckPhase(
        field,
        f"{day} is in {where}: spot-check findings are accepted only from {window.start} "
        f"to {window.end} (抽查核实阶段之外不受理抽查结果)",
        rule=plan.cite("R-SPOT-WINDOW"),
        phase=None if current is None else current.id,
        window=(window.start.isoformat(), window.end.isoformat()),
    )


def findings_to_commands(
    plan: Plan,
    result: Draw,
    findings: Iterable[Finding],
    tickets: Iterable[TicketState],
    at: datetime,
    *,
    person: str | None = None,
) -> SpotCheckOrders:
    """``reopen`` commands for the closed tickets the spot check found not rectified.

    For each non-compliant finding in a drawn community, every ticket of that
    community and category whose state allows ``reopen`` (passed, signed off,
    archived) gets a ``reopen`` command (R-TKT-SPOTCHECK) from the team's
    lead-agency inspector (or the plan's first lead agency when the draw has
    no teams), with a deterministic ``command_id``.  The engine then decides
    and records them.  Findings for communities not in the draw, or for
    unknown categories, raise :class:`InvalidArgument` naming the finding;
    findings made (``at``) outside the spot-check phase raise
    :class:`OutsideSpotCheckPhase` (R-SPOT-WINDOW, 五(四)).
    """
    check_spot_check_window(plan, at)
    if person is not None:
        check_json_value(person, "person")
    table = compiled_table()
    by_key: dict[tuple[str, str], list[TicketState]] = {}
    for t in sorted(tickets, key=lambda s: s.ticket_id):
        by_key.setdefault((t.community, t.category), []).append(t)
    reopen: list[ReopenOrder] = []
    unmatched: list[Unmatched] = []
    done: set[str] = set()
    indexed = sorted(enumerate(findings), key=lambda f: (f[1].community, f[1].category, f[0]))
    for i, f in indexed:
        assignment = result.assignment(f.community)
        if assignment is None:
            raise InvalidArgument(
                f"findings[{i}].community",
                f"community {f.community!r} was not drawn for the spot check",
                rule=plan.cite("R-TKT-SPOTCHECK"),
            )
        try:
            category = plan.category(f.category)
        except InvalidArgument as exc:
            raise InvalidArgument(f"findings[{i}].category", str(exc)) from None
        check_json_value(f.note, f"findings[{i}].note")
        if f.compliant:
            continue
        agency, who = _reopener(plan, assignment)
        candidates = by_key.get((f.community, f.category), [])
        closed = [t for t in candidates if (t.state, "reopen") in table]
        if not closed:
            still_open = tuple(t.ticket_id for t in candidates)
            unmatched.append(
                Unmatched(
                    f,
                    still_open,
                    "相关隐患仍在整改中"
                    if still_open
                    else "台账中无此隐患，应以抽查为来源登记新隐患",
                    "the tickets are still open"
                    if still_open
                    else "no ticket in the ledger: record a new one with source spot_check",
                    (plan.cite("R-TKT-SPOTCHECK"),)
                    if still_open
                    else (plan.cite("R-TKT-SPOTCHECK"), plan.cite("R-TKT-OPEN")),
                )
            )
            continue
        reason = f"抽查发现整改不到位：{category.name.zh}"
        if f.note:
            reason += f"；{f.note}"
        for t in closed:
            if t.ticket_id in done:
                continue
            done.add(t.ticket_id)
            cid = hashlib.sha256(f"{result.commitment}\x00{t.ticket_id}".encode()).hexdigest()
            command = Command(
                kind="reopen",
                ticket_id=t.ticket_id,
                at=at,
                actor=ActorIn(agency=agency, person=who if person is None else person),
                command_id=f"spotcheck-{cid[:32]}",
                reason=reason[:2000],
            )
            reopen.append(
                ReopenOrder(command, f.community, f.category, (plan.cite("R-TKT-SPOTCHECK"),))
            )
    return SpotCheckOrders(tuple(reopen), tuple(unmatched))


def _reopener(plan: Plan, assignment: Assignment) -> tuple[str, str]:
    """The team's first lead-agency inspector, or the plan's first lead agency."""
    lead = plan.settings.spot_check.lead
    for person, agency in zip(assignment.inspectors, assignment.agencies, strict=False):
        if agency in lead:
            return agency, person
    return lead[0], ""
