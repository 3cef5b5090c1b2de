"""A sync leaves the planner statistics of what it loaded (migration 0570), so key lookups right after a practice's
first sync are index lookups, not scans of its partition until autovacuum's next look."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.kernel.statistics import refresh_practice_statistics
from warehouse.kernel.tenancy import AccessContext


def _estimated_and_counted(world: SyncWorld, practice_id: int) -> tuple[float, int]:
    """The planner's row estimate for the practice's appointments, and their number."""
    with world.db.system() as session:
        plan = session.execute(
            text("EXPLAIN (FORMAT JSON) SELECT * FROM appointment WHERE practice_id = :p"), {"p": practice_id}
        ).scalar_one()
        count = session.execute(
            text("SELECT count(*) FROM appointment WHERE practice_id = :p"), {"p": practice_id}
        ).scalar_one()
    return plan[0]["Plan"]["Plan Rows"], count


def test_a_first_sync_leaves_statistics_of_the_practices_tables_and_a_later_change_refreshes_them(
    animana_world: SyncWorld,
):
    world = animana_world
    first, second = world.practices
    with world.client() as client:
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY)
    for practice in world.practices:
        estimated, counted = _estimated_and_counted(world, practice.practice_id)
        assert counted > 100
        # Without statistics the planner takes a filled partition for a handful of rows.
        assert 0.8 * counted <= estimated <= 1.2 * counted

    with world.db.system() as session:  # a few appointments changed: ordinary growth, autovacuum's to look at
        session.execute(
            text("UPDATE appointment SET reason = 'nog eens' WHERE practice_id = :p AND id % 10 = 0"),
            {"p": first.practice_id},
        )
        session.execute(text("SELECT pg_stat_force_next_flush()"))
    with world.db.as_app(AccessContext.for_practices([first.practice_id])) as session:
        analysed = refresh_practice_statistics(session, first.practice_id)
    assert f"appointment_p{first.practice_id}" not in analysed

    # A bulk rewrite: every appointment of the first practice changed twice.
    with world.db.system() as session:
        for round_ in ("herhaling", "nogmaals"):
            session.execute(
                text("UPDATE appointment SET reason = :r || id WHERE practice_id = :p"),
                {"r": round_, "p": first.practice_id},
            )
        session.execute(text("SELECT pg_stat_force_next_flush()"))
    with world.db.as_app(AccessContext.for_practices([first.practice_id])) as session:
        analysed = refresh_practice_statistics(session, first.practice_id)
    # The practice's own partition; never another practice's.
    assert f"appointment_p{first.practice_id}" in analysed
    assert not [t for t in analysed if t.endswith(f"_p{second.practice_id}")]


def test_statistics_are_refreshed_only_for_a_practice_of_the_callers_context(animana_world: SyncWorld):
    first, second = animana_world.practices
    with (
        pytest.raises(DBAPIError, match="not in the caller's access context"),
        animana_world.db.as_app(AccessContext.for_practices([first.practice_id])) as session,
    ):
        refresh_practice_statistics(session, second.practice_id)
