"""Marking a patient deceased: the preview counts what will be cancelled, the marking cancels exactly that in one
transaction (audited), and a stale preview, a wrong date or a second marking change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from tests.factories import TZ
from tests.warehouse.records.test_registration import ctx
from warehouse.records.deceased import mark_deceased, preview_deceased
from warehouse.records.errors import RecordsError
from warehouse.schema.clients import Patient
from warehouse.schema.clinical import Reminder
from warehouse.schema.scheduling import Appointment
from warehouse.security.permissions import Actor, NotPermitted

NOW = dt.datetime.now(dt.UTC)
TODAY = NOW.astimezone(TZ).date()
RECEPTION = frozenset({"receptionist"})


def _appointment(db, rows, days: int, status: str = "booked") -> int:  # noqa: ANN001
    start = dt.datetime.combine(TODAY + dt.timedelta(days=days), dt.time(10, 0), TZ)
    with db.system() as session:
        appointment = Appointment(
            practice_id=rows.practice_id, resource_id=rows.resource_id, patient_id=rows.patient_id,
            client_id=rows.client_id, franchise_id=rows.franchise_id, starts_at=start,
            ends_at=start + dt.timedelta(minutes=15), status=status,
        )  # fmt: skip
        session.add(appointment)
        session.flush()
        return appointment.id


def _reminder(db, rows, status: str = "pending") -> int:  # noqa: ANN001
    with db.system() as session:
        reminder = Reminder(practice_id=rows.practice_id, patient_id=rows.patient_id, client_id=rows.client_id,
                            kind="vaccination", due_on=TODAY + dt.timedelta(days=30), status=status)  # fmt: skip
        session.add(reminder)
        session.flush()
        return reminder.id


@pytest.fixture
def bello(ws_db):  # noqa: ANN201
    """Bello-a1 with two future appointments (and one past, one cancelled) and three pending reminders (the
    factory's and two more) besides a sent one."""
    a1 = ws_db.world.practices["a1"]
    future = [_appointment(ws_db, a1, 2), _appointment(ws_db, a1, 9)]
    others = [_appointment(ws_db, a1, -3), _appointment(ws_db, a1, 5, "cancelled")]
    pending = [_reminder(ws_db, a1), _reminder(ws_db, a1)]
    sent = _reminder(ws_db, a1, "sent")
    return a1, future, others, pending, sent


def _states(db, a1) -> tuple[dict[int, str], dict[int, str]]:  # noqa: ANN001
    with db.system() as session:
        appointments = dict(session.execute(select(Appointment.id, Appointment.status)
                                            .where(Appointment.practice_id == a1.practice_id)).all())  # fmt: skip
        reminders = dict(
            session.execute(
                select(Reminder.id, Reminder.status).where(Reminder.practice_id == a1.practice_id)
            ).all()
        )
    return appointments, reminders


def test_the_preview_counts_then_marking_cancels_exactly_that_and_is_audited(ws_db, bello):
    a1, future, others, pending, sent = bello
    before_appointments, before_reminders = _states(ws_db, a1)
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        preview = preview_deceased(session, practice_id=a1.practice_id, patient_id=a1.patient_id, now=NOW)
    # The work week's 09:00 appointment of today is future or past depending on when the test runs.
    todays = ws_db.week.today_appointment["a1"]
    with ws_db.system() as session:
        todays_is_future = session.get(Appointment, (a1.practice_id, todays)).starts_at > NOW
    expected = sorted([*future, *([todays] if todays_is_future else [])])
    assert preview.appointment_ids == tuple(expected) and len(preview.reminder_ids) == 3
    assert preview.question == f"This cancels {len(expected)} appointments and 3 reminders. Continue?"
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        done = mark_deceased(
            session, Actor.at(None, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
            patient_id=a1.patient_id, deceased_on=TODAY - dt.timedelta(days=1), confirmed=preview, today=TODAY,
            now=NOW,
        )  # fmt: skip
    assert done == preview
    appointments, reminders = _states(ws_db, a1)
    assert {i: appointments[i] for i in expected} == dict.fromkeys(expected, "cancelled")
    assert {i: s for i, s in appointments.items() if i not in expected} == {
        i: s for i, s in before_appointments.items() if i not in expected
    }  # the past and the already cancelled are as they were
    assert {i: reminders[i] for i in preview.reminder_ids} == dict.fromkeys(preview.reminder_ids, "cancelled")
    assert reminders[sent] == before_reminders[sent] == "sent" and set(pending) <= set(preview.reminder_ids)
    with ws_db.system() as session:
        patient = session.get(Patient, (a1.practice_id, a1.patient_id))
        cancelled = session.get(Appointment, (a1.practice_id, future[0]))
        entry = session.execute(
            text("SELECT detail FROM audit_log WHERE practice_id = :p AND action = 'mark_deceased' "
                 "AND entity_ids = ARRAY[CAST(:id AS bigint)]"), {"p": a1.practice_id, "id": a1.patient_id},
        ).scalar_one()  # fmt: skip
    assert (patient.deceased, patient.deceased_on) == (True, TODAY - dt.timedelta(days=1))
    assert (cancelled.cancel_reason, cancelled.cancelled_at is not None) == ("Patient deceased", True)
    assert entry["appointments_cancelled"] == expected and entry["reminders_cancelled"] == list(
        preview.reminder_ids
    )
    # Once is enough: a second marking is refused at the date field.
    with (
        ws_db.as_app(ctx(ws_db, "a1")) as session,
        pytest.raises(RecordsError, match="already recorded") as again,
    ):
        preview_deceased(session, practice_id=a1.practice_id, patient_id=a1.patient_id, now=NOW)
    assert again.value.field == "deceased_on"


def test_a_preview_gone_stale_asks_again_and_changes_nothing(ws_db, bello):
    a1, *_ = bello
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        preview = preview_deceased(session, practice_id=a1.practice_id, patient_id=a1.patient_id, now=NOW)
    _appointment(ws_db, a1, 20)  # booked meanwhile, e.g. at the desk
    before = _states(ws_db, a1)
    with ws_db.as_app(ctx(ws_db, "a1")) as session, pytest.raises(RecordsError) as stale:
        mark_deceased(session, Actor.at(None, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
                      patient_id=a1.patient_id, deceased_on=TODAY, confirmed=preview, today=TODAY, now=NOW)  # fmt: skip
    assert stale.value.field == "confirm"
    assert f"This cancels {len(preview.appointment_ids) + 1} appointments" in str(stale.value)
    assert _states(ws_db, a1) == before
    with ws_db.system() as session:
        assert not session.get(Patient, (a1.practice_id, a1.patient_id)).deceased


@pytest.mark.parametrize(
    ("deceased_on", "says"),
    [
        (None, "Give the date"),
        (TODAY + dt.timedelta(days=1), "future"),
        (dt.date(2019, 3, 31), "before the date"),
    ],
)
def test_a_wrong_date_of_death_is_refused_at_its_field(ws_db, deceased_on, says):
    a1 = ws_db.world.practices["a1"]  # born 2019-04-01 (the factories' Bello)
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        preview = preview_deceased(session, practice_id=a1.practice_id, patient_id=a1.patient_id, now=NOW)
        with pytest.raises(RecordsError, match=says) as refused:
            mark_deceased(session, Actor.at(None, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
                          patient_id=a1.patient_id, deceased_on=deceased_on, confirmed=preview, today=TODAY,
                          now=NOW)  # fmt: skip
    assert refused.value.field == "deceased_on"


def test_a_role_without_clients_write_may_not_mark_deceased(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(ctx(ws_db, "a1")) as session:
        preview = preview_deceased(session, practice_id=a1.practice_id, patient_id=a1.patient_id, now=NOW)
        with pytest.raises(NotPermitted):
            mark_deceased(session, Actor.at(None, a1.practice_id, {"analyst"}), practice_id=a1.practice_id,
                          patient_id=a1.patient_id, deceased_on=TODAY, confirmed=preview, today=TODAY,
                          now=NOW)  # fmt: skip


def test_one_of_each_reads_in_the_singular(ws_db):
    from warehouse.records.deceased import DeceasedPreview

    assert (
        DeceasedPreview(1, "Bello", (5,), (7,)).question
        == "This cancels 1 appointment and 1 reminder. Continue?"
    )
    assert DeceasedPreview(1, "Bello", (), (7, 8)).question == "This cancels 2 reminders. Continue?"
    assert DeceasedPreview(1, "Bello", (), ()).question == (
        "Bello has no future appointments or pending reminders. Mark Bello deceased?"
    )
