"""The plan's annex forms and the community dossiers (一区一档), built from the event log.

* :func:`annex1`: 摸底排查情况统计表 (五(二)): per community, the problems found by the
  property companies' self-inspection, counted by hazard category;
* :func:`annex2`: 检查表 / 登记表 (五(三)): one row per ticket found by the towns'
  inspection, with its deadline, rectification, re-check and sign-off;
* :func:`annex3`: 抽查表 / 抽查登记表 (五(四)): per spot-checked community, the on-site
  result for each of the four categories;
* :func:`dossier`: one community's file: every ticket, photo references by
  content hash, re-checks, sign-offs, rule ids and (when given) the hash-chain
  heads of an event store; as deterministic JSON (:func:`dossier_json`) and a
  printable HTML page (:func:`dossier_html`).

Official documents say how far their events are vouched for: the command line
verifies a store's hash chains before it builds a form or a dossier and passes
the outcome (a ``verification`` mapping, see :func:`mark_form` and
:func:`mark_dossier`) to be shown on every page: 已校验 verified (with the chain
head verified against), 未经校验 UNVERIFIED (with the reason), or
未经哈希链校验 not backed by a hash chain (a JSON-lines log).

The annexes are pandas DataFrames with Chinese column headers (:func:`english`
renames them); :func:`to_csv` writes UTF-8 with a byte-order mark so that Excel
opens the Chinese correctly, :func:`to_xlsx` writes an Excel workbook; both
write through :mod:`fireflow.output` (atomic, symbolic links refused).  pandas
and openpyxl are imported only when a form is built (``pip install
fireflow[forms]``); ``import fireflow`` never needs them.

>>> import pendulum
>>> from fireflow import load_plan
>>> from fireflow.ticket import Ticket
>>> plan = load_plan("changle-2022")
>>> t = Ticket("CL-1", plan)
>>> at = pendulum.datetime(2022, 3, 21, 10, tz="Asia/Shanghai")
>>> _ = t.command("report", at, "town", "李", community="金峰小区", town="金峰镇",
...     category="fire_lane_vehicle", subtype="private_car", location="inside",
...     source="town_inspection", description="消防车道停放私家车")
>>> df = annex2(t.events, plan)
>>> list(df.columns[:4])
['编号', '乡镇（街道）', '小区', '问题类别']
>>> df.iloc[0]["发现日期"], df.iloc[0]["复查结果"]
('2022-03-21', '未复查')
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fireflow import output
from fireflow.errors import InvalidArgument
from fireflow.events import Event, canonical_bytes
from fireflow.plan import BUILTIN_PLAN, Plan, load_plan
from fireflow.states import LIFECYCLE
from fireflow.ticket import TicketState, fold

if TYPE_CHECKING:
    import pandas as pd

    from fireflow.rules.spotcheck import Draw, Finding

__all__ = [
    "DOSSIER_FORMAT",
    "DRAFT_HEADER",
    "DRAFT_TEXT",
    "FORM_IDS",
    "SIMULATED_MARK",
    "UNANCHORED_HEADER",
    "UNCHAINED_HEADER",
    "UNVERIFIED_HEADER",
    "VERIFIED_HEADER",
    "UncheckedCommunities",
    "annex1",
    "annex2",
    "annex3",
    "build",
    "dossier",
    "dossier_html",
    "dossier_json",
    "english",
    "group_events",
    "headers",
    "mark_dossier",
    "mark_form",
    "public_summary",
    "read_csv",
    "read_xlsx",
    "ticket_states",
    "to_csv",
    "to_xlsx",
    "verification_header",
    "verification_text",
]

#: The marker column's header: verified against a store's hash chains and anchored to a
#: published checkpoint (``--checkpoint``) that the store matched.
VERIFIED_HEADER = "已校验 verified"
#: The marker column's header: the store's chains verify, but no checkpoint anchors them,
#: so the whole history could have been rewritten and re-hashed.
UNANCHORED_HEADER = "已校验·未锚定检查点 verified, NOT ANCHORED to a checkpoint"
#: The marker column's header: a store that did not verify, used on request (``--unverified``).
UNVERIFIED_HEADER = "未经校验 UNVERIFIED"
#: The marker column's header: events from a JSON-lines log, which has no hash chain.
UNCHAINED_HEADER = "未经哈希链校验 NOT BACKED BY A HASH CHAIN"
#: Put before the header and the text of every document made from a simulated store.
SIMULATED_MARK = "模拟数据 SIMULATED DATA"
_BASE_HEADERS = (VERIFIED_HEADER, UNANCHORED_HEADER, UNVERIFIED_HEADER, UNCHAINED_HEADER)
_MARKER_HEADERS = (*_BASE_HEADERS, *(f"{SIMULATED_MARK} · {h}" for h in _BASE_HEADERS))
#: The most left-out tickets a document's marker lists by name (the rest are counted).
_LEFT_OUT_SHOWN = 5

#: The format tag of a dossier's JSON.
DOSSIER_FORMAT = "fireflow.dossier/1"
#: The annex forms built here.
FORM_IDS: tuple[str, ...] = ("annex1", "annex2", "annex3")

_CLOSED = ("passed", "signed_off", "archived")
_LOCATION = {"inside": "小区内", "around": "小区周边"}
_SOURCE = {
    "self_inspection": "物业自查",
    "town_inspection": "乡镇检查",
    "spot_check": "抽查",
    "patrol": "巡查",
    "public_report": "群众举报",
}
_EVIDENCE = {"photo_before": "整改前照片", "photo_after": "整改后照片", "document": "文件"}
_PROBLEM, _CLEAR = "存在问题", "未发现问题"
#: 五(四) 现场核实: a category nobody checked on site is said to be unchecked, never clear.
_UNCHECKED = "未核查"
#: A dossier counts a ticket as closed (销号) only once it is signed off (R-TKT-SIGNOFF).
_FILED = ("signed_off", "archived")
#: Rectified by the company, not yet re-checked: neither 是 nor 否 (五(三) 复查合格 decides).
_AWAITING = ("rectified", "reinspection_requested")

#: The draft marker column of an Annex 3 with unchecked drawn communities (on every row).
DRAFT_HEADER = "草稿 DRAFT"
#: The text of every cell of the draft marker column.
DRAFT_TEXT = (
    "草稿：抽中小区尚未全部现场核实，不得作为正式抽查表 "
    "DRAFT: not every drawn community was checked on site"
)


class UncheckedCommunities(InvalidArgument):
    """A final Annex 3 asked for while drawn communities lack on-site findings (五(四) 现场核实).

    ``communities`` lists ``(community, categories unchecked)``; ask for a draft
    (``draft=True``, ``--draft``) to print it marked 草稿 on every page.
    """

    def __init__(self, rule: str, communities: Sequence[tuple[str, tuple[str, ...]]]) -> None:
        self.communities = tuple(communities)
        shown = "; ".join(f"{c}: {', '.join(cats)}" for c, cats in self.communities[:10])
        more = f" (+{len(self.communities) - 10} more)" if len(self.communities) > 10 else ""
        super().__init__(
            "findings",
            f"{len(self.communities)} drawn community(ies) lack on-site findings "
            f"(抽中小区未现场核实，不能出具正式附件3): {shown}{more}; "
            "record the findings, or ask for a draft (--draft)",
            rule=rule,
        )


# =========================================================================== #
# The event log


def group_events(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events of each ticket in ``seq`` order, tickets sorted by id."""
    by_ticket: dict[str, list[Event]] = {}
    for e in events:
        if not isinstance(e, Event):
            raise InvalidArgument("events", f"expected Event records, got {type(e).__name__}")
        by_ticket.setdefault(e.ticket_id, []).append(e)
    return {t: sorted(by_ticket[t], key=lambda e: e.seq) for t in sorted(by_ticket)}


