"""fireflow.forms: Annex 1, 2, 3 from the event log, CSV/XLSX round trips, dossiers."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from fireflow import InvalidArgument, event_to_data, load_plan
from fireflow.forms import (
    DRAFT_HEADER,
    DRAFT_TEXT,
    UncheckedCommunities,
    annex1,
    annex2,
    annex3,
    dossier,
    dossier_html,
    dossier_json,
    english,
    headers,
    read_csv,
    read_xlsx,
    ticket_states,
    to_csv,
    to_xlsx,
)
from fireflow.rules.spotcheck import Community, Finding, Inspector, draw, draw_inputs
from fireflow.ticket import Ticket

SH = ZoneInfo("Asia/Shanghai")
PLAN = load_plan("changle-2022")
NASTY = '<script>alert("x")</script> & =HYPERLINK("http://evil") , "引号"\n第二行'


def photo(name):
    return hashlib.sha256(name.encode()).hexdigest()


def at(m, d, h=10):
    return datetime(2022, m, d, h, tzinfo=SH)


def self_report(tid, community, town, category, subtype, when):
    t = Ticket(tid, PLAN)
    t.command(
        "report", when, "property", "物业陈", community=community, town=town,
        category=category, subtype=subtype, location="inside", source="self_inspection",
        evidence=[{"kind": "photo_before", "sha256": photo(tid)}],
    )  # fmt: skip
    return t


def lifecycle(tid, community, town, when, *, description="", signed=True):
    t = Ticket(tid, PLAN)
    t.command(
        "report", when, "town", "李", community=community, town=town,
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection", description=description,
        evidence=[{"kind": "photo_before", "sha256": photo(tid + "-before")}],
    )  # fmt: skip
    t.command("route", when, "town")
    t.command("set_deadline", when, "town")
    t.command("rectify", when + timedelta(days=1), "property")
    t.command("apply_reinspection", when + timedelta(days=1), "property")
    t.command("recheck_fail", when + timedelta(days=2), "town",
              participants=[{"agency": "housing"}], reason="仍有车辆")  # fmt: skip
    t.command("rectify", when + timedelta(days=3), "property")
    t.command("apply_reinspection", when + timedelta(days=3), "property")
    t.command("recheck_pass", when + timedelta(days=4), "town",
              participants=[{"agency": "housing", "person": "王"},
                            {"agency": "fire", "person": "周"}])  # fmt: skip
    if signed:
        signers = [{"agency": "housing", "person": "王"}, {"agency": "fire", "person": "周"}]
        t.command("sign_off", when + timedelta(days=4), "town", signers=signers)
        t.command("archive", when + timedelta(days=4), "town",
                  evidence=[{"kind": "photo_after", "sha256": photo(tid + "-after")}])  # fmt: skip
    return t


def event_log():
    tickets = [
        self_report("S-1", "金峰小区", "金峰镇", "evacuation_blocked", "ebike_charging", at(2, 10)),
        self_report("S-2", "金峰小区", "金峰镇", "evacuation_blocked", "goods", at(2, 11)),
        self_report("S-3", "首占花园", "首占镇", "lane_or_sign_missing", "sign", at(2, 12)),
        lifecycle("T-1", "金峰小区", "金峰镇", at(3, 21), description=NASTY),
        lifecycle("T-2", "首占花园", "首占镇", at(3, 22), signed=False),
    ]
    open_one = Ticket("T-3", PLAN)
    open_one.command(
        "report", at(4, 1), "town", community="首占花园", town="首占镇",
        category="spacing_illegal_building", subtype="structure", location="around",
        source="town_inspection", description="+1 违建",
    )  # fmt: skip
    tickets.append(open_one)
    # the spot check finds T-1 not rectified: reopened through the engine
    tickets[3].command("reopen", at(8, 1), "housing", "王", reason="抽查发现仍有车辆")
    return [e for t in tickets for e in t.events]


EVENTS = event_log()


# --------------------------------------------------------------------------- #
# Annex 1, 2, 3


def test_annex1_counts_self_inspection_by_category():
    df = annex1(EVENTS, PLAN, towns={"首占镇": ["首占花园", "首占新城"]})
    cats = [c.name.zh for c in PLAN.categories]
    assert list(df.columns) == ["乡镇（街道）", "小区", *cats, "合计", "已整改", "依据"]
    rows = {r["小区"]: r for r in df.to_dict(orient="records")}
    assert rows["金峰小区"][cats[0]] == 2
    assert rows["金峰小区"]["合计"] == 2
    assert rows["金峰小区"]["依据"] == "自查登记隐患2件"
    assert rows["首占花园"][cats[3]] == 1
    assert rows["首占新城"]["合计"] == 0  # listed community with nothing found
    # its zeros rest on no event: the form says so, never that nothing was found
    assert rows["首占新城"]["依据"] == "无自查登记记录（未核查）"
    assert list(df["小区"]) == ["金峰小区", "首占新城", "首占花园"]  # sorted by (town, community)
    assert str(df[cats[0]].dtype) == "int64"


def test_annex2_one_row_per_town_inspection_ticket():
    df = annex2(EVENTS, PLAN)
    assert list(df["编号"]) == ["T-1", "T-2", "T-3"]
    row = df.set_index("编号").loc["T-1"]
    assert row["问题描述"] == NASTY
    assert row["发现日期"] == "2022-03-21"
    assert row["复查结果"] == "抽查发现整改不到位"  # reopened after the spot check
    assert row["是否整改到位"] == "否"
    assert row["当前状态"] == "限期整改中"
    t2 = df.set_index("编号").loc["T-2"]
    assert (t2["复查结果"], t2["是否整改到位"], t2["验收签字"]) == ("合格", "是", "")
    t3 = df.set_index("编号").loc["T-3"]
    assert (t3["位置"], t3["复查结果"], t3["整改期限"]) == ("小区周边", "未复查", "")
    en = english(df, "annex2", PLAN)
    assert list(en.columns) == [e for e, _ in headers("annex2", PLAN)]


def test_annex2_sign_off_columns():
    t = lifecycle("T-9", "C", "T", at(3, 21))
    row = annex2(t.events, PLAN).iloc[0]
    assert row["验收签字"] == "区住建局 王；区消防救援大队 周"
    assert row["签字日期"] == "2022-03-25"
    assert row["是否整改到位"] == "是"


def test_annex3_from_events_and_from_a_draw():
    df = annex3(EVENTS, PLAN)
    assert list(df["小区"]) == ["金峰小区"]
    lane = PLAN.category("fire_lane_vehicle").name.zh
    evac = PLAN.category("evacuation_blocked").name.zh
    row = df.iloc[0]
    assert row[lane] == "存在问题"
    assert row[evac] == "未核查"  # 五(四) 现场核实: no finding, no event: not checked
    assert row["处理意见"] == "责令整改到位"
    assert row["相关工单"] == "T-1"
    every = PLAN.settings.spot_check.model_copy(update={"ratio": 1.0})
    settings = PLAN.settings.model_copy(update={"spot_check": every})
    inputs = draw_inputs(
        PLAN.model_copy(update={"settings": settings}),
        [Community("金峰小区", "金峰镇"), Community("首占花园", "首占镇")],
        [Inspector("H1", "housing"), Inspector("U1", "urban")],
    )
    d = draw(inputs, "seed-for-the-forms-test")
    findings = [
        Finding("首占花园", "evacuation_blocked", compliant=False),
        *(Finding(c, k, compliant=True) for c in ("首占花园", "金峰小区")
          for k in ("fire_lane_vehicle", "spacing_illegal_building", "lane_or_sign_missing")),
        Finding("金峰小区", "evacuation_blocked", compliant=True),
    ]  # fmt: skip
    df = annex3(EVENTS, PLAN, d, findings)
    rows = df.set_index("小区")
    assert list(rows.index) == ["金峰小区", "首占花园"]
    assert rows.loc["首占花园", evac] == "存在问题"
    assert rows.loc["首占花园", lane] == "未发现问题"
    assert rows.loc["金峰小区", lane] == "未发现问题"  # the finding, not the log, is the last word
    assert rows.loc["金峰小区", "抽查人员"] == "H1、U1"
    assert rows.loc["金峰小区", "抽查单位"] == "区住建局、区城管"


def test_unknown_form_and_bad_log():
    with pytest.raises(InvalidArgument) as info:
        headers("annex9")
    assert info.value.field == "form"
    broken = [e for e in EVENTS if not (e.ticket_id == "T-1" and e.seq == 3)]
    with pytest.raises(InvalidArgument) as info:
        ticket_states(broken)
    assert info.value.field == "seq"


# --------------------------------------------------------------------------- #
# CSV and XLSX round trips


@pytest.mark.parametrize("form_id", ["annex1", "annex2", "annex3"])
def test_csv_round_trip(tmp_path, form_id):
    df = {"annex1": annex1, "annex2": annex2, "annex3": annex3}[form_id](EVENTS, PLAN)
    path = tmp_path / f"{form_id}.csv"
    to_csv(df, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese as UTF-8
    assert raw[3:].decode("utf-8").startswith(",".join(c for c in df.columns[:2]))
    pd.testing.assert_frame_equal(read_csv(path, form_id, PLAN), df)


def test_csv_neutralises_formulas(tmp_path):
    df = annex2(EVENTS, PLAN)
    path = tmp_path / "a2.csv"
    to_csv(df, path)
    text = path.read_text(encoding="utf-8-sig")
    assert "'+1 违建" in text  # a cell starting with + would run as a formula
    assert "\n+1" not in text
    assert read_csv(path, "annex2", PLAN).set_index("编号").loc["T-3", "问题描述"] == "+1 违建"


@pytest.mark.parametrize("form_id", ["annex1", "annex2", "annex3"])
def test_xlsx_round_trip(tmp_path, form_id):
    df = {"annex1": annex1, "annex2": annex2, "annex3": annex3}[form_id](EVENTS, PLAN)
    path = tmp_path / f"{form_id}.xlsx"
    to_xlsx(df, path, form_id, PLAN)
    pd.testing.assert_frame_equal(read_xlsx(path, form_id, PLAN), df)
    # plain pandas and openpyxl read it too
    plain = pd.read_excel(path, sheet_name=0, keep_default_na=False, dtype=str)
    assert list(plain.columns) == list(df.columns)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == [f"附件{PLAN.form(form_id).number}", "说明"]
    ws = wb.worksheets[0]
    assert [c.value for c in ws[1]] == list(df.columns)
    assert ws.max_row == len(df) + 1
    # equal forms, equal bytes (no wall-clock timestamps in the file)
    again = tmp_path / "again.xlsx"
    to_xlsx(df, again, form_id, PLAN)
    assert again.read_bytes() == path.read_bytes()


def test_xlsx_stores_formula_text_as_text(tmp_path):
    t = Ticket("X-1", PLAN)
    t.command(
        "report", at(3, 21), "town", community="C", town="T", category="fire_lane_vehicle",
        subtype="goods", location="inside", source="town_inspection", description="=1+1",
    )  # fmt: skip
    df = annex2(t.events, PLAN)
    path = tmp_path / "f.xlsx"
    to_xlsx(df, path, "annex2", PLAN)
    cell = openpyxl.load_workbook(path).worksheets[0]["G2"]
    assert (cell.value, cell.data_type) == ("=1+1", "s")
    pd.testing.assert_frame_equal(read_xlsx(path, "annex2", PLAN), df)


def test_empty_log_round_trips(tmp_path):
    df = annex2([], PLAN)
    assert len(df) == 0
    to_csv(df, tmp_path / "e.csv")
    pd.testing.assert_frame_equal(read_csv(tmp_path / "e.csv", "annex2", PLAN), df)
    to_xlsx(df, tmp_path / "e.xlsx", "annex2", PLAN)
    pd.testing.assert_frame_equal(read_xlsx(tmp_path / "e.xlsx", "annex2", PLAN), df)


def test_reading_another_table_is_refused(tmp_path):
    to_csv(annex1(EVENTS, PLAN), tmp_path / "a1.csv")
    with pytest.raises(InvalidArgument) as info:
        read_csv(tmp_path / "a1.csv", "annex2", PLAN)
    assert info.value.field == "columns"


# --------------------------------------------------------------------------- #
# The dossier (一区一档)


def test_dossier_lists_every_ticket_with_photos_signoffs_and_rules():
    heads = {"T-1": "ab" * 32}
    data = dossier(EVENTS, "金峰小区", PLAN, heads=heads)
    assert data["format"] == "fireflow.dossier/1"
    assert [t["ticket_id"] for t in data["tickets"]] == ["S-1", "S-2", "T-1"]
    t1 = next(t for t in data["tickets"] if t["ticket_id"] == "T-1")
    assert t1["photos_before"] == [photo("T-1-before")]
    assert t1["photos_after"] == [photo("T-1-after")]
    assert t1["signoffs"][0]["signers"][0]["person"] == "王"
    assert t1["signers"] == []  # reopened: the sign-off no longer stands
    assert [r["result"] for r in t1["rechecks"]] == ["fail", "pass"]
    assert "R-TKT-SPOTCHECK" in t1["rules"]
    assert t1["chain_head"] == "ab" * 32
    assert data["chain_heads"] == heads
    assert data["summary"] == {
        "tickets": 3,
        "closed": 0,
        "open": 3,
        "by_category": {
            "evacuation_blocked": 2,
            "fire_lane_vehicle": 1,
            "spacing_illegal_building": 0,
            "lane_or_sign_missing": 0,
        },
    }
    assert {r["id"] for r in data["rules"]} >= {"R-TKT-OPEN", "R-TKT-SIGNOFF", "R-TKT-SPOTCHECK"}


def test_dossier_json_is_deterministic():
    first = dossier_json(dossier(EVENTS, "金峰小区", PLAN))
    shuffled = list(EVENTS)
    random.Random(7).shuffle(shuffled)
    assert dossier_json(dossier(shuffled, "金峰小区", PLAN)) == first
    data = json.loads(first)
    assert first == (json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode(
        "utf-8"
    )
    before_reopen = [e for e in EVENTS if e.kind != "reopen"]
    other = dossier(before_reopen, "金峰小区", PLAN)  # the log changed: the digest says so
    assert other["events_digest"] != data["events_digest"]


def test_dossier_html_escapes_everything():
    page = dossier_html(dossier(EVENTS, "金峰小区", PLAN, heads={"T-1": "cd" * 32}))
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    for heading in ("一区一档", "基本情况", "隐患清单", "逐项档案", "规则依据"):
        assert heading in page
    assert photo("T-1-after") in page
    assert "cd" * 32 in page
    evil = dossier(EVENTS, "金峰小区", PLAN)
    evil["community"] = "</title><script>x()</script>"
    assert "<script>" not in dossier_html(evil)


def test_dossier_html_names_departments_in_chinese_with_the_id_as_a_tooltip():
    page = dossier_html(dossier(EVENTS, "金峰小区", PLAN))
    t1 = page.split("<h3>T-1 · ", 1)[1]
    recheck = t1.split("<th>复查记录</th>", 1)[1].split("</tr>", 1)[0]
    housing_fire = '<span title="housing">区住建局</span>、<span title="fire">区消防救援大队</span>'
    assert housing_fire + "）" in recheck
    for raw_id in ("town、", "（town", "housing、"):
        assert raw_id not in page
    assert '<span title="town">乡镇（街道）政府 李</span>' in page  # who acted, in the history
    assert '<td class="date">2022-03-21</td>' in page  # dates never wrap mid-date
    assert "@page { size: A4;" in page  # printable on A4
    data = dossier(EVENTS, "金峰小区", PLAN)  # the ids stay in the JSON
    t1_data = next(t for t in data["tickets"] if t["ticket_id"] == "T-1")
    assert t1_data["rechecks"][-1]["agencies"] == ["town", "housing", "fire"]


def test_dossier_errors_name_the_field():
    with pytest.raises(InvalidArgument) as info:
        dossier(EVENTS, "无此小区", PLAN)
    assert info.value.field == "community"
    with pytest.raises(InvalidArgument) as info:
        dossier(EVENTS, "金峰小区", PLAN, heads={"T-1": "<b>"})
    assert info.value.field == "heads.T-1"


# --------------------------------------------------------------------------- #
# The optional dependency and the CLI


def test_import_fireflow_does_not_import_pandas():
    code = (
        "import sys, fireflow, fireflow.forms, fireflow.cli.reports, "
        "fireflow.rules.spotcheck, fireflow.rules.reporting; "
        "print('pandas' in sys.modules, 'openpyxl' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]


def test_cli_forms_and_dossier(tmp_path):
    from fireflow.cli.reports import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    log = tmp_path / "events.jsonl"
    log.write_text(
        "".join(json.dumps(event_to_data(e), ensure_ascii=False) + "\n" for e in EVENTS),
        encoding="utf-8",
    )
    out_csv, out_xlsx = tmp_path / "a2.csv", tmp_path / "a2.xlsx"
    args = ["--events", str(log), "--csv", str(out_csv), "--xlsx", str(out_xlsx)]
    r = runner.invoke(app, ["forms", "annex2", *args])
    assert r.exit_code == 0, r.output
    pd.testing.assert_frame_equal(read_csv(out_csv, "annex2", PLAN), annex2(EVENTS, PLAN))
    pd.testing.assert_frame_equal(read_xlsx(out_xlsx, "annex2", PLAN), annex2(EVENTS, PLAN))
    r = runner.invoke(app, ["forms", "annex1", "--events", str(log), "--json"])
    assert r.exit_code == 0, r.output
    assert {row["小区"] for row in json.loads(r.stdout)} == {"金峰小区", "首占花园"}
    r = runner.invoke(app, ["forms", "annex3", "--events", str(log)])
    assert r.exit_code == 0, r.output
    assert "金峰小区" in r.stdout
    towns = tmp_path / "towns.json"
    towns.write_text(json.dumps({"首占镇": ["首占新城"]}, ensure_ascii=False), encoding="utf-8")
    args = ["--events", str(log), "--towns", str(towns), "--json"]
    r = runner.invoke(app, ["forms", "annex1", *args])
    assert "首占新城" in {row["小区"] for row in json.loads(r.stdout)}
    one = draw_inputs(PLAN, [Community("首占花园", "首占镇")], [Inspector("F1", "fire")])
    d = draw(one, "forms-cli-seed-8c41f0e2b7d95a63")
    drawn, found = tmp_path / "draw.json", tmp_path / "findings.json"
    drawn.write_text(json.dumps(d.to_data(), ensure_ascii=False), encoding="utf-8")
    finding = {"community": "首占花园", "category": "evacuation_blocked", "compliant": False}
    found.write_text(json.dumps([finding], ensure_ascii=False), encoding="utf-8")
    args = ["--events", str(log), "--draw", str(drawn), "--findings", str(found), "--json"]
    r = runner.invoke(app, ["forms", "annex3", *args])
    # three categories of the drawn community were never checked: no final form
    assert r.exit_code == 1
    for part in ("findings:", "--draft", "[R-SPOT-RATIO]"):
        assert part in r.stderr
    assert r.stdout == ""
    r = runner.invoke(app, ["forms", "annex3", *args, "--draft"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert (row["小区"], row["抽查人员"]) == ("首占花园", "F1")
    assert row[PLAN.category("evacuation_blocked").name.zh] == "存在问题"
    assert row[PLAN.category("fire_lane_vehicle").name.zh] == "未核查"
    assert row[DRAFT_HEADER] == DRAFT_TEXT
    found.write_text(json.dumps([{"community": "首占花园"}]), encoding="utf-8")
    r = runner.invoke(app, ["forms", "annex3", *args])
    assert r.exit_code == 1
    assert "findings[0].category" in r.stderr
    found.write_text(json.dumps([{**finding, "notes": "楼道已清"}], ensure_ascii=False), "utf-8")
    r = runner.invoke(app, ["forms", "annex3", *args])  # a misspelt key: refused, not dropped
    assert r.exit_code == 1
    assert "findings[0].notes" in r.stderr
    html, js = tmp_path / "d.html", tmp_path / "d.json"
    r = runner.invoke(
        app, ["dossier", "金峰小区", "--events", str(log), "--html", str(html), "--json", str(js)]
    )
    assert r.exit_code == 0, r.output
    from fireflow.forms import mark_dossier
    from fireflow.history import read_history

    unchained = read_history(log).verification  # a JSON-lines log: no hash chain behind it
    assert js.read_bytes() == dossier_json(
        mark_dossier(dossier(EVENTS, "金峰小区", PLAN), unchained)
    )
    assert "&lt;script&gt;" in html.read_text(encoding="utf-8")
    r = runner.invoke(app, ["dossier", "金峰小区", "--events", str(log)])
    assert r.stdout.encode("utf-8") == js.read_bytes()
    r = runner.invoke(app, ["dossier", "无此小区", "--events", str(log)])
    assert r.exit_code == 1
    assert "community" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "x"}\nnot json\n', encoding="utf-8")
    r = runner.invoke(app, ["forms", "annex2", "--events", str(bad)])
    assert r.exit_code == 1
    assert "bad.jsonl:1" in r.stderr


def test_cli_reads_a_sqlite_store_and_its_chain_heads(tmp_path):
    """A town clerk's forms and dossiers come straight from the event store."""
    from itertools import groupby

    from fireflow.cli.reports import register
    from fireflow.store import SQLiteStore

    db = tmp_path / "changle.db"
    with SQLiteStore(db) as store:
        by_ticket = sorted(EVENTS, key=lambda e: (e.ticket_id, e.seq))
        for tid, evs in groupby(by_ticket, key=lambda e: e.ticket_id):
            store.append(tid, list(evs), 0)
        heads = {t: store.head(t) for t in store.tickets()}
        stored = [s.event for s in store.read_all()]
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    js = tmp_path / "d.json"
    r = runner.invoke(app, ["dossier", "金峰小区", "--events", str(db), "--json", str(js)])
    assert r.exit_code == 0, r.output
    from fireflow.forms import mark_dossier
    from fireflow.history import read_history

    verified = read_history(db).verification
    assert verified["verified"] is True
    assert js.read_bytes() == dossier_json(
        mark_dossier(dossier(stored, "金峰小区", PLAN, heads), verified)
    )
    assert heads["T-1"] in js.read_text(encoding="utf-8")
    r = runner.invoke(app, ["forms", "annex2", "--events", str(db), "--json"])
    assert r.exit_code == 0, r.output
    assert {row["小区"] for row in json.loads(r.stdout)} == {"金峰小区", "首占花园"}


