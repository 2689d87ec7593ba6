"""The adversarial corpus: every ``fireflow`` command driven with hostile input.

For every case: the documented exit status (1 bad input or a refusal, 2 a usage
error), no traceback, exactly one readable error line (``错误 error: ...``,
``用法错误 usage error: ...`` or a command's ``✗`` summary line), no raw control
or bidirectional character on the terminal, nothing written (no entry of the
folder of hostile files made, changed or removed), and a bounded run (in-process
through :func:`fireflow.cli.main`; the cases that could hang or eat memory run
in a subprocess with a timeout and a memory cap).

Cases whose fix belongs to another branch are in the corpus anyway, marked
``xfail(strict=True, reason="pending h-<branch>")``; the marks come off when
those branches are merged.  ``test_corpus_covers_every_command`` fails when a
command is added without cases.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sqlite3
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer

from fireflow.cli import app, main

# --------------------------------------------------------------------------- #
# Hostile files, built once

_BOMB = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 10)}]\n"
    for p, c in zip("abcdefghi", "bcdefghij", strict=True)
)
_DEEP = 100_000
LONE = "\udc80"  # a lone surrogate, as Python decodes undecodable argv bytes
BIDI = "金峰\u202e小区"
ZWSP = "金峰小区\u200b"
HUGE = "9" * 5000
SEED = "5be1f0c7a9d24e6b8f3a1c0d9e7b6a52"
AT = "2022-04-01T10:00+08:00"


def _report_event() -> dict[str, Any]:
    """One valid event: a town inspector reports a car in the fire lane of community C1."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fireflow import Ticket, load_plan
    from fireflow.events import event_to_data

    t = Ticket("T-1", load_plan("changle-2022"))
    t.command(
        "report", datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai")), "town", "李",
        community="C1", town="金峰镇", category="fire_lane_vehicle", subtype="private_car",
        location="inside", source="town_inspection", description="占用消防车道",
        evidence=[{"kind": "photo_before", "sha256": "ab" * 32}],
    )  # fmt: skip
    return dict(event_to_data(t.events[0]))


def _files(d: Path) -> dict[str, str]:
    f: dict[str, Path] = {}

    def put(name: str, data: bytes | str) -> None:
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        f[name] = p

    f["missing"] = d / "missing.json"
    f["folder"] = d / "folder"
    f["folder"].mkdir()
    put("empty", b"")
    put("nul", b"\x00" * 64)
    put("binary", b"\xff\xfe\x00\xc3garbage\x80")
    put("deep.json", "[" * _DEEP + "]" * _DEEP)
    put("deep.yaml", "a: " + "[" * _DEEP + "]" * _DEEP + "\n")
    put("bomb.yaml", _BOMB)
    put("unknown-keys.yaml", "".join(f"k{i}: v\n" for i in range(20_000)))
    put("not-a-dict.json", "[1, 2, 3]")
    put("huge-int.json", json.dumps({"communities": HUGE}))
    put(
        "inputs.json",
        json.dumps(
            {
                "communities": [{"id": f"C{i}", "town": "金峰镇"} for i in range(12)],
                "inspectors": [
                    {"id": "H1", "agency": "housing", "name": "甲"},
                    {"id": "F1", "agency": "fire", "name": "乙"},
                ],
                "conflicts": [],
            },
            ensure_ascii=False,
        ),
    )
    put(
        "inputs-typo.json",
        json.dumps(
            {
                "communities": [{"id": "C1", "town": "金峰镇", "has_problem": True}],
                "inspectors": [{"id": "H1", "agency": "housing", "name": "甲"}],
            },
            ensure_ascii=False,
        ),
    )
    put(
        "inputs-bidi.json",
        json.dumps(
            {
                "communities": [{"id": BIDI, "town": "金峰镇"}],
                "inspectors": [{"id": "H1", "agency": "housing", "name": "甲"}],
                "conflicts": [],
            },
            ensure_ascii=False,
        ),
    )
    put("seed.txt", SEED + "\n")
    put("weak-seed.txt", "a" * 64)
    put("big-seed.txt", "ab" * 5000)
    put("events.jsonl", "")
    good = _report_event()
    put("events-ok.jsonl", json.dumps(good, ensure_ascii=False) + "\n")
    put("events-long.jsonl", json.dumps({**good, "description": "长" * 5_000_000}) + "\n")
    put("events-nul.jsonl", json.dumps({**good, "description": "a\u0000b"}) + "\n")
    put("events-bidi.jsonl", json.dumps({**good, "community": BIDI}) + "\n")
    put("events-esc.jsonl", json.dumps({**good, "ticket": "T\x1b[2J"}) + "\n")
    put("events-unknown-key.jsonl", json.dumps({**good, "surprise": 1}) + "\n")
    put("events-list.jsonl", "[1, 2]\n")
    put("events-lone.jsonl", '{"kind": "created", "ticket": "\\ud800"}\n')
    put("events-deep.jsonl", "[" * _DEEP + "]" * _DEEP + "\n")
    put("towns.json", json.dumps({"金峰镇": ["C1"]}, ensure_ascii=False))
    put("heads-list.json", "[]")
    put(
        "pop-oversize.csv",
        "乡镇（街道）,小区名称,物业服务企业,户数,楼栋数\n金峰镇," + "x" * 200_000 + ",y,1,1\n",
    )
    put("pop-nul.csv", "乡镇（街道）,小区名称,物业服务企业,户数,楼栋数\n金峰镇,\x00,y,1,1\n")
    put("pop-huge.csv", f"乡镇（街道）,小区名称,物业服务企业,户数,楼栋数\n金峰镇,甲,y,{HUGE},1\n")
    put("scenario-bad.scenario.yaml", "id: [unclosed\n")
    builtin = (Path(__file__).parents[1] / "fireflow" / "plans" / "changle-2022.yaml").read_text(
        encoding="utf-8"
    )
    assert "    end: 2022-12-31\n" in builtin
    _corrupt(d, f)
    put(
        "events-twin.jsonl", json.dumps({**good, "payload": {**good["payload"], "community": ZWSP}})
    )
    os.mkfifo(d / "fifo")  # a checkpoint path no writer ever opens
    f["fifo"] = d / "fifo"
    put("big-checkpoint.json", " " * (64 * 1024 + 1))
    put("far-plan.yaml", builtin.replace("    end: 2022-12-31\n", "    end: 9999-12-31\n"))
    put("target.txt", "keep me\n")
    os.symlink(d / "target.txt", d / "link.txt")
    f["link.txt"] = d / "link.txt"
    os.symlink(d / "nowhere", d / "dangling")
    f["dangling"] = d / "dangling"
    put("foreign.db", b"")
    con = sqlite3.connect(f["foreign.db"])
    con.execute("create table t (x)")
    con.commit()
    con.close()
    put("truncated.db", b"SQLite format 3\x00" + b"\x00" * 50)
    from fireflow.store import SQLiteStore

    with SQLiteStore(d / "store.db"):
        pass
    f["store.db"] = d / "store.db"
    _stores(d, f)
    put("subs-bad.jsonl", "not json\n")
    put("subs-deep.jsonl", "[" * _DEEP + "]" * _DEEP + "\n")
    _obligation_files(put)
    return {k: str(v) for k, v in f.items()}


