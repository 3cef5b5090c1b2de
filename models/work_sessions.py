"""User work sessions as an event log: case = one person's stretch of work, activity = what they did.

What the warehouse knows about *who* did something (read under the caller's RLS):

- ``event.actor_user_id`` / ``actor_role``: written by VetConnect itself (scheduling: bookings, check-ins,
  cancellations, …). Synced Animana history has no such rows.
- Synced Animana records carry no user: the mapper keeps neither the consult's vet nor the booking clerk.
  What they do keep is the agenda: each appointment is booked on a staff member (a ``resource`` of kind
  ``staff``, linked to an app user when the practice set that up). The clinical work of an appointment's care
  episode (consult, diagnosis, lab order, lab review, vaccination, prescription) is attributed to that staff
  member — or to ``visit.vet_user_id`` when VetConnect recorded who held the consult. Front-desk work of synced
  history (booking, check-in, invoice, payment) has no known actor and is left out rather than guessed;
  appointments booked on a room (surgery) have no staff member and are left out as well.

So an actor is ``user:<app user id>`` or ``staff:<resource id>`` (a synced staff member without an account).
A work session is one actor's events in one practice with no gap over :data:`SESSION_GAP` and within one local
(Amsterdam) day. Attributes: the actor's role where VetConnect recorded it, and the appointment type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl
from sqlalchemy.orm import Session

from models.eventlog import LogColumns, normalise
from warehouse.learning.eventlog import care_episode_log, query_frame

SESSION_GAP = dt.timedelta(hours=2)
LOCAL_TZ = "Europe/Amsterdam"
SESSION_ATTRS = ("role", "appointment_type")
# Care-episode activities done by the clinician the appointment is booked on.
CLINICAL = ("consult", "diagnosis", "lab_order", "lab_result_reviewed", "vaccination", "prescription")

# The first vet of each appointment's visits in one sorted pass, hash-joined: visit has no index on
# appointment_id, so a per-appointment subquery scanned the visit partition once per appointment (quadratic;
# 8+ minutes for the demo world's 105k appointments of one franchise).
_ACTORS = """
WITH first_vet AS (
  SELECT DISTINCT ON (v.practice_id, v.appointment_id) v.practice_id, v.appointment_id, v.vet_user_id
  FROM visit v
  WHERE v.practice_id = ANY(:practices) AND v.appointment_id IS NOT NULL AND v.vet_user_id IS NOT NULL
    AND (CAST(:since AS timestamptz) IS NULL OR v.started_at >= CAST(:since AS timestamptz) - interval '1 day')
  ORDER BY v.practice_id, v.appointment_id, v.started_at)
SELECT a.practice_id, a.id, coalesce(f.vet_user_id, r.user_id), CASE WHEN r.kind = 'staff' THEN r.id END
FROM appointment a LEFT JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
LEFT JOIN first_vet f ON f.practice_id = a.practice_id AND f.appointment_id = a.id
WHERE a.practice_id = ANY(:practices) AND (CAST(:since AS timestamptz) IS NULL OR a.starts_at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR a.starts_at < :until)
"""
_APP_EVENTS = """
SELECT e.practice_id, 'user:' || e.actor_user_id, e.activity, e.occurred_at, coalesce(e.actor_role, ''),
       e.patient_id, e.appointment_id, coalesce(t.code, ''), e.id
FROM event e
LEFT JOIN appointment a ON a.practice_id = e.practice_id AND a.id = e.appointment_id
LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
WHERE e.practice_id = ANY(:practices) AND e.actor_user_id IS NOT NULL
  AND (CAST(:since AS timestamptz) IS NULL OR e.occurred_at >= :since)
  AND (CAST(:until AS timestamptz) IS NULL OR e.occurred_at < :until)
