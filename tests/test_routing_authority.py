"""The re-check and the sign-off as 五(三) writes them (R-TKT-REINSPECT, R-TKT-SIGNOFF, R-AUTH)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from fireflow import InvalidCommand, NotAuthorized, load_plan
from fireflow.plan import validate_plan_data
from fireflow.ticket import Ticket

PLAN = load_plan("changle-2022")
AT = datetime(2022, 3, 21, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def reinspection(plan=PLAN, category="evacuation_blocked", subtype="goods"):
    t = Ticket("T1", plan)
    t.command(
        "report", AT, "town", community="金峰小区", town="金峰镇", category=category,
        subtype=subtype, location="inside", source="town_inspection",
    )  # fmt: skip
    t.command("route", AT, "town")
    t.command("set_deadline", AT, "town")
    if category == "spacing_illegal_building":
        t.command("certify", AT, "planning")
        t.command("demolish", AT, "town")
    rectifier = t.state.routing.rectifier
    t.command("rectify", AT, rectifier)
    t.command("apply_reinspection", AT, rectifier)
    return t


def parts(*agencies):
    return [{"agency": a, "person": "张"} for a in agencies]


# 五(三) 由各乡镇（街道）牵头再组织相关部门复查


@pytest.mark.parametrize(
    "participants",
    [("property",), ("public",), ("third_party",), ("property", "public", "third_party"),
     ("committee", "micro_station")],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["recheck_pass", "recheck_fail"])
def test_non_government_participants_do_not_count(kind, participants):
    t = reinspection()
    with pytest.raises(InvalidCommand) as info:
        t.command(kind, AT, "town", participants=parts(*participants))
    assert (info.value.rule, info.value.field) == ("R-TKT-REINSPECT", "participants")
    assert t.state.state == "reinspection_requested"


def test_the_rectifier_does_not_count_toward_its_own_recheck():
    t = reinspection(category="spacing_illegal_building", subtype="structure")
    assert t.state.rectified_by == "town"
    with pytest.raises(InvalidCommand):
        t.command("recheck_pass", AT, "town", participants=parts("housing"))
    t.command("recheck_pass", AT, "town", participants=parts("housing", "planning"))
    assert t.state.state == "passed"


def test_two_departments_with_others_present_pass():
    t = reinspection()
    t.command("recheck_pass", AT, "town", participants=parts("property", "housing", "third_party"))
    assert t.state.recheck_agencies == ("town", "property", "housing", "third_party")


def test_counting_levels_are_plan_data():
    data = PLAN.to_data()
    data["settings"]["recheck_counting_levels"] = ["district", "town", "community"]
    t = reinspection(validate_plan_data(data))
    t.command("recheck_pass", AT, "town", participants=parts("committee"))
    assert t.state.state == "passed"


# 复查合格后由验收相关责任人签字


@pytest.fixture
def passed():
    t = reinspection()
    more = [{"agency": "housing", "person": "王"}]  # 张 and 王 of housing both take part
    everyone = [*parts("housing", "property", "public"), *more]
    t.command("recheck_pass", AT, "town", "李", participants=everyone)
    return t


@pytest.mark.parametrize(
    ("signers", "rule"),
    [
        ([{"agency": "housing"}], "R-AUTH-ROLES"),  # no name
        ([{"agency": "housing", "person": "  "}], "R-AUTH-ROLES"),  # blank name
        (parts("fire"), "R-TKT-SIGNOFF"),  # not at the re-check
        (parts("public"), "R-AUTH-ROLES"),  # at the re-check, not a signing department
        (parts("property"), "R-AUTH-SEPARATION"),  # the rectifier
        (parts("housing", "housing"), "R-AUTH-SEPARATION"),  # the same person twice
    ],
)
def test_sign_off_refusals(passed, signers, rule):
    with pytest.raises(NotAuthorized) as info:
        passed.command("sign_off", AT, "town", signers=signers)
    assert (info.value.rule, info.value.field) == (rule, "signers")
    assert passed.state.state == "passed"
    assert passed.events[-1].kind == "attempt_refused"


def test_sign_off_by_named_distinct_people(passed):
    passed.command(
        "sign_off", AT, "town",
        signers=[{"agency": "housing", "person": "张"}, {"agency": "housing", "person": "王"},
                 {"agency": "town", "person": "李"}],
    )  # fmt: skip
    assert [(s.agency, s.person) for s in passed.state.signers] == [
        ("housing", "张"), ("housing", "王"), ("town", "李"),
    ]  # fmt: skip


def test_the_actor_signs_when_named(passed):
    with pytest.raises(NotAuthorized):
        passed.command("sign_off", AT, "town")
    passed.command("sign_off", AT, "town", "李")
    assert passed.state.state == "signed_off"