def _obligation_files(put: Any) -> None:
    """Files for report scorecard, report status --duties, forms public, annex3 --draft."""
    from fireflow import load_plan
    from fireflow.rules.spotcheck import Community, Inspector, draw, draw_inputs

    plan = load_plan("changle-2022")
    inputs = draw_inputs(plan, [Community("C1", "金峰镇")], [Inspector("H1", "housing")])
    put("draw.json", json.dumps(draw(inputs, SEED).to_data(), ensure_ascii=False))
    findings = [{"community": "C1", "category": c.id, "compliant": True} for c in plan.categories]
    put("findings.json", json.dumps(findings))
    put("companies-bidi.json", json.dumps({"C1": BIDI}, ensure_ascii=False))
    put("companies-esc.json", json.dumps({"C1\x1b[2J": "榕城物业"}, ensure_ascii=False))
    put("companies-list.json", json.dumps({"C1": ["榕城物业"]}, ensure_ascii=False))
    put("companies-huge.json", json.dumps({"C1": "物" * 200_000}, ensure_ascii=False))


def _stores(d: Path, f: dict[str, Path]) -> None:
    """Stores for ``simulate --calibrate-from``: tampered, and a row nested past the limit."""
    from fireflow.events import event_from_data
    from fireflow.store import SQLiteStore
    from fireflow.store.chain import GENESIS, global_link, ticket_link

    event = event_from_data(_report_event())
    for name in ("tampered.db", "deep-row.db"):
        f[name] = d / name
        with SQLiteStore(f[name]) as store:
            store.append(event.ticket_id, [event], 0)
        con = sqlite3.connect(f[name], isolation_level=None)
        (data,) = con.execute("SELECT data FROM events WHERE position = 0").fetchone()
        if name == "tampered.db":  # a changed description, the hashes left as they were
            con.execute(
                "UPDATE events SET data = ? WHERE position = 0",
                (data.replace("占用消防车道".encode(), "一切正常".encode()),),
            )
        else:  # payload nested 40 deep, both hashes recomputed: only decoding can tell
            deep = data.replace(b'"payload":{', b'"payload":{"a":' + b"[" * 40 + b"]" * 40 + b",")
            con.execute(
                "UPDATE events SET data = ?, ticket_hash = ?, global_hash = ? WHERE position = 0",
                (deep, ticket_link(GENESIS, deep), global_link(GENESIS, deep)),
            )
        con.close()


