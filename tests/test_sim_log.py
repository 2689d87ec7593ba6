"""The simulated log as real input: a verified store, JSON lines, towns and submissions.

End to end with the CLI: ``fireflow simulate --store`` and then ``dossier``,
``forms annex1|annex2|annex3`` and ``report status`` on what it wrote.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fireflow import load_plan
from fireflow.cli import main
from fireflow.errors import InvalidArgument, OutputError
from fireflow.events import Actor, Event
from fireflow.history import read_events, read_history
from fireflow.rules import reporting
from fireflow.sim import generate_population, simulate
from fireflow.sim import log as sim_log
from fireflow.store import SQLiteStore, verify
from fireflow.store.chain import Checkpoint

PLAN = load_plan("changle-2022")


@pytest.fixture(scope="module")
def result():
    return simulate(PLAN, generate_population(25, seed=11, towns=3), seed=11)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- library


def test_the_store_holds_the_run_in_its_order_and_matches_its_checkpoint(result, tmp_path):
    path = tmp_path / "sim.db"
    cp = sim_log.write_store(result, path)
    assert Checkpoint.from_json(sim_log.checkpoint_path(path).read_bytes()) == cp
    assert (cp.count, cp.tickets) == (result.n_events, len(result.tickets))
    assert cp.at.isoformat() == "2023-01-01T00:00:00+08:00"  # the end of 2022-12-31, no clock
    with SQLiteStore(path, readonly=True) as store:
        assert verify(store, cp).ok
        assert [s.event for s in store.read_all()] == result.events
    # nothing else beside it: no temporary file, no -wal or -shm
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.db", "sim.db.checkpoint.json"]
    history = read_history(path, checkpoint=cp)
    assert history.verified
    assert history.events == result.events


def test_the_same_run_gives_the_same_store_bytes(result, tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    assert sim_log.write_store(result, a) == sim_log.write_store(result, b)
    assert a.read_bytes() == b.read_bytes()


def test_a_simulated_store_is_replaced_other_files_are_not(result, tmp_path):
    path = tmp_path / "sim.db"
    sim_log.write_store(result, path)
    first = sim_log.checkpoint_path(path).read_bytes()
    sim_log.write_store(result, path)  # a simulated store: replaced
    assert sim_log.checkpoint_path(path).read_bytes() == first
    real = tmp_path / "real.db"
    with SQLiteStore(real) as store:  # a real campaign's store
        store.append(result.events[0].ticket_id, [result.events[0]], 0)
    before = real.read_bytes()
    with pytest.raises(InvalidArgument, match="not a simulated store") as exc:
        sim_log.write_store(result, real)
    assert exc.value.field == "store"
    assert real.read_bytes() == before
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(InvalidArgument):
        sim_log.write_store(result, other)
    assert other.read_text() == "keep me"


def test_a_link_is_refused_and_nothing_is_written(result, tmp_path):
    target = tmp_path / "target.db"
    target.write_bytes(b"")
    link = tmp_path / "sim.db"
    link.symlink_to(target)
    with pytest.raises(OutputError) as exc:
        sim_log.write_store(result, link)
    assert exc.value.reason == "symlink"
    assert target.read_bytes() == b""
    with pytest.raises(OutputError):
        sim_log.write_jsonl(result, link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.db", "target.db"]


def test_a_run_without_its_log_is_refused_naming_the_option(tmp_path):
    digest_only = simulate(PLAN, generate_population(5, seed=1), seed=1, log="digest")
    with pytest.raises(InvalidArgument) as exc:
        sim_log.write_store(digest_only, tmp_path / "x.db")
    assert exc.value.field == "log"
    assert not list(tmp_path.iterdir())


def test_json_lines_read_back_as_the_same_events(result, tmp_path):
    path = sim_log.write_jsonl(result, tmp_path / "events.jsonl")
    assert read_events(path) == result.events
    assert len(path.read_bytes().splitlines()) == result.n_events


def test_the_submissions_give_the_run_s_report_counts(result):
    subs = sim_log.submissions(result)
    towns = sim_log.towns(result)
    assert sorted(towns) == sorted(result.population.towns)
    assert sum(len(v) for v in towns.values()) == len(result.population)
    end = sim_log.end_instant(result)
    statuses = reporting.status(PLAN, towns, subs, end, PLAN.calendar)
    counts = Counter((s.obligation.report_id, s.state) for s in statuses)
    for r in result.reports:
        assert (counts[r.id, "on_time"], counts[r.id, "late"], counts[r.id, "missing"]) == (
            r.on_time,
            r.late,
            r.missing,
        ), r.id
    # they round-trip through the JSON lines the CLI reads
    assert [reporting.Submission.from_data(s.to_data()) for s in subs] == subs


_AT = datetime(2022, 3, 21, 2, tzinfo=UTC)


@given(st.lists(st.sampled_from("ABC"), max_size=60))
def test_batches_keep_the_log_order_and_each_ticket_s_versions(tickets):
    seqs: Counter[str] = Counter()
    events = []
    for t in tickets:
        seqs[t] += 1
        events.append(
            Event(
                event_id=f"{t}/{seqs[t]}",
                ticket_id=t,
                seq=seqs[t],
                kind="rectify",
                at=_AT,
                actor=Actor("property"),
            )
        )
    batches = list(sim_log.iter_batches(events))
    assert [e for _, b, _ in batches for e in b] == events
    for ticket, batch, expected in batches:
        assert {e.ticket_id for e in batch} == {ticket}
        assert [e.seq for e in batch] == list(range(expected + 1, expected + 1 + len(batch)))
    # consecutive batches are of different tickets (runs are maximal)
    assert all(a[0] != b[0] for a, b in itertools.pairwise(batches))


# --------------------------------------------------------------------------- CLI, end to end


def test_simulate_then_dossier_forms_and_report_status_on_its_store(tmp_path, capsys):
    out = tmp_path / "out"
    store = out / "sim.db"
    code, printed, err = run(
        capsys,
        "simulate",
        "--communities",
        "30",
        "--seed",
        "3",
        "--out",
        str(out),
        "--store",
        str(store),
        "--log",
        str(out / "events.jsonl"),
    )
    assert code == 0, err
    assert "事件库 store" in printed
    checkpoint = sim_log.checkpoint_path(store)
    for name in (
        "index.html",
        "sim.db",
        "sim.db.checkpoint.json",
        "events.jsonl",
        "towns.json",
        "submissions.jsonl",
    ):
        assert (out / name).is_file(), name
    events = read_events(store)
    assert read_events(out / "events.jsonl") == events
    community = next(e.payload["community"] for e in events if e.kind == "report")

    code, _, err = run(
        capsys,
        "dossier",
        community,
        "--events",
        str(store),
        "--checkpoint",
        str(checkpoint),
        "--json",
        str(tmp_path / "dossier.json"),
        "--html",
        str(tmp_path / "dossier.html"),
    )
    assert code == 0, err
    dossier = json.loads((tmp_path / "dossier.json").read_text(encoding="utf-8"))
    assert dossier["verification"]["verified"] is True
    assert dossier["verification"]["checkpoint"]["count"] == len(events)
    mine = {
        e.ticket_id for e in events if e.kind == "report" and e.payload["community"] == community
    }
    assert dossier["summary"]["tickets"] == len(mine)

    code, _, err = run(
        capsys,
        "forms",
        "annex2",
        "--events",
        str(store),
        "--checkpoint",
        str(checkpoint),
        "--csv",
        str(tmp_path / "annex2.csv"),
    )
    assert code == 0, err
    rows = (tmp_path / "annex2.csv").read_text(encoding="utf-8-sig").splitlines()
    inspected = {  # one row per ticket found by the towns' inspection (五(三))
        e.ticket_id
        for e in events
        if e.kind == "report" and e.payload["source"] == "town_inspection"
    }
    assert len(rows) - 1 == len(inspected) > 0
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted(inspected)
    assert "已校验 verified" in rows[0]
    assert "已校验 verified" in rows[1]

    code, _, err = run(
        capsys,
        "forms",
        "annex1",
        "--events",
        str(store),
        "--towns",
        str(out / "towns.json"),
        "--csv",
        str(tmp_path / "annex1.csv"),
    )
    assert code == 0, err

    code, printed, err = run(
        capsys,
        "report",
        "status",
        "--towns",
        str(out / "towns.json"),
        "--submissions",
        str(out / "submissions.jsonl"),
        "--at",
        "2023-01-01T00:00+08:00",
        "--json",
    )
    assert code == 0, err
    states = Counter(o["state"] for o in json.loads(printed)["obligations"])
    assert set(states) <= {"on_time", "late", "missing"}
    assert states["on_time"] > 0


def test_simulate_refuses_a_real_store_before_simulating(tmp_path, capsys):
    real = tmp_path / "real.db"
    real.write_bytes(b"not a simulated store")
    code, _, err = run(
        capsys,
        "simulate",
        "--communities",
        "5",
        "--out",
        str(tmp_path / "out"),
        "--store",
        str(real),
    )
    assert code == 1
    assert "不覆盖" in err
    assert not (tmp_path / "out").exists()
    assert real.read_bytes() == b"not a simulated store"


def test_a_missing_folder_is_refused_unless_it_is_out(result, tmp_path, capsys):
    with pytest.raises(OutputError) as exc:
        sim_log.write_store(result, tmp_path / "missing" / "sim.db")
    assert exc.value.reason == "missing_folder"
    code, _, err = run(
        capsys,
        "simulate",
        "--communities",
        "5",
        "--out",
        str(tmp_path / "out"),
        "--log",
        str(tmp_path / "missing" / "events.jsonl"),
    )
    assert code == 1
    assert "missing" in err
    assert not (tmp_path / "out").exists()
