"""The what-if simulator: real decide/evolve, determinism, KPIs from the log, plots, CLI."""

from __future__ import annotations

import csv
import gc
import hashlib
import math
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fireflow import InvalidArgument, PlanError, fold, load_plan
from fireflow.cli.sim import MISSING_EXTRA, app
from fireflow.events import canonical_bytes
from fireflow.sim import (
    Behaviour,
    Scenario,
    compare,
    generate_population,
    load_population,
    plan_overrides,
    shorten_phase,
    simulate,
)
from fireflow.sim.engine import SIMULATED_PHOTO
from fireflow.sim.population import parse_population
from fireflow.states import STATES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CSV = ROOT / "examples" / "annex4_survey.csv"
PLAN = load_plan("changle-2022")


@pytest.fixture(scope="module")
def population():
    return generate_population(80, seed=11)


@pytest.fixture(scope="module")
def result(population):
    return simulate(PLAN, population, seed=5, name="baseline")


@pytest.fixture(scope="module")
def busy(population):
    """Everything that can happen, happening often: refusals, stalls, failures, overtime."""
    behaviour = Behaviour(
        refusal_probability=0.2,
        stall_probability=0.5,
        recheck_fail_rate=0.3,
        spot_check_reopen_rate=0.6,
        third_party_inspectors=1,
        work_on_rest_days=True,
    )
    return simulate(PLAN, population, behaviour, seed=9, name="busy")


def by_ticket(events):
    out = defaultdict(list)
    for e in events:
        out[e.ticket_id].append(e)
    return out


# --------------------------------------------------------------------------- population


def test_generated_population_is_changle_sized_and_reproducible():
    pop = generate_population(seed=2022)
    assert len(pop) == 300
    assert len(pop.towns) == 18
    assert pop.towns[0] == "吴航街道"
    assert 60 <= len(pop.companies) <= 110
    assert pop == generate_population(seed=2022)
    assert pop != generate_population(seed=2023)
    assert all(40 <= c.households <= 4000 and c.buildings >= 1 for c in pop.communities)
    big = generate_population(1000, seed=1)
    assert len(big.towns) == math.ceil(1000 / (300 / 18))


def test_population_csv_round_trip(tmp_path):
    pop = generate_population(25, seed=4)
    path = tmp_path / "pop.csv"
    pop.to_csv(path)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    back = load_population(path)
    assert back.communities == pop.communities
    assert back.source == str(path)


def test_example_csv_in_annex4_shape_loads():
    pop = load_population(EXAMPLE_CSV)
    assert len(pop) == 40
    assert len(pop.towns) == 18
    self_managed = [c for c in pop.communities if not c.company]
    assert len(self_managed) == 1
    assert pop.communities[0].id == "C00001"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["小区名称", "户数"], ["A", "1"]], "missing column 乡镇（街道）"),
        ([["乡镇(街道)", "小区名称"], ["", "A"]], "<data>:2: 乡镇（街道） (town) is empty"),
        ([["town", "community", "户数"], ["T", "A", "many"]], "must be a whole number"),
        ([["town", "community"], ["T", "A"], ["T", "A"]], "listed twice (first on line 2)"),
        ([["town", "community"]], "no communities"),
    ],
)
def test_population_csv_errors_name_the_line_and_column(rows, message):
    with pytest.raises(InvalidArgument, match="population") as info:
        parse_population(rows)
    assert message in str(info.value)


def test_population_csv_accepts_english_headers_and_fullwidth_digits(tmp_path):
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(
            [["Town", "Community", "Households"], ["金峰镇", "金峰小区", "１,２００"]]
        )
    pop = load_population(path)
    assert pop.communities[0].households == 1200
    with pytest.raises(InvalidArgument, match="no such file"):
        load_population(tmp_path / "missing.csv")


