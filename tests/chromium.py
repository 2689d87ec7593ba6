"""Headless Chromium for the page tests: find it, run it on a page, read what a script measured.

Used by tests/test_report_html.py (the report's charts) and tests/test_service_dashboard.py
(the dashboard). Chromium comes from Debian's packages (`chromium-headless-shell`, installed
by `.ci/run`); ``FIREFLOW_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any


def chromium() -> str | None:
    """A headless Chromium on this machine (``FIREFLOW_CHROMIUM`` names one), or None."""
    named = os.environ.get("FIREFLOW_CHROMIUM")
    if named:
        return named
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Open ``page`` headless with ``args``; a profile of its own beside the page (xdist)."""
    exe = chromium()
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    cmd.append(f"--user-data-dir={page.parent / 'chromium-profile'}")
    cmd.append(page.as_uri())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def measured(page: Path, *args: str) -> Any:
    """Run ``page`` (whose script writes JSON into ``<pre id="measured">``) and read it back."""
    res = run_chromium(page, "--dump-dom", "--virtual-time-budget=10000", *args)
    assert res.returncode == 0, res.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', res.stdout, re.DOTALL)
    assert found, res.stdout[-2000:]
    raw = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(raw.replace("&amp;", "&"))
