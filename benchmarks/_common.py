"""Helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``).

* settings: :func:`env_int`;
* the store benchmarks' workload (bench_store.py, bench_pg.py): five ticket
  histories made by the engine and a long one (:func:`histories`,
  :func:`long_history`), copied to new ticket ids (:func:`restamp`) and cut into
  append batches (:func:`single_batches`, :func:`batched_batches`) or written as a
  replay log (:func:`write_replay_log`);
* timing: :func:`timed` (gc off), :func:`interleaved` (best of :data:`REPEATS`, the
  sides taking turns), :func:`side` and :func:`append_figures` (the figures);
* output: :func:`host` (the machine's part of a JSON report), :func:`pg_durability`
  (a PostgreSQL server's durability settings), :func:`print_append` and
  :func:`print_sides` (the aligned tables).
"""

import contextlib
import gc
import os
import platform
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

import fireflow
from fireflow import Ticket
from fireflow.errors import NotAuthorized

REPEATS = 3
BATCH = 100
REPLAY_CHUNK = 1000
TIMER = "time.perf_counter, best of repeats, gc disabled while timing"
SH = ZoneInfo("Asia/Shanghai")
PHOTO_BEFORE = {"kind": "photo_before", "sha256": "b" * 64}
PHOTO_AFTER = {"kind": "photo_after", "sha256": "a" * 64}


# ---------------------------------------------------------------- settings
def env_int(name, default):
    """A positive whole number from the environment, or ``default``; exit 2 on a bad value."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        print(f"{name} must be a positive whole number, got {raw!r}", file=sys.stderr)
        sys.exit(2)
    return value


# ---------------------------------------------------------------- workload
def _opened(t, at, category, subtype, location="inside"):
    t.command(
        "report", at, "town", "李", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location=location, source="town_inspection",
        description="楼道堆物，电动车充电", evidence=[PHOTO_BEFORE],
    )  # fmt: skip
    t.command("route", at, "town", "李科长")
    t.command("set_deadline", at, "town")


def histories(plan):
    """Five ticket histories made by the engine (ticket id ``T``)."""
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    day = timedelta(days=1)
    out = []
    t = Ticket("T", plan)
    _opened(t, at, "evacuation_blocked", "ebike_charging")
    t.command("rectify", at + day, "property", "陈经理")
    t.command("apply_reinspection", at + day, "property")
    parts = [{"agency": "housing", "person": "张"}]
    t.command("recheck_pass", at + day, "town", participants=parts)
    signers = [{"agency": "housing", "person": "张"}]
    t.command("sign_off", at + 2 * day, "town", "王", signers=signers)
    t.command("archive", at + 2 * day, "town", evidence=[PHOTO_AFTER])
    out.append(t.events)
    reopened = Ticket("T", plan, t.events)
    reopened.command("reopen", datetime(2022, 8, 1, 10, tzinfo=SH), "fire", reason="抽查发现")
    out.append(reopened.events)
    t = Ticket("T", plan)
    _opened(t, at, "fire_lane_vehicle", "private_car")
    with contextlib.suppress(NotAuthorized):  # a refused attempt, recorded
        t.command("refuse", at, "fire")
    t.command("refuse", at, "property", reason="业主拒不挪车")
    t.command("expose", at, "committee")
    t.command("escalate", at, "town")
    t.command("punish", at + timedelta(hours=1), "fire")
    t.command("clear", at + timedelta(hours=2), "town")
    out.append(t.events)
    t = Ticket("T", plan)
    _opened(t, at, "spacing_illegal_building", "structure", "around")
    t.command("certify", at, "planning")
    t.command("demolish", at + 10 * day, "town", participants=[{"agency": "urban"}])
    out.append(t.events)
    out.append(long_history(plan, 9))
    return out


def long_history(plan, n):
    """A ticket that fails its re-check again and again: exactly ``n`` events."""
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t = Ticket("T", plan)
    _opened(t, at, "fire_lane_vehicle", "zombie_vehicle")
    steps = (
        ("rectify", "property", {}),
        ("apply_reinspection", "property", {}),
        ("recheck_fail", "town", {"participants": [{"agency": "housing"}], "reason": "仍有"}),
    )
    i = 0
    while len(t.events) < n:
        kind, agency, fields = steps[i % 3]
        t.command(kind, at + timedelta(minutes=i), agency, **fields)
        i += 1
    return t.events[:n]


def restamp(events, tid):
    return [attrs.evolve(e, ticket_id=tid, event_id=f"{tid}/{e.seq}") for e in events]


def single_batches(templates, n):
    """``n`` one-event batches: the template histories copied to tickets ``CL-S...``."""
    events = []
    k = 0
    while len(events) < n:
        events += restamp(templates[k % len(templates)], f"CL-S{k:06d}")
        k += 1
    return [[e] for e in events[:n]]


def batched_batches(long, n):
    """About ``n`` events in batches of :data:`BATCH`: ``long`` copied to tickets ``CL-B...``."""
    return [restamp(long, f"CL-B{k:06d}") for k in range(max(1, n // BATCH))]


def write_replay_log(store, templates, n):
    """Append ``n`` events of the template histories to ``store``, ticket after ticket.

    About :data:`REPLAY_CHUNK` events go in one ``append_many`` call.  Returns each
    ticket's expected version and the seconds spent in ``append_many`` (making the
    events is not counted).
    """
    expected: dict[str, int] = {}
    written = 0
    seconds = 0.0
    k = 0
    while written < n:
        chunk = []
        size = 0
        while size < REPLAY_CHUNK and written + size < n:
            h = templates[k % len(templates)][: n - written - size]
            tid = f"CL-R{k:07d}"
            chunk.append((tid, restamp(h, tid), 0))
            expected[tid] = len(h)
            size += len(h)
            k += 1
        t0 = time.perf_counter()
        store.append_many(chunk)
        seconds += time.perf_counter() - t0
        written += size
    return expected, seconds


# ------------------------------------------------------------------ timing
def timed(fn):
    """Seconds for one call of ``fn``, gc off while timing."""
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        result = fn()
        return time.perf_counter() - t0, result
    finally:
        if was_on:
            gc.enable()


def interleaved(sides):
    """Best seconds and last result of each side; the sides take turns in every repeat.

    ``sides`` maps a name to ``(fn, setup)``: ``setup()`` (untimed, may be None)
    makes the argument of ``fn``.  Taking turns spreads a noisy machine's bad
    moments over every side alike.
    """
    best = dict.fromkeys(sides, float("inf"))
    results = {}
    for _ in range(REPEATS):
        for name, (fn, setup) in sides.items():
            arg = setup() if setup else None
            seconds, results[name] = timed(lambda a=arg, f=fn: f(a))
            best[name] = min(best[name], seconds)
    return best, results


def side(events, seconds):
    return {
        "events": events,
        "seconds": seconds,
        "us_per_event": seconds / events * 1e6,
        "events_per_second": events / seconds,
    }


def append_figures(n, best):
    """The figures of an append section: ``best`` seconds of the sides ``fireflow`` and ``raw``."""
    return {
        "fireflow": side(n, best["fireflow"]),
        "raw": side(n, best["raw"]),
        "ratio": best["fireflow"] / best["raw"],
    }


# ------------------------------------------------------------------ output
def host():
    """The machine's part of a report: Python, platform, CPUs, fireflow's version."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "fireflow": fireflow.__version__,
    }


