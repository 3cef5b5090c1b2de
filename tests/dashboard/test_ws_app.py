"""The workspaces under streamlit.testing.AppTest: sign-in (with MFA), every page per role, main actions
checked in the database, and isolation between practices."""

from __future__ import annotations

import datetime as dt

import pyotp
from sqlalchemy import select, text
from streamlit.testing.v1 import AppTest

from tests.factories import PASSWORD, TZ
from tests.practice_world import APP, RECEPTIONIST, click, sign_in
from warehouse.schema.scheduling import Appointment

PAGES = (
    "workspaces/scheduling.py",
    "workspaces/waiting_room.py",
    "workspaces/account.py",
    "workspaces/hub.py",
)


def ok(at) -> None:  # noqa: ANN001
    assert not at.exception, [e.value for e in at.exception]


def texts(at) -> str:  # noqa: ANN001
    parts = [m.value for kind in ("markdown", "caption", "title", "subheader", "error", "success", "info", "warning")
             for m in at.get(kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts) + "\n" + "\n".join(b.label for b in at.button)


def test_wrong_password_and_lockout(app_env):
    for attempt in range(5):
        at = sign_in("vet-a1", "wrong-password")
        ok(at)
        if attempt < 4:
            assert at.error[0].value == "Unknown user name or wrong password."
    assert (
        "locked after 5 failed sign-in attempts" in at.error[0].value
        and "Try again after" in at.error[0].value
    )
    at = sign_in("vet-a2")
    ok(at)
    assert at.title[0].value.startswith("Goedendag")


def test_franchise_manager_enrols_totp_then_signs_in_with_a_code_and_switches_practices(app_env):
    a1 = app_env.world.practices["a1"]
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input[0].input("fm-a")
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()
    assert at.subheader[0].value == "Set up two-step sign-in"
    assert "Enter this key by hand" in at.caption[-1].value
    secret = at.session_state["pending_sign_in"].enrolment.secret
    at.text_input[0].input("000000")
    at.button[0].click().run()
    assert "does not match" in at.error[0].value
    at.text_input[0].input(pyotp.TOTP(secret).now())
    at.button[0].click().run()
    ok(at)
    assert at.title[0].value.startswith("Goedendag") and any(
        "all practices" in c.value for c in at.main.caption
    )
    # The switcher narrows the context to one practice.
    at.selectbox(key="practice_choice").set_value(a1.practice_id).run()
    ok(at)
    assert any("Praktijk a1" in c.value for c in at.main.caption)
    # The next sign-in asks for a code from the app.
    at = sign_in("fm-a", secret=secret)
    ok(at)
    assert at.title[0].value.startswith("Goedendag")


def test_receptionist_books_from_the_form_conflict_offers_slots_then_reschedules_and_cancels(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    ok(at)
    at.switch_page("workspaces/scheduling.py").run()
    ok(at)
    assert at.title[0].value == "Scheduling"
    assert not any(b.label == "Start consult" for b in at.button)
    tomorrow = dt.datetime.now(TZ).date() + dt.timedelta(days=1)
    at.text_input(key="sched.patient_query").input("Belo").run()
    at.selectbox(key="sched.patient").set_value(a1.patient_id).run()
    at.selectbox(key="sched.resource").set_value(a1.resource_id)
    at.date_input(key="sched.book_day").set_value(tomorrow)
    at.time_input(key="sched.time").set_value(dt.time(11, 0))
    at.text_input(key="sched.reason").input("Hinkt links voor")
    click(at, "Book")
    ok(at)
    assert "Booked Bello-a1" in at.success[0].value
    with app_env.system() as session:
        booked = session.scalar(select(Appointment).where(Appointment.reason == "Hinkt links voor"))
    assert booked.starts_at == dt.datetime.combine(tomorrow, dt.time(11), TZ) and booked.booked_by is not None
    # Same slot again: the conflict names the appointment in the way and offers the next free slots.
    at.text_input(key="sched.patient_query").input("Bello").run()
    at.selectbox(key="sched.patient").set_value(a1.patient_id).run()
    at.selectbox(key="sched.resource").set_value(a1.resource_id)
    at.date_input(key="sched.book_day").set_value(tomorrow)
    at.time_input(key="sched.time").set_value(dt.time(11, 10))
    at.text_input(key="sched.reason").input("Tweede poging")
    click(at, "Book")
    ok(at)
    assert f"appointment {booked.id}" in at.error[0].value
    assert at.text_input(key="sched.reason").value == "Tweede poging"  # nothing typed is lost
    slot_buttons = [b for b in at.button if b.key and b.key.startswith("slot-")]
    assert slot_buttons and "11:20" in slot_buttons[0].label
    # A slot books for the patient it was offered for, even when the patient box arrives empty with the click
    # (a browser can send the widget's old value on that rerun).
    at.selectbox(key="sched.patient").set_value(None)
    slot_buttons[0].click().run()
    ok(at)
    assert any("Booked" in s.value and "11:20" in s.value for s in at.success)
    with app_env.system() as session:
        slotted = session.scalar(select(Appointment).where(Appointment.reason == "Tweede poging"))
    assert slotted.patient_id == a1.patient_id
    assert slotted.starts_at.astimezone(TZ) == dt.datetime.combine(tomorrow, dt.time(11, 20), TZ)
    # Manage it: reschedule to 14:00, then cancel with a reason.
    at.date_input[0].set_value(tomorrow).run()
    at.selectbox(key="sched.appointment").set_value(booked.id).run()
    at.time_input(key=f"sched.new_time.{booked.id}").set_value(dt.time(14, 0))
    click(at, "Reschedule")
    ok(at)
    at.text_input(key="sched.cancel_reason").input("Eigenaar belt af")
    click(at, "Cancel appointment")
    ok(at)
    with app_env.system() as session:
        final = session.get(Appointment, (a1.practice_id, booked.id))
    assert final.starts_at == dt.datetime.combine(tomorrow, dt.time(14), TZ)
    assert final.status == "cancelled" and final.cancel_reason == "Eigenaar belt af"


def test_check_in_from_the_waiting_room_and_the_vet_starts_the_consult(app_env):
    a1, week = app_env.world.practices["a1"], app_env.week
    appointment_id = week.today_appointment["a1"]
    at = sign_in(RECEPTIONIST)
    at.switch_page("workspaces/waiting_room.py").run()
    ok(at)
    assert at.subheader[0].value == "Expected · 1"
    assert not any(b.label == "Start consult" for b in at.button)
    at.button(key=f"wr.in.{appointment_id}").click().run()
    ok(at)
    assert at.subheader[1].value == "Waiting · 1"
    assert not any(b.label == "Start consult" for b in at.button)  # receptionist: no clinical actions
    vet = sign_in("vet-a1")
    vet.switch_page("workspaces/waiting_room.py").run()
    vet.button(key=f"wr.start.{appointment_id}").click().run()
    ok(vet)
    assert vet.subheader[2].value == "In consult · 1"
    with app_env.system() as session:
        row = session.get(Appointment, (a1.practice_id, appointment_id))
    assert row.status == "in_consult" and row.checked_in_at and row.consult_started_at


def test_hub_search_opens_the_patient_record_audited_and_never_shows_another_practice(app_env):
    a1, b1 = app_env.world.practices["a1"], app_env.world.practices["b1"]
    at = sign_in("vet-a1")
    at.text_input(key="hub.query").input("Bello").run()
    ok(at)
    content = texts(at)
    assert "Bello-a1" in content and "Bello-b1" not in content and "Bello-a2" not in content
    at.text_input(key="hub.query").input("Jansen-b1").run()
    assert "Jansen-b1" not in texts(at)
    at.text_input(key="hub.query").input("Belo").run()
    at.button(key=f"hit-patient-{a1.practice_id}-{a1.patient_id}").click().run()
    ok(at)
    assert any("Bello-a1 · dog" in t.value for t in at.title)  # a patient hit opens the patient record
    assert any("Patient record › Praktijk a1 › Bello-a1" in c.value for c in at.caption)
    with app_env.system() as session:
        reads = session.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'read' AND entity = 'patient' AND practice_id = :p"
            ),
            {"p": a1.practice_id},
        ).scalar_one()
    assert reads >= 1
    at.button(key="rec.book").click().run()
    ok(at)
    assert at.title[0].value == "Scheduling"
    assert at.selectbox(key="sched.patient").value == a1.patient_id
    for page in PAGES:  # nothing of practice b1 on any page
        at.switch_page(page).run()
        ok(at)
        assert "b1" not in texts(at).replace("vet-a1", "")
    del b1


