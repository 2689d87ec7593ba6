"""The same script gives the same bytes in fresh interpreters with different hash seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fireflow import load_plan
from fireflow.errors import Refusal
from fireflow.events import canonical_bytes
from fireflow.ticket import Ticket

SH = ZoneInfo("Asia/Shanghai")
plan = load_plan("changle-2022")
out = {}

def report(t, at, category, subtype, location="inside"):
    t.command("report", at, "town", "李", community="金峰小区", town="金峰镇",
              category=category, subtype=subtype, location=location,
              source="self_inspection", description="楼道堆物 Café",
              evidence=[{"kind": "photo_before", "sha256": "b" * 64}])

# the full path
at = datetime(2022, 9, 28, 10, tzinfo=SH)
t = Ticket("CL-0001", plan)
report(t, at, "fire_lane_vehicle", "zombie_vehicle")
t.command("route", at, "town")
t.command("set_deadline", at, "town")
t.command("rectify", at + timedelta(days=1), "property")
t.command("apply_reinspection", at + timedelta(days=1), "property")
t.command("recheck_fail", at + timedelta(days=2), "town",
          participants=[{"agency": "traffic_police"}, {"agency": "housing"}], reason="仍有车辆")
t.command("rectify", at + timedelta(days=3), "property")
t.command("apply_reinspection", at + timedelta(days=3), "property")
t.command("recheck_pass", at + timedelta(days=4), "town",
          participants=[{"agency": "fire", "person": "周"}, {"agency": "housing", "person": "王"},
                        {"agency": "third_party"}])
t.command("sign_off", at + timedelta(days=4), "town",
          signers=[{"agency": "housing", "person": "王"}, {"agency": "fire", "person": "周"}])
t.command("archive", at + timedelta(days=4), "town",
          evidence=[{"kind": "photo_after", "sha256": "a" * 64}])

# a refusal path, with refused attempts
u = Ticket("CL-0002", plan)
report(u, at, "spacing_illegal_building", "structure", "around")
u.command("route", at, "town")
u.command("set_deadline", at, "town")
for kind, agency in (("rectify", "urban"), ("certify", "fire"), ("archive", "town")):
    try:
        u.command(kind, at + timedelta(hours=1), agency)
    except Refusal as exc:
        out.setdefault("refusals", []).append([type(exc).__name__, exc.rule, str(exc)])
u.command("refuse", at + timedelta(days=2), "town", reason="拒不拆除")
u.command("expose", at + timedelta(days=2), "committee")
u.command("escalate", at + timedelta(days=3), "housing")
u.command("certify", at + timedelta(days=5), "planning")
u.command("demolish", at + timedelta(days=9), "town", participants=[{"agency": "urban"}])

for tk in (t, u):
    out[tk.id] = {
        "events": [canonical_bytes(e).decode("utf-8") for e in tk.events],
        "state": tk.state.to_data(),
    }
print(json.dumps(out, ensure_ascii=False, sort_keys=True))
"""


def _run(seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        check=False,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    return proc.stdout.decode("utf-8")


def test_same_bytes_across_hash_seeds():
    outputs = [_run(seed) for seed in ("0", "1", "4242")]
    assert outputs[0]
    assert outputs[0] == outputs[1] == outputs[2]
    data = json.loads(outputs[0])
    assert data["CL-0001"]["state"]["state"] == "archived"
    assert data["CL-0001"]["state"]["deadline"] == "2022-10-08"
    assert data["CL-0002"]["state"]["demolished"] is True
    assert data["CL-0002"]["state"]["state"] == "rectifying"
    assert len(data["refusals"]) == 3
    assert [r[0] for r in data["refusals"]] == [
        "NotAuthorized",
        "NotAuthorized",
        "TransitionNotAllowed",
    ]
    events = data["CL-0001"]["events"]
    assert len(events) == 11
    assert [json.loads(e)["seq"] for e in events] == list(range(1, 12))
    for e in events + data["CL-0002"]["events"]:
        assert e == json.dumps(
            json.loads(e), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
