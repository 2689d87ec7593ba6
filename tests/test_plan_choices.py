"""The plan's own choices as data: the rectification cap, agency levels, sign-off rights.

Dates: 2022-07-15 (the dossier date, 五(三)) is a Friday; 2022-06-10 a Friday and
2022-06-03 (端午) a public holiday (国办发明电〔2021〕11号).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from strategies import base_data

from fireflow import PlanError, Ticket
from fireflow.plan import GOVERNMENT_LEVELS, validate_plan_data

SH = ZoneInfo("Asia/Shanghai")


def _plan(**settings: Any) -> Any:
    data = base_data()
    data["settings"].update(settings)
    return validate_plan_data(data)


def _problems(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    return [(p.path, p.rule) for p in info.value.problems]


def _rectifying(plan: Any, at: datetime, **report: Any) -> Ticket:
    t = Ticket("T1", plan)
    fields = {
        "community": "金峰小区",
        "town": "金峰镇",
        "category": "spacing_illegal_building",
        "subtype": "structure",
        "location": "inside",
        "source": "town_inspection",
        **report,
    }
    t.command("report", at, "town", **fields)
    t.command("route", at, "town")
    t.command("set_deadline", at, "town")
    return t


# --------------------------------------------------------------------------- #
# Which deadline caps rectification deadlines (R-TKT-DEADLINE)


def test_the_builtin_plan_caps_nothing() -> None:
    plan = _plan()
    assert plan.settings.rectification_cap is None
    # 30 days from 07-01 is 07-31 (a Sunday): rolled to Monday 08-01, past 07-15
    t = _rectifying(plan, datetime(2022, 7, 1, 10, tzinfo=SH))
    assert t.state.deadline == date(2022, 8, 1)


def test_any_fixed_deadline_can_cap_and_is_cited_by_its_own_rule() -> None:
    dossier = _plan(rectification_cap="dossier")
    t = _rectifying(dossier, datetime(2022, 7, 1, 10, tzinfo=SH))
    assert t.state.deadline == date(2022, 7, 15)
    assert "R-DUE-DOSSIER" in t.state.deadline_rules
    # the ledger (03-15) caps a deadline set in the self-inspection phase instead
    ledger = _plan(rectification_cap="ledger")
    t = _rectifying(ledger, datetime(2022, 3, 1, 10, tzinfo=SH))
    assert t.state.deadline == date(2022, 3, 15)
    assert "R-DUE-LEDGER" in t.state.deadline_rules
    assert "R-DUE-DOSSIER" not in t.state.deadline_rules
    # a deadline set after the cap's due day is not capped
    t = _rectifying(ledger, datetime(2022, 6, 10, 10, tzinfo=SH))
    assert t.state.deadline == date(2022, 7, 11)  # 07-10 is a Sunday


def test_a_renamed_dossier_can_still_cap() -> None:
    data = base_data()
    data["deadlines"][1]["id"] = "archive_files"
    data["settings"]["rectification_cap"] = "archive_files"
    plan = validate_plan_data(data)
    t = _rectifying(plan, datetime(2022, 7, 1, 10, tzinfo=SH))
    assert t.state.deadline == date(2022, 7, 15)


def test_the_cap_must_name_a_fixed_deadline() -> None:
    data = base_data()
    data["settings"]["rectification_cap"] = "rectification"  # a phase, not a deadline
    assert _problems(data) == [("settings.rectification_cap", "R-TKT-DEADLINE")]


def test_the_old_setting_points_at_the_new_one() -> None:
    data = base_data()
    data["settings"]["deadlines_may_pass_dossier"] = False
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    text = str(info.value)
    assert "rectification_cap: dossier" in text
    assert "settings.deadlines_may_pass_dossier" in text


# --------------------------------------------------------------------------- #
# Agency levels


@pytest.mark.parametrize("level", ["province", "city", "county"])
def test_a_city_or_province_names_its_own_level(level: str) -> None:
    data = base_data()
    data["agencies"].append(
        {"id": "emergency", "name": {"zh": "应急管理局", "en": "Emergency bureau"}, "level": level}
    )
    plan = validate_plan_data(data)
    assert plan.agency("emergency").level == level


def test_government_levels_count_at_a_recheck_by_default() -> None:
    data = base_data()
    del data["settings"]["recheck_counting_levels"]
    plan = validate_plan_data(data)
    assert plan.settings.recheck_counting_levels == GOVERNMENT_LEVELS
    assert "community" not in GOVERNMENT_LEVELS


def test_an_unknown_level_is_refused() -> None:
    data = base_data()
    data["agencies"][0]["level"] = "galaxy"
    assert ("agencies[0].level", None) in _problems(data)


# --------------------------------------------------------------------------- #
# Who may fire sign_off, and who may sign: validated together


def _sign_off(data: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in data["authority"] if a["trigger"] == "sign_off")
    return found


def test_builtin_sign_off_authority_and_signers_agree() -> None:
    data = base_data()
    assert _sign_off(data)["roles"] == ["recheck_lead"]
    validate_plan_data(data)


def test_a_non_signing_agency_may_not_fire_sign_off() -> None:
    data = base_data()
    _sign_off(data)["agencies"] = ["third_party"]
    i = data["authority"].index(_sign_off(data))
    assert _problems(data) == [(f"authority[{i}].agencies[0]", "R-AUTH-SEPARATION")]


def test_an_agency_below_the_signing_levels_may_not_fire_sign_off() -> None:
    data = base_data()
    _sign_off(data)["agencies"] = ["committee"]  # community level
    i = data["authority"].index(_sign_off(data))
    assert _problems(data) == [(f"authority[{i}].agencies[0]", "R-AUTH-SEPARATION")]


def test_the_rectifier_role_may_not_fire_sign_off() -> None:
    data = base_data()
    _sign_off(data)["roles"] = ["recheck_lead", "rectifier"]
    i = data["authority"].index(_sign_off(data))
    assert _problems(data) == [(f"authority[{i}].roles[1]", "R-AUTH-SEPARATION")]


def test_a_role_held_by_a_non_signer_on_a_route_is_named_with_the_route() -> None:
    data = base_data()
    data["routes"][0]["recheck_lead"] = "third_party"
    problems = _problems(data)
    assert ("routes[0].recheck_lead", "R-AUTH-SEPARATION") in problems


def test_a_new_agency_that_joins_rechecks_and_signs_off() -> None:
    """鼓楼区's 区应急管理局: a district department, so it counts and may sign."""
    data = base_data()
    data["agencies"].append(
        {
            "id": "emergency",
            "name": {"zh": "区应急管理局", "en": "Emergency bureau"},
            "level": "district",
        }
    )
    _sign_off(data)["agencies"] = ["emergency"]
    plan = validate_plan_data(data)
    assert plan.authority_for("sign_off").agencies == ("emergency",)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- #
