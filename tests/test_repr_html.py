"""Notebook manners: Plan, TicketState, Scenario and Calibration show as escaped HTML tables."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow._html import escape, table
from fireflow.plan import Plan
from fireflow.sim import Behaviour, Scenario, generate_population, simulate
from fireflow.sim.calibrate import calibrate
from fireflow.ticket import TicketState

PLAN = load_plan("changle-2022")
#: The only tags fireflow writes into a notebook.
ALLOWED = {"div", "h4", "table", "caption", "thead", "tbody", "tr", "th", "td", "p"}
HOSTILE = "<script>alert(\"x\")</script><img src=x onerror=alert(1)> & 'q'"


class _Page(HTMLParser):
    """Tags, attributes and the text of every cell, unescaped as a browser would."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []
        self.cells: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self.open.append(tag)
        if tag in ("td", "th", "caption", "h4"):
            self.text = []

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag, f"</{tag}> closes another element"
        if tag in ("td", "th", "caption", "h4"):
            self.cells.append("".join(self.text))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert not page.open, "every element is closed"
    assert set(page.tags) <= ALLOWED, set(page.tags) - ALLOWED
    assert set(page.attrs) <= {("class", "fireflow")}
    return page


def test_a_plan_shows_its_phases_deadlines_and_categories():
    page = parse(PLAN._repr_html_())
    for text in ("动员部署", "巩固验收", "2022-12-12", "R-DUE-SUMMARY", "fire_lane_vehicle"):
        assert any(text in c for c in page.cells), text
    assert page.tags.count("table") == 3


def test_plan_text_is_escaped():
    data = PLAN.to_data()
    data["phases"][0]["name"]["en"] = HOSTILE
    data["categories"][0]["name"]["zh"] = HOSTILE
    hostile = Plan.model_validate(data)
    html = hostile._repr_html_()
    assert "<script>" not in html
    assert "<img" not in html
    page = parse(html)
    assert page.cells.count(HOSTILE) == 2  # shown as text, exactly


def test_a_ticket_shows_its_state_route_and_signers():
    result = simulate(PLAN, generate_population(4, seed=2), seed=2)
    ticket = next(t for t in result.tickets if t.state == "archived")
    page = parse(ticket._repr_html_())
    assert ticket.ticket_id in page.cells
    assert "已归档 archived" in page.cells
    assert any("验收人" in c for c in page.cells)
    assert str(ticket.deadline) in page.cells


@given(st.text(max_size=40))
def test_any_ticket_text_comes_back_as_the_same_text(text):
    state = TicketState("T1", community=text or "x", town=HOSTILE)
    page = parse(state._repr_html_())
    assert (text or "x") in page.cells
    assert HOSTILE in page.cells


@given(st.lists(st.lists(st.text(max_size=10), min_size=2, max_size=2), max_size=5))
def test_table_cells_round_trip(rows):
    page = parse(table(["a", "b"], rows, caption="<c>"))
    assert page.cells == ["<c>", "a", "b", *(c for r in rows for c in r)]


def test_escape_renders_plain_values():
    assert escape(None) == ""
    assert escape(("a", "<b>")) == "a、&lt;b&gt;"
    assert escape(0.123456) == "0.1235"


def test_a_scenario_shows_what_it_changes():
    page = parse(Scenario("third_stall", Behaviour(stall_probability=1 / 3))._repr_html_())
    assert "stall_probability" in page.cells
    assert "0.3333" in page.cells
    assert "0.1" in page.cells  # the default beside it
    assert "refusal_probability" not in page.cells
    assert "(默认 defaults)" in parse(Scenario("baseline")._repr_html_()).cells


@pytest.fixture(scope="module")
def calibration():
    population = generate_population(30, seed=3)
    return calibrate(simulate(PLAN, population, seed=3).events, PLAN, population=population)


def test_a_calibration_shows_its_estimates_and_what_it_kept(calibration):
    page = parse(calibration._repr_html_())
    assert "recheck_fail_rate" in page.cells
    assert "spot_check_reopen_rate" in page.cells
    assert page.tags.count("table") == 2
    assert "Calibration" in repr(calibration)
