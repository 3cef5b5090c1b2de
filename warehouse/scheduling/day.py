"""The agenda: a practice's appointments over one or more of its local days, one row each."""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel.practice_time import local_day_bounds, practice_zone

_SCHEDULE = text(
    """
    SELECT a.id, a.resource_id, r.name AS resource, r.kind AS resource_kind, a.starts_at, a.ends_at, a.status,
           a.patient_id, p.name AS patient, p.species, a.client_id, c.last_name AS client,
           coalesce(t.name, 'Afspraak') AS type, coalesce(o.colour, t.colour, '#888888') AS colour, a.reason,
           a.checked_in_at, a.consult_started_at, a.completed_at
    FROM appointment a
    JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
    LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
    LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id
    LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
    LEFT JOIN appointment_type_override o
      ON o.practice_id = a.practice_id AND o.appointment_type_id = a.appointment_type_id
    WHERE a.practice_id = :practice_id AND a.starts_at >= :start AND a.starts_at < :end
      AND (CAST(:resource_id AS bigint) IS NULL OR a.resource_id = :resource_id)
      AND (:with_cancelled OR a.status <> 'cancelled')
    ORDER BY a.starts_at, r.name
    """
)
SCHEDULE_SCHEMA = {
    "id": pl.Int64, "resource_id": pl.Int64, "resource": pl.String, "resource_kind": pl.String,
    "starts_at": pl.Datetime("us", "UTC"), "ends_at": pl.Datetime("us", "UTC"), "status": pl.String,
    "patient_id": pl.Int64, "patient": pl.String, "species": pl.String, "client_id": pl.Int64, "client": pl.String,
    "type": pl.String, "colour": pl.String, "reason": pl.String, "checked_in_at": pl.Datetime("us", "UTC"),
    "consult_started_at": pl.Datetime("us", "UTC"), "completed_at": pl.Datetime("us", "UTC"),
}  # fmt: skip


def schedule(
    session: Session, practice_id: int, day: dt.date, *, days: int = 1, resource_id: int | None = None,
    with_cancelled: bool = False,
) -> pl.DataFrame:  # fmt: skip
    """Appointments of ``days`` of the practice's local days from ``day``: one row each, with resource,
    patient, type colour."""
    start, end = local_day_bounds(day, practice_zone(session, practice_id), days)
    rows = session.execute(_SCHEDULE, {"practice_id": practice_id, "start": start, "end": end,
                                       "resource_id": resource_id, "with_cancelled": with_cancelled})  # fmt: skip
    return pl.DataFrame([dict(r._mapping) for r in rows], schema=SCHEDULE_SCHEMA)
