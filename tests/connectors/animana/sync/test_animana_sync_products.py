"""The price list through the real sync (simulator over HTTP, real PostgreSQL): each article's target species
and the lab category land in the franchise's `product` rows, and the records rules use them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from connectors.animana.simulator.catalog.products import PRODUCTS
from connectors.animana.sync.service import sync_all
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.kernel.tenancy import AccessContext
from warehouse.records import prescriptions
from warehouse.records.errors import RecordsError
from warehouse.security.permissions import Actor

PRODUCTS_OF = "SELECT code, kind, species FROM product WHERE franchise_id = :f"


def _products(world: SyncWorld) -> dict[str, tuple[str, list[str] | None]]:
    with world.db.system("test: products") as session:
        rows = session.execute(text(PRODUCTS_OF), {"f": world.practices[0].franchise_id}).all()
    return {code: (kind, species) for code, kind, species in rows}


def test_the_synced_price_list_keeps_each_articles_species_and_its_lab_tests(synced_world: SyncWorld):
    products = _products(synced_world)
    assert products["V007"] == ("medicine", ["horse"])  # Equilis Prequenza Te
    assert products["M003"] == ("medicine", ["dog", "cat"])
    assert products["C014"] == ("lab", None)  # Laboratoriumonderzoek bloed
    assert products["C001"] == ("service", None)  # a consult is for any species: nothing recorded
    # Every article of the simulator's price list, as it is there.
    assert {code: species for code, (_, species) in products.items()} == {
        p.code: list(p.species) or None for p in PRODUCTS
    }
    assert {code for code, (kind, _) in products.items() if kind == "lab"} == {
        p.code for p in PRODUCTS if p.category == "lab"
    }


def _vet(world: SyncWorld) -> int:
    with world.db.system("test: a vet") as session:
        return session.scalar(
            text("INSERT INTO app_user (username, full_name, password_hash) VALUES ('vet-sync', 'Vet', 'x') "
                 "RETURNING id")
        )  # fmt: skip


def _a_patient(world: SyncWorld, species: str) -> tuple[int, int, int]:
    """The first synced live patient of ``species`` (practice id, patient id) and the synced Equilis's id."""
    with world.db.system("test: a patient") as session:
        row = session.execute(
            text("SELECT pa.practice_id, pa.id, pr.id FROM patient pa JOIN product pr ON pr.franchise_id = :f "
                 "AND pr.code = 'V007' WHERE pa.practice_id = ANY(:p) AND pa.species = :s AND NOT pa.deceased "
                 "ORDER BY pa.practice_id, pa.id LIMIT 1"),
            {"p": [p.practice_id for p in world.practices], "f": world.practices[0].franchise_id, "s": species},
        ).one()  # fmt: skip
    return row[0], row[1], row[2]


def _prescribe_equilis(world: SyncWorld, vet: int, species: str, **kwargs: bool) -> tuple[str, str, bool]:
    """Equilis for the first patient of ``species``: the saved name, dispensing category and confirmation."""
    practice_id, patient_id, equilis = _a_patient(world, species)
    with world.db.as_app(AccessContext.for_practices([practice_id], user_id=vet)) as session:
        prescription = prescriptions.prescribe(
            session, Actor.at(vet, practice_id, {"veterinarian"}), practice_id=practice_id, patient_id=patient_id,
            product_id=equilis, quantity="1", **kwargs,
        )  # fmt: skip
        return (
            prescription.product_name,
            prescription.dispensing_category,
            prescription.other_species_confirmed,
        )


def test_prescribing_the_synced_horse_vaccine_for_a_dog_needs_the_prescribers_confirmation(
    synced_world: SyncWorld,
):
    vet = _vet(synced_world)
    with pytest.raises(RecordsError) as refused:
        _prescribe_equilis(synced_world, vet, "dog")
    assert refused.value.field == "confirm_other_species"
    assert str(refused.value).startswith("Equilis Prequenza Te is registered for horse, not for dog.")
    confirmed = _prescribe_equilis(synced_world, vet, "dog", confirm_other_species=True)
    assert confirmed == ("Equilis Prequenza Te", "UDD", True)
    # For its own species no question is asked.
    assert _prescribe_equilis(synced_world, vet, "horse") == ("Equilis Prequenza Te", "UDD", False)


def test_a_price_list_loaded_before_species_and_lab_were_synced_is_completed_never_overwritten(
    synced_world: SyncWorld,
):
    """A franchise list loaded by an earlier sync (no species, the lab test as a service) is completed by the
        next sync — products are always read whole — but what the franchise already records is not changed. Two
    practices completing the same rows at once do not deadlock."""
    world, franchise = synced_world, synced_world.practices[0].franchise_id
    with world.db.system("test: an older price list") as session:
        session.execute(
            text("UPDATE product SET species = NULL, kind = CASE code WHEN 'C014' THEN 'service' ELSE kind END "
                 "WHERE franchise_id = :f AND code IN ('V007', 'C014')"), {"f": franchise},
        )  # fmt: skip
        session.execute(
            text("UPDATE product SET species = ARRAY['dog'], kind = 'goods' WHERE franchise_id = :f "
                 "AND code = 'M003'"), {"f": franchise},
        )  # fmt: skip
    with world.client() as client:  # both practices of the franchise at once: they complete the same rows
        sync_all(world.db.app_engine, client, world.practices, master_key=MASTER_KEY, workers=2)
    products = _products(world)
    assert products["V007"] == ("medicine", ["horse"]) and products["C014"] == ("lab", None)
    assert products["M003"] == ("goods", ["dog"])  # the franchise's own decision stands
