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
    assert code == 2  # a number outside its limit is a usage error
    assert "N:" in err


@pytest.mark.parametrize(
    ("unit", "limit"), [("calendar", 36600), ("working", 25000), ("month", 1200), ("year", 100)]
)
def test_calendar_deadline_bounds_per_unit(capsys, unit, limit):
    from fireflow.cli import MAX_PERIOD_UNITS

    assert MAX_PERIOD_UNITS[unit] == limit
    code, _, err = run(capsys, "calendar", "deadline", "2022-01-05", str(limit + 1), "--unit", unit)
    assert code == 2
    assert f"at most {limit}" in err
    assert err.count("\n") == 1


def test_calendar_deadline_huge_working_period_answers_at_once(capsys):
    args = ("calendar", "deadline", "2022-01-01", "1000000000", "--unit", "working")
    code, _, err = run(capsys, *args, "--provisional")
    assert code == 2
    assert "25000" in err


def test_calendar_deadline_past_year_9999_is_an_input_error(capsys):
    code, _, err = run(capsys, "calendar", "deadline", "9999-06-01", "100", "--unit", "year")
    assert code == 1
    assert "9999-12-31" in err
    assert "Traceback" not in err


def test_version(capsys):
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"fireflow {version('fireflow')}"


def test_flags_show_no_bool_label_in_help(capsys):
    code, out, _ = run(capsys, "plan", "show", "--help")
    assert code == 0
    assert "--json" in out
    assert "<bool>" not in out


def test_usage_error_is_one_line_with_exit_2(capsys):
    code, _out, err = run(capsys, "plan", "show", "--no-such-option")
    assert code == 2
    assert err.startswith("用法错误 usage error: ")
    assert err.count("\n") == 1
    assert "fireflow plan show --help" in err


def test_unexpected_exception_is_one_line_exit_70(capsys, monkeypatch):
    import fireflow.cli as cli

    def boom(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(cli, "load_plan", boom)
    code, _, err = run(capsys, "plan", "rules")
    assert code == 70
    assert err.count("\n") == 1
    assert "ZeroDivisionError" in err
    assert "report" in err


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


def _spot_inputs(tmp_path):
    path = tmp_path / "inputs.json"
    path.write_text(
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
        encoding="utf-8",
    )
    return path


def test_spotcheck_seed_is_fresh_256_bit_hex(capsys):
    from fireflow.rules.spotcheck import MIN_SEED_BITS, seed_strength

    code, first, _ = run(capsys, "spotcheck", "seed")
    assert code == 0
    code, second, _ = run(capsys, "spotcheck", "seed")
    first, second = first.strip(), second.strip()
    assert first != second
    assert len(first) == 64
    assert int(first, 16) >= 0
    assert seed_strength(first) >= MIN_SEED_BITS


def test_seed_file_stdin_and_value_give_the_same_draw(tmp_path, capsys, monkeypatch):
    import io

    inputs = _spot_inputs(tmp_path)
    seed = "5be1f0c7a9d24e6b8f3a1c0d9e7b6a52"
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text(seed + "\n", encoding="utf-8")
    _, by_value, _ = run(capsys, "spotcheck", "draw", str(inputs), "--seed", seed)
    _, by_file, _ = run(capsys, "spotcheck", "draw", str(inputs), "--seed-file", str(seed_file))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(seed.encode() + b"\r\n")))
    code, by_stdin, err = run(capsys, "spotcheck", "draw", str(inputs), "--seed", "-")
    assert code == 0, err
    assert by_value == by_file == by_stdin
    assert json.loads(by_value)["assignments"]


@pytest.mark.parametrize(
    "seed", ["aaaaaaaaaaaaaaaa", "0123456789abcdef" * 2, "9f86d081884c7d659a2feaa0c55ad01"]
)
def test_weak_seeds_are_refused_on_every_spotcheck_command(tmp_path, capsys, seed):
    inputs = _spot_inputs(tmp_path)
    for command in ("commit", "draw"):
        code, out, err = run(capsys, "spotcheck", command, str(inputs), "--seed", seed)
        assert code == 1
        assert out == ""
        assert "R-SPOT-DOUBLE-RANDOM" in err
        assert "128" in err
        assert err.count("\n") == 1


def test_seed_must_be_given_exactly_once(tmp_path, capsys):
    inputs = _spot_inputs(tmp_path)
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text("5be1f0c7a9d24e6b8f3a1c0d9e7b6a52", encoding="utf-8")
    assert run(capsys, "spotcheck", "draw", str(inputs))[0] == 2
    both = ("--seed", "5be1f0c7a9d24e6b8f3a1c0d9e7b6a52", "--seed-file", str(seed_file))
    assert run(capsys, "spotcheck", "draw", str(inputs), *both)[0] == 2
    big = tmp_path / "big.txt"
    big.write_bytes(b"ab" * 5000)
    code, _, err = run(capsys, "spotcheck", "draw", str(inputs), "--seed-file", str(big))
    assert code == 1
    assert "4096" in err


def test_plan_check_lists_at_most_40_problems_and_counts_the_rest(capsys, monkeypatch):
    import fireflow.cli as cli
    from fireflow.errors import PlanError, Problem

    def many(path):
        raise PlanError([Problem("p.yaml", f"k{i}", "unknown key \x1b[2J") for i in range(100)])

    monkeypatch.setattr(cli, "load_plan", many)
    code, _, err = run(capsys, "plan", "check", "p.yaml")
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 + 40 + 1
    assert "60 more" in lines[-1]
    assert "\x1b" not in err