# --------------------------------------------------------------------------- #
# Official forms state only what was seen (五(四) 现场核实; issue 22 item 6)


def _drawn_both():
    every = PLAN.settings.spot_check.model_copy(update={"ratio": 1.0})
    settings = PLAN.settings.model_copy(update={"spot_check": every})
    inputs = draw_inputs(
        PLAN.model_copy(update={"settings": settings}),
        [Community("金峰小区", "金峰镇"), Community("首占花园", "首占镇")],
        [Inspector("H1", "housing"), Inspector("U1", "urban")],
    )
    return draw(inputs, "seed-for-the-forms-test")


def test_annex3_a_drawn_community_nobody_checked_is_never_clear():
    d = _drawn_both()
    # 首占花园 was drawn; no finding and no event speaks of it: a final form is refused
    with pytest.raises(UncheckedCommunities) as info:
        annex3(EVENTS, PLAN, d)
    assert info.value.field == "findings"
    assert info.value.rule == "R-SPOT-RATIO"
    unchecked = dict(info.value.communities)
    assert unchecked["首占花园"] == tuple(c.id for c in PLAN.categories)
    assert "fire_lane_vehicle" not in unchecked["金峰小区"]  # the reopen is on record
    # a draft says 未核查 and carries the draft marker on every row
    df = annex3(EVENTS, PLAN, d, draft=True)
    rows = df.set_index("小区")
    cats = [c.name.zh for c in PLAN.categories]
    assert {rows.loc["首占花园", c] for c in cats} == {"未核查"}
    assert "未发现问题" not in set(df[cats].to_numpy().ravel())
    assert rows.loc["首占花园", "处理意见"] == ""
    assert set(df[DRAFT_HEADER]) == {DRAFT_TEXT}


