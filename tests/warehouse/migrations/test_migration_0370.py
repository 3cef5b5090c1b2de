"""Migration 0370 on a database with rows: shifts and reminders come through intact, marked as VetConnect's
own; the new Animana ids are unique per practice, never across practices; downgrading gives the rows back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import _libpq, create_database, drop_database
from warehouse.migrations import runner as migrate

SHIFTS = "SELECT practice_id, resource_id, starts_at, ends_at FROM staff_shift ORDER BY practice_id, id"
REMINDERS = "SELECT practice_id, patient_id, kind, due_on, status FROM reminder ORDER BY practice_id, id"


@pytest.fixture
def at_0350(server_url: str) -> Iterator[str]:
    """A database at 0350 with two practices, each with a resource, two shifts, a patient and two reminders."""
    name = f"vc_mig_{uuid.uuid4().hex[:8]}"
    url = create_database(server_url, name)
    migrate.upgrade(url, "0350")
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute(
            "INSERT INTO tenant (id, kind, franchise_id, code, name) VALUES (1, 'franchise', 1, 'F', 'F')"
        )
        for practice in (2, 3):
            conn.execute(
                "INSERT INTO tenant (id, kind, parent_id, franchise_id, practice_id, code, name) "
                "VALUES (%(p)s, 'practice', 1, 1, %(p)s, %(code)s, %(code)s)",
                {"p": practice, "code": f"P{practice}"},
            )
            conn.execute("SELECT onboard_practice(%s)", (practice,))
            resource = conn.execute(
                "INSERT INTO resource (practice_id, kind, name) VALUES (%s, 'staff', 'Dr. Jansen') RETURNING id",
                (practice,),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at) VALUES "
                "(%(p)s, %(r)s, '2026-11-02 08:00+01', '2026-11-02 18:30+01'), "
                "(%(p)s, %(r)s, '2026-11-03 08:00+01', '2026-11-03 18:30+01')",
                {"p": practice, "r": resource},
            )
            patient = conn.execute(
                "INSERT INTO patient (practice_id, name, species) VALUES (%s, 'Guus', 'dog') RETURNING id",
                (practice,),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO reminder (practice_id, patient_id, kind, due_on, status) VALUES "
                "(%(p)s, %(a)s, 'vaccination', '2027-01-15', 'pending'), (%(p)s, %(a)s, 'recall', '2027-03-01', 'sent')",
                {"p": practice, "a": patient},
            )
    yield url
    drop_database(server_url, name)


def _read(url: str, query: str) -> list[tuple]:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute(query).fetchall()


def test_upgrade_keeps_the_rows_and_marks_them_vetconnects_own(at_0350):
    shifts, reminders = _read(at_0350, SHIFTS), _read(at_0350, REMINDERS)
    migrate.upgrade(at_0350, "0370")
    assert _read(at_0350, SHIFTS) == shifts and len(shifts) == 4
    assert _read(at_0350, REMINDERS) == reminders and len(reminders) == 4
    assert _read(at_0350, "SELECT count(*) FROM staff_shift WHERE animana_id IS NULL") == [(4,)]
    assert _read(
        at_0350,
        "SELECT count(*) FROM reminder WHERE animana_id IS NULL AND description IS NULL AND channel IS NULL",
    ) == [(4,)]
    migrate.downgrade(at_0350, "0360")
    assert _read(at_0350, SHIFTS) == shifts and _read(at_0350, REMINDERS) == reminders


def test_animana_ids_are_unique_per_practice_and_channels_are_the_templates(at_0350):
    migrate.upgrade(at_0350, "0370")
    with psycopg.connect(_libpq(at_0350)) as conn:
        # The same Animana id in two practices is two records; a NULL id may repeat.
        conn.execute(
            "UPDATE staff_shift SET animana_id = CASE WHEN starts_at::date = '2026-11-02' THEN '7' END"
        )
        conn.execute(
            "UPDATE reminder SET animana_id = CASE WHEN kind = 'recall' THEN '12' END, channel = 'sms'"
        )
        conn.commit()
        first_practice = conn.execute("SELECT min(practice_id) FROM staff_shift").fetchone()[0]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE staff_shift SET animana_id = '7' WHERE practice_id = %s", (first_practice,))
        conn.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("UPDATE reminder SET animana_id = '12' WHERE practice_id = %s", (first_practice,))
        conn.rollback()
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE reminder SET channel = 'pigeon'")
