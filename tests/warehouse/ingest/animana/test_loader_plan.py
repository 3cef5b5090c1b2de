"""The declarative load of a simple resource (`TableLoad`) against real tables: upserts that count only real
changes, required parents resolved or the row quarantined with the reason, both tombstone rules and the mirror
count each implies; and a plan that names what its staging table lacks is refused when declared."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import text

from connectors.animana.resources import animals
from warehouse.ingest.animana.checks import mirror_counts
from warehouse.ingest.animana.load import load_batch
from warehouse.ingest.animana.plan import OnDelete, Reference, TableLoad
from warehouse.ingest.animana.rows import Batch, LoadTarget, PatientRow
from warehouse.ingest.animana.staging import Staging
from warehouse.kernel.tenancy import AccessContext
from warehouse.tenants.admin import add_franchise, add_practice

MASTER_KEY = bytes(range(32))
MEASURED = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)

# Weights as a resource of their own: a required parent, rows deleted upstream are deleted here.
WEIGHTS = TableLoad(
    table="weight_measurement",
    staging=Staging(
        "stg_plan_weight",
        ("animana_id text", "patient_animana_id text", "measured_at timestamptz", "weight_grams bigint"),
    ),
    columns=(
        Reference("patient_id", "patient", "patient_animana_id", required=True, unknown="unknown animal"),
        "measured_at",
        "weight_grams",
    ),
)
# Clients by name only: rows deleted upstream are marked deleted, and come back when the record does.
NAMES = TableLoad(
    table="client",
    staging=Staging("stg_plan_client", ("animana_id text", "last_name text", "active boolean")),
    columns=("last_name", "active"),
    on_delete=OnDelete.MARK_DELETED,
    touch=True,
)


@pytest.fixture
def practice(fresh_db) -> tuple[Any, LoadTarget]:  # noqa: ANN001
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-plan", name="Plan")
        added = add_practice(
            session, franchise_id=franchise.id, code="plan-1", name="Plan 1", master_key=MASTER_KEY
        )
        return fresh_db, LoadTarget(added.id, franchise.id)


def _load(db, target: LoadTarget, batch: Batch, plan: TableLoad) -> tuple[int, int, int, int]:  # noqa: ANN001
    with db.as_app(AccessContext.for_practices([target.practice_id])) as session:
        counts = load_batch(session, target, batch, plan)
    return counts.inserted, counts.updated, counts.deleted, counts.quarantined


def _mirrored(db, target: LoadTarget, plan: TableLoad) -> int:  # noqa: ANN001
    with db.as_app(AccessContext.for_practices([target.practice_id])) as session:
        return mirror_counts(session, target.practice_id, {"it": plan.mirror})["it"]


def test_rows_with_a_known_parent_load_the_others_are_quarantined_and_deletions_delete(practice):
    db, target = practice
    patient = PatientRow("p1", "Max", "dog", None, "male", None, None, None, False, None, MEASURED)
    _load(db, target, Batch("animals", rows=[patient]), animals.SPEC.load)
    weights = [
        ("w1", "p1", MEASURED, 12_000),
        ("w2", "p1", MEASURED, 12_500),
        ("w3", "p404", MEASURED, 9_000),
    ]

    assert _load(db, target, Batch("weights", rows=weights), WEIGHTS) == (2, 0, 0, 1)
    assert _load(db, target, Batch("weights", rows=weights[:2]), WEIGHTS) == (0, 0, 0, 0)  # nothing changed
    changed = [("w1", "p1", MEASURED, 12_100)]
    assert _load(db, target, Batch("weights", rows=changed, deleted=["w2"]), WEIGHTS) == (0, 1, 1, 0)

    assert _mirrored(db, target, WEIGHTS) == 1
    with db.as_app(AccessContext.for_practices([target.practice_id])) as session:
        kept = session.execute(text("SELECT animana_id, weight_grams FROM weight_measurement")).all()
        quarantined = session.execute(
            text("SELECT resource, external_id, reason FROM ingest_quarantine")
        ).all()
    assert [tuple(r) for r in kept] == [("w1", 12_100)]
    assert [tuple(q) for q in quarantined] == [("weights", "w3", "unknown animal p404")]


def test_rows_deleted_upstream_are_marked_deleted_and_come_back_with_their_record(practice):
    db, target = practice
    names = [("c1", "Bakker", True), ("c2", "Visser", True)]
    assert _load(db, target, Batch("names", rows=names), NAMES) == (2, 0, 0, 0)

    assert _load(db, target, Batch("names", deleted=["c2"]), NAMES) == (0, 0, 1, 0)
    assert _mirrored(db, target, NAMES) == 1
    assert _load(db, target, Batch("names", deleted=["c2"]), NAMES) == (0, 0, 0, 0)  # once

    assert _load(db, target, Batch("names", rows=names[1:]), NAMES) == (0, 1, 0, 0)
    assert _mirrored(db, target, NAMES) == 2


def test_a_plan_must_name_columns_its_staging_table_has():
    staging = Staging("stg_x", ("animana_id text", "name text"))
    with pytest.raises(ValueError, match="not a column of stg_x"):
        TableLoad(table="x", staging=staging, columns=("nmae",))
    with pytest.raises(ValueError, match="not a column of stg_x"):
        TableLoad(
            table="x", staging=staging, columns=(Reference("patient_id", "patient", "patient_animana_id"),)
        )
    with pytest.raises(ValueError, match="quarantine reason"):
        Reference("patient_id", "patient", "patient_animana_id", required=True)
    with pytest.raises(ValueError, match="first staging column"):
        TableLoad(table="x", staging=Staging("stg_y", ("name text", "animana_id text")), columns=("name",))
    with pytest.raises(ValueError, match="is not 'name type'"):
        Staging("stg_z", ("animana_id text", "name varchar; DROP TABLE client"))
