"""Official documents only from verified history.

``fireflow dossier`` and ``fireflow forms`` verify a store's hash chains (and a
checkpoint, when given) before they produce anything; a store that does not
verify gives exit 1, the reason, and no file, unless ``--unverified`` asks for a
draft marked 未经校验 UNVERIFIED on every page.  A JSON-lines log is checked line
by line as an append to a store would be, and its documents say they are not
backed by a hash chain.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest

from fireflow import event_to_data, load_plan
from fireflow.cli import main
from fireflow.errors import InputLimitExceeded, InvalidArgument
from fireflow.forms import (
    UNANCHORED_HEADER,
    UNCHAINED_HEADER,
    UNVERIFIED_HEADER,
    VERIFIED_HEADER,
    annex2,
    read_csv,
    read_xlsx,
)
from fireflow.history import read_history
from fireflow.store import SQLiteStore, checkpoint, verify
from fireflow.store.errors import VerificationFailed
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")


def _tickets() -> list[Ticket]:
    out = []
    for n, community in enumerate(("金峰小区", "金峰小区", "首占花园"), start=1):
        t = Ticket(f"T-{n}", PLAN)
        when = datetime(2022, 3, 20 + n, 10, tzinfo=SH)
        t.command(
            "report", when, "town", "李", community=community, town="金峰镇",
            category="fire_lane_vehicle", subtype="private_car", location="inside",
            source="town_inspection", description=f"第{n}处违停",
        )  # fmt: skip
        t.command("route", when, "town")
        out.append(t)
    return out


EVENTS = [e for t in _tickets() for e in t.events]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "changle.db"
    with SQLiteStore(path) as store:
        for t in _tickets():
            store.append(t.id, t.events, 0)
    return path


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(event_to_data(e), ensure_ascii=False) for e in EVENTS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tamper(path: Path) -> None:
    """Edit a stored description, as someone with the file but without the chain would."""
    con = sqlite3.connect(path)
    con.execute(
        "UPDATE events SET data = CAST(replace(CAST(data AS TEXT), '第1处违停', '无问题') AS BLOB) "
        "WHERE instr(CAST(data AS TEXT), '第1处违停') > 0"
    )
    assert con.total_changes == 1
    con.commit()
    con.close()


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def outputs(tmp_path: Path) -> dict[str, Path]:
    return {k: tmp_path / f"out.{k}" for k in ("html", "json", "csv", "xlsx")}


# --------------------------------------------------------------------------- #
# Verified stores


def test_a_verified_dossier_says_so_and_carries_the_heads(db, tmp_path, capsys):
    o = outputs(tmp_path)
    code, _, err = run(
        capsys, "dossier", "金峰小区", "--events", db, "--json", o["json"], "--html", o["html"]
    )
    assert code == 0, err
    data = json.loads(o["json"].read_text(encoding="utf-8"))
    with SQLiteStore(db, readonly=True) as store:
        report = verify(store)
        heads = {t: store.head(t) for t in ("T-1", "T-2")}
    assert data["verified"] is True
    assert data["verification"]["source"] == "store"
    assert data["verification"]["store"]["global_head"] == report.global_head
    assert data["chain_heads"] == heads
    page = o["html"].read_text(encoding="utf-8")
    assert page.count(report.global_head) >= 3  # top and bottom of every page, and the footer
    assert UNANCHORED_HEADER in page  # no checkpoint: verified, but not anchored
    assert page.count("could have been rewritten") >= 3
    assert data["verification"]["anchored"] is False
    assert "未经校验" not in page


def test_a_verified_form_carries_its_head_and_reads_back(db, tmp_path, capsys):
    o = outputs(tmp_path)
    code, _, err = run(
        capsys, "forms", "annex2", "--events", db, "--csv", o["csv"], "--xlsx", o["xlsx"]
    )
    assert code == 0, err
    with SQLiteStore(db, readonly=True) as store:
        head = verify(store).global_head
    raw = pd.read_csv(o["csv"], encoding="utf-8-sig", dtype=str)
    assert raw.columns[-1] == UNANCHORED_HEADER
    assert raw[UNANCHORED_HEADER].str.contains(head).all()
    pd.testing.assert_frame_equal(read_csv(o["csv"], "annex2", PLAN), annex2(EVENTS, PLAN))
    pd.testing.assert_frame_equal(read_xlsx(o["xlsx"], "annex2", PLAN), annex2(EVENTS, PLAN))
    wb = openpyxl.load_workbook(o["xlsx"])
    for ws in wb.worksheets:  # every sheet says it
        assert any(head in str(c.value) for row in ws.iter_rows() for c in row), ws.title


def test_read_history_builds_from_the_verified_bytes(db):
    history = read_history(db)
    assert history.verified
    with SQLiteStore(db, readonly=True) as store:
        assert history.events == [s.event for s in store.read_all()]
    assert set(history.heads or {}) == {"T-1", "T-2", "T-3"}


# --------------------------------------------------------------------------- #
# Stores that do not verify


DOCUMENTS = [
    ["dossier", "金峰小区", "--html", "{html}", "--json", "{json}"],
    ["dossier", "金峰小区"],
    ["forms", "annex1", "--csv", "{csv}", "--xlsx", "{xlsx}"],
    ["forms", "annex2", "--csv", "{csv}"],
    ["forms", "annex3", "--xlsx", "{xlsx}"],
    ["forms", "annex2", "--json"],
]


def _argv(template: list[str], db: Path, o: dict[str, Path]) -> list[str]:
    argv = [a.format(**{k: str(v) for k, v in o.items()}) for a in template]
    return [*argv, "--events", str(db)]


@pytest.mark.parametrize("template", DOCUMENTS, ids=str)
def test_a_tampered_store_gives_no_document(template, db, tmp_path, capsys):
    tamper(db)
    o = outputs(tmp_path)
    code, out, err = run(capsys, *_argv(template, db, o))
    assert code == 1
    assert out == ""  # nothing on stdout either
    assert "校验失败" in err
    assert "does not verify" in err
    assert "hash" in err  # the reason: which hash does not follow
    assert "Traceback" not in err
    assert not any(p.exists() for p in o.values())


@pytest.mark.parametrize("template", DOCUMENTS, ids=str)
def test_unverified_drafts_are_marked_on_every_page(template, db, tmp_path, capsys):
    tamper(db)
    o = outputs(tmp_path)
    code, out, err = run(capsys, *_argv(template, db, o), "--unverified")
    assert code == 0, err
    if o["json"].exists() or template == ["dossier", "金峰小区"]:
        text = o["json"].read_text(encoding="utf-8") if o["json"].exists() else out
        data = json.loads(text)
        assert data["verified"] is False
        assert "does not verify" in data["verification"]["reason"]
        assert "无问题" in text  # the edited text is shown, but only as a marked draft
    if o["html"].exists():
        page = o["html"].read_text(encoding="utf-8")
        assert page.count('class="mark unverified page') == 2  # header and footer
        assert page.count(UNVERIFIED_HEADER) >= 3
    if o["csv"].exists():
        raw = pd.read_csv(o["csv"], encoding="utf-8-sig", dtype=str)
        assert raw.columns[-1] == UNVERIFIED_HEADER
        assert raw[UNVERIFIED_HEADER].str.startswith(UNVERIFIED_HEADER).all()
    if o["xlsx"].exists():
        for ws in openpyxl.load_workbook(o["xlsx"]).worksheets:
            assert any(UNVERIFIED_HEADER in str(c.value) for row in ws.iter_rows() for c in row), (
                ws.title
            )
    if "--json" in template and template[0] == "forms":
        rows = json.loads(out)
        assert rows
        assert all(UNVERIFIED_HEADER in r for r in rows)


def test_a_checkpoint_catches_a_removed_last_event(db, tmp_path, capsys):
    """Deleting the newest event (and moving the head row back with it) leaves both chains
    whole: only the checkpoint sees it."""
    cp_file = tmp_path / "cp.json"
    with SQLiteStore(db, readonly=True) as store:
        cp = checkpoint(store, datetime(2022, 4, 1, tzinfo=SH))
    cp_file.write_text(cp.to_json(), encoding="utf-8")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM events WHERE position = (SELECT max(position) FROM events)")
    con.execute(
        "UPDATE fireflow_head SET next = next - 1, global_hash = "
        "(SELECT global_hash FROM events ORDER BY position DESC LIMIT 1)"
    )
    con.commit()
    con.close()
    o = outputs(tmp_path)
    argv = ["dossier", "金峰小区", "--events", db, "--json", o["json"]]
    code, _, err = run(capsys, *argv)
    assert code == 0, err  # the chains alone still verify
    o["json"].unlink()
    code, _, err = run(capsys, *argv, "--checkpoint", cp_file)
    assert code == 1
    assert "checkpoint" in err
    assert not o["json"].exists()
    with pytest.raises(VerificationFailed):
        read_history(db, checkpoint=cp)


def test_a_matching_checkpoint_is_named_in_the_document(db, tmp_path, capsys):
    cp_file = tmp_path / "cp.json"
    with SQLiteStore(db, readonly=True) as store:
        cp = checkpoint(store, datetime(2022, 4, 1, tzinfo=SH))
    cp_file.write_text(cp.to_json(), encoding="utf-8")
    code, out, err = run(capsys, "dossier", "金峰小区", "--events", db, "--checkpoint", cp_file)
    assert code == 0, err
    data = json.loads(out)
    assert data["verification"]["checkpoint"]["global_head"] == cp.global_head
    assert data["verification"]["anchored"] is True
    o = outputs(tmp_path)
    argv = ["--events", db, "--checkpoint", cp_file]
    assert run(capsys, "dossier", "金峰小区", *argv, "--html", o["html"])[0] == 0
    assert run(capsys, "forms", "annex2", *argv, "--csv", o["csv"])[0] == 0
    page = o["html"].read_text(encoding="utf-8")
    assert VERIFIED_HEADER in page
    assert UNANCHORED_HEADER not in page
    assert page.count(f"checkpoint made {cp.at.isoformat()}") >= 3  # which one, made when
    raw = pd.read_csv(o["csv"], encoding="utf-8-sig", dtype=str)
    assert raw.columns[-1] == VERIFIED_HEADER
    assert raw[VERIFIED_HEADER].str.contains(f"made {cp.at.isoformat()}", regex=False).all()


def test_heads_from_a_file_are_refused_for_a_store(db, tmp_path, capsys):
    heads = tmp_path / "heads.json"
    heads.write_text(json.dumps({"T-1": "ab" * 32}), encoding="utf-8")
    code, _, err = run(capsys, "dossier", "金峰小区", "--events", db, "--heads", heads)
    assert code == 2
    assert "--heads" in err


# --------------------------------------------------------------------------- #
# JSON-lines logs


def test_a_log_document_says_it_has_no_hash_chain(log, tmp_path, capsys):
    o = outputs(tmp_path)
    code, _, err = run(
        capsys, "dossier", "金峰小区", "--events", log, "--json", o["json"], "--html", o["html"]
    )
    assert code == 0, err
    data = json.loads(o["json"].read_text(encoding="utf-8"))
    assert data["verified"] is False
    assert data["verification"]["source"] == "event_log"
    assert "no hash chain" in data["verification"]["reason"]
    assert o["html"].read_text(encoding="utf-8").count(UNCHAINED_HEADER) >= 3
    code, _, err = run(capsys, "forms", "annex2", "--events", log, "--csv", o["csv"])
    assert code == 0, err
    raw = pd.read_csv(o["csv"], encoding="utf-8-sig", dtype=str)
    assert raw.columns[-1] == UNCHAINED_HEADER


def test_a_checkpoint_with_a_log_is_refused(log, db, tmp_path, capsys):
    cp_file = tmp_path / "cp.json"
    with SQLiteStore(db, readonly=True) as store:
        cp_file.write_text(checkpoint(store, datetime(2022, 4, 1, tzinfo=SH)).to_json())
    code, _, err = run(capsys, "forms", "annex2", "--events", log, "--checkpoint", cp_file)
    assert code == 1
    assert "checkpoint" in err


def _edit(log: Path, line: int, change) -> None:
    lines = log.read_text(encoding="utf-8").splitlines()
    data = json.loads(lines[line])
    change(data)
    lines[line] = json.dumps(data, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")


BAD_LINES = {
    "unknown key": (lambda d: d.update(signature="x"), InvalidArgument, "signature"),
    "unknown actor key": (lambda d: d["actor"].update(role="x"), InvalidArgument, "role"),
    "5 MB description": (
        lambda d: d["payload"].update(description="长" * 5_000_000),
        InvalidArgument,
        "line longer than",
    ),
    "large payload": (
        lambda d: d["payload"].update(description="x" * 70_000),
        InputLimitExceeded,
        "payload",
    ),
    "seq gap": (lambda d: d.update(seq=3), InvalidArgument, "seq"),
    "seq as text": (lambda d: d.update(seq="1"), InvalidArgument, "seq"),
    "naive time": (lambda d: d.update(at="2022-03-21T10:00:00"), InvalidArgument, "at"),
    "unknown kind": (lambda d: d.update(kind="erase"), InvalidArgument, "kind"),
    "control in id": (lambda d: d.update(ticket_id="T-1\x1b[2J"), InvalidArgument, "ticket"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_every_log_line_passes_the_checks_of_an_append(case, log, tmp_path, capsys):
    change, error, word = BAD_LINES[case]
    _edit(log, 0, change)
    with pytest.raises(error, match=word) as info:
        read_history(log)
    assert f"{log}:1" in str(info.value)
    out_csv = tmp_path / "a2.csv"
    code, _out, err = run(capsys, "forms", "annex2", "--events", log, "--csv", out_csv)
    assert code == 1
    assert f"{log.name}:1" in err
    assert len(err.strip().splitlines()) == 1
    assert "\x1b" not in err
    assert not out_csv.exists()


def test_a_repeated_event_id_in_a_log_is_refused(log):
    lines = log.read_text(encoding="utf-8").splitlines()
    second = json.loads(lines[1])
    second["event_id"] = json.loads(lines[0])["event_id"]
    lines[1] = json.dumps(second, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument, match=":2: "):
        read_history(log)


@pytest.mark.parametrize(
    "argv",
    [["forms", "annex2"], ["forms", "annex2", "--json"], ["dossier", "金峰小区"]],
    ids=str,
)
def test_log_text_with_a_bidi_override_is_refused_and_escaped(argv, log, capsys):
    """The text policy holds in a log's free text: the line and field are named, escaped."""
    _edit(log, 0, lambda d: d["payload"].update(description="违停\u202e反向"))
    code, out, err = run(capsys, *argv, "--events", log)
    assert code == 1
    assert out == ""
    assert "\u202e" not in err
    assert "events.jsonl:1" in err
    assert "payload.description" in err
    assert "U+202E" in err


