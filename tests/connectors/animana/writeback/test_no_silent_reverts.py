"""The issue's bug, in every mode: a receptionist cancels an Animana appointment and corrects a client's surname,
then the nightly full sync runs. Before issue 15 both were silently put back to Animana's values. Now they are
kept and written back (animana: before commit; hybrid: by the dispatcher, whichever of sync and push runs first),
queued as a conflict when Animana changed the same field meanwhile, or — native — simply VetConnect's.

Real simulator over HTTP, real PostgreSQL, the real sync, dispatcher and write-through."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import text

from connectors.animana.client import AnimanaClient
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import push
from connectors.animana.writeback.write_through import WriteThrough
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, booked_appointment, outbox, set_modes
from warehouse.integration import conflicts
from warehouse.integration.gateway import install_write_through
from warehouse.scheduling.transitions import cancel
from warehouse.security.permissions import Actor

MODULES = ("clients", "agenda")


def _a_client(world: SyncWorld, practice: LinkedPractice) -> tuple[int, int, str]:
    with as_app(world, practice) as session:
        row = session.execute(
            text(
                "SELECT id, animana_id, last_name FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1"
            )
        ).one()
    return row.id, int(row.animana_id), row.last_name


@contextmanager
def _desk(world: SyncWorld, practice: LinkedPractice, client: AnimanaClient, mode: str):  # noqa: ANN202
    """The receptionist's transaction, as the dashboard opens it (write-through installed)."""
    with as_app(world, practice) as session:
        if mode == "animana":
            install_write_through(session, WriteThrough(client), master_key=MASTER_KEY)
        yield session


def _receptionist_works(
    world: SyncWorld, practice: LinkedPractice, client: AnimanaClient, mode: str
) -> tuple:
    appointment_id, animana_appointment = booked_appointment(world, practice)
    client_id, animana_client, _ = _a_client(world, practice)
    desk = Actor.at(None, practice.practice_id, {"receptionist"})
    with _desk(world, practice, client, mode) as session:
        cancel(session, desk, practice_id=practice.practice_id, appointment_id=appointment_id, reason="Ziek")
        session.execute(text("UPDATE client SET last_name = 'Van der Berg' WHERE id = :c"), {"c": client_id})
    return appointment_id, animana_appointment, client_id, animana_client


def _full_sync(world: SyncWorld, client: AnimanaClient) -> None:
    sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, full=True)


def _local(
    world: SyncWorld, practice: LinkedPractice, appointment_id: int, client_id: int
) -> tuple[str, str]:
    with as_app(world, practice) as session:
        status = session.execute(
            text("SELECT status FROM appointment WHERE id = :a"), {"a": appointment_id}
        ).scalar_one()
        surname = session.execute(
            text("SELECT last_name FROM client WHERE id = :c"), {"c": client_id}
        ).scalar_one()
    return status, surname


def _in_animana(client: AnimanaClient, practice: LinkedPractice, appointment: int, relation: int) -> tuple:
    return (
        client.get(practice.animana_id, "agenda", appointment).status,
        client.get(practice.animana_id, "relations", relation).last_name,
    )


def _push(world: SyncWorld, client: AnimanaClient, practice: LinkedPractice):  # noqa: ANN202
    return push(world.db.app_engine, client, practice, master_key=MASTER_KEY)


def test_animana_mode_writes_before_commit_and_the_sync_keeps_it(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    with synced_world.client() as client:
        appointment, animana_appointment, client_id, relation = _receptionist_works(
            synced_world, practice, client, "animana"
        )
        # Animana had both before the receptionist's transaction committed.
        assert _in_animana(client, practice, animana_appointment, relation) == ("cancelled", "Van der Berg")
        _full_sync(synced_world, client)
    assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")
    assert {e["state"] for e in outbox(synced_world, practice)} == {"done"}


@pytest.mark.parametrize("sync_first", [True, False], ids=["sync-before-push", "push-before-sync"])
def test_hybrid_mode_keeps_the_writes_through_a_full_sync_and_writes_them_back(synced_world, sync_first):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", MODULES)
    with synced_world.client() as client:
        appointment, animana_appointment, client_id, relation = _receptionist_works(
            synced_world, practice, client, "hybrid"
        )
        assert _in_animana(client, practice, animana_appointment, relation) != ("cancelled", "Van der Berg")
        if sync_first:  # the nightly sync before the dispatcher got to it: held, settled, kept
            _full_sync(synced_world, client)
            assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")
        report = _push(synced_world, client, practice)
        assert report.sent == 2 and report.dead == 0
        assert _in_animana(client, practice, animana_appointment, relation) == ("cancelled", "Van der Berg")
        _full_sync(synced_world, client)
    assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")
    assert {e["state"] for e in outbox(synced_world, practice)} == {"done"}
    with as_app(synced_world, practice) as session:
        assert conflicts.open_conflicts(session, [practice.practice_id]) == []


def test_hybrid_mode_queues_a_conflict_when_animana_changed_the_same_field(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", MODULES)
    with synced_world.client() as client:
        appointment, _, client_id, relation = _receptionist_works(synced_world, practice, client, "hybrid")
        synced_world.sim.edit(practice.animana_id, "relations", relation, {"last_name": "Van den Berg"})
        _full_sync(synced_world, client)
        # Neither side silently wins: ours stays, Animana's waits beside it, nothing is pushed over it.
        assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")
        with as_app(synced_world, practice) as session:
            [conflict] = conflicts.open_conflicts(session, [practice.practice_id])
        assert [(f.column, f.local, f.animana) for f in conflict.fields] == [
            ("last_name", "Van der Berg", "Van den Berg")
        ]
        _push(synced_world, client, practice)
        assert client.get(practice.animana_id, "relations", relation).last_name == "Van den Berg"
        manager = Actor.at(None, practice.practice_id, {"practice_manager"})
        with as_app(synced_world, practice) as session:
            conflicts.resolve(session, manager, conflict.id, {"last_name": "local"})
        _push(synced_world, client, practice)
        assert client.get(practice.animana_id, "relations", relation).last_name == "Van der Berg"
        _full_sync(synced_world, client)
    assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")


def test_native_agenda_is_vetconnects_alone(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "native", ("agenda",))
    with synced_world.client() as client:
        appointment, animana_appointment, client_id, relation = _receptionist_works(
            synced_world, practice, client, "hybrid"
        )
        _full_sync(synced_world, client)
        # Animana is frozen history for the agenda: not read (the cancellation stays), not written (still booked
        # there); the clients module is still animana's, so the surname went through the outbox.
        assert client.get(practice.animana_id, "agenda", animana_appointment).status == "booked"
    assert _local(synced_world, practice, appointment, client_id) == ("cancelled", "Van der Berg")
    assert [e["table_name"] for e in outbox(synced_world, practice)] == ["client"]