def test_behaviour_is_validated_against_itself_and_the_plan():
    with pytest.raises(InvalidArgument, match="refusal_probability"):
        Behaviour(refusal_probability=1.5)
    with pytest.raises(InvalidArgument, match="inspection_capacity"):
        Behaviour(inspection_capacity=-1)
    with pytest.raises(InvalidArgument, match="unknown category"):
        Behaviour(hazard_rates={"rectification": {"potholes": 1.0}}).check(PLAN)
    with pytest.raises(InvalidArgument, match="unknown phase"):
        Behaviour(hazard_rates={"harvest": {}}).check(PLAN)
    with pytest.raises(InvalidArgument, match="unknown subtype"):
        Behaviour(subtype_weights={"fire_lane_vehicle": {"tank": 1.0}}).check(PLAN)
    b = Behaviour()
    assert b.replace(stall_probability=0.5).stall_probability == 0.5
    assert b == Behaviour()
    assert hash(b) == hash(Behaviour())


# --------------------------------------------------------------------------- the engine


def test_every_event_replays_through_fold(result, busy):
    for run in (result, busy):
        assert run.events is not None
        grouped = by_ticket(run.events)
        assert len(grouped) == len(run.tickets)
        for state in run.tickets:
            assert fold(grouped[state.ticket_id]) == state
        assert run.stale_actions == 0


def test_busy_run_exercises_the_whole_lifecycle(busy):
    kinds = Counter(e.kind for e in busy.events)
    for kind in (
        "report", "route", "set_deadline", "rectify", "apply_reinspection", "recheck_pass",
        "recheck_fail", "sign_off", "archive", "mark_overdue", "refuse", "escalate", "expose",
        "punish", "certify", "demolish", "clear", "resume", "reopen",
    ):  # fmt: skip
        assert kinds[kind] > 0, kind
    assert busy.kpis["inspections_third_party"] > 0
    assert {e.actor.agency for e in busy.events if e.kind == "report"} >= {
        "property",
        "town",
        "third_party",
        "housing",
    }


def test_nothing_happens_on_rest_days_unless_the_model_says_so(result, busy):
    cal = PLAN.calendar
    assert all(cal.is_working_day(e.at) for e in result.events)
    assert any(cal.is_rest_day(e.at) for e in busy.events)
    assert result.timeline.index[0].date() == date(2022, 1, 1)
    # Spring Festival 2022-01-31..02-06: nothing changes in those days
    spring = result.timeline.loc["2022-01-31":"2022-02-06"]
    assert (spring.diff().fillna(0) == 0).all().all()


def test_every_action_happens_at_the_action_time_in_the_plan_time_zone(result):
    local = {e.at.astimezone(PLAN.calendar._tz).time() for e in result.events}
    assert local == {time(10, 0)}
    later = simulate(PLAN, generate_population(5, seed=1), Behaviour(action_time=time(15, 30)))
    assert {e.at.isoformat()[11:] for e in later.events} == {"15:30:00+08:00"}


def test_same_seed_same_log_other_seed_other_log(population, result):
    again = simulate(PLAN, population, seed=5)
    assert [canonical_bytes(e) for e in again.events] == [canonical_bytes(e) for e in result.events]
    assert again.log_digest() == result.log_digest()
    other = simulate(PLAN, population, seed=6)
    assert other.log_digest() != result.log_digest()


def test_log_modes_digest_and_none(population, result):
    digest = simulate(PLAN, population, seed=5, log="digest")
    assert digest.events is None
    assert digest.log_digest() == result.log_digest()
    assert digest.kpis == result.kpis or all(
        digest.kpis[k] == result.kpis[k] or math.isnan(result.kpis[k]) for k in result.kpis
    )
    none = simulate(PLAN, population, seed=5, log="none")
    with pytest.raises(InvalidArgument, match="log"):
        none.log_digest()
    with pytest.raises(InvalidArgument, match="log"):
        simulate(PLAN, population, log="everything")  # type: ignore[arg-type]


_DETERMINISM = r"""
from fireflow import load_plan
from fireflow.sim import Behaviour, generate_population, simulate
r = simulate(load_plan("changle-2022"), generate_population(60, seed=3),
             Behaviour(stall_probability=0.3, refusal_probability=0.1), seed=2022)
print(r.log_digest(), r.n_events)
"""


