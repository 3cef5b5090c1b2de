"""Each practice lives in its own local time (``tenant.timezone``): a Curaçao practice's day, agenda, waiting
room, messages and care episodes follow Willemstad's clock (UTC-4, no summer time), while a Dutch practice keeps
Amsterdam's, exactly as when Amsterdam was the only zone.

The same three instants are booked at both practices:

    instant              Willemstad          Amsterdam
    1 Dec 00:30 UTC      30 Nov 20:30        1 Dec 01:30     "early"
    1 Dec 14:00 UTC       1 Dec 10:00        1 Dec 15:00     "morning"
    2 Dec 01:30 UTC       1 Dec 21:30        2 Dec 02:30     "late"
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.conftest import MASTER_KEY, Database, drop_database, open_database
from tests.factories import PracticeRows, build_world, populate_practice
from warehouse.kernel.practice_time import local_day_bounds, practice_today, practice_zone
from warehouse.kernel.tenancy import AccessContext
from warehouse.learning.eventlog import care_episode_log
from warehouse.scheduling.booking import book
from warehouse.scheduling.day import schedule
from warehouse.scheduling.errors import BookingConflict, SchedulingError
from warehouse.scheduling.waiting_room import waiting_room
from warehouse.schema.billing import Product
from warehouse.schema.clinical import ReminderTemplate, Vaccination, VaccineProtocol, Visit
from warehouse.schema.scheduling import Appointment, AppointmentType, StaffShift
from warehouse.search.service import record_hit
from warehouse.security.permissions import Actor
from warehouse.tenants.admin import add_practice

AMSTERDAM, CURACAO = ZoneInfo("Europe/Amsterdam"), ZoneInfo("America/Curacao")
DAY = dt.date(2026, 12, 1)
EARLY_UTC = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
MORNING_UTC = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
LATE_UTC = dt.datetime(2026, 12, 2, 1, 30, tzinfo=dt.UTC)
NOW = dt.datetime(
    2026, 12, 2, 2, 0, tzinfo=dt.UTC
)  # 22:00 on 1 Dec in Willemstad, 03:00 on 2 Dec in Amsterdam


@dataclass(frozen=True)
class Practice:
    rows: PracticeRows
    consult_type_id: int
    early: int  # the appointments at EARLY_UTC, MORNING_UTC and LATE_UTC
    morning: int
    late: int

    @property
    def context(self) -> AccessContext:
        return AccessContext.for_practices([self.rows.practice_id])

    @property
    def reception(self) -> Actor:
        return Actor.at(None, self.rows.practice_id, {"receptionist"})


@dataclass(frozen=True)
class TwoZones:
    db: Database
    amstel: Practice  # the factories' practice a1, Europe/Amsterdam by default
    willemstad: Practice  # America/Curacao
    elsewhere: int  # a practice of another franchise (b1)


def _three_appointments(session, rows: PracticeRows, consult_type_id: int) -> tuple[int, int, int]:  # noqa: ANN001
    made = [
        Appointment(practice_id=rows.practice_id, resource_id=rows.resource_id, patient_id=rows.patient_id,
                    client_id=rows.client_id, franchise_id=rows.franchise_id, appointment_type_id=consult_type_id,
                    starts_at=start, ends_at=start + dt.timedelta(minutes=20), status="booked")
        for start in (EARLY_UTC, MORNING_UTC, LATE_UTC)
    ]  # fmt: skip
    session.add_all(made)
    session.flush()
    return made[0].id, made[1].id, made[2].id


@pytest.fixture(scope="module")
def zones(server_url: str, template_db: str) -> Iterator[TwoZones]:
    db = open_database(server_url, template_db)
    with db.system() as session:
        world = build_world(session, MASTER_KEY)
        franchise_id = world.franchises["fa"]
        practice = add_practice(session, franchise_id=franchise_id, code="cw", name="Dierenkliniek Willemstad",
                                city="Willemstad", master_key=MASTER_KEY)  # fmt: skip
        practice.timezone = "America/Curacao"
        session.flush()

        def shared(model: type, code: str) -> int:
            return session.scalar(
                select(model.id).where(model.franchise_id == franchise_id, model.code == code)
            )

        consult = shared(AppointmentType, "consult")
        rows = populate_practice(session, practice.id, franchise_id, {
            "type": consult, "product": shared(Product, "C-CONS"), "protocol": shared(VaccineProtocol, "dog-chp"),
            "template": shared(ReminderTemplate, "vacc"),
        }, MASTER_KEY, "cw")  # fmt: skip
        # The Willemstad vet works the evening of 1 Dec, 18:00-23:00 local.
        evening = dt.datetime.combine(DAY, dt.time(18, 0), CURACAO)
        session.add(StaffShift(practice_id=rows.practice_id, resource_id=rows.resource_id, starts_at=evening,
                               ends_at=evening + dt.timedelta(hours=5)))  # fmt: skip
        willemstad = Practice(rows, consult, *_three_appointments(session, rows, consult))
        a1 = world.practices["a1"]
        amstel = Practice(a1, consult, *_three_appointments(session, a1, consult))
        # The late Willemstad appointment was seen (21:35 local) and the dog vaccinated; the vaccination carries
        # only its local date, as synced ones do.
        visit = Visit(practice_id=rows.practice_id, patient_id=rows.patient_id, appointment_id=willemstad.late,
                      started_at=LATE_UTC + dt.timedelta(minutes=5), reason="Vaccinatie")  # fmt: skip
        session.add(visit)
        session.add(Vaccination(practice_id=rows.practice_id, patient_id=rows.patient_id, vaccine_name="Nobivac",
                                given_on=DAY))  # fmt: skip
    yield TwoZones(db, amstel, willemstad, world.practices["b1"].practice_id)
    db.dispose()
    drop_database(server_url, db.name)


def test_the_zone_is_the_practice_own_and_a_practice_out_of_sight_has_none(zones):
    amstel, willemstad = zones.amstel.rows.practice_id, zones.willemstad.rows.practice_id
    with zones.db.as_app(AccessContext.for_practices([amstel, willemstad])) as session:
        assert practice_zone(session, amstel) == AMSTERDAM
        assert practice_zone(session, willemstad) == CURACAO
        assert practice_today(session, willemstad, NOW) == DAY
        assert practice_today(session, amstel, NOW) == DAY + dt.timedelta(days=1)
    with zones.db.as_app(AccessContext.for_practices([amstel])) as session, pytest.raises(LookupError):
        practice_zone(session, zones.elsewhere)


def test_a_local_day_is_midnight_to_midnight_in_the_zone_also_across_a_summer_time_change():
    assert local_day_bounds(DAY, CURACAO) == (
        dt.datetime(2026, 12, 1, 4, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 2, 4, tzinfo=dt.UTC),
    )
    start, end = local_day_bounds(dt.date(2026, 10, 25), AMSTERDAM)  # summer time ends: a 25-hour day
    assert (start.astimezone(dt.UTC), end.astimezone(dt.UTC)) == (
        dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 23, tzinfo=dt.UTC),
    )
    start, end = local_day_bounds(DAY, AMSTERDAM, days=7)
    assert (start, end) == (
        dt.datetime(2026, 12, 1, tzinfo=AMSTERDAM),
        dt.datetime(2026, 12, 8, tzinfo=AMSTERDAM),
    )


def _mine(practice: Practice, ids: Iterable[int]) -> set[str]:
    """Which of the practice's three appointments are among ``ids``, by name."""
    found = set(ids)
    return {name for name in ("early", "morning", "late") if getattr(practice, name) in found}


