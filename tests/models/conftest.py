"""Models tests: small event logs in memory, and one warehouse synced from the Animana simulator per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.animana.simulator import running_simulator
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SECRET, SyncWorld, link_world
from warehouse.kernel.lookups import tenant_id_by_code


@pytest.fixture(scope="module")
def model_world(server_url: str, template_db: str) -> Iterator[SyncWorld]:
    """Two practices of one franchise ("fr-sync"), synced once from a seeded simulator (module-wide: tests
    that write must clean up or only add rows others ignore)."""
    from tests.conftest import drop_database, open_database

    db = open_database(server_url, template_db)
    with running_simulator(
        seed=11, practices=2, client_secret=SECRET, scale="small", history_years=3.0
    ) as sim:
        world = SyncWorld(db, sim, link_world(db, [1001, 1002]))
        with world.client() as client:
            sync_all(db.app_engine, client, world.practices, master_key=MASTER_KEY)
        yield world
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture(scope="module")
def franchise(model_world: SyncWorld) -> tuple[int, list[int]]:
    """The world's franchise id and its practice ids."""
    with model_world.db.system() as session:
        franchise_id = tenant_id_by_code(session, "fr-sync", "franchise")
    return franchise_id, [p.practice_id for p in model_world.practices]
