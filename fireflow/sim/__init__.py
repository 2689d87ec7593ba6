"""The what-if simulator (推演): a campaign's timeline under the real rules.

A discrete-event simulation over the plan's calendar that drives every ticket
through the real :func:`~fireflow.ticket.decide` and
:func:`~fireflow.ticket.evolve`.  Inputs: a plan, a population
(:func:`load_population` from an Annex 4-shaped CSV, or
:func:`generate_population`) and a :class:`Behaviour`; output: a
:class:`SimResult` with timelines, KPIs, the event log and plots.  Sweeps over
seeds and scenarios run on local processes or on Dask (:func:`sweep`).
:func:`calibrate` fits the behaviour to a real or simulated event log, and
:mod:`fireflow.sim.log` writes a run's log as a store that the document
commands (dossier, forms, report status) read.

Importing this package needs neither pandas nor matplotlib; the tables and
plots do (``pip install 'fireflow[sim]'``).

>>> from fireflow import load_plan
>>> result = simulate(load_plan("changle-2022"), generate_population(10, seed=1), seed=1)
>>> result.kpis["communities"], result.kpis["tickets"] > 0
(10, True)
"""

from fireflow.sim.behaviour import Behaviour
from fireflow.sim.calibrate import Calibration, Estimate, calibrate
from fireflow.sim.engine import simulate, stream
from fireflow.sim.population import (
    Community,
    Population,
    PopulationParams,
    generate_population,
    load_population,
    parse_population,
)
from fireflow.sim.result import KPI_LABELS, SimResult, compare
from fireflow.sim.sweep import Scenario, plan_overrides, shorten_phase, summarise, sweep

__all__ = [
    "KPI_LABELS",
    "Behaviour",
    "Calibration",
    "Community",
    "Estimate",
    "Population",
    "PopulationParams",
    "Scenario",
    "SimResult",
    "calibrate",
    "compare",
    "generate_population",
    "load_population",
    "parse_population",
    "plan_overrides",
    "shorten_phase",
    "simulate",
    "stream",
    "summarise",
    "sweep",
]
