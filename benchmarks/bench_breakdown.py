"""Where one simulated event's time goes: the engine's parts and the simulator's own work.

Run from the repository root::

    python benchmarks/bench_breakdown.py          # aligned table (about a minute)
    python benchmarks/bench_breakdown.py --json   # one JSON object on stdout

``FIREFLOW_BENCH_BREAKDOWN_COMMUNITIES`` (default 1000) sets the population
(Changle's density, ``generate_population(n, seed=2022)``).

What it does, in one process:

1. times ``simulate(plan, population, seed=2022, log="none")`` (CPU time,
   best of 3, the garbage collector off as in ``simulate`` itself);
2. runs it once more recording every ``(state, command)`` pair the run hands to
   the engine (a wrapper around the run's ``execute_command``, removed after);
3. times, on exactly those pairs, ``decide`` and, on the ``(state, event)``
   pairs it returns, ``evolve`` (best of 5 each); then the parts of ``decide``
   alone: the entry checks (``_check_entry``: times, campaign dates, known
   agencies), the authority check (``authorize``), the trigger's own rule step
   (``_STEP[kind]``) and the rest (plan binding, lifecycle table, citations, the
   event itself), as ``decide`` minus the three;
4. reports microseconds per event and each part's share of the whole run; the
   simulator's own work (scheduling, draws, counts, snapshots, reports) is the
   run's time minus ``decide`` and ``evolve``.

The parts are timed apart from each other, so they do not add up exactly to
``decide``; the rest is what is left.  Timed in a tight loop, a part runs with
its code and data warm in the caches; inside a run it shares them with the
simulator's code, so the simulator's share (the run minus ``decide`` and
``evolve``) also holds what the engine loses to that sharing: read it as an
upper bound.  Per trigger, ``decide``'s cost and the
number of events show where rule work concentrates.  Exit status 0, or 2 for a
bad setting.  Nothing is asserted: the figures go in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections import defaultdict

from _common import env_int

import fireflow
from fireflow import load_plan
from fireflow.sim import engine as sim_engine
from fireflow.sim import generate_population, simulate
from fireflow.ticket import authorize, decide, evolve
from fireflow.ticket.decision import _STEP, _check_entry


def best(fn, repeat):
    """The least CPU seconds of ``repeat`` calls of ``fn`` (gc off while timing)."""
    was = gc.isenabled()
    gc.disable()
    try:
        out = []
        for _ in range(repeat):
            t = time.process_time()
            fn()
            out.append(time.process_time() - t)
        return min(out)
    finally:
        if was:
            gc.enable()


def recorded_pairs(plan, population):
    """Every (state, command) the run hands to the engine, in order."""
    pairs = []
    plain = sim_engine._Run.execute_command

    def recording(self, k, command):
        pairs.append((self.states[k], command))
        return plain(self, k, command)

    sim_engine._Run.execute_command = recording
    try:
        simulate(plan, population, seed=2022, log="none")
    finally:
        sim_engine._Run.execute_command = plain
    return pairs


def measure(communities):
    plan = load_plan("changle-2022")
    population = generate_population(communities, seed=2022)
    simulate(plan, generate_population(5, seed=1), seed=1, log="none")  # warm the calendar
    result = simulate(plan, population, seed=2022, log="none")
    n = result.n_events
    run = best(lambda: simulate(plan, population, seed=2022, log="none"), 3)
    pairs = recorded_pairs(plan, population)
    if len(pairs) != n:
        raise SystemExit(f"recorded {len(pairs)} commands for {n} events")
    events = [(s, decide(s, c, plan)[0]) for s, c in pairs]
    t_decide = best(lambda: [decide(s, c, plan) for s, c in pairs], 5)
    t_evolve = best(lambda: [evolve(s, e) for s, e in events], 5)
    t_entry = best(lambda: [_check_entry(s, c, plan) for s, c in pairs], 5)
    t_auth = best(lambda: [authorize(s, c, plan) for s, c in pairs], 5)
    t_step = best(lambda: [_STEP[c.kind](s, c, plan) for s, c in pairs], 5)
    by_kind = defaultdict(list)
    for s, c in pairs:
        by_kind[c.kind].append((s, c))
    kinds = {}
    for kind, ps in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        t = best(lambda ps=ps: [decide(s, c, plan) for s, c in ps], 3)
        kinds[kind] = {"events": len(ps), "decide_us": t / len(ps) * 1e6, "decide_s": t}

    def us(seconds):
        return seconds / n * 1e6

    parts = {
        "decide: entry checks (times, campaign dates, agencies)": us(t_entry),
        "decide: authority (who may)": us(t_auth),
        "decide: the trigger's rule step": us(t_step),
        "decide: the rest (binding, lifecycle, citations, the event)": us(
            max(0.0, t_decide - t_entry - t_auth - t_step)
        ),
        "evolve (the new TicketState)": us(t_evolve),
        "simulator's own work (draws, agenda, counts, snapshots, reports)": us(
            max(0.0, run - t_decide - t_evolve)
        ),
    }
    return {
        "benchmark": "where one simulated event's time goes",
        "fireflow": fireflow.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "load": list(os.getloadavg()),
        "communities": communities,
        "tickets": result.kpis["tickets"],
        "events": n,
        "run_us_per_event": us(run),
        "decide_us_per_event": us(t_decide),
        "evolve_us_per_event": us(t_evolve),
        "parts_us_per_event": parts,
        "by_trigger": kinds,
    }


def show(r):
    total = r["run_us_per_event"]
    print(
        f"fireflow {r['fireflow']}, Python {r['python']}, {r['machine']}, load "
        f"{r['load'][0]:.2f}; {r['communities']:,} communities, {r['tickets']:,} tickets, "
        f"{r['events']:,} events"
    )
    print(f"whole run: {total:.1f} CPU us/event (best of 3)")
    for name, value in r["parts_us_per_event"].items():
        print(f"  {name:<66} {value:6.1f} us  {value / total:6.1%}")
    print("decide per trigger (CPU us/event, events, share of all decide time):")
    all_decide = sum(k["decide_s"] for k in r["by_trigger"].values())
    for kind, k in r["by_trigger"].items():
        print(
            f"  {kind:<20} {k['decide_us']:7.1f} us {k['events']:>9,}  "
            f"{k['decide_s'] / all_decide:6.1%}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    r = measure(env_int("FIREFLOW_BENCH_BREAKDOWN_COMMUNITIES", 1000))
    if args.json:
        json.dump(r, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        show(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
