"""Tampering with an SQLite store's file is detected against a published checkpoint.

The forger here has full write access to the file.  Half of the time it also
recomputes every stored hash (both chains) after its change and keeps the
positions contiguous, so the file is internally consistent and only the
checkpoint can tell.  The figures line is printed (``pytest -s``); CI runs 500
random tamperings, ``FIREFLOW_FULL=1`` runs 10,000.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs
import pytest
from store_workers import histories

from fireflow.events import canonical_bytes
from fireflow.store import Checkpoint, SQLiteStore, checkpoint, verify
from fireflow.store.chain import GENESIS, decode_event, global_link, ticket_link

FULL = bool(os.environ.get("FIREFLOW_FULL"))
AT = datetime(2022, 12, 12, 17, tzinfo=timezone(timedelta(hours=8)))
KINDS = ("byte", "alter_row", "delete_row", "insert_row", "swap", "truncate", "delete_ticket")
COLUMNS = "position, ticket_id, seq, event_id, data, ticket_hash, global_hash"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Checkpoint, Checkpoint]:
    """A store of 8 interleaved tickets, a checkpoint part-way and one at the end."""
    path = tmp_path_factory.mktemp("tamper") / "base.db"
    batches = list(histories.schedule(8))
    with SQLiteStore(path) as store:
        for tid, v, events in batches[:-6]:
            store.append(tid, events, v)
        mid = checkpoint(store, AT)
        for tid, v, events in batches[-6:]:
            store.append(tid, events, v)
        end = checkpoint(store, AT + timedelta(days=1))
    assert 0 < mid.count < end.count
    return path, mid, end


def _rows(con: sqlite3.Connection) -> list[list[object]]:
    return [list(r) for r in con.execute(f"SELECT {COLUMNS} FROM events ORDER BY position")]


def _alter(data: bytes, rng: random.Random) -> bytes:
    """The same event with one field changed, encoded canonically (a careful forger)."""
    e = decode_event(data, 0)
    choice = rng.randrange(4)
    if choice == 0:
        new = attrs.evolve(e, actor=attrs.evolve(e.actor, person=e.actor.person + "伪"))
    elif choice == 1:
        new = attrs.evolve(e, at=e.at - timedelta(days=1))
    elif choice == 2:
        new = attrs.evolve(e, payload={**e.payload, "note": "已整改"})
    else:
        new = attrs.evolve(e, rules=(*e.rules, "R-TKT-OPEN"))
    out = canonical_bytes(new)
    assert out != data
    return out


def _rechain(rows: list[list[object]]) -> None:
    """Renumber positions, copy ids from the data, recompute both chains."""
    g = GENESIS
    heads: dict[object, str] = {}
    seqs: dict[object, int] = {}
    ids = {row[3] for row in rows}
    for p, row in enumerate(rows):
        row[0] = p
        data = row[4]
        assert isinstance(data, bytes)
        try:
            e = decode_event(data, p)
        except Exception:  # a flipped byte may break the JSON: keep the columns
            pass
        else:
            row[1] = e.ticket_id
            if e.event_id not in ids:  # a flipped byte may name another event: ids stay unique
                ids.discard(row[3])
                ids.add(e.event_id)
                row[3] = e.event_id
        seqs[row[1]] = seqs.get(row[1], 0) + 1
        row[2] = seqs[row[1]]
        t = ticket_link(heads.get(row[1], GENESIS), data)
        heads[row[1]] = t
        g = global_link(g, data)
        row[5], row[6] = t, g


def tamper(path: Path, kind: str, limit: int, rng: random.Random, rechain: bool) -> None:
    """Change the file as a forger with write access would; ``limit`` bounds the rows touched."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        rows = _rows(con)
        i = rng.randrange(limit)
        if kind == "byte":
            data = bytearray(rows[i][4])  # type: ignore[arg-type]
            j = rng.randrange(len(data))
            data[j] ^= rng.randrange(1, 256)
            rows[i][4] = bytes(data)
        elif kind == "alter_row":
            rows[i][4] = _alter(rows[i][4], rng)  # type: ignore[arg-type]
        elif kind == "delete_row":
            del rows[i]
        elif kind == "insert_row":
            e = decode_event(rows[i][4], i)  # type: ignore[arg-type]
            forged = attrs.evolve(e, event_id=f"{e.event_id}/forged")
            rows.insert(
                i, [i, e.ticket_id, e.seq, forged.event_id, canonical_bytes(forged), "", ""]
            )
        elif kind == "swap":
            j = rng.randrange(limit - 1)
            j += j >= i
            rows[i][1:5], rows[j][1:5] = rows[j][1:5], rows[i][1:5]
        elif kind == "truncate":
            del rows[i:]
        elif kind == "delete_ticket":
            victim = rows[i][1]
            rows = [r for r in rows if r[1] != victim]
        else:  # control: no change at all
            rechain = False
        if rechain or kind in ("insert_row",):
            _rechain(rows)
        con.execute("BEGIN IMMEDIATE")
        con.execute("DELETE FROM events")
        con.executemany(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if rechain:  # a careful forger moves the head row along with the rows
            last = rows[-1] if rows else [-1, "", 0, "", b"", "", GENESIS]
            con.execute(
                "UPDATE fireflow_head SET next = ?, global_hash = ?", (last[0] + 1, last[6])
            )
        con.execute("COMMIT")
    finally:
        con.close()


def test_untouched_copies_verify(base, tmp_path):
    path, mid, end = base
    for n in range(5):
        copy = tmp_path / f"control{n}.db"
        shutil.copyfile(path, copy)
        tamper(copy, "none", 1, random.Random(n), rechain=True)
        with SQLiteStore(copy, create=False) as store:
            assert verify(store).ok
            assert verify(store, mid).ok
            assert verify(store, end).ok


def test_random_tamperings_are_all_detected_against_a_checkpoint(base, tmp_path):
    path, mid, end = base
    runs = 10_000 if FULL else 500
    rng = random.Random(2022)
    detected = rechained = internal_alone = 0
    by_kind = dict.fromkeys(KINDS, 0)
    caught_by_kind = dict.fromkeys(KINDS, 0)
    copy = tmp_path / "copy.db"
    for n in range(runs):
        kind = KINDS[n % len(KINDS)]
        cp = mid if rng.random() < 0.5 else end
        rechain = rng.random() < 0.5
        shutil.copyfile(path, copy)
        tamper(copy, kind, cp.count, rng, rechain)
        with SQLiteStore(copy, create=False) as store:
            report = verify(store, cp, max_problems=10_000)
        by_kind[kind] += 1
        rechained += rechain
        # what verify(store) without a checkpoint would have reported: the same pass
        internal_alone += any(not p.what.startswith("checkpoint.") for p in report.problems)
        if not report.ok:
            detected += 1
            caught_by_kind[kind] += 1
        else:  # pragma: no cover (a failure: say what slipped through)
            pytest.fail(f"run {n}: {kind} (rechain={rechain}) against {cp} not detected")
        if rechain and kind in ("alter_row", "delete_ticket", "truncate"):
            # a consistent forgery: only the checkpoint can tell, and it does
            assert any(p.what.startswith("checkpoint.") for p in report.problems), report
    kinds = " ".join(f"{k}={caught_by_kind[k]}/{by_kind[k]}" for k in KINDS)
    print(
        f"\ntamper: runs={runs} detected={detected} ({100 * detected / runs:.1f}%) {kinds} "
        f"rechained={rechained} caught_without_checkpoint={internal_alone} "
        f"(the rest needed the checkpoint)"
    )
    assert detected == runs


def test_a_flipped_byte_is_reported_where_it_is(base, tmp_path):
    path, _, end = base
    copy = tmp_path / "flip.db"
    shutil.copyfile(path, copy)
    con = sqlite3.connect(copy, isolation_level=None)
    (data,) = con.execute("SELECT data FROM events WHERE position = 7").fetchone()
    con.execute(
        "UPDATE events SET data = ? WHERE position = 7", (data.replace(b'"seq":', b'"seq": '),)
    )
    con.close()
    with SQLiteStore(copy, create=False) as store:
        report = verify(store, end)
    whats = {(p.what, p.position) for p in report.problems}
    assert ("canonical", 7) in whats
    assert ("global_hash", 7) in whats
    assert ("ticket_hash", 7) in whats
    assert any(p.what == "checkpoint.global_head" for p in report.problems)


def test_duplicate_keys_in_a_stored_row_are_refused(base, tmp_path):
    path, _, _ = base
    copy = tmp_path / "dup.db"
    shutil.copyfile(path, copy)
    con = sqlite3.connect(copy, isolation_level=None)
    (tid, data) = con.execute("SELECT ticket_id, data FROM events WHERE position = 3").fetchone()
    forged = data.replace(b'"kind":', b'"kind":"report","kind":', 1)
    con.execute("UPDATE events SET data = ? WHERE position = 3", (forged,))
    con.close()
    with SQLiteStore(copy, create=False) as store:
        report = verify(store)
        from fireflow.store import CorruptRecord

        with pytest.raises(CorruptRecord) as info:
            store.read(tid)
    assert info.value.position == 3
    assert "duplicate key 'kind'" in str(info.value)
    assert [(p.what, p.position) for p in report.problems][:1] == [("decode", 3)]


def test_truncation_and_a_deleted_ticket_pass_internal_checks_but_not_the_checkpoint(
    base, tmp_path
):
    path, _, end = base
    for kind in ("truncate", "delete_ticket"):
        copy = tmp_path / f"{kind}.db"
        shutil.copyfile(path, copy)
        tamper(copy, kind, end.count, random.Random(7), rechain=True)
        with SQLiteStore(copy, create=False) as store:
            assert verify(store).ok  # consistent on its own: the chain was rewritten
            report = verify(store, end)
        assert not report.ok
        whats = {p.what for p in report.problems}
        if kind == "truncate":
            assert whats == {"checkpoint.count"}
        else:
            assert "checkpoint.tickets" in whats or "checkpoint.count" in whats
