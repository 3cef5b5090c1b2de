"""Full and incremental syncs against the simulator over HTTP into a real PostgreSQL."""

from __future__ import annotations

from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld


def test_full_sync_mirrors_the_api_counts_and_a_second_sync_changes_nothing(animana_world: SyncWorld):
    world = animana_world
    with world.client() as client:
        results = sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
    assert all(r.totals().inserted > 0 for r in results)
    world.assert_counts_match()
    before = world.snapshot()
    with world.client() as client:
        again = sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
        full = sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, full=True)
    for result in again + full:
        totals = result.totals()
        assert (totals.inserted, totals.updated, totals.deleted, totals.quarantined) == (0, 0, 0, 0)
    assert world.snapshot() == before
