"""The synced world of the pipeline, sync and model tests: a warehouse database linked to a running Animana
simulator. A pytest plugin (``tests/conftest.py``), so tests in any package use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.animana.simulator import running_simulator
from tests.animana_sync_support import SECRET, SyncWorld, link_world


@pytest.fixture
def animana_world(fresh_db) -> Iterator[SyncWorld]:  # noqa: ANN001
    """A fresh warehouse with two practices linked to a small, seeded, fault-free simulator of their own."""
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        yield SyncWorld(fresh_db, sim, link_world(fresh_db, [1001, 1002]))


@pytest.fixture
def other_db(server_url: str, template_db: str) -> Iterator:
    """A second migrated database, for comparing two ways of reaching the same state."""
    from tests.conftest import drop_database, open_database

    db = open_database(server_url, template_db)
    yield db
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture
def synced_world(animana_world: SyncWorld) -> SyncWorld:
    """`animana_world` after one complete sync."""
    from connectors.animana.sync.service import sync_all
    from tests.animana_sync_support import MASTER_KEY

    with animana_world.client() as client:
        sync_all(animana_world.db.app_engine, client, animana_world.practices, master_key=MASTER_KEY)
    return animana_world
