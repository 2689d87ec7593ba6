"""The floor under two targets: what the required work alone costs per event.

Two targets of the store and the simulator are close to, or below, the cost of
the objects and bytes that the rest of their issues require, whatever the code
around them does.  This script measures that work alone, on this machine, so
the figures in ``benchmarks/README.md`` can be checked:

* **Simulator** (1M tickets in under 60 s, through the real ``decide`` and
  ``evolve``): per event, the new ``TicketState`` (30 fields, frozen), the copy of
  the old state's values that ``evolve`` starts from, the ``Event`` that
  ``decide`` returns (slots filled directly, payload text checked for NFC), and
  the ``Command`` the simulator hands to ``decide``.  No rule is checked.
* **Batched appends** (within 2x of raw ``sqlite3`` inserts): per event, the
  canonical bytes (the event's JSON data, sorted, by ``orjson``) and the two
  SHA-256 links of the chains.  No input is checked.

Run from the repository root: ``python benchmarks/bench_floor.py``.  It prints
microseconds per event (best of 5) and what they add up to at the benchmarks'
sizes.  ``FIREFLOW_BENCH_FLOOR_CALLS`` (default 200000) sets the calls timed per
object; the appends take a hundredth of that in rounds of 100 events.  Exit
status 0, or 2 for a bad setting.
"""

from __future__ import annotations

import hashlib
import timeit

import bench_store  # the store benchmark's event histories (this folder is on the path)
import orjson
import pendulum
from _common import env_int

from fireflow import load_plan
from fireflow.events import Actor, Event, _json_data, trusted_event
from fireflow.ticket import ActorIn, Command, TicketState
from fireflow.ticket.folding import _STATE_VALUES

#: Events of the 1M-ticket simulator benchmark (bench_sim.py, seed 2022).
SIM_EVENTS = 8_855_584
REPEAT = 5


def best_us(fn, number: int) -> float:
    """Best of REPEAT runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=REPEAT)) / number * 1e6


def sim_floor(n: int) -> dict[str, float]:
    at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
    state = TicketState("T0000001")
    values = list(_STATE_VALUES(state))
    actor = Actor("property")
    template = Command.model_construct(
        kind="rectify", ticket_id="T0000001", at=at, actor=ActorIn(agency="property")
    )
    return {
        "TicketState(30 fields)": best_us(lambda: TicketState(*values), n),
        "copy of the state's values": best_us(lambda: list(_STATE_VALUES(state)), n),
        "Event (decide's)": best_us(
            lambda: trusted_event(
                "T0000001/4",
                "T0000001",
                4,
                "rectify",
                at,
                actor,
                {"reason": "已整改"},
                (),
                ("R-AUTH-ROLES",),
            ),
            n,
        ),
        "Command (the simulator's)": best_us(
            lambda: Command.trusted(template, {"ticket_id": "T0000001", "at": at}), n
        ),
    }


def _encode(e: Event) -> bytes:
    return orjson.dumps(_json_data(e), option=orjson.OPT_SORT_KEYS)


def append_floor(rounds: int) -> dict[str, float]:
    events = bench_store.long_history(load_plan("changle-2022"), bench_store.BATCH)
    data = [_encode(e) for e in events]
    prev = b"0" * 64

    def links() -> None:
        for d in data:
            hashlib.sha256(b"fireflow/ticket/1\n" + prev + b"\n" + d).hexdigest()
            hashlib.sha256(b"fireflow/global/1\n" + prev + b"\n" + d).hexdigest()

    per = rounds * len(events)
    return {
        "canonical bytes (orjson)": best_us(lambda: [_encode(e) for e in events], rounds)
        * rounds
        / per,
        "two SHA-256 links": best_us(links, rounds) * rounds / per,
    }


def show(title: str, parts: dict[str, float]) -> float:
    print(title)
    for name, us in parts.items():
        print(f"  {name:<30} {us:6.2f} us/event")
    total = sum(parts.values())
    print(f"  {'sum':<30} {total:6.2f} us/event")
    return total


def main() -> int:
    calls = env_int("FIREFLOW_BENCH_FLOOR_CALLS", 200_000)
    sim = show("simulator: objects the real decide/evolve path builds per event", sim_floor(calls))
    print(
        f"  at the 1M benchmark's {SIM_EVENTS:,} events: {sim * SIM_EVENTS / 1e6:.0f} s "
        "(the target is 60 s for everything)"
    )
    print()
    show(
        "batched appends: encoding and chaining per event, no checks",
        append_floor(max(1, calls // 100)),
    )
    print("  compare with the raw insert's us/event in bench_store.py section 2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