def ticket_states(events: Iterable[Event]) -> dict[str, TicketState]:
    """The state of every ticket in the log (the fold of its events), by ticket id.

    A gap or a duplicate in a ticket's ``seq`` raises :class:`InvalidArgument`
    naming ``seq``.
    """
    return {t: fold(evs, t) for t, evs in group_events(events).items()}


def _local(at: datetime, tz: ZoneInfo, fmt: str = "%Y-%m-%d") -> str:
    return at.astimezone(tz).strftime(fmt)


def _agency_zh(plan: Plan, agency: str) -> str:
    try:
        return plan.agency(agency).name.zh
    except InvalidArgument:
        return agency


def _category_zh(plan: Plan, category: str) -> str:
    try:
        return plan.category(category).name.zh
    except InvalidArgument:
        return category


def _subtype_zh(plan: Plan, category: str, subtype: str | None) -> str:
    if not subtype:
        return ""
    try:
        return plan.category(category).subtype(subtype).name.zh
    except InvalidArgument:
        return subtype


def _state_zh(state: str) -> str:
    try:
        return LIFECYCLE.state(state).zh
    except KeyError:
        return state


def _kind_zh(kind: str) -> str:
    if kind == "attempt_refused":
        return "被拒绝的操作"
    try:
        return LIFECYCLE.transition(kind).zh
    except KeyError:
        return kind


# =========================================================================== #
# Headers


