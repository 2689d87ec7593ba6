"""Which PostgreSQL server binaries the test clusters use (tests/pgcluster.py); no server runs.

Debian installs each major version under ``/usr/lib/postgresql/VERSION/bin``; with
several installed, the newest major version must win, by number (``16`` is newer
than ``9.6``, which a sort by name gets wrong).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pgcluster
import pytest
from hypothesis import given
from hypothesis import strategies as st

FAKE = [f"/usr/lib/postgresql/{v}/bin/initdb" for v in ("9.6", "13", "15", "16")]


@pytest.mark.parametrize("order", list(itertools.permutations(FAKE)))
def test_the_newest_major_version_wins_in_any_order(order):
    assert pgcluster.newest_bindir(order) == Path("/usr/lib/postgresql/16/bin")


def test_versions_compare_as_numbers_not_names():
    assert pgcluster.debian_version("/usr/lib/postgresql/9.6/bin/initdb") == (9, 6)
    assert pgcluster.debian_version("/usr/lib/postgresql/16/bin/initdb") == (16,)
    paths = ["/usr/lib/postgresql/9.6/bin/initdb", "/usr/lib/postgresql/10/bin/initdb"]
    assert pgcluster.newest_bindir(paths) == Path("/usr/lib/postgresql/10/bin")


def test_a_folder_that_is_not_a_version_loses_to_any_version():
    paths = ["/usr/lib/postgresql/devel/bin/initdb", "/usr/lib/postgresql/9.6/bin/initdb"]
    assert pgcluster.debian_version(paths[0]) == ()
    assert pgcluster.newest_bindir(paths) == Path("/usr/lib/postgresql/9.6/bin")
    assert pgcluster.newest_bindir([]) is None


@given(
    st.lists(
        st.tuples(st.integers(0, 99), st.none() | st.integers(0, 99)), min_size=1, unique=True
    ),
    st.randoms(use_true_random=False),
)
def test_newest_bindir_is_the_largest_version(versions, rnd: random.Random):
    names = [f"{major}" if minor is None else f"{major}.{minor}" for major, minor in versions]
    rnd.shuffle(names)
    want = max(names, key=lambda n: tuple(int(p) for p in n.split(".")))
    got = pgcluster.newest_bindir(f"/usr/lib/postgresql/{n}/bin/initdb" for n in names)
    assert got == Path(f"/usr/lib/postgresql/{want}/bin")


def test_find_bindir_takes_debians_newest_when_nothing_else_says(monkeypatch):
    monkeypatch.delenv("FIREFLOW_PG_BINDIR", raising=False)
    monkeypatch.setattr(pgcluster.shutil, "which", lambda _name: None)  # no pg_config, no initdb
    monkeypatch.setattr(pgcluster, "debian_initdbs", lambda: list(reversed(FAKE)))
    assert pgcluster.find_bindir() == Path("/usr/lib/postgresql/16/bin")
    monkeypatch.setattr(pgcluster, "debian_initdbs", lambda: [FAKE[2], FAKE[0], FAKE[3], FAKE[1]])
    assert pgcluster.find_bindir() == Path("/usr/lib/postgresql/16/bin")
    monkeypatch.setattr(pgcluster, "debian_initdbs", list)
    assert pgcluster.find_bindir() is None


def test_find_bindir_prefers_the_environment(monkeypatch):
    monkeypatch.setenv("FIREFLOW_PG_BINDIR", "/opt/pg/bin")
    monkeypatch.setattr(pgcluster, "debian_initdbs", lambda: FAKE)
    assert pgcluster.find_bindir() == Path("/opt/pg/bin")
