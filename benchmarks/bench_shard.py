"""Benchmark: one campaign sharded by town over local processes and a Dask cluster.

Run from the repository root:

    python benchmarks/bench_shard.py              # 100k: 1, 2 workers, Dask; 1M: 1, 2 workers
    python benchmarks/bench_shard.py --quick      # 1,500 tickets, every configuration (smoke)
    python benchmarks/bench_shard.py --json       # one JSON object instead of the table
    python benchmarks/bench_shard.py --only 1000000:2   # one size and configuration

Each (size, configuration) runs in a fresh child process, which generates the
population (Changle's density, sized like ``bench_sim.py``), warms the plan's
calendar up and times one call of ``simulate(plan, population, seed=...,
log="digest", workers=...)`` (or ``client=`` for the Dask LocalCluster of 2
processes, started before the clock starts), the garbage collector on.

Memory: the child's (the parent's) peak resident set is ``ru_maxrss``; each
worker's peak is sampled every 250 ms with psutil (the child's descendants;
Dask's nanny processes are left out).  ``parent growth`` is the parent's peak
minus its resident set before the call (the population and the plan are the
caller's).  Every run's log digest is printed: a size's digests must agree
across configurations, and the exit status is 1 when they do not.  Targets (1M
in under 60 s on 2 workers, speed-up >= 1.8x, parent under 1 GiB) are reported,
not asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time

FULL = [(100_000, "1"), (100_000, "2"), (100_000, "dask2"), (1_000_000, "1"), (1_000_000, "2")]
QUICK = [(1_500, "1"), (1_500, "2"), (1_500, "dask2")]
SEED = 2022
PLAN = "changle-2022"


def communities_for(tickets, behaviour, params):
    """Communities whose expected hazards are about ``tickets`` (as in bench_sim.py)."""
    size = math.exp((behaviour.size_exponent * params.households_sigma) ** 2 / 2)
    size *= (params.households_median / behaviour.reference_households) ** behaviour.size_exponent
    return max(1, round(tickets / (behaviour.expected_hazards_per_community() * size)))


def maxrss_bytes():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def current_rss():
    import psutil

    return psutil.Process().memory_info().rss


class WorkerPeaks:
    """Samples the resident set of this process's descendants (the workers)."""

    def __init__(self, skip_names=("nanny",)):
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.peaks = {}
        self.cpu = {}
        self.names = {}
        self.own_cpu = 0.0  # this sampling thread's CPU seconds (not the parent's work)
        self.skip = skip_names
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.stop.is_set():
            for child in self.me.children(recursive=True):
                try:
                    cmd = self.names.get(child.pid)
                    if cmd is None:
                        cmd = self.names[child.pid] = " ".join(child.cmdline())
                    rss = child.memory_info().rss
                    times = child.cpu_times()
                except self.psutil.Error:
                    continue
                if any(s in cmd for s in self.skip) or "resource_tracker" in cmd:
                    continue
                self.peaks[child.pid] = max(self.peaks.get(child.pid, 0), rss)
                self.cpu[child.pid] = times.user + times.system
            self.own_cpu = time.thread_time()
            self.stop.wait(0.25)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def child(tickets, config):
    from fireflow import load_plan
    from fireflow.sim import Behaviour, PopulationParams, generate_population, simulate

    plan = load_plan(PLAN)
    behaviour = Behaviour()
    population = generate_population(
        communities_for(tickets, behaviour, PopulationParams()), seed=SEED
    )
    simulate(plan, generate_population(5, seed=1), seed=1, log="none")  # warm-up: calendar
    kwargs = {}
    cluster = client = None
    if config.startswith("dask"):
        from dask.distributed import Client, LocalCluster

        n = int(config[4:])
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        client = Client(cluster)
        kwargs["client"] = client
    else:
        n = int(config)
        if n > 1:
            kwargs["workers"] = n
    before = current_rss()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with WorkerPeaks() as peaks:
        t0 = time.perf_counter()
        result = simulate(plan, population, behaviour, seed=SEED, log="digest", **kwargs)
        seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    parent_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    parent_cpu -= peaks.own_cpu  # the sampler's own reading of /proc is not the run's work
    parent_peak = maxrss_bytes()
    if client is not None:
        client.close()
        cluster.close()
    # keep the n busiest processes (the ones that ran shards)
    busiest = sorted(peaks.cpu, key=peaks.cpu.get, reverse=True)
    busiest = busiest[:n] if n > 1 or client is not None else []
    workers = [peaks.peaks[p] for p in busiest]
    worker_cpu = [peaks.cpu[p] for p in busiest]
    print(
        json.dumps(
            {
                "target": tickets,
                "config": config,
                "communities": len(population),
                "towns": len(population.towns),
                "tickets": result.kpis["tickets"],
                "events": result.n_events,
                "seconds": seconds,
                "events_per_second": result.n_events / seconds,
                "parent_peak": parent_peak,
                "parent_growth": parent_peak - before,
                "worker_peaks": workers,
                "parent_cpu": parent_cpu,
                "worker_cpu": worker_cpu,
                # the critical path in CPU seconds: the parent's own work plus the busiest
                # worker (on a machine others share, CPU time is steadier than wall time)
                "critical_cpu": parent_cpu + max(worker_cpu, default=0.0),
                "digest": result.log_digest(),
            }
        )
    )


