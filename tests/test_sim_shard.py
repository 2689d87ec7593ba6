"""Sharded runs: any number of shards, any partition, processes or Dask give one result."""

from __future__ import annotations

import hashlib
import random
import statistics
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import InvalidArgument, load_plan
from fireflow.events import canonical_bytes
from fireflow.sim import Behaviour, generate_population, plan_overrides, simulate
from fireflow.sim.engine import STREAMS, _pick, _Uniforms, uniform_stream
from fireflow.sim.shard import simulate_sharded, split_towns

PLAN = load_plan("changle-2022")
POP = generate_population(60, seed=11, towns=7)
# the offices take their time and refer or decide only sometimes: every new step of the
# duties (delayed route, re-check queue, sign-off, filing; refer, decide_referral) is in
# the log the digests compare
BEHAVIOUR = Behaviour(
    stall_probability=0.3,
    refusal_probability=0.1,
    recheck_fail_rate=0.2,
    route_working_days=(2.0, 0.8),
    recheck_working_days=(3.0, 0.6),
    sign_off_working_days=(2.0, 0.7),
    archive_working_days=(3.0, 0.5),
    refer_probability=0.7,
    decide_probability=0.8,
)
SEED = 2022


def _same(a, b):
    """Two results agree on everything a run records (NaN KPIs compared as NaN)."""
    assert a.log_digest() == b.log_digest()
    assert a.n_events == b.n_events
    assert a.kind_counts == b.kind_counts
    assert list(a.kind_counts) == list(b.kind_counts)
    assert a.daily == b.daily
    assert a.town_updates == b.town_updates
    assert a.escalations == b.escalations
    assert a.spot_checked == b.spot_checked
    assert a.accountability == b.accountability
    assert a.reports == b.reports
    assert list(a.ticket_town) == list(b.ticket_town)
    assert list(a.ticket_report_day) == list(b.ticket_report_day)
    assert list(a.ticket_archived_day) == list(b.ticket_archived_day)
    assert a.dossier_stats == b.dossier_stats
    assert repr(a.kpis) == repr(b.kpis)  # repr: NaN == NaN, and the key order too


@pytest.fixture(scope="module")
def one():
    return simulate(PLAN, POP, BEHAVIOUR, seed=SEED)


def test_one_process_run_is_well_formed(one):
    assert one.kpis["tickets"] > 100
    assert one.kpis["spot_check_communities"] == one.kpis["spot_check_required"] == 6
    # the log is town by town; within a town, in time order
    towns = [int(e.ticket_id[1:6]) - 1 for e in one.events]
    assert towns == sorted(towns)
    for t in set(towns):
        times = [e.at for e in one.events if int(e.ticket_id[1:6]) - 1 == t]
        assert times == sorted(times)
    # the digest is the digest of the towns' digests, in town order
    per_town = [hashlib.sha256() for _ in POP.towns]
    for e in one.events:
        per_town[int(e.ticket_id[1:6]) - 1].update(canonical_bytes(e))
    assert one.log_digest() == hashlib.sha256(b"".join(h.digest() for h in per_town)).hexdigest()
    # an escalation names its ticket by its place in the merged list
    for esc in one.escalations:
        if esc.ticket >= 0:
            assert one.tickets[esc.ticket].ticket_id == esc.subject
    for rec in one.accountability:
        assert one.tickets[rec.ticket].ticket_id == rec.subject
    # the duties' steps are in the log the shards must reproduce
    assert one.kind_counts["refer"] > 0
    assert one.kind_counts["decide_referral"] > 0
    assert one.kpis["duties_missed_town"] > 0


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_local_processes_give_the_one_process_result(one, workers):
    split = simulate(PLAN, POP, BEHAVIOUR, seed=SEED, workers=workers)
    _same(split, one)
    assert split.events == one.events
    assert split.tickets == one.tickets


def test_digest_mode_on_processes_keeps_no_log_and_no_states(one):
    split = simulate(PLAN, POP, BEHAVIOUR, seed=SEED, workers=2, log="digest")
    _same(split, one)
    assert split.events is None
    assert split.states is None
    with pytest.raises(InvalidArgument, match="log"):
        split.tickets  # noqa: B018


def test_dask_local_cluster_gives_the_one_process_result(one):
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        split = simulate(PLAN, POP, BEHAVIOUR, seed=SEED, client=client, log="digest")
        kept = simulate(PLAN, POP, BEHAVIOUR, seed=SEED, client=client)
    _same(split, one)
    _same(kept, one)
    assert kept.events == one.events


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_partition_in_any_order_gives_the_same_result(one, data):
    n_towns = len(POP.towns)
    shards = data.draw(st.integers(1, n_towns), label="shards")
    owner = data.draw(
        st.lists(st.integers(0, shards - 1), min_size=n_towns, max_size=n_towns), label="owner"
    )
    parts = [[t for t in range(n_towns) if owner[t] == s] for s in range(shards)]
    parts = [p for p in parts if p]
    parts = data.draw(st.permutations(parts), label="order")
    parts = [data.draw(st.permutations(p)) for p in parts]
    split = simulate_sharded(PLAN, POP, BEHAVIOUR, seed=SEED, partition=parts)
    _same(split, one)
    assert split.events == one.events