def test_event_log_is_byte_identical_across_processes_and_hash_seeds():
    outputs = []
    for hash_seed in ("0", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        proc = subprocess.run(
            [sys.executable, "-c", _DETERMINISM],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout.split())
    assert outputs[0] == outputs[1]
    here = simulate(
        PLAN,
        generate_population(60, seed=3),
        Behaviour(stall_probability=0.3, refusal_probability=0.1),
        seed=2022,
    )
    # the digest of the towns' digests, in town order (a ticket id is T<town>-<n>)
    per_town = [hashlib.sha256() for _ in here.population.towns]
    for e in here.events:
        per_town[int(e.ticket_id[1:6]) - 1].update(canonical_bytes(e))
    h = hashlib.sha256(b"".join(t.digest() for t in per_town))
    assert outputs[0] == [h.hexdigest(), str(here.n_events)]


def test_photos_are_the_documented_placeholder(result):
    photos = {ev.sha256 for e in result.events for ev in e.evidence}
    assert photos == {SIMULATED_PHOTO}
    reports = [
        e for e in result.events if e.kind == "report" and e.payload["source"] == "self_inspection"
    ]
    assert reports
    assert all(e.evidence[0].kind == "photo_before" for e in reports)


# --------------------------------------------------------------------------- KPIs and the log


def test_kpis_are_consistent_with_the_log(result, busy):
    for run in (result, busy):
        k = run.kpis
        kinds = Counter(e.kind for e in run.events)
        assert k["tickets"] == kinds["report"] == len(run.tickets)
        assert k["events"] == len(run.events)
        assert k["escalations"] == kinds["escalate"]
        assert k["refusals"] == kinds["refuse"]
        assert k["exposures"] == kinds["expose"]
        assert k["punishments"] == kinds["punish"]
        assert k["recheck_failures"] == kinds["recheck_fail"]
        assert k["spot_check_reopened"] == kinds["reopen"]
        assert k["overdue_tickets"] == len(
            {e.ticket_id for e in run.events if e.kind == "mark_overdue"}
        )
        final = Counter(fold(evs).state for evs in by_ticket(run.events).values())
        assert k["archived"] == final["archived"]
        assert k["open_at_end"] == k["tickets"] - final["archived"]
        assert k["spot_check_new"] == sum(
            1 for e in run.events if e.kind == "report" and e.payload["source"] == "spot_check"
        )


def test_dossier_kpi_is_the_state_at_the_end_of_the_dossier_due_day(result):
    due = {d.id: d for d in PLAN.deadlines()}["dossier"].due
    end = PLAN.calendar.due_instant(due)
    states = {}
    for tid, evs in by_ticket(result.events).items():
        before = [e for e in evs if e.at < end]
        if before:
            states[tid] = fold(before).state
    assert result.kpis["dossier_tickets"] == len(states)
    assert result.kpis["rectified_by_dossier"] == sum(s == "archived" for s in states.values())
    assert result.kpis["rectified_by_dossier_share"] == pytest.approx(
        result.kpis["rectified_by_dossier"] / len(states)
    )


def test_escalations_come_from_due_escalations_and_match_the_events(busy):
    table = busy.escalation_table()
    events = [e for e in busy.events if e.kind == "escalate"]
    from_events = Counter((e.ticket_id, target) for e in events for target in e.payload["targets"])
    recorded = Counter(
        (row.subject, row.agency)
        for row in table[
            (table.via == "event") & table.kind.isin(["refusal", "overdue"])
        ].itertuples()
    )
    assert from_events == recorded
    rules = set(table.rule)
    assert {"R-ESC-REFUSAL", "R-ESC-OVERDUE", "R-ESC-EXPOSE"} <= rules
    assert {"R-TKT-SPOTCHECK", "R-ESC-OFFICIAL"} <= rules
    by_agency = busy.escalations_by_agency()
    assert by_agency["total"].sum() == len(table)
    assert "efficiency" in by_agency.index


def test_spot_check_is_the_plans_double_random_draw_and_reopens_with_reopen():
    pop = generate_population(31, seed=8)
    run = simulate(PLAN, pop, Behaviour(spot_check_reopen_rate=1.0), seed=1)
    assert run.kpis["spot_check_required"] == 4  # R-SPOT-RATIO: 10% of 31, rounded up
    assert run.kpis["spot_check_communities"] == 4
    assert run.kpis["spot_check_coverage"] == pytest.approx(4 / 31)
    spot = PLAN.phase("spot_check")
    reopens = [e for e in run.events if e.kind == "reopen"]
    assert len(reopens) == run.kpis["spot_check_reopened"] == run.kpis["spot_check_tickets"] > 0
    assert all(spot.start <= e.at.date() <= spot.end for e in reopens)
    for e in reopens:  # ordered by the drawn team's lead inspector (随机选派检查人员)
        assert e.actor.agency in ("housing", "fire")
        assert e.actor.person.startswith(e.actor.agency + "-")
        assert e.event_id.startswith("spotcheck-")
        assert "R-TKT-SPOTCHECK" in e.rules
    visits = run.spot_check_table()
    assert len(visits) == 4
    assert list(visits.columns) == [
        "date", "community", "name", "town", "team", "checked", "reopened", "found",
    ]  # fmt: skip
    again = simulate(PLAN, pop, Behaviour(spot_check_reopen_rate=1.0), seed=1)
    assert list(again.spot_check_table()["community"]) == list(visits["community"])
    other = simulate(PLAN, pop, Behaviour(spot_check_reopen_rate=1.0), seed=2)
    assert list(other.spot_check_table()["community"]) != list(visits["community"])


def test_spot_check_ratio_is_a_plan_setting():
    pop = generate_population(40, seed=8)
    plan = plan_overrides(PLAN, {"settings.spot_check.ratio": 0.25})
    run = simulate(plan, pop, seed=1, log="none")
    assert run.kpis["spot_check_required"] == run.kpis["spot_check_communities"] == 10


def test_reports_due_late_and_missing_judged_by_the_reporting_rules(result):
    table = result.report_table()
    assert list(table.index)[:3] == ["progress.mobilization", "progress.self_inspection", "ledger"]
    assert table.loc["ledger", "due_submissions"] == 80  # one per community
    assert table.loc["dossier", "due_submissions"] == len(result.population.towns)
    assert (table.on_time + table.late + table.missing == table.due_submissions).all()
    assert result.kpis["reports_due"] == table["due_submissions"].sum()
    assert result.kpis["reports_late"] == table["late"].sum()
    notices = result.escalation_table()
    late = notices[notices.kind.str.startswith("report_")]
    # 六(四): a town's late report goes to the efficiency office through the leads; the
    # property company's ledger goes to housing and fire (R-ESC-PROPERTY), never to efficiency
    assert set(late.rule) == {"R-ESC-OFFICIAL", "R-ESC-PROPERTY"}
    official = late[late.rule == "R-ESC-OFFICIAL"]
    company = late[late.rule == "R-ESC-PROPERTY"]
    assert set(official.agency) == {"housing", "fire", "efficiency"}
    assert set(company.agency) == {"housing", "fire"}
    assert set(company.subject.str.split("@").str[0]) == {"ledger"}
    # split by who failed: the towns' reports (R-ESC-OFFICIAL), the companies' ledgers
    assert result.kpis["notices_reports_official"] == len(official) // 3
    assert result.kpis["notices_reports_property"] == len(company) // 2
    assert "notices_reports" not in result.kpis
    never = simulate(PLAN, result.population, Behaviour(report_late_probability=0.0), seed=5)
    assert never.kpis["reports_late"] == never.kpis["reports_missing"] == 0
    always = simulate(PLAN, result.population, Behaviour(report_late_probability=1.0), seed=5)
    k = always.kpis
    assert k["reports_late"] + k["reports_missing"] == k["reports_due"]
    assert k["reports_missing"] > 0  # progress.consolidation is due 12-26: late is after 12-31
    assert k["reports_late_share"] == 1.0


def test_timelines_overall_and_per_town(result):
    tl = result.timeline
    assert len(tl) == 365
    assert list(tl.columns) == [s for s in STATES if s != "new"]
    assert tl.iloc[-1].sum() == len(result.tickets)
    reported_by = Counter(result.dates[d] for d in result.ticket_report_day)
    running = 0
    for day, total in zip(result.dates, tl.sum(axis=1), strict=True):
        running += reported_by.get(day, 0)
        assert total == running
    by_town = result.timeline_by_town
    assert len(by_town) == 365 * len(result.population.towns)
    assert (by_town.groupby(level="date").sum().to_numpy() == tl.to_numpy()).all()
    last = by_town.xs(tl.index[-1], level="date").sum(axis=1)
    per_town = Counter(t.town for t in result.tickets)
    assert {town: int(n) for town, n in last.items() if n} == dict(per_town)


# --------------------------------------------------------------------------- scenarios


def test_shorten_phase_moves_the_next_phase_and_the_dossier():
    short = shorten_phase(PLAN, "rectification", months=1)
    assert short.phase("rectification").end == date(2022, 6, 15)
    assert short.phase("spot_check").start == date(2022, 6, 16)
    due = {d.id: d.due for d in short.deadlines()}
    assert due["dossier"] == date(2022, 6, 15)
    assert due["progress.rectification"] == date(2022, 6, 10)
    with pytest.raises(PlanError, match="phases"):
        shorten_phase(PLAN, "mobilization", months=2)


def test_plan_overrides_paths_and_errors():
    p = plan_overrides(
        PLAN, {"phases[rectification].end": date(2022, 7, 10), "phases[3].start": "2022-07-11"}
    )
    assert p.phase("spot_check").start == date(2022, 7, 11)
    with pytest.raises(InvalidArgument, match="no item with id"):
        plan_overrides(PLAN, {"phases[harvest].end": "2022-07-10"})
    with pytest.raises(InvalidArgument, match="cannot read the path"):
        plan_overrides(PLAN, {"phases..end": 1})
    with pytest.raises(PlanError):
        plan_overrides(PLAN, {"settings.max_failed_rechecks": 0})


def test_what_if_scenarios_change_what_they_should(population, result):
    stall = simulate(PLAN, population, Behaviour(stall_probability=1.0), seed=5, name="stall")
    assert stall.kpis["stalling_companies"] == len(population.companies)
    assert stall.kpis["refusals"] > result.kpis["refusals"]
    assert stall.kpis["mean_days_to_archive"] > result.kpis["mean_days_to_archive"]
    third = simulate(PLAN, population, Behaviour(third_party_inspectors=2), seed=5)
    assert third.kpis["inspections"] == len(population)
    assert third.kpis["inspections_third_party"] > 0
    assert Scenario("x").behaviour == Behaviour()


def test_compare_puts_runs_side_by_side(result):
    other = simulate(PLAN, result.population, seed=6)
    table = compare(result, other)
    assert list(table.columns) == ["指标", "KPI", "baseline", "baseline#2"]
    assert table.loc["tickets", "baseline"] == result.kpis["tickets"]
    assert table.loc["rectified_by_dossier_share", "KPI"] == "Share filed by the dossier due day"
    with pytest.raises(InvalidArgument):
        compare()


# --------------------------------------------------------------------------- outputs


def test_plots_and_report_are_written(tmp_path, result):
    index = result.write_report(tmp_path / "out")
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"phases.png", "states.png", "escalations.png", "timeline.csv"} <= names
    assert {"timeline_by_town.csv", "kpis.csv", "index.html"} <= names
    for png in ("phases.png", "states.png", "escalations.png"):
        assert (tmp_path / "out" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = index.read_text(encoding="utf-8")
    assert '<figure id="chart-states">' in page  # the charts are inline SVG
    assert '<a href="states.png">states.png</a>' in page  # the PNGs are linked for documents
    assert "按期整改归档率" in page
    assert {"towns.csv", "open_communities.csv"} <= names
    # duties missed and referrals by party (六(四)): a table on the page and a CSV
    assert "Duties missed and referrals by party" in page
    with (tmp_path / "out" / "accountability.csv").open(encoding="utf-8-sig", newline="") as f:
        parties = list(csv.DictReader(f))
    # a duty owed by two agencies (a sign-off) is on both rows, once in the KPI
    assert sum(int(p["duties_missed"]) for p in parties) >= result.kpis["duties_missed"]
    assert sum(int(p["reports_late"]) for p in parties) == (
        result.kpis["notices_reports_official"] + result.kpis["notices_reports_property"]
    )
    with (tmp_path / "out" / "timeline.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["date", "reported", "routed"]
    assert len(rows) == 366


def test_html_is_escaped_and_repr_html_works(tmp_path, population):
    run = simulate(PLAN, generate_population(6, seed=2), seed=1, name="<script>x</script>")
    html_text = run._repr_html_()
    assert "<script>" not in html_text
    assert "&lt;script&gt;" in html_text
    page = run.write_report(tmp_path).read_text(encoding="utf-8")
    assert "<script>" not in page


def test_plots_fall_back_to_english_without_a_cjk_font(result):
    from fireflow.sim import plots

    fig = plots.plot_phases(PLAN, english=True)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "Community dossiers" in labels  # the (一区一档) of its English name is dropped
    assert all(ord(ch) < 0x2E80 for text in labels for ch in text)
    if plots.cjk_font() is None:  # this machine: English by default, and no warning
        fig = plots.plot_states(result)
        assert "Ticket states" in fig.axes[0].get_title()
    assert plots.latin("金峰镇 (Jinfeng)") == "(Jinfeng)"


# --------------------------------------------------------------------------- CLI


def test_cli_writes_the_report(tmp_path):
    out = tmp_path / "report"
    res = CliRunner().invoke(app, ["--out", str(out), "--communities", "20", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "按期整改归档率" in res.output
    assert "Share filed by the dossier due day" in res.output
    assert (out / "index.html").is_file()
    assert (out / "timeline.csv").is_file()
    assert (out / "states.png").is_file()


def test_cli_reads_a_population_csv_and_reports_bad_input(tmp_path):
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["--population", str(EXAMPLE_CSV), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "40 个小区" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("小区名称\nA\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["--population", str(bad), "--out", str(out)])
    assert res.exit_code == 1
    assert "missing column" in res.output
    res = CliRunner().invoke(app, ["--plan", "no-such-plan", "--out", str(out)])
    assert res.exit_code == 1
    assert "no-such-plan" in res.output


def test_cli_names_the_extra_when_pandas_or_matplotlib_is_missing(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    res = CliRunner().invoke(app, [])
    assert res.exit_code == 1
    assert "pip install 'fireflow[sim]'" in res.output
    assert MISSING_EXTRA.splitlines()[0] in res.output


# --------------------------------------------------------------------------- the collector
def test_the_cyclic_collector_is_paused_during_a_run_and_restored_after(population):
    seen: list[bool] = []

    def progress(done: int, total: int) -> None:
        seen.append(gc.isenabled())
        if done == 40:
            raise KeyboardInterrupt  # a user stopping the run half-way

    assert gc.isenabled()
    with pytest.raises(KeyboardInterrupt):
        simulate(PLAN, population, seed=5, progress=progress)
    assert len(seen) == 40
    assert not any(seen)  # off while the run went on
    assert gc.isenabled()  # back on although the run failed
    gc.disable()
    try:
        simulate(PLAN, generate_population(5, seed=1), seed=1)
        assert not gc.isenabled()  # a caller's choice is left as it was
    finally:
        gc.enable()
