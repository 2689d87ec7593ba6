"""Monte Carlo sweeps: local processes and a Dask cluster give the same KPI table."""

from __future__ import annotations

import pytest

from fireflow import InvalidArgument, load_plan
from fireflow.sim import Behaviour, Scenario, generate_population, shorten_phase, summarise, sweep

PLAN = load_plan("changle-2022")
POP = generate_population(30, seed=5)
SCENARIOS = [
    Scenario("baseline"),
    Scenario("stall", Behaviour(stall_probability=1 / 3)),
    Scenario("shorter", plan=shorten_phase(PLAN, "rectification", months=1)),
]
SEEDS = [1, 2]


@pytest.fixture(scope="module")
def serial():
    return sweep(PLAN, POP, SCENARIOS, SEEDS, executor="serial", digest=True)


def test_serial_table_shape_and_order(serial):
    assert list(serial["scenario"]) == [
        "baseline",
        "baseline",
        "stall",
        "stall",
        "shorter",
        "shorter",
    ]
    assert list(serial["seed"]) == SEEDS * 3
    assert serial["log_digest"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert serial["log_digest"].nunique() == 6
    assert (serial["communities"] == 30).all()
    stats = summarise(serial)
    assert list(stats.index) == ["baseline", "stall", "shorter"]
    assert ("tickets", "mean") in stats.columns


def test_local_processes_and_dask_give_identical_tables(serial):
    from dask.distributed import Client, LocalCluster

    local = sweep(PLAN, POP, SCENARIOS, SEEDS, executor="processes", workers=2, digest=True)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        on_dask = sweep(PLAN, POP, SCENARIOS, SEEDS, executor="dask", client=client, digest=True)
    assert local.equals(serial)
    assert on_dask.equals(serial)


def test_sweep_refuses_bad_arguments():
    with pytest.raises(InvalidArgument, match="seeds"):
        sweep(PLAN, POP, SCENARIOS, [], executor="serial")
    with pytest.raises(InvalidArgument, match="distinct names"):
        sweep(PLAN, POP, [Scenario("a"), Scenario("a")], [1], executor="serial")
    with pytest.raises(InvalidArgument, match="executor"):
        sweep(PLAN, POP, {"a": Behaviour()}, [1], executor="cloud")  # type: ignore[arg-type]
