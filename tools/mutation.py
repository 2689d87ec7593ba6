#!/usr/bin/env python3
"""Mutation testing of fireflow's core, with cosmic-ray, on a time budget.  Never run in CI.

For each core module this makes one-line changes ("mutants") with cosmic-ray's operators and runs
that module's own fast tests (``TESTS`` below) against each mutant: a mutant the tests fail on is
*killed*, one they pass on *survived* (the suite is blind to that change, or the change is
equivalent). The work happens in a throw-away copy of the working tree, so the checkout is never
left mutated, even when the run is interrupted.

    pip install -e '.[mutation]'
    nice -n 15 python tools/mutation.py --budget-minutes 30             # every module, sampled
    python tools/mutation.py --module store/chain --sample 40 --seed 7  # one module
    python tools/mutation.py --list                                      # the module -> tests map
    python tools/mutation.py --retry out/mutation/summary.json          # its survivors again

The budget is shared equally by the selected modules (time a module leaves unused passes on to
the next). Mutants are tried in a seeded random order, so a run that stops on the budget has
tried a uniform sample; ``--sample N`` caps the mutants per module outright. The report (stdout,
and ``summary.json`` plus one ``survivors-*.txt`` per module with the diff of every survivor in
``--out``) gives per module: mutants generated, tried, killed, survived, incompetent.
``summary.json`` is rewritten after every mutant, so a run that is stopped keeps what it
measured. ``--retry`` tries again exactly the survivors listed in such a summary (after tests
were added for them: the "after triage" figures).

Tests run with ``-x``, in file order (``tests/test_mutants.py`` first: it is fast and aimed
at earlier survivors), under the ``mutation`` hypothesis profile
(``tools/mutation_profile.py``: 25 derandomized examples, no shrinking). A mutant that makes
the tests run longer than ``--timeout-factor`` times the unmutated run counts as killed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cosmic_ray.commands.init import init
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome

ROOT = Path(__file__).resolve().parent.parent

#: module (path under fireflow/, no .py) -> the fast tests that exercise it.
#: tests/test_mutants.py (the tests written to kill survivors) runs for every module.
TESTS: dict[str, tuple[str, ...]] = {
    "calendar": ("tests/test_calendar.py",),
    "ticket/decision": (
        "tests/test_ticket.py",
        "tests/test_states.py",
        "tests/test_citations.py",
        "tests/test_routing.py",
    ),
    "ticket/folding": (
        "tests/test_ticket.py",
        "tests/test_hot_paths.py",
        "tests/test_states.py",
    ),
    # test_hostile_parse (plans, scenarios: no event) and test_store_tamper (25 s of verify)
    # were listed before: minutes a mutant for nothing the store tests do not check
    "events": ("tests/test_vectors.py", "tests/test_ticket.py", "tests/test_store.py"),
    "store/chain": ("tests/test_vectors.py", "tests/test_store.py", "tests/test_store_tamper.py"),
    "plan/routing": (
        "tests/test_routing.py",
        "tests/test_routing_authority.py",
        "tests/test_citations.py",
    ),
    "rules/escalation": ("tests/test_escalation.py", "tests/test_citations.py"),
    "rules/explain": ("tests/test_ticket.py", "tests/test_plan_binding.py"),
    "rules/reporting": ("tests/test_reporting.py",),
    "rules/spotcheck": ("tests/test_spotcheck.py", "tests/test_vectors.py"),
}
ALWAYS = "tests/test_mutants.py"
NICE = 15  # the machine is shared: mutant runs yield to everything else

#: cosmic-ray operators left out: they rewrite the module at random places (any name into any
#: other), which makes mostly non-compiling or trivially killed mutants and wastes the budget.
SKIP_OPERATORS = ("core/VariableReplacer", "core/VariableInserter")

_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    "*.egg-info", "mutants", "out", "site", "fireflow-out",
)  # fmt: skip


@dataclass
class ModuleResult:
    module: str
    tests: list[str]
    generated: int = 0
    tried: int = 0
    killed: int = 0
    survived: int = 0
    incompetent: int = 0
    baseline_seconds: float = 0.0
    seconds: float = 0.0
    stopped_on: str = "done"  # done | sample | budget
    survivors: list[dict[str, object]] = field(default_factory=list)
    #: every mutant tried: [operator, occurrence, line, verdict]
    mutants: list[list[object]] = field(default_factory=list)

    @property
    def kill_rate(self) -> float:
        judged = self.killed + self.survived
        return self.killed / judged if judged else 0.0


def test_command(tests: list[str]) -> str:
    args = [
        "nice", "-n", str(NICE), sys.executable, "-m", "pytest", "-q", "-x", "--no-header",
        "-p", "no:randomly", "-p", "no:cacheprovider", "-p", "tools.mutation_profile",
        "--hypothesis-profile=mutation", *tests,
    ]  # fmt: skip
    return shlex.join(args)


def _operators() -> dict[str, list[dict[str, object]]]:
    return {}


Pos = tuple[int, int]  # (line from 1, column in characters from 0), as cosmic-ray gives them


def _annotation_spans(module_path: Path) -> list[tuple[Pos, Pos]]:
    """Where the type annotations are (and the ``if TYPE_CHECKING:`` blocks).

    fireflow modules use ``from __future__ import annotations``: annotations are never
    evaluated, so a mutant inside one (``str | None`` into ``str & None``) is equivalent by
    construction. Such mutants are not tried. The spans are exact (a signature line also
    holds default values, which are code).
    """
    text = module_path.read_text(encoding="utf-8")
    source = text.splitlines()
    tree = ast.parse(text)
    spans: list[tuple[Pos, Pos]] = []

    def char_col(line: int, byte_col: int) -> int:  # ast columns count UTF-8 bytes
        return len(source[line - 1].encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    def span(node: ast.AST | None) -> None:
        if node is None:
            return
        a, b = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
        ca = char_col(a, node.col_offset)  # type: ignore[attr-defined]
        cb = char_col(b, node.end_col_offset or 0)  # type: ignore[attr-defined]
        spans.append(((a, ca), (b, cb)))

    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            span(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            span(node.returns)
        elif isinstance(node, ast.AnnAssign):
            span(node.annotation)
        elif (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            span(node)
    return spans


def _in_annotation(item: object, spans: list[tuple[Pos, Pos]]) -> bool:
    m = item.mutations[0]  # type: ignore[attr-defined]
    at = tuple(m.start_pos)
    return any(a <= at < b for a, b in spans)


def _work_items(module_path: Path, db_path: Path) -> list[object]:
    with use_db(str(db_path), WorkDB.Mode.create) as db:
        init([module_path], db, _operators())
        spans = _annotation_spans(module_path)
        items = [
            item
            for item in db.work_items
            if not any(m.operator_name.startswith(SKIP_OPERATORS) for m in item.mutations)
            and not _in_annotation(item, spans)
        ]
    return sorted(items, key=lambda i: (i.mutations[0].operator_name, i.mutations[0].occurrence))


def run_module(
    name: str,
    work: Path,
    deadline: float,
    sample: int,
    seed: int,
    timeout_factor: float,
    retry: set[tuple[str, int]] | None = None,
    progress: Callable[[ModuleResult], None] | None = None,
) -> ModuleResult:
    tests = [ALWAYS, *TESTS[name]]
    tests = [t for t in tests if (work / t).exists()]
    result = ModuleResult(name, tests)
    cmd = test_command(tests)
    start = time.monotonic()
    argv = shlex.split(cmd)  # our own command line, not input
    base = subprocess.run(argv, check=False, cwd=work, capture_output=True, text=True)  # noqa: S603
    result.baseline_seconds = round(time.monotonic() - start, 1)
    if base.returncode != 0:
        sys.exit(f"{name}: the unmutated tests fail; fix them first\n{base.stdout[-3000:]}")
    print(f"  {name}: unmutated tests {result.baseline_seconds} s", flush=True)
    timeout = max(30.0, timeout_factor * result.baseline_seconds)

    module_path = Path("fireflow") / f"{name}.py"
    items = _work_items(module_path, work / f".mutation-{name.replace('/', '-')}.sqlite")
    result.generated = len(items)
    random.Random(f"{seed}:{name}").shuffle(items)  # noqa: S311 (a sample, not a secret)
    if retry is not None:
        items = [
            i
            for i in items
            if (i.mutations[0].operator_name, i.mutations[0].occurrence) in retry  # type: ignore[attr-defined]
        ]
    for item in items:
        if sample and result.tried >= sample:
            result.stopped_on = "sample"
            break
        if time.monotonic() >= deadline:
            result.stopped_on = "budget"
            break
        outcome = mutate_and_test(item.mutations, cmd, timeout)
        if outcome.worker_outcome == WorkerOutcome.NO_TEST:
            continue
        result.tried += 1
        m = item.mutations[0]
        if outcome.worker_outcome != WorkerOutcome.NORMAL:
            verdict = "incompetent"
        elif outcome.test_outcome == TestOutcome.KILLED:
            verdict = "killed"
        elif outcome.test_outcome == TestOutcome.SURVIVED:
            verdict = "survived"
            result.survivors.append(
                {
                    "operator": m.operator_name,
                    "occurrence": m.occurrence,
                    "line": m.start_pos[0],
                    "diff": outcome.diff,
                }
            )
        else:
            verdict = "incompetent"
        setattr(result, verdict, getattr(result, verdict) + 1)
        result.mutants.append([m.operator_name, m.occurrence, m.start_pos[0], verdict])
        print(
            f"  {name}: {verdict}: {m.operator_name} line {m.start_pos[0]} "
            f"({result.tried} tried, {result.killed} killed, {result.survived} survived)",
            flush=True,
        )
        result.seconds = round(time.monotonic() - start, 1)
        if progress is not None:
            progress(result)
    result.seconds = round(time.monotonic() - start, 1)
    return result


def _survivors_of(summary: Path) -> dict[str, set[tuple[str, int]]]:
    """module -> the (operator, occurrence) of each survivor in a ``summary.json``."""
    data = json.loads(summary.read_text(encoding="utf-8"))
    return {
        r["module"]: {(s["operator"], int(s["occurrence"])) for s in r["survivors"]} for r in data
    }


def _write(out: Path, results: list[ModuleResult]) -> None:
    summary = [{**asdict(r), "kill_rate": round(r.kill_rate, 3)} for r in results]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    for r in results:
        text = "".join(
            f"# {s['operator']} #{s['occurrence']} line {s['line']}\n{s['diff']}\n"
            for s in r.survivors
        )
        (out / f"survivors-{r.module.replace('/', '-')}.txt").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", action="append", choices=sorted(TESTS), help="repeatable")
    ap.add_argument("--budget-minutes", type=float, default=30.0)
    ap.add_argument("--sample", type=int, default=0, help="at most N mutants per module (0: all)")
    ap.add_argument("--seed", type=int, default=2022)
    ap.add_argument("--timeout-factor", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=Path("out/mutation"))
    ap.add_argument("--list", action="store_true", help="print the module -> tests map")
    ap.add_argument(
        "--retry", type=Path, help="a summary.json: try its survivors again, and nothing else"
    )
    args = ap.parse_args(argv)
    if args.list:
        for name, tests in TESTS.items():
            print(f"fireflow/{name}.py: {' '.join((ALWAYS, *tests))}")
        return 0
    retry = _survivors_of(args.retry.resolve()) if args.retry else None
    modules = args.module or (sorted(retry, key=list(TESTS).index) if retry else list(TESTS))
    with contextlib.suppress(OSError):
        os.nice(NICE)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: list[ModuleResult] = []
    end = time.monotonic() + 60 * args.budget_minutes
    with tempfile.TemporaryDirectory(prefix="fireflow-mutation-") as tmp:
        work = Path(tmp) / "tree"
        shutil.copytree(ROOT, work, ignore=_IGNORE, symlinks=True)
        os.environ["PYTHONPATH"] = str(work)
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ.pop("CI", None)
        os.chdir(work)  # cosmic-ray mutates paths relative to the working directory
        for i, name in enumerate(modules):
            share = (end - time.monotonic()) / (len(modules) - i)
            print(f"{name}: {share / 60:.1f} min", flush=True)
            r = run_module(
                name,
                work,
                time.monotonic() + share,
                args.sample,
                args.seed,
                args.timeout_factor,
                retry=None if retry is None else retry.get(name, set()),
                progress=lambda r: _write(out, [*results, r]),
            )
            results.append(r)
            _write(out, results)
    print("\n| module | generated | tried | killed | survived | incompetent | kill rate |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| fireflow/{r.module}.py | {r.generated} | {r.tried} | {r.killed} | {r.survived} "
            f"| {r.incompetent} | {100 * r.kill_rate:.0f}% |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
