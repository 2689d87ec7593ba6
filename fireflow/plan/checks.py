"""Cross-reference problems of raw plan data: unknown ids, overlapping phases, missing routes.

Each problem is (path, message, rule); :func:`fireflow.plan.validate_plan_data` reports
them with pydantic's structure problems (``docs/plan-format.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import pendulum

from fireflow.calendar import (
    ChineseCalendarSource,
    Correction,
    HolidaySource,
    OverrideSource,
    correction_problems,
)
from fireflow.errors import InvalidArgument
from fireflow.plan.parts import ENGINE_RULES, GOVERNMENT_LEVELS
from fireflow.states import SETTINGS_AUTHORIZED, TRIGGERS

__all__ = ["Found", "cross_reference_problems"]


#: A problem of raw plan data: (path of the field, message, rule id or None).
Found = tuple[str, str, str | None]


def cross_reference_problems(data: Mapping[str, Any]) -> Iterator[Found]:
    """Yield (path, message, rule) for every cross-reference problem of raw plan data.

    Run on the raw data, before or beside pydantic's structure checks, so a plan with a
    bad date *and* an unknown agency gets both; a value of the wrong type is left to
    the structure checks.

    >>> list(cross_reference_problems({"timezone": "Mars/Olympus"}))
    [('timezone', "unknown time zone 'Mars/Olympus'", None)]
    """
    agencies = _ids(data, "agencies")
    categories = _ids(data, "categories")
    rules = _ids(data, "rules")
    phases = _ids(data, "phases")
    yield from _duplicate_ids(data)
    yield from _timezone_problems(data)
    yield from _phase_problems(data, phases)
    yield from _deadline_problems(data, agencies, rules)
    yield from _duty_problems(data, agencies, rules, phases)
    st = data.get("settings")
    if isinstance(st, Mapping):
        yield from _settings_problems(data, st, agencies, categories, phases)
    hol = data.get("holidays")
    if isinstance(hol, Mapping):
        yield from _holiday_problems(data, hol)
    yield from _route_problems(data, agencies, categories, rules)
    yield from _authority_problems(data, agencies, rules)
    yield from _sign_off_problems(data)
    yield from _engine_rule_problems(data, rules)


def _agency_refs(
    agencies: set[str], path: str, value: Any, rule: str | None = None
) -> Iterator[Found]:
    if isinstance(value, list | tuple):
        for j, ref in enumerate(value):
            if isinstance(ref, str) and ref not in agencies:
                yield f"{path}[{j}]", f"unknown agency {ref!r}", rule


def _rule_ref(rules: set[str], path: str, value: Any) -> Iterator[Found]:
    if isinstance(value, str) and value not in rules:
        yield path, f"unknown rule {value!r} (not in the rule catalogue)", None


def _duplicate_ids(data: Mapping[str, Any]) -> Iterator[Found]:
    for key in ("agencies", "categories", "phases", "deadlines", "duties", "rules", "forms"):
        seen: set[str] = set()
        for i, item in _items(data, key):
            ident = item.get("id")
            if isinstance(ident, str):
                if ident in seen:
                    yield f"{key}[{i}].id", f"duplicate id {ident!r}", None
                seen.add(ident)
    for i, cat in _items(data, "categories"):
        seen_sub: set[str] = set()
        subs = cat.get("subtypes")
        for j, sub in enumerate(subs if isinstance(subs, list) else []):
            sid = sub.get("id") if isinstance(sub, Mapping) else None
            if isinstance(sid, str):
                if sid in seen_sub:
                    yield f"categories[{i}].subtypes[{j}].id", f"duplicate subtype {sid!r}", None
                seen_sub.add(sid)


def _timezone_problems(data: Mapping[str, Any]) -> Iterator[Found]:
    tz = data.get("timezone", "Asia/Shanghai")
    if isinstance(tz, str):
        try:
            pendulum.timezone(tz)
        except (pendulum.tz.exceptions.InvalidTimezone, ValueError):
            yield "timezone", f"unknown time zone {tz!r}", None


def _campaign_year(data: Mapping[str, Any]) -> int | None:
    return data.get("year") if isinstance(data.get("year"), int) else None


def _phase_problems(data: Mapping[str, Any], phases: set[str]) -> Iterator[Found]:
    """Phases are ordered, each start <= end, contiguous, inside the campaign year."""
    year = _campaign_year(data)
    prev_end: date | None = None
    prev_id = ""
    for i, ph in _items(data, "phases"):
        start, end = _as_date(ph.get("start")), _as_date(ph.get("end"))
        if start and end and end < start:
            yield (
                f"phases[{i}].end",
                f"phase ends ({end}) before it starts ({start})",
                "R-CAL-PHASES",
            )
        if start and prev_end:
            gap = (start - prev_end).days
            if gap <= 0:
                yield (
                    f"phases[{i}].start",
                    f"phase overlaps {prev_id!r} (starts {start}, previous ends {prev_end})",
                    "R-CAL-PHASES",
                )
            elif gap > 1:
                yield (
                    f"phases[{i}].start",
                    f"gap of {gap - 1} day(s) after {prev_id!r}: phases must be contiguous",
                    "R-CAL-PHASES",
                )
        if year is not None and start and start.year != year and i == 0:
            yield (
                f"phases[{i}].start",
                f"campaign year is {year} but the first phase starts {start}",
                "R-CAL-PHASES",
            )
        elif year is not None:
            # every date left from another year, in the same round as the first one
            for key, day in (("start", start), ("end", end)):
                if day and day.year < year:
                    yield (
                        f"phases[{i}].{key}",
                        f"{day} is before the campaign year {year} (早于方案年度 {year})",
                        "R-CAL-PHASES",
                    )
        prev_end, prev_id = end, str(ph.get("id", ""))
    if not phases and isinstance(data.get("phases"), list):
        yield "phases", "a plan needs at least one phase", "R-CAL-PHASES"


def _deadline_problems(
    data: Mapping[str, Any], agencies: set[str], rules: set[str]
) -> Iterator[Found]:
    """Fixed report deadlines and progress reports: their parties, rules and dates."""
    year = _campaign_year(data)
    phase_items = [ph for _, ph in _items(data, "phases")]
    first = next((_as_date(p.get("start")) for p in phase_items), None)
    last = _as_date(phase_items[-1].get("end")) if phase_items else None
    for i, dl in _items(data, "deadlines"):
        rule = dl.get("rule")
        yield from _agency_refs(agencies, f"deadlines[{i}].senders", dl.get("senders"), rule)
        yield from _agency_refs(agencies, f"deadlines[{i}].recipients", dl.get("recipients"), rule)
        yield from _rule_ref(rules, f"deadlines[{i}].rule", rule)
        nominal = _as_date(dl.get("nominal"))
        if nominal and year is not None and nominal.year < year:
            yield (
                f"deadlines[{i}].nominal",
                f"{nominal} is before the campaign year {year} (早于方案年度 {year})",
                rule if isinstance(rule, str) else None,
            )
        elif nominal and first and last and not first <= nominal <= last:
            yield (
                f"deadlines[{i}].nominal",
                f"{nominal} is outside the campaign ({first} to {last})",
                rule if isinstance(rule, str) else None,
            )
    if any(str(item.get("id", "")).startswith("progress") for _, item in _items(data, "deadlines")):
        yield "deadlines", "ids starting with 'progress' are reserved for progress reports", None

    pr = data.get("progress_reports")
    if isinstance(pr, Mapping):
        yield from _agency_refs(
            agencies, "progress_reports.senders", pr.get("senders"), "R-DUE-PROGRESS"
        )
        yield from _agency_refs(
            agencies, "progress_reports.recipients", pr.get("recipients"), "R-DUE-PROGRESS"
        )
        yield from _rule_ref(rules, "progress_reports.rule", pr.get("rule"))


def _duty_problems(
    data: Mapping[str, Any], agencies: set[str], rules: set[str], phases: set[str]
) -> Iterator[Found]:
    """The agencies, rules and phases a phase duty names exist; its id is not a report's."""
    report_ids = _ids(data, "deadlines")
    for i, du in _items(data, "duties"):
        rule = du.get("rule")
        yield from _agency_refs(agencies, f"duties[{i}].senders", du.get("senders"), rule)
        yield from _agency_refs(agencies, f"duties[{i}].recipients", du.get("recipients"), rule)
        yield from _rule_ref(rules, f"duties[{i}].rule", rule)
        duty_rule = rule if isinstance(rule, str) else None
        duty_phase = du.get("phase")
        if isinstance(duty_phase, str) and duty_phase not in phases:
            yield f"duties[{i}].phase", f"unknown phase {duty_phase!r}", duty_rule
        ident = du.get("id")
        if isinstance(ident, str) and (ident in report_ids or ident.startswith("progress")):
            yield f"duties[{i}].id", f"{ident!r} is already a report id", duty_rule


