"""What if? The baseline campaign against two scenarios, side by side.

1. the baseline: the Changle 2022 plan on a generated Changle-sized population;
2. the rectification phase (整改落实) one month shorter, with the dossier due a month
   earlier (the plan's data edited and validated again);
3. a third of the property companies stall.

Run: ``python examples/what_if.py [OUT_DIR]`` (plots and an HTML report of the
stalling scenario go to OUT_DIR, default ``./fireflow-out/what-if``).
The notebook ``examples/what_if.ipynb`` does the same step by step.
"""

import sys
from pathlib import Path

from fireflow import load_plan
from fireflow.plan import Plan
from fireflow.sim import Behaviour, compare, generate_population, shorten_phase, simulate

SEED = 7
KPIS = [
    "tickets",
    "rectified_by_dossier_share",
    "overdue_tickets",
    "refusals",
    "escalations",
    "mean_days_to_archive",
    "open_at_end",
]


def shorter_by_hand(plan: Plan) -> Plan:
    """The rectification phase one month shorter, by editing the plan's data."""
    data = plan.to_data()
    phases = {p["id"]: p for p in data["phases"]}
    phases["rectification"]["end"] = "2022-06-15"
    phases["spot_check"]["start"] = "2022-06-16"
    for d in data["deadlines"]:
        if d["id"] == "dossier":
            d["nominal"] = "2022-06-15"
    return Plan.model_validate(data)


def main(out_dir: str = "fireflow-out/what-if") -> None:
    plan = load_plan("changle-2022")
    population = generate_population(300, seed=2022)
    shorter_plan = shorten_phase(plan, "rectification", months=1)
    assert shorter_by_hand(plan).phases == shorter_plan.phases  # the helper does the same

    baseline = simulate(plan, population, seed=SEED, name="baseline")
    shorter = simulate(shorter_plan, population, seed=SEED, name="shorter_rectification")
    stalling = simulate(
        plan, population, Behaviour(stall_probability=1 / 3), seed=SEED, name="third_stall"
    )

    table = compare(baseline, shorter, stalling).loc[KPIS]
    print(table.to_string())
    report = stalling.write_report(Path(out_dir))
    print(f"report: {report}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