"""
RAW_SCHEMA = {
    "practice_id": pl.Int64, "actor": pl.String, "activity": pl.String, "timestamp": pl.Datetime("us", "UTC"),
    "role": pl.String, "patient_id": pl.Int64, "appointment_id": pl.Int64, "appointment_type": pl.String,
    "order": pl.Int64,
}  # fmt: skip


def actor_events(
    session: Session,
    practice_ids: Sequence[int],
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> pl.DataFrame:
    """Every event with a known actor (see the module docstring) in ``[since, until)``, oldest first (columns:
    ``RAW_SCHEMA``); clinical work of appointments starting before ``until``."""
    params = {"practices": list(practice_ids), "since": since, "until": until}
    app = query_frame(session, _APP_EVENTS, params, RAW_SCHEMA)
    # Appointments that started up to a day before ``since`` can still have work after it.
    starts_from = None if since is None else since - dt.timedelta(days=1)
    episodes = care_episode_log(session, practice_ids, since=starts_from, until=until)
    actors = query_frame(session, _ACTORS, {**params, "since": starts_from}, {
        "practice_id": pl.Int64, "appointment_id": pl.Int64, "user_id": pl.Int64, "staff_id": pl.Int64})  # fmt: skip
    clinical = (
        episodes.filter(pl.col("activity").is_in(CLINICAL) & (pl.col("stage") < 20))
        .join(actors, on=["practice_id", "appointment_id"], how="inner")
        .with_columns(
            actor=pl.when(pl.col("user_id").is_not_null())
            .then(pl.format("user:{}", "user_id"))
            .otherwise(pl.format("staff:{}", "staff_id")),
            role=pl.lit(""),
            order=pl.col("stage").cast(pl.Int64),
        )
        .filter(pl.col("actor").is_not_null())
        .select(list(RAW_SCHEMA))
    )
    if since is not None:
        clinical = clinical.filter(pl.col("timestamp") >= since)
    if until is not None:
        clinical = clinical.filter(pl.col("timestamp") < until)
    return pl.concat([app.cast(RAW_SCHEMA), clinical.cast(RAW_SCHEMA)]).sort(
        ["practice_id", "actor", "timestamp", "order"]
    )


def split_sessions(events: pl.DataFrame, gap: dt.timedelta = SESSION_GAP) -> pl.DataFrame:
    """Add ``case_id`` (``practice:actor:n``): a new session after a gap over ``gap`` or on a new local day."""
    key = ["practice_id", "actor"]
    ts = pl.col("timestamp")
    day = ts.dt.convert_time_zone(LOCAL_TZ).dt.date()
    starts = (
        ts.shift(1).over(key).is_null()
        | ((ts - ts.shift(1).over(key)) > gap)
        | (day != day.shift(1).over(key))
    )
    return (
        events.sort([*key, "timestamp", "order"])
        .with_columns(session_no=starts.cast(pl.Int32).cum_sum().over(key))
        .with_columns(case_id=pl.format("{}:{}:{}", "practice_id", "actor", "session_no"))
        .drop("session_no")
    )


def work_session_log(
    session: Session, practice_ids: Sequence[int], *, since: dt.datetime | None = None
) -> pl.DataFrame:
    """The practices' work sessions as a normalised event log (attributes: role, appointment type); the
    columns ``actor``, ``practice_id``, ``patient_id`` and ``appointment_id`` are kept beside it."""
    events = actor_events(session, practice_ids, since=since)
    if events.height == 0:
        return events
    return normalise_sessions(split_sessions(events))


def normalise_sessions(sessions: pl.DataFrame) -> pl.DataFrame:
    """:func:`models.eventlog.normalise` for session rows (already in order), keeping the context columns."""
    # normalise sorts by (case, time, original row): rows given in that order stay in it, so the context
    # columns line up with the normalised rows.
    ordered = sessions.sort(["case_id", "timestamp", "order"])
    log = normalise(ordered, LogColumns("case_id", "activity", "timestamp", SESSION_ATTRS))
    context = ordered.select("practice_id", "actor", "patient_id", "appointment_id")
    return pl.concat([log, context], how="horizontal")