def _settings_problems(
    data: Mapping[str, Any],
    st: Mapping[str, Any],
    agencies: set[str],
    categories: set[str],
    phases: set[str],
) -> Iterator[Found]:
    """Every agency, category, phase and deadline a setting names exists."""
    rd = st.get("rectification_days")
    if isinstance(rd, Mapping):
        for cid in rd:
            if cid not in categories:
                yield (
                    f"settings.rectification_days.{cid}",
                    f"unknown category {cid!r}",
                    "R-TKT-DEADLINE",
                )
        for cid in sorted(categories - {str(k) for k in rd}):
            yield (
                "settings.rectification_days",
                f"no rectification period for category {cid!r}",
                "R-TKT-DEADLINE",
            )
    yield from _agency_refs(
        agencies,
        "settings.non_signing_agencies",
        st.get("non_signing_agencies"),
        "R-AUTH-SEPARATION",
    )
    office = st.get("accountability_office")
    if isinstance(office, str) and office not in agencies:
        yield "settings.accountability_office", f"unknown agency {office!r}", "R-ESC-OFFICIAL"
    yield from _agency_refs(
        agencies, "settings.accountability_lead", st.get("accountability_lead"), "R-ESC-OFFICIAL"
    )
    sc = st.get("spot_check")
    if isinstance(sc, Mapping):
        yield from _agency_refs(
            agencies, "settings.spot_check.lead", sc.get("lead"), "R-SPOT-RATIO"
        )
        yield from _agency_refs(
            agencies, "settings.spot_check.participants", sc.get("participants"), "R-SPOT-RATIO"
        )
        window = sc.get("phase")
        if isinstance(window, str) and window not in phases:
            yield (
                "settings.spot_check.phase",
                f"unknown phase {window!r} (known: {', '.join(sorted(phases)) or 'none'})",
                "R-SPOT-WINDOW",
            )
    yield from _agency_refs(
        agencies, "settings.property_companies", st.get("property_companies"), "R-ESC-PROPERTY"
    )
    yield from _agency_refs(
        agencies, "settings.refusal_report_to", st.get("refusal_report_to"), "R-ESC-REFUSAL"
    )
    yield from _agency_refs(
        agencies,
        "settings.property_escalation_to",
        st.get("property_escalation_to"),
        "R-ESC-PROPERTY",
    )
    if isinstance(st.get("property_escalation_to"), list) and not st["property_escalation_to"]:
        yield (
            "settings.property_escalation_to",
            "name at least one agency (至少一个部门)",
            "R-ESC-PROPERTY",
        )
    if "deadlines_may_pass_dossier" in st:
        yield (
            "settings.deadlines_may_pass_dossier",
            "replaced by settings.rectification_cap: write `rectification_cap: dossier` "
            "(the id of the capping deadline) for false, leave it out for true "
            "(改用 rectification_cap：写明封顶的报送期限 id)",
            "R-TKT-DEADLINE",
        )
    cap = st.get("rectification_cap")
    fixed = _ids(data, "deadlines")
    if isinstance(cap, str) and cap not in fixed:
        yield (
            "settings.rectification_cap",
            f"unknown deadline {cap!r} (known: {', '.join(sorted(fixed)) or 'none'}); "
            "the cap names one of the plan's fixed report deadlines",
            "R-TKT-DEADLINE",
        )
    goods = st.get("goods_on_fire_lane")
    if isinstance(goods, list) and len(goods) == 2:
        yield from _goods_problems(data, goods[0], goods[1])


