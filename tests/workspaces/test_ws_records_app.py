"""The records workspace and client card under AppTest: a vet writes a consult note and vaccinates, errors stay
on their field without losing input, a receptionist gets no clinical writes, practice A never sees B."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.workspaces.conftest import RECEPTIONIST, click, sign_in
from tests.workspaces.test_ws_app import ok, texts
from warehouse.schema.clinical import Reminder, Vaccination, Visit
from warehouse.schema.scheduling import Appointment


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
    at.text_input(key="rec.c.diagnoses").input("Otitis externa")
    click(at, "Save note")
    ok(at)
    assert "at least one part" in at.error[0].value
    assert at.text_input(key="rec.c.diagnoses").value == "Otitis externa"  # nothing typed is lost
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
