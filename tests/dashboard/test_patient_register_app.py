"""The "Register patient" page and the "Mark deceased" action under AppTest: a receptionist registers a cat for
its owner (errors at their fields, nothing lost, the franchise chip pointer as a warning, a breed added to the
practice's list), a nurse marks a patient deceased after being told what it cancels, and a role without
CLIENTS_WRITE gets neither."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.dashboard.test_ws_app import ok, texts
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD, TZ
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.schema.clients import ClientPatient, Patient
from warehouse.schema.clinical import Reminder
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import add_user

PAGE = "workspaces/patient_register.py"
CHIP = "528140000999001"


def test_a_receptionist_registers_a_cat_for_its_owner(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:  # the chip is known at a2, another practice of the franchise
        session.add(Patient(practice_id=app_env.world.practices["a2"].practice_id, name="Pluis", species="cat",
                            microchip=CHIP))  # fmt: skip
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    ok(at)
    assert at.title[0].value == "Register patient"
    # Nothing filled in: the first refusal is at the name, and nothing is saved.
    click(at, "Register patient")
    ok(at)
    assert [e.value for e in at.error] == ["Type the patient's name."]
    at.text_input(key="reg.name").input("Minoes")
    at.selectbox(key="reg.species").set_value("cat").run()
    assert "Maine Coon" in at.selectbox(key="reg.breed").options
    assert "Labrador Retriever" not in at.selectbox(key="reg.breed").options
    at.selectbox(key="reg.breed").set_value("Maine Coon")
    at.radio(key="reg.sex").set_value("female")
    at.checkbox(key="reg.neutered").check()
    at.date_input(key="reg.dob").set_value(dt.datetime.now(TZ).date() + dt.timedelta(days=3))
    at.text_input(key="reg.chip").input("528 140 000 999 001").run()
    ok(at)
    assert [w.value for w in at.warning] == ["This chip is known at Praktijk a2."]  # pointed out, not refused
    click(at, "Register patient")
    ok(at)
    assert [e.value for e in at.error] == ["The date of birth cannot be in the future."]
    assert at.text_input(key="reg.name").value == "Minoes"  # nothing typed is lost
    # An estimated age instead, and the owner found by name.
    at.radio(key="reg.birth_mode").set_value("Estimated age").run()
    at.number_input(key="reg.age_years").set_value(4)
    at.text_input(key="reg.owner_query").input("Jansen").run()
    ok(at)
    assert "Jansen-b1" not in texts(at)
    at.button(key=f"reg.add.{a1.client_id}").click().run()
    ok(at)
    assert any("primary owner" in m.value for m in at.markdown)
    click(at, "Register patient")
    ok(at)
    assert at.success[0].value == "Minoes is registered."
    assert [w.value for w in at.warning] == ["This chip is known at Praktijk a2."]
    assert at.text_input(key="reg.name").value == "" and at.selectbox(key="reg.species").value is None
    with app_env.system() as session:
        cat = session.scalar(
            select(Patient).where(Patient.practice_id == a1.practice_id, Patient.name == "Minoes")
        )
        owner = session.scalar(select(ClientPatient.client_id).where(ClientPatient.practice_id == a1.practice_id,
                                                                     ClientPatient.patient_id == cat.id))  # fmt: skip
    assert (cat.breed, cat.sex, cat.microchip, cat.date_of_birth_estimated, owner) == (
        "Maine Coon", "female_neutered", CHIP, True, a1.client_id,
    )  # fmt: skip
    # A receptionist does not read clinical records: the way on is the owner's card, which lists the cat.
    assert not any(b.key == "reg.open" for b in at.button)
    at.button(key="reg.card").click().run()
    ok(at)
    assert "Jansen-a1" in at.title[0].value and "Minoes" in texts(at)


def test_a_breed_missing_from_the_list_is_added_to_the_practice_s_list_and_chosen(app_env):
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    at.selectbox(key="reg.species").set_value("dog").run()
    at.text_input(key="reg.new_breed").input("Kooikerhondje")
    click(at, "Add breed")
    ok(at)
    assert "Kooikerhondje is already on the dog list." in [e.value for e in at.error]
    at.text_input(key="reg.new_breed").input("Drentsche Patrijshond")
    click(at, "Add breed")
    ok(at)
    assert at.selectbox(key="reg.breed").value == "Drentsche Patrijshond"
    assert at.text_input(key="reg.new_breed").value == ""


def test_a_nurse_marks_a_patient_deceased_after_being_told_what_it_cancels(app_env):
    a1 = app_env.world.practices["a1"]
    tomorrow = dt.datetime.combine(dt.datetime.now(TZ).date() + dt.timedelta(days=1), dt.time(11), TZ)
    with app_env.system() as session:
        add_user(session, username="nurse-a1", full_name="Nurse A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "nurse")])  # fmt: skip
        future = Appointment(practice_id=a1.practice_id, resource_id=a1.resource_id, patient_id=a1.patient_id,
                             client_id=a1.client_id, franchise_id=a1.franchise_id, starts_at=tomorrow,
                             ends_at=tomorrow + dt.timedelta(minutes=15), status="booked")  # fmt: skip
        session.add(future)
        session.flush()
        todays = session.get(Appointment, (a1.practice_id, app_env.week.today_appointment["a1"]))
        appointments = 2 if todays.starts_at > dt.datetime.now(dt.UTC) else 1
        future_id = future.id
    at = sign_in("nurse-a1")
    at.switch_page("workspaces/records.py").run()
    at.text_input(key="rec.query").input("Bello").run()
    at.selectbox(key="rec.patient").set_value(a1.patient_id).run()
    ok(at)
    key = f"dec.{a1.practice_id}.{a1.patient_id}"
    at.button(key=f"{key}.ask").click().run()
    ok(at)
    plural = "s" if appointments > 1 else ""
    assert at.warning[0].value == f"This cancels {appointments} appointment{plural} and 1 reminder. Continue?"
    with app_env.system() as session:  # asking changed nothing
        assert not session.get(Patient, (a1.practice_id, a1.patient_id)).deceased
    at.button(key=f"{key}.confirm").click().run()
    ok(at)
    assert at.title[0].value == "Bello-a1 · dog (deceased)"  # the record stays open
    assert at.success[0].value == (
        f"Bello-a1 is recorded as deceased; cancelled {appointments} appointment{plural} and 1 reminder."
    )
    assert not any(b.key == f"{key}.ask" for b in at.button) and not any(
        b.key == "rec.book" for b in at.button
    )
    with app_env.system() as session:
        bello = session.get(Patient, (a1.practice_id, a1.patient_id))
        cancelled = session.get(Appointment, (a1.practice_id, future_id))
        reminders = session.scalars(
            select(Reminder.status).where(Reminder.practice_id == a1.practice_id)
        ).all()
    assert (bello.deceased, bello.deceased_on) == (True, dt.datetime.now(TZ).date())
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "Patient deceased")
    assert reminders == ["cancelled"]


def test_a_role_without_clients_write_gets_no_registration_and_no_deceased_action(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in("fm-a")  # franchise manager: reads records, registers nothing
    at.selectbox(key="practice_choice").set_value(a1.practice_id).run()
    ok(at)
    assert not offered(at, PAGE)
    at.switch_page("workspaces/records.py").run()
    at.text_input(key="rec.query").input("Bello").run()
    at.selectbox(key="rec.patient").set_value(a1.patient_id).run()
    ok(at)
    assert at.title[0].value == "Bello-a1 · dog"
    assert "Mark deceased" not in [e.label for e in at.expander]
    receptionist = sign_in(RECEPTIONIST)
    assert offered(receptionist, PAGE)
