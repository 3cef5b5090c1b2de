"""The workspace services against real PostgreSQL under RLS: sign-in, search, scheduling, the hub."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select, text

from tests.conftest import MASTER_KEY
from tests.factories import PASSWORD, TZ
from warehouse.hub.service import open_patient, today_for_user
from warehouse.scheduling.booking import book, reschedule
from warehouse.scheduling.errors import BookingConflict, SchedulingError
from warehouse.scheduling.slots import SlotQuery, appointment_types, find_free_slots
from warehouse.scheduling.transitions import cancel, check_in, finish_consult, mark_no_show, start_consult
from warehouse.scheduling.waiting_room import waiting_room
from warehouse.schema.operations import Event
from warehouse.schema.scheduling import Appointment
from warehouse.schema.tenancy import AppUser
from warehouse.search.service import search
from warehouse.security import self_service, signin
from warehouse.security.accounts import access_context_for_user
from warehouse.security.mfa import decrypt_secret
from warehouse.security.permissions import Actor, NotPermitted

RECEPTION = frozenset({"receptionist"})
VET = frozenset({"veterinarian"})


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), TZ)


def test_free_slots_respect_shift_bookings_and_practice_duration_and_a_conflict_names_the_blocker(ws_db):
    a1, week = ws_db.world.practices["a1"], ws_db.week
    actor = Actor.at(a1.user_id, a1.practice_id, RECEPTION)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        type_id = next(t.id for t in appointment_types(session, a1.practice_id) if t.code == "consult")
        slots = find_free_slots(session, SlotQuery(a1.practice_id, type_id, at(week.today, 8, 50),
                                                                limit=3))  # fmt: skip
        # 08:50 fits no 20-minute consult before the 09:00 booking, which lasts until 09:20.
        assert [s.starts_at for s in slots] == [
            at(week.today, 9, 20),
            at(week.today, 9, 40),
            at(week.today, 10),
        ]
        assert all(s.ends_at - s.starts_at == dt.timedelta(minutes=20) for s in slots)  # the a1 override
        with pytest.raises(BookingConflict) as conflict:
            book(session, actor, practice_id=a1.practice_id, appointment_type_id=type_id,
                       resource_id=a1.resource_id, starts_at=at(week.today, 9, 10), patient_id=a1.patient_id)  # fmt: skip
        assert conflict.value.existing_appointment_id == week.today_appointment["a1"]
        with pytest.raises(SchedulingError, match="not on shift"):
            book(session, actor, practice_id=a1.practice_id, appointment_type_id=type_id,
                       resource_id=a1.resource_id, starts_at=at(week.today, 18), patient_id=a1.patient_id)  # fmt: skip
        with pytest.raises(SchedulingError, match="only be booked for: cat") as species:
            book(session, actor, practice_id=a1.practice_id, appointment_type_id=week.cat_only_type["fa"],
                       resource_id=a1.resource_id, starts_at=at(week.today, 11), patient_id=a1.patient_id)  # fmt: skip
        assert species.value.field == "type"
        booked = book(session, actor, practice_id=a1.practice_id, appointment_type_id=type_id,
                            resource_id=a1.resource_id, starts_at=slots[0].starts_at, patient_id=a1.patient_id)  # fmt: skip
        assert booked.client_id == a1.client_id and booked.ends_at == at(week.today, 9, 40)
        moved = reschedule(session, actor, practice_id=a1.practice_id, appointment_id=booked.id,
                                 starts_at=at(week.today + dt.timedelta(days=1), 14))  # fmt: skip
        assert moved.starts_at == at(week.today + dt.timedelta(days=1), 14)
        with pytest.raises(BookingConflict):  # onto the 09:00 booking
            reschedule(session, actor, practice_id=a1.practice_id, appointment_id=booked.id,
                             starts_at=at(week.today, 9, 5))  # fmt: skip
        cancel(session, actor, practice_id=a1.practice_id, appointment_id=booked.id, reason="Owner ill")
        activities = session.scalars(
            select(Event.activity).where(Event.appointment_id == booked.id).order_by(Event.id)
        ).all()
        assert activities == ["booking_made", "appointment_rescheduled", "appointment_cancelled"]


def test_check_in_consult_flow_and_receptionist_gets_no_clinical_writes(ws_db):
    a1, week = ws_db.world.practices["a1"], ws_db.week
    appointment_id = week.today_appointment["a1"]
    reception, vet = (
        Actor.at(a1.user_id, a1.practice_id, RECEPTION),
        Actor.at(a1.user_id, a1.practice_id, VET),
    )
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        check_in(session, reception, practice_id=a1.practice_id, appointment_id=appointment_id)
        board = waiting_room(session, a1.practice_id, dt.datetime.now(dt.UTC))
        assert [e.appointment_id for e in board.waiting] == [appointment_id]
        with pytest.raises(NotPermitted):
            start_consult(session, reception, practice_id=a1.practice_id, appointment_id=appointment_id)
        start_consult(session, vet, practice_id=a1.practice_id, appointment_id=appointment_id)
        with pytest.raises(SchedulingError, match="in consult"):
            mark_no_show(session, reception, practice_id=a1.practice_id, appointment_id=appointment_id)
        finish_consult(session, vet, practice_id=a1.practice_id, appointment_id=appointment_id)
        board = waiting_room(session, a1.practice_id, dt.datetime.now(dt.UTC))
        assert [e.appointment_id for e in board.done] == [appointment_id] and not board.waiting
        done = session.get(Appointment, (a1.practice_id, appointment_id))
        assert done.checked_in_at and done.consult_started_at and done.completed_at


@pytest.mark.parametrize(
    ("steps", "holds"),
    [
        ((), True),
        ((check_in,), True),
        ((check_in, start_consult), True),
        ((check_in, start_consult, finish_consult), False),
        ((mark_no_show,), False),
    ],
    ids=["booked", "checked-in", "in-consult", "done", "no-show"],
)
def test_an_appointment_holds_its_slot_until_it_is_finished_or_a_no_show(ws_db, steps, holds):
    """The 09:00-09:20 booking, taken through `steps`, then a walk-in at 09:10 for the same vet: refused while
    the booking can still happen or is happening, by the database as much as by the slot finder."""
    a1, week = ws_db.world.practices["a1"], ws_db.week
    blocker = week.today_appointment["a1"]
    staff = Actor.at(a1.user_id, a1.practice_id, RECEPTION | VET)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        for step in steps:
            step(session, staff, practice_id=a1.practice_id, appointment_id=blocker)
        type_id = next(t.id for t in appointment_types(session, a1.practice_id) if t.code == "consult")
        slots = find_free_slots(session, SlotQuery(a1.practice_id, type_id, at(week.today, 9), limit=1))
        assert slots[0].starts_at == (at(week.today, 9, 20) if holds else at(week.today, 9))
        walk_in = dict(practice_id=a1.practice_id, appointment_type_id=type_id, resource_id=a1.resource_id,
                       starts_at=at(week.today, 9, 10), patient_id=a1.patient_id)  # fmt: skip
        if holds:
            with pytest.raises(BookingConflict) as conflict:
                book(session, staff, **walk_in)
            assert conflict.value.existing_appointment_id == blocker
        else:
            assert book(session, staff, **walk_in).starts_at == at(week.today, 9, 10)


@pytest.mark.parametrize(
    ("query", "kind"),
    [("Belo", "patient"), ("Jansn", "client"), ("JANSEN.a1@example.NL", "client"), ("+31 6 1234 5678", "client"),
     ("528140000123456", "patient"), ("1012 ab", "client"), ("2026-a1", "invoice"), ("hond", "patient")],
)  # fmt: skip
def test_search_finds_each_kind_typo_tolerant_and_only_in_the_users_practice(ws_db, query, kind):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        results = search(session, query, master_key=MASTER_KEY)
    assert results.group(kind), f"{query!r} found no {kind}"
    assert {h.practice_id for h in results.hits} == {a1.practice_id}


def test_search_finds_appointments_and_a_franchise_manager_sees_the_franchise(ws_db):
    world = ws_db.world
    with ws_db.system() as session:
        manager = access_context_for_user(session, world.franchise_manager_id)
    with ws_db.as_app(manager) as session:
        results = search(session, "Bello", master_key=MASTER_KEY)
    practices = {h.practice_id for h in results.group("patient")}
    assert practices == {world.practices["a1"].practice_id, world.practices["a2"].practice_id}
    assert {h.id for h in results.group("appointment")} >= {ws_db.week.today_appointment["a1"]}


def test_hub_today_and_patient_card_is_audited(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        today = today_for_user(session, user_id=a1.user_id, roles=VET, now=dt.datetime.now(dt.UTC), tz=TZ)
        assert today.own_agenda and today.agenda["id"].to_list() == [ws_db.week.today_appointment["a1"]]
        assert today.task_counts == {"unsigned_note": 1, "lab_review": 0}  # a vet: notes and lab results only
        # Seen from 08:00 local today, before the 09:00 appointment, whatever time the suite runs.
        before_nine = dt.datetime.combine(ws_db.week.today, dt.time(8), TZ)
        card = open_patient(session, a1.practice_id, a1.patient_id, now=before_nine)
        assert card.name == "Bello-a1" and ws_db.week.today_appointment["a1"] in card.upcoming["id"].to_list()
        audited = session.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'read' AND entity = 'patient' AND :id = ANY(entity_ids)"
            ),
            {"id": a1.patient_id},
        ).scalar_one()
        assert audited == 1
        b1 = ws_db.world.practices["b1"]
        assert open_patient(session, b1.practice_id, b1.patient_id, now=dt.datetime.now(dt.UTC)) is None


def test_lockout_after_five_failures_with_the_unlock_time(ws_db):
    for _ in range(4):
        assert isinstance(signin.begin_sign_in(ws_db.admin_engine, "vet-a1", "wrong"), signin.Rejected)
    locked = signin.begin_sign_in(ws_db.admin_engine, "vet-a1", "wrong")
    assert isinstance(locked, signin.Locked)
    assert "Try again after" in locked.message(TZ)
    # Even the right password is refused while locked; after the lock it works and resets the counter.
    assert isinstance(signin.begin_sign_in(ws_db.admin_engine, "vet-a1", PASSWORD), signin.Locked)
    later = locked.until + dt.timedelta(seconds=1)
    user = signin.begin_sign_in(ws_db.admin_engine, "vet-a1", PASSWORD, now=later)
    assert isinstance(user, signin.SignedInUser) and user.context.practice_ids == (
        ws_db.world.practices["a1"].practice_id,
    )


def test_manager_must_enrol_totp_then_needs_a_code_and_the_secret_is_encrypted(ws_db):
    pending = signin.begin_sign_in(ws_db.admin_engine, "fm-a", PASSWORD)
    assert isinstance(pending, signin.MfaEnrolmentRequired) and pending.enrolment.qr_png.startswith(
        b"\x89PNG"
    )
    assert isinstance(signin.complete_enrolment(ws_db.admin_engine, pending, "000000", master_key=MASTER_KEY),
                      signin.Rejected)  # fmt: skip
    totp = pyotp.TOTP(pending.enrolment.secret)
    user = signin.complete_enrolment(ws_db.admin_engine, pending, totp.now(), master_key=MASTER_KEY)
    assert isinstance(user, signin.SignedInUser) and user.may_choose_all_practices
    with ws_db.system() as session:
        stored = session.get(AppUser, user.user_id).totp_secret_enc
    assert pending.enrolment.secret.encode() not in bytes(stored)
    assert decrypt_secret(MASTER_KEY, user.user_id, stored) == pending.enrolment.secret
    with pytest.raises(ValueError, match="does not belong"):
        decrypt_secret(MASTER_KEY, user.user_id + 1, stored)
    challenge = signin.begin_sign_in(ws_db.admin_engine, "fm-a", PASSWORD)
    assert isinstance(challenge, signin.MfaChallenge)
    assert isinstance(signin.complete_mfa(ws_db.admin_engine, challenge, "123456", master_key=MASTER_KEY),
                      signin.Rejected)  # fmt: skip
    # The enrolment used this step's code, and a code is accepted once: sign in with the next step's.
    next_code = totp.at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    assert isinstance(signin.complete_mfa(ws_db.admin_engine, challenge, next_code, master_key=MASTER_KEY),
                      signin.SignedInUser)  # fmt: skip
    # The practice switcher can narrow the context but never widen it.
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    assert signin.context_for_choice(user, a1.practice_id).practice_ids == (a1.practice_id,)
    assert len(signin.context_for_choice(user, None).practice_ids) == 2
    with pytest.raises(PermissionError):
        signin.context_for_choice(user, b1.practice_id)


def test_password_change_policy(ws_db):
    user = signin.authenticate(ws_db.admin_engine, "vet-a1", PASSWORD)
    with ws_db.as_app(user.context) as session:
        with pytest.raises(self_service.AccountChangeError) as weak:
            self_service.change_password(session, user.user_id, current=PASSWORD, new="short", repeat="short",
                                         current_session_id=user.session_id)  # fmt: skip
        assert weak.value.field == "new"
        with pytest.raises(self_service.AccountChangeError) as wrong:
            self_service.change_password(session, user.user_id, current="nope", new="x", repeat="x",
                                         current_session_id=user.session_id)  # fmt: skip
        assert wrong.value.field == "current"
        self_service.change_password(session, user.user_id, current=PASSWORD, new="Paars-Kanaal-Fiets-42",
                                     repeat="Paars-Kanaal-Fiets-42", current_session_id=user.session_id)  # fmt: skip
    assert signin.authenticate(ws_db.admin_engine, "vet-a1", "Paars-Kanaal-Fiets-42") is not None
