"""Benchmark: the what-if simulator at 10k, 100k and 1M tickets (time, growth, memory).

Run from the repository root::

    python benchmarks/bench_sim.py                 # aligned table
    python benchmarks/bench_sim.py --json          # one JSON object on stdout
    python benchmarks/bench_sim.py --profile 20000 # cProfile of one run, top functions

Environment variables:

* ``FIREFLOW_BENCH_SIM_TICKETS`` - comma-separated target ticket counts
  (default ``10000,100000,1000000``); e.g. ``10000,30000`` for a quick run.
* ``FIREFLOW_BENCH_SIM_SEED`` - the seed of the population and the runs (default 2022).

Each size runs in a fresh subprocess.  The child generates a population with
the default :class:`~fireflow.sim.PopulationParams` (Changle density: about 17
communities per town), sized so that the default behaviour finds about the
target number of hazards (tickets); the actual count is reported.  It warms
up the plan's calendar with a 5-community run, records ``ru_maxrss``, runs
``simulate(plan, population, seed=..., log="none")`` timed with
``time.perf_counter`` (one run, the garbage collector on, as a user runs it),
then records ``ru_maxrss`` again.  Memory per ticket is the growth of the peak
resident set during the run divided by the tickets: it holds every ticket's
final state, the timelines and the agenda, not the event log (``log="none"``).

The growth columns compare each size with the previous one: the time ratio
against the ticket ratio (1.0 = linear).  Targets (1M tickets in < 60 s and
< 2 GiB) are reported, not asserted: the exit status is 0 unless a child fails.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import resource
import subprocess
import sys
import time

import fireflow

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
TARGET_SECONDS = 60.0
TARGET_BYTES = 2 * 1024**3
PLAN = "changle-2022"


def env_sizes():
    raw = os.environ.get("FIREFLOW_BENCH_SIM_TICKETS", "").strip()
    if not raw:
        return list(DEFAULT_SIZES)
    try:
        sizes = [int(x.replace("_", "")) for x in raw.split(",") if x.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 100 for s in sizes):
        print(f"FIREFLOW_BENCH_SIM_TICKETS must list sizes >= 100, got {raw!r}", file=sys.stderr)
        sys.exit(2)
    return sizes


def env_seed():
    raw = os.environ.get("FIREFLOW_BENCH_SIM_SEED", "2022").strip()
    if not raw.lstrip("-").isdigit():
        print(f"FIREFLOW_BENCH_SIM_SEED must be a whole number, got {raw!r}", file=sys.stderr)
        sys.exit(2)
    return int(raw)


def maxrss_bytes():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def communities_for(tickets, behaviour, params):
    """Communities whose expected hazards are about ``tickets`` (log-normal size factor)."""
    size = math.exp((behaviour.size_exponent * params.households_sigma) ** 2 / 2)
    size *= (params.households_median / behaviour.reference_households) ** behaviour.size_exponent
    return max(1, round(tickets / (behaviour.expected_hazards_per_community() * size)))


def setup(tickets, seed):
    from fireflow import load_plan
    from fireflow.sim import Behaviour, PopulationParams, generate_population, simulate

    plan = load_plan(PLAN)
    behaviour = Behaviour()
    n = communities_for(tickets, behaviour, PopulationParams())
    population = generate_population(n, seed=seed)
    simulate(plan, generate_population(5, seed=1), seed=1, log="none")  # warm-up: calendar
    return plan, population, behaviour, simulate


def child(tickets, seed):
    plan, population, behaviour, simulate = setup(tickets, seed)
    before = maxrss_bytes()
    t0 = time.perf_counter()
    result = simulate(plan, population, behaviour, seed=seed, log="none")
    seconds = time.perf_counter() - t0
    after = maxrss_bytes()
    n = len(result.ticket_town)
    print(
        json.dumps(
            {
                "target": tickets,
                "communities": len(population),
                "towns": len(population.towns),
                "tickets": n,
                "events": result.n_events,
                "seconds": seconds,
                "tickets_per_second": n / seconds,
                "us_per_event": seconds / result.n_events * 1e6,
                "maxrss_before": before,
                "maxrss_after": after,
                "bytes_per_ticket": (after - before) / n,
            }
        )
    )


def profile(tickets, seed, top=25):
    plan, population, behaviour, simulate = setup(tickets, seed)
    prof = cProfile.Profile()
    prof.enable()
    result = simulate(plan, population, behaviour, seed=seed, log="none")
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    print(f"{len(result.ticket_town):,} tickets, {result.n_events:,} events (under cProfile)")
    for key in ("tottime", "cumulative"):
        out.seek(0)
        out.truncate()
        stats.sort_stats(key).print_stats(top)
        print(f"--- sorted by {key}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-6000:])


def run_size(tickets, seed):
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(tickets), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile", type=int, metavar="TICKETS", help="profile one run")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else env_seed()
    if args.child:
        child(args.child, seed)
        return 0
    if args.profile:
        profile(args.profile, seed)
        return 0

    rows = []
    for size in env_sizes():
        row = run_size(size, seed)
        if row is None:
            return 1
        if rows:
            prev = rows[-1]
            row["ticket_ratio"] = row["tickets"] / prev["tickets"]
            row["time_ratio"] = row["seconds"] / prev["seconds"]
            row["growth"] = row["time_ratio"] / row["ticket_ratio"]
        rows.append(row)
        if not args.json:
            print(f"  done: {size:,} -> {row['seconds']:.1f} s", file=sys.stderr)
    largest = rows[-1]
    report = {
        "benchmark": "fireflow.sim.simulate, default behaviour, log='none'",
        "plan": PLAN,
        "seed": seed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "fireflow": fireflow.__version__,
        "sizes": rows,
        "largest_under_60s": largest["seconds"] < TARGET_SECONDS,
        "largest_under_2GiB": largest["maxrss_after"] < TARGET_BYTES,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"fireflow {report['fireflow']}, Python {report['python']}, {report['cpu_count']} CPUs, "
        f"{report['platform']}; seed {seed}; one run per size, each in a fresh process"
    )
    head = (
        f"{'target':>10} {'communities':>11} {'tickets':>10} {'events':>11} {'seconds':>8} "
        f"{'tickets/s':>10} {'us/event':>9} {'peak MiB':>9} {'B/ticket':>9} {'growth':>7}"
    )
    print(head)
    for r in rows:
        growth = f"{r['growth']:.2f}" if "growth" in r else "-"
        print(
            f"{r['target']:>10,} {r['communities']:>11,} {r['tickets']:>10,} {r['events']:>11,} "
            f"{r['seconds']:>8.1f} {r['tickets_per_second']:>10,.0f} {r['us_per_event']:>9.1f} "
            f"{r['maxrss_after'] / 2**20:>9,.0f} {r['bytes_per_ticket']:>9,.0f} {growth:>7}"
        )
    print(
        "growth = (time ratio) / (ticket ratio) against the previous size; 1.00 is linear.\n"
        f"largest size: {largest['seconds']:.1f} s (target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if report['largest_under_60s'] else 'NOT met'}), peak "
        f"{largest['maxrss_after'] / 2**30:.2f} GiB (target < 2 GiB: "
        f"{'met' if report['largest_under_2GiB'] else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
