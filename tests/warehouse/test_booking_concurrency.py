"""Double booking is impossible, even under concurrent attempts: the exclusion constraint decides."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from tests.factories import TZ, build_world
from warehouse.scheduling.booking import BookingConflict, BookingRequest, book_appointment
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import access_context_for_user

MASTER_KEY = bytes(range(32))


@pytest.fixture
def vet_of_a1(fresh_db):
    """Practice a1's rows and its vet's access context, committed in a database of the test's own."""
    with fresh_db.system() as session:
        practice = build_world(session, MASTER_KEY).practices["a1"]
        context = access_context_for_user(session, practice.user_id)
    return practice, context


def test_twenty_parallel_overlapping_bookings_one_wins_the_rest_see_the_winner(fresh_db, vet_of_a1):
    practice, context = vet_of_a1
    start = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TZ)
    barrier = threading.Barrier(20)

    def attempt(i: int) -> int | BookingConflict:
        # Every attempt overlaps every other: same resource, start shifted by i minutes, 30 minutes long.
        request = BookingRequest(
            practice_id=practice.practice_id, resource_id=practice.resource_id,
            starts_at=start + dt.timedelta(minutes=i), ends_at=start + dt.timedelta(minutes=i + 30),
            patient_id=practice.patient_id, client_id=practice.client_id, booked_by=practice.user_id,
        )  # fmt: skip
        barrier.wait()
        try:
            with fresh_db.as_app(context) as session:
                return book_appointment(session, request).id
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
    with fresh_db.as_app(context) as session:
        stored = session.scalar(
            select(func.count()).select_from(Appointment).where(
                Appointment.resource_id == practice.resource_id,
                Appointment.starts_at >= start, Appointment.starts_at < start + dt.timedelta(hours=1),
            )
        )  # fmt: skip
    assert stored == 1


def test_cancelled_appointments_free_the_slot_and_back_to_back_is_fine(fresh_db, vet_of_a1):
    p, context = vet_of_a1
    start = dt.datetime(2026, 12, 2, 9, 0, tzinfo=TZ)

    def request(offset_min: int, length_min: int = 15) -> BookingRequest:
        return BookingRequest(p.practice_id, p.resource_id, start + dt.timedelta(minutes=offset_min),
                              start + dt.timedelta(minutes=offset_min + length_min))  # fmt: skip

    with fresh_db.as_app(context) as session:
        first = book_appointment(session, request(0))
        book_appointment(session, request(15))  # starts exactly when the first ends: no overlap
        with pytest.raises(BookingConflict) as caught:
            book_appointment(session, request(10))
        assert caught.value.existing_appointment_id == first.id
        first.status = "cancelled"
        session.flush()
        assert book_appointment(session, request(0, 10)).id != first.id


def test_naive_times_and_inverted_ranges_are_rejected_before_the_database():
    with pytest.raises(ValueError, match="timezone-aware"):
        BookingRequest(1, 1, dt.datetime(2026, 1, 1, 9), dt.datetime(2026, 1, 1, 10))
    t = dt.datetime(2026, 1, 1, 9, tzinfo=TZ)
    with pytest.raises(ValueError, match="end after"):
        BookingRequest(1, 1, t, t)