def pg_durability(settings):
    """The PostgreSQL settings that decide durability, as ``name=value`` words."""
    names = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
    return " ".join(f"{n}={settings[n]}" for n in names)


def verdict(ratio, target):
    return f"target <= {target:g}x: {'met' if ratio <= target else 'NOT met'}"


def print_append(title, res, ours, raw, target=None):
    """The table of an append section (:func:`append_figures`); ``ours``/``raw`` name the sides."""
    print(title)
    print(f"  {'side':<26} {'events':>10} {'best s':>9} {'us/event':>10} {'events/s':>11}")
    for name, key in ((ours, "fireflow"), (raw, "raw")):
        r = res[key]
        print(
            f"  {name:<26} {r['events']:>10,} {r['seconds']:>9.3f} {r['us_per_event']:>10.1f} "
            f"{r['events_per_second']:>11,.0f}"
        )
    tail = f"  ({verdict(res['ratio'], target)})" if target else ""
    print(f"  {'ratio fireflow / raw':<26} {res['ratio']:.2f}x{tail}")
    print()


def print_sides(res, rows):
    """The table of a read section: ``rows`` are ``(label, key)``, ``res[key]`` a :func:`side`."""
    print(f"  {'side':<34} {'best s':>9} {'us/event':>10} {'events/s':>11}")
    for name, key in rows:
        r = res[key]
        print(
            f"  {name:<34} {r['seconds']:>9.3f} {r['us_per_event']:>10.2f} "
            f"{r['events_per_second']:>11,.0f}"
        )