def test_account_page_validates_the_new_password_per_field(app_env):
    at = sign_in("vet-a1")
    at.switch_page("workspaces/account.py").run()
    ok(at)
    at.text_input(key="account.current").input("Correct-Horse-Battery-9")
    at.text_input(key="account.new").input("vet-a1-is-mijn-wachtwoord")
    at.text_input(key="account.repeat").input("vet-a1-is-mijn-wachtwoord")
    click(at, "Change password")
    assert "must not contain the user name" in at.error[0].value
    assert at.text_input(key="account.new").value == "vet-a1-is-mijn-wachtwoord"
    at.text_input(key="account.code").input(pyotp.TOTP(at.session_state["account.enrolment"].secret).now())
    click(at, "Switch on")
    ok(at)
    assert at.success[0].value == "Two-step sign-in is on."


def test_the_hub_agenda_reads_as_a_person_reads_it(app_env):
    """Labelled columns, local clock times, statuses in words (not ``starts_at`` in UTC or ``checked_in``)."""
    at = sign_in("vet-a1")
    assert not at.exception
    agenda = next(df.value for df in at.dataframe if "Patient" in df.value.columns)
    assert list(agenda.columns) == ["Time", "Patient", "Species", "Owner", "Type", "Vet / room", "Status"]
    row = agenda.iloc[0]
    assert (row["Time"], row["Patient"], row["Status"]) == ("09:00", "Bello-a1", "Booked")