# --------------------------------------------------------------------------- #
# Look-alike names (issue 23): 金峰小区 and 金峰小区 + U+200B are never two communities

TWIN = "金峰小区\u200b"


def _rechain(path: Path) -> None:
    """Recompute every hash of a store, as a writer holding the whole file could."""
    from fireflow.store.chain import GENESIS, global_link, ticket_link

    con = sqlite3.connect(path, isolation_level=None)
    rows = con.execute("SELECT position, ticket_id, data FROM events ORDER BY position").fetchall()
    g, heads = GENESIS, {}
    for position, tid, data in rows:
        heads[tid] = ticket_link(heads.get(tid, GENESIS), data)
        g = global_link(g, data)
        con.execute(
            "UPDATE events SET ticket_hash = ?, global_hash = ? WHERE position = ?",
            (heads[tid], g, position),
        )
    con.close()


def test_a_look_alike_twin_in_a_log_is_refused_by_annex2_and_the_dossier(log, capsys):
    _edit(log, 2, lambda d: d["payload"].update(community=TWIN))  # T-2's report
    for argv in (["forms", "annex2", "--json"], ["dossier", "金峰小区"]):
        code, out, err = run(capsys, *argv, "--events", log)
        assert code == 1, out
        assert out == ""
        assert "payload.community" in err
        assert "U+200B" in err


