"""Double booking is impossible, even under concurrent attempts: the exclusion constraint decides."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.factories import TZ, PracticeRows
from warehouse.kernel.tenancy import AccessContext
from warehouse.scheduling.booking import book
from warehouse.scheduling.errors import BookingConflict
from warehouse.scheduling.slots import appointment_types
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor

MASTER_KEY = bytes(range(32))
SHIFT_DAY = dt.date(2026, 11, 10)  # the factories' vet is on shift 08:00-17:00 that day (booked 09:00-09:20)


@dataclass(frozen=True)
class Vet:
    """Practice a1's rows, its vet as the services see them, and what the vet books: a consult."""

    practice: PracticeRows
    context: AccessContext
    actor: Actor
    consult_type_id: int

    def book(self, session, starts_at: dt.datetime, minutes: int) -> Appointment:  # noqa: ANN001
        return book(session, self.actor, practice_id=self.practice.practice_id,
                    appointment_type_id=self.consult_type_id, resource_id=self.practice.resource_id,
                    starts_at=starts_at, patient_id=self.practice.patient_id, duration_minutes=minutes)  # fmt: skip


@pytest.fixture
def vet_of_a1(fresh_world_db) -> Vet:
    """Committed in a database of the test's own."""
    practice = fresh_world_db.world.practices["a1"]
    with fresh_world_db.system() as session:
        context = access_context_for_user(session, practice.user_id)
    with fresh_world_db.as_app(context) as session:
        consult = next(t.id for t in appointment_types(session, practice.practice_id) if t.code == "consult")
    actor = Actor.at(practice.user_id, practice.practice_id, {"veterinarian"})
    return Vet(practice, context, actor, consult)


def test_twenty_parallel_overlapping_bookings_one_wins_the_rest_see_the_winner(fresh_world_db, vet_of_a1):
    vet = vet_of_a1
    start = dt.datetime.combine(SHIFT_DAY, dt.time(13, 0), TZ)
    barrier = threading.Barrier(20)

    def attempt(i: int) -> int | BookingConflict:
        # Every attempt overlaps every other: same resource, start shifted by i minutes, 30 minutes long.
        barrier.wait()
        try:
            with fresh_world_db.as_app(vet.context) as session:
                return vet.book(session, start + dt.timedelta(minutes=i), 30).id
        except BookingConflict as conflict:
            return conflict

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))

    winners = [o for o in outcomes if isinstance(o, int)]
    conflicts = [o for o in outcomes if isinstance(o, BookingConflict)]
    assert len(winners) == 1
    assert len(conflicts) == 19
    assert {c.existing_appointment_id for c in conflicts} == set(winners)
    assert all(f"appointment {winners[0]}" in str(c) for c in conflicts)
    with fresh_world_db.as_app(vet.context) as session:
        stored = session.scalar(
            select(func.count()).select_from(Appointment).where(
                Appointment.resource_id == vet.practice.resource_id,
                Appointment.starts_at >= start, Appointment.starts_at < start + dt.timedelta(hours=1),
            )
        )  # fmt: skip
    assert stored == 1


def test_cancelled_appointments_free_the_slot_and_back_to_back_is_fine(fresh_world_db, vet_of_a1):
    vet = vet_of_a1
    start = dt.datetime.combine(SHIFT_DAY, dt.time(10, 0), TZ)

    def at(offset_min: int) -> dt.datetime:
        return start + dt.timedelta(minutes=offset_min)

    with fresh_world_db.as_app(vet.context) as session:
        first = vet.book(session, at(0), 15)
        vet.book(session, at(15), 15)  # starts exactly when the first ends: no overlap
        with pytest.raises(BookingConflict) as caught:
            vet.book(session, at(10), 15)
        assert caught.value.existing_appointment_id == first.id
        first.status = "cancelled"
        session.flush()
        assert vet.book(session, at(0), 10).id != first.id


def test_naive_times_and_inverted_ranges_are_refused_and_nothing_is_booked(fresh_world_db, vet_of_a1):
    vet = vet_of_a1
    with fresh_world_db.as_app(vet.context) as session:
        before = session.scalar(select(func.count()).select_from(Appointment))
        with pytest.raises(ValueError, match="timezone-aware"):
            vet.book(session, dt.datetime.combine(SHIFT_DAY, dt.time(11, 0)), 15)
        with pytest.raises(ValueError, match="end after"):
            vet.book(session, dt.datetime.combine(SHIFT_DAY, dt.time(11, 0), TZ), -15)
        assert session.scalar(select(func.count()).select_from(Appointment)) == before
