"""Known-answer vectors for every format fireflow publishes (docs/vectors.md).

Each expected value is a literal, written once in docs/vectors.md and copied
here; none is computed with the library's own function.  The hash chains, the
heads digest and the spot-check commitment are also recomputed here with
``hashlib`` and ``json`` from the formulas the page states, and the draw by a
short re-implementation of the algorithm in docs/spotcheck.md, so that a
change of format (or a one-line break of a chain) fails loudly, and another
implementation can check itself against the same figures.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from math import ceil

import pytest

from fireflow.events import Actor, Event, Evidence, canonical_bytes
from fireflow.rules.spotcheck import DrawInputs, commit, draw, verify
from fireflow.store import MemoryStore, SQLiteStore
from fireflow.store.chain import (
    GENESIS,
    Checkpoint,
    checkpoint,
    global_link,
    heads_digest,
    ticket_link,
)
from fireflow.store.chain import verify as verify_store

CST = timezone(timedelta(hours=8))

# --------------------------------------------------------------------------- #
# Vector 1: canonical event bytes (docs/vectors.md, "Canonical event bytes")

E1 = Event(
    event_id="T2/1",
    ticket_id="T2",
    seq=1,
    kind="report",
    at=datetime(2022, 3, 21, 9, 30, tzinfo=CST),
    actor=Actor("town", "王科长"),
    payload={
        "town": "金峰镇",
        "community": "小区A",
        "category": "evacuation_blocked",
        "location": "inside",
        "source": "inspection",
    },
    evidence=(Evidence("photo_before", "b" * 64, "东门"),),
    rules=("R-TKT-REPORT",),
)
E2 = Event(
    event_id="T1/1",
    ticket_id="T1",
    seq=1,
    kind="report",
    at=datetime(2022, 3, 21, 10, 0, tzinfo=CST),
    actor=Actor("fire"),
    payload={"note": "Cafe\u0301", "category": "evacuation_blocked"},  # decomposed é
    rules=("R-TKT-REPORT",),
)
E3 = Event(
    event_id="T2/2",
    ticket_id="T2",
    seq=2,
    kind="route",
    at=datetime(2022, 3, 22, 8, 0, tzinfo=CST),
    actor=Actor("town"),
    rules=("R-ROUTE-EVAC",),
)

E1_BYTES = (
    '{"actor":{"agency":"town","person":"王科长"},"at":"2022-03-21T09:30:00+08:00",'
    '"event_id":"T2/1","evidence":[{"kind":"photo_before","note":"东门","sha256":'
    '"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}],"kind":"report",'
    '"payload":{"category":"evacuation_blocked","community":"小区A","location":"inside",'
    '"source":"inspection","town":"金峰镇"},"rules":["R-TKT-REPORT"],"seq":1,"ticket_id":"T2"}'
).encode()
E2_BYTES = (
    '{"actor":{"agency":"fire","person":""},"at":"2022-03-21T10:00:00+08:00",'
    '"event_id":"T1/1","evidence":[],"kind":"report","payload":{"category":'
    '"evacuation_blocked","note":"Caf\u00e9"},"rules":["R-TKT-REPORT"],"seq":1,"ticket_id":"T1"}'
).encode()
E3_BYTES = (
    b'{"actor":{"agency":"town","person":""},"at":"2022-03-22T08:00:00+08:00",'
    b'"event_id":"T2/2","evidence":[],"kind":"route","payload":{},"rules":["R-ROUTE-EVAC"],'
    b'"seq":2,"ticket_id":"T2"}'
)
# SHA-256 of each event's bytes, as printed in docs/vectors.md
BYTES_SHA256 = {
    "T2/1": "7285a1d4570039760d57457b872288a3d729295d398b425874a2c88230e22c54",
    "T1/1": "9d85c840588d8051c20da4b6e40dbe32766971e69a72fb9b7b00b5f4ef233108",
    "T2/2": "08cc02ff0e3a982e54587f8dbdc51bf3f7bec255c35481a40a1b09754ab104d2",
}


def test_canonical_event_bytes():
    assert canonical_bytes(E1) == E1_BYTES
    assert canonical_bytes(E2) == E2_BYTES
    assert canonical_bytes(E3) == E3_BYTES
    assert E2_BYTES.count(b"\xc3\xa9") == 1  # the decomposed e + U+0301 is stored as NFC é


def test_canonical_bytes_fingerprints():
    got = {
        e.event_id: hashlib.sha256(b).hexdigest()
        for e, b in ((E1, E1_BYTES), (E2, E2_BYTES), (E3, E3_BYTES))
    }
    assert got == BYTES_SHA256


def test_canonical_bytes_follow_the_documented_rule():
    """json.dumps with sorted keys, no white space, UTF-8 unescaped: the page's algorithm."""
    data = {
        "event_id": "T2/2",
        "ticket_id": "T2",
        "seq": 2,
        "kind": "route",
        "at": "2022-03-22T08:00:00+08:00",
        "actor": {"agency": "town", "person": ""},
        "payload": {},
        "evidence": [],
        "rules": ["R-ROUTE-EVAC"],
    }
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert text.encode("utf-8") == E3_BYTES


