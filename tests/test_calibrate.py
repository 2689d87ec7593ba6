"""Calibration: simulate with known settings, fit them back from the log, within tolerances.

Tolerances (stated once, used below):

* a rate (probability or Poisson rate) is recovered within 4 standard errors
  of the fit, and the standard error is small enough to mean something;
* a median time within ``max(4 se, 10%)`` (``se`` of the log-median), a sigma
  within 0.15;
* a stalling company's slowdown within 15% (it is fitted with a smooth
  approximation of the simulator's rounding: docs/simulator.md);
* fixed delays (whole active days) exactly;
* the offices' times (route, re-check, sign-off, filing) like the other times: a
  median within ``max(4 se, 10%)``, a sigma within 0.15; the referral rates like
  the other rates (within 4 standard errors).
"""

from __future__ import annotations

import math
import sqlite3

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.cli import main
from fireflow.errors import InvalidArgument
from fireflow.sim import Behaviour, generate_population, simulate
from fireflow.sim import log as sim_log
from fireflow.sim.calibrate import NOT_IDENTIFIED, calibrate
from fireflow.store.errors import VerificationFailed

PLAN = load_plan("changle-2022")
POPULATION = generate_population(300, seed=8)

TRUTH = Behaviour(
    recheck_fail_rate=0.25,
    refusal_probability=0.06,
    stall_probability=0.3,
    stall_slowdown=2.0,
    stall_refusal_probability=0.3,
    rectify_working_days={"evacuation_blocked": (3.0, 0.5), "fire_lane_vehicle": (2.0, 0.7)},
    punish_probability=0.8,
    report_late_probability=0.25,
    report_late_working_days=(2, 6),
    enforcement_working_days=(4.0, 0.4),
    overdue_grace_working_days=4,
    refusal_after_working_days=2,
    certify_working_days=7,
    demolish_working_days=8,
    around_share={"fire_lane_vehicle": 0.5},
)


@pytest.fixture(scope="module")
def run():
    return simulate(PLAN, POPULATION, TRUTH, seed=8)


@pytest.fixture(scope="module")
def fit(run):
    return calibrate(run.events, PLAN, population=POPULATION, submissions=sim_log.submissions(run))


def _within_se(fit, name, truth, max_se):
    e = fit.estimate(name)
    assert e.se is not None
    assert e.se <= max_se, (name, e.se)
    assert abs(e.value - truth) <= 4 * e.se, (name, e.value, truth, e.se)
    assert e.low <= e.value <= e.high


def test_rates_are_recovered_within_four_standard_errors(fit):
    _within_se(fit, "recheck_fail_rate", 0.25, 0.02)
    _within_se(fit, "refusal_probability", 0.06, 0.015)
    _within_se(fit, "stall_refusal_probability", 0.3, 0.05)
    _within_se(fit, "punish_probability", 0.8, 0.05)
    _within_se(fit, "report_late_probability", 0.25, 0.03)
    _within_se(fit, "around_share.fire_lane_vehicle", 0.5, 0.05)
    for phase in ("self_inspection", "rectification", "consolidation"):
        for category, rate in TRUTH.hazard_rates[phase].items():
            est = fit.estimate(f"hazard_rates.{phase}.{category}")
            assert abs(est.value - rate) <= 4 * est.se + 1e-9, (phase, category, est, rate)


def test_stalling_companies_are_found(fit, run):
    e = fit.estimate("stall_probability")
    realised = run.stalling / len(POPULATION.companies)  # the draw of this run
    assert abs(e.value - realised) <= 4 * e.se
    assert abs(fit.estimate("stall_slowdown").value / 2.0 - 1) <= 0.15
    # the companies' posteriors: most companies are classified with confidence
    sure = [c for c in fit.companies if c.stall_posterior < 0.1 or c.stall_posterior > 0.9]
    assert len(sure) >= 0.8 * len(fit.companies)
    assert round(sum(c.stall_posterior for c in fit.companies)) == pytest.approx(
        run.stalling, abs=4 * e.se * len(fit.companies)
    )