def _corrupt(d: Path, f: dict[str, Path]) -> None:
    """A store and a log whose T-2 (community C2) has a route payload of the wrong shape."""
    import attrs

    from fireflow.events import event_from_data, event_to_data
    from fireflow.store import SQLiteStore

    report = event_from_data(_report_event())
    route = attrs.evolve(
        report, event_id="T-1/2", seq=2, kind="route", payload={"routing": "x"}, evidence=()
    )
    t1 = [attrs.evolve(report, ticket_id="T-1", event_id="T-1/1")]
    t2 = [
        attrs.evolve(
            report, ticket_id="T-2", event_id="T-2/1", payload={**report.payload, "community": "C2"}
        ),
        attrs.evolve(route, ticket_id="T-2", event_id="T-2/2"),
    ]
    f["corrupt.db"] = d / "corrupt.db"
    with SQLiteStore(f["corrupt.db"]) as store:
        store.append("T-1", t1, 0)
        store.append("T-2", t2, 0)
    con = sqlite3.connect(f["corrupt.db"], isolation_level=None)  # no -wal left for readers
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    f["corrupt.jsonl"] = d / "corrupt.jsonl"
    f["corrupt.jsonl"].write_text(
        "".join(json.dumps(event_to_data(e), ensure_ascii=False) + "\n" for e in t1 + t2),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _files(tmp_path_factory.mktemp("hostile"))


# --------------------------------------------------------------------------- #
# The corpus


@dataclass(frozen=True)
class Case:
    command: str  # the command path, e.g. "plan show"
    args: tuple[str, ...]  # after the command path; "{name}" is a hostile file
    code: int
    why: str
    pending: str | None = None  # the branch whose fix the case waits for
    subprocess: bool = False  # could hang or eat memory on a branch without the fix
    stdin: bytes | None = None
    expect: str | None = None  # a text the error must hold (case-insensitive)
    marks: tuple[Any, ...] = field(default=())

    def argv(self, files: dict[str, str]) -> list[str]:
        def fill(arg: str) -> str:
            return re.sub(r"\{([\w.-]+)\}", lambda m: files[m.group(1)], arg)

        return [*self.command.split(), *(fill(a) for a in self.args)]


def C(command: str, *args: str, code: int = 1, why: str = "", **kw: Any) -> Case:
    return Case(command, args, code, why or " ".join(args)[:40], **kw)


CORPUS: list[Case] = [
    # plan show / rules / check
    C("plan show", "{missing}", why="missing plan file"),
    C("plan show", "{folder}", why="folder as plan"),
    C("plan show", "{nul}", why="NUL bytes"),
    C("plan show", "{binary}", why="undecodable bytes"),
    C("plan show", "{empty}", why="empty file"),
    C("plan show", LONE, why="lone surrogate name"),
    C("plan show", BIDI, why="bidi name"),
    C("plan show", "--json", "--bogus", code=2, why="unknown option"),
    C("plan show", "{deep.yaml}", why="deep nesting", subprocess=True),
    C("plan rules", "{missing}", why="missing plan file"),
    C("plan rules", "{folder}", why="folder as plan"),
    C("plan rules", "{binary}", why="undecodable bytes"),
    C("plan rules", "{dangling}", why="dangling symlink"),
    C("plan check", "{missing}", why="missing plan file"),
    C("plan check", "{folder}", why="folder as plan"),
    C("plan check", "{nul}", why="NUL bytes"),
    C("plan check", "{binary}", why="undecodable bytes"),
    C("plan check", "{empty}", why="empty file"),
    C("plan check", "{deep.yaml}", why="deep nesting", subprocess=True),
    C(
        "plan check",
        "{bomb.yaml}",
        why="alias bomb",
        subprocess=True,
        expect="alias",
    ),
    C(
        "plan check",
        "{unknown-keys.yaml}",
        why="20k unknown keys",
        subprocess=True,
    ),
    C("plan check", code=2, why="missing argument"),
    C("plan new", "--from", "{missing}", "--district", "鼓楼区", "--year", "2023", why="no source"),
    C("plan new", "--from", "{binary}", "--district", "鼓楼区", "--year", "2023", why="binary"),
    C("plan new", "--from", "changle-2022", "--district", BIDI, "--year", "2023", why="bidi"),
    C("plan new", "--from", "changle-2022", "--district", "鼓楼区", "--year", "99999", why="year"),
    C("plan new", "--from", "changle-2022", "--district", "鼓楼区", code=2, why="no year"),
    C(
        "plan new",
        *("--from", "{far-plan.yaml}", "--district", "鼓楼区", "--year", "2023"),
        expect="9999-12-31",
        why="last phase ends 9999-12-31",
    ),
    C("plan check", "{far-plan.yaml}", expect="9999-12-31", why="last phase ends 9999-12-31"),
    C(
        "plan new",
        *("--from", "changle-2022", "--district", "鼓楼区", "--year", "2023"),
        *("--out", "{folder}"),
        why="folder --out",
    ),
    C("plan schema", "extra", code=2, why="unexpected argument"),
    C("plan schema", "--bogus", code=2, why="unknown option"),
    C("plan schema", LONE, code=2, why="lone surrogate argument"),
    # calendar deadline
    C("calendar deadline", "2022-01-01", "100000", "--unit", "year", code=2, why="100000 years"),
    C(
        "calendar deadline",
        "2022-01-01",
        "1000000000",
        "--unit",
        "working",
        "--provisional",
        code=2,
        why="a billion working days",
    ),
    C("calendar deadline", "2022-01-01", "36601", code=2, why="calendar days over limit"),
    C("calendar deadline", "2022-01-01", "1201", "--unit", "month", code=2, why="months"),
    C("calendar deadline", "2022-01-01", HUGE, code=2, why="5000-digit number"),
    C("calendar deadline", "2022-01-01", "-5", code=2, why="negative"),
    C("calendar deadline", "9999-12-01", "100", "--unit", "year", why="past year 9999"),
    C("calendar deadline", "2022-02-30", "1", code=2, why="invalid date"),
    C("calendar deadline", LONE, "1", code=2, why="lone surrogate date"),
    C("calendar deadline", "2022-01-01", "1", "--unit", BIDI, code=2, why="bidi unit"),
    C("calendar deadline", "2022-01-01", "1", "--plan", "{folder}", why="folder as plan"),
    C("calendar deadline", "2031-01-05", "1", why="no holiday data"),
    # spotcheck
    C("spotcheck seed", "extra", code=2, why="unexpected argument"),
    C("spotcheck seed", "--bytes", "9", code=2, why="unknown option"),
    C("spotcheck inputs", "{missing}", why="missing inputs"),
    C("spotcheck inputs", "{folder}", why="folder as inputs"),
    C("spotcheck inputs", "{binary}", why="undecodable bytes"),
    C("spotcheck inputs", "{deep.json}", why="deep nesting"),
    C("spotcheck inputs", "{not-a-dict.json}", why="a list, not an object"),
    C("spotcheck inputs", "{huge-int.json}", why="huge number"),
    C("spotcheck inputs", "{inputs-bidi.json}", why="bidi community id"),
    C("spotcheck inputs", "{inputs-typo.json}", why="misspelt key in an item"),
    C("spotcheck commit", "{inputs.json}", "--seed", "aaaaaaaaaaaaaaaa", why="weak seed"),
    C("spotcheck commit", "{inputs.json}", "--seed-file", "{weak-seed.txt}", why="weak seed file"),
    C("spotcheck commit", "{inputs.json}", "--seed-file", "{folder}", why="folder as seed file"),
    C("spotcheck commit", "{inputs.json}", "--seed-file", "{binary}", why="binary seed file"),
    C("spotcheck commit", "{inputs.json}", "--seed-file", "{big-seed.txt}", why="seed > 4096 B"),
    C("spotcheck commit", "{inputs.json}", "--seed", LONE * 40, why="lone surrogate seed"),
    C("spotcheck commit", "{inputs.json}", code=2, why="no seed"),
    C("spotcheck commit", "{deep.json}", "--seed", SEED, why="deep nesting"),
    C("spotcheck draw", "{inputs.json}", "--seed", "0123456789abcdef" * 2, why="repeated block"),
    C("spotcheck draw", "{inputs.json}", "--seed", "-", stdin=b"\xff\xfe" * 20, why="binary stdin"),
    C("spotcheck draw", "{inputs.json}", "--seed", "-", stdin=b"", why="empty stdin"),
    C(
        "spotcheck draw",
        "{inputs.json}",
        "--seed",
        SEED,
        "--seed-file",
        "{seed.txt}",
        code=2,
        why="two seeds",
    ),
    C("spotcheck draw", "{missing}", "--seed-file", "{seed.txt}", why="missing inputs"),
    C(
        "spotcheck verify",
        "{inputs.json}",
        "--seed-file",
        "{seed.txt}",
        "--commitment",
        "{deep.json}",
        "--draw",
        "{deep.json}",
        why="deep nesting",
    ),
    C(
        "spotcheck verify",
        "{inputs.json}",
        "--seed-file",
        "{seed.txt}",
        "--commitment",
        "{folder}",
        "--draw",
        "{missing}",
        why="folder and missing",
    ),
    C(
        "spotcheck verify",
        "{inputs.json}",
        "--seed-file",
        "{seed.txt}",
        "--commitment",
        "{not-a-dict.json}",
        "--draw",
        "{not-a-dict.json}",
        why="lists, not objects",
    ),
    C("spotcheck verify", "{inputs.json}", "--seed-file", "{seed.txt}", code=2, why="missing"),
    # report
    C("report due", "--on", "2022-02-30", code=2, why="invalid date"),
    C("report due", "--on", LONE, code=2, why="lone surrogate date"),
    C("report due", "--on", HUGE, code=2, why="huge number as date"),
    C("report due", "--on", "2022-07-01", "--plan", "{binary}", why="binary plan"),
    C("report due", code=2, why="missing --on"),
    C(
        "report status",
        "--towns",
        "{deep.json}",
        "--at",
        "2022-12-13T09:00+08:00",
        why="deep nesting",
    ),
    C("report status", "--towns", "{folder}", "--at", "2022-12-13T09:00+08:00", why="folder"),
    C("report status", "--towns", "{towns.json}", "--at", "2022-12-13T09:00", why="naive time"),
    C("report status", "--towns", "{towns.json}", "--at", LONE, why="lone surrogate time"),
    C(
        "report status",
        "--towns",
        "{towns.json}",
        "--at",
        "2022-12-13T09:00+08:00",
        "--submissions",
        "{events-deep.jsonl}",
        why="deep submissions",
    ),
    C(
        "report status",
        "--towns",
        "{not-a-dict.json}",
        "--at",
        "2022-12-13T09:00+08:00",
        why="towns as a list",
    ),
    # forms
    *[
        case
        for form in ("annex1", "annex2", "annex3")
        for case in (
            C(f"forms {form}", "--events", "{missing}", why="missing events"),
            C(f"forms {form}", "--events", "{folder}", why="folder as events"),
            C(f"forms {form}", "--events", "{binary}", why="undecodable events"),
            C(f"forms {form}", "--events", "{events-list.jsonl}", why="a list per line"),
            C(f"forms {form}", "--events", "{events-deep.jsonl}", why="deep nesting"),
            C(f"forms {form}", "--events", "{events-lone.jsonl}", why="lone surrogate"),
            C(f"forms {form}", "--events", "{foreign.db}", why="foreign SQLite"),
            C(f"forms {form}", "--events", "{truncated.db}", why="truncated SQLite"),
            C(
                f"forms {form}",
                "--events",
                "{events-ok.jsonl}",
                "--csv",
                "{folder}",
                why="folder as --csv",
            ),
            C(
                f"forms {form}",
                "--events",
                "{events-ok.jsonl}",
                "--csv",
                "{folder}/no/such.csv",
                why="missing folder for --csv",
            ),
            C(
                f"forms {form}",
                "--events",
                "{events-ok.jsonl}",
                "--xlsx",
                "{link.txt}",
                why="symlink as --xlsx",
            ),
        )
    ],
    C("forms annex1", "--events", "{events-ok.jsonl}", "--towns", "{deep.json}", why="deep towns"),
    C(
        "forms annex1",
        "--events",
        "{events-ok.jsonl}",
        "--towns",
        "{not-a-dict.json}",
        why="towns as a list",
    ),
    C("forms annex3", "--events", "{events-ok.jsonl}", "--draw", "{deep.json}", why="deep draw"),
    C(
        "forms annex3",
        "--events",
        "{events-ok.jsonl}",
        "--findings",
        "{not-a-dict.json}",
        why="findings of numbers",
    ),
    C(
        "forms annex2",
        "--events",
        "{events-long.jsonl}",
        why="5 MB description",
    ),
    C(
        "forms annex2",
        "--events",
        "{events-nul.jsonl}",
        why="NUL in description",
    ),
    C(
        "forms annex2",
        "--events",
        "{events-esc.jsonl}",
        why="terminal escape in ticket id",
    ),
    C(
        "forms annex2",
        "--events",
        "{events-ok.jsonl}",
        "--csv",
        "{link.txt}",
        why="symlink as --csv",
    ),
    # dossier
    C("dossier", "C1", "--events", "{missing}", why="missing events"),
    *[
        C(*cmd, "--events", "{" + src + "}", code=code, expect=expect, why=f"{why} ({src})")
        for src in ("corrupt.db", "corrupt.jsonl")
        for cmd, code, expect, why in (
            (("dossier", "C2"), 1, "corrupt history", "the community of a corrupt ticket"),
            (("dossier", "C1"), 0, None, "another community than a corrupt ticket's"),
            (("forms annex1",), 0, None, "corrupt ticket left out"),
            (("forms annex2", "--json"), 0, None, "corrupt ticket left out"),
            (("forms annex3",), 0, None, "corrupt ticket left out"),
        )
    ],
    C("dossier", "C1", "--events", "{events-twin.jsonl}", expect="U+200B", why="zero-width twin"),
    C("forms annex2", "--events", "{events-twin.jsonl}", expect="U+200B", why="zero-width twin"),
    C("tickets", "--store", "{corrupt.db}", "--readonly", expect="T-2", why="corrupt history"),
    C("store tickets", "{corrupt.db}", expect="T-2", why="corrupt history"),
    C("dossier", "C1", "--events", "{folder}", why="folder as events"),
    C("dossier", "C1", "--events", "{events-deep.jsonl}", why="deep nesting"),
    C("dossier", "C1", "--events", "{foreign.db}", why="foreign SQLite"),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-ok.jsonl}",
        "--heads",
        "{heads-list.json}",
        why="heads as a list",
    ),
    C("dossier", "C1", "--events", "{events-ok.jsonl}", "--html", "{folder}", why="folder --html"),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-ok.jsonl}",
        "--json",
        "{folder}/a/b.json",
        why="missing folder --json",
    ),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-ok.jsonl}",
        "--html",
        "{link.txt}",
        why="symlink --html",
    ),
    C("dossier", BIDI, "--events", "{events-ok.jsonl}", why="bidi community"),
    C("dossier", ZWSP, "--events", "{events-ok.jsonl}", why="zero-width community"),
    C("dossier", LONE, "--events", "{events-ok.jsonl}", why="lone surrogate"),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-bidi.jsonl}",
        why="bidi community in the log",
    ),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-unknown-key.jsonl}",
        why="unknown key in the log",
    ),
    C(
        "dossier",
        "C1",
        "--events",
        "{events-long.jsonl}",
        why="5 MB description",
    ),
    C(
        "dossier",
        "C1",
        "--events",
        "{store.db}",
        "--unverified",
        expect="C1",
        why="--unverified on an empty store: refused, naming the community",
    ),
    # simulate
    C("simulate", "--communities", "10001", code=2, why="over the limit"),
    C("simulate", "--communities", HUGE, code=2, why="5000-digit number"),
    C("simulate", "--communities", "0", code=2, why="zero"),
    C("simulate", "--seed", "-1", code=2, why="negative seed"),
    C("simulate", "--seed", HUGE, code=2, why="huge seed"),
    C("simulate", "--out", "{target.txt}", "--communities", "5", why="file as --out"),
    C(
        "simulate",
        "--population",
        "{pop-oversize.csv}",
        "--out",
        "{folder}/sim",
        why="oversize CSV field",
    ),
    C("simulate", "--population", "{pop-nul.csv}", "--out", "{folder}/sim", why="NUL in CSV"),
    C("simulate", "--population", "{pop-huge.csv}", "--out", "{folder}/sim", why="huge count"),
    C("simulate", "--population", "{folder}", "--out", "{folder}/sim", why="folder as CSV"),
    C("simulate", "--population", "{binary}", "--out", "{folder}/sim", why="binary CSV"),
    # simulate: the log, store, calibration and sharding options (tiny runs, --out in the
    # hostile folder, so that anything written would show in the snapshot)
    *[
        C("simulate", "--communities", "5", "--out", "{folder}/sim", *args, expect=field, why=why)
        for args, field, why in (
            (("--store", "{link.txt}"), "symbolic link", "symlink --store"),
            (("--store", "{dangling}"), "symbolic link", "dangling symlink --store"),
            (("--log", "{link.txt}"), "symbolic link", "symlink --log"),
            (("--log", "{dangling}"), "symbolic link", "dangling symlink --log"),
            (("--store", "{store.db}"), "store", "a real store is never overwritten"),
            (("--store", "{target.txt}"), "store", "a file is never overwritten by --store"),
            (("--log", "{target.txt}"), "--log", "a file is never overwritten by --log"),
            (("--log", "{events-ok.jsonl}"), "--log", "a real JSON-lines log is kept"),
            (("--store", "{folder}"), "folder", "folder as --store"),
            (("--log", "{folder}"), "folder", "folder as --log"),
            (("--store", "{folder}/no/such.db"), "does not exist", "missing folder --store"),
            (("--store", "{folder}/" + BIDI + ".db"), "--store", "bidi in --store"),
            (("--log", "{folder}/log\x1b[2J.jsonl"), "--log", "terminal escape in --log"),
            (("--log", "{folder}/log\u200b.jsonl"), "--log", "zero-width in --log"),
            (("--out", "{folder}/" + BIDI), "--out", "bidi in --out"),
            (("--calibrate-from", "{missing}"), "--calibrate-from", "missing store"),
            (("--calibrate-from", "{corrupt.db}"), "corrupt history", "corrupt history"),
            (("--calibrate-from", "{folder}"), "--calibrate-from", "folder as store"),
            (("--calibrate-from", "{binary}"), "--calibrate-from", "not SQLite"),
            (("--calibrate-from", "{foreign.db}"), "--calibrate-from", "foreign SQLite"),
            (("--calibrate-from", "{truncated.db}"), "--calibrate-from", "truncated SQLite"),
            (("--calibrate-from", "{events-ok.jsonl}"), "--calibrate-from", "a log, not a store"),
            (("--calibrate-from", "{store.db}"), "--calibrate-from", "a store without events"),
            (("--calibrate-from", "{tampered.db}"), "does not verify", "unverifiable store"),
            (("--calibrate-from", "{deep-row.db}"), "data.payload", "a row nested past 16"),
            (("--calibrate-from", "{folder}/" + BIDI + ".db"), "--calibrate-from", "bidi path"),
            (
                ("--calibrate-from", "{store.db}", "--calibrate-submissions", "{subs-bad.jsonl}"),
                "calibrate_submissions",
                "JSON-lines submissions with a bad line",
            ),
            (
                ("--calibrate-from", "{store.db}", "--calibrate-submissions", "{subs-deep.jsonl}"),
                "calibrate_submissions",
                "deep JSON-lines submissions",
            ),
            (
                ("--calibrate-from", "{store.db}", "--calibrate-submissions", "{binary}"),
                "calibrate_submissions",
                "binary submissions",
            ),
        )
    ],
    C("simulate", "--calibrate-submissions", "{subs-bad.jsonl}", code=2, why="no --calibrate-from"),
    *[
        C(
            "simulate",
            *("--communities", "5", "--out", "{folder}/sim", "--workers", n),
            code=2,
            expect="--workers",
            why=f"--workers {n[:12]}",
        )
        for n in ("0", "-1", "257", HUGE, "two", "1.5")
    ],
    *[
        C(
            "simulate",
            *("--communities", "5", "--out", "{folder}/sim", "--scheduler", address),
            code=2,
            expect="--scheduler",
            why=f"--scheduler {why}",
        )
        for address, why in (
            ("garbage", "garbage"),
            ("tcp://", "no host"),
            ("tcp://127.0.0.1", "no port"),
            ("tcp://127.0.0.1:0", "port 0"),
            ("tcp://127.0.0.1:65536", "port past 65535"),
            ("tcp://127.0.0.1:" + HUGE, "5000-digit port"),
            ("http://127.0.0.1:8786", "not a Dask scheme"),
            ("tcp://" + BIDI + ":8786", "bidi host"),
            ("tcp://a\x1b[2J:8786", "terminal escape"),
            ("tcp://" + "a" * 300 + ":8786", "300-character host"),
            ("tcp://host:8786/path", "a path after the port"),
            (LONE, "lone surrogate"),
        )
    ],
    C(
        "simulate",
        *("--communities", "5", "--out", "{folder}/sim", "--scheduler", "tcp://127.0.0.1:1"),
        expect="--scheduler",
        subprocess=True,  # the hang guard: a client that waited would be stopped
        why="unreachable scheduler",
    ),
    # conformance
    C("conformance run", "{missing}", why="missing scenario"),
    C("conformance run", "{folder}", why="folder with no scenario"),
    C("conformance run", "{empty}", why="empty file as scenario"),
    C("conformance run", "{scenario-bad.scenario.yaml}", why="bad YAML"),
    C("conformance run", "{deep.yaml}", why="deep nesting", subprocess=True),
    C(
        "conformance run",
        "{bomb.yaml}",
        why="alias bomb",
        subprocess=True,
        expect="alias",
    ),
    C("conformance run", "--plan", "{binary}", "{folder}", why="binary plan"),
    C("conformance run", code=2, why="missing argument"),
    C("conformance coverage", "{missing}", why="missing scenario"),
    C("conformance coverage", "{scenario-bad.scenario.yaml}", why="bad YAML"),
    C("conformance coverage", "--plan", "{folder}", why="folder as plan"),
    C("conformance schema", "extra", code=2, why="unexpected argument"),
    C("conformance schema", "--bogus", code=2, why="unknown option"),
    # tickets (the live views; --readonly so the shared store is not written)
    C("tickets", "--store", "{missing}", why="missing store"),
    C("tickets", "--store", "{folder}", why="folder as store"),
    C("tickets", "--store", "{binary}", why="not a store"),
    C("tickets", "--store", "{foreign.db}", why="foreign SQLite"),
    C("tickets", "--store", "{store.db}", "--readonly", "--town", BIDI, code=2, why="bidi town"),
    C(
        "tickets",
        "--store",
        "{store.db}",
        "--readonly",
        "--community",
        ZWSP,
        code=2,
        why="zero-width community",
    ),
    C("tickets", "--store", "{store.db}", "--readonly", "--town", LONE, code=2, why="surrogate"),
    C("tickets", "--store", "{store.db}", "--readonly", "--state", "closed", code=2, why="state"),
    C(
        "tickets",
        "--store",
        "{store.db}",
        "--readonly",
        "--overdue-at",
        "2022-04-01T00:00:00",
        code=2,
        why="naive instant",
    ),
    C("tickets", "--store", "{store.db}", "--readonly", "--overdue-at", HUGE, code=2, why="huge"),
    C(
        "tickets",
        "--store",
        "{store.db}",
        "--readonly",
        "--due-from",
        "2022-02-30",
        code=2,
        why="impossible date",
    ),
    C("tickets", "--store", "{store.db}", "--readonly", "--limit", HUGE, code=2, why="huge limit"),
    C(
        "tickets",
        *("--store", "{store.db}", "--readonly", "--json", "--limit", "1000000"),
        code=0,
        why="the documented maximum --limit",
    ),
    C(
        "tickets",
        *("--store", "{store.db}", "--readonly", "--overdue-at", "0001-01-01T00:00+14:00"),
        code=0,
        why="the first instant of the calendar",
    ),
    C(
        "tickets",
        *("--store", "{store.db}", "--readonly", "--overdue-at", "9999-12-31T23:59-14:00"),
        code=0,
        why="the last instant of the calendar",
    ),
    C(
        "tickets",
        "--store",
        "host=/nonexistent dbname=x connect_timeout=2",
        why="unreachable server",
    ),
    # store
    C("store verify", "{missing}", why="missing store"),
    C("store verify", "{folder}", why="folder as store"),
    C("store verify", "{binary}", why="not SQLite"),
    C("store verify", "{foreign.db}", why="foreign SQLite"),
    C("store verify", "{truncated.db}", why="truncated SQLite"),
    C("store verify", "{store.db}", "--checkpoint", "{deep.json}", why="deep checkpoint"),
    C("store verify", "{store.db}", "--checkpoint", "{folder}", why="folder checkpoint"),
    C("store verify", "{store.db}", "--checkpoint", "{binary}", why="binary checkpoint"),
    C("store verify", "{empty}", why="empty file"),
    *[
        C(
            *cmd,
            "--checkpoint",
            "{" + name + "}",
            expect=expect,
            subprocess=name == "fifo",  # the hang guard, for a branch without the fix
            why=f"{name} as --checkpoint",
        )
        for cmd in (
            ("store verify", "{store.db}"),
            ("dossier", "C1", "--events", "{store.db}"),
            ("forms annex1", "--events", "{store.db}"),
            ("forms annex2", "--events", "{store.db}"),
            ("forms annex3", "--events", "{store.db}"),
        )
        for name, expect in (("fifo", "not a regular file"), ("big-checkpoint.json", "65536"))
    ],
    C("store tickets", "{missing}", why="missing store"),
    C("store tickets", "{folder}", why="folder as store"),
    C("store tickets", "{foreign.db}", why="foreign SQLite"),
    C("store tickets", "{truncated.db}", why="truncated SQLite"),
    C("store replay", "{missing}", "T1", why="missing store"),
    C("store replay", "{store.db}", "T1", why="no such ticket"),
    C("store replay", "{store.db}", LONE, why="lone surrogate ticket"),
    C("store replay", "{store.db}", "T\x1b[2J", why="terminal escape in ticket"),
    C("store replay", "{foreign.db}", "T1", why="foreign SQLite"),
    C("store checkpoint", "{missing}", why="missing store"),
    C("store checkpoint", "{store.db}", code=2, why="empty store, no --at"),
    C(
        "store checkpoint",
        "{store.db}",
        "--at",
        "2022-13-45T00:00+08:00",
        code=2,
        why="invalid --at",
    ),
    C("store checkpoint", "{store.db}", "--at", LONE, code=2, why="lone surrogate --at"),
    C(
        "store checkpoint",
        "{store.db}",
        "--at",
        "2022-07-01T00:00+08:00",
        "--out",
        "{folder}",
        why="folder as --out",
    ),
    C(
        "store checkpoint",
        "{store.db}",
        "--at",
        "2022-07-01T00:00+08:00",
        "--out",
        "{link.txt}",
        why="symlink --out",
    ),
    # --- obligations, scorecards, 一公开, annex3 --draft (issue 22 items 5-9) ---
    *[
        C("report scorecard", "--events", "{events-ok.jsonl}", "--at", AT, *extra, why=why)
        for extra, why in (
            (("--companies", "{deep.json}"), "deep companies"),
            (("--companies", "{not-a-dict.json}"), "companies as a list"),
            (("--companies", "{companies-bidi.json}"), "bidi company name"),
            (("--companies", "{companies-esc.json}"), "escape in a community"),
            (("--companies", "{companies-list.json}"), "company not text"),
            (("--companies", "{companies-huge.json}"), "oversize company name"),
            (("--companies", "{binary}"), "undecodable companies"),
            (("--population", "{pop-nul.csv}"), "NUL in population"),
            (("--population", "{pop-oversize.csv}"), "oversize population cell"),
            (("--population", "{folder}"), "folder as population"),
            (("--towns", "{deep.json}"), "deep towns"),
            (("--towns", "{not-a-dict.json}"), "towns as a list"),
            (("--submissions", "{subs-deep.jsonl}"), "deep submissions"),
            (("--submissions", "{subs-bad.jsonl}"), "bad submissions"),
            (("--csv", "{link.txt}"), "symlink --csv"),
            (("--csv", "{dangling}"), "dangling symlink --csv"),
            (("--html", "{folder}"), "folder as --html"),
            (("--html", "{link.txt}"), "symlink --html"),
        )
    ],
    C("report scorecard", "--events", "{missing}", "--at", AT, why="missing events"),
    C("report scorecard", "--events", "{events-deep.jsonl}", "--at", AT, why="deep events"),
    C("report scorecard", "--events", "{tampered.db}", "--at", AT, why="tampered store"),
    C(
        "report scorecard",
        "--events",
        "{events-ok.jsonl}",
        "--at",
        "2022-04-01T10:00",
        why="naive --at",
    ),
    C("report scorecard", "--events", "{events-ok.jsonl}", "--at", HUGE, why="huge --at"),
    C("report scorecard", "--events", "{events-ok.jsonl}", "--at", BIDI, why="bidi --at"),
    C("report scorecard", "--events", "{events-ok.jsonl}", code=2, why="no --at"),
    C(
        "report status",
        "--towns",
        "{towns.json}",
        "--at",
        AT,
        "--duties",
        "--events",
        "{binary}",
        why="undecodable --events",
    ),
    C(
        "report status",
        "--towns",
        "{towns.json}",
        "--at",
        AT,
        "--duties",
        "--events",
        "{events-deep.jsonl}",
        why="deep --events",
    ),
    C(
        "report status",
        "--towns",
        "{towns.json}",
        "--at",
        AT,
        "--events",
        "{events-ok.jsonl}",
        code=2,
        why="--events without --duties",
    ),
    C("report status", "--towns", "{deep.json}", "--at", AT, "--duties", why="deep towns"),
    *[
        C(
            "forms public",
            "--events",
            events,
            "--draw",
            drawn,
            "--findings",
            found,
            *extra,
            why=why,
        )
        for events, drawn, found, extra, why in (
            ("{events-ok.jsonl}", "{draw.json}", "{findings.json}", (), "unverified log"),
            ("{tampered.db}", "{draw.json}", "{findings.json}", (), "tampered store"),
            ("{events-ok.jsonl}", "{missing}", "{findings.json}", (), "missing draw"),
            ("{events-ok.jsonl}", "{deep.json}", "{findings.json}", (), "deep draw"),
            ("{events-ok.jsonl}", "{draw.json}", "{deep.json}", (), "deep findings"),
            ("{events-ok.jsonl}", "{draw.json}", "{binary}", (), "undecodable findings"),
            (
                "{events-ok.jsonl}",
                "{draw.json}",
                "{findings.json}",
                ("--csv", "{link.txt}"),
                "symlink --csv",
            ),
            (
                "{events-ok.jsonl}",
                "{draw.json}",
                "{findings.json}",
                ("--csv", "{folder}"),
                "folder as --csv",
            ),
            (
                "{events-lone.jsonl}",
                "{draw.json}",
                "{findings.json}",
                ("--unverified",),
                "lone surrogate events",
            ),
        )
    ],
    C(
        "forms public",
        "--events",
        "{events-ok.jsonl}",
        "--draw",
        "{draw.json}",
        code=2,
        why="no --findings",
    ),
    C(
        "forms annex3",
        "--events",
        "{events-ok.jsonl}",
        "--draw",
        "{draw.json}",
        why="drawn community unchecked, no --draft",
        expect="--draft",
    ),
    C(
        "forms annex3",
        "--events",
        "{events-ok.jsonl}",
        "--draw",
        "{draw.json}",
        "--draft",
        "--csv",
        "{link.txt}",
        why="--draft to a symlink",
    ),
]


