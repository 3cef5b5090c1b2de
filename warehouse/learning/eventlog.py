"""Read API for the models: event logs and appointment histories as polars frames, under the caller's RLS.

Synced (Animana) data has few rows in ``event``, so the care-episode log is *derived* from the record. A care
episode is one appointment and what followed from it:

    booking_made → (cancelled | no_show | check_in → consult → diagnosis → lab_order → lab_result →
    lab_result_reviewed → vaccination → prescription → invoice → payment → follow_up_booked)

Records that carry only a date (vaccinations, invoices, lab results, payments) are placed after the consult
in that order, so the episode's order is the clinical order. Rows of ``event`` that name an appointment are
added to its episode as they are (their ``activity`` text). User work sessions are built in
``models.work_sessions``.

Every query filters on the practice ids explicitly (partition pruning) *and* runs under RLS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

_EPISODES = """
WITH a AS (
  SELECT a.practice_id, a.id AS appointment_id, a.patient_id, a.client_id, a.booked_at, a.starts_at,
         a.status, a.cancelled_at, a.checked_in_at, a.updated_at,
         coalesce(t.code, '') AS appointment_type, coalesce(p.species, '') AS species
  FROM appointment a
  LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
  LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
  WHERE a.practice_id = ANY(:practices)
    AND (CAST(:since AS timestamptz) IS NULL OR a.starts_at >= :since)
    AND (CAST(:until AS timestamptz) IS NULL OR a.starts_at < :until)
    AND (CAST(:patient AS bigint) IS NULL OR a.patient_id = :patient)
),
v AS (
  SELECT v.practice_id, v.id AS visit_id, v.appointment_id, v.patient_id, v.started_at,
         (v.started_at AT TIME ZONE pr.timezone)::date AS local_day  -- the day of the visit at its practice
  FROM visit v JOIN a ON a.practice_id = v.practice_id AND a.appointment_id = v.appointment_id
  JOIN tenant pr ON pr.id = v.practice_id
  WHERE v.practice_id = ANY(:practices)
),
inv AS (
  SELECT DISTINCT ON (i.practice_id, i.id) i.practice_id, i.id AS invoice_id, v.appointment_id,
         greatest(i.issued_on::timestamptz, v.started_at + interval '40 minutes') AS at
  FROM invoice i
  JOIN a ON a.practice_id = i.practice_id AND a.client_id = i.client_id
  JOIN v ON v.practice_id = a.practice_id AND v.appointment_id = a.appointment_id
  WHERE i.practice_id = ANY(:practices) AND i.credit_of_id IS NULL
    AND (i.visit_id = v.visit_id OR (i.visit_id IS NULL
         AND i.issued_on = v.local_day))
  ORDER BY i.practice_id, i.id, v.started_at
)
SELECT practice_id, appointment_id, activity, at, stage FROM (
  SELECT practice_id, appointment_id, 'booking_made' AS activity, booked_at AS at, 0 AS stage FROM a
  UNION ALL
  SELECT practice_id, appointment_id, 'cancelled', coalesce(cancelled_at, updated_at, starts_at), 1
  FROM a WHERE status = 'cancelled'
  UNION ALL
  SELECT practice_id, appointment_id, 'no_show', starts_at, 1 FROM a WHERE status = 'no_show'
  UNION ALL
  SELECT practice_id, appointment_id, 'check_in', coalesce(checked_in_at, starts_at), 2
  FROM a WHERE status IN ('checked_in', 'in_consult', 'done')
  UNION ALL
  SELECT practice_id, appointment_id, 'consult', started_at, 3 FROM v
  UNION ALL
  SELECT DISTINCT ON (d.practice_id, v.visit_id) v.practice_id, v.appointment_id, 'diagnosis',
         greatest(d.diagnosed_at, v.started_at + interval '5 minutes'), 4
  FROM diagnosis d JOIN v ON v.practice_id = d.practice_id AND v.visit_id = d.visit_id
  WHERE d.practice_id = ANY(:practices)
  UNION ALL
  SELECT v.practice_id, v.appointment_id, 'lab_order', greatest(o.ordered_at, v.started_at), 5
  FROM lab_order o JOIN v ON v.practice_id = o.practice_id AND v.visit_id = o.visit_id
  WHERE o.practice_id = ANY(:practices)
  UNION ALL
  SELECT DISTINCT ON (o.practice_id, v.visit_id, o.observed_at::date) v.practice_id, v.appointment_id,
         'lab_result', greatest(o.observed_at, v.started_at + interval '10 minutes'), 6
  FROM lab_observation o JOIN v ON v.practice_id = o.practice_id AND v.patient_id = o.patient_id
  WHERE o.practice_id = ANY(:practices) AND o.superseded_by IS NULL
    AND o.observed_at >= date_trunc('day', v.started_at) AND o.observed_at < v.started_at + interval '7 days'
  UNION ALL
  SELECT v.practice_id, v.appointment_id, 'lab_result_reviewed', o.reviewed_at, 7
  FROM lab_order o JOIN v ON v.practice_id = o.practice_id AND v.visit_id = o.visit_id
  WHERE o.practice_id = ANY(:practices) AND o.reviewed_at IS NOT NULL
  UNION ALL
  SELECT DISTINCT ON (x.practice_id, v.visit_id) v.practice_id, v.appointment_id, 'vaccination',
         greatest(x.given_on::timestamptz, v.started_at + interval '15 minutes'), 8
  FROM vaccination x JOIN v ON v.practice_id = x.practice_id AND v.patient_id = x.patient_id
   AND (x.visit_id = v.visit_id OR (x.visit_id IS NULL
        AND x.given_on = v.local_day))
  WHERE x.practice_id = ANY(:practices)
  UNION ALL
  SELECT DISTINCT ON (x.practice_id, v.visit_id) v.practice_id, v.appointment_id, 'prescription',
         greatest(x.prescribed_at, v.started_at + interval '20 minutes'), 9
  FROM prescription x JOIN v ON v.practice_id = x.practice_id AND v.visit_id = x.visit_id
  WHERE x.practice_id = ANY(:practices)
  UNION ALL
  SELECT practice_id, appointment_id, 'invoice', at, 10 FROM inv
  UNION ALL
  SELECT DISTINCT ON (y.practice_id, inv.invoice_id) inv.practice_id, inv.appointment_id, 'payment',
         greatest(y.paid_at, inv.at + interval '1 minute'), 11
  FROM payment y JOIN inv ON inv.practice_id = y.practice_id AND inv.invoice_id = y.invoice_id
  WHERE y.practice_id = ANY(:practices)
  UNION ALL
  SELECT DISTINCT ON (n.practice_id, v.visit_id) v.practice_id, v.appointment_id, 'follow_up_booked',
         greatest(n.booked_at, v.started_at + interval '50 minutes'), 12
  FROM appointment n JOIN v ON v.practice_id = n.practice_id AND v.patient_id = n.patient_id
  WHERE n.practice_id = ANY(:practices) AND n.id <> v.appointment_id
    AND n.booked_at >= v.started_at AND n.booked_at < v.started_at + interval '1 day'
  UNION ALL
  SELECT e.practice_id, e.appointment_id, e.activity, e.occurred_at, 20
  FROM event e JOIN a ON a.practice_id = e.practice_id AND a.appointment_id = e.appointment_id
  WHERE e.practice_id = ANY(:practices)
    -- Already derived above from the appointment itself; the event would count the same step twice.
    AND e.activity NOT IN ('booking_made', 'check_in', 'no_show', 'appointment_cancelled')
) x
"""


def query_frame(session: Session, sql: str, params: dict, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """The rows of ``sql`` as a polars frame with exactly ``schema`` (also for an empty result)."""
    rows = session.execute(text(sql), params).all()
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def care_episode_log(
    session: Session,
    practice_ids: Sequence[int],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    patient_id: int | None = None,
) -> pl.DataFrame:
    """One row per event of every care episode whose appointment starts in ``[since, until)``.

    Columns: ``case_id`` ("practice:appointment"), ``activity``, ``timestamp`` (UTC), ``practice_id``,
    ``appointment_id``, ``patient_id``, ``species``, ``appointment_type``, ``stage`` (tie-break order)."""
    params = {"practices": list(practice_ids), "since": since, "until": until, "patient": patient_id}
    events = query_frame(session, _EPISODES, params, {"practice_id": pl.Int64, "appointment_id": pl.Int64,
                    "activity": pl.String, "timestamp": pl.Datetime("us", "UTC"), "stage": pl.Int32})  # fmt: skip
    cases = query_frame(
        session,
        "SELECT a.practice_id, a.id, a.patient_id, coalesce(p.species, ''), coalesce(t.code, '') FROM appointment a "
        "LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id "
        "LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id "
        "WHERE a.practice_id = ANY(:practices) AND (CAST(:since AS timestamptz) IS NULL OR a.starts_at >= :since) "
        "AND (CAST(:until AS timestamptz) IS NULL OR a.starts_at < :until) "
        "AND (CAST(:patient AS bigint) IS NULL OR a.patient_id = :patient)",
        params,
        {"practice_id": pl.Int64, "appointment_id": pl.Int64, "patient_id": pl.Int64, "species": pl.String,
         "appointment_type": pl.String},
    )  # fmt: skip
    return (
        events.join(cases, on=["practice_id", "appointment_id"], how="left")
        .with_columns(case_id=pl.format("{}:{}", "practice_id", "appointment_id"))
        .sort(["case_id", "timestamp", "stage"])
        .select(
            "case_id",
            "activity",
            "timestamp",
            "practice_id",
            "appointment_id",
            "patient_id",
            "species",
            "appointment_type",
            "stage",
        )  # fmt: skip
    )


_APPOINTMENTS = """
SELECT a.practice_id, a.id, a.client_id, a.patient_id, coalesce(t.code, ''), coalesce(p.species, ''),
       a.booked_at, a.starts_at, a.status
