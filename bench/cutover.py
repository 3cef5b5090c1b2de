"""Cut-over benchmark (not a test; prints figures).

    .venv/bin/python bench/cutover.py --scale medium

One medium practice (~100k records, the `bench.ingest` world) from a simulator in its own process, synced in full
into a fresh migrated database (timed: the plain full sync). Then every module is cut over in turn — drain (empty
here), final incremental sync, reconciliation of every record against the API, switch to native — each timed with
its reconciliation's record count. Printed: the time per module, the whole practice's, and its ratio to the full
sync of the same practice measured in the same run.

Target (issue 16): cut-over of one medium practice with reconciliation < 60 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.ingest import MASTER_KEY, SECRET, api_totals, link_practices, new_database, start_simulator
from connectors.animana import AnimanaClient, load_settings
from connectors.animana.cutover import AnimanaCutover
from connectors.animana.sync.links import linked_practices
from connectors.animana.sync.practice import sync_practice
from vetconnect import pgserver
from warehouse.integration.cutover import cut_over
from warehouse.kernel.db import app_url, make_engine
from warehouse.schema.tenancy import MODULES
from warehouse.security.permissions import Actor


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="medium", choices=("small", "medium", "large"))
    parser.add_argument("--port", type=int, default=8797)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vetconnect-bench-cutover-"))
    server = pgserver.start(workdir / "pgdata").url(database="postgres")
    sim = start_simulator(1, args.scale, args.port)
    base = f"http://127.0.0.1:{args.port}"
    try:
        url = new_database(server)
        link_practices(url, 1)
        admin_engine, app_engine = make_engine(url), make_engine(app_url(url))
        (practice,) = linked_practices(admin_engine)
        records = api_totals(base, 1)
        with AnimanaClient(
            load_settings(url=base, client_id="vetconnect-sim", client_secret=SECRET)
        ) as client:
            started = time.perf_counter()
            sync_practice(app_engine, client, practice, master_key=MASTER_KEY, full=True)
            full_s = time.perf_counter() - started

            port = AnimanaCutover(app_engine, client, master_key=MASTER_KEY)
            actor = Actor(None, {practice.practice_id: frozenset({"franchise_admin"})})
            rows = []
            for module in MODULES:
                started = time.perf_counter()
                result = cut_over(
                    app_engine,
                    port,
                    actor,
                    practice_id=practice.practice_id,
                    module=module,
                    master_key=MASTER_KEY,
                )
                elapsed = time.perf_counter() - started
                reconciled = sum(r.api for r in result.resources)
                rows.append((module, result.outcome, reconciled, result.difference_count, elapsed))
        total_s = sum(r[-1] for r in rows)
        print(f"practice: {args.scale}, {records:,} records in Animana (all resources)")
        print(f"plain full sync:           {full_s:7.1f} s")
        print(f"{'module':<10} {'outcome':<8} {'reconciled':>10} {'diffs':>6} {'time':>8} {'records/s':>10}")
        for module, outcome, reconciled, diffs, elapsed in rows:
            print(
                f"{module:<10} {outcome:<8} {reconciled:>10,} {diffs:>6} {elapsed:>7.1f}s {reconciled / elapsed:>10,.0f}"
            )
        reconciled = sum(r[2] for r in rows)
        print(
            f"cut-over of every module:  {total_s:7.1f} s for {reconciled:,} reconciled records (target < 60 s)"
        )
        print(f"ratio to the full sync:    {total_s / full_s:7.2f}")
    finally:
        sim.kill()
        sim.wait()
        pgserver.stop(workdir / "pgdata")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
