"""The read-only dashboard: served by the live server, escaped, Chinese first, laid out cleanly.

* the page needs a token (header or the login cookie, which works on /dashboard only);
* it shows open tickets by town and state, overdue tickets, escalations due with
  their rules, report obligations and recent events, each linking to the ticket's
  page, which lists every event with its rules and clauses;
* hostile names are shown as text, never markup; the page loads nothing from
  elsewhere and carries a Content-Security-Policy that allows no script;
* in headless Chromium the text is there and no two text boxes overlap (the
  bounding boxes of every heading, paragraph and table cell, measured by the browser).

The reviewed screenshot ``tests/reference/dashboard.png`` shows the dashboard of a small
simulated campaign at the year's end, rendered by headless Chromium with the WenQuanYi Micro
Hei font (Debian's ``fonts-wqy-microhei``); regenerate it with
``python tests/test_service_dashboard.py screenshot OUT.png`` and look at it before replacing
the reference.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest
from chromium import chromium, measured, run_chromium
from service_live import PLAN, lane_report, open_ticket, running

from fireflow.service.engine import Engine
from fireflow.store import SQLiteStore

EVIL = '<script>document.title="pwned"</script>&"'


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    engine = Engine(SQLiteStore(folder / "events.sqlite"), PLAN)
    with running(engine, folder) as s:
        with s.client("town") as c:
            open_ticket(c, "CL-0001")
            open_ticket(c, "CL-0002", community="首占小区" + EVIL, town="首占镇")
            lane = {k: lane_report("CL-0003")[k] for k in ("category", "subtype", "source")}
            open_ticket(c, "CL-0003", **lane)
        yield s
    engine.close()


def test_the_dashboard_needs_a_token_and_the_cookie_is_for_the_dashboard_only(service):
    with service.client(None, follow_redirects=False) as c:
        assert c.get("/dashboard").status_code == 401
        browser = c.get("/dashboard", headers={"Accept": "text/html,application/xhtml+xml"})
        assert browser.status_code == 303
        assert browser.headers["location"] == "/dashboard/login"
        assert "<form" in c.get("/dashboard/login").text
        login = c.post(
            "/dashboard/login",
            content=f"token={service.token['auditor']}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/dashboard" in cookie
        assert c.get("/dashboard").status_code == 200
        assert c.get("/whoami").status_code == 401  # the API never takes the cookie
        bad = c.post(
            "/dashboard/login",
            content="token=nope",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert bad.status_code == 401


def test_the_dashboard_shows_the_campaign_and_escapes_names(service):
    with service.client("auditor") as c:
        page = c.get("/dashboard")
        ticket = c.get("/dashboard/tickets/CL-0001")
    assert page.status_code == 200
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    for text in (
        "消防通道专项整治工作台",
        "各乡镇工单状态",
        "逾期工单",
        "应升级事项",
        "报送义务",
        "最近事件",
    ):
        assert text in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="/dashboard/tickets/CL-0001"' in html
    assert "http://" not in html
    assert "https://" not in html
    assert ticket.status_code == 200
    assert "R-ROUTE-EVAC" in ticket.text
    assert "四(三)" in ticket.text  # the clause beside the rule


_MEASURE = """
<script>
window.addEventListener("load", () => {
  const boxes = [];
  document.querySelectorAll("h1, h2, p, td, th, nav").forEach((el) => {
    const r = el.getBoundingClientRect();
    boxes.push({tag: el.tagName, text: el.textContent.trim().slice(0, 40),
                box: [r.left, r.top, r.width, r.height], path: boxes.length});
  });
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = JSON.stringify({
    boxes: boxes, title: document.title,
    width: document.documentElement.clientWidth,
    scroll: document.documentElement.scrollWidth});
  document.body.appendChild(pre);
});
</script>
"""


def _overlap(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    eps = 0.5  # shared borders of adjacent cells touch, they do not overlap
    return ax + aw - eps > bx and bx + bw - eps > ax and ay + ah - eps > by and by + bh - eps > ay


@pytest.mark.skipif(chromium() is None, reason="no headless Chromium on this machine")
def test_in_headless_chromium_text_is_there_and_nothing_overlaps(service, tmp_path):
    with service.client("auditor") as c:
        html = c.get("/dashboard", params={"at": "2022-03-26T10:00:00+08:00"}).text
    assert "R-ESC-OVERDUE" in html  # the deadline of the 24th has passed (R-ESC-OVERDUE)
    measured = _measure(html, tmp_path / "dashboard.html")
    assert measured["title"] != "pwned"  # the hostile name stayed text
    assert measured["scroll"] <= measured["width"]  # nothing runs off the page
    boxes = [b for b in measured["boxes"] if b["text"]]
    texts = " ".join(b["text"] for b in boxes)
    for text in ("消防通道专项整治工作台", "逾期工单", "CL-0001", "首占镇", "R-ESC-"):
        assert text in texts
    assert all(b["box"][2] > 0 and b["box"][3] > 0 for b in boxes)
    assert not _clashes(boxes), _clashes(boxes)[:5]
    # the check sees what it must refuse: two paragraphs drawn over each other
    bad = '<p style="position:absolute;top:0">甲乙丙</p><p style="position:absolute;top:4px">丁</p>'
    shown = _measure(html.replace("<h1>", bad + "<h1>"), tmp_path / "bad.html")
    assert _clashes([b for b in shown["boxes"] if b["text"]])


def _clashes(boxes):
    return [
        (a["text"], b["text"])
        for a, b in combinations(boxes, 2)
        if a["tag"] != "NAV" and b["tag"] != "NAV" and _overlap(a["box"], b["box"])
    ]


def _measure(html, page):
    page.write_text(html.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    return measured(page, "--window-size=1280,2000")


def screenshot(path: Path, tmp: Path) -> None:
    """The dashboard of a small simulated campaign at the year's end, rendered into ``path``."""
    from fireflow.sim import generate_population, simulate

    result = simulate(PLAN, generate_population(12, seed=3), seed=2022)
    store = SQLiteStore(tmp / "events.sqlite")
    for ticket_id in sorted({e.ticket_id for e in result.events}):
        store.append(ticket_id, [e for e in result.events if e.ticket_id == ticket_id], 0)
    engine = Engine(store, PLAN)
    with running(engine, tmp) as s, s.client("auditor") as c:
        html = c.get("/dashboard", params={"at": "2022-12-31T20:00:00+08:00"}).text
    engine.close()
    page = tmp / "dashboard.html"
    page.write_text(html, encoding="utf-8")
    res = run_chromium(page, f"--screenshot={path}", "--window-size=1280,1200")
    if res.returncode != 0:
        raise SystemExit(res.stderr)


if __name__ == "__main__":  # python tests/test_service_dashboard.py screenshot OUT.png
    import sys
    import tempfile

    if sys.argv[1:2] == ["screenshot"]:
        with tempfile.TemporaryDirectory() as d:
            screenshot(Path(sys.argv[2]).resolve(), Path(d))