def test_times_are_recovered(fit):
    for category, (median, sigma) in TRUTH.rectify_working_days.items():
        e = fit.estimate(f"rectify_working_days.{category}")
        m, s = e.value
        assert abs(math.log(m / median)) <= max(4 * e.se, 0.1), (category, e.value)
        assert abs(s - sigma) <= 0.15, (category, e.value)
    e = fit.estimate("enforcement_working_days")
    assert abs(math.log(e.value[0] / 4.0)) <= max(4 * e.se, 0.1)
    assert abs(e.value[1] - 0.4) <= 0.15


def test_fixed_delays_are_recovered_exactly(fit):
    b = fit.behaviour
    assert b.overdue_grace_working_days == 4
    assert b.refusal_after_working_days == 2
    assert b.certify_working_days == 7
    assert b.demolish_working_days == 8
    assert b.report_late_working_days == (2, 6)
    assert b.phase_sources == TRUTH.phase_sources
    assert (b.action_time, b.work_on_rest_days, b.expose_refusals) == (
        TRUTH.action_time,
        False,
        True,
    )


def test_the_behaviour_holds_every_estimate_and_keeps_the_rest(fit):
    b = fit.behaviour
    for name in ("recheck_fail_rate", "refusal_probability", "stall_probability"):
        assert getattr(b, name) == fit.estimate(name).value
    assert (
        b.rectify_working_days["evacuation_blocked"]
        == fit.estimate("rectify_working_days.evacuation_blocked").value
    )
    # not identified: kept from the base, each with its reason
    for name in ("spot_check_reopen_rate", "inspection_capacity", "recheck_capacity"):
        assert name in fit.not_identified
        assert getattr(b, name) == getattr(Behaviour(), name)
    assert fit.behaviour.hazard_rates["spot_check"] == Behaviour().hazard_rates["spot_check"]
    assert set(NOT_IDENTIFIED) <= set(fit.not_identified)
    b.check(PLAN)  # the fitted behaviour drives a simulation
    again = simulate(PLAN, generate_population(10, seed=1), b, seed=1)
    assert again.kpis["tickets"] > 0


#: The offices take their time and refer or decide only sometimes (六(四), 五(三)).
DUTY_TRUTH = Behaviour(
    route_working_days=(2.0, 0.5),
    recheck_working_days=(3.0, 0.5),
    sign_off_working_days=(2.0, 0.6),
    archive_working_days=(3.0, 0.4),
    refer_probability=0.6,
    decide_probability=0.7,
    decide_working_days=8,
)


@pytest.fixture(scope="module")
def duty_fit():
    population = generate_population(120, seed=4)
    run = simulate(PLAN, population, DUTY_TRUTH, seed=4)
    assert run.kpis["referrals"] > 50  # enough to mean something
    return calibrate(run.events, PLAN, population=population)


def test_the_offices_times_and_the_referral_rates_are_recovered(duty_fit):
    for name in ("route", "recheck", "sign_off", "archive"):
        median, sigma = getattr(DUTY_TRUTH, f"{name}_working_days")
        e = duty_fit.estimate(f"{name}_working_days")
        m, s = e.value
        assert e.se is not None
        assert abs(math.log(m / median)) <= max(4 * e.se, 0.1), (name, e.value)
        assert abs(s - sigma) <= 0.15, (name, e.value)
        assert getattr(duty_fit.behaviour, f"{name}_working_days") == e.value
    _within_se(duty_fit, "refer_probability", 0.6, 0.06)
    _within_se(duty_fit, "decide_probability", 0.7, 0.06)
    assert duty_fit.behaviour.decide_working_days == 8
    assert duty_fit.behaviour.refer_probability == duty_fit.estimate("refer_probability").value


def test_offices_acting_on_the_day_are_fitted_as_the_same_day(run, fit):
    # TRUTH keeps the default: every office acts on the day (the re-check: the next
    # active day, from the town's queue); the fit says so rather than inventing a median
    for name in ("route", "recheck", "sign_off", "archive"):
        assert fit.estimate(f"{name}_working_days").value == (0.0, 0.0)
        assert getattr(fit.behaviour, f"{name}_working_days") == (0.0, 0.0)


def test_calibration_is_deterministic(run, fit):
    again = calibrate(run.events, PLAN, population=POPULATION, submissions=sim_log.submissions(run))
    assert again.estimates == fit.estimates
    assert again.behaviour == fit.behaviour