def _holiday_problems(data: Mapping[str, Any], hol: Mapping[str, Any]) -> Iterator[Found]:
    """One override per year, its days in its year and not both kinds; then corrections."""
    seen_years: set[int] = set()
    for i, ov in _items(hol, "overrides"):
        oy = ov.get("year")
        if isinstance(oy, int):
            if oy in seen_years:
                yield (
                    f"holidays.overrides[{i}].year",
                    f"two overrides for {oy}",
                    "R-DUE-HOLIDAY",
                )
            seen_years.add(oy)
        rest = {d for d in map(_as_date, _list(ov.get("rest_days"))) if d}
        work = {d for d in map(_as_date, _list(ov.get("work_days"))) if d}
        for key, days in (("rest_days", rest), ("work_days", work)):
            for d in sorted(days):
                if isinstance(oy, int) and d.year != oy:
                    yield (
                        f"holidays.overrides[{i}].{key}",
                        f"{d} is not in {oy}",
                        "R-DUE-HOLIDAY",
                    )
        for d in sorted(rest & work):
            yield (
                f"holidays.overrides[{i}]",
                f"{d} is both a rest day and a work day",
                "R-DUE-HOLIDAY",
            )
    yield from _correction_problems(data, hol, seen_years)


def _engine_rule_problems(data: Mapping[str, Any], rules: set[str]) -> Iterator[Found]:
    """Every rule the engine cites (its own id or the plan's) is in the catalogue."""
    if not isinstance(data.get("rules"), list):
        return
    declared = data.get("engine_rules")
    declared = declared if isinstance(declared, Mapping) else {}
    for key, builtin in ENGINE_RULES.items():
        rid = declared.get(key, builtin)
        if isinstance(rid, str) and rid not in rules:
            where = f"engine_rules.{key}" if key in declared else "rules"
            yield (
                where,
                f"the engine cites {rid} for {key!r} but the catalogue lacks it: add it to "
                f"rules, or name the plan's own rule in engine_rules.{key} "
                f"(引擎引用的规则须在规则目录中)",
                None,
            )


