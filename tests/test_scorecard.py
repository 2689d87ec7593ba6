"""Scorecards for the annual assessments (六(四), issue 22 item 9), from history.

Deadlines by hand (2022): fire_lane_vehicle gets 3 calendar days; reported 03-21 (Mon),
due 03-24 (Thu). Referrals use the contract of the accountability work: an event of kind
``refer`` (payload case, accountable, persons, reason_zh) and ``decide_referral``
(payload referral = the refer event's id, outcome), built here directly.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fireflow import Actor, event_to_data, load_plan
from fireflow.cli.reports import register
from fireflow.errors import NaiveDatetime, OutputError
from fireflow.events import Event
from fireflow.rules.reporting import Submission
from fireflow.scorecard import COLUMNS, scorecard_csv, scorecard_html, scorecards
from fireflow.ticket import Ticket

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")


def at(m, d, h=10):
    return datetime(2022, m, d, h, tzinfo=SH)


def lane_ticket(tid, community, town, *, rectify_after=None, fail=False, refuse=False):
    t = Ticket(tid, PLAN)
    t.command(
        "report", at(3, 21), "town", "李", community=community, town=town,
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", at(3, 21), "town")
    t.command("set_deadline", at(3, 21), "town")
    if refuse:
        t.command("refuse", at(3, 22), "property", reason="业主拒不挪车")
    if rectify_after is not None:
        when = at(3, 21) + timedelta(days=rectify_after)
        t.command("rectify", when, "property")
        t.command("apply_reinspection", when, "property")
        if fail:
            t.command("recheck_fail", when + timedelta(hours=2), "town",
                      participants=[{"agency": "housing"}], reason="仍有车辆")  # fmt: skip
    return t


def referral(ticket, seq, event_id, accountable, when):
    return Event(
        event_id=event_id, ticket_id=ticket, seq=seq, kind="refer", at=when,
        actor=Actor("housing", "王"),
        payload={"case": "slow", "accountable": accountable, "persons": ["赵"],
                 "reason_zh": "慢作为"},
        rules=("R-ESC-OFFICIAL",),
    )  # fmt: skip


def decision(ticket, seq, refer_id, outcome, when):
    return Event(
        event_id=f"{refer_id}-d", ticket_id=ticket, seq=seq, kind="decide_referral", at=when,
        actor=Actor("efficiency", "钱"), payload={"referral": refer_id, "outcome": outcome},
    )  # fmt: skip


COMPANIES = {"金峰小区": "榕城物业", "华侨新村": "榕城物业", "首占花园": "闽江物业"}
TOWNS = {"金峰镇": ["金峰小区", "华侨新村"], "首占镇": ["首占花园"]}


def history():
    on_time = lane_ticket("T-1", "金峰小区", "金峰镇", rectify_after=2, fail=True)
    late = lane_ticket("T-2", "华侨新村", "金峰镇", rectify_after=6)  # 03-27, 3 days late
    open_late = lane_ticket("T-3", "首占花园", "首占镇", refuse=True)
    events = [*on_time.events, *late.events, *open_late.events]
    n = len(open_late.events)
    events.append(referral("T-3", n + 1, "ref-1", ["town"], at(4, 1)))
    events.append(decision("T-3", n + 2, "ref-1", "诫勉谈话", at(4, 5)))
    events.append(referral("T-3", n + 3, "ref-2", ["town", "property"], at(4, 6)))
    return events


def test_company_and_unit_cards_from_history():
    cards = scorecards(history(), PLAN, at(4, 10), towns=TOWNS, companies=COMPANIES)
    rc = cards.companies.loc["榕城物业"]
    assert (rc["隐患数"], rc["按期整改"], rc["逾期整改"], rc["复查不合格"]) == (2, 1, 1, 1)
    # T-2 rectified 03-27, due 03-24: 3 days; T-1 failed its re-check on 03-23 and got a new
    # deadline (3 days: 03-26, a Saturday, rolled to Monday 03-28), still open on 04-10: 13
    assert rc["逾期未改"] == 1
    assert rc["逾期天数"] == 3 + 13
    mj = cards.companies.loc["闽江物业"]
    assert (mj["隐患数"], mj["逾期未改"], mj["拒不整改"]) == (1, 1, 1)
    assert mj["逾期天数"] == 17  # due 03-24, still open on 04-10
    assert mj["转报问责"] == 1  # named in ref-2
    # 属地: the town card counts every hazard of its area
    jf = cards.units.loc["金峰镇"]
    assert (jf["单位类别"], jf["隐患数"], jf["按期整改"], jf["逾期整改"]) == (
        "乡镇（街道）",
        2,
        1,
        1,
    )
    sz = cards.units.loc["首占镇"]
    assert (sz["转报问责"], sz["已作结论"], sz["问责结论"]) == (2, 1, "诫勉谈话×1")
    # the ledgers were never sent: missing reports count against the companies
    assert cards.companies.loc["榕城物业", "逾期未报"] >= 2
    assert cards.units.loc["金峰镇", "逾期未报"] >= 1  # e.g. the progress reports


def test_events_after_the_instant_are_left_out():
    before = scorecards(history(), PLAN, at(3, 25), towns=TOWNS, companies=COMPANIES)
    assert before.companies.loc["榕城物业", "逾期整改"] == 0  # T-2 not yet rectified
    assert before.companies.loc["榕城物业", "逾期未改"] == 1
    assert before.units.loc["首占镇", "转报问责"] == 0


def test_reports_sent_count_for_nobody_and_wrong_senders_do_not_help():
    subs = [
        Submission("ledger", "金峰镇", at(3, 10), Actor("property", "陈"), community="金峰小区"),
        Submission("ledger", "金峰镇", at(3, 10), Actor("fire", "王"), community="华侨新村"),
    ]
    cards = scorecards([], PLAN, at(3, 20), towns=TOWNS, submissions=subs, companies=COMPANIES)
    # 金峰小区 on time; 华侨新村's "ledger" came from fire: it does not count
    # the ledger of 华侨新村, and the notices and self-inspections of both communities
    assert cards.companies.loc["榕城物业", "逾期未报"] == 1 + 2 + 2
    with_company = scorecards([], PLAN, at(3, 20), towns=TOWNS, companies={})
    assert "未登记物业企业（华侨新村）" in with_company.companies.index


def test_the_company_comes_from_the_report_payload_first():
    t = Ticket("P-1", PLAN)
    t.command(
        "report", at(3, 21), "town", community="金峰小区", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", at(3, 21), "town")
    events = list(t.events)
    report = events[0]
    events[0] = Event(**{**{a: getattr(report, a) for a in (
        "event_id", "ticket_id", "seq", "kind", "at", "actor", "evidence", "rules")},
        "payload": {**report.payload, "company": "载荷物业"}})  # fmt: skip
    cards = scorecards(events, PLAN, at(3, 22), companies=COMPANIES)
    assert list(cards.companies.index) == ["载荷物业"]


def test_every_column_cites_rules_of_the_catalogue():
    known = {r.id for r in PLAN.rules}
    for c in COLUMNS:
        assert c.rules
        assert set(c.rules) <= known
    behind_reports = set(next(c for c in COLUMNS if c.id == "reports_missing").rules)
    assert {d.rule for d in PLAN.duties} <= behind_reports
    cards = scorecards(history(), PLAN, at(4, 10), towns=TOWNS, companies=COMPANIES)
    assert list(cards.companies.columns) == [c.zh for c in COLUMNS]
    assert set(cards.rules()) == {c.zh for c in COLUMNS}


def test_naive_instant_refused():
    with pytest.raises(NaiveDatetime):
        scorecards([], PLAN, datetime(2022, 4, 1))  # noqa: DTZ001 (naive on purpose)


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(list(range(3))), days=st.integers(0, 120))
def test_scorecards_are_deterministic_and_tally(order, days):
    tickets = [
        lane_ticket("T-1", "金峰小区", "金峰镇", rectify_after=2),
        lane_ticket("T-2", "华侨新村", "金峰镇", rectify_after=6),
        lane_ticket("T-3", "首占花园", "首占镇"),
    ]
    events = [e for i in order for e in tickets[i].events]
    when = at(3, 21) + timedelta(days=days)
    a = scorecards(events, PLAN, when, towns=TOWNS, companies=COMPANIES)
    b = scorecards(list(reversed(events)), PLAN, when, towns=TOWNS, companies=COMPANIES)
    pd.testing.assert_frame_equal(a.companies, b.companies)
    pd.testing.assert_frame_equal(a.units, b.units)
    # every hazard is a company's (the property company rectifies inside) and a town's
    assert (
        a.companies["隐患数"].sum()
        == a.units[a.units["单位类别"] == "乡镇（街道）"]["隐患数"].sum()
    )
    assert (a.companies["按期整改"] + a.companies["逾期整改"] <= a.companies["隐患数"]).all()


def test_csv_and_html(tmp_path):
    cards = scorecards(history(), PLAN, at(4, 10), towns=TOWNS, companies={"金峰小区": "=1+1"})
    path = tmp_path / "s.csv"
    scorecard_csv(cards.table(), path)
    text = path.read_text(encoding="utf-8-sig")
    assert "'=1+1" in text  # a formula is never written as one
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(back.columns[:3]) == ["记分表", "单位类别", "名称"]
    page = scorecard_html(cards, PLAN, {"verified": False, "source": "event_log"})
    assert "R-ESC-PROPERTY" in page
    assert "R-TKT-OPEN" in page
    assert page.count("未经哈希链校验") >= 2  # top and bottom of every page
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(OutputError):
        scorecard_csv(cards.table(), link)


def test_html_escapes_names():
    cards = scorecards(history(), PLAN, at(4, 10), companies={"金峰小区": "<b>物业</b>"})
    page = scorecard_html(cards, PLAN, {"verified": False, "source": "event_log"})
    assert "<b>物业</b>" not in page
    assert "&lt;b&gt;物业&lt;/b&gt;" in page


# --------------------------------------------------------------------------- #
# CLI


def _app():
    app = typer.Typer()
    register(app)
    return app


def test_cli_scorecard(tmp_path):
    log = tmp_path / "events.jsonl"
    evs = [e for e in history() if e.kind not in ("refer", "decide_referral")]
    log.write_text(
        "".join(json.dumps(event_to_data(e), ensure_ascii=False) + "\n" for e in evs),
        encoding="utf-8",
    )
    companies = tmp_path / "companies.json"
    companies.write_text(json.dumps(COMPANIES, ensure_ascii=False), encoding="utf-8")
    runner = CliRunner()
    base = ["report", "scorecard", "--events", str(log), "--at", "2022-04-10T10:00+08:00"]
    r = runner.invoke(_app(), [*base, "--companies", str(companies), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    names = {row["名称"] for row in rows}
    assert {"榕城物业", "闽江物业", "金峰镇", "首占镇"} <= names
    assert all("未经哈希链校验" in "".join(row) for row in rows)  # the marker column
    out_csv, out_html = tmp_path / "s.csv", tmp_path / "s.html"
    args = [*base, "--companies", str(companies), "--csv", str(out_csv), "--html", str(out_html)]
    r = runner.invoke(_app(), args)
    assert r.exit_code == 0, r.output
    assert "榕城物业" in out_csv.read_text(encoding="utf-8-sig")
    assert "年度考核记分表" in out_html.read_text(encoding="utf-8")
    r = runner.invoke(_app(), [*base, "--at", "2022-04-10T10:00"])
    assert r.exit_code == 1
    assert "at" in r.stderr


def test_cli_report_status_duties_and_wrong_senders(tmp_path):
    towns = tmp_path / "towns.json"
    towns.write_text(json.dumps(TOWNS, ensure_ascii=False), encoding="utf-8")
    subs = tmp_path / "subs.jsonl"
    sub = Submission("ledger", "金峰镇", at(3, 10), Actor("fire", "王"), community="金峰小区")
    subs.write_text(json.dumps(sub.to_data(), ensure_ascii=False) + "\n", encoding="utf-8")
    runner = CliRunner()
    base = ["report", "status", "--towns", str(towns), "--at", "2022-03-20T09:00+08:00"]
    r = runner.invoke(_app(), [*base, "--submissions", str(subs), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    ledger = next(
        o for o in data["obligations"] if (o["report_id"], o["community"]) == ("ledger", "金峰小区")
    )
    assert (ledger["state"], ledger["wrong_senders"]) == ("missing", ["fire"])
    assert not any(o["kind"] == "duty" for o in data["obligations"])
    rules = {(e["kind"], e["rule"]) for e in data["escalations"]}
    assert ("report_missing", "R-ESC-PROPERTY") in rules
    assert ("report_wrong_sender", "R-DUE-LEDGER") in rules
    r = runner.invoke(_app(), [*base, "--duties", "--json"])
    data = json.loads(r.stdout)
    assert {o["report_id"] for o in data["obligations"] if o["kind"] == "duty"} >= {
        "work_plan", "notice_posted", "self_inspected"}  # fmt: skip
    assert len(data["never_inspected"]["self_inspected"]) == 3
    r = runner.invoke(_app(), [*base, "--duties"])
    assert "未检查 never inspected (self_inspected)" in r.stdout


def test_cli_report_status_asks_for_duties_when_given_duty_records(tmp_path):
    towns = tmp_path / "towns.json"
    towns.write_text(json.dumps(TOWNS, ensure_ascii=False), encoding="utf-8")
    subs = tmp_path / "subs.jsonl"
    sub = Submission("work_plan", "金峰镇", at(1, 20), Actor("town", "刘"))
    subs.write_text(json.dumps(sub.to_data(), ensure_ascii=False) + "\n", encoding="utf-8")
    base = ["report", "status", "--towns", str(towns), "--at", "2022-03-20T09:00+08:00"]
    r = CliRunner().invoke(_app(), [*base, "--submissions", str(subs)])
    assert r.exit_code == 1
    assert "--duties" in r.stderr
    r = CliRunner().invoke(_app(), [*base, "--submissions", str(subs), "--duties", "--json"])
    assert r.exit_code == 0, r.output
    wp = [o for o in json.loads(r.stdout)["obligations"] if o["report_id"] == "work_plan"]
    assert {(o["town"], o["state"], o["responsible"]) for o in wp} == {
        ("金峰镇", "on_time", "刘"), ("首占镇", "missing", "")}  # fmt: skip