# --------------------------------------------------------------------------- #
# Vector 2: the ticket and global chains (docs/vectors.md, "Hash chains")

# Appended in this global order: T2/1, T1/1, T2/2.
ORDER = ((E1, E1_BYTES), (E2, E2_BYTES), (E3, E3_BYTES))
TICKET_HASHES = (
    "49e12de520a860deb907751c4f32f77b7115f7d2cac4822a8c193a450dc8422e",  # T2 after T2/1
    "5578413d5e30632acab5f92f3f5362ea88a1464516f604fdb3097c89d10f2725",  # T1 after T1/1
    "11ff6b07ab491bcff69f9b8af7e5c0aa766503e80b8b4667e02d57c9970c1f74",  # T2 after T2/2
)
GLOBAL_HASHES = (
    "6b5cb87bb36270bf2d7d769d1010b9e6014397f4467f2821754ecafcea2a2d88",
    "1f80e0e275f2cd154647491140d0b6af03ac8361703c5b59b116dc5b9d361b3b",
    "c71e0ec48dcd16866c03866e2627a934307c5c007cbc9b0ab129d26e9bc37149",
)
HEADS_JSON = (
    '[["T1",1,"5578413d5e30632acab5f92f3f5362ea88a1464516f604fdb3097c89d10f2725"],'
    '["T2",2,"11ff6b07ab491bcff69f9b8af7e5c0aa766503e80b8b4667e02d57c9970c1f74"]]'
)
HEADS_DIGEST = "cfd2d4cc5a4faae7d3f955bc34732c6ec64d6fb589060ba90b217c23399e9cd9"
EMPTY_HEADS_DIGEST = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
CHECKPOINT_JSON = """\
{
  "at": "2022-03-22T18:00:00+08:00",
  "count": 3,
  "format": "fireflow.checkpoint/1",
  "global_head": "c71e0ec48dcd16866c03866e2627a934307c5c007cbc9b0ab129d26e9bc37149",
  "tickets": 2,
  "tickets_digest": "cfd2d4cc5a4faae7d3f955bc34732c6ec64d6fb589060ba90b217c23399e9cd9"
}
"""


def _sha(*parts: bytes) -> str:
    return hashlib.sha256(b"".join(parts)).hexdigest()


def test_chains_by_the_documented_formula():
    """h(n) = SHA256(tag || h(n-1) as 64 hex digits || "\\n" || bytes), from 64 zeros."""
    heads = {"T1": "0" * 64, "T2": "0" * 64}
    g = "0" * 64
    for (e, data), want_t, want_g in zip(ORDER, TICKET_HASHES, GLOBAL_HASHES, strict=True):
        heads[e.ticket_id] = _sha(
            b"fireflow/ticket/1\n", heads[e.ticket_id].encode("ascii"), b"\n", data
        )
        g = _sha(b"fireflow/global/1\n", g.encode("ascii"), b"\n", data)
        assert (heads[e.ticket_id], g) == (want_t, want_g)


def test_library_links_give_the_vector():
    assert GENESIS == "0" * 64
    t = {"T1": GENESIS, "T2": GENESIS}
    g = GENESIS
    for (e, data), want_t, want_g in zip(ORDER, TICKET_HASHES, GLOBAL_HASHES, strict=True):
        t[e.ticket_id] = ticket_link(t[e.ticket_id], data)
        g = global_link(g, data)
        assert (t[e.ticket_id], g) == (want_t, want_g)
    # the second T2 link depends on the first: the chain really chains
    assert ticket_link(GENESIS, E3_BYTES) != TICKET_HASHES[2]
    assert global_link(GENESIS, E3_BYTES) != GLOBAL_HASHES[2]


