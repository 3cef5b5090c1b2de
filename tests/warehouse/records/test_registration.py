"""Registering patients against real PostgreSQL under RLS: owners and co-owners, an estimated birth date, the
breed list (seeded + the practice's own), one chip per live patient of a practice, the franchise pointer that
names another practice and nothing more, and refusals that leave nothing written."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from tests.factories import TZ
from warehouse.records import breeds
from warehouse.records.errors import RecordsError
from warehouse.records.registration import EstimatedAge, NewPatient, check_microchip, register_patient
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

TODAY = dt.datetime.now(TZ).date()
RECEPTION = frozenset({"receptionist"})
ANALYST = frozenset({"analyst"})
CHIP = "528140000999001"


def ctx(db, code):  # noqa: ANN001, ANN201
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def second_client(db, code: str) -> int:
    with db.system() as session:
        client = Client(practice_id=db.world.practices[code].practice_id, last_name=f"De Vries-{code}")
        session.add(client)
        session.flush()
        return client.id


def add_patient(db, code: str, **columns: object) -> int:
    with db.system() as session:
        patient = Patient(practice_id=db.world.practices[code].practice_id, species="cat", **columns)
        session.add(patient)
        session.flush()
        return patient.id


def register(db, code: str, patient: NewPatient, roles: frozenset[str] = RECEPTION):  # noqa: ANN201
    practice_id = db.world.practices[code].practice_id
    with db.as_app(ctx(db, code)) as session:
        return register_patient(
            session, Actor.at(None, practice_id, roles), practice_id=practice_id, patient=patient, today=TODAY
        )


def form(db, code: str, **changes: object) -> NewPatient:
    values: dict[str, object] = {
        "name": "  Minoes ", "species": "cat", "sex": "female", "neutered": True, "breed": "maine coon",
        "born": EstimatedAge(3, 6), "colour": "cyperse", "microchip": "528 140 000 999 001",
        "owner_ids": [db.world.practices[code].client_id],
    }  # fmt: skip
    return NewPatient(**{**values, **changes})  # type: ignore[arg-type]


def patients(db, code: str) -> int:
    with db.system() as session:
        practice_id = db.world.practices[code].practice_id
        return session.scalar(select(func.count()).where(Patient.practice_id == practice_id))


def test_a_receptionist_registers_a_patient_with_a_primary_owner_and_a_co_owner(ws_db):
    a1 = ws_db.world.practices["a1"]
    co_owner = second_client(ws_db, "a1")
    registered = register(ws_db, "a1", form(ws_db, "a1", owner_ids=[a1.client_id, co_owner, a1.client_id]))
    assert registered.name == "Minoes" and registered.chip.chip == CHIP and registered.chip.known_at == ()
    with ws_db.system() as session:
        row = session.get(Patient, (a1.practice_id, registered.id))
        owners = session.execute(
            select(ClientPatient.client_id, ClientPatient.is_primary)
            .where(ClientPatient.practice_id == a1.practice_id, ClientPatient.patient_id == row.id)
            .order_by(ClientPatient.is_primary.desc())
        ).all()
        audited = session.scalars(
            text("SELECT entity FROM audit_log WHERE practice_id = :p AND action = 'insert' AND :id = ANY(entity_ids)"),
            {"p": a1.practice_id, "id": row.id},
        ).all()  # fmt: skip
    assert (row.name, row.species, row.breed, row.sex, row.colour, row.microchip) == (
        "Minoes", "cat", "Maine Coon", "female_neutered", "cyperse", CHIP,
    )  # fmt: skip
    # "About 3½ years": counted back from today, and stored as an estimate.
    months_back = (TODAY.year * 12 + TODAY.month) - (row.date_of_birth.year * 12 + row.date_of_birth.month)
    assert months_back == 42 and row.date_of_birth_estimated
    assert owners == [(a1.client_id, True), (co_owner, False)]  # the first named is primary, each once
    assert "patient" in audited


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"name": "   "}, "name", "name"),
        ({"species": "dragon"}, "species", "species"),
        ({"breed": "Labrador Retriever"}, "breed", "not on the cat list"),
        ({"sex": "unknown", "neutered": True}, "neutered", "sex of a neutered"),
        ({"born": TODAY + dt.timedelta(days=1)}, "date_of_birth", "future"),
        ({"born": EstimatedAge(0, 0)}, "age", "at least one month"),
        ({"microchip": "52814000099900"}, "microchip", "15 digits, got 14"),
        ({"microchip": "999140000999001"}, "microchip", "reserved"),
        ({"microchip": "528140000123456"}, "microchip", "already registered here for Bello-a1"),
        ({"owner_ids": []}, "owners", "Choose the owner"),
    ],
)
def test_a_refused_field_is_named_and_nothing_is_written(ws_db, changes, field, says):
    before = patients(ws_db, "a1")
    with pytest.raises(RecordsError) as refused:
        register(ws_db, "a1", form(ws_db, "a1", **changes))
    assert refused.value.field == field and says in str(refused.value)
    assert patients(ws_db, "a1") == before


def test_an_owner_of_another_practice_is_refused(ws_db):
    b1 = ws_db.world.practices["b1"]
    with pytest.raises(RecordsError, match="not a client of this practice") as refused:
        register(ws_db, "a1", form(ws_db, "a1", owner_ids=[b1.client_id]))
    assert refused.value.field == "owners" and patients(ws_db, "b1") == 1


def test_a_role_without_clients_write_may_not_register(ws_db):
    with pytest.raises(NotPermitted, match="register clients and patients"):
        register(ws_db, "a1", form(ws_db, "a1"), roles=ANALYST)


def test_a_chip_known_at_another_practice_of_the_franchise_is_pointed_out_by_name_only(ws_db):
    add_patient(ws_db, "a2", name="Pluis", microchip=CHIP)
    add_patient(ws_db, "b1", name="Pluis-b", microchip=CHIP)  # another franchise: never named
    registered = register(ws_db, "a1", form(ws_db, "a1"))
    assert registered.chip.known_at == ("Praktijk a2",)
    assert registered.chip.pointer == "This chip is known at Praktijk a2."
    # The pointer says nothing else of a2, and a practice outside the caller's context gets no answer at all.
    b1 = ws_db.world.practices["b1"]
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        assert session.scalars(select(Patient.name).where(Patient.microchip == CHIP)).all() == ["Minoes"]
        for_b1 = session.scalars(
            text("SELECT microchip_known_in_franchise(:p, :c)"), {"p": b1.practice_id, "c": CHIP}
        ).all()
    assert for_b1 == []


def test_a_deleted_patient_s_chip_may_be_registered_again_and_the_database_refuses_a_second_live_one(ws_db):
    a1 = ws_db.world.practices["a1"]
    add_patient(ws_db, "a1", name="Oud", microchip=CHIP, deleted_at=dt.datetime.now(dt.UTC))
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        assert check_microchip(session, a1.practice_id, CHIP).chip == CHIP
    register(ws_db, "a1", form(ws_db, "a1"))
    with pytest.raises(IntegrityError) as refused:  # any write path, not only the service
        add_patient(ws_db, "a1", name="Dubbel", microchip=CHIP)
    assert isinstance(refused.value.orig, psycopg.errors.UniqueViolation)
    assert "uq_patient_microchip" in str(refused.value.orig)


def test_the_breed_list_is_the_seeded_one_plus_the_practice_s_own(ws_db):
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(None, a1.practice_id, RECEPTION)
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        dogs = breeds.breed_choices(session, a1.practice_id, "dog")
        assert {"Labrador Retriever", "Kooikerhondje", "Kruising a1"} <= set(dogs)
        assert "Kruising a2" not in dogs and dogs == sorted(dogs, key=str.casefold)
        assert "Maine Coon" not in dogs and "Maine Coon" in breeds.breed_choices(
            session, a1.practice_id, "cat"
        )
        assert breeds.add_breed(session, actor, practice_id=a1.practice_id, species="dog",
                                name="  Drentsche   Patrijshond ") == "Drentsche Patrijshond"  # fmt: skip
        with pytest.raises(RecordsError, match="Kooikerhondje is already on the dog list") as twice:
            breeds.add_breed(session, actor, practice_id=a1.practice_id, species="dog", name="KOOIKERHONDJE")
        assert twice.value.field == "new_breed"
        with pytest.raises(NotPermitted):
            breeds.add_breed(session, Actor.at(None, a1.practice_id, ANALYST), practice_id=a1.practice_id,
                             species="dog", name="Saarloos")  # fmt: skip
    registered = register(ws_db, "a1", form(ws_db, "a1", species="dog", breed="drentsche patrijshond",
                                            sex="male", neutered=False, microchip=None))  # fmt: skip
    with ws_db.system() as session:
        row = session.get(Patient, (a1.practice_id, registered.id))
        assert (row.breed, row.sex, row.microchip) == ("Drentsche Patrijshond", "male", None)
    with ws_db.as_app(ctx(ws_db, "a2")) as session:  # a1's addition is a1's own
        assert "Drentsche Patrijshond" not in breeds.breed_choices(
            session, ws_db.world.practices["a2"].practice_id, "dog"
        )