# --------------------------------------------------------------------------- #
# Reading raw data (structure problems are pydantic's to report)


def _items(data: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    seq = data.get(key)
    if isinstance(seq, list):
        for i, item in enumerate(seq):
            if isinstance(item, Mapping):
                yield i, item


def _list(value: Any) -> list[Any]:
    """A list from raw data, or an empty one (structure errors are pydantic's to report)."""
    return value if isinstance(value, list) else []


def _ids(data: Mapping[str, Any], key: str) -> set[str]:
    return {str(item["id"]) for _, item in _items(data, key) if "id" in item}


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _sign_off_problems(data: Mapping[str, Any]) -> Iterator[Found]:
    """Whoever may fire ``sign_off`` may also sign (R-TKT-SIGNOFF, R-AUTH-SEPARATION).

    Two rights meet at a sign-off (五(三) 复查合格后由验收相关责任人签字): the authority to
    record it (``authority`` entry ``sign_off``, by agency or route role) and the right to
    be a signer (an agency at a level of ``settings.recheck_counting_levels``, not in
    ``settings.non_signing_agencies``, not the ticket's rectifier, named, and present at
    the re-check).  A sign-off with no signers is signed by its actor, so every agency
    the authority names, and every agency a named role holds on any route, must be at a
    level that signs and not be a non-signing agency; the role ``rectifier`` is refused.
    An agency that rectified a ticket and leads its re-check (Changle's town on
    ``illegal_building``) records the sign-off with the other departments as signers.
    """
    levels = {str(a.get("id")): a.get("level") for _, a in _items(data, "agencies") if "id" in a}
    st = data.get("settings")
    st = st if isinstance(st, Mapping) else {}
    counting = st.get("recheck_counting_levels", GOVERNMENT_LEVELS)
    counting = (
        {x for x in counting if isinstance(x, str)}
        if isinstance(counting, list | tuple)
        else set(GOVERNMENT_LEVELS)
    )
    never = {x for x in _list(st.get("non_signing_agencies")) if isinstance(x, str)}

    def why_not(agency: str) -> str | None:
        if agency in never:
            return "is in settings.non_signing_agencies"
        level = levels.get(agency)
        if isinstance(level, str) and level not in counting:
            return f"is at level {level!r}, not in settings.recheck_counting_levels"
        return None

    for i, au in _items(data, "authority"):
        if au.get("trigger") != "sign_off":
            continue
        for j, ref in enumerate(_list(au.get("agencies"))):
            if isinstance(ref, str) and ref in levels and (reason := why_not(ref)):
                yield (
                    f"authority[{i}].agencies[{j}]",
                    f"{ref!r} may fire sign_off but may not sign: it {reason} "
                    f"(可记录验收签字者须本身可签字)",
                    "R-AUTH-SEPARATION",
                )
        for j, role in enumerate(_list(au.get("roles"))):
            if role == "rectifier":
                yield (
                    f"authority[{i}].roles[{j}]",
                    "the rectifier never signs off its own re-check (整改方不得签字验收)",
                    "R-AUTH-SEPARATION",
                )
                continue
            for k, rt in _items(data, "routes"):
                held = rt.get(role) if isinstance(role, str) else None
                for ref in held if isinstance(held, list) else [held]:
                    if not isinstance(ref, str) or ref not in levels:
                        continue
                    # the route's own rectifier may still record the others' signatures
                    # (illegal_building: the town demolishes and leads the re-check)
                    if reason := why_not(ref):
                        yield (
                            f"routes[{k}].{role}",
                            f"{ref!r} holds role {role!r}, which may fire sign_off "
                            f"(authority[{i}]), but may not sign: it {reason} "
                            f"(可记录验收签字者须本身可签字)",
                            "R-AUTH-SEPARATION",
                        )


def _correction_problems(
    data: Mapping[str, Any], hol: Mapping[str, Any], override_years: set[int]
) -> Iterator[Found]:
    """A correction lies in a year with official data, changes its day, and comes once."""
    parsed: list[tuple[int, Correction]] = []
    for i, item in _items(hol, "corrections"):
        day, kind, cited = _as_date(item.get("date")), item.get("kind"), item.get("source")
        if day is None or kind not in ("working", "rest") or not isinstance(cited, str):
            continue  # a structure problem: pydantic reports it
        if day.year in override_years:
            yield (
                f"holidays.corrections[{i}].date",
                f"{day.year} is given whole by holidays.overrides: correct the override instead "
                f"({day.year}年已由 overrides 整年给定)",
                "R-DUE-HOLIDAY",
            )
            continue
        try:
            parsed.append((i, Correction(day, kind, source=cited)))
        except InvalidArgument:
            continue  # an empty or refused citation: pydantic reports it
    if not parsed:
        return
    base: HolidaySource = OverrideSource({})
    if hol.get("source", "chinese_calendar") == "chinese_calendar":
        st = data.get("settings")
        rest_days = st.get("rest_days", "observed") if isinstance(st, Mapping) else "observed"
        base = ChineseCalendarSource(
            "holidays_only" if rest_days == "holidays_only" else "observed"
        )
    for j, key, message in correction_problems(base, [c for _, c in parsed]):
        yield f"holidays.corrections[{parsed[j][0]}].{key}", message, "R-DUE-HOLIDAY"


def _goods_problems(data: Mapping[str, Any], cat_id: Any, sub_id: Any) -> Iterator[Found]:
    for _, cat in _items(data, "categories"):
        if cat.get("id") == cat_id:
            subs = cat.get("subtypes")
            known = (
                {
                    s.get("id")
                    for s in subs
                    if isinstance(s, Mapping) and isinstance(s.get("id"), str)
                }
                if isinstance(subs, list)
                else set()
            )
            if not isinstance(sub_id, str) or sub_id not in known:
                yield (
                    "settings.goods_on_fire_lane[1]",
                    f"unknown subtype {sub_id!r} of {cat_id!r}",
                    None,
                )
            return
    yield "settings.goods_on_fire_lane[0]", f"unknown category {cat_id!r}", None


def _route_problems(
    data: Mapping[str, Any], agencies: set[str], categories: set[str], rules: set[str]
) -> Iterator[Found]:
    """Routes name known parties and rules, and every hazard has a route (R-AUTH-ROLES)."""
    subtypes: dict[str, set[str]] = {}
    for _, cat in _items(data, "categories"):
        subs = cat.get("subtypes")
        subtypes[str(cat.get("id"))] = {
            str(s.get("id"))
            for s in (subs if isinstance(subs, list) else [])
            if isinstance(s, Mapping)
        }
    seen: set[str] = set()
    for i, rt in _items(data, "routes"):
        where = f"routes[{i}]"
        rid = rt.get("id")
        if isinstance(rid, str) and rid in seen:
            yield f"{where}.id", f"duplicate id {rid!r}", "R-AUTH-ROLES"
        seen.add(str(rid))
        cat_id = rt.get("category")
        if isinstance(cat_id, str) and cat_id not in categories:
            yield f"{where}.category", f"unknown category {cat_id!r}", None
        for j, sub in enumerate(_list(rt.get("subtypes"))):
            if isinstance(cat_id, str) and cat_id in subtypes and str(sub) not in subtypes[cat_id]:
                yield f"{where}.subtypes[{j}]", f"unknown subtype {sub!r} of {cat_id!r}", None
        for key in ("rectifier", "lead", "supervisor", "recheck_lead", "certifier"):
            ref = rt.get(key)
            if isinstance(ref, str) and ref not in agencies:
                yield f"{where}.{key}", f"unknown agency {ref!r}", None
        for key in ("cooperating", "enforcers", "punishers"):
            value = rt.get(key)
            if isinstance(value, list):
                for j, ref in enumerate(value):
                    if isinstance(ref, str) and ref not in agencies:
                        yield f"{where}.{key}[{j}]", f"unknown agency {ref!r}", None
        for j, ref in enumerate(_list(rt.get("rules"))):
            if isinstance(ref, str) and ref not in rules:
                yield (
                    f"{where}.rules[{j}]",
                    f"unknown rule {ref!r} (not in the rule catalogue)",
                    None,
                )
        own = {x for x in _list(rt.get("rules")) if isinstance(x, str)}
        for j, ref in enumerate(_list(rt.get("punish_rules"))):
            if isinstance(ref, str) and ref not in own:
                yield (
                    f"{where}.punish_rules[{j}]",
                    f"{ref!r} is not among the route's rules: a ticket cites its own route only",
                    None,
                )
        if _list(rt.get("punishers")) and not _list(rt.get("punish_rules")):
            yield f"{where}.punish_rules", "punishers need the rules they act under", None
    if isinstance(data.get("routes"), list) and data.get("routes"):
        # (category, location, new community?) -> subtypes covered; "" = every subtype
        covered: dict[tuple[str, str, bool], set[str]] = {}
        for _, rt in _items(data, "routes"):
            route_cat, place = rt.get("category"), rt.get("location", "any")
            if not isinstance(route_cat, str) or place not in ("inside", "around", "any"):
                continue
            subs = {x for x in _list(rt.get("subtypes")) if isinstance(x, str)} or {""}
            flag = rt.get("new_community")
            for loc in ("inside", "around") if place == "any" else (place,):
                for new in (False, True):
                    if flag in (None, new):
                        covered.setdefault((route_cat, loc, new), set()).update(subs)
        for cid in sorted(categories):
            for loc in ("inside", "around"):
                for new in (False, True):
                    have = covered.get((cid, loc, new), set())
                    for sub in sorted(subtypes.get(cid, set())) or [""]:
                        if "" not in have and sub not in have:
                            yield (
                                "routes",
                                f"no route for category {cid!r}, location {loc!r}, "
                                f"subtype {sub!r}" + (", new community" if new else ""),
                                "R-AUTH-ROLES",
                            )


def _authority_problems(
    data: Mapping[str, Any], agencies: set[str], rules: set[str]
) -> Iterator[Found]:
    """One authority entry per known trigger, naming known agencies and rules (R-AUTH-ROLES)."""
    seen_triggers: set[str] = set()
    for i, au in _items(data, "authority"):
        trig = au.get("trigger")
        if isinstance(trig, str):
            if trig not in TRIGGERS:
                yield f"authority[{i}].trigger", f"unknown trigger {trig!r}", "R-AUTH-ROLES"
            elif trig in SETTINGS_AUTHORIZED:
                yield (
                    f"authority[{i}].trigger",
                    f"{trig!r} is authorized by settings.accountability_lead and "
                    "settings.accountability_office, not by an authority entry "
                    "（由方案设置中的牵头部门和效能部门执行）",
                    "R-ESC-OFFICIAL",
                )
            if trig in seen_triggers:
                yield f"authority[{i}].trigger", f"two entries for {trig!r}", "R-AUTH-ROLES"
            seen_triggers.add(trig)
        value = au.get("agencies")
        if isinstance(value, list):
            for j, ref in enumerate(value):
                if isinstance(ref, str) and ref not in agencies:
                    yield f"authority[{i}].agencies[{j}]", f"unknown agency {ref!r}", "R-AUTH-ROLES"
        for j, ref in enumerate(_list(au.get("rules"))):
            if isinstance(ref, str) and ref not in rules:
                yield f"authority[{i}].rules[{j}]", f"unknown rule {ref!r}", None
    if isinstance(data.get("authority"), list) and data.get("authority"):
        for trig in TRIGGERS:
            if trig not in seen_triggers and trig not in SETTINGS_AUTHORIZED:
                yield "authority", f"no authority entry for trigger {trig!r}", "R-AUTH-ROLES"
