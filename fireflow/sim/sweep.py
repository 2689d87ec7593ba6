"""Scenarios and Monte Carlo sweeps (seeds x scenarios) on local processes or Dask.

A :class:`Scenario` is a name, a :class:`~fireflow.sim.Behaviour` and
optionally its own plan (built with :func:`plan_overrides` or
:func:`shorten_phase`).  :func:`sweep` runs every (scenario, seed) pair and
returns one KPI row per run; the rows depend only on the inputs and the seed,
so the table is the same whichever executor ran it (``serial``,
``processes`` for a local :class:`~concurrent.futures.ProcessPoolExecutor`, or
``dask`` for a :mod:`dask.distributed` cluster).

Plans travel to the workers as canonical JSON text and are validated again
there; each worker thread keeps its own copy (a plan's calendar fills its
tables lazily and is not shared between threads).

>>> from fireflow import load_plan
>>> plan = load_plan("changle-2022")
>>> short = shorten_phase(plan, "rectification", months=1)
>>> short.phase("rectification").end, short.phase("spot_check").start
(datetime.date(2022, 6, 15), datetime.date(2022, 6, 16))
>>> {d.id: d.nominal for d in short.deadlines()}["dossier"]
datetime.date(2022, 6, 15)
"""

from __future__ import annotations

import calendar as _stdcal
import copy
import json
import multiprocessing
import operator
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import attrs

from fireflow._html import heading, page, table_block
from fireflow.errors import InputLimitExceeded, InvalidArgument
from fireflow.plan import Plan, validate_plan_data
from fireflow.sim.behaviour import Behaviour
from fireflow.sim.engine import simulate
from fireflow.sim.extra import require_sim_extra
from fireflow.sim.population import Population
from fireflow.sim.result import KPI_LABELS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Executor",
    "Scenario",
    "Task",
    "plan_overrides",
    "run_task",
    "shorten_phase",
    "summarise",
    "sweep",
]

#: Where a sweep runs: this process, local processes, or a Dask cluster.
Executor = Literal["serial", "processes", "dask"]
_STEP = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")
_PATH = re.compile(r"[^.\[\]]+(?:\[[^\]]+\]|\.[^.\[\]]+)*")


# =========================================================================== #
# Scenarios and plan overrides


@attrs.frozen
class Scenario:
    """A named what-if: a behaviour and, optionally, a plan of its own."""

    name: str
    behaviour: Behaviour = attrs.field(factory=Behaviour)
    plan: Plan | None = attrs.field(default=None, eq=False, hash=False)

    def _repr_html_(self) -> str:
        """Its name, its plan (if its own) and the settings of the behaviour it changes."""
        default = Behaviour()
        rows = [
            [a.name, getattr(self.behaviour, a.name), getattr(default, a.name)]
            for a in attrs.fields(Behaviour)
            if getattr(self.behaviour, a.name) != getattr(default, a.name)
        ]
        plan = "" if self.plan is None else f" · plan {self.plan.id}"
        return page(
            heading(f"情景 Scenario {self.name}{plan}"),
            table_block(
                ["设定 setting", "值 value", "默认 default"],
                rows or [["(默认 defaults)", "", ""]],
            ),
        )


def _steps(path: str) -> list[str]:
    if not _PATH.fullmatch(path):
        raise InvalidArgument("plan_overrides", f"cannot read the path {path!r}")
    return [m.group(1) or m.group(2) for m in _STEP.finditer(path)]


def _child(node: Any, step: str, path: str) -> tuple[Any, Any]:
    """(container, key) of ``step`` inside ``node``: list index, item id, or mapping key."""
    if isinstance(node, list):
        if step.lstrip("-").isdigit():
            i = int(step)
            if not -len(node) <= i < len(node):
                raise InvalidArgument("plan_overrides", f"{path}: no item {i}")
            return node, i
        for i, item in enumerate(node):
            if isinstance(item, Mapping) and item.get("id", item.get("trigger")) == step:
                return node, i
        raise InvalidArgument("plan_overrides", f"{path}: no item with id {step!r}")
    if isinstance(node, dict):
        return node, step
    raise InvalidArgument("plan_overrides", f"{path}: {step!r} is inside a plain value")


