"""The suite's own settings hold on pytest-xdist workers (conftest.py, docs/development.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"

PROBE = """
import pytest

def test_unlisted_skip():
    pytest.skip("no server here")

def test_listed_skip():
    pytest.skip("allowed on purpose")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    raise AssertionError

def test_plain():
    pass
"""


def test_an_unlisted_skip_fails_ci_on_every_worker(pytester, monkeypatch):
    text = CONFTEST.read_text(encoding="utf-8")
    empty = "ALLOWED_SKIPS: dict[str, str] = {}"
    assert empty in text  # the list is empty today: every test runs in CI
    listed = 'ALLOWED_SKIPS: dict[str, str] = {"test_probe.py::test_listed_skip": "why"}'
    # the skip policy as it is; the import of every fireflow module (hypothesis's constant
    # pool) is left out, it costs each of the three processes seconds and is not under test
    assert "def pytest_configure(" in text
    probe = text.replace(empty, listed).replace("def pytest_configure(", "def _not_here(")
    pytester.makeconftest(probe)
    pytester.makepyfile(
        test_probe=PROBE,
        test_gone="import pytest\npytest.importorskip('fireflow_no_such_module')\n",
    )
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(["*2 workers*", "*skipped in CI: Skipped: no server here*"])
    result.stdout.fnmatch_lines(["*module skipped in CI*fireflow_no_such_module*"])


def test_a_run_naming_paths_stays_in_one_process(monkeypatch):
    from types import SimpleNamespace

    from conftest import pytest_xdist_auto_num_workers as workers

    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    named = SimpleNamespace(args_source=pytest.Config.ArgsSource.ARGS)
    whole = SimpleNamespace(args_source=pytest.Config.ArgsSource.TESTPATHS)
    assert workers(named) == 0  # `python -m pytest tests/test_x.py`: no workers to start
    assert workers(whole) is None  # `python -m pytest`: pytest-xdist's own count, every core
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "3")
    assert workers(named) is None  # pytest-xdist's setting decides