def test_a_town_does_not_depend_on_the_other_towns():
    """Dropping the other towns leaves a town's events unchanged (what sharding rests on)."""
    whole = simulate(PLAN, POP, BEHAVIOUR, seed=SEED)
    first = POP.towns[0]
    alone = type(POP)(tuple(c for c in POP.communities if c.town == first))
    only = simulate(PLAN, alone, BEHAVIOUR, seed=SEED)
    mine = [e for e in whole.events if e.ticket_id.startswith("T00001-")]
    # the spot-check draw is district-wide, so compare up to the spot check
    spot_start = PLAN.phase("spot_check").start
    assert [canonical_bytes(e) for e in mine if e.at.date() < spot_start] == [
        canonical_bytes(e) for e in only.events if e.at.date() < spot_start
    ]


def test_with_problems_base_takes_a_first_pass_and_stays_exact():
    plan = plan_overrides(PLAN, {"settings.spot_check.base": "with_problems"})
    one = simulate(plan, POP, BEHAVIOUR, seed=SEED)
    two = simulate_sharded(plan, POP, BEHAVIOUR, seed=SEED, partition=[[0, 2, 4, 6], [1, 3, 5]])
    _same(two, one)
    assert one.kpis["spot_check_communities"] >= 1
    # the district base draws otherwise: the flags matter only under with_problems
    base = simulate(PLAN, POP, BEHAVIOUR, seed=SEED)
    assert [s.community for s in base.spot_checked] != [s.community for s in one.spot_checked]


def test_other_seed_other_log_and_split_is_balanced(one):
    other = simulate(PLAN, POP, BEHAVIOUR, seed=SEED + 1, log="digest")
    assert other.log_digest() != one.log_digest()
    parts = split_towns(POP, BEHAVIOUR, 3)
    assert sorted(t for p in parts for t in p) == list(range(len(POP.towns)))
    assert all(p == sorted(p) for p in parts)
    assert len(parts) == 3
    assert split_towns(POP, BEHAVIOUR, 50) == [[t] for t in range(len(POP.towns))]


def test_bad_shard_arguments_are_refused():
    for workers in (0, -1, True, 2.0, 257):
        with pytest.raises(InvalidArgument, match="workers"):
            simulate(PLAN, POP, workers=workers)  # type: ignore[arg-type]
    for parts in ([[0, 1]], [[0, 1, 2, 3, 4, 5, 6, 6]], [[0, 1, 2], [], [3, 4, 5, 6]], [["a"]]):
        with pytest.raises(InvalidArgument, match="partition"):
            simulate_sharded(PLAN, POP, partition=parts)  # type: ignore[list-item]


def test_splitmix64_matches_the_reference_outputs():
    # SplitMix64 from state 0: 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f
    draws = _Uniforms(1)
    got = [int(draws(0) * 2**53) for _ in range(3)]
    assert got == [0xE220A8397B1DCDAF >> 11, 0x6E789E6AA1B965F4 >> 11, 0x06C45D188009454F >> 11]


def test_community_streams_are_independent_and_uniform():
    first = uniform_stream(7, "C00001", "fate")
    xs = [first() for _ in range(4000)]
    assert all(0 <= x < 1 for x in xs)
    assert abs(statistics.fmean(xs) - 0.5) < 0.02
    assert abs(statistics.pvariance(xs) - 1 / 12) < 0.01
    others = [uniform_stream(7, "C00001", s)() for s in STREAMS]
    assert len(set(others)) == len(STREAMS)
    assert uniform_stream(7, "C00002", "fate")() != xs[0]
    assert uniform_stream(8, "C00001", "fate")() != xs[0]
    with pytest.raises(InvalidArgument, match="name"):
        uniform_stream(7, "C00001", "order")


def test_cli_workers_option(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fireflow.cli.sim",
            "--communities",
            "40",
            "--workers",
            "2",
            "--seed",
            "3",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "index.html").is_file()
    one = simulate(PLAN, generate_population(40, seed=3), seed=3)
    assert f"{one.kpis['events']:,}" in proc.stdout or str(one.kpis["events"]) in proc.stdout


class _Fixed(random.Random):
    """A Random whose ``random()`` returns the given number."""

    def __init__(self, u: float) -> None:
        super().__init__(0)
        self.u = u

    def random(self) -> float:
        return self.u


@given(
    weights=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=8).filter(
        lambda w: sum(w) > 0
    ),
    u=st.floats(0, 1, exclude_max=True),
)
def test_pick_is_what_random_choices_picks(weights, u):
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    expected = _Fixed(u).choices(range(len(weights)), cum_weights=cum)[0]
    assert _pick(cum, u) == expected