def test_a_look_alike_twin_rechained_into_a_store_does_not_verify(db, capsys):
    con = sqlite3.connect(db, isolation_level=None)
    (position, data) = con.execute(
        "SELECT position, data FROM events WHERE ticket_id = 'T-2' ORDER BY seq LIMIT 1"
    ).fetchone()
    twin = bytes(data).replace("金峰小区".encode(), TWIN.encode())
    con.execute("UPDATE events SET data = ? WHERE position = ?", (twin, position))
    con.close()
    _rechain(db)
    with SQLiteStore(db, readonly=True) as store:
        report = verify(store)
    assert not report.ok
    assert any("U+200B" in str(p) for p in report.problems)
    for argv in (["forms", "annex2", "--json"], ["dossier", "金峰小区"]):
        code, out, err = run(capsys, *argv, "--events", db)
        assert code == 1
        assert out == ""
        assert "U+200B" in err


# --------------------------------------------------------------------------- #
# What "verified" means, on every page (issue 23)


def _mark_simulated(path: Path) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("INSERT INTO fireflow_meta (key, value) VALUES ('origin', 'fireflow.sim')")
    con.close()


def test_the_simulated_origin_is_the_simulators():
    from fireflow.history import SIMULATED_ORIGIN
    from fireflow.sim.log import ORIGIN

    assert SIMULATED_ORIGIN == ORIGIN