def test_annex3_all_findings_give_a_final_form_without_a_draft_marker():
    d = _drawn_both()
    findings = [Finding(c, k.id, compliant=True) for c in ("金峰小区", "首占花园")
                for k in PLAN.categories]  # fmt: skip
    df = annex3(EVENTS, PLAN, d, findings)
    assert DRAFT_HEADER not in df.columns
    assert set(df[PLAN.category("spacing_illegal_building").name.zh]) == {"未发现问题"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_annex3_draft_round_trips_and_is_marked_on_every_page(tmp_path, fmt):
    df = annex3(EVENTS, PLAN, _drawn_both(), draft=True)
    path = tmp_path / f"a3.{fmt}"
    if fmt == "csv":
        to_csv(df, path)
        assert path.read_text(encoding="utf-8-sig").count(DRAFT_TEXT) == len(df)
        back = read_csv(path, "annex3", PLAN)
    else:
        to_xlsx(df, path, "annex3", PLAN)
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:  # the printed header of every sheet
            assert ws.oddHeader.center.text == DRAFT_TEXT
        assert wb["说明"]["A1"].value == DRAFT_HEADER
        back = read_xlsx(path, "annex3", PLAN)
    pd.testing.assert_frame_equal(back, df.drop(columns=[DRAFT_HEADER]))


def test_annex2_rectified_but_not_rechecked_is_neither_yes_nor_no():
    t = Ticket("R-1", PLAN)
    t.command(
        "report", at(4, 1), "town", "李", community="C", town="T",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
    )  # fmt: skip
    t.command("route", at(4, 1), "town")
    t.command("set_deadline", at(4, 1), "town")
    assert annex2(t.events, PLAN).iloc[0]["是否整改到位"] == "否"
    t.command("rectify", at(4, 2), "property")
    # the company says it is done; no re-check has said so: 待复查, not 否 and not 是
    assert annex2(t.events, PLAN).iloc[0]["是否整改到位"] == "待复查"
    t.command("apply_reinspection", at(4, 2), "property")
    assert annex2(t.events, PLAN).iloc[0]["是否整改到位"] == "待复查"


def test_dossier_counts_closed_only_once_signed_off():
    t = lifecycle("P-1", "C", "T", at(3, 21), signed=False)  # passed, not signed
    data = dossier(t.events, "C", PLAN)
    assert data["tickets"][0]["state"] == "passed"
    assert data["tickets"][0]["closed"] is False
    assert (data["summary"]["closed"], data["summary"]["open"]) == (0, 1)
    signed = lifecycle("P-2", "C", "T", at(3, 21))
    assert dossier(signed.events, "C", PLAN)["summary"]["closed"] == 1


def test_public_summary_publishes_no_names_and_nothing_unchecked():
    from fireflow.forms import public_summary

    d = _drawn_both()
    with pytest.raises(UncheckedCommunities):
        public_summary(EVENTS, PLAN, d)  # nothing unchecked is published
    findings = [Finding(c, k.id, compliant=k.id != "fire_lane_vehicle")
                for c in ("金峰小区", "首占花园") for k in PLAN.categories]  # fmt: skip
    df = public_summary(EVENTS, PLAN, d, findings)
    assert "抽查人员" not in df.columns
    assert "相关工单" not in df.columns
    text = df.to_csv()
    for person in ("H1", "U1", "T-1"):
        assert person not in text
    assert list(df["小区"]) == ["金峰小区", "首占花园"]
    assert set(df["处理意见"]) == {"责令整改到位"}


def test_cli_forms_public_needs_verified_history(tmp_path):
    from fireflow.cli.reports import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    log = tmp_path / "events.jsonl"
    log.write_text(
        "".join(json.dumps(event_to_data(e), ensure_ascii=False) + "\n" for e in EVENTS),
        encoding="utf-8",
    )
    drawn, found = tmp_path / "draw.json", tmp_path / "findings.json"
    drawn.write_text(json.dumps(_drawn_both().to_data(), ensure_ascii=False), encoding="utf-8")
    findings = [{"community": c, "category": k.id, "compliant": True}
                for c in ("金峰小区", "首占花园") for k in PLAN.categories]  # fmt: skip
    found.write_text(json.dumps(findings, ensure_ascii=False), encoding="utf-8")
    args = ["forms", "public", "--events", str(log), "--draw", str(drawn), "--findings", str(found)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 1  # a JSON-lines log is not verified history
    assert "R-OBL-PUBLISH" in r.stderr
    r = runner.invoke(app, [*args, "--json", "--unverified"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 2
    assert all("抽查人员" not in row for row in rows)
