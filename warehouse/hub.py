"""Read models for the hub page: what the signed-in user's practices look like today."""

from __future__ import annotations

import datetime as dt

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

_OVERVIEW = text(
    """
    SELECT t.id AS practice_id, t.name AS practice, t.city,
           (SELECT count(*) FROM patient p WHERE p.practice_id = t.id AND p.deleted_at IS NULL) AS patients,
           (SELECT count(*) FROM client c WHERE c.practice_id = t.id AND c.deleted_at IS NULL) AS clients,
           (SELECT count(*) FROM appointment a WHERE a.practice_id = t.id
              AND a.starts_at >= :day_start AND a.starts_at < :day_end AND a.status <> 'cancelled')
             AS appointments_today,
           (SELECT count(*) FROM resource r WHERE r.practice_id = t.id AND r.kind = 'staff' AND r.active) AS staff
    FROM tenant t
    WHERE t.kind = 'practice'
    ORDER BY t.name
    """
)


def practice_overview(session: Session, day: dt.date, tz: dt.tzinfo) -> pl.DataFrame:
    """One row per practice visible in the session's access context (RLS decides which)."""
    start = dt.datetime.combine(day, dt.time(0), tz)
    rows = (
        session.execute(_OVERVIEW, {"day_start": start, "day_end": start + dt.timedelta(days=1)})
        .mappings()
        .all()
    )
    schema = {"practice_id": pl.Int64, "practice": pl.String, "city": pl.String, "patients": pl.Int64,
              "clients": pl.Int64, "appointments_today": pl.Int64, "staff": pl.Int64}  # fmt: skip
    return pl.DataFrame([dict(r) for r in rows], schema=schema)