def test_every_page_of_a_document_from_a_simulated_store_says_so(db, tmp_path, capsys):
    from fireflow.forms import SIMULATED_MARK

    _mark_simulated(db)
    cp_file = tmp_path / "cp.json"
    with SQLiteStore(db, readonly=True) as store:
        cp_file.write_text(checkpoint(store, datetime(2022, 4, 1, tzinfo=SH)).to_json())
    o = outputs(tmp_path)
    argv = ["--events", db, "--checkpoint", cp_file]
    code, _, err = run(
        capsys, "dossier", "金峰小区", *argv, "--html", o["html"], "--json", o["json"]
    )
    assert code == 0, err
    assert run(capsys, "forms", "annex2", *argv, "--csv", o["csv"], "--xlsx", o["xlsx"])[0] == 0
    data = json.loads(o["json"].read_text(encoding="utf-8"))
    assert data["verification"]["simulated"] is True
    page = o["html"].read_text(encoding="utf-8")
    assert page.count("模拟数据") >= 3  # the title, top and bottom of every page
    raw = pd.read_csv(o["csv"], encoding="utf-8-sig", dtype=str)
    assert raw.columns[-1].startswith(SIMULATED_MARK)
    assert raw[raw.columns[-1]].str.contains("模拟数据").all()
    pd.testing.assert_frame_equal(read_csv(o["csv"], "annex2", PLAN), annex2(EVENTS, PLAN))
    wb = openpyxl.load_workbook(o["xlsx"])
    for ws in wb.worksheets:
        assert any("模拟数据" in str(c.value) for row in ws.iter_rows() for c in row), ws.title


