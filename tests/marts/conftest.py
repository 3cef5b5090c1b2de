"""Marts tests run on a warehouse synced from the Animana simulator (the pipeline tests' helpers)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipelines"))

from animana_sync_support import MASTER_KEY, SECRET, SyncWorld, link_world  # noqa: E402

from connectors.animana.simulator import running_simulator  # noqa: E402
from pipelines.animana.sync import sync_all  # noqa: E402


def add_shifts(db) -> None:  # noqa: ANN001
    """Animana has no rosters: give every staff resource 08:00-17:00 shifts on the days it has appointments."""
    with db.system("test: shifts") as session:
        session.execute(
            text(
                "INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at) "
                "SELECT DISTINCT a.practice_id, a.resource_id, "
                "  ((a.starts_at AT TIME ZONE 'Europe/Amsterdam')::date + time '08:00') AT TIME ZONE 'Europe/Amsterdam', "
                "  ((a.starts_at AT TIME ZONE 'Europe/Amsterdam')::date + time '17:00') AT TIME ZONE 'Europe/Amsterdam' "
                "FROM appointment a JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id "
                "WHERE r.kind = 'staff'"
            )
        )


@pytest.fixture
def mart_world(fresh_db) -> Iterator[SyncWorld]:  # noqa: ANN001
    """Two practices of one franchise, synced from a seeded simulator, with shifts; the simulator keeps running."""
    with running_simulator(seed=11, practices=2, client_secret=SECRET) as sim:
        world = SyncWorld(fresh_db, sim, link_world(fresh_db, [1001, 1002]))
        sync(world)
        add_shifts(fresh_db)
        yield world


def sync(world: SyncWorld) -> None:
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)


TODAY = dt.date(2026, 11, 1)
