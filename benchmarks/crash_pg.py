"""Reliability figures of the PostgreSQL store: kill -9, hard server stops, 16 writers on a ticket.

Run from the repository root::

    python benchmarks/crash_pg.py              # full counts (about 10-15 minutes on 2 cores)
    python benchmarks/crash_pg.py --json       # one JSON object on stdout
    python benchmarks/crash_pg.py --quick      # small counts (the smoke test runs this)

It starts its own durable throwaway cluster (tests/pgcluster.py: ``fsync=on``,
``synchronous_commit=on``, ``full_page_writes=on``; a unix socket in a temporary
folder) because it stops that server hard, and removes it at the end.  The runs
are the ones tests/test_pg_reliability.py makes at small counts
(tests/store_workers/pg_runs.py, writers in tests/store_workers/pg_writer.py):

1. **kill -9 mid-append** (200 runs): a writer process appends the batches
   (1-4 events) of a 10,000-ticket schedule; after a random 0-60 ms it gets
   SIGKILL.  After each kill (once the server has ended the killed session):
   no ticket stands between two batches (0 partial batches), every batch the
   writer printed as acknowledged is stored (0 acknowledged lost), positions and
   versions run without gaps, no event id twice; every 10th run ``verify()``
   against the previous checkpoint.  The next writer first re-sends the last
   stored batch, which must come back ``replayed``.
2. **Hard server stop** (3 restarts): 4 writer processes append their own
   tickets; three times, at evenly spaced counts of acknowledged batches, the
   server is stopped with ``pg_ctl stop -m immediate`` (no checkpoint: crash
   recovery on the next start), kept down for 1 s and started again.  Every
   writer keeps its store object: a failed append raises ``StoreUnavailable`` (a
   ``FireflowError``; a raw psycopg exception would be counted and fail the run)
   and is re-sent until acknowledged.  Afterwards: every batch acknowledged,
   nothing lost or duplicated, every ticket at its full version, ``verify()``
   clean against the checkpoint taken before each stop.
3. **16 writers on one ticket**: 16 processes read, fold, decide the next step
   with the engine and append with the folded version, until each has won 25
   appends; exactly one winner per version, every won append stored, the
   ticket folds, ``verify()`` clean.

Exit status: 1 if a check fails, 3 if no server can be started, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]  # pgcluster, store_workers

import psycopg  # noqa: E402
from _common import host, pg_durability  # noqa: E402

FULL = {"kills": 200, "restarts": 3, "restart_writers": 4, "restart_tickets": 400, "wins": 25}
QUICK = {"kills": 4, "restarts": 1, "restart_writers": 2, "restart_tickets": 40, "wins": 1}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    args = parser.parse_args(argv)
    n = QUICK if args.quick else FULL
    from pgcluster import Cluster, ClusterUnavailable
    from store_workers import pg_runs

    try:
        cluster = Cluster(durable=True)
    except ClusterUnavailable as exc:
        print(f"no PostgreSQL server: {exc}", file=sys.stderr)
        return 3
    try:
        cluster.start()
        settings = cluster.settings()
        say = (lambda *a, **k: None) if args.json else print

        def progress(done):
            if done % 20 == 0:
                say(f"  ... {done} kills", flush=True)

        say("1. kill -9 mid-append", flush=True)
        kill = pg_runs.kill_runs(cluster.conninfo, "crash_kill", n["kills"], progress=progress)
        kill["problems"] = pg_runs.kill_problems(kill)
        say("2. hard server stops", flush=True)
        restart = pg_runs.restart_run(
            cluster, "crash_restart", n["restart_writers"], n["restart_tickets"],
            restarts=n["restarts"],
        )  # fmt: skip
        restart["problems"] = pg_runs.restart_problems(restart)
        say("3. 16 writers on one ticket", flush=True)
        race = pg_runs.race_run(cluster.conninfo, "crash_race", 16, n["wins"])
        race["problems"] = pg_runs.race_problems(race)
    except ClusterUnavailable as exc:
        print(f"no PostgreSQL server: {exc}", file=sys.stderr)
        return 3
    finally:
        cluster.remove()
    report = {
        "benchmark": "fireflow PostgresStore reliability (real processes, a real server)",
        "server": settings,
        "psycopg": psycopg.__version__,
        **host(),
        "kill9": kill,
        "restart": restart,
        "race": race,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        s = settings
        print()
        print(
            f"fireflow {report['fireflow']}, PostgreSQL {s['server_version']}, psycopg "
            f"{report['psycopg']}, Python {report['python']}, {report['cpu_count']} CPUs"
        )
        print(f"server: {pg_durability(s)}")
        k = kill
        print(
            f"kill -9: runs={k['runs']} killed_mid_append={k['killed_mid_append']} "
            f"(committed {k['in_flight_committed']}, rolled back "
            f"{k['killed_mid_append'] - k['in_flight_committed']}) acked={k['acked']} "
            f"acked_lost={k['acked_lost']} partial={k['partial']} gaps={k['gaps']} "
            f"duplicates={k['duplicates']} resent_after_crash={k['resent_after_crash']} "
            f"(not replayed: {k['not_replayed']}) verify={k['verifies']} runs, "
            f"{k['verify_failed']} failed; events={k['events']} in {k['seconds']:.0f} s"
        )
        r = restart
        print(
            f"server stop -m immediate: restarts={r['restarts']} (down {r['down_seconds']:.1f} s "
            f"in all) writers={r['writers']} batches={r['batches']} acked={r['acked']} "
            f"acked before each stop={r['acked_before_each_stop']} "
            f"StoreUnavailable={r['unavailable']} (writers {r['writers_that_saw_unavailable']}) "
            f"raw psycopg errors={r['raw_psycopg']} reconnects={r['reconnects']} "
            f"in_doubt={r['in_doubt']} (committed {r['in_doubt_committed']}) lost={r['lost']} "
            f"duplicated={r['duplicated']} events={r['events']}/{r['expected_events']} "
            f"verify={'ok' if r['verify_ok'] else 'FAILED'}"
        )
        c = race
        print(
            f"16 writers on one ticket: appends={c['appends']} versions={c['versions']} "
            f"max winners per version={c['max_winners_per_version']} "
            f"conflicts={c['conflicts']} store_busy={c['store_busy']} "
            f"raw psycopg errors={c['raw_psycopg']} in {c['seconds']:.1f} s; "
            f"claims match the store={c['claims_match_store']} fold={c['fold_version_ok']} "
            f"verify={'ok' if c['verify_ok'] else 'FAILED'}"
        )
        for name, fig in (("kill -9", kill), ("restart", restart), ("race", race)):
            print(f"{name}: {'all checks pass' if not fig['problems'] else fig['problems']}")
    if kill["problems"] or restart["problems"] or race["problems"]:
        print("a check failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