def _filled(store):
    store.append("T2", [E1], 0)
    store.append("T1", [E2], 0)
    store.append("T2", [E3], 1)
    return store


@pytest.fixture(params=["memory", "sqlite"])
def vector_store(request, tmp_path):
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "v.db")
    yield _filled(store)
    if request.param == "sqlite":
        store.close()


def test_stored_rows_carry_the_vector(vector_store):
    rows = list(vector_store.rows())
    assert [(r.position, r.ticket_id, r.seq, r.event_id) for r in rows] == [
        (0, "T2", 1, "T2/1"),
        (1, "T1", 1, "T1/1"),
        (2, "T2", 2, "T2/2"),
    ]
    assert [bytes(r.data) for r in rows] == [E1_BYTES, E2_BYTES, E3_BYTES]
    assert tuple(r.ticket_hash for r in rows) == TICKET_HASHES
    assert tuple(r.global_hash for r in rows) == GLOBAL_HASHES
    assert vector_store.head("T1") == TICKET_HASHES[1]
    assert vector_store.head("T2") == TICKET_HASHES[2]


def test_heads_digest_by_the_documented_formula():
    assert (
        json.dumps(
            [["T1", 1, TICKET_HASHES[1]], ["T2", 2, TICKET_HASHES[2]]],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        == HEADS_JSON
    )
    assert _sha(HEADS_JSON.encode()) == HEADS_DIGEST
    assert _sha(b"[]") == EMPTY_HEADS_DIGEST


def test_library_heads_digest_sorts_by_ticket_id():
    # given in store order (T2 first): the digest is over the heads sorted by ticket id
    heads = {"T2": (2, TICKET_HASHES[2]), "T1": (1, TICKET_HASHES[1])}
    assert list(heads) == ["T2", "T1"]
    assert heads_digest(heads) == HEADS_DIGEST
    assert heads_digest({}) == EMPTY_HEADS_DIGEST


def test_checkpoint_file(vector_store):
    cp = checkpoint(vector_store, datetime(2022, 3, 22, 18, 0, tzinfo=CST))
    assert cp.to_json() == CHECKPOINT_JSON
    assert Checkpoint.from_json(CHECKPOINT_JSON) == cp
    assert verify_store(vector_store, Checkpoint.from_json(CHECKPOINT_JSON)).ok


def test_checkpoint_of_the_first_two_events():
    store = MemoryStore()
    store.append("T2", [E1], 0)
    store.append("T1", [E2], 0)
    cp = checkpoint(store, datetime(2022, 3, 21, 18, 0, tzinfo=CST))
    digest = _sha(f'[["T1",1,"{TICKET_HASHES[1]}"],["T2",1,"{TICKET_HASHES[0]}"]]'.encode())
    assert (cp.count, cp.global_head, cp.tickets, cp.tickets_digest) == (
        2,
        GLOBAL_HASHES[1],
        2,
        digest,
    )
    # the full store verifies against this earlier checkpoint too
    assert verify_store(_filled(MemoryStore()), cp).ok


# --------------------------------------------------------------------------- #
# Vector 3: spot-check inputs, commitment and draw (docs/vectors.md, "Spot check")

SEED = "2022-07-16 长乐区抽查 e3b9a1c47d"
INPUTS = {
    "format": "fireflow.spotcheck/1",
    "plan": "changle-2022",
    "ratio": "0.1",
    "rounding": "ceil",
    "base": "town",
    "method": "double_random",
    "lead": ["fire", "housing"],
    "participants": ["police", "urban"],
    "team_size": 2,
    "communities": [
        {"id": f"C{i:02}", "town": "金峰镇", "name": "", "has_problems": False}
        for i in range(1, 12)
    ]
    + [
        {"id": f"C{i:02}", "town": "首占镇", "name": "", "has_problems": False}
        for i in range(12, 21)
    ],
    "inspectors": [
        {"id": "F1", "agency": "fire", "name": ""},
        {"id": "H1", "agency": "housing", "name": ""},
        {"id": "H2", "agency": "housing", "name": ""},
        {"id": "P1", "agency": "police", "name": ""},
        {"id": "U1", "agency": "urban", "name": ""},
    ],
    "conflicts": [
        {"person": "H1", "community": None, "town": "金峰镇", "note": ""},
        {"person": "U1", "community": "C13", "town": None, "note": ""},
    ],
}
INPUTS_DIGEST = "95520a35adc22b832a8ed9d00880b4a2c4f31dfa4339b93c9d7e5fb255212d9f"
COMMITMENT = "83a048f96b98c638c8fa946e0cb0fa259671b228073494bd477197ead6cadeaf"
STRATA = [("金峰镇", 11, 2), ("首占镇", 9, 1)]
ASSIGNMENTS = [
    ("C04", "金峰镇", ("H2", "P1")),
    ("C05", "金峰镇", ("F1", "U1")),
    ("C14", "首占镇", ("H1", "P1")),
]


def _canonical_inputs() -> bytes:
    text = json.dumps(INPUTS, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


def _tagged(tag: bytes) -> bytes:
    seed = SEED.encode("utf-8")
    return hashlib.sha256(
        b"fireflow.spotcheck/1\x00" + tag + b"\x00" + len(seed).to_bytes(8, "big") + seed
        + _canonical_inputs()
    ).digest()  # fmt: skip


def test_spotcheck_vector_by_the_documented_formula():
    assert hashlib.sha256(_canonical_inputs()).hexdigest() == INPUTS_DIGEST
    assert _tagged(b"commit").hex() == COMMITMENT


def test_spotcheck_vector_from_the_library():
    inputs = DrawInputs.from_data(INPUTS)
    assert inputs.to_data() == INPUTS
    assert inputs.canonical_bytes() == _canonical_inputs()
    assert inputs.digest() == INPUTS_DIGEST
    c = commit(inputs, SEED)
    assert (c.inputs_digest, c.commitment) == (INPUTS_DIGEST, COMMITMENT)
    d = draw(inputs, SEED)
    assert (d.inputs_digest, d.commitment) == (INPUTS_DIGEST, COMMITMENT)
    assert [(s.key, s.population, s.required) for s in d.strata] == STRATA
    assert [(a.community, a.town, a.inspectors) for a in d.assignments] == ASSIGNMENTS
    assert bool(verify(c, inputs, SEED, d))


def _below(rng: random.Random, n: int) -> int:
    r = rng.getrandbits(n.bit_length())
    while r >= n:
        r = rng.getrandbits(n.bit_length())
    return r


def test_spotcheck_draw_reimplemented_from_the_docs():
    """The draw of docs/spotcheck.md ("How the draw works"), written again from its words."""
    rng = random.Random(int.from_bytes(_tagged(b"draw"), "big"))
    towns = sorted({c["town"] for c in INPUTS["communities"]})
    chosen, strata = [], []
    for town in towns:
        pool = sorted(c["id"] for c in INPUTS["communities"] if c["town"] == town)
        k = ceil(Fraction(INPUTS["ratio"]) * len(pool))
        strata.append((town, len(pool), k))
        for i in range(k):  # Fisher-Yates, first k places
            j = i + _below(rng, len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        chosen += [(town, c) for c in pool[:k]]
    assert strata == STRATA
    agency = {p["id"]: p["agency"] for p in INPUTS["inspectors"]}
    load = dict.fromkeys(agency, 0)

    def pick(cands):
        least = min(load[p] for p in cands)
        fewest = [p for p in cands if load[p] == least]
        return fewest[_below(rng, len(fewest))]

    out = []
    for town, c in sorted(chosen):
        ties = INPUTS["conflicts"]
        tied = {x["person"] for x in ties if c == x["community"] or town == x["town"]}
        eligible = sorted(p for p in agency if p not in tied)
        team = [pick([p for p in eligible if agency[p] in INPUTS["lead"]])]
        while len(team) < INPUTS["team_size"]:
            rest = [p for p in eligible if p not in team]
            fresh = [p for p in rest if agency[p] not in {agency[q] for q in team}]
            team.append(pick(fresh or rest))
        for p in team:
            load[p] += 1
        out.append((c, town, tuple(team)))
    assert out == ASSIGNMENTS