FROM appointment a
LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
WHERE a.practice_id = ANY(:practices)
  AND (CAST(:since AS timestamptz) IS NULL OR a.starts_at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR a.starts_at < :until)
  AND (CAST(:ids AS bigint[]) IS NULL OR a.id = ANY(:ids)
       OR (CAST(:with_history AS boolean) AND a.client_id IN (
           SELECT b.client_id FROM appointment b WHERE b.practice_id = ANY(:practices) AND b.id = ANY(:ids))))
"""
APPOINTMENT_SCHEMA = {
    "practice_id": pl.Int64, "appointment_id": pl.Int64, "client_id": pl.Int64, "patient_id": pl.Int64,
    "appointment_type": pl.String, "species": pl.String, "booked_at": pl.Datetime("us", "UTC"),
    "starts_at": pl.Datetime("us", "UTC"), "status": pl.String,
}  # fmt: skip


def appointment_frame(
    session: Session,
    practice_ids: Sequence[int],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    appointment_ids: Sequence[int] | None = None,
    with_client_history: bool = False,
) -> pl.DataFrame:
    """Appointments for the no-show model (see ``APPOINTMENT_SCHEMA``). With ``appointment_ids`` and
    ``with_client_history``, also every other appointment of those appointments' clients."""
    params = {"practices": list(practice_ids), "since": since, "until": until,
              "ids": None if appointment_ids is None else [int(i) for i in appointment_ids],
              "with_history": with_client_history}  # fmt: skip
    return query_frame(session, _APPOINTMENTS, params, APPOINTMENT_SCHEMA)