# --------------------------------------------------------------------------- #
# plan upgrade (a plan of an earlier format rewritten in place or to --out)

#: The built-in plan before two revisions (from git history): upgrading it writes a file.
OLD_PLAN = str(
    Path(__file__).resolve().parent / "plans" / "changle-2022-before-rectification-cap.yaml"
)

# fireflow serve (issue 26): the commands that run before any server starts
CORPUS += [
    C("serve openapi", "--plan", "{missing}", why="missing plan file"),
    C("serve openapi", "--plan", BIDI, why="bidi plan name"),
    C("serve token create", "--agency", BIDI, why="bidi agency"),
    C("serve token create", "--agency", "town", "--person", "李\x1b[2J", why="escape in person"),
    C("serve token create", code=2, why="no agency"),
    C("serve token revoke", "nope\x1b[2J", "--state-dir", "{folder}", why="unknown token id"),
    C("serve token revoke", LONE, "--state-dir", "{folder}", why="lone surrogate id"),
    C("serve token list", "--state-dir", "{binary}", why="a file as the state folder"),
    C("serve token list", "--state-dir", "{nul}", why="NUL file as the state folder"),
]

CORPUS += [
    C("plan upgrade", "{missing}", why="missing plan file"),
    C("plan upgrade", "{folder}", why="folder as plan"),
    C("plan upgrade", "{nul}", why="NUL bytes"),
    C("plan upgrade", "{binary}", why="undecodable bytes"),
    C("plan upgrade", "{empty}", why="empty file"),
    C("plan upgrade", "{not-a-dict.json}", why="not a mapping"),
    C("plan upgrade", "{deep.yaml}", why="deep nesting", subprocess=True),
    C("plan upgrade", "{bomb.yaml}", why="alias bomb", subprocess=True, expect="alias"),
    C("plan upgrade", OLD_PLAN, "--out", "{link.txt}", why="symlink --out", expect="link"),
    C("plan upgrade", OLD_PLAN, "--out", "{dangling}", why="dangling symlink --out"),
    C("plan upgrade", OLD_PLAN, "--out", "{folder}", why="folder as --out"),
    C("plan upgrade", code=2, why="missing argument"),
]


