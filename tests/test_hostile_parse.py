"""Hostile input at the edges: every file reader refuses within bounds, with a typed error.

An adversarial corpus per entry point (``load_plan``/``parse_plan``,
``fireflow plan check``, scenario loading and ``fireflow conformance run``,
the population CSV reader, the JSON and JSON-lines readers): alias bombs,
deep nesting, oversize files, many unknown keys, NUL, lone surrogates,
bidirectional and zero-width characters in ids and names, unquoted invalid
dates.  Each case asserts the typed error (and, for the CLI, exit status 1 and
no traceback).  Memory is measured with tracemalloc; durations are never
asserted (a subprocess timeout guards against a hang).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import base_data, scaled

from fireflow._input import (
    MAX_CSV_FIELD_CHARS,
    MAX_DEPTH,
    MAX_INPUT_BYTES,
    MAX_LINE_BYTES,
    iter_json_lines,
    read_json,
)
from fireflow._yaml import (
    MAX_ALIAS_NODES,
    MAX_DEFINITION_BYTES,
    MAX_PROBLEMS,
    MAX_YAML_NODES,
)
from fireflow.cli import main
from fireflow.errors import FireflowError, InputLimitExceeded, InvalidArgument, PlanError
from fireflow.plan import load_plan, parse_plan, validate_plan_data
from fireflow.sim.population import load_population, parse_population
from fireflow.testing.scenario import ScenarioError, load_scenario, parse_scenario

#: The memory any one check may take (the issue's bound), in bytes.
MEMORY_BOUND = 200 * 1024 * 1024


def billion_laughs() -> str:
    """Ten levels of ten aliases: about 520 bytes, 10**10 strings if expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def deep_flow(levels: int) -> str:
    return "format: " + "[" * levels + "]" * levels + "\n"


