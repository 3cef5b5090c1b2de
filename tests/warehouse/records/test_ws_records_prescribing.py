"""Prescribing rules and vaccination reminders in the records service, against real PostgreSQL under RLS.

The medicine is named one way (a price-list medicine or a typed name); a listed medicine's dispensing category
is the product's; a typed name is never less restricted than a medicine of that name; UDA/UDD only by a
veterinarian; a medicine for another species only when confirmed. A new dose closes the earlier dose's reminder.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.factories import TZ
from warehouse.records import prescriptions, vaccinations
from warehouse.records.errors import RecordsError
from warehouse.records.patient_record import patient_record
from warehouse.records.prescriptions import CATEGORY_RANK
from warehouse.schema.billing import Product
from warehouse.schema.clinical import DISPENSING_CATEGORIES, Prescription, Reminder, Vaccination
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

VET = frozenset({"veterinarian"})
NURSE = frozenset({"nurse"})
# name, category, species (empty: not recorded), active
MEDICINES = [
    ("Equilis Prequenza Te", "UDD", ["horse"], True),
    ("Surolan oordruppels 15 ml", "UDA", ["dog", "cat"], True),
    ("Milbemax ontworming", "URA", [], True),
    ("Frontline Spot On", "VRIJ", [], True),
    ("Methadon 10 mg/ml", "UDD", [], False),  # taken off the list: its category still holds for a typed name
]


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def add_medicines(db) -> dict[str, int]:
    a1 = db.world.practices["a1"]
    with db.system() as session:
        products = [
            Product(franchise_id=a1.franchise_id, code=f"M{n}", name=name, kind="medicine", price_cents=1000,
                    vat_rate_bp=2100, dispensing_category=category, species=species or None, active=active)
            for n, (name, category, species, active) in enumerate(MEDICINES)
        ]  # fmt: skip
        session.add_all(products)
        session.flush()
        return {p.name: p.id for p in products}


def _saved(session, a1) -> list[str]:  # noqa: ANN001
    """The practice's prescriptions (the factories' world has one already), oldest first."""
    return session.scalars(select(Prescription.product_name).where(Prescription.practice_id == a1.practice_id)
                           .order_by(Prescription.id)).all()  # fmt: skip


def _prescribe(session, a1, roles, **kwargs):  # noqa: ANN001, ANN003, ANN202
    return prescriptions.prescribe(session, Actor.at(a1.user_id, a1.practice_id, roles), practice_id=a1.practice_id,
                                   patient_id=a1.patient_id, **{"quantity": "1", **kwargs})  # fmt: skip


def test_two_different_prescriptions_one_after_the_other_are_each_saved_as_chosen(ws_db):
    a1, ids = ws_db.world.practices["a1"], add_medicines(ws_db)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        first = _prescribe(session, a1, VET, product_id=ids["Surolan oordruppels 15 ml"], quantity="1",
                           dosage_instructions="2x daags 3 druppels in het linkeroor")  # fmt: skip
        second = _prescribe(session, a1, VET, product_name="  Metacam 1,5 mg/ml ", dispensing_category="UDA",
                            quantity="0,5", dosage_instructions="1x daags over het voer")  # fmt: skip
        first_id, second_id = first.id, second.id
    with ws_db.system() as session:
        rows = {r.id: r for r in session.scalars(select(Prescription).where(
            Prescription.practice_id == a1.practice_id, Prescription.id.in_([first_id, second_id])))}  # fmt: skip
    assert (rows[first_id].product_name, rows[first_id].product_id, rows[first_id].dispensing_category,
            rows[first_id].dosage_instructions) == (
        "Surolan oordruppels 15 ml", ids["Surolan oordruppels 15 ml"], "UDA", "2x daags 3 druppels in het linkeroor")  # fmt: skip
    assert (rows[second_id].product_name, rows[second_id].product_id, rows[second_id].dispensing_category,
            rows[second_id].quantity, rows[second_id].dosage_instructions) == (
        "Metacam 1,5 mg/ml", None, "UDA", Decimal("0.5"), "1x daags over het voer")  # fmt: skip


def test_a_listed_medicine_and_a_typed_name_together_are_refused_and_the_list_category_is_not_changed(ws_db):
    a1, ids = ws_db.world.practices["a1"], add_medicines(ws_db)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        before = _saved(session, a1)
        with pytest.raises(RecordsError, match="not both") as both:
            _prescribe(session, a1, VET, product_id=ids["Equilis Prequenza Te"],
                       product_name="Surolan oordruppels 15 ml", dispensing_category="UDA")  # fmt: skip
        assert both.value.field == "product"
        with pytest.raises(RecordsError, match="UDA in the price list") as changed:
            _prescribe(
                session, a1, VET, product_id=ids["Surolan oordruppels 15 ml"], dispensing_category="VRIJ"
            )
        assert changed.value.field == "dispensing_category"
        with pytest.raises(RecordsError) as nothing:
            _prescribe(session, a1, VET, product_name="   ", dispensing_category="VRIJ")
        assert nothing.value.field == "product"
        with pytest.raises(RecordsError) as long_name:
            _prescribe(session, a1, VET, product_name="x" * 201, dispensing_category="VRIJ")
        assert long_name.value.field == "product"  # refused, not cut short
        assert _saved(session, a1) == before


def test_a_nurse_cannot_prescribe_a_udd_medicine_by_typing_its_name_as_vrij(ws_db):
    a1, ids = ws_db.world.practices["a1"], add_medicines(ws_db)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        before = _saved(session, a1)
        with pytest.raises(RecordsError, match="UDD in the price list") as typed:
            _prescribe(session, a1, NURSE, product_name="equilis PREQUENZA te", dispensing_category="VRIJ")
        assert typed.value.field == "dispensing_category"
        with pytest.raises(RecordsError, match="UDD in the price list"):  # off the list, still UDD
            _prescribe(session, a1, NURSE, product_name="Methadon 10 mg/ml", dispensing_category="URA")
        with pytest.raises(NotPermitted, match="veterinarian"):
            _prescribe(session, a1, NURSE, product_name="Methadon 10 mg/ml", dispensing_category="UDD")
        with pytest.raises(NotPermitted, match="veterinarian"):  # UDA is prescription-only too
            _prescribe(session, a1, NURSE, product_id=ids["Surolan oordruppels 15 ml"])
        allowed = _prescribe(session, a1, NURSE, product_id=ids["Milbemax ontworming"])
        assert (allowed.dispensing_category, allowed.product_name) == ("URA", "Milbemax ontworming")
        assert _saved(session, a1) == [*before, "Milbemax ontworming"]


def test_a_medicine_for_another_species_needs_the_prescribers_confirmation(ws_db):
    a1, ids = ws_db.world.practices["a1"], add_medicines(ws_db)  # Bello-a1 is a dog
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        before = _saved(session, a1)
        with pytest.raises(RecordsError, match="registered for horse, not for dog") as listed:
            _prescribe(session, a1, VET, product_id=ids["Equilis Prequenza Te"])
        assert listed.value.field == "confirm_other_species"
        with pytest.raises(RecordsError, match="registered for horse") as typed:
            _prescribe(session, a1, VET, product_name="EQUILIS Prequenza Te", dispensing_category="UDD")
        assert typed.value.field == "confirm_other_species"
        assert _saved(session, a1) == before
        confirmed = _prescribe(
            session, a1, VET, product_id=ids["Equilis Prequenza Te"], confirm_other_species=True
        )
        for_dogs = _prescribe(
            session, a1, VET, product_id=ids["Surolan oordruppels 15 ml"]
        )  # no warning needed
        assert (confirmed.other_species_confirmed, for_dogs.other_species_confirmed) == (True, False)


# A typed name: one of the listed names in another case/spacing, or a name that is on no list.
_NAMES = st.one_of(
    st.sampled_from([m[0] for m in MEDICINES]).flatmap(
        lambda n: st.sampled_from([n, n.upper(), n.lower(), f"  {n} ", n.replace(" ", "  ")])
    ),
    st.sampled_from(["Metacam 1,5 mg/ml", "Ketamine", "Equilis", "Surolan"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    listed=st.booleans(),
    pick=st.integers(0, len(MEDICINES) - 2),  # the active medicines
    typed=_NAMES,
    roles=st.sampled_from([VET, NURSE, VET | NURSE]),
    chosen=st.one_of(st.none(), st.sampled_from(DISPENSING_CATEGORIES)),
    confirm=st.booleans(),
)
def test_the_saved_category_is_never_less_restricted_than_the_products(
    property_db, listed, pick, typed, roles, chosen, confirm
):
    """Whatever the form sends, a saved prescription's category is at least its medicine's (listed, or of the
    same name), UDA/UDD are saved for a veterinarian only, and another species is saved only when confirmed."""
    db, ids, a1 = property_db
    by_name = {" ".join(m[0].split()).casefold(): m for m in MEDICINES}
    name = MEDICINES[pick][0] if listed else typed
    medicine = by_name.get(" ".join(name.split()).casefold())
    with db.as_app(db.ctx) as session, session.begin_nested() as savepoint:
        try:
            saved = _prescribe(session, a1, roles, dispensing_category=chosen, confirm_other_species=confirm,
                               **({"product_id": ids[name]} if listed else {"product_name": typed}))  # fmt: skip
        except (RecordsError, NotPermitted):
            savepoint.rollback()
            return
        category, confirmed = saved.dispensing_category, saved.other_species_confirmed
        savepoint.rollback()
    if medicine is not None:
        assert CATEGORY_RANK[category] >= CATEGORY_RANK[medicine[1]]
        assert confirm or not medicine[2] or "dog" in medicine[2]
        assert confirmed == bool(medicine[2] and "dog" not in medicine[2])
    if listed:
        assert category == medicine[1]
    if category in ("UDA", "UDD"):
        assert "veterinarian" in roles


@pytest.fixture
def property_db(ws_db):
    ids = add_medicines(ws_db)
    ws_db.ctx = _ctx(ws_db, "a1")
    return ws_db, ids, ws_db.world.practices["a1"]


# --- vaccination reminders ----------------------------------------------------------------------------------------


def _reminder(db, vaccination_id):  # noqa: ANN001, ANN202
    with db.system() as session:
        return session.scalar(select(Reminder).where(Reminder.vaccination_id == vaccination_id))


def test_a_new_dose_closes_the_open_reminder_of_the_earlier_dose_with_a_trace(ws_db):
    a1 = ws_db.world.practices["a1"]
    today = dt.date(2027, 3, 1)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        protocol = vaccinations.vaccine_protocols(session, a1.practice_id, "dog")[0]
    with ws_db.system() as session:
        # An earlier dose as Animana delivers it: the vaccine's name, no protocol; its reminder was already sent.
        synced = Vaccination(practice_id=a1.practice_id, patient_id=a1.patient_id, vaccine_name=protocol.name.upper(),
                             given_on=dt.date(2026, 3, 10), due_on=dt.date(2027, 3, 10), animana_id="V-1")  # fmt: skip
        session.add(synced)
        session.flush()
        session.add(Reminder(practice_id=a1.practice_id, patient_id=a1.patient_id, kind="vaccination",
                             due_on=synced.due_on, vaccination_id=synced.id, status="sent"))  # fmt: skip
        synced_id = synced.id
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        new, new_reminder = vaccinations.record_vaccination(
            session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id, patient_id=a1.patient_id,
            protocol_id=protocol.id, given_on=today, today=today)  # fmt: skip
        new_id = new.id
        # Entered after the fact: a dose older than the one just recorded closes nothing newer, and its own
        # booster is already given.
        backdated, _ = vaccinations.record_vaccination(
            session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id, patient_id=a1.patient_id,
            protocol_id=protocol.id, given_on=dt.date(2026, 9, 1), today=today)  # fmt: skip
        backdated_id = backdated.id
    old = _reminder(ws_db, synced_id)
    assert (old.status, old.closed_by_vaccination_id) == ("done", new_id) and old.closed_at is not None
    current = _reminder(ws_db, new_id)
    assert (current.status, current.closed_by_vaccination_id) == ("pending", None)
    late = _reminder(ws_db, backdated_id)
    assert (late.status, late.closed_by_vaccination_id) == ("done", new_id)


def test_a_vaccination_on_the_timeline_is_a_day_in_local_time(ws_db):
    a1 = ws_db.world.practices["a1"]
    today = dt.date(2027, 3, 1)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        protocol = vaccinations.vaccine_protocols(session, a1.practice_id, "dog")[0]
        vaccinations.record_vaccination(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id,
                                        patient_id=a1.patient_id, protocol_id=protocol.id, given_on=today, today=today)  # fmt: skip
        rec = patient_record(session, a1.practice_id, a1.patient_id, today=today)
    row = rec.timeline.filter(kind="vaccination").row(0, named=True)
    assert row["all_day"] and row["at"].astimezone(TZ) == dt.datetime(2027, 3, 1, tzinfo=TZ)
    assert row["detail"] == "booster 29 feb 2028 (ok)"
