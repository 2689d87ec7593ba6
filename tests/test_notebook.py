"""The what-if notebook runs under nbmake, and the plain script does the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "what_if.ipynb"
SCRIPT = ROOT / "examples" / "what_if.py"


def test_notebook_is_valid_nbformat_with_a_python3_kernel():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")  # shipped clean
    assert json.loads(NOTEBOOK.read_text(encoding="utf-8"))["nbformat"] == 4


def test_notebook_runs_under_nbmake(tmp_path):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbmake",
            "--nbmake-timeout=120",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            str(NOTEBOOK),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_what_if_script_compares_three_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONIOENCODING="utf-8"),
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.splitlines()[0]
    for name in ("baseline", "shorter_rectification", "third_stall"):
        assert name in header
    assert "rectified_by_dossier_share" in proc.stdout
    assert (tmp_path / "out" / "index.html").is_file()
