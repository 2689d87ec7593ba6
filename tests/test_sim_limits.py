"""Parameters that size the simulator's work have documented limits (docs/security.md)."""

import itertools

import pytest

from fireflow import load_plan
from fireflow.errors import FireflowError, InputLimitExceeded, InvalidArgument
from fireflow.sim.population import MAX_POPULATION, generate_population
from fireflow.sim.sweep import MAX_SWEEP_RUNS, MAX_WORKERS, sweep

PLAN = load_plan("changle-2022")


@pytest.mark.parametrize("n", [MAX_POPULATION + 1, 10**12])
def test_population_size_is_bounded(n):
    with pytest.raises(InputLimitExceeded) as info:
        generate_population(n)
    assert info.value.field == "communities"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"communities": 0}, "communities"),
    ({"communities": 2.5}, "communities"),
    ({"communities": True}, "communities"),
    ({"communities": 5, "towns": 0}, "towns"),
    ({"communities": 5, "towns": 10**9}, "towns"),
])
def test_population_arguments_are_checked(kwargs, field):
    with pytest.raises(FireflowError) as info:
        generate_population(**kwargs)
    assert info.value.field == field  # type: ignore[attr-defined]


def test_sweep_refuses_endless_seeds_without_reading_them_all():
    pop = generate_population(3)
    endless = itertools.count()
    with pytest.raises(InputLimitExceeded) as info:
        sweep(PLAN, pop, {"base": None}, endless, executor="serial")  # type: ignore[dict-item]
    assert info.value.field == "seeds"
    assert next(endless) == MAX_SWEEP_RUNS + 1  # stopped right after the limit


@pytest.mark.parametrize(("seeds", "workers", "field"), [
    ([1.5], 1, "seeds[0]"),
    (["7"], 1, "seeds[0]"),
    ([1], 0, "workers"),
    ([1], MAX_WORKERS + 1, "workers"),
])
def test_sweep_arguments_are_checked(seeds, workers, field):
    with pytest.raises(InvalidArgument) as info:
        sweep(PLAN, generate_population(3), {"base": None}, seeds, workers=workers)  # type: ignore[dict-item]
    assert info.value.field == field