def headers(form_id: str, plan: Plan | None = None) -> list[tuple[str, str]]:
    """The columns of a form as ``(english, 中文)`` pairs, in order.

    >>> headers("annex2")[:3]
    [('ticket_id', '编号'), ('town', '乡镇（街道）'), ('community', '小区')]
    """
    plan = plan or load_plan(BUILTIN_PLAN)
    cats = [(c.id, c.name.zh) for c in plan.categories]
    if form_id == "annex1":
        return [
            ("town", "乡镇（街道）"),
            ("community", "小区"),
            *cats,
            ("total", "合计"),
            ("rectified", "已整改"),
            ("basis", "依据"),
        ]
    if form_id == "annex2":
        return [
            ("ticket_id", "编号"),
            ("town", "乡镇（街道）"),
            ("community", "小区"),
            ("category", "问题类别"),
            ("subtype", "具体问题"),
            ("location", "位置"),
            ("description", "问题描述"),
            ("found", "发现日期"),
            ("deadline", "整改期限"),
            ("rectified", "是否整改到位"),
            ("recheck", "复查结果"),
            ("signoff", "验收签字"),
            ("signoff_date", "签字日期"),
            ("state", "当前状态"),
        ]
    if form_id == "annex3":
        return [
            ("town", "乡镇（街道）"),
            ("community", "小区"),
            ("inspectors", "抽查人员"),
            ("agencies", "抽查单位"),
            *cats,
            ("action", "处理意见"),
            ("tickets", "相关工单"),
        ]
    raise InvalidArgument("form", f"unknown form {form_id!r}; known: {', '.join(FORM_IDS)}")


def _int_columns(form_id: str, plan: Plan | None) -> list[str]:
    if form_id != "annex1":
        return []
    return [zh for en, zh in headers(form_id, plan) if en not in ("town", "community", "basis")]


def english(df: pd.DataFrame, form_id: str, plan: Plan | None = None) -> pd.DataFrame:
    """A copy of a form with English column names (developer view)."""
    mapping = {zh: en for en, zh in headers(form_id, plan)}
    return df.rename(columns=mapping)


