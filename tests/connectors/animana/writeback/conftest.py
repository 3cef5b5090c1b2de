"""The write-back tests' world: synced, with practice 1001 writing back in hybrid mode (clients and agenda)."""

from __future__ import annotations

import pytest

from tests.animana_sync_support import SyncWorld
from tests.connectors.animana.writeback.writeback_support import set_modes


@pytest.fixture
def hybrid(synced_world: SyncWorld) -> SyncWorld:
    """`synced_world` with practice 1001's clients and agenda in hybrid mode (1002 stays animana)."""
    set_modes(synced_world, synced_world.practices[0], "hybrid", ("clients", "agenda"))
    return synced_world