def _agenda(zones: TwoZones, practice: Practice, day: dt.date) -> set[str]:
    with zones.db.as_app(practice.context) as session:
        return _mine(practice, schedule(session, practice.rows.practice_id, day)["id"].to_list())


def test_the_day_schedule_holds_the_appointments_of_the_practice_local_day(zones):
    willemstad, amstel = zones.willemstad, zones.amstel
    assert _agenda(zones, willemstad, DAY - dt.timedelta(days=1)) == {"early"}
    assert _agenda(zones, willemstad, DAY) == {"morning", "late"}
    assert _agenda(zones, amstel, DAY) == {"early", "morning"}
    assert _agenda(zones, amstel, DAY + dt.timedelta(days=1)) == {"late"}


def test_the_waiting_room_shows_the_practice_today(zones):
    # At NOW it is 22:00 on 1 Dec in Willemstad (its morning patient is still on today's board) and 03:00 on
    # 2 Dec in Amsterdam.
    for practice, expected in ((zones.willemstad, {"morning", "late"}), (zones.amstel, {"late"})):
        with zones.db.as_app(practice.context) as session:
            board = waiting_room(session, practice.rows.practice_id, NOW)
        assert _mine(practice, (e.appointment_id for e in board.expected)) == expected


def test_messages_and_search_hits_tell_the_practice_local_time(zones):
    willemstad = zones.willemstad
    p = willemstad.rows.practice_id
    booking = dict(practice_id=p, appointment_type_id=willemstad.consult_type_id,
                   resource_id=willemstad.rows.resource_id, patient_id=willemstad.rows.patient_id)  # fmt: skip
    with zones.db.as_app(willemstad.context) as session:
        with pytest.raises(BookingConflict, match=r"from 1 dec 2026 21:30 to 21:50"):
            book(
                session,
                willemstad.reception,
                starts_at=dt.datetime.combine(DAY, dt.time(21, 40), CURACAO),
                **booking,
            )
        with pytest.raises(SchedulingError, match="not on shift at Tue 01 Dec 23:30"):
            book(
                session,
                willemstad.reception,
                starts_at=dt.datetime.combine(DAY, dt.time(23, 30), CURACAO),
                **booking,
            )
        hit = record_hit(session, "appointment", p, willemstad.late)
    assert hit is not None and hit.title == "01-12-2026 21:30"
    with zones.db.as_app(zones.amstel.context) as session:
        hit = record_hit(session, "appointment", zones.amstel.rows.practice_id, zones.amstel.late)
    assert hit is not None and hit.title == "02-12-2026 02:30"


def test_a_dated_vaccination_joins_the_visit_of_its_local_day(zones):
    willemstad = zones.willemstad
    with zones.db.as_app(willemstad.context) as session:
        log = care_episode_log(session, [willemstad.rows.practice_id], patient_id=willemstad.rows.patient_id)
    episode = log.filter(log["appointment_id"] == willemstad.late)["activity"].to_list()
    assert "consult" in episode and "vaccination" in episode  # given on 1 Dec, the visit's day in Willemstad
