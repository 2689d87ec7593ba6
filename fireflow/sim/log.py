"""The simulated campaign as real input: its event log as a store, JSON lines and reports.

A :class:`~fireflow.sim.SimResult` run with ``log="keep"`` holds every event
the real engine decided.  This module writes them where the document
commands read history, so that ``fireflow dossier``, ``fireflow forms
annex1|annex2|annex3`` and ``fireflow report status`` run on a simulated
campaign exactly as on a real one:

* :func:`write_store`: a fireflow SQLite store (hash-chained, verified) with
  its checkpoint beside it (``NAME.checkpoint.json``), taken at the end of the
  campaign (the plan's last day, 24:00 local time: no clock is read);
* :func:`write_jsonl`: the same events as JSON lines (one
  :func:`~fireflow.events.canonical_bytes` encoding per line);
* :func:`towns` / :func:`write_towns`: town -> community ids (``--towns``);
* :func:`submissions` / :func:`write_submissions`: the run's report
  submissions (六(六)) as JSON lines of
  :meth:`~fireflow.rules.reporting.Submission.to_data` (``--submissions``).

Every file goes through :mod:`fireflow.output`: a link is refused, a file is
written whole or not at all, never into a missing folder.  The store is built
in a private temporary folder and then copied atomically to its destination,
so no half-built store and no ``-wal`` file ever appears there.  An existing
file is replaced only when it is itself a simulated store (a real campaign's
store is never overwritten).

>>> import tempfile, pathlib
>>> from fireflow import load_plan
>>> from fireflow.sim import generate_population, simulate
>>> from fireflow.store import SQLiteStore, verify
>>> result = simulate(load_plan("changle-2022"), generate_population(6, seed=1), seed=1)
>>> tmp = tempfile.TemporaryDirectory()
>>> path = pathlib.Path(tmp.name, "sim.db")
>>> cp = write_store(result, path)
>>> cp.count == result.n_events, cp.at.isoformat()
(True, '2023-01-01T00:00:00+08:00')
>>> with SQLiteStore(path, readonly=True) as store:
...     verify(store, cp).ok
True
>>> sorted(p.name for p in path.parent.iterdir())
['sim.db', 'sim.db.checkpoint.json']
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fireflow import output
from fireflow.errors import InvalidArgument
from fireflow.events import Actor, Event, canonical_bytes
from fireflow.rules import reporting
from fireflow.sim.engine import report_days_late, report_sent_on
from fireflow.sim.result import SimResult
from fireflow.store.chain import Checkpoint, checkpoint
from fireflow.store.sqlite import SQLiteStore

__all__ = [
    "CHECKPOINT_SUFFIX",
    "ORIGIN",
    "check_store_destination",
    "checkpoint_path",
    "end_instant",
    "iter_batches",
    "submissions",
    "towns",
    "write_jsonl",
    "write_store",
    "write_submissions",
    "write_towns",
]

#: The checkpoint of ``sim.db`` is ``sim.db.checkpoint.json``.
CHECKPOINT_SUFFIX = ".checkpoint.json"
#: The value of the ``origin`` key a simulated store keeps in its ``fireflow_meta`` table.
ORIGIN = "fireflow.sim"
#: Events appended per transaction while the store is built.
_CHUNK = 20_000


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`write_store` puts the checkpoint of the store at ``path``.

    >>> checkpoint_path("out/sim.db").as_posix()
    'out/sim.db.checkpoint.json'
    """
    p = Path(os.fspath(path))
    return p.with_name(p.name + CHECKPOINT_SUFFIX)


def _events(result: SimResult) -> list[Event]:
    if result.events is None:
        raise InvalidArgument(
            "log",
            "this run kept no event log: simulate(..., log='keep') "
            "(推演未保留事件日志，请使用 log='keep')",
        )
    return result.events


def iter_batches(events: Sequence[Event]) -> Iterator[tuple[str, list[Event], int]]:
    """The log as store batches, in log order: each run of one ticket's consecutive events.

    Each batch is ``(ticket_id, events, expected_version)``, so appending them in
    order gives the store the run's own global order.

    >>> from datetime import datetime, timezone
    >>> at = datetime(2022, 3, 21, 2, tzinfo=timezone.utc)
    >>> evs = [Event(event_id=f"{t}/{s}", ticket_id=t, seq=s, kind="rectify", at=at,
    ...              actor=Actor("property")) for t, s in (("A", 1), ("A", 2), ("B", 1), ("A", 3))]
    >>> [(t, len(b), v) for t, b, v in iter_batches(evs)]
    [('A', 2, 0), ('B', 1, 0), ('A', 1, 2)]
    """
    current: list[Event] = []
    for e in events:
        if current and (e.ticket_id != current[0].ticket_id or len(current) >= 1000):
            yield current[0].ticket_id, current, current[0].seq - 1
            current = []
        current.append(e)
    if current:
        yield current[0].ticket_id, current, current[0].seq - 1


