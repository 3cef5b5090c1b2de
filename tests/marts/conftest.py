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
from warehouse.reminders import generate_vaccination_reminders  # noqa: E402
from warehouse.rosters import roster_agenda  # noqa: E402
from warehouse.tenancy import AccessContext  # noqa: E402

TODAY = dt.date(2026, 11, 1)


def roster_and_remind(world: SyncWorld) -> None:
    """What the demo does after a sync (Animana has neither rosters nor reminders): the standard week over
    each resource's agenda, and the vaccination reminders due by ``TODAY``."""
    for practice in world.practices:
        context = AccessContext.for_practices([practice.practice_id])
        with world.db.as_app(context) as session:
            roster_agenda(session, practice.practice_id)
            generate_vaccination_reminders(session, practice.practice_id, today=TODAY)


@pytest.fixture
def mart_world(fresh_db) -> Iterator[SyncWorld]:  # noqa: ANN001
    """Two practices of one franchise, synced from a seeded simulator, with rosters and reminders; the simulator
    keeps running."""
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        world = SyncWorld(fresh_db, sim, link_world(fresh_db, [1001, 1002]))
        sync(world)
        roster_and_remind(world)
        yield world


def sync(world: SyncWorld) -> None:
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
