"""``fireflow plan upgrade``: plans of an earlier revision load again, comments kept (#22, 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.cli import main
from fireflow.errors import PlanError
from fireflow.plan import parse_plan
from fireflow.plan.upgrade import FORMER_DEFAULTS, FORMER_RECHECK_LEAD, upgrade_file, upgrade_text

HERE = Path(__file__).resolve().parent
#: The built-in plan before the rectification cap and property_escalation_to (from git history).
OLD = HERE / "plans" / "changle-2022-before-rectification-cap.yaml"
BUILTIN = HERE.parent / "fireflow" / "plans" / "changle-2022.yaml"
PLAN = load_plan("changle-2022")


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def _setting(plan_settings: object, key: str) -> object:
    value = plan_settings
    for part in key.split("."):
        value = getattr(value, part)
    return list(value) if isinstance(value, tuple) else value


def test_former_defaults_are_the_builtin_plans_values():
    for key, (value, _, _) in FORMER_DEFAULTS.items():
        assert _setting(PLAN.settings, key) == value, key
    assert {r.recheck_lead for r in PLAN.routes} == {FORMER_RECHECK_LEAD}


def test_the_old_builtin_plan_no_longer_loads_and_upgrades_to_one_that_does():
    with pytest.raises(PlanError, match="property_escalation_to: Field required"):
        load_plan(OLD)
    up = upgrade_file(OLD)
    assert up.problems == ()
    assert up.comments_kept
    assert [(c.path, c.done) for c in up.changes] == [
        ("settings.rectification_cap", True),
        ("settings.property_escalation_to", True),
    ]
    plan = parse_plan(up.text)
    # deadlines_may_pass_dossier: true meant no cap; the property escalation went to housing+fire
    assert plan.settings.rectification_cap is None
    assert plan.settings.property_escalation_to == ("housing", "fire")
    assert plan.settings == PLAN.settings
    # every comment is kept, the replaced line's too; the added line says it was added
    old = OLD.read_text(encoding="utf-8")
    assert _comments(old) == [c for c in _comments(up.text) if "fireflow plan upgrade" not in c]
    added = [line for line in up.text.splitlines() if "fireflow plan upgrade" in line]
    assert added == [
        "  property_escalation_to: [housing, fire]   # fireflow plan upgrade: "
        "the built-in plan's value; review (R-ESC-PROPERTY)"
    ]
    # only the two lines changed
    assert len(up.text.splitlines()) == len(old.splitlines()) + 1


def test_a_districts_plan_broken_by_the_format_change_upgrades_to_the_hand_fixed_one():
    # issue 22 (11): the Gulou example plan, valid before property_escalation_to was
    # required; its maintainers fixed it by hand (examples/scenarios/gulou-2023.plan.yaml)
    broken = HERE / "plans" / "gulou-2023-before-property-escalation.yaml"
    with pytest.raises(PlanError, match="property_escalation_to: Field required"):
        load_plan(broken)
    up = upgrade_file(broken)
    assert (up.problems, up.comments_kept) == ((), True)
    assert [c.path for c in up.changes] == ["settings.property_escalation_to"]
    fixed = load_plan(HERE.parent / "examples" / "scenarios" / "gulou-2023.plan.yaml")
    assert parse_plan(up.text).settings == fixed.settings


def test_the_first_builtin_plan_upgrades_through_every_revision():
    # as first written (29 November 2026): it left accountability_office,
    # non_signing_agencies and refusal_report_to to their defaults of the time
    first = HERE / "plans" / "changle-2022-first.yaml"
    with pytest.raises(PlanError):
        load_plan(first)
    up = upgrade_file(first)
    assert up.problems == ()
    assert up.comments_kept
    assert {c.path for c in up.changes} == {
        "settings.rectification_cap",
        "settings.accountability_office",
        "settings.property_escalation_to",
        "settings.non_signing_agencies",
        "settings.refusal_report_to",
    }
    plan = parse_plan(up.text)
    for key in ("accountability_office", "non_signing_agencies", "refusal_report_to"):
        assert _setting(plan.settings, key) == _setting(PLAN.settings, key)
    assert upgrade_text(up.text).changed is False


def test_an_unknown_format_is_refused_by_name():
    text = BUILTIN.read_text(encoding="utf-8").replace(
        "format: fireflow.plan/1", "format: fireflow.plan/9"
    )
    with pytest.raises(PlanError, match=r"format: unknown plan format 'fireflow.plan/9'"):
        upgrade_text(text)


def test_idempotent_on_a_current_plan():
    up = upgrade_file(BUILTIN)
    assert (up.changes, up.problems, up.changed) == ((), (), False)
    assert up.text == BUILTIN.read_text(encoding="utf-8")
    again = upgrade_text(upgrade_file(OLD).text)
    assert (again.changes, again.changed) == ((), False)


#: Lines of the built-in plan that a plan written before "named agencies, no hidden
#: defaults" could leave out (their former defaults), and whether each is required today.
REMOVABLE = {
    "accountability_lead": ("  accountability_lead:", True),
    "accountability_office": ("  accountability_office:", True),
    "property_escalation_to": ("  property_escalation_to:", True),
    "spot_check.lead": ("    lead: [housing, fire]", True),
    "spot_check.participants": ("    participants: [urban, police, planning]", False),
    "non_signing_agencies": ("  non_signing_agencies:", False),
    "goods_on_fire_lane": ("  goods_on_fire_lane:", False),
    "refusal_report_to": ("  refusal_report_to:", False),
    "routes[0].recheck_lead": ("    recheck_lead: town         # 五(三)", True),
}
CURRENT = BUILTIN.read_text(encoding="utf-8")
#: Required since the revision "named agencies, no hidden defaults".
NAMED = {k for k, (_, required) in REMOVABLE.items() if required} - {"property_escalation_to"}


def _without(keys: set[str]) -> str:
    lines = CURRENT.splitlines(keepends=True)
    drop = {REMOVABLE[k][0] for k in keys}
    kept = [ln for ln in lines if not any(ln.startswith(d) for d in drop)]
    assert len(lines) - len(kept) == len(keys)  # each prefix names exactly one line
    return "".join(kept)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(sorted(REMOVABLE)), min_size=1))
def test_a_plan_that_left_settings_out_keeps_its_meaning(removed):
    text = _without(removed)
    up = upgrade_text(text)
    assert up.problems == (), up.problems
    assert up.comments_kept
    plan = parse_plan(up.text)
    if removed & NAMED:
        # older than the revision that named the agencies: every setting it left out meant
        # its former default, which the upgrade writes out, so it reads like the built-in plan
        assert plan.settings == PLAN.settings
        assert plan.routes == PLAN.routes
        assert {c.path.removeprefix("settings.") for c in up.changes} == removed
        assert all(c.done and c.review for c in up.changes)
    elif "property_escalation_to" in removed:
        # older than property_escalation_to only: that is written; a left-out optional
        # setting may mean its former default or today's none, so a person is asked
        assert plan.settings.property_escalation_to == ("housing", "fire")
        asked = {c.path.removeprefix("settings.") for c in up.changes if not c.done}
        assert removed - {"property_escalation_to"} <= asked
        for key in removed - {"property_escalation_to"}:
            assert _setting(plan.settings, key) in ([], None), key
    else:
        # a plan of today's revision may leave optional settings out: nothing to upgrade
        assert (up.changes, up.text) == ((), text)
    assert upgrade_text(up.text).changed is False


def test_a_flow_style_settings_mapping_is_written_anew_and_says_so():
    old = OLD.read_text(encoding="utf-8")
    flow = json.dumps(yaml.safe_load(old)["settings"], ensure_ascii=False)  # JSON is YAML
    start, end = old.index("\nsettings:") + 1, old.index("\nholidays:") + 1
    up = upgrade_text(f"{old[:start]}settings: {flow}\n\n{old[end:]}")
    assert not up.comments_kept
    assert up.text.startswith("# fireflow plan upgrade: written anew")
    assert up.problems == ()
    assert parse_plan(up.text).settings == PLAN.settings


def test_a_value_the_plan_cannot_hold_is_a_hint_not_a_write():
    text = _without({"property_escalation_to"}).replace("  - id: housing", "  - id: housing_bureau")
    up = upgrade_text(text)
    (change,) = [c for c in up.changes if c.path == "settings.property_escalation_to"]
    assert not change.done
    assert "the built-in plan writes property_escalation_to: [housing, fire]" in change.message
    assert any(p.path == "settings.property_escalation_to" for p in up.problems)


def test_cli_upgrade_writes_lists_and_check_hints(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text(OLD.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["plan", "check", str(old)]) == 1
    err = capsys.readouterr().err
    assert "提示 hint: the built-in plan writes property_escalation_to: [housing, fire]" in err
    assert "fireflow plan upgrade FILE" in err

    assert main(["plan", "upgrade", str(old), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "+ settings.rectification_cap" in out
    assert "须人工复核" in out
    assert old.read_text(encoding="utf-8") == OLD.read_text(encoding="utf-8")  # nothing written

    new = tmp_path / "new.yaml"
    assert main(["plan", "upgrade", str(old), "--out", str(new)]) == 0
    assert load_plan(new).settings == PLAN.settings
    assert main(["plan", "upgrade", str(old)]) == 0  # in place
    assert old.read_text(encoding="utf-8") == new.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["plan", "upgrade", str(old)]) == 0
    assert "已是当前格式" in capsys.readouterr().out


def test_cli_upgrade_that_cannot_finish_says_what_is_left(tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(
        _without({"property_escalation_to"}).replace("  - id: housing", "  - id: housing_bureau"),
        encoding="utf-8",
    )
    assert main(["plan", "upgrade", str(path), "--dry-run"]) == 1
    out, err = capsys.readouterr()
    assert "! settings.property_escalation_to" in out
    assert "✗ 方案有" in err
