"""The records workspace and client card under AppTest: a vet writes a consult note and vaccinates, errors stay
on their field without losing input, a receptionist gets no clinical writes, practice A never sees B."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.dashboard.test_ws_app import ok, texts
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST, click, sign_in
from tests.warehouse.records.test_ws_records_prescribing import add_medicines
from warehouse.schema.clinical import Prescription, Reminder, Vaccination, Visit
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import add_user


def _open_patient(at, rows):  # noqa: ANN001, ANN202
    at.switch_page("workspaces/records.py").run()
    ok(at)
    at.text_input(key="rec.query").input("Bello").run()
    at.selectbox(key="rec.patient").set_value(rows.patient_id).run()
    ok(at)
    return at


def test_vet_writes_a_consult_note_and_vaccinates(app_env):
    a1, week = app_env.world.practices["a1"], app_env.week
    at = _open_patient(sign_in("vet-a1"), a1)
    assert at.title[0].value == "Bello-a1 · dog"
    content = texts(at)
    assert "Bello-b1" not in content and "Jansen-b1" not in content
    # A note with nothing typed: the error sits under the first SOAP field.
    at.selectbox(key="rec.c.appointment").set_value(week.today_appointment["a1"])
    at.multiselect(key="rec.c.diagnoses").set_value(["Otitis externa"])  # typed: not on the coded list
    click(at, "Save note")
    ok(at)
    assert "at least one part" in at.error[0].value
    assert at.multiselect(key="rec.c.diagnoses").value == ["Otitis externa"]  # nothing typed is lost
    at.text_area(key="rec.c.subjective").input("Schudt met de kop")
    at.text_area(key="rec.c.assessment").input("Otitis links")
    at.checkbox(key="rec.c.finish").check()
    click(at, "Save note")
    ok(at)
    assert "Consult note saved" in at.success[0].value
    with app_env.system() as session:
        visit = session.scalar(select(Visit).where(Visit.practice_id == a1.practice_id,
                                                   Visit.appointment_id == week.today_appointment["a1"]))  # fmt: skip
        assert visit.subjective == "Schudt met de kop" and visit.vet_user_id == a1.user_id
        assert session.get(Appointment, (a1.practice_id, week.today_appointment["a1"])).status == "done"
    at.text_input(key="rec.v.batch").input("LOT-77")
    click(at, "Record vaccination")
    ok(at)
    assert "booster reminder due" in at.success[0].value
    with app_env.system() as session:
        vaccination = session.scalar(select(Vaccination).where(Vaccination.batch_number == "LOT-77"))
        reminder = session.scalar(select(Reminder).where(Reminder.vaccination_id == vaccination.id))
    assert (reminder.due_on - vaccination.given_on).days == 365 and reminder.status == "pending"


def test_receptionist_has_no_records_page_and_no_clinical_writes_on_the_client_card(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    ok(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in their navigation
        at.switch_page("workspaces/records.py")
    at.session_state["card.client"] = (a1.practice_id, a1.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    content = texts(at)
    assert "Jansen-a1" in at.title[0].value and "jansen.a1@example.nl" in content and "Bello-a1" in content
    assert "Open record" not in content and "Save note" not in content


def test_client_card_of_another_practice_is_not_shown(app_env):
    b1 = app_env.world.practices["b1"]
    at = sign_in("vet-a1")
    at.session_state["card.client"] = (b1.practice_id, b1.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    assert "Jansen-b1" not in texts(at) and "jansen.b1" not in texts(at)


def test_book_from_the_record_opens_scheduling_with_the_patient(app_env):
    a1 = app_env.world.practices["a1"]
    at = _open_patient(sign_in("vet-a1"), a1)
    at.button(key="rec.book").click().run()
    ok(at)
    assert at.title[0].value == "Scheduling" and at.selectbox(key="sched.patient").value == a1.patient_id


def _prescriptions(app_env, practice_id):  # noqa: ANN001, ANN202
    with app_env.system() as session:
        return session.execute(
            select(Prescription.product_name, Prescription.dispensing_category, Prescription.dosage_instructions,
                   Prescription.other_species_confirmed)
            .where(Prescription.practice_id == practice_id).order_by(Prescription.id)
        ).all()  # fmt: skip


def test_two_different_prescriptions_in_a_row_are_saved_as_chosen_and_the_form_clears(app_env):
    a1, ids = app_env.world.practices["a1"], add_medicines(app_env)
    before = _prescriptions(app_env, a1.practice_id)
    at = _open_patient(sign_in("vet-a1"), a1)
    at.selectbox(key="rec.p.product").set_value(ids["Equilis Prequenza Te"]).run()
    assert "registered for horse, not for dog" in at.warning[0].value  # shown before anything is saved
    at.text_input(key="rec.p.quantity").input("1")
    click(at, "Prescribe")
    ok(at)
    assert "registered for horse" in at.error[0].value and at.text_input(key="rec.p.quantity").value == "1"
    at.checkbox(key="rec.p.confirm").check()
    at.text_area(key="rec.p.dosage").input("Eenmalig i.m.")
    click(at, "Prescribe")
    ok(at)
    assert at.success[0].value == "Prescribed Equilis Prequenza Te (UDD), quantity 1 · Eenmalig i.m."
    # The form is empty again: nothing of the first medicine carries over into the second.
    assert at.selectbox(key="rec.p.product").value is None and at.text_input(key="rec.p.quantity").value == ""
    at.radio(key="rec.p.source").set_value("Type a name").run()
    at.text_input(key="rec.p.name").input("Surolan oordruppels 15 ml").run()
    at.selectbox(key="rec.p.category").set_value("VRIJ")
    at.text_input(key="rec.p.quantity").input("1")
    at.text_area(key="rec.p.dosage").input("2x daags 3 druppels in het oor")
    click(at, "Prescribe")
    ok(at)
    assert "UDA in the price list" in at.error[0].value  # a typed name is not less restricted than the list
    at.selectbox(key="rec.p.category").set_value("UDA")
    click(at, "Prescribe")
    ok(at)
    assert at.success[0].value == (
        "Prescribed Surolan oordruppels 15 ml (UDA), quantity 1 · 2x daags 3 druppels in het oor"
    )
    assert _prescriptions(app_env, a1.practice_id)[len(before) :] == [
        ("Equilis Prequenza Te", "UDD", "Eenmalig i.m.", True),
        ("Surolan oordruppels 15 ml", "UDA", "2x daags 3 druppels in het oor", False),
    ]


def test_a_nurse_typing_a_udd_medicine_as_vrij_is_refused_at_the_field_and_nothing_is_saved(app_env):
    a1, _ = app_env.world.practices["a1"], add_medicines(app_env)
    with app_env.system() as session:
        add_user(session, username="nurse-a1", full_name="Nurse A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "nurse")])  # fmt: skip
    before = _prescriptions(app_env, a1.practice_id)
    at = _open_patient(sign_in("nurse-a1"), a1)
    at.radio(key="rec.p.source").set_value("Type a name").run()
    at.text_input(key="rec.p.name").input("methadon 10 MG/ML").run()
    assert any("choose UDD or stricter" in c.value for c in at.caption)
    at.selectbox(key="rec.p.category").set_value("VRIJ")
    at.text_input(key="rec.p.quantity").input("2")
    click(at, "Prescribe")
    ok(at)
    assert "UDD in the price list" in at.error[0].value
    at.selectbox(key="rec.p.category").set_value("UDD")
    click(at, "Prescribe")
    ok(at)
    assert "veterinarian only" in at.error[0].value and not at.success
    assert at.text_input(key="rec.p.name").value == "methadon 10 MG/ML"  # the input is kept
    assert _prescriptions(app_env, a1.practice_id) == before