# Store cases (issue 23, store side): `store copy` with hostile sources and destinations,
# and a malformed connection string whose password must not be printed.
STORE_CASES: list[Case] = [
    C("store copy", "{missing}", "{missing}", why="missing source"),
    C("store copy", "{folder}", "{missing}", why="folder as source"),
    C("store copy", "{binary}", "{missing}", why="not SQLite source"),
    C("store copy", "{empty}", "{missing}", why="empty file as source"),
    C("store copy", "{foreign.db}", "{missing}", why="foreign SQLite source"),
    C("store copy", "{truncated.db}", "{missing}", why="truncated source"),
    C("store copy", "{tampered.db}", "{missing}", why="tampered source", expect="未复制"),
    C("store copy", "{deep-row.db}", "{missing}", why="row nested past the limit"),
    C("store copy", "{store.db}", "{foreign.db}", why="foreign SQLite destination"),
    C("store copy", "{store.db}", "{folder}", why="folder as destination"),
    C("store copy", "{store.db}", "{binary}", why="not SQLite destination"),
    C(
        "store copy",
        "postgresql://fireflow:PASSWORD@[::1/changle",
        "{missing}",
        why="malformed URL with a password",
        expect="fireflow:***@",
    ),
    C(
        "store copy",
        "{tampered.db}",
        "host=db password=PASSWORD dbname=x bogus",
        why="password in a key=value destination",
    ),
    C("store copy", "{store.db}", code=2, why="no destination"),
    C("store verify", "postgresql://u:PASSWORD@db/x", why="URL as a store path", expect="u:***@"),
]
CORPUS += STORE_CASES


