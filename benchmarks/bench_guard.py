"""Regression guard: per-event CPU of the simulator and of ``decide``, this tree against a baseline.

Run from the repository root before merging engine, simulator or store changes::

    python benchmarks/bench_guard.py                    # against the pinned baseline
    python benchmarks/bench_guard.py --baseline HEAD~5  # against any commit
    python benchmarks/bench_guard.py --json             # one JSON object on stdout

The baseline commit is exported with ``git archive`` into a temporary folder (nothing of
the checkout changes).  Each measurement runs in a fresh child process whose
``PYTHONPATH`` is one side's tree, and the sides take turns (baseline, this tree,
baseline, ...) for ``--rounds`` rounds, so a drift in the machine's speed hits both.
A child runs the same workload on either side (the code below, through the public API):

* ``sim``: ``simulate(plan, generate_population(N, seed), seed=seed, log="none")`` after a
  warm-up run; CPU seconds (``time.process_time``) per event of the run;
* ``decide``: the commands of scripted ticket histories (report, route, deadline,
  rectify, re-check failing then passing, sign-off, archive, refusals and escalation),
  validated once; then only ``decide(state, command, plan)`` is timed, over every
  (state, command) pair, repeated; CPU seconds per event decided.

The figure per side is the median over the rounds; the ratio is this tree / baseline.
The exit status is 1 when either ratio exceeds ``1 + --threshold`` (default 0.15), else 0;
2 for unusable arguments or a child that fails.  Quote ratios, not absolute figures: the
machine is shared and noisy (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The engine the issue "Speed from design" measures against (main on 2026-12-01).
PINNED_BASELINE = "0b9929b"
SECTIONS = ("sim", "decide")

CHILD = r"""
import json, statistics, sys, time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import fireflow
root, communities, repeats, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if not fireflow.__file__.startswith(root):
    raise SystemExit(f"imported fireflow from {fireflow.__file__}, not from {root}")
from fireflow import load_plan
from fireflow.errors import FireflowError
from fireflow.sim import generate_population, simulate
from fireflow.ticket import decide, evolve, fold
from fireflow.model import Command

plan = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2022, 3, 21, 10, tzinfo=SH)
DAY = timedelta(days=1)
HOUSING = {"agency": "housing", "person": "张"}
PHOTO = {"kind": "photo_before", "sha256": "b" * 64}
AFTER = {"kind": "photo_after", "sha256": "a" * 64}
KINDS = [
    ("evacuation_blocked", "ebike_charging", "inside"),
    ("fire_lane_vehicle", "private_car", "inside"),
    ("fire_lane_vehicle", "goods", "around"),
    ("lane_or_sign_missing", "sign_missing", "inside"),
]


def script(i):
    cat, sub, loc = KINDS[i % len(KINDS)]
    at = T0 + (i % 20) * DAY
    steps = [
        ("report", at, "town", dict(community=f"小区{i % 37}", town=f"镇{i % 7}", category=cat,
                                    subtype=sub, location=loc, source="town_inspection",
                                    description="楼道堆物", evidence=[PHOTO])),
        ("route", at, "town", {}),
        ("set_deadline", at, "town", {}),
    ]
    if i % 5 == 4:
        steps += [("refuse", at + DAY, "town", {"reason": "拒不整改"}),
                  ("resume", at + 2 * DAY, "town", {})]
    steps += [
        ("rectify", at + 2 * DAY, "property", {}),
        ("apply_reinspection", at + 2 * DAY, "property", {}),
        ("recheck_fail", at + 3 * DAY, "town", {"participants": [HOUSING]}),
        ("rectify", at + 4 * DAY, "property", {}),
        ("apply_reinspection", at + 4 * DAY, "property", {}),
        ("recheck_pass", at + 5 * DAY, "town", {"participants": [HOUSING]}),
        ("sign_off", at + 6 * DAY, "town", {"signers": [HOUSING]}),
        ("archive", at + 6 * DAY, "town", {"evidence": [AFTER]}),
    ]
    return steps


