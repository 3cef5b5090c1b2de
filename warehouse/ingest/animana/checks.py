"""What the warehouse holds of Animana, for the sync's checks and drift reports: mirrored rows per source resource
(`MirrorCount`), open quarantine per resource, and the referential checks the foreign keys cannot express.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.ingest.animana.statements import driver_connection
from warehouse.ingest.animana.tombstones import DELETED_UPSTREAM

FROM_ANIMANA = sql.SQL("animana_id IS NOT NULL")
NOT_DELETED = sql.SQL("deleted_at IS NULL")
NOT_DELETED_UPSTREAM = sql.SQL("cancel_reason IS DISTINCT FROM {}").format(sql.Literal(DELETED_UPSTREAM))


def key_prefix(prefix: str) -> sql.Composed:
    """Rows whose namespaced animana_id starts with ``prefix`` (staff and rooms share the ``resource`` table)."""
    return sql.SQL("starts_with(animana_id, {})").format(sql.Literal(prefix))


@dataclass(frozen=True)
class MirrorCount:
    """How many of a resource's live records the warehouse holds: the practice's rows of ``table`` meeting every
    condition. The drift check compares it (plus what is in quarantine) with the API's total."""

    table: str
    conditions: tuple[sql.Composable, ...] = (FROM_ANIMANA,)

    def statement(self) -> sql.Composed:
        where = [sql.SQL("practice_id = %(pid)s"), *self.conditions]
        return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
            sql.Identifier(self.table), sql.SQL(" AND ").join(where)
        )


def mirror_counts(session: Session, practice_id: int, mirrors: Mapping[str, MirrorCount]) -> dict[str, int]:
    """Rows mirrored from Animana per source resource (live rows only), by each resource's `MirrorCount`."""
    cur = driver_connection(session).cursor()
    counts = {}
    for resource, mirror in mirrors.items():
        cur.execute(mirror.statement(), {"pid": practice_id})
        counts[resource] = int(cur.fetchone()[0])  # type: ignore[index]
    return counts


def open_quarantine_counts(session: Session, practice_id: int) -> dict[str, int]:
    """Distinct source records waiting in quarantine per resource (notes are resolved, so not counted)."""
    rows = session.execute(
        text(
            "SELECT resource, count(DISTINCT external_id) FROM ingest_quarantine WHERE practice_id = :pid "
            "AND source = 'animana' AND resolved_at IS NULL GROUP BY resource"
        ),
        {"pid": practice_id},
    ).all()
    return {r: int(n) for r, n in rows}


def integrity_problems(session: Session, practice_id: int) -> dict[str, int]:
    """Referential checks the foreign keys cannot express: a live patient without any client, an appointment
    whose resource is unknown (no row) or belongs to no one."""
    patients_without_client = session.execute(
        text(
            "SELECT count(*) FROM patient p WHERE p.practice_id = :pid AND p.deleted_at IS NULL "
            "AND NOT EXISTS (SELECT 1 FROM client_patient cp WHERE cp.practice_id = :pid "
            "AND cp.patient_id = p.id)"
        ),
        {"pid": practice_id},
    ).scalar_one()
    appointments_unknown_resource = session.execute(
        text(
            "SELECT count(*) FROM appointment a WHERE a.practice_id = :pid AND NOT EXISTS "
            "(SELECT 1 FROM resource r WHERE r.practice_id = :pid AND r.id = a.resource_id)"
        ),
        {"pid": practice_id},
    ).scalar_one()
    return {
        "patients_without_client": int(patients_without_client),
        "appointments_with_unknown_resource": int(appointments_unknown_resource),
    }