def _frame(form_id: str, plan: Plan, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415 (optional dependency, imported when a form is built)

    cols = [zh for _, zh in headers(form_id, plan)]
    df = pd.DataFrame([list(r) for r in rows], columns=cols)
    return _typed(df, form_id, plan)


def _typed(df: pd.DataFrame, form_id: str, plan: Plan | None) -> pd.DataFrame:
    ints = set(_int_columns(form_id, plan))
    for col in df.columns:
        df[col] = df[col].astype("int64") if col in ints else df[col].astype(str)
    return df


# =========================================================================== #
# Annex 1, 2, 3


def annex1(
    events: Iterable[Event],
    plan: Plan | None = None,
    towns: Mapping[str, Iterable[str]] | None = None,
) -> pd.DataFrame:
    """附件1 摸底排查情况统计表: self-inspection problems per community and category.

    Counts tickets whose source is ``self_inspection``; ``已整改`` counts those
    passed, signed off or filed.  ``towns`` (town -> community ids) adds rows
    for communities with no self-inspection ticket: their zeros rest on no
    event, so ``依据`` says 无自查登记记录 (no self-inspection record), never
    that nothing was found (the record of the inspection itself is the
    R-OBL-SELF-INSPECT duty, :mod:`fireflow.rules.obligations`).
    """
    plan = plan or load_plan(BUILTIN_PLAN)
    cats = [c.id for c in plan.categories]
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for town, communities in (towns or {}).items():
        for c in communities:
            counts.setdefault((town, c), {})
    for s in ticket_states(events).values():
        if s.source != "self_inspection":
            continue
        row = counts.setdefault((s.town, s.community), {})
        row[s.category] = row.get(s.category, 0) + 1
        if s.state in _CLOSED:
            row["rectified"] = row.get("rectified", 0) + 1
    rows = []
    for town, community in sorted(counts):
        row = counts[(town, community)]
        per = [row.get(c, 0) for c in cats]
        basis = f"自查登记隐患{sum(per)}件" if sum(per) else "无自查登记记录（未核查）"
        rows.append([town, community, *per, sum(per), row.get("rectified", 0), basis])
    return _frame("annex1", plan, rows)


def _recheck(events: Sequence[Event]) -> str:
    for e in reversed(events):
        if e.kind == "reopen":
            return "抽查发现整改不到位"
        if e.kind == "recheck_pass":
            return "合格"
        if e.kind == "recheck_fail":
            return "不合格"
    return "未复查"


def _signoff(plan: Plan, state: TicketState, events: Sequence[Event], tz: ZoneInfo) -> list[str]:
    if not state.signers:
        return ["", ""]
    when = next((e.at for e in reversed(events) if e.kind == "sign_off"), None)
    names = "；".join(f"{_agency_zh(plan, s.agency)} {s.person}".strip() for s in state.signers)
    return [names, _local(when, tz) if when is not None else ""]


def annex2(
    events: Iterable[Event],
    plan: Plan | None = None,
    sources: Sequence[str] = ("town_inspection",),
) -> pd.DataFrame:
    """附件2 检查表 (登记表): one row per ticket found by the towns' inspection (五(三)).

    ``sources`` widens the register to tickets of other sources.  ``是否整改到位``
    is 是 once a re-check passed, 待复查 when the company reports it rectified and
    no re-check has decided yet (五(三) 复查合格), else 否.
    """
    plan = plan or load_plan(BUILTIN_PLAN)
    tz = ZoneInfo(plan.timezone)
    rows = []
    for tid, evs in group_events(events).items():
        s = fold(evs, tid)
        if s.source not in sources:
            continue
        report = next((e for e in evs if e.kind == "report"), None)
        description = str(report.payload.get("description", "")) if report else ""
        rows.append(
            [
                tid,
                s.town,
                s.community,
                _category_zh(plan, s.category),
                _subtype_zh(plan, s.category, s.subtype),
                _LOCATION.get(s.location, s.location),
                description,
                _local(s.reported_at, tz) if s.reported_at else "",
                s.deadline.isoformat() if s.deadline else "",
                "是" if s.state in _CLOSED else "待复查" if s.state in _AWAITING else "否",
                _recheck(evs),
                *_signoff(plan, s, evs, tz),
                _state_zh(s.state),
            ]
        )
    return _frame("annex2", plan, rows)


def annex3(
    events: Iterable[Event],
    plan: Plan | None = None,
    draw: Draw | None = None,
    findings: Iterable[Finding] | None = None,
    *,
    draft: bool = False,
) -> pd.DataFrame:
    """附件3 抽查表 (抽查登记表): the on-site result of each category per checked community.

    With a ``draw`` the rows are its communities and teams; without one, the
    communities with spot-check evidence in the log.  A category is
    ``存在问题`` when a finding says so, or when the log holds a ``reopen``
    (R-TKT-SPOTCHECK) or a ``spot_check`` report for it; ``未发现问题`` only when
    a finding says it is compliant; otherwise ``未核查`` (五(四) 现场核实:
    nobody checked it, so nothing is stated).  ``处理意见`` is ``责令整改到位``
    where a problem was found.

    With a ``draw``, a drawn community with a category unchecked makes the form
    a draft: without ``draft=True`` it raises :class:`UncheckedCommunities`;
    with it, every row carries the :data:`DRAFT_HEADER` column.
    """
    plan = plan or load_plan(BUILTIN_PLAN)
    cats = [c.id for c in plan.categories]
    groups = group_events(events)
    found: dict[tuple[str, str], list[str]] = {}
    towns: dict[str, str] = {}
    for tid, evs in groups.items():
        s = fold(evs, tid)
        towns.setdefault(s.community, s.town)
        spot = s.source == "spot_check" or any(e.kind == "reopen" for e in evs)
        if spot:
            found.setdefault((s.community, s.category), []).append(tid)
    verdict: dict[tuple[str, str], bool] = {}
    for f in findings or ():
        key = (f.community, f.category)
        verdict[key] = verdict.get(key, True) and f.compliant
    teams: dict[str, tuple[str, str]] = {}
    if draw is not None:
        communities = [(a.town, a.community) for a in draw.assignments]
        for a in draw.assignments:
            agencies = "、".join(_agency_zh(plan, x) for x in dict.fromkeys(a.agencies))
            teams[a.community] = ("、".join(a.inspectors), agencies)
    else:
        checked = sorted({c for c, _ in found} | {c for c, _ in verdict})
        communities = sorted((towns.get(c, ""), c) for c in checked)
    rows = []
    unchecked: list[tuple[str, tuple[str, ...]]] = []
    for town, community in communities:
        results = []
        tickets: list[str] = []
        missing: list[str] = []
        for cat in cats:
            key = (community, cat)
            tickets.extend(found.get(key, []))
            if key in verdict:
                results.append(_CLEAR if verdict[key] else _PROBLEM)
            elif key in found:
                results.append(_PROBLEM)
            else:
                results.append(_UNCHECKED)
                missing.append(cat)
        if missing:
            unchecked.append((community, tuple(missing)))
        inspectors, agencies = teams.get(community, ("", ""))
        action = "责令整改到位" if _PROBLEM in results else ""
        rows.append(
            [town, community, inspectors, agencies, *results, action, "、".join(sorted(tickets))]
        )
    if draw is not None and unchecked and not draft:
        raise UncheckedCommunities(plan.cite("R-SPOT-RATIO"), unchecked)
    df = _frame("annex3", plan, rows)
    if draft:
        df[DRAFT_HEADER] = DRAFT_TEXT
        df[DRAFT_HEADER] = df[DRAFT_HEADER].astype(str)
    return df


def public_summary(
    events: Iterable[Event],
    plan: Plan | None = None,
    draw: Draw | None = None,
    findings: Iterable[Finding] | None = None,
) -> pd.DataFrame:
    """一公开: the spot-check results for publication (R-OBL-PUBLISH, 六(五)).

    The final Annex 3 (:func:`annex3`; a drawn community without findings
    raises :class:`UncheckedCommunities`: nothing unchecked is published)
    without the inspectors' names (抽查人员) and the internal ticket ids
    (相关工单): town, community, the on-site result of each category, the action
    ordered and the agencies that checked.  No personal data.
    """
    df = annex3(events, plan, draw, findings)
    return df.drop(columns=["抽查人员", "相关工单"]).reset_index(drop=True)


def build(
    form_id: str,
    events: Iterable[Event],
    plan: Plan | None = None,
    draw: Draw | None = None,
    *,
    towns: Mapping[str, Iterable[str]] | None = None,
    findings: Iterable[Finding] | None = None,
    draft: bool = False,
) -> pd.DataFrame:
    """Build a form by id (``annex1``, ``annex2``, ``annex3``).

    ``towns`` is used by Annex 1, ``draw``, ``findings`` and ``draft`` by Annex 3.
    """
    if form_id == "annex1":
        return annex1(events, plan, towns)
    if form_id == "annex2":
        return annex2(events, plan)
    if form_id == "annex3":
        return annex3(events, plan, draw, findings, draft=draft)
    raise InvalidArgument("form", f"unknown form {form_id!r}; known: {', '.join(FORM_IDS)}")


# =========================================================================== #
# The verification marker


def verification_header(verification: Mapping[str, Any]) -> str:
    """The marker a document carries on every page for this ``verification``.

    ``verification`` is JSON data with at least ``verified`` (bool) and
    ``source`` (``"store"`` or ``"event_log"``); a store's adds ``store``
    (``global_head``, ``count``, ``tickets``) and the ``checkpoint`` it matched
    (``None`` without one), a failed one ``reason``; ``simulated`` (true for a
    store the simulator wrote) puts :data:`SIMULATED_MARK` first.

    >>> verification_header({"verified": False, "source": "event_log"})
    '未经哈希链校验 NOT BACKED BY A HASH CHAIN'
    >>> verification_header({"verified": True, "source": "store", "checkpoint": None})
    '已校验·未锚定检查点 verified, NOT ANCHORED to a checkpoint'
    >>> verification_header({"verified": True, "source": "store", "checkpoint": {"count": 3},
    ...                      "simulated": True})
    '模拟数据 SIMULATED DATA · 已校验 verified'
    """
    if verification.get("verified") is True:
        head = VERIFIED_HEADER if verification.get("checkpoint") else UNANCHORED_HEADER
    elif verification.get("source") == "event_log":
        head = UNCHAINED_HEADER
    else:
        head = UNVERIFIED_HEADER
    return f"{SIMULATED_MARK} · {head}" if verification.get("simulated") is True else head


def _left_out_text(left_out: Sequence[Mapping[str, Any]]) -> str:
    shown = [
        f"{g.get('ticket_id', '')} ({g.get('where', '')}: {g.get('reason', '')})"
        for g in left_out[:_LEFT_OUT_SHOWN]
    ]
    more = len(left_out) - len(shown)
    tail = f"; 另有 {more} 件 and {more} more" if more > 0 else ""
    return (
        f"; 已略去 {len(left_out)} 件历史记录无法折叠的工单 left out, corrupt history: "
        + "; ".join(shown)
        + tail
    )


def verification_text(verification: Mapping[str, Any]) -> str:
    """One line saying what the document's events were (or were not) verified against.

    Anchored (the store matched a checkpoint: which one, made when), verified
    without an anchor (the chains are consistent but could have been rewritten
    whole), or not verified; the simulated mark first, the tickets left out for
    corrupt history last.

    >>> v = {"verified": True, "source": "store", "checkpoint": None,
    ...      "store": {"global_head": "ab" * 32, "count": 3, "tickets": 1}}
    >>> print(verification_text(v))  # doctest: +ELLIPSIS
    已校验·未锚定检查点 ...: 事件库哈希链自洽...could have been rewritten... (3 events, 1 tickets)
    """
    head = verification_header(verification)
    store = verification.get("store") or {}
    figures = (
        f"global head {store.get('global_head', '')} "
        f"({store.get('count', 0)} events, {store.get('tickets', 0)} tickets)"
    )
    if verification.get("verified") is True:
        cp = verification.get("checkpoint")
        if cp:
            text = (
                f"{head}: 事件库哈希链完整，并与检查点一致 the store's hash chains verify and "
                f"match the checkpoint made {cp.get('at', '')} ({cp.get('count', 0)} events, "
                f"global head {cp.get('global_head', '')}); {figures}"
            )
        else:
            text = (
                f"{head}: 事件库哈希链自洽，但未与检查点比对，整段历史可能被整体改写 the store's "
                "hash chains are consistent, but no checkpoint anchors them: the whole history "
                f"could have been rewritten and re-hashed; {figures}"
            )
    else:
        reason = verification.get("reason") or ""
        text = f"{head}: {reason}" if reason else head
    if verification.get("simulated") is True:
        text += "; 模拟数据，非真实工作记录 simulated data, not a real campaign's record"
    left_out = verification.get("left_out") or ()
    if left_out:
        text += _left_out_text(left_out)
    return text


def mark_form(df: pd.DataFrame, verification: Mapping[str, Any]) -> pd.DataFrame:
    """A copy of a form with a last column saying how far its events are vouched for.

    The column's header is :func:`verification_header` (so an empty form is marked
    too) and every cell :func:`verification_text`.  :func:`to_csv`, :func:`to_xlsx`
    write it as any column (the workbook's 说明 sheet repeats it);
    :func:`read_csv` and :func:`read_xlsx` drop it again.
    """
    out = df.copy()
    out[verification_header(verification)] = verification_text(verification)
    out[verification_header(verification)] = out[verification_header(verification)].astype(str)
    return out


def _marker(df: pd.DataFrame) -> str | None:
    last = str(df.columns[-1]) if len(df.columns) else None
    return last if last in _MARKER_HEADERS else None


# =========================================================================== #
# CSV and XLSX


def to_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a form as CSV for people, atomically (:mod:`fireflow.output`).

    UTF-8 with a byte-order mark, CRLF line ends, no index, counts as
    integers.  Text that a spreadsheet would run as a formula (``=``, ``+``,
    ``-``, ``@``, their full-width forms, a leading tab or carriage return)
    gets a leading ``'``, and so does text that starts with ``'``
    (:func:`fireflow.output.neutralise`); :func:`read_csv` removes it again.
    """
    output.write_frame_csv(path, df)


def read_csv(path: str | os.PathLike[str], form_id: str, plan: Plan | None = None) -> pd.DataFrame:
    """Read a form written by :func:`to_csv` back into an equal DataFrame."""
    import pandas as pd  # noqa: PLC0415 (optional dependency)

    df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    _check_columns(df, form_id, plan)
    marker = _marker(df)
    if marker is not None:
        df = df.drop(columns=[marker])
    df = _without_draft(df)
    ints = set(_int_columns(form_id, plan))
    for col in df.columns:
        if col not in ints:
            df[col] = df[col].map(output.unneutralise)
    return _typed(df, form_id, plan)


def _without_draft(df: pd.DataFrame) -> pd.DataFrame:
    """The form without its draft marker column (:data:`DRAFT_HEADER`), if it has one."""
    return df.drop(columns=[DRAFT_HEADER]) if DRAFT_HEADER in df.columns else df


def _is_draft(df: pd.DataFrame) -> bool:
    return DRAFT_HEADER in df.columns


def _check_columns(df: pd.DataFrame, form_id: str, plan: Plan | None) -> None:
    expected = [zh for _, zh in headers(form_id, plan)]
    columns = list(df.columns)
    if _marker(df) is not None:  # the verification marker of mark_form
        columns = columns[:-1]
    if columns and columns[-1] == DRAFT_HEADER:  # the draft marker of annex3(draft=True)
        columns = columns[:-1]
    if columns != expected:
        raise InvalidArgument(
            "columns", f"not a {form_id} table: expected columns {', '.join(expected)}"
        )


_CORE_TIME = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")
_FIXED_TIME = b"2000-01-01T00:00:00Z"


def _deterministic_zip(data: bytes) -> bytes:
    """The same workbook with fixed timestamps, so that equal forms give equal bytes."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _CORE_TIME.sub(lambda m: m.group(1) + _FIXED_TIME + m.group(3), body)
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, body)
    return buf.getvalue()


