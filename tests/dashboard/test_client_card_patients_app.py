"""The client card's animals under AppTest: the receptionist (who cannot open the patient record) marks an animal
deceased there after being told what it cancels; and a date of birth counted back from an estimated age says so on
the card, the patient record and the hub's patient card."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from tests.dashboard.test_ws_app import ok, texts
from tests.factories import TZ
from tests.practice_world import RECEPTIONIST, sign_in
from warehouse.hub.service import open_patient
from warehouse.records.patient_record import born_text
from warehouse.schema.clients import Patient
from warehouse.schema.clinical import Reminder
from warehouse.schema.scheduling import Appointment

BORN = dt.date(2021, 3, 12)


def _card(at, rows):  # noqa: ANN001, ANN202
    at.session_state["card.client"] = (rows.practice_id, rows.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    return at


def _born(app_env, rows, *, estimated: bool) -> None:  # noqa: ANN001
    with app_env.system() as session:
        session.execute(
            update(Patient)
            .where(Patient.practice_id == rows.practice_id, Patient.id == rows.patient_id)
            .values(date_of_birth=BORN, date_of_birth_estimated=estimated)
        )


def test_a_receptionist_marks_an_animal_deceased_from_the_client_card(app_env):
    a1 = app_env.world.practices["a1"]
    tomorrow = dt.datetime.combine(dt.datetime.now(TZ).date() + dt.timedelta(days=1), dt.time(11), TZ)
    with app_env.system() as session:
        future = Appointment(practice_id=a1.practice_id, resource_id=a1.resource_id, patient_id=a1.patient_id,
                             client_id=a1.client_id, franchise_id=a1.franchise_id, starts_at=tomorrow,
                             ends_at=tomorrow + dt.timedelta(minutes=15), status="booked")  # fmt: skip
        session.add(future)
        session.flush()
        todays = session.get(Appointment, (a1.practice_id, app_env.week.today_appointment["a1"]))
        appointments = 2 if todays.starts_at > dt.datetime.now(dt.UTC) else 1
        future_id = future.id
    at = _card(sign_in(RECEPTIONIST), a1)
    assert "**Bello-a1** · dog · Labrador · born 01-04-2019" in [m.value for m in at.markdown]
    key = f"dec.{a1.practice_id}.{a1.patient_id}"
    at.button(key=f"{key}.ask").click().run()
    ok(at)
    plural = "s" if appointments > 1 else ""
    assert [w.value for w in at.warning] == [
        f"This cancels {appointments} appointment{plural} and 1 reminder. Continue?"
    ]
    with app_env.system() as session:  # asking changed nothing
        assert not session.get(Patient, (a1.practice_id, a1.patient_id)).deceased
    at.button(key=f"{key}.confirm").click().run()
    ok(at)
    assert [s.value for s in at.success] == [
        f"Bello-a1 is recorded as deceased; cancelled {appointments} appointment{plural} and 1 reminder."
    ]
    assert "**Bello-a1** · dog · Labrador · born 01-04-2019 · deceased" in [m.value for m in at.markdown]
    assert not any(b.key == f"{key}.ask" for b in at.button)  # a deceased animal offers the action no more
    with app_env.system() as session:
        bello = session.get(Patient, (a1.practice_id, a1.patient_id))
        cancelled = session.get(Appointment, (a1.practice_id, future_id))
        reminders = session.scalars(
            select(Reminder.status).where(Reminder.practice_id == a1.practice_id)
        ).all()
    assert (bello.deceased, bello.deceased_on) == (True, dt.datetime.now(TZ).date())
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "Patient deceased")
    assert reminders == ["cancelled"]


def test_a_role_without_clients_write_gets_no_deceased_action_on_the_card(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in("fm-a")  # franchise manager: reads client cards, registers nothing
    at.selectbox(key="practice_choice").set_value(a1.practice_id).run()
    at = _card(at, a1)
    assert "Bello-a1" in texts(at)
    assert "Mark deceased" not in [e.label for e in at.expander]


def test_an_estimated_date_of_birth_says_so_on_the_card_the_record_and_the_hub(app_env):
    a1 = app_env.world.practices["a1"]
    _born(app_env, a1, estimated=True)
    card = _card(sign_in(RECEPTIONIST), a1)
    assert "**Bello-a1** · dog · Labrador · born 12-03-2021 (estimated)" in [m.value for m in card.markdown]

    record = sign_in("vet-a1")
    record.switch_page("workspaces/records.py").run()
    record.text_input(key="rec.query").input("Bello").run()
    record.selectbox(key="rec.patient").set_value(a1.patient_id).run()
    ok(record)
    assert any("born 12-03-2021 (estimated)" in m.value for m in record.markdown)

    with app_env.system() as session:
        hub = open_patient(session, a1.practice_id, a1.patient_id, now=dt.datetime.now(dt.UTC))
    assert hub is not None and born_text(hub.date_of_birth, hub.date_of_birth_estimated) == (
        "born 12-03-2021 (estimated)"
    )


def test_a_known_date_of_birth_is_shown_without_the_remark(app_env):
    a1 = app_env.world.practices["a1"]
    _born(app_env, a1, estimated=False)
    card = _card(sign_in(RECEPTIONIST), a1)
    assert "**Bello-a1** · dog · Labrador · born 12-03-2021" in [m.value for m in card.markdown]
    assert "(estimated)" not in texts(card)


def test_born_text():
    assert born_text(None, False) is None and born_text(None, True) is None
    assert born_text(dt.date(2024, 1, 5), False) == "born 05-01-2024"
    assert born_text(dt.date(2024, 1, 5), True) == "born 05-01-2024 (estimated)"