# Rules the engine cites come from the plan (engine_rules)


def _renamed(data: dict[str, Any], old: str, new: str) -> None:
    """Rename a rule id in the catalogue and wherever the plan cites it."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return new if node == old else node

    data.update(walk(dict(data)))


def _gulou_ids() -> Any:
    data = base_data()
    _renamed(data, "R-TKT-OPEN", "R-GL-OPEN")
    _renamed(data, "R-ESC-OVERDUE", "R-GL-OVERDUE")
    return validate_plan_data(data)


def test_the_builtin_plan_declares_changle_ids() -> None:
    plan = _plan()
    assert plan.engine_rules.open == "R-TKT-OPEN"
    assert plan.cite("R-ESC-PROPERTY") == "R-ESC-PROPERTY"
    assert plan.cite("R-DUE-DOSSIER") == "R-DUE-DOSSIER"  # not an engine decision
    assert plan.settings.property_escalation_to == ("housing", "fire")


def test_a_plan_with_its_own_ids_is_cited_by_them() -> None:
    from fireflow import InvalidCommand
    from fireflow.rules.escalation import due_escalations

    plan = _gulou_ids()
    assert plan.engine_rules.open == "R-GL-OPEN"
    t = _rectifying(
        plan, datetime(2022, 3, 21, 10, tzinfo=SH), category="evacuation_blocked", subtype="goods"
    )
    assert t.events[0].rules == ("R-GL-OPEN",)
    due = due_escalations(t.state, datetime(2022, 3, 26, 10, tzinfo=SH), plan)
    assert [e.rule for e in due] == ["R-GL-OVERDUE"]
    t.command("mark_overdue", datetime(2022, 3, 26, 10, tzinfo=SH), "housing")
    assert "R-GL-OVERDUE" in t.events[-1].rules
    assert "R-ESC-OVERDUE" not in t.events[-1].rules
    # a refusal cites the plan's id too
    other = Ticket("T2", plan)
    with pytest.raises(InvalidCommand) as info:
        other.command("report", datetime(2022, 3, 21, 10, tzinfo=SH), "town", community="C")
    assert info.value.rule == "R-GL-OPEN"


def test_an_engine_rule_the_catalogue_lacks_is_refused() -> None:
    data = base_data()
    data["engine_rules"]["open"] = "R-GL-OPEN"
    assert ("engine_rules.open", None) in _problems(data)
    # a catalogue without the built-in id and no engine_rules entry: named under rules
    data = base_data()
    del data["engine_rules"]
    data["rules"] = [r for r in data["rules"] if r["id"] != "R-ESC-EXPOSE"]
    with pytest.raises(PlanError) as info:
        validate_plan_data(data)
    assert any(p.path == "rules" and "'expose'" in p.message for p in info.value.problems)


def test_property_escalation_targets_are_plan_data() -> None:
    from fireflow.rules.escalation import due_escalations

    plan = _plan(property_escalation_to=["town"], max_failed_rechecks=1)
    t = _rectifying(
        plan, datetime(2022, 3, 21, 10, tzinfo=SH), category="evacuation_blocked", subtype="goods"
    )
    t.command("rectify", datetime(2022, 3, 22, 10, tzinfo=SH), "property")
    t.command("apply_reinspection", datetime(2022, 3, 22, 11, tzinfo=SH), "property")
    t.command(
        "recheck_fail",
        datetime(2022, 3, 23, 10, tzinfo=SH),
        "town",
        participants=[{"agency": "housing", "person": "王"}],
    )
    due = due_escalations(t.state, datetime(2022, 3, 23, 11, tzinfo=SH), plan)
    assert [(e.kind, e.targets) for e in due if e.kind == "property"] == [("property", ("town",))]
    data = base_data()
    data["settings"]["property_escalation_to"] = []
    assert ("settings.property_escalation_to", "R-ESC-PROPERTY") in _problems(data)