def to_xlsx(
    df: pd.DataFrame,
    path: str | os.PathLike[str],
    form_id: str,
    plan: Plan | None = None,
) -> None:
    """Write a form as an Excel workbook (openpyxl); equal forms give equal bytes.

    The first sheet (``附件N``) holds the table with the Chinese header row; a
    second sheet ``说明`` names the form, its clause and the plan.  Every text
    cell is stored as text, never as a formula.
    """
    # optional dependency, imported when used; stubs (types-openpyxl) may be absent
    from openpyxl import Workbook  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    from openpyxl.styles import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
        Alignment,
        Font,
    )

    plan = plan or load_plan(BUILTIN_PLAN)
    _check_columns(df, form_id, plan)
    form = plan.form(form_id)
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet
    ws.title = f"附件{form.number}"
    ws.append([str(c) for c in df.columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for record in df.itertuples(index=False, name=None):
        ws.append([v if isinstance(v, str) else int(v) for v in record])
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
    for i, col in enumerate(df.columns, start=1):
        width = max([len(str(col))] + [len(str(v)) for v in df[col]])
        ws.column_dimensions[ws.cell(1, i).column_letter].width = min(60, 2 + 1.6 * width)
    ws.freeze_panes = "A2"
    about = wb.create_sheet("说明")
    marker = _marker(df)
    about_rows = [
        ("表名", "／".join(form.names)),
        ("Form", form.title_en),
        ("条款", form.clause),
        ("方案", plan.name.zh),
        ("行数", str(len(df))),
    ]
    if marker is not None:  # every sheet says how far the events are vouched for
        text = str(df[marker].iloc[0]) if len(df) else marker
        about_rows.insert(0, ("校验 Verification", text))
    if _is_draft(df):  # a draft says so on every sheet and every printed page
        about_rows.insert(0, (DRAFT_HEADER, DRAFT_TEXT))
        for sheet in (ws, about):
            sheet.oddHeader.center.text = DRAFT_TEXT
            sheet.evenHeader.center.text = DRAFT_TEXT
    for key, value in about_rows:
        about.append([key, value])
        about.cell(about.max_row, 2).data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    output.write_bytes(path, _deterministic_zip(buf.getvalue()))


def read_xlsx(path: str | os.PathLike[str], form_id: str, plan: Plan | None = None) -> pd.DataFrame:
    """Read a form written by :func:`to_xlsx` back into an equal DataFrame."""
    import pandas as pd  # noqa: PLC0415 (optional dependency)

    ints = set(_int_columns(form_id, plan))
    cols = [zh for _, zh in headers(form_id, plan)]
    dtypes: dict[str, Any] = {c: (object if c in ints else str) for c in cols}
    dtypes.update(dict.fromkeys(_MARKER_HEADERS, str))
    dtypes[DRAFT_HEADER] = str
    df = pd.read_excel(path, sheet_name=0, dtype=dtypes, keep_default_na=False)
    _check_columns(df, form_id, plan)
    marker = _marker(df)
    if marker is not None:
        df = df.drop(columns=[marker])
    df = _without_draft(df)
    return _typed(df, form_id, plan)


# =========================================================================== #
# The community dossier (一区一档)


def _events_digest(groups: Mapping[str, Sequence[Event]]) -> str:
    h = hashlib.sha256()
    for tid in sorted(groups):
        for e in groups[tid]:
            b = canonical_bytes(e)
            h.update(len(b).to_bytes(8, "big") + b)
    return h.hexdigest()


def _actor(plan: Plan, e: Event) -> dict[str, str]:
    return {
        "agency": e.actor.agency,
        "agency_zh": _agency_zh(plan, e.actor.agency),
        "person": e.actor.person,
    }


def _ticket_entry(
    plan: Plan, tid: str, evs: Sequence[Event], head: str | None, tz: ZoneInfo
) -> dict[str, Any]:
    s = fold(evs, tid)
    report = next((e for e in evs if e.kind == "report"), None)
    evidence = [
        {
            "kind": ev.kind,
            "kind_zh": _EVIDENCE.get(ev.kind, ev.kind),
            "sha256": ev.sha256,
            "note": ev.note,
            "seq": e.seq,
            "at": e.at.isoformat(),
        }
        for e in evs
        for ev in e.evidence
    ]
    rechecks = [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "result": "pass" if e.kind == "recheck_pass" else "fail",
            "result_zh": "合格" if e.kind == "recheck_pass" else "不合格",
            "agencies": list(e.payload.get("agencies", [])),
            "agencies_zh": {
                str(a): _agency_zh(plan, str(a)) for a in e.payload.get("agencies", [])
            },
            "reason": str(e.payload.get("reason", "")),
            "by": _actor(plan, e),
        }
        for e in evs
        if e.kind in ("recheck_pass", "recheck_fail")
    ]
    signoffs = [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "signers": [
                {
                    "agency": str(x.get("agency", "")),
                    "agency_zh": _agency_zh(plan, str(x.get("agency", ""))),
                    "person": str(x.get("person", "")),
                }
                for x in e.payload.get("signers", [])
            ],
        }
        for e in evs
        if e.kind == "sign_off"
    ]
    history = []
    for e in evs:
        item: dict[str, Any] = {
            "seq": e.seq,
            "event_id": e.event_id,
            "kind": e.kind,
            "kind_zh": _kind_zh(e.kind),
            "at": e.at.isoformat(),
            "local": _local(e.at, tz, "%Y-%m-%d %H:%M"),
            "actor": _actor(plan, e),
            "rules": list(e.rules),
        }
        for key in ("deadline", "reason", "targets"):
            if key in e.payload and e.payload[key] not in ("", [], None):
                item[key] = e.payload[key]
        history.append(item)
    return {
        "ticket_id": tid,
        "town": s.town,
        "community": s.community,
        "category": s.category,
        "category_zh": _category_zh(plan, s.category),
        "subtype": s.subtype,
        "subtype_zh": _subtype_zh(plan, s.category, s.subtype),
        "location": s.location,
        "location_zh": _LOCATION.get(s.location, s.location),
        "source": s.source,
        "source_zh": _SOURCE.get(s.source, s.source),
        "description": str(report.payload.get("description", "")) if report else "",
        "state": s.state,
        "state_zh": _state_zh(s.state),
        "closed": s.state in _FILED,
        "reported_at": s.reported_at.isoformat() if s.reported_at else None,
        "deadline": s.deadline.isoformat() if s.deadline else None,
        "reopened": s.reopened,
        "failed_rechecks": s.failed_rechecks,
        "photos_before": [x["sha256"] for x in evidence if x["kind"] == "photo_before"],
        "photos_after": [x["sha256"] for x in evidence if x["kind"] == "photo_after"],
        "evidence": evidence,
        "rechecks": rechecks,
        "signoffs": signoffs,
        "signers": [
            {"agency": a.agency, "agency_zh": _agency_zh(plan, a.agency), "person": a.person}
            for a in s.signers
        ],
        "rules": sorted({r for e in evs for r in e.rules}),
        "events": len(evs),
        "chain_head": head,
        "history": history,
    }