def run_child(tickets, config):
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(tickets), config],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"child {tickets}:{config} failed with status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mib(n):
    return f"{n / 2**20:,.0f} MiB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,500 tickets (a smoke test)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--only", help="SIZE:CONFIG, e.g. 1000000:2 (configs 1, 2, dask2)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--merge", nargs="+", help="JSON files of earlier --only runs to report")
    args = parser.parse_args(argv)
    if args.child:
        child(int(args.child[0]), args.child[1])
        return 0
    plan = QUICK if args.quick else FULL
    if args.only:
        size, _, config = args.only.partition(":")
        if not size.isdigit() or config not in ("1", "2", "3", "4", "dask2"):
            print(f"--only: expected SIZE:CONFIG, got {args.only!r}", file=sys.stderr)
            return 2
        plan = [(int(size), config)]
    load = os.getloadavg()
    if args.merge:
        runs = []
        for path in args.merge:
            with open(path, encoding="utf-8") as f:
                runs.extend(json.load(f)["runs"])
    else:
        runs = [run_child(t, c) for t, c in plan]
    by = {(r["target"], r["config"]): r for r in runs}
    for r in runs:
        one = by.get((r["target"], "1"))
        r["speedup"] = one["seconds"] / r["seconds"] if one else None
        r["cpu_speedup"] = one["critical_cpu"] / r["critical_cpu"] if one else None
    growth = {}
    for config in ("1", "2"):
        small, big = by.get((100_000, config)), by.get((1_000_000, config))
        if small and big:
            growth[config] = (big["seconds"] / small["seconds"]) / (
                big["tickets"] / small["tickets"]
            )
    digests_agree = all(
        len({r["digest"] for r in runs if r["target"] == t}) == 1
        for t in {r["target"] for r in runs}
    )
    estimate = None
    two = by.get((1_000_000, "2"))
    if two:
        # per-shard cost from the 2-worker 1M run: the busiest worker's CPU seconds per
        # event of its half; the parent's own work (the merge) grows with the tickets
        half = two["events"] / 2
        us_cpu = max(two["worker_cpu"], default=two["seconds"]) / half * 1e6
        events_4m = two["events"] * 4_000_000 / two["tickets"]
        estimate = {
            "tickets": 4_000_000,
            "workers": 16,
            "us_per_event_per_worker": us_cpu,
            "parent_seconds": two["parent_cpu"] * 4,
            "seconds": events_4m / 16 * us_cpu / 1e6 + two["parent_cpu"] * 4,
        }
    out = {
        "benchmark": "fireflow.sim.simulate sharded by town, log='digest'",
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores",
        "load_before": load,
        "load_after": os.getloadavg(),
        "runs": runs,
        "growth_100k_to_1m": growth,
        "digests_agree": digests_agree,
        "estimate_4m_16_workers": estimate,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['machine']}, Python {out['python']}, load before {load[0]:.2f} {load[1]:.2f}")
        head = f"{'target':>10} {'config':>6} {'tickets':>10} {'events':>11} {'seconds':>8}"
        print(
            f"{head} {'events/s':>9} {'speed-up':>8} {'cpu s':>7} {'cpu x':>6} {'parent':>9} "
            f"{'+growth':>9}  workers (peak RSS)"
        )
        for r in runs:
            sp = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
            cs = f"{r['cpu_speedup']:.2f}x" if r["cpu_speedup"] else "-"
            ws = ", ".join(mib(w) for w in r["worker_peaks"]) or "-"
            print(
                f"{r['target']:>10,} {r['config']:>6} {r['tickets']:>10,} {r['events']:>11,} "
                f"{r['seconds']:>8.1f} {r['events_per_second']:>9,.0f} {sp:>8} "
                f"{r['critical_cpu']:>7.1f} {cs:>6} "
                f"{mib(r['parent_peak']):>9} {mib(r['parent_growth']):>9}  {ws}"
            )
        for config, g in growth.items():
            print(f"growth 100k -> 1M, {config} worker(s): {g:.2f} (1.00 = linear)")
        if estimate:
            print(
                f"paper estimate: 4M tickets on 16 workers ~ {estimate['seconds']:.0f} s "
                f"({estimate['us_per_event_per_worker']:.1f} CPU us/event per worker, "
                f"{estimate['parent_seconds']:.0f} s in the parent)"
            )
        print(f"digests agree across configurations: {digests_agree}")
        print(f"load after: {out['load_after'][0]:.2f}")
    return 0 if digests_agree else 1


if __name__ == "__main__":
    sys.exit(main())