def _is_simulated_store(path: Path) -> bool:
    """Is the file at ``path`` a store that :func:`write_store` wrote?  (Read only.)"""
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute("SELECT value FROM fireflow_meta WHERE key = 'origin'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None and row[0] == ORIGIN


def check_store_destination(path: str | os.PathLike[str], *, folder_later: bool = False) -> None:
    """Refuse a store destination before any work: a link, a folder, other data.

    A missing folder is refused too, unless ``folder_later`` (the caller makes it
    before writing, as ``simulate`` makes ``--out``).
    """
    dest = Path(os.fspath(path))
    output.check_destination(dest, create_folders=folder_later)  # a link or a folder: refused
    if dest.exists() and not _is_simulated_store(dest):
        raise InvalidArgument(
            "store",
            f"{dest} exists and is not a simulated store; a simulated log never replaces "
            "other data (已有文件不是模拟事件库，不覆盖)",
        )
    output.check_destination(checkpoint_path(dest), create_folders=folder_later)


def end_instant(result: SimResult) -> datetime:
    """The end of the simulated campaign: the plan's last day at 24:00 local time."""
    end = result.plan.calendar.due_instant(result.plan.end)
    return datetime.fromisoformat(end.isoformat())  # a plain datetime, not pendulum's


def write_store(
    result: SimResult, path: str | os.PathLike[str], *, at: datetime | None = None
) -> Checkpoint:
    """Write the run's event log as a fireflow SQLite store and its checkpoint; return it.

    The store at ``path`` holds every event in the run's order, hash-chained;
    the checkpoint (taken ``at``, by default the end of the campaign) is written
    to :func:`checkpoint_path`.  The run must have kept its log
    (``log="keep"``).  ``path`` may be replaced only if it is a simulated store.
    """
    events = _events(result)
    dest = Path(os.fspath(path))
    check_store_destination(dest)
    when = at if at is not None else end_instant(result)
    with tempfile.TemporaryDirectory(prefix="fireflow-sim-") as tmp:
        built = Path(tmp, "store.db")
        with SQLiteStore(built) as store:
            pending: list[tuple[str, Sequence[Event], int]] = []
            size = 0
            for batch in iter_batches(events):
                pending.append(batch)
                size += len(batch[1])
                if size >= _CHUNK:
                    store.append_many(pending)
                    pending, size = [], 0
            if pending:
                store.append_many(pending)
            cp = checkpoint(store, when)
        with contextlib.closing(sqlite3.connect(built, isolation_level=None)) as conn:
            conn.execute("INSERT INTO fireflow_meta (key, value) VALUES ('origin', ?)", (ORIGIN,))
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with built.open("rb") as src, output.open_atomic(dest) as out:
            shutil.copyfileobj(src, out, 1 << 20)
    output.write_text(checkpoint_path(dest), cp.to_json())
    return cp


def write_jsonl(result: SimResult, path: str | os.PathLike[str]) -> Path:
    """Write the run's event log as JSON lines (canonical bytes, one event a line)."""
    events = _events(result)
    with output.open_atomic(path) as out:
        for e in events:
            out.write(canonical_bytes(e))
            out.write(b"\n")
    return Path(os.fspath(path))


def towns(result: SimResult) -> dict[str, list[str]]:
    """Town -> its community ids, in the population's order (``report status --towns``)."""
    out: dict[str, list[str]] = {t: [] for t in result.population.towns}
    for c in result.population.communities:
        out[c.town].append(c.id)
    return out


def write_towns(result: SimResult, path: str | os.PathLike[str]) -> Path:
    """Write :func:`towns` as JSON."""
    text = json.dumps(towns(result), ensure_ascii=False, indent=2) + "\n"
    return output.write_text(path, text)


def submissions(result: SimResult) -> list[reporting.Submission]:
    """The run's report submissions (六(六)), as the simulator drew them.

    The simulator's own draws (:func:`~fireflow.sim.engine.report_days_late`,
    one per obligation from the seed): each obligation is sent the active day
    before its due day, or late with ``report_late_probability`` by
    ``report_late_working_days``.  Judged with
    :func:`~fireflow.rules.reporting.status` at the end of the campaign they
    give the counts of ``result.reports`` (a test holds the two together).
    """
    plan, b = result.plan, result.behaviour
    cal = plan.calendar
    tz = ZoneInfo(plan.timezone)
    t = b.action_time
    fixed = {d.id: d for d in plan.deadlines_fixed}
    out: list[reporting.Submission] = []
    for o in reporting.obligations(plan, towns(result), cal):
        sent = report_sent_on(o.due, report_days_late(result.seed, b, o), b, cal)
        spec = fixed.get(o.report_id)
        out.append(
            reporting.Submission(
                report_id=o.report_id,
                town=o.town,
                community=o.community,
                submitted_at=datetime(sent.year, sent.month, sent.day, t.hour, t.minute, tzinfo=tz),
                by=Actor(o.senders[0]),
                contents=tuple(c.zh for c in spec.contents) if spec is not None else (),
            )
        )
    return out


def write_submissions(result: SimResult, path: str | os.PathLike[str]) -> Path:
    """Write :func:`submissions` as JSON lines (``report status --submissions``)."""
    lines = [
        json.dumps(s.to_data(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        for s in submissions(result)
    ]
    return output.write_text(path, "".join(line + "\n" for line in lines))
