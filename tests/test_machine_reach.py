"""The public state machine reaches the lifecycle's ends, not only its start (issue 17, item 5).

The invariants about sign-off, archiving and reopening only bite in runs that get
there.  :class:`~fireflow.testing.machine.TicketMachine` steers (its ``advance``
rule); this test measures, over a fixed set of derandomized runs of the sizes
the suite uses, the share of runs whose ticket was ``signed_off``, ``archived``
and reopened, and pins a floor well below the measured figures (recorded in
docs/development.md), so a change that stops the steering fails.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from fireflow.testing.machine import REACHED, TicketMachine

RUNS = 50
FLOOR = {"signed_off": 0.3, "archived": 0.3, "reopened": 0.3}


def shares(steps: int) -> dict[str, float]:
    seen: Counter[str] = Counter()
    runs = 0

    class Counting(TicketMachine):
        def teardown(self) -> None:
            nonlocal runs
            runs += 1
            seen.update(self.reached & set(REACHED))
            super().teardown()

    run_state_machine_as_test(
        Counting,
        settings=settings(
            max_examples=RUNS, stateful_step_count=steps, database=None, derandomize=True
        ),
    )
    return {end: seen[end] / runs for end in REACHED}


def test_a_good_share_of_runs_reach_the_ends():
    got = shares(40)
    print(f"shares of {RUNS} runs of 40 steps:", got)
    assert all(got[end] >= FLOOR[end] for end in REACHED), got
