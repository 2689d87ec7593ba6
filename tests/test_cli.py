"""The fireflow command, run in-process through ``main`` and once as a real process."""

import json
import subprocess
import sys

import pytest

from fireflow import load_plan
from fireflow.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_show_lists_every_phase_and_deadline(capsys):
    code, out, _ = run(capsys, "plan", "show", "changle-2022")
    assert code == 0
    for text in ("动员部署", "巩固验收", "2022-12-12", "R-DUE-SUMMARY", "progress.rectification"):
        assert text in out


def test_plan_show_json_is_stable_and_complete(capsys):
    _, first, _ = run(capsys, "plan", "show", "--json")
    _, second, _ = run(capsys, "plan", "show", "--json")
    assert first == second
    data = json.loads(first)
    assert [p["id"] for p in data["phases"]] == [
        "mobilization",
        "self_inspection",
        "rectification",
        "spot_check",
        "consolidation",
    ]
    due = {d["id"]: d["due"] for d in data["deadlines"]}
    assert due["summary"] == "2022-12-12"
    assert len(due) == 8


def test_plan_check_reports_every_problem(tmp_path, capsys):
    from fireflow import load_plan

    text = load_plan("changle-2022").to_yaml()
    text = text.replace("recipients:\n  - town\n  - housing", "recipients:\n  - town\n  - nobody")
    text = text.replace("timezone: Asia/Shanghai", "timezone: Mars/Olympus")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, "plan", "check", str(bad))
    assert code == 1
    assert "unknown agency 'nobody'" in err
    assert "unknown time zone" in err
    assert "2 problem(s)" in err


def test_plan_check_accepts_the_builtin_plan(tmp_path, capsys):
    from fireflow import dump_plan, load_plan

    path = tmp_path / "ok.yaml"
    dump_plan(load_plan("changle-2022"), path)
    code, out, _ = run(capsys, "plan", "check", str(path))
    assert code == 0
    assert "plan is valid" in out


def test_rules_and_schema(capsys):
    code, out, _ = run(capsys, "plan", "rules", "--json")
    assert code == 0
    assert len(json.loads(out)) == len(load_plan("changle-2022").rules)
    code, out, _ = run(capsys, "plan", "schema")
    assert code == 0
    schema = json.loads(out)
    assert "phases" in schema["properties"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("2022-09-30", "1"), "2022-10-08"),
        (("2022-09-30", "1", "--unit", "working"), "2022-10-08"),
        (("2022-01-28", "3", "--unit", "working"), "2022-02-07"),
    ],
)
def test_calendar_deadline(capsys, args, expected):
    code, out, _ = run(capsys, "calendar", "deadline", *args)
    assert code == 0
    assert out.split()[0] == expected


def test_calendar_deadline_errors_are_typed_and_exit_nonzero(capsys):
    code, _, err = run(capsys, "calendar", "deadline", "2031-01-05", "1")
    assert code == 1
    assert "2031" in err
    code, out, _ = run(capsys, "calendar", "deadline", "2031-01-05", "1", "--provisional")
    assert code == 0
    assert "provisional" in out
    code, _, err = run(capsys, "calendar", "deadline", "not-a-date", "1")
    assert code == 2
    code, _, err = run(capsys, "calendar", "deadline", "2022-01-05", "0")
    assert code == 1
    assert "n:" in err


def test_unknown_plan_and_command(capsys):
    assert run(capsys, "plan", "show", "no-such-plan")[0] == 1
    assert run(capsys, "plan", "frobnicate")[0] == 2


def test_installed_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "fireflow.cli", "calendar", "deadline", "2022-12-09", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "2022-12-12"


def test_simulate_is_the_main_job(tmp_path, capsys):
    code, out, _ = run(capsys, "simulate", "--out", str(tmp_path), "--communities", "20")
    assert code == 0
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "timeline.csv").is_file()
    assert "抽查" in out
