"""Animana versions in the loader: a mirrored row stores its record's ``updated_at`` as ``animana_version``, in the
API's own format (UTC to the second, ``Z``) whatever zone the parsed timestamp carries; a record that comes
back with the same values at a new version (the echo of our own write) changes only the version; and the
loader's writes are never captured for write-back."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from connectors.animana.resources import animals, vaccinations
from connectors.animana.resources.vaccinations import VaccinationRow
from warehouse.ingest.animana.load import load_batch
from warehouse.ingest.animana.rows import Batch, LoadTarget, PatientRow
from warehouse.kernel.tenancy import AccessContext
from warehouse.tenants.admin import add_franchise, add_practice

MASTER_KEY = bytes(range(32))
# 10:30:15 in Amsterdam (winter time, +01:00) is 09:30:15 UTC.
FIRST = dt.datetime(2025, 3, 1, 10, 30, 15, tzinfo=ZoneInfo("Europe/Amsterdam"))
SECOND = dt.datetime(2025, 3, 2, 8, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def practice(fresh_db) -> tuple[Any, LoadTarget]:  # noqa: ANN001
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-ver", name="Versions")
        added = add_practice(
            session, franchise_id=franchise.id, code="ver-1", name="Ver 1", master_key=MASTER_KEY
        )
        return fresh_db, LoadTarget(added.id, franchise.id)


def _patient(version: dt.datetime, name: str = "Max") -> PatientRow:
    return PatientRow("p1", name, "dog", None, "male", None, None, None, False, None, version)


def _load(db, target: LoadTarget, batch: Batch, load) -> tuple[int, int]:  # noqa: ANN001
    with db.as_app(AccessContext.for_practices([target.practice_id])) as session:
        counts = load_batch(session, target, batch, load)
    return counts.inserted, counts.updated


def _patient_state(db) -> tuple:  # noqa: ANN001
    with db.system() as session:
        return tuple(
            session.execute(text("SELECT name, animana_version, writeback_pending FROM patient")).one()
        )


def test_the_version_is_the_api_string_and_a_new_version_alone_is_an_update(practice):
    db, target = practice
    assert _load(db, target, Batch("animals", rows=[_patient(FIRST)]), animals.SPEC.load) == (1, 0)
    assert _patient_state(db) == ("Max", "2025-03-01T09:30:15Z", False)
    assert _load(db, target, Batch("animals", rows=[_patient(FIRST)]), animals.SPEC.load) == (0, 0)
    # Same values, new version: what our own write looks like when the next sync reads it back.
    assert _load(db, target, Batch("animals", rows=[_patient(SECOND)]), animals.SPEC.load) == (0, 1)
    assert _patient_state(db) == ("Max", "2025-03-02T08:00:00Z", False)
    assert _load(db, target, Batch("animals", rows=[_patient(SECOND, "Maxi")]), animals.SPEC.load) == (0, 1)
    assert _patient_state(db) == ("Maxi", "2025-03-02T08:00:00Z", False)
    with db.system() as session:
        assert session.scalar(text("SELECT count(*) FROM writeback_outbox")) == 0


def test_a_declarative_plan_stores_the_version_too(practice):
    db, target = practice
    _load(db, target, Batch("animals", rows=[_patient(FIRST)]), animals.SPEC.load)
    row = VaccinationRow("v1", "p1", None, "Nobivac DHP", "B-1", dt.date(2025, 3, 1), None, SECOND)
    assert _load(db, target, Batch("vaccinations", rows=[row]), vaccinations.SPEC.load) == (1, 0)
    with db.system() as session:
        stored = session.execute(text("SELECT vaccine_name, animana_version FROM vaccination")).one()
        captured = session.scalar(text("SELECT count(*) FROM writeback_outbox"))
    assert tuple(stored) == ("Nobivac DHP", "2025-03-02T08:00:00Z")
    assert captured == 0
