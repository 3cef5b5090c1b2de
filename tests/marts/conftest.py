"""Marts tests run on a warehouse synced from the Animana simulator (the pipeline tests' helpers)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

from animana_sync_support import MASTER_KEY, SECRET, SyncWorld, link_world  # noqa: E402

from connectors.animana.simulator import running_simulator  # noqa: E402
from pipelines.animana.sync import sync_all  # noqa: E402
from vetconnect.demo import roster_and_remind  # noqa: E402

TODAY = dt.date(2026, 11, 1)


@pytest.fixture
def mart_world(fresh_db) -> Iterator[SyncWorld]:  # noqa: ANN001
    """Two practices of one franchise, synced from a seeded simulator, with rosters and reminders; the simulator
    keeps running."""
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        world = SyncWorld(fresh_db, sim, link_world(fresh_db, [1001, 1002]))
        sync(world)
        # What `vetconnect demo` does after its sync: Animana has neither rosters nor reminders.
        roster_and_remind(
            fresh_db.app_engine, fresh_db.admin_engine, [p.code for p in world.practices], today=TODAY
        )
        yield world


def sync(world: SyncWorld) -> None:
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