def plan_overrides(plan: Plan, changes: Mapping[str, Any]) -> Plan:
    """A copy of ``plan`` with some fields of its data changed, validated like a plan file.

    Keys are paths into :meth:`~fireflow.plan.Plan.to_data`: ``settings.max_failed_rechecks``,
    ``phases[2].end`` or, by id, ``phases[rectification].end``.  Dates may be given as
    :class:`datetime.date` or ISO text.  Every problem of the result is reported at once
    (:class:`~fireflow.errors.PlanError`).

    >>> from fireflow import load_plan
    >>> p = plan_overrides(load_plan("changle-2022"),
    ...                    {"settings.rectification_days.fire_lane_vehicle": 5})
    >>> p.rectification_period("fire_lane_vehicle")
    (5, 'calendar')
    """
    data = copy.deepcopy(plan.to_data())
    for path, value in changes.items():
        steps = _steps(path)
        node: Any = data
        for step in steps[:-1]:
            container, key = _child(node, step, path)
            node = container[key]
        container, key = _child(node, steps[-1], path)
        container[key] = value.isoformat() if isinstance(value, date) else value
    return validate_plan_data(data, source=f"{plan.id} with overrides")


def _months_before(d: date, months: int) -> date:
    m = d.month - 1 - months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, _stdcal.monthrange(y, m)[1]))


def shorten_phase(
    plan: Plan,
    phase_id: str,
    *,
    months: int = 0,
    days: int = 0,
    move_deadlines: bool = True,
) -> Plan:
    """``plan`` with a phase ending ``months`` and ``days`` earlier; the next phase starts earlier.

    Months count like the Civil Code (07-15 one month earlier is 06-15).  With
    ``move_deadlines``, fixed report deadlines on the phase's old last day
    (the dossier of 07-15) move with it; progress reports follow the phase end
    by themselves.
    """
    phase = plan.phase(phase_id)
    new_end = _months_before(phase.end, months) - timedelta(days=days)
    changes: dict[str, Any] = {f"phases[{phase_id}].end": new_end}
    ids = [p.id for p in plan.phases]
    i = ids.index(phase_id)
    if i + 1 < len(ids):
        changes[f"phases[{ids[i + 1]}].start"] = new_end + timedelta(days=1)
    if move_deadlines:
        for d in plan.deadlines_fixed:
            if d.nominal == phase.end:
                changes[f"deadlines[{d.id}].nominal"] = new_end
    return plan_overrides(plan, changes)


# =========================================================================== #
# Sweeps


class Task(NamedTuple):
    """One run of a sweep, as sent to a worker (picklable, plan as JSON text)."""

    scenario: str
    seed: int
    plan_json: str
    population: Population
    behaviour: Behaviour
    digest: bool


_local = threading.local()


def plan_from_json(plan_json: str) -> Plan:
    """The plan a task carries as JSON, validated once per worker thread (a small cache).

    Shared by the sweep's and the shards' workers, which receive plans as JSON text.
    """
    cache: dict[str, Plan] | None = getattr(_local, "plans", None)
    if cache is None:
        cache = _local.plans = {}
    found = cache.get(plan_json)
    if found is None:
        if len(cache) >= 8:
            cache.clear()
        found = cache[plan_json] = validate_plan_data(json.loads(plan_json), source="<sweep>")
    return found


def run_task(task: Task) -> dict[str, Any]:
    """Run one task of a sweep; return its row (scenario, seed, the KPIs, optionally the digest)."""
    result = simulate(
        plan_from_json(task.plan_json),
        task.population,
        task.behaviour,
        seed=task.seed,
        name=task.scenario,
        log="digest" if task.digest else "none",
    )
    row: dict[str, Any] = {"scenario": task.scenario, "seed": task.seed, **result.kpis}
    if task.digest:
        row["log_digest"] = result.log_digest()
    return row


def _scenarios(
    scenarios: Sequence[Scenario] | Mapping[str, Behaviour | Scenario],
) -> list[Scenario]:
    out: list[Scenario] = []
    if isinstance(scenarios, Mapping):
        for name, value in scenarios.items():
            out.append(value if isinstance(value, Scenario) else Scenario(name, value))
    else:
        out = list(scenarios)
    names = [s.name for s in out]
    if not out or len(set(names)) != len(names):
        raise InvalidArgument("scenarios", "need at least one scenario, with distinct names")
    return out


