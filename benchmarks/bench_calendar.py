"""Benchmark: fireflow's working-day deadlines against the naive per-day loop.

Run from the repository root::

    python benchmarks/bench_calendar.py            # aligned table
    python benchmarks/bench_calendar.py --json     # one JSON object on stdout

Environment variables:

* ``FIREFLOW_BENCH_PAIRS``  - how many (start, n) pairs fireflow computes
  (default 1,000,000).
* ``FIREFLOW_BENCH_SAMPLE`` - how many of those pairs (the first ones) the
  baseline computes and the agreement check covers (default 10,000).

The pairs come from ``random.Random(2022)``: for each pair a start day uniform
over 2022-01-01..2025-12-31, then ``n`` uniform over 1..250.  A pair whose
working-day deadline would fall after the last year of holiday data shipped
with ``chinese_calendar`` cannot be computed by either side (both raise), so
it is left out and counted as ``excluded``.

Section 1 times ``cal.deadline(start, n, "working")`` against a loop calling
``chinese_calendar.is_workday`` once per day stepping forward from ``start``.
Section 2 times ``cal.deadline(start, n, "calendar")`` against ``start + n``
days rolled forward with ``is_workday`` (the plan's policy is roll_forward).
Each side's time is the best of 3 repeats, with the garbage collector off
while timing (as :mod:`timeit` does).  The fireflow tables are built by a
warm-up call before anything is timed.

The exit status is 1 when fireflow and the baseline disagree on any sampled
pair, 2 on a bad setting, and 0 otherwise: the speed target (>= 300x for
working days) is reported, not asserted, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta

import chinese_calendar
from _common import env_int
from chinese_calendar import is_workday

import fireflow
from fireflow import load_plan

SEED = 2022
FIRST_START = date(2022, 1, 1)
LAST_START = date(2025, 12, 31)
MAX_N = 250
REPEATS = 3
TARGET = 300.0
DEFAULT_PAIRS = 1_000_000
DEFAULT_SAMPLE = 10_000
PLAN = "changle-2022"

ONE_DAY = timedelta(days=1)

Pair = tuple[date, int]


# --------------------------------------------------------------- baselines
def naive_working(start, n):
    """The n-th working day after ``start``: one is_workday call per day."""
    d = start
    left = n
    while left:
        d += ONE_DAY
        if is_workday(d):
            left -= 1
    return d


def naive_calendar(start, n):
    """``start + n`` days, rolled forward one is_workday call per day."""
    d = start + timedelta(days=n)
    while not is_workday(d):
        d += ONE_DAY
    return d


# ----------------------------------------------------------------- helpers
def make_pairs(count):
    """``count`` (start, n) pairs from random.Random(SEED), start drawn first."""
    rng = random.Random(SEED)
    lo, hi = FIRST_START.toordinal(), LAST_START.toordinal()
    randint, fromordinal = rng.randint, date.fromordinal
    return [(fromordinal(randint(lo, hi)), randint(1, MAX_N)) for _ in range(count)]


def run_fireflow(deadline, pairs, unit):
    return [deadline(s, n, unit) for s, n in pairs]


def run_baseline(fn, pairs):
    return [fn(s, n) for s, n in pairs]


def best_of(repeats, fn: Callable[[], list[date]]):
    """(best seconds, result of the last run); gc off while timing."""
    best = float("inf")
    result: list[date] = []
    gc_was_on = gc.isenabled()
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
        finally:
            if gc_was_on:
                gc.enable()
        best = min(best, elapsed)
    return best, result


def side(pairs, seconds):
    return {
        "pairs": pairs,
        "seconds": seconds,
        "us_per_pair": seconds / pairs * 1e6,
    }


def section(cal, unit, baseline, pairs, sample):
    deadline = cal.deadline
    ff_s, ff_out = best_of(REPEATS, lambda: run_fireflow(deadline, pairs, unit))
    ffs_s, _ = best_of(REPEATS, lambda: run_fireflow(deadline, sample, unit))
    base_s, base_out = best_of(REPEATS, lambda: run_baseline(baseline, sample))
    mismatches = [
        (s, n, got, want)
        for (s, n), got, want in zip(sample, ff_out, base_out, strict=False)
        if got != want
    ]
    out = {
        "unit": unit,
        "fireflow": side(len(pairs), ff_s),
        "fireflow_sample": side(len(sample), ffs_s),
        "baseline": side(len(sample), base_s),
    }
    out["speed_ratio"] = out["baseline"]["us_per_pair"] / out["fireflow"]["us_per_pair"]
    out["checked"] = len(sample)
    out["mismatches"] = len(mismatches)
    out["mismatch_examples"] = [
        {"start": s.isoformat(), "n": n, "fireflow": g.isoformat(), "baseline": w.isoformat()}
        for s, n, g, w in mismatches[:5]
    ]
    return out


def print_section(title, res, target):
    rows = [
        ("fireflow", res["fireflow"]),
        ("fireflow (sample)", res["fireflow_sample"]),
        ("baseline (is_workday)", res["baseline"]),
    ]
    print(title)
    print(f"  {'side':<22} {'pairs':>10} {'best s':>9} {'us/pair':>10}")
    for name, r in rows:
        print(f"  {name:<22} {r['pairs']:>10,} {r['seconds']:>9.3f} {r['us_per_pair']:>10.3f}")
    ratio = f"{res['speed_ratio']:,.1f}x"
    if target is not None:
        verdict = "met" if res["speed_ratio"] >= target else "NOT met"
        ratio += f"  (target >= {target:g}x: {verdict})"
    print(f"  {'speed ratio':<22} {ratio}")
    agree = "all agree" if res["mismatches"] == 0 else f"{res['mismatches']:,} DIFFER"
    print(f"  {'agreement':<22} {res['checked']:,} sampled pairs: {agree}")
    for m in res["mismatch_examples"]:
        print(
            f"    start {m['start']} n {m['n']}: fireflow {m['fireflow']}, baseline {m['baseline']}"
        )
    print()


# -------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    requested = env_int("FIREFLOW_BENCH_PAIRS", DEFAULT_PAIRS)
    sample_size = env_int("FIREFLOW_BENCH_SAMPLE", DEFAULT_SAMPLE)

    cal = load_plan(PLAN).calendar
    last_year = max(d.year for d in chinese_calendar.holidays)
    data_end = date(last_year, 12, 31)

    # Warm-up, outside any timing: one call builds the per-year tables for
    # every year a deadline can reach (2022..last data year), then one
    # deadline of each unit goes through the fast path.
    cal.working_days_between(FIRST_START, data_end)
    cal.deadline(FIRST_START, 1, "working")
    cal.deadline(FIRST_START, 1, "calendar")

    generated = make_pairs(requested)
    # Working days left in the data after each possible start: a pair needing
    # more has no computable deadline (fireflow raises CalendarDataMissing,
    # chinese_calendar raises NotImplementedError) and is left out.
    room = {
        o: cal.working_days_between(date.fromordinal(o), data_end)
        for o in range(FIRST_START.toordinal(), LAST_START.toordinal() + 1)
    }
    pairs = [p for p in generated if p[1] <= room[p[0].toordinal()]]
    excluded = len(generated) - len(pairs)
    del generated, room
    sample = pairs[: min(sample_size, len(pairs))]
    if not sample:
        print("no computable pairs", file=sys.stderr)
        return 2

    working = section(cal, "working", naive_working, pairs, sample)
    working["target"] = TARGET
    working["target_met"] = working["speed_ratio"] >= TARGET
    calendar = section(cal, "calendar", naive_calendar, pairs, sample)

    ok = working["mismatches"] == 0 and calendar["mismatches"] == 0
    report = {
        "benchmark": "fireflow Calendar.deadline vs chinese_calendar.is_workday",
        "plan": PLAN,
        "seed": SEED,
        "start_range": [FIRST_START.isoformat(), LAST_START.isoformat()],
        "n_range": [1, MAX_N],
        "pairs_requested": requested,
        "pairs": len(pairs),
        "excluded_beyond_data": excluded,
        "data_end": data_end.isoformat(),
        "sample": len(sample),
        "repeats": REPEATS,
        "timer": "time.perf_counter, best of repeats, gc disabled while timing",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "fireflow": fireflow.__version__,
        "chinese_calendar": getattr(chinese_calendar, "__version__", "unknown"),
        "working": working,
        "calendar": calendar,
        "agree": ok,
    }

    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"fireflow {report['fireflow']}, chinese_calendar {report['chinese_calendar']}, "
            f"Python {report['python']}, {report['cpu_count']} CPUs, {report['platform']}"
        )
        print(
            f"pairs: {len(pairs):,} of {requested:,} generated (seed {SEED}; starts "
            f"{FIRST_START}..{LAST_START}, n 1..{MAX_N}); {excluded:,} excluded "
            f"(deadline after {data_end}); baseline sample: first {len(sample):,}; "
            f"best of {REPEATS}"
        )
        print()
        print_section('1. working days: cal.deadline(start, n, "working")', working, TARGET)
        print_section('2. calendar days: cal.deadline(start, n, "calendar")', calendar, None)
    if not ok:
        print("fireflow and the baseline disagree (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
