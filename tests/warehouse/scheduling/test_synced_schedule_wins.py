"""Where Animana keeps the schedule or the reminder, VetConnect plans and generates none beside it: rosters
leave the staff synced from Animana alone once the practice's werkrooster is synced (rooms and VetConnect's own
staff are still rostered), planned shifts give way to synced ones, and vaccination reminders are not generated
twice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from warehouse.kernel.tenancy import AccessContext
from warehouse.records.reminders import generate_vaccination_reminders
from warehouse.scheduling.rosters import (
    STANDARD_WEEK,
    create_roster,
    give_way_to_synced_shifts,
    roster_agenda,
)
from warehouse.tenants.admin import add_franchise, add_practice

WEEK = (dt.date(2026, 11, 2), dt.date(2026, 11, 8))  # Monday to Sunday: six working days


@dataclass(frozen=True)
class Practice:
    id: int
    synced_vet: int  # staff from Animana (animana_id 'staff:1')
    synced_nurse: int  # staff from Animana without a shift in the werkrooster
    own_vet: int  # staff VetConnect keeps itself
    room: int


@pytest.fixture
def practice(fresh_db) -> Practice:  # noqa: ANN001
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-sync", name="Sync")
        tenant = add_practice(
            session, franchise_id=franchise.id, code="sync-a", name="A", master_key=MASTER_KEY
        )
        ids = [
            session.scalar(
                text("INSERT INTO resource (practice_id, kind, name, animana_id) VALUES (:p, :k, :n, :a) RETURNING id"),
                {"p": tenant.id, "k": kind, "n": name, "a": animana_id},
            )
            for kind, name, animana_id in (("staff", "Dr. Visser", "staff:1"), ("staff", "Sanne", "staff:2"),
                                           ("staff", "Dr. Smit", None), ("room", "Spreekkamer 1", "resource:1"))
        ]  # fmt: skip
    return Practice(tenant.id, *ids)


def _shifts(session, practice: Practice) -> dict[int, list[tuple[dt.date, str | None]]]:  # noqa: ANN001
    rows = session.execute(
        text("SELECT resource_id, (starts_at AT TIME ZONE 'Europe/Amsterdam')::date, animana_id FROM staff_shift "
             "WHERE practice_id = :p ORDER BY resource_id, starts_at"),
        {"p": practice.id},
    )  # fmt: skip
    out: dict[int, list[tuple[dt.date, str | None]]] = {}
    for resource, day, animana_id in rows:
        out.setdefault(resource, []).append((day, animana_id))
    return out


def _synced_shift(session, practice: Practice, day: dt.date, animana_id: str) -> None:  # noqa: ANN001
    session.execute(
        text("INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at, animana_id) VALUES "
             "(:p, :r, (CAST(:d AS date) + time '09:00') AT TIME ZONE 'Europe/Amsterdam', "
             "(CAST(:d AS date) + time '17:00') AT TIME ZONE 'Europe/Amsterdam', :a)"),
        {"p": practice.id, "r": practice.synced_vet, "d": day, "a": animana_id},
    )  # fmt: skip


def _roster(session, practice: Practice) -> int:  # noqa: ANN001
    resources = [practice.synced_vet, practice.synced_nurse, practice.own_vet, practice.room]
    return create_roster(session, practice_id=practice.id, resource_ids=resources, week=STANDARD_WEEK,
                         first_day=WEEK[0], last_day=WEEK[1])  # fmt: skip


def test_rosters_leave_animana_staff_alone_once_the_werkrooster_is_synced(fresh_db, practice):
    with fresh_db.as_app(AccessContext.for_practices([practice.id])) as session:
        _synced_shift(session, practice, WEEK[0] + dt.timedelta(days=1), "41")  # Tuesday only
        created = _roster(session, practice)
        shifts = _shifts(session, practice)
    assert created == 2 * 6  # VetConnect's own vet and the room, Monday to Saturday
    assert shifts[practice.synced_vet] == [(WEEK[0] + dt.timedelta(days=1), "41")]  # a day off stays off
    assert practice.synced_nurse not in shifts  # Animana keeps her schedule too: it has her on no day
    assert len(shifts[practice.own_vet]) == len(shifts[practice.room]) == 6


def test_without_a_synced_werkrooster_everyone_is_rostered_and_planned_shifts_give_way_later(
    fresh_db, practice
):
    with fresh_db.as_app(AccessContext.for_practices([practice.id])) as session:
        assert _roster(session, practice) == 4 * 6
        # The werkrooster arrives: the shift loader clears what VetConnect planned for Animana's staff first.
        assert give_way_to_synced_shifts(session, practice.id) == 2 * 6
        _synced_shift(session, practice, WEEK[0], "41")
        assert give_way_to_synced_shifts(session, practice.id) == 0
        assert _roster(session, practice) == 0  # nothing planned again beside the synced schedule
        shifts = _shifts(session, practice)
    assert shifts[practice.synced_vet] == [(WEEK[0], "41")]
    assert practice.synced_nurse not in shifts
    assert len(shifts[practice.own_vet]) == len(shifts[practice.room]) == 6


def test_the_demo_roster_of_the_agenda_follows_the_rule(fresh_db, practice):
    with fresh_db.as_app(AccessContext.for_practices([practice.id])) as session:
        for resource in (practice.synced_vet, practice.room):
            session.execute(
                text("INSERT INTO appointment (practice_id, resource_id, starts_at, ends_at, status) VALUES "
                     "(:p, :r, '2026-11-03 10:00+01', '2026-11-03 10:15+01', 'done')"),
                {"p": practice.id, "r": resource},
            )  # fmt: skip
        _synced_shift(session, practice, WEEK[0] + dt.timedelta(days=1), "41")
        assert roster_agenda(session, practice.id) == 1  # the room's day; the vet's is Animana's
        assert _shifts(session, practice)[practice.synced_vet] == [(WEEK[0] + dt.timedelta(days=1), "41")]


def test_no_vaccination_reminder_beside_the_one_the_practice_has_in_animana(fresh_db, practice):
    today = dt.date(2026, 11, 1)
    with fresh_db.as_app(AccessContext.for_practices([practice.id])) as session:
        patient = session.scalar(
            text("INSERT INTO patient (practice_id, name, species) VALUES (:p, 'Guus', 'dog') RETURNING id"),
            {"p": practice.id},
        )
        due = {
            "linked": dt.date(2026, 11, 10),
            "same_day": dt.date(2026, 11, 12),
            "none": dt.date(2026, 11, 14),
        }
        vaccinations = {
            name: session.scalar(
                text(
                    "INSERT INTO vaccination (practice_id, patient_id, vaccine_name, given_on, due_on) "
                    "VALUES (:p, :a, :v, :g, :d) RETURNING id"
                ),
                {
                    "p": practice.id,
                    "a": patient,
                    "v": f"Nobivac {name}",
                    "g": day - dt.timedelta(days=365),
                    "d": day,
                },
            )  # fmt: skip
            for name, day in due.items()
        }
        # Synced from Animana: one names its vaccination, one is a reminder for the patient's vaccinations that day.
        for animana_id, vaccination, day in (("r1", vaccinations["linked"], due["linked"]),
                                             ("r2", None, due["same_day"])):  # fmt: skip
            session.execute(
                text("INSERT INTO reminder (practice_id, patient_id, kind, due_on, vaccination_id, status, "
                     "animana_id, channel, description) VALUES (:p, :a, 'vaccination', :d, :v, 'sent', :r, "
                     "'email', 'Vaccinatie')"),
                {"p": practice.id, "a": patient, "d": day, "v": vaccination, "r": animana_id},
            )  # fmt: skip
        assert generate_vaccination_reminders(session, practice.id, today=today).created == 1
        generated = session.execute(
            text("SELECT vaccination_id, due_on FROM reminder WHERE practice_id = :p AND animana_id IS NULL"),
            {"p": practice.id},
        ).all()
    assert generated == [(vaccinations["none"], due["none"])]
