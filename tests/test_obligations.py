"""Report senders, the named person, phase duties as obligations (issue 22 items 5, 7b, 8).

Hand-picked cases use the plan's own dates (2022): 01-31 falls in the Spring Festival
holiday (01-31 to 02-06), so a duty due at the end of mobilization is due 02-07; 03-15 is
a Tuesday, 10-15 a Saturday (rolled to Monday 10-17), 12-31 a Saturday followed by the New
Year holiday (rolled to Tuesday 2023-01-03).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import base_data

from fireflow import Actor, InvalidArgument, load_plan
from fireflow.errors import PlanError
from fireflow.model import plan_digest
from fireflow.plan import validate_plan_data
from fireflow.rules.obligations import (
    all_obligations,
    duty_obligations,
    duty_status,
    meeting_intervals,
    never_inspected,
)
from fireflow.rules.reporting import (
    Submission,
    SubmissionRefused,
    check_submission,
    obligations,
    report_escalations,
    sender_kind,
    status,
)
from fireflow.rules.spotcheck import (
    Community,
    Finding,
    Inspector,
    OutsideSpotCheckPhase,
    check_spot_check_window,
    draw,
    draw_inputs,
    findings_to_commands,
)

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
TOWNS = {"金峰镇": ["金峰小区", "华侨新村"], "首占镇": ["首占花园"]}
AGENCIES = [a.id for a in PLAN.agencies]


def sh(y, m, d, h=10):
    return datetime(y, m, d, h, tzinfo=SH)


def plan_with(settings=None, progress=None):
    data = base_data()
    data["settings"].update(settings or {})
    data["progress_reports"].update(progress or {})
    return validate_plan_data(data)


def by_key(statuses):
    return {s.obligation.key: s for s in statuses}


# --------------------------------------------------------------------------- #
# Item 5: who must send each report


def test_each_report_names_its_senders():
    senders = {o.report_id: o.senders for o in obligations(PLAN, TOWNS)}
    assert senders["ledger"] == ("property",)  # 五(二) 物业服务企业…报送
    assert senders["dossier"] == ("town",)  # 五(三) 统一整理报送 (default reading)
    assert senders["summary"] == ("town",)  # 六(六)
    assert senders["progress.rectification"] == ("town",)  # 六(六) 专人


@pytest.mark.parametrize(
    ("report", "community", "wrong", "rule"),
    [
        ("ledger", "金峰小区", "fire", "R-DUE-LEDGER"),
        ("ledger", "金峰小区", "town", "R-DUE-LEDGER"),
        ("dossier", None, "property", "R-DUE-DOSSIER"),
        ("summary", None, "public", "R-DUE-SUMMARY"),
        ("progress.rectification", None, "public", "R-DUE-PROGRESS"),
    ],
)
def test_a_report_from_the_wrong_sender_does_not_count(report, community, wrong, rule):
    sub = Submission(report, "金峰镇", sh(2022, 3, 1), Actor(wrong, "某"), community=community)
    ob = next(o for o in obligations(PLAN, TOWNS) if o.key == (report, "金峰镇", community or ""))
    with pytest.raises(SubmissionRefused) as info:
        check_submission(PLAN, ob, sub)
    assert (info.value.field, info.value.rule, info.value.report_id) == ("by.agency", rule, report)
    assert isinstance(info.value, InvalidArgument)
    s = by_key(status(PLAN, TOWNS, [sub], sh(2022, 12, 31)))[ob.key]
    assert s.state == "missing"  # it does not count, whenever it came
    assert s.wrong_senders == (wrong,)
    assert s.submissions == 0
    assert rule in s.rules
    kinds = {(e.kind, e.rule) for e in report_escalations(PLAN, [s])}
    assert ("report_wrong_sender", rule) in kinds
    notice = next(e for e in report_escalations(PLAN, [s]) if e.kind == "report_wrong_sender")
    assert PLAN.agency(wrong).name.zh in notice.reason_zh  # people read names, not ids
    assert PLAN.agency(ob.senders[0]).name.zh in notice.reason_zh


def test_progress_reports_name_the_responsible_person():
    ob = next(o for o in obligations(PLAN, TOWNS) if o.key == ("progress.spot_check", "金峰镇", ""))
    assert ob.named_person
    unnamed = Submission("progress.spot_check", "金峰镇", sh(2022, 10, 9), Actor("town"))
    with pytest.raises(SubmissionRefused) as info:
        check_submission(PLAN, ob, unnamed)
    assert (info.value.field, info.value.rule) == ("by.person", "R-DUE-PROGRESS")
    named = Submission("progress.spot_check", "金峰镇", sh(2022, 10, 9), Actor("town", " 张 "))
    check_submission(PLAN, ob, named)
    s = by_key(status(PLAN, TOWNS, [named], sh(2022, 10, 20)))[ob.key]
    assert (s.state, s.responsible, s.unnamed) == ("on_time", "张", False)
    s = by_key(status(PLAN, TOWNS, [unnamed], sh(2022, 10, 20)))[ob.key]
    assert s.unnamed  # still shown: the record names nobody
    ledger = next(o for o in obligations(PLAN, TOWNS) if o.report_id == "ledger")
    assert not ledger.named_person  # the plan names no 专人 for the ledger
    off = plan_with(progress={"named_person": False})
    ob_off = next(o for o in obligations(off, TOWNS) if o.key == ob.key)
    check_submission(off, ob_off, unnamed)  # a plan that asks for no named person


def test_a_missed_ledger_is_a_property_case_and_a_missed_dossier_an_official_one():
    statuses = status(PLAN, TOWNS, [], sh(2022, 7, 20))
    esc = {(e.report_id, e.town, e.community): e for e in report_escalations(PLAN, statuses)}
    ledger = esc["ledger", "金峰镇", "金峰小区"]
    assert (ledger.rule, ledger.targets) == ("R-ESC-PROPERTY", ("housing", "fire"))
    assert (ledger.referred_by, ledger.referred_to, ledger.accountable) == ((), "", ("property",))
    assert "efficiency" not in ledger.targets
    dossier = esc["dossier", "首占镇", None]
    assert (dossier.rule, dossier.targets) == ("R-ESC-OFFICIAL", ("housing", "fire", "efficiency"))
    assert (dossier.referred_by, dossier.referred_to) == (("housing", "fire"), "efficiency")
    assert dossier.accountable == ("town",)


def test_property_escalation_to_and_property_companies_are_settings():
    plan = plan_with({"property_escalation_to": ["housing"]})
    statuses = status(plan, TOWNS, [], sh(2022, 3, 20))
    ledgers = [e for e in report_escalations(plan, statuses) if e.report_id == "ledger"]
    assert {e.targets for e in ledgers} == {("housing",)}
    plan = plan_with({"property_companies": []})  # no sender is a property company
    ob = next(o for o in obligations(plan, TOWNS) if o.report_id == "ledger")
    assert sender_kind(plan, ob) == "official"
    with pytest.raises(PlanError, match=r"settings\.property_companies"):
        plan_with({"property_companies": ["nobody"]})


@given(
    report=st.sampled_from(["ledger", "dossier", "summary", "progress.spot_check"]),
    agency=st.sampled_from(AGENCIES),
    day=st.integers(0, 364),
)
def test_a_submission_counts_exactly_when_its_sender_is_named(report, agency, day):
    community = "金峰小区" if report == "ledger" else None
    ob = next(o for o in obligations(PLAN, TOWNS) if o.key == (report, "金峰镇", community or ""))
    when = sh(2022, 1, 1) + timedelta(days=day)
    sub = Submission(report, "金峰镇", when, Actor(agency, "张"), community=community)
    s = by_key(status(PLAN, TOWNS, [sub], sh(2022, 12, 31, 23)))[ob.key]
    named = agency in ob.senders
    assert (s.submissions == 1) == named
    assert (s.wrong_senders == (agency,)) == (not named)
    try:
        check_submission(PLAN, ob, sub)
        refused = False
    except SubmissionRefused:
        refused = True
    assert refused == (not named)
    # a missed report escalates to the property case iff the senders are property companies
    for e in report_escalations(PLAN, [s]):
        if e.kind in ("report_late", "report_missing"):
            prop = sender_kind(PLAN, ob) == "property"
            assert e.rule == ("R-ESC-PROPERTY" if prop else "R-ESC-OFFICIAL")
            assert ("efficiency" in e.targets) == (not prop)


# --------------------------------------------------------------------------- #
# Item 7b: the spot-check window


def test_findings_outside_the_spot_check_phase_are_refused():
    inputs = draw_inputs(PLAN, [Community("C1", "T")], [Inspector("H1", "housing")])
    d = draw(inputs, "seed-for-the-window-test-0123456789")
    findings = [Finding("C1", "evacuation_blocked", compliant=False)]
    findings_to_commands(PLAN, d, findings, [], sh(2022, 8, 1))  # inside: accepted
    for when in (sh(2022, 7, 15, 23), sh(2022, 10, 16, 0), sh(2023, 1, 5)):
        with pytest.raises(OutsideSpotCheckPhase) as info:
            findings_to_commands(PLAN, d, findings, [], when)
        assert (info.value.field, info.value.rule) == ("at", "R-SPOT-WINDOW")
        assert info.value.window == ("2022-07-16", "2022-10-15")
    assert info.value.phase is None  # 2023: outside the campaign


def spot_check_phase(phase):
    return {"spot_check": {**base_data()["settings"]["spot_check"], "phase": phase}}


def test_the_spot_check_phase_is_a_setting():
    plan = plan_with(spot_check_phase("consolidation"))
    check_spot_check_window(plan, sh(2022, 11, 1))
    with pytest.raises(OutsideSpotCheckPhase):
        check_spot_check_window(plan, sh(2022, 8, 1))
    with pytest.raises(PlanError, match=r"settings\.spot_check\.phase"):
        plan_with(spot_check_phase("nonexistent"))
    # no window (null): findings are accepted at any time
    check_spot_check_window(plan_with(spot_check_phase(None)), sh(2022, 3, 1))


def test_the_phase_duties_are_not_part_of_the_digest():
    """Duties and named persons decide report obligations, not ticket events: a history
    bound to the plan continues whatever the duties say (model.plan_rule_data)."""
    data = base_data()
    digest = plan_digest(validate_plan_data(data))
    # a plan written before the duties: neither the duties nor the rules only they cite
    cited = {d["rule"] for d in data["duties"]}
    data["duties"] = []
    data["rules"] = [r for r in data["rules"] if r["id"] not in cited]
    for item in data["deadlines"]:
        item["named_person"] = not item.get("named_person", False)
    assert plan_digest(validate_plan_data(data)) == digest
    data["settings"]["max_failed_rechecks"] += 1  # a setting the engine reads does count
    assert plan_digest(validate_plan_data(data)) != digest


# --------------------------------------------------------------------------- #
# Item 8: phase duties as obligations


def test_every_duty_has_a_sender_a_deadline_and_a_rule_with_its_clause():
    obs = duty_obligations(PLAN, TOWNS)
    by_id = {}
    for o in obs:
        by_id.setdefault(o.report_id.split(".")[0], []).append(o)
    assert set(by_id) == {
        "work_plan", "mobilization_meeting", "notice_posted", "self_inspected",
        "town_inspected", "spot_check_done", "results_circulated", "mechanism_established",
        "joint_meeting", "spot_check_published",
    }  # fmt: skip
    for o in obs:
        assert o.kind == "duty"
        assert o.senders
        rule = PLAN.rule(o.rule)
        assert rule.clause == o.clause
        assert rule.basis == "mixed"  # the phase-end deadline is a default reading
        assert rule.default_zh
        assert o.default_due  # the plan gives no date for any of them
        assert o.nominal == PLAN.phase(o.phase).end or o.report_id.startswith("joint_meeting")
    assert len(by_id["work_plan"]) == 2  # per town
    assert len(by_id["notice_posted"]) == 3  # per community
    (published,) = by_id["spot_check_published"]  # once for the district
    assert (published.town, published.senders, published.due) == (
        "福州市长乐区", ("housing", "fire"), date(2022, 10, 17))  # fmt: skip
    assert by_id["work_plan"][0].due == date(2022, 2, 7)  # 01-31 in the Spring Festival
    assert by_id["results_circulated"][0].due == date(2023, 1, 3)  # 12-31 Sat, New Year


def test_joint_meetings_follow_the_interval_setting():
    n = len([o for o in duty_obligations(PLAN, {"T": ["C"]}) if o.rule == "R-OBL-JOINT-MEETING"])
    assert n == 3  # 10-16..11-14, 11-15..12-14, 12-15..12-31
    plan = plan_with({"joint_meeting_interval_days": 7})
    obs = [o for o in duty_obligations(plan, {"T": ["C"]}) if o.rule == "R-OBL-JOINT-MEETING"]
    assert len(obs) == 11  # 77 days of consolidation (10-16..12-31) in weeks
    assert obs[0].nominal == date(2022, 10, 22)


@given(every=st.integers(1, 120), offset=st.integers(0, 76))
def test_a_meeting_meets_exactly_the_interval_it_falls_in(every, offset):
    plan = plan_with({"joint_meeting_interval_days": every})
    duty = next(d for d in plan.duties if d.id == "joint_meeting")
    windows = meeting_intervals(plan, duty)
    phase = plan.phase("consolidation")
    # the intervals partition the phase
    assert windows[0][0] == phase.start
    assert windows[-1][1] == phase.end
    assert all(b + timedelta(days=1) == c for (_, b), (c, _) in pairwise(windows))
    day = phase.start + timedelta(days=offset)
    when = datetime(day.year, day.month, day.day, 15, tzinfo=SH)
    sub = Submission("joint_meeting", "T", when, Actor("town", "刘"))
    statuses = duty_status(plan, {"T": ["C"]}, [sub], sh(2023, 2, 1))
    met = [s.obligation.report_id for s in statuses if s.submissions]
    (n,) = [i for i, (a, b) in enumerate(windows, start=1) if a <= day <= b]
    assert met == [f"joint_meeting.{n}"]


def test_communities_never_inspected_are_listed_and_tickets_prove_inspection():
    from fireflow.ticket import Ticket

    t = Ticket("S-1", PLAN)
    t.command(
        "report", sh(2022, 2, 15), "property", "陈", community="华侨新村", town="金峰镇",
        category="evacuation_blocked", subtype="goods", location="inside",
        source="self_inspection", evidence=[{"kind": "photo_before", "sha256": "a" * 64}],
    )  # fmt: skip
    rec = Submission("self_inspected", "首占镇", sh(2022, 2, 20), Actor("property", "林"),
                     community="首占花园")  # fmt: skip
    statuses = duty_status(PLAN, TOWNS, [rec], sh(2022, 3, 20), tickets=[t.state])
    assert never_inspected(statuses, "self_inspected") == [("金峰镇", "金峰小区")]
    # the town's full inspection (五(三)) is another duty: nobody has done it yet
    assert len(never_inspected(statuses, "town_inspected")) == 3
    # a self-inspection ticket outside the phase proves nothing
    late = Ticket("S-2", PLAN)
    late.command(
        "report", sh(2022, 4, 1), "property", "陈", community="金峰小区", town="金峰镇",
        category="evacuation_blocked", subtype="goods", location="inside",
        source="self_inspection", evidence=[{"kind": "photo_before", "sha256": "b" * 64}],
    )  # fmt: skip
    statuses = duty_status(PLAN, TOWNS, [rec], sh(2022, 4, 2), tickets=[t.state, late.state])
    assert ("金峰镇", "金峰小区") in never_inspected(statuses, "self_inspected")


def test_a_missed_duty_escalates_like_a_report():
    statuses = duty_status(PLAN, TOWNS, [], sh(2022, 3, 20))
    esc = report_escalations(PLAN, statuses)
    notice = [e for e in esc if e.report_id == "notice_posted"]
    assert {(e.rule, e.targets) for e in notice} == {("R-ESC-PROPERTY", ("housing", "fire"))}
    work = [e for e in esc if e.report_id == "work_plan"]
    assert {e.rule for e in work} == {"R-ESC-OFFICIAL"}
    assert all(e.referred_to == "efficiency" for e in work)


def test_work_plan_contents_leader_and_liaison():
    contents = ("整治要求", "时间节点", "职责分工", "责任领导", "责任清单")
    sub = Submission("work_plan", "金峰镇", sh(2022, 1, 20), Actor("town", "刘"), contents=contents)
    s = by_key(duty_status(PLAN, TOWNS, [sub], sh(2022, 2, 10)))["work_plan", "金峰镇", ""]
    assert s.state == "on_time"
    assert s.missing_contents == ("联络人",)
    # the plan names no recipient: an incomplete work plan goes back to the lead departments
    (e,) = report_escalations(PLAN, [s])
    assert (e.kind, e.rule, e.targets) == (
        "report_incomplete",
        "R-OBL-WORK-PLAN",
        ("housing", "fire"),
    )


def test_all_obligations_joins_reports_and_duties_in_date_order():
    obs = all_obligations(PLAN, TOWNS)
    assert {o.kind for o in obs} == {"report", "duty"}
    assert [o.due for o in obs] == sorted(o.due for o in obs)
    assert len(obs) == len(obligations(PLAN, TOWNS)) + len(duty_obligations(PLAN, TOWNS))


def test_duties_are_validated_and_optional():
    data = base_data()
    data["duties"] = []
    assert validate_plan_data(data).duties == ()  # a plan of the earlier shape still loads
    data = base_data()
    del data["duties"]
    assert validate_plan_data(data).duties == ()
    for key, value, path in (
        ("senders", ["nobody"], "duties[0].senders[0]"),
        ("rule", "R-NOT-THERE", "duties[0].rule"),
        ("phase", "nowhen", "duties[0].phase"),
        ("id", "ledger", "duties[0].id"),
    ):
        data = base_data()
        data["duties"][0][key] = value
        with pytest.raises(PlanError) as info:
            validate_plan_data(data)
        assert path in {p.path for p in info.value.problems}


def test_submissions_for_unknown_duties_or_towns_are_refused():
    bad = Submission("work_plan", "无此镇", sh(2022, 1, 20), Actor("town", "刘"))
    with pytest.raises(InvalidArgument) as info:
        duty_status(PLAN, TOWNS, [bad], sh(2022, 2, 10))
    assert info.value.field == "submissions[0].town"
    with pytest.raises(InvalidArgument):
        duty_status(PLAN, TOWNS, [], datetime(2022, 2, 10))  # noqa: DTZ001 (naive on purpose)


# --------------------------------------------------------------------------- #
# The scenario steps that express these rules


def _run(steps: str):
    from fireflow.testing.runner import run_scenario
    from fireflow.testing.scenario import parse_scenario

    text = f"id: t\ntitle_zh: 测试\ntitle_en: Test\nrules: [R-OBL-NOTICE]\nsteps:\n{steps}"
    return run_scenario(parse_scenario(text))


def test_obligation_steps_report_what_differs():
    ok = _run(
        "  - obligation: {id: ledger, community: C01, at: 2022-03-20 09:00,\n"
        "      submissions: [{by: fire, at: 2022-03-10 10:00}],\n"
        "      expect: {state: missing, wrong_senders: [fire],\n"
        "               refused: {rule: R-DUE-LEDGER, field: by.agency}}}\n"
    )
    assert ok.ok, ok.report()
    bad = _run(
        "  - obligation: {id: ledger, community: C01, at: 2022-03-20 09:00,\n"
        "      submissions: [{by: fire, at: 2022-03-10 10:00}],\n"
        "      expect: {state: on_time, refused: null,\n"
        "               escalations: [{rule: R-ESC-OFFICIAL}]}}\n"
    )
    fields = {m.what for f in bad.failures for m in f.mismatches}
    assert fields == {"obligation.state", "obligation.refused", "obligation.escalations"}
    unknown = _run("  - obligation: {id: nothing, at: 2022-03-20 09:00, expect: {}}\n")
    assert {m.what for f in unknown.failures for m in f.mismatches} == {"obligation.id"}


def test_spot_check_window_steps():
    assert _run("  - spot_check_window: {at: 2022-08-01 10:00, accepted: true}\n").ok
    bad = _run("  - spot_check_window: {at: 2022-10-16 10:00, accepted: true}\n")
    assert not bad.ok
    assert bad.failures[0].mismatches[0].rule == "R-SPOT-WINDOW"


def test_the_summary_is_sent_by_the_named_person_too():
    ob = next(o for o in obligations(PLAN, TOWNS) if o.key == ("summary", "金峰镇", ""))
    assert ob.named_person  # 六(六) 安排专人…12月10日前报送专项整治工作总结报告
    with pytest.raises(SubmissionRefused) as info:
        check_submission(PLAN, ob, Submission("summary", "金峰镇", sh(2022, 12, 9), Actor("town")))
    assert (info.value.field, info.value.rule) == ("by.person", "R-DUE-SUMMARY")


# --------------------------------------------------------------------------- #
# A property over random records: every missed obligation has exactly one escalation,
# to the party 六(四) names


SMALL = {"金峰镇": ["金峰小区"], "首占镇": ["首占花园"]}
_ALL = all_obligations(PLAN, SMALL)


@st.composite
def _records(draw):
    out = []
    for _ in range(draw(st.integers(0, 12))):
        o = draw(st.sampled_from(_ALL))
        rid = o.report_id.split(".")[0] if o.kind == "duty" else o.report_id
        agency = draw(st.sampled_from([*o.senders, "public", "fire", "property", "town"]))
        day = draw(st.integers(0, 380))
        when = sh(2022, 1, 1) + timedelta(days=day)
        out.append(Submission(rid, o.town, when, Actor(agency, "某"), community=o.community))
    return out


@settings(max_examples=40, deadline=None)
@given(records=_records(), day=st.integers(0, 380))
def test_every_missed_obligation_escalates_once_to_the_right_party(records, day):
    at = sh(2022, 1, 1) + timedelta(days=day)
    reports = [r for r in records if r.report_id not in {d.id for d in PLAN.duties}]
    statuses = [*status(PLAN, SMALL, reports, at), *duty_status(PLAN, SMALL, records, at)]
    assert len(statuses) == len(_ALL)
    esc = report_escalations(PLAN, statuses)
    for s in statuses:
        o = s.obligation
        mine = [e for e in esc if (e.report_id, e.town, e.community) == (o.report_id, o.town,
                o.community) and e.kind in ("report_late", "report_missing")]  # fmt: skip
        missed = s.state in ("late", "missing")
        assert len(mine) == (1 if missed else 0)
        if missed:
            (e,) = mine
            if sender_kind(PLAN, o) == "property":
                assert (e.rule, e.targets) == ("R-ESC-PROPERTY", ("housing", "fire"))
            else:
                assert e.rule == "R-ESC-OFFICIAL"
                assert e.targets[-1] == "efficiency"
                assert e.referred_by == ("housing", "fire")
        # a record from a sender the obligation does not name never counts
        assert not set(s.wrong_senders) & set(o.senders)


def test_annex3_steps_report_what_differs():
    steps = (
        "  - annex3:\n"
        "      communities: [C01]\n"
        "      draft: true\n"
        "      expect: {refused: false, draft_marked: true,\n"
        "               cells: {C01: {evacuation_blocked: %s}}}\n"
    )
    assert _run(steps % "未核查").ok
    bad = _run(steps % "未发现问题")  # nobody checked it: never "no problem found"
    (m,) = [m for f in bad.failures for m in f.mismatches]
    assert (m.what, m.expected, m.actual) == (
        "annex3.C01.evacuation_blocked",
        "未发现问题",
        "未核查",
    )
    refused = _run("  - annex3: {communities: [C01], expect: {refused: false}}\n")
    assert [m.what for f in refused.failures for m in f.mismatches] == ["annex3"]
