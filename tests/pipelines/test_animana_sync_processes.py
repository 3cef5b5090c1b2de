"""Practices synced in worker processes (`sync_all(..., processes=True)`, what `vetconnect sync animana
--workers N` runs) end where syncing them one at a time ends, with progress relayed to the parent."""

from __future__ import annotations

import pytest
from animana_sync_support import MASTER_KEY, SyncWorld, link_world

from connectors.animana import NotFound
from pipelines.animana.sync import LinkedPractice, sync_all


def test_worker_processes_reach_the_same_state_as_one_practice_at_a_time(animana_world, other_db):
    world = animana_world
    serial = SyncWorld(other_db, world.sim, link_world(other_db, [1001, 1002]))
    with serial.client() as client:
        one_by_one = sync_all(serial.db.app_engine, client, serial.practices, master_key=MASTER_KEY)
    progress: list[tuple[str, str, int]] = []
    with world.client(page_size=50) as client:
        in_workers = sync_all(
            world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2, processes=True,
            progress=lambda code, resource, records: progress.append((code, resource, records)),
        )  # fmt: skip

    assert world.snapshot() == serial.snapshot()
    world.assert_counts_match()
    assert [r.practice for r in in_workers] == world.practices  # results in the order given
    assert [r.totals() for r in in_workers] == [r.totals() for r in one_by_one]
    assert [r.records for r in in_workers] == [r.records for r in one_by_one]
    for result in in_workers:  # every loaded batch was reported to the parent, per practice
        code = result.practice.code
        assert sum(n for c, _, n in progress if c == code) == result.records > 0
    with world.client() as client:  # and a second run in workers finds nothing new
        again = sync_all(
            world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2, processes=True
        )
    assert all(r.totals().inserted + r.totals().updated + r.totals().deleted == 0 for r in again)


def test_an_error_in_a_worker_process_reaches_the_caller_with_its_type(animana_world):
    world = animana_world
    unknown = LinkedPractice(world.practices[0].practice_id, world.practices[0].franchise_id, "ghost", 9999)
    with world.client() as client, pytest.raises(NotFound, match="9999"):
        sync_all(
            world.db.app_engine, client, [world.practices[1], unknown], master_key=MASTER_KEY, workers=2,
            processes=True,
        )  # fmt: skip