def _commands() -> set[str]:
    found: set[str] = set()

    def walk(cmd: Any, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return found


def _param(case: Case) -> Any:
    marks = list(case.marks)
    if case.pending:
        marks.append(pytest.mark.xfail(strict=True, reason=f"pending {case.pending}"))
    return pytest.param(case, id=f"{case.command}: {case.why}", marks=marks)


# --------------------------------------------------------------------------- #
# The checks

_PREFIXES = ("错误 error:", "用法错误 usage error:", "✗ ")


def _check_output(case: Case, code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, err[-2000:]
    assert code == case.code, f"exit {code}, expected {case.code}: {err[-1000:]}"
    if code == 0:
        return
    if case.expect is not None:
        # the reason is on stderr, or in the report on stdout (conformance run)
        text = (err + out).lower()
        assert case.expect.lower() in text, f"no {case.expect!r} in: {err[-1000:]!r}"
    headed = [line for line in err.splitlines() if line.startswith(_PREFIXES)]
    assert len(headed) == 1, f"expected one error line, got: {err[-2000:]!r}"
    assert len(err.splitlines()) <= 45, "error output is not bounded"
    for ch in err:
        cat = unicodedata.category(ch)
        assert ch == "\n" or cat not in ("Cc", "Cf", "Cs"), f"raw {ch!r} reached the terminal"


def _snapshot(files: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """Every entry under the hostile folder (links not followed): mode, size, mtime."""
    root = Path(files["folder"]).parent
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
            )
    return out


def _check_nothing_written(before: dict[str, tuple[int, int, int]], files: dict[str, str]) -> None:
    after = _snapshot(files)
    made = sorted(set(after) - set(before))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    gone = sorted(set(before) - set(after))
    assert (made, changed, gone) == ([], [], []), "a refused command wrote to the disk"


IN_PROCESS = [_param(c) for c in CORPUS if not c.subprocess]
IN_SUBPROCESS = [_param(c) for c in CORPUS if c.subprocess]


@pytest.mark.parametrize("case", IN_PROCESS)
def test_hostile_input_in_process(case: Case, files, capsys, monkeypatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(case.stdin or b"")))
    before = _snapshot(files)
    code = main(case.argv(files))
    out, err = capsys.readouterr()
    _check_output(case, code, out, err)
    _check_nothing_written(before, files)


# The child caps its own address space (1 GiB) before it runs the command, so a case that
# eats memory fails fast instead of taking the machine with it.
_CHILD = (
    "import resource, sys; cap = 1 << 30; resource.setrlimit(resource.RLIMIT_AS, (cap, cap)); "
    "from fireflow.cli import main; sys.exit(main())"
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
@pytest.mark.parametrize("case", IN_SUBPROCESS)
def test_hostile_input_in_a_subprocess(case: Case, files) -> None:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    before = _snapshot(files)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *case.argv(files)],
            input=case.stdin or b"",
            capture_output=True,
            timeout=30,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("hung: no answer within the hang guard")
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    _check_output(case, proc.returncode, out, err)
    _check_nothing_written(before, files)


def test_corpus_covers_every_command() -> None:
    covered = {c.command for c in CORPUS}
    assert covered == _commands(), "a command without hostile cases (or a case for no command)"
    counts = collections.Counter(c.command for c in CORPUS)
    assert min(counts.values()) >= 2


def test_a_few_cases_in_a_real_process_with_undecodable_argv(files) -> None:
    """Bytes that are not UTF-8 on the command line reach fireflow as lone surrogates."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    for argv, code in (
        ([b"plan", b"show", b"\xff\xfe"], 1),
        ([b"calendar", b"deadline", b"\xff", b"1"], 2),
        ([b"store", b"replay", files["store.db"].encode(), b"T\xff\x1b[2J"], 1),
    ):
        proc = subprocess.run(
            [sys.executable.encode(), b"-m", b"fireflow.cli", *argv],
            capture_output=True,
            timeout=60,
            env=env,
            check=False,
        )
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == code, err
        assert "Traceback" not in err
        assert "\x1b" not in err


def test_corpus_size_per_command() -> None:
    """The figures the closing note reports (printed with ``pytest -s``)."""
    counts = collections.Counter(c.command for c in CORPUS)
    pending = collections.Counter(c.pending for c in CORPUS if c.pending)
    print(f"\n{len(CORPUS)} cases over {len(counts)} commands; pending: {dict(pending)}")
    for command, n in sorted(counts.items()):
        print(f"  {n:3}  {command}")
    assert sum(counts.values()) == len(CORPUS)


# --------------------------------------------------------------------------- #
# plan upgrade: oversize, control characters, a plan file that is a symbolic link


@pytest.fixture(scope="module")
def upgrade_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile-upgrade")
    old = Path(OLD_PLAN).read_text(encoding="utf-8")
    with (d / "oversize.yaml").open("wb") as fh:  # sparse: past the 1 MiB limit, read no further
        fh.write(old.encode("utf-8"))
        fh.seek(4 * 1024 * 1024)
        fh.write(b"\n")
    (d / "control.yaml").write_text(old + "# \x1b[2J\u202e\x07 bell\n", encoding="utf-8")
    (d / "old.yaml").write_text(old, encoding="utf-8")
    os.symlink(d / "old.yaml", d / "link-to-old.yaml")
    return {p.name: str(p) for p in d.iterdir()}


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("oversize.yaml", "MiB"),
        ("control.yaml", "control"),
        ("link-to-old.yaml", "link"),  # rewritten in place: the link is refused, not followed
    ],
)
def test_plan_upgrade_hostile_files(upgrade_files, name, expect, capsys) -> None:
    root = Path(upgrade_files["old.yaml"]).parent
    before = {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.iterdir()}
    code = main(["plan", "upgrade", upgrade_files[name]])
    out, err = capsys.readouterr()
    _check_output(C("plan upgrade", name, expect=expect), code, out, err)
    after = {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.iterdir()}
    assert after == before, "a refused upgrade wrote to the disk"


# --------------------------------------------------------------------------- #
# Cases that need a live socket or a store written for them (issue 23)


@pytest.fixture
def silent_port():
    """A local port that accepts connections and never says a word."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    for conn in held:
        conn.close()


def test_a_scheduler_that_accepts_and_never_answers_is_a_typed_error(silent_port, monkeypatch):
    from fireflow.sim import shard

    with pytest.raises(shard.SchedulerUnreachable, match="handshake") as info:
        shard.connect_scheduler(f"tcp://127.0.0.1:{silent_port}", timeout=0.2)
    assert info.value.field == "scheduler"


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
def test_simulate_with_a_silent_or_tls_scheduler_exits_1(silent_port, monkeypatch, capsys, scheme):
    from fireflow.sim import shard

    monkeypatch.setattr(shard, "SCHEDULER_TIMEOUT", 0.2)
    address = f"{scheme}://127.0.0.1:{silent_port}"
    code = main(["simulate", "--communities", "5", "--scheduler", address])
    out, err = capsys.readouterr()
    case = C("simulate", code=1, expect="--scheduler")
    _check_output(case, code, out, err)
    assert ("handshake" if scheme == "tcp" else "TLS") in err


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("fireflow_index_tickets", "deadline", "'not a day'"),
        ("fireflow_index_tickets", "due_us", "'soon'"),
        ("fireflow_index_tickets", "due_us", str(2**62)),
        ("fireflow_index_states", "data", "'{\"ticket_id\": 1'"),
        ("fireflow_index_states", "data", "'[]'"),
        ("fireflow_index_meta", "position", "'many'"),
    ],
)
def test_a_hand_edited_index_row_is_a_typed_error(tmp_path, capsys, table, column, value):
    from store_workers.histories import history, ticket_id

    from fireflow.store import SQLiteStore

    path = tmp_path / "store.db"
    with SQLiteStore(path) as store:
        for k in range(3):
            store.append(ticket_id(k), history(k), 0)
    assert main(["tickets", "--store", str(path), "--json"]) == 0
    capsys.readouterr()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"UPDATE {table} SET {column} = {value}")
    con.close()
    if table == "fireflow_index_states":  # read when a ticket's state is looked up
        from fireflow.store import StoreError
        from fireflow.views import TicketIndex

        with SQLiteStore(path, create=False) as store, TicketIndex(store) as index:
            with pytest.raises(StoreError, match="rebuild"):
                index.state(ticket_id(0))
            with pytest.raises(StoreError, match="rebuild"):
                index.states()
        return
    for extra in ([], ["--limit", "2"]):
        code = main(["tickets", "--store", str(path), "--json", *extra])
        out, err = capsys.readouterr()
        _check_output(C("tickets", code=1, expect="ticket index"), code, out, err)
        assert "--rebuild" in err


def test_simulate_with_a_ucx_scheduler_and_no_ucx_exits_1(tmp_path, capsys):
    code = main(["simulate", "--communities", "5", "--scheduler", "ucx://127.0.0.1:1",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    out, err = capsys.readouterr()
    _check_output(C("simulate", code=1, expect="--scheduler"), code, out, err)