pairs = []
for i in range(40):
    tid = f"G{i:03d}"
    state = fold([], tid, plan=plan)
    for kind, at, agency, fields in script(i):
        cmd = Command.model_validate({"kind": kind, "ticket_id": tid, "at": at,
                                      "actor": {"agency": agency, "person": "李"}, **fields})
        try:
            events = decide(state, cmd, plan)
        except FireflowError:
            continue  # a step this plan's route does not allow: left out on both sides alike
        pairs.append((state, cmd))
        for e in events:
            state = evolve(state, e)

decided = 0
t0 = time.process_time()
for _ in range(repeats):
    for state, cmd in pairs:
        decided += len(decide(state, cmd, plan))
decide_cpu = time.process_time() - t0

simulate(plan, generate_population(5, seed=1), seed=1, log="none")  # warm-up: calendar tables
population = generate_population(communities, seed=seed)
t0 = time.process_time()
result = simulate(plan, population, seed=seed, log="none")
sim_cpu = time.process_time() - t0
print(json.dumps({
    "decide_us": decide_cpu / decided * 1e6, "decide_events": decided, "pairs": len(pairs),
    "sim_us": sim_cpu / result.n_events * 1e6, "sim_events": result.n_events,
}))
"""


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def export(commit: str, into: Path) -> str:
    """Export ``commit``'s tree into ``into`` (git archive); return the full hash."""
    full = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", full], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return full


def measure(tree: Path, communities: int, repeats: int, seed: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(communities), str(repeats), str(seed)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child in {tree} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=PINNED_BASELINE, help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="turns per side (default 3)")
    parser.add_argument("--communities", type=int, default=300, help="simulated communities")
    parser.add_argument("--repeats", type=int, default=20, help="passes over the decide pairs")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--threshold", type=float, default=0.15, help="allowed slow-down")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.communities < 1 or args.repeats < 1 or args.threshold < 0:
        print("--rounds, --communities, --repeats must be >= 1, --threshold >= 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fireflow-guard-") as tmp:
        base_tree = Path(tmp)
        try:
            base_commit = export(args.baseline, base_tree)
        except subprocess.CalledProcessError as exc:
            print(f"cannot export baseline {args.baseline!r}: {exc}", file=sys.stderr)
            return 2
        sides: dict[str, list[dict[str, float]]] = {"baseline": [], "tree": []}
        try:
            for _ in range(args.rounds):
                for name, tree in (("baseline", base_tree), ("tree", ROOT)):
                    sides[name].append(measure(tree, args.communities, args.repeats, args.seed))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
    report: dict[str, object] = {
        "baseline": base_commit,
        "tree": str(git("rev-parse", "HEAD")),
        "rounds": args.rounds,
        "communities": args.communities,
        "threshold": args.threshold,
    }
    failed = []
    for section in SECTIONS:
        base = statistics.median(r[f"{section}_us"] for r in sides["baseline"])
        mine = statistics.median(r[f"{section}_us"] for r in sides["tree"])
        ratio = mine / base
        report[section] = {
            "baseline_us_per_event": base,
            "tree_us_per_event": mine,
            "ratio": ratio,
            "events_baseline": sides["baseline"][0][f"{section}_events"],
            "events_tree": sides["tree"][0][f"{section}_events"],
        }
        if ratio > 1 + args.threshold:
            failed.append(section)
    report["slower"] = failed
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"baseline {base_commit[:12]} vs this tree, {args.rounds} rounds, sides in turn")
        for section in SECTIONS:
            row = report[section]
            assert isinstance(row, dict)
            print(
                f"  {section:<7} baseline {row['baseline_us_per_event']:8.1f} us/event   "
                f"tree {row['tree_us_per_event']:8.1f} us/event   ratio {row['ratio']:.2f}x"
            )
        verdict = f"SLOWER than allowed ({', '.join(failed)})" if failed else "within the limit"
        print(f"  limit {1 + args.threshold:.2f}x: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