def dossier(
    events: Iterable[Event],
    community: str,
    plan: Plan | None = None,
    heads: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The 一区一档 of one community as JSON-compatible data (R-TKT-SIGNOFF, R-DUE-DOSSIER).

    Every ticket of the community with its photos (by SHA-256), re-checks,
    sign-offs, history and rule ids; ``heads`` (ticket id -> hash-chain head,
    hex) adds each ticket's head from an event store.  ``events_digest`` is a
    SHA-256 over the canonical bytes of the community's events, so a reader
    can check the dossier against the log.  A ticket counts as closed (已整改销号)
    only once signed off (R-TKT-SIGNOFF): a passed re-check awaiting the signatures
    is still open.  A community with no ticket in the log raises
    :class:`InvalidArgument` naming ``community``.
    """
    plan = plan or load_plan(BUILTIN_PLAN)
    tz = ZoneInfo(plan.timezone)
    groups = group_events(events)
    mine: dict[str, list[Event]] = {}
    known: set[str] = set()
    for tid, evs in groups.items():
        report = next((e for e in evs if e.kind == "report"), None)
        c = str(report.payload.get("community", "")) if report else ""
        known.add(c)
        if c == community:
            mine[tid] = evs
    if not mine:
        listed = ", ".join(sorted(known)[:20])
        raise InvalidArgument(
            "community", f"no ticket of {community!r} in the log; known: {listed}"
        )
    heads = dict(heads or {})
    for tid, head in heads.items():
        if not isinstance(head, str) or not re.fullmatch(r"[0-9a-f]{16,128}", head):
            raise InvalidArgument(f"heads.{tid}", "expected a lowercase hex hash")
    tickets = [_ticket_entry(plan, tid, evs, heads.get(tid), tz) for tid, evs in mine.items()]
    rule_ids = sorted({r for t in tickets for r in t["rules"]})
    rules = []
    for rid in rule_ids:
        try:
            entry = plan.rule(rid)
            rules.append({"id": rid, "clause": entry.clause, "title_zh": entry.title_zh})
        except InvalidArgument:
            rules.append({"id": rid, "clause": "", "title_zh": ""})
    by_category = {c.id: 0 for c in plan.categories}
    for t in tickets:
        by_category[t["category"]] = by_category.get(t["category"], 0) + 1
    closed = sum(1 for t in tickets if t["closed"])
    return {
        "format": DOSSIER_FORMAT,
        "plan": plan.id,
        "plan_name": plan.name.zh,
        "community": community,
        "town": "、".join(sorted({t["town"] for t in tickets})),
        "summary": {
            "tickets": len(tickets),
            "closed": closed,
            "open": len(tickets) - closed,
            "by_category": by_category,
        },
        "tickets": tickets,
        "rules": rules,
        "events_digest": _events_digest(mine),
        "chain_heads": {t: heads[t] for t in sorted(heads) if t in mine},
    }


def mark_dossier(data: Mapping[str, Any], verification: Mapping[str, Any]) -> dict[str, Any]:
    """The dossier with ``verified`` (true or false) and the ``verification`` it was built under.

    :func:`dossier_html` shows it at the top and bottom of every printed page.
    """
    out = dict(data)
    out["verified"] = verification.get("verified") is True
    out["verification"] = dict(verification)
    return out


def dossier_json(data: Mapping[str, Any]) -> bytes:
    """The dossier as deterministic JSON bytes: sorted keys, UTF-8, two-space indent."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def dossier_html(data: Mapping[str, Any]) -> str:
    """The dossier as a printable HTML page (template ``dossier.html.j2``, every text escaped).

    Departments are shown by their Chinese names (the id in a tooltip); with a
    ``verification`` (:func:`mark_dossier`) its statement is printed at the top
    and bottom of every page and in the footer.
    """
    from fireflow.templates import render  # noqa: PLC0415 (jinja2 is loaded only for pages)

    verification = data.get("verification")
    page_mark = None
    title = f"一区一档 · {data['community']}"
    statement = ""
    if isinstance(verification, Mapping):
        statement = verification_text(verification)
        anchored = verification.get("verified") is True and verification.get("checkpoint")
        cls = "mark" if anchored and not verification.get("simulated") else "mark unverified"
        page_mark = {"cls": cls, "text": statement}
        title = f"{verification_header(verification)} · {title}"
    return render(
        "dossier.html.j2", title=title, data=data, page_mark=page_mark, statement=statement
    )
