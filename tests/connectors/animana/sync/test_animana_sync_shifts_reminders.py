"""The two resources added through specs (issue 14): Animana's werkrooster lands in ``staff_shift`` and its own
reminders in ``reminder``, beside what VetConnect plans and generates itself, over real HTTP and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from connectors.animana.resources.registry import RESOURCE_ORDER
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.kernel.tenancy import AccessContext
from warehouse.scheduling.rosters import roster_agenda

SYNCED_SHIFTS = "SELECT count(*) FROM staff_shift WHERE practice_id = :p AND animana_id IS NOT NULL"


def _sync(world: SyncWorld, **kwargs):  # noqa: ANN003, ANN202
    with world.client() as client:
        return sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, **kwargs)


def _scalar(world: SyncWorld, sql: str, **params: object) -> object:
    with world.db.system() as session:
        return session.execute(text(sql), params).scalar_one()


def test_shifts_and_reminders_are_mirrored_and_counted_against_the_api(animana_world):
    world = animana_world
    _sync(world)
    world.assert_counts_match()  # the drift check counts the two new resources by their specs too
    practice = world.practices[0].practice_id
    with world.client() as client:
        api = client.counts(world.practices[0].animana_id)
    assert api["shifts"] > 0 and api["reminders"] > 0
    assert _scalar(world, SYNCED_SHIFTS, p=practice) == api["shifts"]
    # Every synced shift sits on a staff member's resource, and every vet's appointment falls in one of them.
    assert _scalar(world, """SELECT count(*) FROM staff_shift s JOIN resource r ON r.practice_id = s.practice_id
                             AND r.id = s.resource_id WHERE s.practice_id = :p AND s.animana_id IS NOT NULL
                             AND NOT starts_with(r.animana_id, 'staff:')""", p=practice) == 0  # fmt: skip
    # Animana's vocabulary in the warehouse's: check-up → recall, open → pending; a vaccination reminder points
    # at its mirrored vaccination, a sent one has its moment.
    with world.db.system() as session:
        kinds = dict(session.execute(text(
            "SELECT kind, count(*) FROM reminder WHERE practice_id = :p AND animana_id IS NOT NULL GROUP BY kind"),
            {"p": practice}).all())  # fmt: skip
        statuses = {s for (s,) in session.execute(text(
            "SELECT DISTINCT status FROM reminder WHERE practice_id = :p AND animana_id IS NOT NULL"), {"p": practice})}  # fmt: skip
        unlinked = session.execute(text(
            "SELECT count(*) FROM reminder WHERE practice_id = :p AND animana_id IS NOT NULL AND kind = 'vaccination' "
            "AND vaccination_id IS NULL"), {"p": practice}).scalar_one()  # fmt: skip
        sent_without_moment = session.execute(text(
            "SELECT count(*) FROM reminder WHERE practice_id = :p AND animana_id IS NOT NULL AND status = 'sent' "
            "AND sent_at IS NULL"), {"p": practice}).scalar_one()  # fmt: skip
    assert set(kinds) <= {"vaccination", "recall", "other"} and kinds.get("vaccination", 0) > 0
    assert statuses <= {"pending", "sent", "cancelled"} and "pending" in statuses
    assert unlinked == 0 and sent_without_moment == 0


def test_changed_and_deleted_shifts_and_reminders_follow_upstream(animana_world):
    world = animana_world
    _sync(world)
    changes = world.sim.mutate(1002, shift_changes=8, reminder_changes=8, seed=3)
    results = {r.practice.code: r for r in _sync(world)}
    counts = results["sync-1002"].counts
    touched = counts["shifts"].inserted + counts["shifts"].updated + counts["shifts"].deleted
    assert touched > 0 and counts["reminders"].updated + counts["reminders"].deleted > 0, changes
    assert results["sync-1001"].totals().updated == 0
    world.assert_counts_match()
    again = _sync(world)  # nothing left to apply
    assert all(r.totals().inserted + r.totals().updated + r.totals().deleted == 0 for r in again)


def test_a_roster_laid_before_the_werkrooster_gives_way_to_it(animana_world):
    """A practice rostered by VetConnect before its shifts were synced: the first sync of the werkrooster
    replaces the planned shifts of its Animana staff (the database refuses overlapping shifts), and the rooms
    keep theirs."""
    world = animana_world
    _sync(world, resources=[r for r in RESOURCE_ORDER if r not in ("shifts", "reminders")])
    practice = world.practices[0].practice_id
    with world.db.as_app(AccessContext.for_practices([practice])) as session:
        planned = roster_agenda(session, practice)
    planned_staff = _scalar(world, """SELECT count(*) FROM staff_shift s JOIN resource r ON r.practice_id = s.practice_id
        AND r.id = s.resource_id WHERE s.practice_id = :p AND starts_with(r.animana_id, 'staff:')""", p=practice)  # fmt: skip
    planned_rooms = planned - planned_staff
    assert planned_staff > 0 and planned_rooms > 0
    _sync(world)
    world.assert_counts_match()
    assert _scalar(world, """SELECT count(*) FROM staff_shift s JOIN resource r ON r.practice_id = s.practice_id
        AND r.id = s.resource_id WHERE s.practice_id = :p AND s.animana_id IS NULL
        AND starts_with(r.animana_id, 'staff:')""", p=practice) == 0  # fmt: skip
    assert _scalar(world, "SELECT count(*) FROM staff_shift WHERE practice_id = :p AND animana_id IS NULL",
                   p=practice) == planned_rooms  # fmt: skip
