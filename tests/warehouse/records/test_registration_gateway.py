"""A registered patient goes where the practice's clients module says (issue 15's gateway), against the real
Animana simulator: in animana mode it is created in Animana first (with its owners), in hybrid it waits in the
outbox for the dispatcher, in native nothing is sent."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from connectors.animana.sync.links import LinkedPractice
from connectors.animana.writeback.write_through import WriteThrough
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.writeback_support import as_app, outbox, set_modes
from warehouse.integration.gateway import install_write_through
from warehouse.records.registration import NewPatient, register_patient
from warehouse.security.permissions import Actor

TODAY = dt.date(2026, 12, 4)


def _owner(world: SyncWorld, practice: LinkedPractice) -> tuple[int, int]:
    """(local id, Animana id) of a client that came from Animana."""
    with as_app(world, practice) as session:
        row = session.execute(
            text("SELECT id, animana_id FROM client WHERE animana_id IS NOT NULL ORDER BY id LIMIT 1")
        ).one()
    return row.id, int(row.animana_id)


def _register(world: SyncWorld, practice: LinkedPractice, name: str, chip: str) -> int:
    owner_id, _ = _owner(world, practice)
    patient = NewPatient(name=name, species="dog", sex="female", neutered=False, breed="Stabyhoun",
                         born=dt.date(2024, 5, 1), microchip=chip, owner_ids=[owner_id])  # fmt: skip
    actor = Actor.at(None, practice.practice_id, {"receptionist"})
    with world.client() as client, as_app(world, practice) as session:
        install_write_through(session, WriteThrough(client), master_key=MASTER_KEY)
        return register_patient(
            session, actor, practice_id=practice.practice_id, patient=patient, today=TODAY
        ).id


def _local(world: SyncWorld, practice: LinkedPractice, patient_id: int) -> tuple:
    with as_app(world, practice) as session:
        return tuple(
            session.execute(
                text("SELECT animana_id, writeback_pending FROM patient WHERE id = :id"), {"id": patient_id}
            ).one()
        )


def test_animana_mode_creates_the_patient_in_animana_first_with_its_owner(synced_world: SyncWorld):
    practice = synced_world.practices[1]  # animana mode: Animana is the back end
    _, owner_animana_id = _owner(synced_world, practice)
    patient_id = _register(synced_world, practice, "Fleur", "528210000000777")
    animana_id, pending = _local(synced_world, practice, patient_id)
    assert animana_id is not None and not pending
    with synced_world.client() as client:
        animal = client.get(practice.animana_id, "animals", int(animana_id))
    assert (animal.name, animal.breed, animal.gender, animal.chip_number) == (
        "Fleur", "Stabyhoun", "female", "528210000000777",
    )  # fmt: skip
    assert animal.relation_ids == [owner_animana_id] and animal.date_of_birth == dt.date(2024, 5, 1)
    assert [(e["table_name"], e["operation"], e["state"]) for e in outbox(synced_world, practice)] == [
        ("patient", "insert", "done")
    ]


def test_hybrid_mode_commits_here_and_leaves_the_write_for_the_dispatcher(synced_world: SyncWorld):
    practice = synced_world.practices[0]
    set_modes(synced_world, practice, "hybrid", ("clients",))
    patient_id = _register(synced_world, practice, "Guus", "528210000000778")
    assert _local(synced_world, practice, patient_id) == (None, True)
    entries = [
        (e["table_name"], e["row_id"], e["operation"], e["state"]) for e in outbox(synced_world, practice)
    ]
    assert entries == [("patient", patient_id, "insert", "pending")]


def test_native_mode_sends_nothing(synced_world: SyncWorld):
    practice = synced_world.practices[1]
    set_modes(synced_world, practice, "native", ("clients",))
    patient_id = _register(synced_world, practice, "Sam", "528210000000779")
    assert _local(synced_world, practice, patient_id) == (None, False)
    assert outbox(synced_world, practice) == []
