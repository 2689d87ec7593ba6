"""Every script in examples/ runs and prints what it promises."""

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_deadlines_example():
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "deadlines.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "summary" in proc.stdout
    assert "2022-12-12" in proc.stdout
    assert "2022-09-30 + 1 calendar: 2022-10-08" in proc.stdout
