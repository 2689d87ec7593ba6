"""One campaign split by town, run on several processes or a Dask cluster, merged exactly.

Towns are independent in the simulator: a town's tickets, events and numbers
depend only on the town, the plan, the behaviour, the seed (randomness is drawn
per community, see :mod:`fireflow.sim.engine`) and the district-wide spot-check
draw.  So :func:`simulate_sharded` (what :func:`~fireflow.sim.simulate` calls)
splits the towns into shards, runs each shard as its own run, and merges the
shards' summaries into one :class:`~fireflow.sim.SimResult`.  Everything is
ordered by town, never by which shard finished first, so the merged result is
the same, byte for byte, for any number of shards, any partition of the towns
and any order of arrival; a run in one process is one shard of every town,
merged the same way.

District-wide parts:

* the report obligations (六(六)) are per town (the ledger per community) and
  their submissions draw per obligation: each shard judges its towns' and the
  merge adds the counts up;
* the spot-check draw (五(四)) depends only on the communities and the seed,
  unless the plan's draw base is ``with_problems`` (the communities that have a
  ticket when the spot check starts).  Then each shard first runs up to the
  spot check and reports its communities with tickets, and runs again given
  the district's list: the first part of the campaign is paid twice, the
  result is exact;
* KPIs over the district are computed from the merged counts.

What a shard sends back is a summary: per town its ticket count, the tickets'
report and filing days, its SHA-256 digest of the town's events, its
escalations and spot checks, its report obligations' counts, and the
day-by-day counts.  Events and final
ticket states travel only with ``log="keep"``.

>>> from fireflow import load_plan
>>> from fireflow.sim import generate_population, simulate
>>> plan, pop = load_plan("changle-2022"), generate_population(40, seed=2)
>>> one = simulate(plan, pop, seed=3, log="digest")
>>> parts = [[0, 5, 9], [1, 2, 3, 4], [6, 7, 8, *range(10, len(pop.towns))]]
>>> split = simulate_sharded(plan, pop, seed=3, log="digest", partition=parts[::-1])
>>> split.log_digest() == one.log_digest(), split.kpis == one.kpis, split.daily == one.daily
(True, True, True)
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import multiprocessing
import operator
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import attrs

from fireflow.errors import FireflowError, InvalidArgument
from fireflow.events import Event
from fireflow.plan import Plan
from fireflow.sim.behaviour import Behaviour
from fireflow.sim.engine import LogMode, _Run, cyclic_gc_paused, stalling_companies
from fireflow.sim.population import Population
from fireflow.sim.result import (
    AccountabilityRecord,
    EscalationRecord,
    ReportRecord,
    SimResult,
    SpotCheckRecord,
)
from fireflow.ticket import TicketState

__all__ = [
    "MAX_SHARD_WORKERS",
    "SCHEDULER_TIMEOUT",
    "SchedulerUnreachable",
    "ShardOutput",
    "connect_scheduler",
    "merge",
    "probe_scheduler",
    "run_shard",
    "simulate_sharded",
    "split_towns",
]

#: The most local worker processes one run takes.
MAX_SHARD_WORKERS = 256
#: Seconds a Dask scheduler has to accept the connection and answer the handshake.
SCHEDULER_TIMEOUT = 10.0


class SchedulerUnreachable(FireflowError):
    """A Dask scheduler that cannot be used: refused, silent past the timeout, or
    an address whose transport needs settings fireflow does not have (``tls://``
    without Dask's TLS configuration).  ``field`` is ``scheduler``."""

    def __init__(self, address: str, reason: str) -> None:
        self.field = "scheduler"
        self.address = address
        super().__init__(f"scheduler: cannot use {address} (无法连接调度器): {reason}")


def _dask() -> Any:
    try:
        import dask.distributed  # noqa: PLC0415 (the optional sim extra)
    except ImportError:
        return None
    return dask.distributed


async def _identity(distributed: Any, address: str, timeout: float) -> Any:
    comm = await distributed.comm.connect(
        address, timeout=timeout, **distributed.Security().get_connection_args("client")
    )
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, *, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Check that ``address`` is a Dask scheduler answering within ``timeout`` seconds.

    The connection and the handshake (an ``identity`` request and its answer)
    are bounded together: a port that accepts and never answers, a refused
    connection, an answer that is not a scheduler's, and a ``tls://`` address
    without Dask's TLS settings (``distributed.comm.tls.*``) all raise
    :class:`SchedulerUnreachable`.

    >>> probe_scheduler("tls://127.0.0.1:9", timeout=0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fireflow.sim.shard.SchedulerUnreachable: scheduler: cannot use tls://127.0.0.1:9 ...
    """
    distributed = _dask()
    if distributed is None:
        raise SchedulerUnreachable(
            address, "dask.distributed is not installed (pip install 'dask[distributed]')"
        )
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(distributed, address, timeout), timeout))
    except TimeoutError:
        raise SchedulerUnreachable(
            address, f"no answer to the handshake within {timeout:g} s (握手超时)"
        ) from None
    except TypeError as exc:  # the TLS transport without an SSL context, a missing transport
        hint = ""
        if address.startswith(("tls://", "wss://")):
            hint = (
                "; a tls:// scheduler needs Dask's TLS settings "
                "(distributed.comm.tls.ca-file, client.cert, client.key) (未配置 TLS)"
            )
        raise SchedulerUnreachable(address, f"{exc}{hint}") from None
    except (OSError, ValueError, ImportError) as exc:
        raise SchedulerUnreachable(address, str(exc) or type(exc).__name__) from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise SchedulerUnreachable(address, "the answer is not a Dask scheduler's (不是调度器)")


def connect_scheduler(address: str, *, timeout: float = SCHEDULER_TIMEOUT) -> Any:
    """A ``dask.distributed.Client`` for a scheduler that answered :func:`probe_scheduler`.

    Bad addresses and silent schedulers raise :class:`SchedulerUnreachable`
    after at most ``timeout`` seconds of the probe, never a wait of minutes.
    """
    probe_scheduler(address, timeout=timeout)
    distributed = _dask()
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TypeError, ValueError) as exc:  # TimeoutError is an OSError
        raise SchedulerUnreachable(address, str(exc) or type(exc).__name__) from None


@attrs.define(eq=False)
class ShardOutput:
    """What one shard sends back: summaries of its towns, in town order.

    ``towns`` are the shard's town indices, ascending; every per-town list
    follows them.  Ticket arrays are town-major (the first town's tickets in the
    order they were recorded, then the next town's).  An escalation's
    ``ticket`` is the ticket's number within its town.  ``with_tickets`` is set
    only by a first pass that stopped at the spot check.
    """

    towns: list[int]
    town_counts: list[int]
    states: list[TicketState] | None
    ticket_report_day: array[int]
    ticket_archived_day: array[int]
    daily: list[tuple[int, ...]]
    town_updates: list[tuple[array[int], array[int]]]
    town_events: list[list[Event]] | None
    town_digests: list[bytes] | None
    n_events: int
    kind_counts: dict[str, int]
    escalations: list[list[EscalationRecord]]
    spot_checked: list[list[SpotCheckRecord]]
    spot_required: int
    dossier_stats: dict[str, int] | None
    ever_overdue: int
    stale_actions: int
    inspections: int
    inspections_third_party: int
    reports: list[ReportRecord] = attrs.field(factory=list)
    report_escalations: list[list[EscalationRecord]] = attrs.field(factory=list)
    accountability: list[list[AccountabilityRecord]] = attrs.field(factory=list)
    with_tickets: list[int] | None = None


def run_shard(
    plan: Plan,
    population: Population,
    behaviour: Behaviour,
    seed: int,
    log: LogMode,
    towns: Sequence[int],
    *,
    has_problems: frozenset[int] | None = None,
    stop_at_spot_check: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ShardOutput:
    """Run the towns ``towns`` (indices in ``population.towns``) of one campaign."""
    run = _Run(plan, population, behaviour, seed, log, towns, has_problems)
    if stop_at_spot_check:
        reports: list[ReportRecord] = []
        report_escalations: list[list[EscalationRecord]] = []
    else:  # independent of the tickets: done first, while memory is low
        reports, report_escalations = run.reports()
    with cyclic_gc_paused():
        run.run(progress, stop_at_spot_check=stop_at_spot_check)
    if stop_at_spot_check:
        return _first_pass(run)
    order = [k for t in run.shard_towns for k in run.town_tickets[t]]
    return ShardOutput(
        towns=run.shard_towns,
        town_counts=[len(run.town_tickets[t]) for t in run.shard_towns],
        states=[run.states[k] for k in order] if log == "keep" else None,
        ticket_report_day=array("i", [run.t_report_day[k] for k in order]),
        ticket_archived_day=array("i", [run.t_archived_day[k] for k in order]),
        daily=run.daily,
        town_updates=run.town_updates,
        town_events=[run.town_events[t] for t in run.shard_towns] if log == "keep" else None,
        town_digests=[run.town_hash[t].digest() for t in run.shard_towns]
        if log != "none"
        else None,
        n_events=run.n_events,
        kind_counts=run.kind_counts,
        escalations=[run.escalations[t] for t in run.shard_towns],
        spot_checked=[run.spot_checked[t] for t in run.shard_towns],
        spot_required=run.spot_required,
        dossier_stats=run.dossier_stats,
        ever_overdue=run.ever_overdue,
        stale_actions=run.stale_actions,
        inspections=run.inspections,
        inspections_third_party=run.inspections_third_party,
        reports=reports,
        report_escalations=report_escalations,
        accountability=[run.accountability[t] for t in run.shard_towns],
    )


def _first_pass(run: _Run) -> ShardOutput:
    return ShardOutput(
        towns=run.shard_towns,
        town_counts=[],
        states=None,
        ticket_report_day=array("i"),
        ticket_archived_day=array("i"),
        daily=[],
        town_updates=[],
        town_events=None,
        town_digests=None,
        n_events=0,
        kind_counts={},
        escalations=[],
        spot_checked=[],
        spot_required=0,
        dossier_stats=None,
        ever_overdue=0,
        stale_actions=0,
        inspections=0,
        inspections_third_party=0,
        with_tickets=sorted(set(run.t_comm)),
    )


def split_towns(population: Population, behaviour: Behaviour, shards: int) -> list[list[int]]:
    """Split the towns into ``shards`` runs of consecutive towns with about equal work.

    The work of a town is taken as its expected hazards: the sum of its
    communities' size factors (households / reference) ** exponent.
    """
    weight = [0.0] * len(population.towns)
    index = {t: i for i, t in enumerate(population.towns)}
    ref, exp = behaviour.reference_households, behaviour.size_exponent
    for c in population.communities:
        weight[index[c.town]] += (c.households / ref) ** exp if c.households > 0 else 1.0
    n = len(weight)
    shards = max(1, min(shards, n))
    total = sum(weight) or 1.0
    # part i ends before the first town whose middle lies past i / shards of the total
    # weight; every part keeps at least one town
    edges, done, t = [0], 0.0, 0
    for i in range(1, shards):
        while t < n - (shards - i) and (
            t == edges[-1] or done + weight[t] / 2 < total * i / shards
        ):
            done += weight[t]
            t += 1
        edges.append(t)
    edges.append(n)
    return [list(range(a, b)) for a, b in itertools.pairwise(edges)]


def _check_partition(partition: Sequence[Sequence[int]], n_towns: int) -> list[list[int]]:
    seen: list[int] = []
    parts: list[list[int]] = []
    for i, part in enumerate(partition):
        try:
            towns = [operator.index(t) for t in part]
        except TypeError:
            raise InvalidArgument(f"partition[{i}]", "expected town indices") from None
        if not towns:
            raise InvalidArgument(f"partition[{i}]", "a shard needs at least one town")
        parts.append(towns)
        seen.extend(towns)
    if sorted(seen) != list(range(n_towns)):
        raise InvalidArgument(
            "partition", f"expected every town index 0..{n_towns - 1} exactly once"
        )
    return parts


# ====================================================================== merging
def merge(
    frame: _Run,
    outputs: Sequence[ShardOutput],
    *,
    name: str,
    log: LogMode,
) -> SimResult:
    """Merge the shards of one campaign into one result (any order of ``outputs``).

    ``frame`` is a run of no towns: the plan's days, the population's indices.
    """
    n_towns = len(frame.towns)
    owner: list[tuple[int, int, int]] = [(-1, 0, 0)] * n_towns  # (output, position, start)
    for o, out in enumerate(outputs):
        start = 0
        for i, (t, count) in enumerate(zip(out.towns, out.town_counts, strict=True)):
            if owner[t][0] != -1:
                raise InvalidArgument("partition", f"town {t} is in two shards")
            owner[t] = (o, i, start)
            start += count
    if any(o == -1 for o, _, _ in owner):
        raise InvalidArgument("partition", "a town is in no shard")

    states: list[TicketState] | None = [] if log == "keep" else None
    events: list[Event] | None = [] if log == "keep" else None
    ticket_town = array("i")
    report_day = array("i")
    archived_day = array("i")
    escalations = [
        e for t in range(n_towns) for e in outputs[owner[t][0]].report_escalations[owner[t][1]]
    ]
    spot_checked: list[SpotCheckRecord] = []
    accountability: list[AccountabilityRecord] = []
    digests: list[bytes] = []
    for t in range(n_towns):
        o, i, start = owner[t]
        out = outputs[o]
        count = out.town_counts[i]
        end = start + count
        offset = len(ticket_town)
        ticket_town.extend([t] * count)
        report_day.extend(out.ticket_report_day[start:end])
        archived_day.extend(out.ticket_archived_day[start:end])
        if states is not None and out.states is not None:
            states.extend(out.states[start:end])
        if events is not None and out.town_events is not None:
            events.extend(out.town_events[i])
        if out.town_digests is not None:
            digests.append(out.town_digests[i])
        escalations.extend(e._replace(ticket=offset + e.ticket) for e in out.escalations[i])
        spot_checked.extend(out.spot_checked[i])
        accountability.extend(a._replace(ticket=offset + a.ticket) for a in out.accountability[i])

    n_days = frame.n_days
    daily = [
        tuple(map(sum, zip(*(out.daily[d] for out in outputs), strict=True))) for d in range(n_days)
    ]
    kinds: dict[str, int] = {}
    for out in outputs:
        for k, v in out.kind_counts.items():
            kinds[k] = kinds.get(k, 0) + v
    reports = [
        first._replace(
            senders=sum(out.reports[i].senders for out in outputs),
            on_time=sum(out.reports[i].on_time for out in outputs),
            late=sum(out.reports[i].late for out in outputs),
            missing=sum(out.reports[i].missing for out in outputs),
        )
        for i, first in enumerate(outputs[0].reports)
    ]
    dossier: dict[str, int] | None = None
    if frame.dossier is not None and outputs[0].dossier_stats is not None:
        dossier = {}
        for out in outputs:
            for k, v in (out.dossier_stats or {}).items():
                dossier[k] = dossier.get(k, 0) + v
    return SimResult(
        name=name,
        plan=frame.plan,
        population=frame.population,
        behaviour=frame.b,
        seed=frame.seed,
        dates=frame.dates,
        active=frame.active,
        states=states,
        ticket_town=ticket_town,
        ticket_report_day=report_day,
        ticket_archived_day=archived_day,
        daily=daily,
        town_updates=[
            _merge_updates([out.town_updates[d] for out in outputs], frame.S) for d in range(n_days)
        ],
        events=events,
        digest=hashlib.sha256(b"".join(digests)).hexdigest() if log != "none" else None,
        n_events=sum(out.n_events for out in outputs),
        kind_counts=dict(sorted(kinds.items())),
        escalations=escalations,
        spot_checked=spot_checked,
        spot_required=outputs[0].spot_required,
        reports=reports,
        dossier=frame.dossier,
        dossier_stats=dossier,
        ever_overdue=sum(out.ever_overdue for out in outputs),
        stalling=sum(stalling_companies(frame.population, frame.b, frame.seed)),
        stale_actions=sum(out.stale_actions for out in outputs),
        inspections=sum(out.inspections for out in outputs),
        inspections_third_party=sum(out.inspections_third_party for out in outputs),
        accountability=accountability,
    )


def _merge_updates(
    blocks: list[tuple[array[int], array[int]]], width: int
) -> tuple[array[int], array[int]]:
    """One day's changed towns of every shard, as one block sorted by town."""
    blocks = [b for b in blocks if len(b[0])]
    if not blocks:
        return array("i"), array("i")
    if len(blocks) == 1:
        return blocks[0]
    blocks.sort(key=lambda b: b[0][0])
    towns, values = array("i"), array("i")
    if all(a[0][-1] < b[0][0] for a, b in itertools.pairwise(blocks)):
        for t, v in blocks:
            towns.extend(t)
            values.extend(v)
        return towns, values
    rows = sorted(
        (town, vals[i * width : i * width + width])
        for ts, vals in blocks
        for i, town in enumerate(ts)
    )
    for town, row in rows:
        towns.append(town)
        values.extend(row)
    return towns, values


# ===================================================================== running
@attrs.frozen
class _Context:
    """What every shard of a run shares (sent once per worker)."""

    plan_json: str
    population: Population
    behaviour: Behaviour
    seed: int
    log: LogMode


_worker_context: list[tuple[_Context, Plan]] = []


def _set_context(ctx: _Context) -> None:
    from fireflow.sim.sweep import plan_from_json  # noqa: PLC0415 (the thread-local plan cache)

    _worker_context[:] = [(ctx, plan_from_json(ctx.plan_json))]


def _process_shard(
    towns: list[int], has_problems: frozenset[int] | None, first: bool
) -> ShardOutput:
    ctx, plan = _worker_context[0]
    return run_shard(
        plan,
        ctx.population,
        ctx.behaviour,
        ctx.seed,
        ctx.log,
        towns,
        has_problems=has_problems,
        stop_at_spot_check=first,
    )


def _dask_shard(
    ctx: _Context, towns: list[int], has_problems: frozenset[int] | None, first: bool
) -> ShardOutput:
    from fireflow.sim.sweep import plan_from_json  # noqa: PLC0415

    return run_shard(
        plan_from_json(ctx.plan_json),
        ctx.population,
        ctx.behaviour,
        ctx.seed,
        ctx.log,
        towns,
        has_problems=has_problems,
        stop_at_spot_check=first,
    )


def _needs_first_pass(plan: Plan, behaviour: Behaviour) -> bool:
    """True when the spot-check draw depends on the tickets (base ``with_problems``)."""
    return plan.settings.spot_check.base == "with_problems" and any(
        behaviour.phase_sources.get(p.id) == "spot_check" for p in plan.phases
    )


def simulate_sharded(
    plan: Plan,
    population: Population,
    behaviour: Behaviour | None = None,
    *,
    seed: int = 0,
    name: str = "baseline",
    log: LogMode = "keep",
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    client: Any = None,
    partition: Sequence[Sequence[int]] | None = None,
) -> SimResult:
    """Run one campaign as shards and merge them (see the module docs).

    ``partition``: the shards, as lists of town indices (every town exactly
    once); by default :func:`split_towns` into one shard per worker.  Without
    ``workers`` and ``client`` the shards run one after the other in this
    process; with ``workers`` on local processes (``spawn``); with ``client``
    on Dask.
    """
    b = behaviour or Behaviour()
    frame = _Run(plan, population, b, seed, log, towns=())  # checks seed, log, behaviour
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidArgument("workers", f"expected a whole number of at least 1, got {workers!r}")
    if workers is not None and workers > MAX_SHARD_WORKERS:
        raise InvalidArgument("workers", f"at most {MAX_SHARD_WORKERS}, got {workers}")
    if partition is not None:
        parts = _check_partition(partition, len(frame.towns))
    else:
        n = workers or 1
        if client is not None:
            n = max(1, len(client.scheduler_info().get("workers", {})))
        parts = split_towns(population, b, n)
    first = _needs_first_pass(plan, b) and len(parts) > 1

    def one_pass(has: frozenset[int] | None, stop: bool) -> list[ShardOutput]:
        if client is not None:
            ctx = _Context(_plan_json(plan), population, b, seed, log)
            shared = client.scatter(ctx, broadcast=True)
            futures = [client.submit(_dask_shard, shared, p, has, stop, pure=False) for p in parts]
            return list(client.gather(futures))
        if workers is not None and workers > 1:
            ctx = _Context(_plan_json(plan), population, b, seed, log)
            mp = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=min(workers, len(parts)),
                mp_context=mp,
                initializer=_set_context,
                initargs=(ctx,),
            ) as pool:
                futures = [pool.submit(_process_shard, p, has, stop) for p in parts]
                return [f.result() for f in futures]
        single = progress if len(parts) == 1 and not stop else None
        return [
            run_shard(
                plan,
                population,
                b,
                seed,
                log,
                p,
                has_problems=has,
                stop_at_spot_check=stop,
                progress=single,
            )
            for p in parts
        ]

    has_problems: frozenset[int] | None = None
    if first:
        has_problems = frozenset(c for out in one_pass(None, True) for c in out.with_tickets or ())
    outputs = one_pass(has_problems, False)
    if progress is not None and (len(parts) > 1 or client is not None or (workers or 1) > 1):
        progress(frame.n_days, frame.n_days)
    return merge(frame, outputs, name=name, log=log)


def _plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_data(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