def deep_block(levels: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "x: 1\n"


def unknown_keys(n: int) -> str:
    return "".join(f"unknown_{i}: 1\n" for i in range(n))


#: (name, YAML text, fragment of the one problem's message, expected line or None)
YAML_BOMBS: list[tuple[str, str, str, int | None]] = [
    ("billion laughs", billion_laughs(), "aliases expand to more than", 4),
    ("recursive alias", "a: &a [1, *a]\n", "recursive alias", 1),
    ("undefined alias", "a: *nowhere\n", "", 1),
    ("deep flow nesting", deep_flow(MAX_DEPTH + 5), "nesting deeper than", 1),
    ("very deep flow nesting", deep_flow(100_000), "nest", 1),
    ("deep block nesting", deep_block(MAX_DEPTH + 5), "nesting deeper than", MAX_DEPTH + 1),
    ("deep alias", "a: &a " + "[" * 20 + "]" * 20 + "\nb: " + "[" * 20 + "*a" + "]" * 20,
     "nesting deeper than", 2),
    ("too many nodes", "a: [" + ",".join(["1"] * (MAX_YAML_NODES + 1)) + "]\n", "YAML nodes", 1),
    ("NUL", "format: fireflow.plan/1\nid: x\x00y\n", "not valid YAML", 2),
    ("C1 control", "format: fireflow.plan/1\nid: x\x85\x9by\n", "", None),
    ("python tag", "format: !!python/object/apply:os.system ['true']\n", "not valid YAML", 1),
    ("two documents", "a: 1\n---\nb: 2\n", "single document", 2),
]  # fmt: skip


BOMB_IDS = [case[0] for case in YAML_BOMBS]


def _peak(func: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``func``; return what it raised (or returned) and the peak traced memory."""
    tracemalloc.start()
    try:
        try:
            result: Any = func()
        except Exception as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text
        assert "RecursionError" not in text
        assert "_csv.Error" not in text


# =========================================================================== #
# Plans: load_plan / parse_plan


@pytest.mark.parametrize(("name", "text", "fragment", "line"), YAML_BOMBS, ids=BOMB_IDS)
def test_plan_bombs_are_refused_with_one_problem(
    tmp_path: Path, name: str, text: str, fragment: str, line: int | None
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    err, peak = _peak(lambda: load_plan(path))
    assert isinstance(err, PlanError), (name, err)
    assert fragment in str(err)
    assert str(path) in str(err)
    if line is not None:
        assert err.problems[0].line == line, err
    assert peak < 20 * 1024 * 1024, peak  # refused before anything large is built


def test_billion_laughs_is_520_bytes_and_refused_before_construction() -> None:
    text = billion_laughs()
    assert len(text.encode()) == 520
    err, peak = _peak(lambda: parse_plan(text, source="bomb.yaml"))
    assert isinstance(err, PlanError)
    assert [p.path for p in err.problems] == ["a3[7]"]  # the alias that crosses the budget
    assert f"more than {MAX_ALIAS_NODES} nodes" in err.problems[0].message
    assert peak < 5 * 1024 * 1024


def test_aliases_within_the_budget_are_expanded() -> None:
    text = "a: &x [1, 2, 3]\nb: [*x, *x]\n"
    with pytest.raises(PlanError) as info:  # not a plan, but parsed: the model complains
        parse_plan(text)
    assert "alias" not in str(info.value)
    assert any(p.path == "a" for p in info.value.problems)


def test_oversize_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:  # a sparse 8 GiB file: reading it whole would not end well
        fh.truncate(8 * 1024**3)
    err, peak = _peak(lambda: load_plan(path))
    assert isinstance(err, PlanError)
    assert "too large" in err.problems[0].message
    assert peak < 5 * 1024 * 1024


def test_file_just_over_the_limit_is_refused_and_just_under_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    head = "a: 1\n# "
    path.write_text(head + "x" * (MAX_DEFINITION_BYTES - len(head) - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == MAX_DEFINITION_BYTES
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert "too large" not in str(info.value)
    path.write_text("#" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(PlanError, match="too large"):
        load_plan(path)
    with pytest.raises(PlanError, match="too large"):
        parse_plan("#" * (MAX_DEFINITION_BYTES + 1))


def test_a_plan_with_many_unknown_keys_lists_the_first_problems_and_the_count() -> None:
    n = MAX_YAML_NODES // 2 - 10
    err, peak = _peak(lambda: parse_plan(unknown_keys(n), source="keys.yaml"))
    assert isinstance(err, PlanError)
    assert len(err.problems) == MAX_PROBLEMS + 1
    last = err.problems[-1]
    assert "more problems not listed" in last.message
    assert "未列出" in last.message
    total = int(last.message.split("(")[1].split()[0])
    assert total >= n  # every unknown key, plus the missing fields
    assert str(err).count("\n") == MAX_PROBLEMS + 1
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize(
    "text",
    [
        "a: [" + ",".join(["1"] * (MAX_YAML_NODES - 10)) + "]\n",
        unknown_keys(MAX_YAML_NODES // 2 - 10),
        "a: '" + "长" * (MAX_DEFINITION_BYTES // 3 - 10) + "'\n",
        "a: &x [" + ",".join(["1"] * 99) + "]\nb: [" + ",".join(["*x"] * 99) + "]\n",
        "".join(f"k{i}: {{a: [1, {{b: 2}}]}}\n" for i in range(MAX_YAML_NODES // 9)),
    ],
    ids=["flow list", "keys", "one long string", "aliases", "nested mappings"],
)
def test_plans_up_to_the_limits_are_checked_in_bounded_memory(text: str) -> None:
    assert len(text.encode()) <= MAX_DEFINITION_BYTES
    err, peak = _peak(lambda: parse_plan(text, source="big.yaml"))
    assert isinstance(err, PlanError)  # none of these is a plan ...
    assert "limit" not in str(err)  # ... but all parse
    assert "more than" not in str(err.problems[0])
    assert len(err.problems) <= MAX_PROBLEMS + 1
    assert peak < MEMORY_BOUND, peak


def test_a_big_plan_with_many_routes_is_checked_in_bounded_memory() -> None:
    # the cross-reference checks stay linear: many categories and many routes
    data = base_data()
    covers = {"zh": "x", "en": "x"}
    data["categories"] += [
        {"id": f"extra_{i}", "name": {"zh": "类", "en": "c"}, "clause": "二", "covers": covers}
        for i in range(1500)
    ]
    route = data["routes"][0]
    data["routes"] += [dict(route, id=f"r_{i}", category=f"extra_{i}") for i in range(1500)]
    err, peak = _peak(lambda: validate_plan_data(data))
    assert isinstance(err, PlanError)  # no rectification period for the new categories
    assert len(err.problems) == MAX_PROBLEMS + 1
    assert peak < MEMORY_BOUND


def _quoted_and_unquoted(old: str, new: str) -> Iterator[tuple[str, str]]:
    text = (Path(__file__).parent.parent / "fireflow" / "plans" / "changle-2022.yaml").read_text(
        encoding="utf-8"
    )
    assert text.count(old) == 1
    yield "unquoted", text.replace(old, new)
    yield "quoted", text.replace(old, new.replace(new.split(": ")[1], f"'{new.split(': ')[1]}'"))


def test_unquoted_invalid_date_is_reported_like_the_quoted_one() -> None:
    found = {}
    for kind, text in _quoted_and_unquoted("start: 2022-02-01", "start: 2022-02-30"):
        with pytest.raises(PlanError) as info:
            parse_plan(text, source="p.yaml")
        problems = [p for p in info.value.problems if p.path == "phases[1].start"]
        assert problems, (kind, info.value)
        found[kind] = (problems[0].line, problems[0].message)
    assert found["unquoted"] == found["quoted"]
    assert found["unquoted"][0] is not None


def test_unquoted_huge_integer_is_a_problem_not_a_crash() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan("format: fireflow.plan/1\nyear: " + "9" * 5000 + "\n")
    assert any(p.path == "year" and p.line == 2 for p in info.value.problems)


@pytest.mark.parametrize(
    "data",
    [b"format: fireflow.plan/1\nid: \xed\xa0\x80\n", b"a: 1\nb: \xff\xfe\n"],
    ids=["lone surrogate as bytes", "not UTF-8"],
)
def test_bytes_that_are_not_utf8_name_the_line(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert "UTF-8" in info.value.problems[0].message
    assert info.value.problems[0].line == 2


def test_lone_surrogate_in_text_is_refused() -> None:
    with pytest.raises(PlanError, match="surrogate") as info:
        parse_plan("a: 1\nb: x\ud800y\n")
    assert info.value.problems[0].line == 2


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u2066", "\ufeff", "\u00ad", "\x1b"])
@pytest.mark.parametrize(
    ("old", "path"),
    [
        ("zh: 区住建局", "agencies[0].name.zh"),
        ("id: housing\n", "agencies[0].id"),
        ("id: changle-2022", "id"),
        ("id: mobilization", "phases[0].id"),
    ],
)
def test_bidi_and_invisible_characters_in_ids_and_names(char: str, old: str, path: str) -> None:
    text = (Path(__file__).parent.parent / "fireflow" / "plans" / "changle-2022.yaml").read_text(
        encoding="utf-8"
    )
    assert old in text
    at = old.rstrip("\n")
    hostile = text.replace(old, f'{at.split(": ")[0]}: "{at.split(": ")[1]}\\u{ord(char):04x}"'
                           + ("\n" if old.endswith("\n") else ""), 1)  # fmt: skip
    with pytest.raises(PlanError) as info:
        parse_plan(hostile, source="p.yaml")
    problems = [p for p in info.value.problems if p.path == path]
    assert problems, info.value
    assert problems[0].line is not None


_NAME_PATHS = [
    ("name", "zh"),
    ("district", "en"),
    ("agencies", 0, "name", "zh"),
    ("phases", 2, "name", "en"),
    ("categories", 1, "name", "zh"),
]


@settings(max_examples=scaled(40), deadline=None, database=None)
@given(
    where=st.sampled_from(_NAME_PATHS),
    char=st.characters(categories=("Cf",)),
    at=st.integers(min_value=0, max_value=4),
)
def test_any_format_character_injected_in_a_name_is_refused(
    where: tuple[Any, ...], char: str, at: int
) -> None:
    data = base_data()
    holder: Any = data
    for key in where[:-1]:
        holder = holder[key]
    name = holder[where[-1]]
    holder[where[-1]] = name[:at] + char + name[at:]
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where).lstrip(".")
    assert [p.path for p in info.value.problems] == [path]
    assert "refused" in info.value.problems[0].message


def test_names_are_normalised_to_nfc() -> None:
    data = base_data()
    data["agencies"][0]["name"]["en"] = "Cafe\u0301"
    plan = validate_plan_data(data)
    assert plan.agencies[0].name.en == "Caf\u00e9"


# =========================================================================== #
# fireflow plan check


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    _no_traceback(out, err)
    return code, out + err


@pytest.mark.parametrize(("name", "text", "fragment", "line"), YAML_BOMBS, ids=BOMB_IDS)
def test_plan_check_refuses_every_bomb(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    fragment: str,
    line: int | None,
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, output = _cli(capsys, "plan", "check", str(path))
    assert code == 1, name
    assert fragment in output


def test_plan_check_lists_at_most_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(unknown_keys(5000), encoding="utf-8")
    code, output = _cli(capsys, "plan", "check", str(path))
    assert code == 1
    assert output.count("Extra inputs are not permitted") <= MAX_PROBLEMS
    assert "more problems not listed" in output


def test_plan_check_escapes_control_characters_in_field_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "escape.yaml"
    path.write_text('format: fireflow.plan/1\n"x\\e[2J\\u202e": 1\n', encoding="utf-8")
    code, output = _cli(capsys, "plan", "check", str(path))
    assert code == 1
    assert "\x1b" not in output
    assert "\u202e" not in output
    assert "x\\u001b[2J\\u202e: Extra inputs are not permitted" in output


def test_plan_check_on_the_bomb_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "fireflow.cli", "plan", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a duration check
        check=False,
    )
    assert proc.returncode == 1
    _no_traceback(proc.stdout, proc.stderr)
    assert "aliases expand" in proc.stderr


# =========================================================================== #
# Scenarios: load_scenario / fireflow conformance run

SCENARIO = """\
id: hostile
title_zh: 恶意输入
title_en: Hostile input
rules: [R-TKT-OPEN]
steps:
  - kind: report
    ticket: T1
    at: 2022-03-21 10:00
    actor: property
    community: {community}
    town: 金峰镇
    category: evacuation_blocked
    subtype: goods
    location: inside
    source: self_inspection
  - deadline: {{start: {start}, n: 1, expect: 2022-10-08}}
"""


@pytest.mark.parametrize(("name", "text", "fragment", "line"), YAML_BOMBS, ids=BOMB_IDS)
def test_scenario_bombs_are_refused(
    tmp_path: Path, name: str, text: str, fragment: str, line: int | None
) -> None:
    path = tmp_path / "hostile.scenario.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    err, peak = _peak(lambda: load_scenario(path))
    assert isinstance(err, ScenarioError), (name, err)
    assert fragment in str(err)
    if line is not None:
        assert err.problems[0].line == line
    assert peak < 20 * 1024 * 1024


def test_scenario_oversize_and_many_problems(tmp_path: Path) -> None:
    path = tmp_path / "huge.scenario.yaml"
    with path.open("wb") as fh:
        fh.truncate(MAX_DEFINITION_BYTES + 1)
    with pytest.raises(ScenarioError, match="too large"):
        load_scenario(path)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(unknown_keys(3000))
    assert len(info.value.problems) == MAX_PROBLEMS + 1


@pytest.mark.parametrize("community", ['"金峰小区\\u200b"', '"金峰\\u202e小区"', '"金峰小区\\x00"'])
def test_scenario_refuses_invisible_characters_in_a_community(community: str) -> None:
    text = SCENARIO.format(community=community, start="2022-09-30")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="s.scenario.yaml")
    assert [(p.path, p.line) for p in info.value.problems] == [("steps[0].community", 10)]
    assert "refused" in info.value.problems[0].message


def test_scenario_accepts_the_plain_community() -> None:
    s = parse_scenario(SCENARIO.format(community="金峰小区", start="2022-09-30"))
    assert s.steps[0].community == "金峰小区"  # type: ignore[union-attr]


def test_scenario_unquoted_invalid_date_is_reported_like_the_quoted_one() -> None:
    found = []
    for start in ("2022-02-30", "'2022-02-30'"):
        with pytest.raises(ScenarioError) as info:
            parse_scenario(SCENARIO.format(community="金峰小区", start=start))
        found.append([(p.path, p.line, p.message) for p in info.value.problems])
    assert found[0] == found[1]
    assert found[0][0][:2] == ("steps[1].deadline.start", 16)


@pytest.mark.parametrize(("name", "text", "fragment", "line"), YAML_BOMBS[:6], ids=BOMB_IDS[:6])
def test_conformance_run_refuses_every_bomb(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    fragment: str,
    line: int | None,
) -> None:
    path = tmp_path / "hostile.scenario.yaml"
    path.write_text(text, encoding="utf-8")
    code, output = _cli(capsys, "conformance", "run", str(path))
    assert code == 1, name
    assert fragment in output


# =========================================================================== #
# Population CSV


def _csv(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "population.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "error", "fragment"),
    [
        ("town,community\n金峰镇,金峰小区\u200b\n", InputLimitExceeded, "population.csv:2"),
        ("town,community\n金峰镇\u202e,金峰小区\n", InputLimitExceeded, "U+202E"),
        ("town,community\n金峰镇,金峰\x00小区\n", FireflowError, "population.csv:2"),
        ("town,community\n金峰镇,\"" + "x" * (MAX_CSV_FIELD_CHARS + 1) + "\"\n",
         InputLimitExceeded, "population.csv:2"),
        ("town,community\n金峰镇,金峰小区\nx,Cafe\u0301\nx,Caf\u00e9\n", InvalidArgument, "twice"),
        (b"town,community\n\xe9\x87\x91,\xed\xa0\x80\n", InvalidArgument, "population.csv:2"),
    ],
    ids=["zero width", "bidi", "NUL", "oversize field", "NFC duplicate", "lone surrogate bytes"],
)  # fmt: skip
def test_population_csv_is_read_within_the_policy(
    tmp_path: Path, content: str | bytes, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        load_population(_csv(tmp_path, content))
    assert fragment in str(info.value)
    assert info.value.field == "population"  # type: ignore[attr-defined]


def test_population_csv_oversize_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "population.csv"
    with path.open("wb") as fh:
        fh.truncate(4 * 1024**3)
    err, peak = _peak(lambda: load_population(path))
    assert isinstance(err, InputLimitExceeded)
    assert f"{MAX_INPUT_BYTES // 1024 // 1024} MiB" in str(err)
    assert peak < 5 * 1024 * 1024


def test_population_rows_from_the_api_follow_the_policy_too() -> None:
    with pytest.raises(InputLimitExceeded, match=r"U\+200B"):
        parse_population([["town", "community"], ["金峰镇", "金峰小区\u200b"]])
    pop = parse_population([["town", "community"], ["金峰镇", "金峰小区"]])
    assert pop.communities[0].name == "金峰小区"


# =========================================================================== #
# JSON and JSON lines (spot-check inputs, towns, findings, event logs)


@pytest.mark.parametrize(
    ("content", "error", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, InputLimitExceeded, "nesting deeper"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), InputLimitExceeded, "nesting deeper"),
        ('{"a": 1,\n "b": }', InvalidArgument, "in.json:2"),
        ("9" * 5000, InvalidArgument, "invalid JSON value"),
    ],
    ids=["very deep", "deep", "broken", "huge integer"],
)
def test_json_reader(tmp_path: Path, content: str, error: type[Exception], fragment: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(error, match=re.escape(fragment)):
        read_json(path, "inputs")


def test_json_lines_reader_bounds_lines_and_names_them(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\n\n' + b"[" * 50 + b"]" * 50 + b"\n")
    with pytest.raises(InputLimitExceeded, match=r"events\.jsonl:3: nesting"):
        list(iter_json_lines(path, "events"))
    path.write_bytes(b'{"a": 1}\n"' + b"x" * (MAX_LINE_BYTES + 5) + b'"\n')
    with pytest.raises(InputLimitExceeded, match=r"events\.jsonl:2: line longer"):
        list(iter_json_lines(path, "events"))
    path.write_bytes(b'{"a": 1}\n"\xed\xa0\x80"\n')
    with pytest.raises(InvalidArgument, match=r"events\.jsonl:2: not UTF-8"):
        list(iter_json_lines(path, "events"))
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n[2]\n')
    assert list(iter_json_lines(path, "events")) == [(1, {"a": 1}), (3, [2])]


@pytest.mark.parametrize(
    "content",
    ["[" * 100_000, "[" * 40 + "]" * 40, "\ud800"],
    ids=["very deep", "deep", "lone surrogate"],
)
def test_spotcheck_inputs_cli_refuses_hostile_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "inputs.json"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    code, output = _cli(capsys, "spotcheck", "inputs", str(path))
    assert code == 1
    assert "inputs" in output


def test_folder_or_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="folder"):
        read_json(tmp_path, "inputs")
    with pytest.raises(InvalidArgument, match="no such file"):
        load_population(tmp_path / "missing.csv")
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.scenario.yaml")


def test_a_pipe_is_refused_not_read_without_end(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InvalidArgument, match="not a regular file"):
        load_population(fifo)
    with pytest.raises(ScenarioError, match="not a regular file"):
        load_scenario(fifo)


# --------------------------------------------------------------------------- #
# Stored text: one policy on every entry path (issue 23)


def _refused_in_names() -> list[str]:
    """Every code point the name policy refuses: categories Cc, Cf, Cs, Zl, Zp."""
    import unicodedata

    return [
        chr(cp)
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]


REFUSED = _refused_in_names()
_REPORT_NAMES = ("community", "town", "category", "subtype", "location", "source", "plan_id")


def test_the_policys_table_holds_every_refused_category() -> None:
    """text.refused_character is one regex: it must match each Cc/Cf/Cs/Zl/Zp code point."""
    import unicodedata

    from fireflow.text import refused_character

    missing = [f"U+{ord(c):04X}" for c in REFUSED if refused_character(f"a{c}b") != c]
    assert missing == []
    extra = [
        f"U+{cp:04X}"
        for cp in range(sys.maxunicode + 1)
        if refused_character(chr(cp)) is not None
        and unicodedata.category(chr(cp)) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    ]
    assert extra in ([], ["U+2065", *[f"U+{cp:04X}" for cp in range(0x13439, 0x13440)]])


def _report(community: str = "金峰小区", description: str = "占用消防车道") -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fireflow import Ticket

    t = Ticket("T-1", load_plan("changle-2022"))
    t.command(
        "report", datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai")), "town", "李",
        community=community, town="金峰镇", category="fire_lane_vehicle", subtype="private_car",
        location="inside", source="town_inspection", description=description,
        evidence=[{"kind": "photo_before", "sha256": "ab" * 32}],
    )  # fmt: skip
    return t.events[0]


def _insert(text: str, char: str, at: int) -> str:
    at %= len(text) + 1
    return text[:at] + char + text[at:]


@settings(max_examples=scaled(60), deadline=None, database=None)
@given(
    char=st.sampled_from(REFUSED),
    key=st.sampled_from((*_REPORT_NAMES, "actor.person")),
    at=st.integers(0, 20),
)
def test_a_refused_character_in_any_payload_name_is_refused_on_every_path(
    char: str, key: str, at: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import json

    import attrs

    from fireflow.events import Actor, event_to_data
    from fireflow.history import read_events
    from fireflow.store import MemoryStore, SQLiteStore

    good = _report()
    if key == "actor.person":
        bad = attrs.evolve(good, actor=Actor(good.actor.agency, _insert("李", char, at)))
    else:
        payload = dict(good.payload)
        payload[key] = _insert(str(payload[key]), char, at)
        bad = attrs.evolve(good, payload=payload)
    # the engine: a command naming any of them so is refused (plan_id is the engine's own)
    if key != "plan_id":
        from datetime import datetime
        from zoneinfo import ZoneInfo

        from fireflow import Ticket

        t = Ticket("T-1", load_plan("changle-2022"))
        kw = {
            "community": "金峰小区", "town": "金峰镇", "category": "fire_lane_vehicle",
            "subtype": "private_car", "location": "inside", "source": "town_inspection",
            "evidence": [{"kind": "photo_before", "sha256": "ab" * 32}],
        }  # fmt: skip
        person = "李"
        if key == "actor.person":
            person = _insert("李", char, at)
        else:
            kw[key] = _insert(str(kw[key]), char, at)
        at_time = datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai"))
        try:
            t.command("report", at_time, "town", person, **kw)
        except InvalidArgument:
            assert not t.events
        else:  # only white space at an end, which the command trims, may pass: never stored
            assert char.isspace()
            stored = [str(v) for e in t.events for v in e.payload.values()]
            assert all(char not in v for v in [*stored, t.events[0].actor.person])
    # every store's append
    folder = tmp_path_factory.mktemp("edge")
    with SQLiteStore(folder / "s.db") as sqlite:
        for store in (MemoryStore(), sqlite):
            with pytest.raises(InvalidArgument) as info:
                store.append("T-1", [bad], 0)
            assert store.count() == 0
            assert key.rsplit(".", maxsplit=1)[-1] in info.value.field
    # a JSON-lines log (ensure_ascii: a lone surrogate travels as an escape)
    log = folder / "events.jsonl"
    log.write_text(json.dumps(event_to_data(bad)) + "\n", encoding="utf-8")
    with pytest.raises(InvalidArgument) as info:
        read_events(log)
    assert "events.jsonl:1" in str(info.value)


@settings(max_examples=scaled(30), deadline=None, database=None)
@given(char=st.sampled_from([c for c in REFUSED if c not in "\t\n\r"]), at=st.integers(0, 10))
def test_a_refused_character_in_free_text_is_refused_and_tab_and_newline_kept(
    char: str, at: int
) -> None:
    import attrs

    from fireflow.store import MemoryStore

    good = _report()
    for ok in ("\t", "\n", "\r\n"):
        kept = attrs.evolve(good, payload={**good.payload, "description": f"一{ok}二"})
        MemoryStore().append("T-1", [kept], 0)
    payload = {**good.payload, "description": _insert("占用消防车道", char, at)}
    with pytest.raises(InvalidArgument, match="description"):
        MemoryStore().append("T-1", [attrs.evolve(good, payload=payload)], 0)


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_tab_and_newline_are_refused_in_a_name_but_not_in_free_text(char: str) -> None:
    import attrs

    from fireflow.events import canonical_bytes
    from fireflow.store import MemoryStore

    good = _report()
    bad = attrs.evolve(good, payload={**good.payload, "community": f"金峰{char}小区"})
    with pytest.raises(InputLimitExceeded, match="community"):
        canonical_bytes(bad)
    with pytest.raises(InvalidArgument, match="community"):
        MemoryStore().append("T-1", [bad], 0)