def test_a_real_store_is_not_marked_simulated(db, tmp_path, capsys):
    code, out, err = run(capsys, "dossier", "金峰小区", "--events", db)
    assert code == 0, err
    assert json.loads(out)["verification"]["simulated"] is False
    assert "模拟数据" not in out


# --------------------------------------------------------------------------- #
# Corrupt history (issue 23): one ticket that cannot be folded blocks only its documents


def _break(kind: str, events: list) -> list:
    import attrs

    events = list(events)
    if kind == "route of the wrong shape":
        events[1] = attrs.evolve(events[1], payload={"routing": "x"})
    elif kind == "report with no fields":
        events[0] = attrs.evolve(events[0], payload={})
    else:  # a deadline before any route
        deadline = attrs.evolve(events[1], kind="set_deadline", payload={"deadline": "2022-04-01"})
        events = [events[0], deadline]
    return events


BREAKS = ["route of the wrong shape", "report with no fields", "deadline before any route"]


def _broken_sources(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A store and a log where T-3 (首占花园) cannot be folded; T-1, T-2 (金峰小区) can."""
    db, log = tmp_path / f"{kind}.db", tmp_path / f"{kind}.jsonl"
    lines = []
    with SQLiteStore(db) as store:
        for t in _tickets():
            events = _break(kind, list(t.events)) if t.id == "T-3" else list(t.events)
            store.append(t.id, events, 0)
            lines += [json.dumps(event_to_data(e), ensure_ascii=False) for e in events]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return db, log


@pytest.mark.parametrize("kind", BREAKS)
def test_corrupt_history_leaves_one_ticket_out_and_says_why(kind, tmp_path, capsys):
    step = 0 if kind == "report with no fields" else 1  # T-3's events are at 4 and 5
    for source in _broken_sources(tmp_path, kind):
        where = f"position {4 + step}" if source.suffix == ".db" else f"{source.name}:{5 + step}"
        # the other community's dossier and every annex are made, naming what was left out
        code, out, err = run(capsys, "dossier", "金峰小区", "--events", source)
        assert code == 0, err
        data = json.loads(out)
        assert [t["ticket_id"] for t in data["tickets"]] == ["T-1", "T-2"]
        (gone,) = data["verification"]["left_out"]
        assert (gone["ticket_id"], gone["where"]) == ("T-3", where)
        for form in ("annex1", "annex2", "annex3"):
            code, out, err = run(capsys, "forms", form, "--events", source, "--json")
            assert code == 0, err
            rows = json.loads(out)
            assert all("T-3 (" in str(r) and "corrupt history" in str(r) for r in rows)
            assert rows or form != "annex2"  # only town inspections here: Annex 2 has rows
        # the bad ticket's own community: a typed error naming ticket, place and reason
        if kind != "report with no fields":  # (no readable report: no community to name)
            code, out, err = run(capsys, "dossier", "首占花园", "--events", source)
            assert code == 1
            assert out == ""
            assert "corrupt history" in err
            assert "T-3" in err
            assert where in err


@pytest.mark.parametrize("kind", BREAKS)
def test_corrupt_history_in_the_ticket_views_is_a_typed_error(kind, tmp_path, capsys):
    db, _ = _broken_sources(tmp_path, kind)
    code, out, err = run(capsys, "tickets", "--store", db, "--readonly")
    assert code == 1
    assert "T-3" in err
    assert f"position {4 if kind == 'report with no fields' else 5}" in err
    code, out, err = run(capsys, "store", "tickets", db)
    assert code == 1
    assert "T-1" in out  # the others are listed
    assert "T-3" in out


@pytest.mark.parametrize("kind", BREAKS)
def test_calibrating_from_corrupt_history_is_a_typed_error(kind, tmp_path, capsys):
    db, _ = _broken_sources(tmp_path, kind)
    code, _out, err = run(
        capsys, "simulate", "--calibrate-from", db, "--communities", "5", "--out", tmp_path / "o"
    )
    assert code == 1
    assert "corrupt history" in err
    assert "T-3" in err


# --------------------------------------------------------------------------- #
# The JSON shapes the docs state are the shapes printed (issue 23)

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _shape(doc: str, name: str) -> set[str]:
    """The keys the docs list on the line after ``<!-- shape: NAME -->``."""
    lines = (DOCS / doc).read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if f"<!-- shape: {name} -->" in line)
    import re

    return set(re.findall(r"`([a-z_]+)`", lines[at + 1]))


def test_the_dossier_verification_object_is_the_documented_one(db, log, tmp_path, capsys):
    cp_file = tmp_path / "cp.json"
    with SQLiteStore(db, readonly=True) as store:
        cp_file.write_text(checkpoint(store, datetime(2022, 4, 1, tzinfo=SH)).to_json())
    for argv in ([], ["--checkpoint", cp_file]):
        code, out, err = run(capsys, "dossier", "金峰小区", "--events", db, *argv)
        assert code == 0, err
        v = json.loads(out)["verification"]
        assert set(v) == _shape("reports.md", "verification-store")
        assert set(v["store"]) == _shape("reports.md", "verification-store-figures")
    _edit(log, 1, lambda d: d["payload"].update(routing="x"))  # T-1 left out
    code, out, err = run(capsys, "dossier", "金峰小区", "--events", log)
    assert code == 1  # T-1 is 金峰小区's
    code, out, err = run(capsys, "dossier", "首占花园", "--events", log)
    assert code == 0, err
    v = json.loads(out)["verification"]
    assert set(v) == _shape("reports.md", "verification-log")
    (gone,) = v["left_out"]
    assert set(gone) == _shape("reports.md", "left-out")


def test_the_tickets_json_is_the_documented_one(db, capsys):
    code, out, err = run(capsys, "tickets", "--store", db, "--readonly", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == _shape("cli.md", "tickets-json")
    assert data["tickets"]
    for row in data["tickets"]:
        assert set(row) == _shape("cli.md", "tickets-json-row")
    code, out, err = run(capsys, "tickets", "--store", db, "--readonly", "--json", "--counts")
    assert code == 0, err
    assert set(json.loads(out)) == _shape("cli.md", "tickets-counts-json")


def test_documents_group_by_the_normalised_name(log, capsys):
    """U+F90A (a compatibility form of 金) is 金 in NFC: one community, not two."""
    _edit(log, 2, lambda d: d["payload"].update(community="\uf90a峰小区"))  # T-2's report
    code, out, err = run(capsys, "dossier", "金峰小区", "--events", log)
    assert code == 0, err
    assert [t["ticket_id"] for t in json.loads(out)["tickets"]] == ["T-1", "T-2"]
    code, out, err = run(capsys, "forms", "annex2", "--events", log, "--json")
    assert code == 0, err
    assert {r["小区"] for r in json.loads(out)} == {"金峰小区", "首占花园"}