def _plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_data(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


#: The most runs (scenarios x seeds) one :func:`sweep` takes, and the most workers.
MAX_SWEEP_RUNS = 10_000
MAX_WORKERS = 256


def sweep(
    plan: Plan,
    population: Population,
    scenarios: Sequence[Scenario] | Mapping[str, Behaviour | Scenario],
    seeds: Iterable[int],
    *,
    executor: Executor = "processes",
    workers: int = 2,
    client: Any = None,
    digest: bool = False,
) -> pd.DataFrame:
    """Run every (scenario, seed) and return the KPI table, one row per run.

    Rows are in scenario order, then seed order; columns are ``scenario``,
    ``seed``, the KPIs (:data:`~fireflow.sim.KPI_LABELS`) and, with ``digest``,
    ``log_digest`` (the SHA-256 of the run's event log).  ``executor``:
    ``serial`` (this process), ``processes`` (``workers`` local processes,
    started with ``spawn``) or ``dask`` (``client``, a
    :class:`dask.distributed.Client`; without one a ``LocalCluster`` of
    ``workers`` processes is started and closed).
    """
    require_sim_extra()
    import pandas as pd  # noqa: PLC0415

    seed_list: list[int] = []
    for i, s in enumerate(seeds):  # a generator of seeds is read no further than the limit
        if len(seed_list) >= MAX_SWEEP_RUNS:
            raise InputLimitExceeded("seeds", f"more than {MAX_SWEEP_RUNS:,} seeds")
        try:
            seed_list.append(operator.index(s))  # ints, numpy integers; not floats or text
        except TypeError:
            raise InvalidArgument(f"seeds[{i}]", f"expected a whole number, got {s!r}") from None
    if not seed_list:
        raise InvalidArgument("seeds", "need at least one seed")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidArgument("workers", f"expected 1 to {MAX_WORKERS}, got {workers!r}")
    scenario_list = _scenarios(scenarios)
    runs = len(scenario_list) * len(seed_list)
    if runs > MAX_SWEEP_RUNS:
        raise InputLimitExceeded(
            "seeds",
            f"{len(scenario_list)} scenarios x {len(seed_list)} seeds = {runs:,} runs "
            f"(at most {MAX_SWEEP_RUNS:,})",
        )
    base = _plan_json(plan)
    tasks = [
        Task(
            s.name,
            seed,
            _plan_json(s.plan) if s.plan is not None else base,
            population,
            s.behaviour,
            digest,
        )
        for s in scenario_list
        for seed in seed_list
    ]
    if executor == "serial":
        rows = [run_task(t) for t in tasks]
    elif executor == "processes":
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
            rows = list(pool.map(run_task, tasks))
    elif executor == "dask":
        rows = _dask(tasks, client, workers)
    else:
        raise InvalidArgument("executor", f"expected serial, processes or dask, got {executor!r}")
    columns = ["scenario", "seed", *KPI_LABELS, *(["log_digest"] if digest else [])]
    return pd.DataFrame(rows, columns=columns)


def _dask(tasks: list[Task], client: Any, workers: int) -> list[dict[str, Any]]:
    import dask.distributed  # noqa: PLC0415

    distributed: Any = dask.distributed  # its constructors are untyped
    Client, LocalCluster = distributed.Client, distributed.LocalCluster

    if client is not None:
        futures = client.map(run_task, tasks, pure=False)
        return list(client.gather(futures))
    with (
        LocalCluster(
            n_workers=max(1, workers),
            threads_per_worker=1,
            processes=True,
            # any free port: distributed serves HTTP even without a dashboard, and
            # its default 8787 may be taken on a shared machine (a warning, then)
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as own,
    ):
        futures = own.map(run_task, tasks, pure=False)
        return list(own.gather(futures))


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of every KPI per scenario (scenarios in table order)."""
    numeric = table.drop(columns=[c for c in ("seed", "log_digest") if c in table.columns])
    return numeric.groupby("scenario", sort=False).agg(["mean", "std"])