def test_without_a_population_the_stalling_and_the_hazard_rates_are_not_identified(run):
    small = run.events[: len(run.events) // 3]
    fit = calibrate(small, PLAN)
    for name in ("stall_probability", "stall_slowdown", "hazard_rates", "report_late_probability"):
        assert name in fit.not_identified
    assert fit.behaviour.stall_probability == Behaviour().stall_probability
    assert "pooled" in fit.estimate("refusal_probability").note
    with pytest.raises(InvalidArgument, match="stall_probability"):
        fit.estimate("stall_probability")


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    recheck=st.floats(0.05, 0.5),
    refusal=st.floats(0.02, 0.2),
    punish=st.floats(0.2, 0.95),
    seed=st.integers(0, 2**32),
)
def test_any_rates_are_recovered(recheck, refusal, punish, seed):
    truth = Behaviour(
        recheck_fail_rate=recheck,
        refusal_probability=refusal,
        punish_probability=punish,
        stall_probability=0.0,
    )
    population = generate_population(120, seed=seed % 1000)
    result = simulate(PLAN, population, truth, seed=seed)
    fit = calibrate(result.events, PLAN, population=population)
    for name, value in (
        ("recheck_fail_rate", recheck),
        ("refusal_probability", refusal),
        ("punish_probability", punish),
    ):
        e = fit.estimate(name)
        # the binomial spread at the true rate: a fitted 0 of 9 has se 0, the truth does not
        spread = math.sqrt(value * (1 - value) / max(e.n, 1))
        assert abs(e.value - value) <= 4 * max(e.se, spread) + 0.02, (name, e, value)


# --------------------------------------------------------------------------- inputs


def test_a_store_is_read_and_verified_first(tmp_path):
    small = simulate(PLAN, generate_population(30, seed=2), seed=2)
    path = tmp_path / "sim.db"
    sim_log.write_store(small, path)
    fit = calibrate(path, PLAN)
    assert fit.events == len(small.events)
    assert fit.estimates == calibrate(small.events, PLAN).estimates
    with sqlite3.connect(path) as conn:  # rewrite one event's payload behind the chain's back
        conn.execute(
            "UPDATE events SET data = replace(data, 'inside', 'around') WHERE position = 0"
        )
    conn.close()
    with pytest.raises(VerificationFailed):
        calibrate(path, PLAN)


@pytest.mark.parametrize(
    ("source", "field"),
    [([], "events_or_store"), ([1, 2], "events[0]"), (42, "events_or_store")],
)
def test_bad_history_is_refused_naming_the_field(source, field):
    with pytest.raises(InvalidArgument) as exc:
        calibrate(source, PLAN)
    assert exc.value.field == field


def test_a_plan_is_required(run):
    with pytest.raises(InvalidArgument) as exc:
        calibrate(run.events[:50], "changle-2022")  # type: ignore[arg-type]
    assert exc.value.field == "plan"


def test_simulate_calibrate_from_a_store(tmp_path, capsys):
    store = tmp_path / "out" / "sim.db"
    assert (
        main(
            [
                "simulate",
                "--communities",
                "40",
                "--out",
                str(tmp_path / "out"),
                "--store",
                str(store),
            ]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "simulate",
            "--communities",
            "40",
            "--out",
            str(tmp_path / "again"),
            "--calibrate-from",
            str(store),
            "--calibrate-submissions",
            str(tmp_path / "out" / "submissions.jsonl"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "校准 calibration" in out
    assert "recheck_fail_rate" in out
    assert "report_late_probability" in out
    assert (tmp_path / "again" / "index.html").is_file()
    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM events WHERE position = 3")
    conn.close()
    code = main(
        [
            "simulate",
            "--communities",
            "40",
            "--out",
            str(tmp_path / "third"),
            "--calibrate-from",
            str(store),
        ]
    )
    _, err = capsys.readouterr()
    assert code == 1
    assert "does not verify" in err
    assert not (tmp_path / "third").exists()


def test_a_source_the_simulator_does_not_model_is_kept_with_the_reason():
    events = simulate(PLAN, generate_population(15, seed=5), seed=5).events
    odd = [
        attrs.evolve(e, payload={**e.payload, "source": "hotline"})
        if e.kind == "report" and e.at.month >= 11
        else e
        for e in events
    ]
    fit = calibrate(odd, PLAN)
    assert "'hotline'" in fit.not_identified["phase_sources.consolidation"]
    assert fit.behaviour.phase_sources["consolidation"] == "patrol"  # the base's
