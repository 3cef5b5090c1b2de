"""Building the marts: recompute a practice's dirty days (incremental) or everything (full rebuild).

Which practice-days changed is recorded by the database itself: statement-level triggers on the source tables
(migration 0006) put the old and new day of every written row into ``mart_dirty_day`` — whoever wrote (the
Animana sync, a staff workspace, a device import) and however (insert, update, delete). The sync's own counts
say how many rows changed but not which days, and ``updated_at`` is missing on most source tables and blind to
deletes, so the change queue is the one exact source. A refresh takes the practice's dirty days out of the
queue and recomputes them in one transaction (delete-then-insert per day), so a failed refresh leaves the
queue as it was and a rerun is harmless.

Day-grain marts are a function of one practice-day's source rows, so recomputing the dirty days gives what a
full rebuild gives. Client history (month grain) and receivables depend on a practice's whole history; they
are small and recomputed for every practice that has any dirty day.

Who drains the queue: the Dagster schedule every 15 minutes, and each dashboard before it reads (only the
days changed since, typically today), so a consult finished a minute ago is in the figures the manager opens.
A refresh stamps ``mart_refresh``; the dashboards say "as of" and drop what they keep in memory by that stamp.

Everything runs as the application role under the practice's RLS context; listing the practices to refresh is
the one cross-tenant read and goes through the audited system session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.messaging.worked import LOOK_BACK, settle_worked

DAY_MARTS = (
    "mart_practice_day",
    "mart_staff_day",
    "mart_appointment_type_day",
    "mart_hour_day",
    "mart_diagnosis_day",
)
PRACTICE_MARTS = ("mart_practice_month", "mart_open_invoice")
ALL_MARTS = (*DAY_MARTS, *PRACTICE_MARTS)

# Every statement takes :p (practice), :tz (its time zone), :lo/:hi (a UTC window enclosing the days, for
# the indexes) and :days (date[]; NULL = every day). Parameters are bound, never formatted in.
_ALL = "CAST(:days AS date[]) IS NULL"


def _ts_in_days(column: str) -> str:
    return (
        f"{column} >= :lo AND {column} < :hi AND ({_ALL} OR "
        f"({column} AT TIME ZONE :tz)::date = ANY(CAST(:days AS date[])))"
    )


def _date_in_days(column: str) -> str:
    return f"({_ALL} OR {column} = ANY(CAST(:days AS date[])))"


_APPOINTMENTS = f"""
  SELECT a.resource_id, coalesce(a.appointment_type_id, 0) AS appointment_type_id,
         (a.starts_at AT TIME ZONE :tz)::date AS day,
         extract(hour FROM a.starts_at AT TIME ZONE :tz)::smallint AS hour,
         a.status, (extract(epoch FROM a.ends_at - a.starts_at) / 60)::bigint AS minutes
  FROM appointment a WHERE a.practice_id = :p AND {_ts_in_days("a.starts_at")}
"""
_COUNTS = """
  count(*) AS appts_booked, count(*) FILTER (WHERE status = 'done') AS appts_completed,
  count(*) FILTER (WHERE status = 'cancelled') AS appts_cancelled,
  count(*) FILTER (WHERE status = 'no_show') AS appts_no_show
"""
_STAFF = f"""
  appt AS ({_APPOINTMENTS}),
  shift AS (
    SELECT s.resource_id, (s.starts_at AT TIME ZONE :tz)::date AS day,
           sum(extract(epoch FROM s.ends_at - s.starts_at) / 60)::bigint AS shift_minutes
    FROM staff_shift s WHERE s.practice_id = :p AND {_ts_in_days("s.starts_at")} GROUP BY 1, 2),
  visit_by_resource AS (
    SELECT a.resource_id, (v.started_at AT TIME ZONE :tz)::date AS day, count(*) AS visits
    FROM visit v JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id
    WHERE v.practice_id = :p AND {_ts_in_days("v.started_at")} GROUP BY 1, 2),
  appt_by_resource AS (
    SELECT resource_id, day, {_COUNTS},
           coalesce(sum(minutes) FILTER (WHERE status <> 'cancelled'), 0)::bigint AS booked_minutes
    FROM appt GROUP BY 1, 2),
  staff AS (
    SELECT resource_id, day, coalesce(r.appts_booked, 0) AS appts_booked,
           coalesce(r.appts_completed, 0) AS appts_completed, coalesce(r.appts_cancelled, 0) AS appts_cancelled,
           coalesce(r.appts_no_show, 0) AS appts_no_show, coalesce(r.booked_minutes, 0) AS booked_minutes,
           coalesce(s.shift_minutes, 0) AS shift_minutes, coalesce(v.visits, 0) AS visits
    FROM appt_by_resource r FULL JOIN shift s USING (resource_id, day) FULL JOIN visit_by_resource v
      USING (resource_id, day))
"""

STATEMENTS: dict[str, str] = {
    "mart_staff_day": f"""
WITH {_STAFF}
INSERT INTO mart_staff_day (practice_id, day, resource_id, appts_booked, appts_completed, appts_cancelled,
                            appts_no_show, booked_minutes, shift_minutes, visits)
SELECT :p, day, resource_id, appts_booked, appts_completed, appts_cancelled, appts_no_show, booked_minutes,
       shift_minutes, visits FROM staff
""",
    "mart_appointment_type_day": f"""
WITH appt AS ({_APPOINTMENTS})
INSERT INTO mart_appointment_type_day (practice_id, day, appointment_type_id, appts_booked, appts_completed,
                                       appts_cancelled, appts_no_show, booked_minutes)
SELECT :p, day, appointment_type_id, {_COUNTS},
       coalesce(sum(minutes) FILTER (WHERE status <> 'cancelled'), 0)
FROM appt GROUP BY day, appointment_type_id
""",
    "mart_hour_day": f"""
WITH appt AS ({_APPOINTMENTS})
INSERT INTO mart_hour_day (practice_id, day, hour, appts_booked, appts_no_show, booked_minutes)
SELECT :p, day, hour, count(*), count(*) FILTER (WHERE status = 'no_show'),
       coalesce(sum(minutes) FILTER (WHERE status <> 'cancelled'), 0)
FROM appt GROUP BY day, hour
""",
    "mart_diagnosis_day": f"""
INSERT INTO mart_diagnosis_day (practice_id, day, venom_code, term, diagnoses)
SELECT :p, (d.diagnosed_at AT TIME ZONE :tz)::date, coalesce(d.venom_code, ''), d.term, count(*)
FROM diagnosis d WHERE d.practice_id = :p AND d.removed_at IS NULL AND {_ts_in_days("d.diagnosed_at")}
GROUP BY 2, 3, 4
""",
    "mart_practice_day": f"""
WITH {_STAFF},
  sched AS (
    SELECT day, sum(appts_booked) AS appts_booked, sum(appts_completed) AS appts_completed,
           sum(appts_cancelled) AS appts_cancelled, sum(appts_no_show) AS appts_no_show,
           sum(booked_minutes) FILTER (WHERE shift_minutes > 0) AS booked_minutes,
           sum(shift_minutes) AS shift_minutes
    FROM staff GROUP BY day),
  inv AS (
    SELECT i.issued_on AS day, sum(i.total_excl_cents) AS revenue_excl_cents,
           sum(i.total_incl_cents) AS revenue_incl_cents,
           count(*) FILTER (WHERE i.credit_of_id IS NULL AND i.total_incl_cents >= 0) AS invoices,
           count(*) FILTER (WHERE i.credit_of_id IS NOT NULL OR i.total_incl_cents < 0) AS credit_notes
    FROM invoice i WHERE i.practice_id = :p AND i.status NOT IN ('draft', 'void')
      AND {_date_in_days("i.issued_on")} GROUP BY 1),
  lab AS (
    SELECT i.issued_on AS day, sum(l.line_excl_cents) AS lab_revenue_excl_cents
    FROM invoice i
    JOIN invoice_line l ON l.practice_id = i.practice_id AND l.invoice_id = i.id
    JOIN product pr ON pr.franchise_id = l.franchise_id AND pr.id = l.product_id AND pr.kind = 'lab'
    WHERE i.practice_id = :p AND i.status NOT IN ('draft', 'void') AND {_date_in_days("i.issued_on")}
    GROUP BY 1),
  vis AS (
    SELECT (v.started_at AT TIME ZONE :tz)::date AS day, count(*) AS visits,
           count(DISTINCT v.patient_id) AS patients_seen
    FROM visit v WHERE v.practice_id = :p AND {_ts_in_days("v.started_at")} GROUP BY 1),
  vacc AS (
    SELECT v.due_on AS day, count(*) AS vacc_due,
           count(*) FILTER (WHERE EXISTS (
             SELECT 1 FROM vaccination w
             WHERE w.practice_id = v.practice_id AND w.patient_id = v.patient_id AND w.vaccine_name = v.vaccine_name
               AND w.id <> v.id AND w.given_on > v.given_on
               AND w.given_on BETWEEN v.due_on - 30 AND v.due_on + 30)) AS vacc_done_30d
    FROM vaccination v WHERE v.practice_id = :p AND v.due_on IS NOT NULL AND {_date_in_days("v.due_on")}
    GROUP BY 1),
  -- A reminder worked when it reached the owner and a booking or its vaccine followed within 30 days
  -- (``worked_at``, settled by ``warehouse.messaging.worked`` before this runs).
  rem AS (
    SELECT r.due_on AS day, count(*) AS reminders_due,
           count(*) FILTER (WHERE r.worked_at IS NOT NULL) AS reminders_done
    FROM reminder r
    WHERE r.practice_id = :p AND r.status <> 'cancelled' AND {_date_in_days("r.due_on")}
    GROUP BY 1),
  days AS (SELECT day FROM sched UNION SELECT day FROM inv UNION SELECT day FROM vis UNION SELECT day FROM vacc
           UNION SELECT day FROM rem)
INSERT INTO mart_practice_day (
  practice_id, day, revenue_excl_cents, revenue_incl_cents, invoices, credit_notes, lab_revenue_excl_cents, visits,
  patients_seen, appts_booked, appts_completed, appts_cancelled, appts_no_show, booked_minutes, shift_minutes,
  vacc_due, vacc_done_30d, reminders_due, reminders_done)
SELECT :p, day, coalesce(revenue_excl_cents, 0), coalesce(revenue_incl_cents, 0), coalesce(invoices, 0),
       coalesce(credit_notes, 0), coalesce(lab_revenue_excl_cents, 0), coalesce(visits, 0), coalesce(patients_seen, 0),
       coalesce(appts_booked, 0), coalesce(appts_completed, 0), coalesce(appts_cancelled, 0),
       coalesce(appts_no_show, 0), coalesce(booked_minutes, 0), coalesce(shift_minutes, 0), coalesce(vacc_due, 0),
       coalesce(vacc_done_30d, 0), coalesce(reminders_due, 0), coalesce(reminders_done, 0)
FROM days LEFT JOIN sched USING (day) LEFT JOIN inv USING (day) LEFT JOIN lab USING (day)
  LEFT JOIN vis USING (day) LEFT JOIN vacc USING (day) LEFT JOIN rem USING (day)
""",
    # Whole practice history: the client of a visit is the appointment's client, else the primary owner.
    "mart_practice_month": """
WITH client_month AS (
    SELECT DISTINCT coalesce(a.client_id, owner.client_id) AS client_id,
           date_trunc('month', v.started_at AT TIME ZONE :tz)::date AS month
    FROM visit v
    LEFT JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id
    LEFT JOIN LATERAL (
      SELECT min(cp.client_id) AS client_id FROM client_patient cp
      WHERE cp.practice_id = v.practice_id AND cp.patient_id = v.patient_id AND cp.is_primary) owner ON true
    WHERE v.practice_id = :p),
  known AS (SELECT * FROM client_month WHERE client_id IS NOT NULL),
  months AS (SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM known),
  first_month AS (SELECT client_id, min(month) AS month FROM known GROUP BY 1),
  per_client AS (
    SELECT m.month, k.client_id,
           bool_or(k.month > (m.month - interval '18 months')::date) AS active,
           bool_or(k.month > (m.month - interval '12 months')::date) AS recent,
           bool_or(k.month <= (m.month - interval '12 months')::date) AS before
    FROM months m JOIN known k ON k.month <= m.month AND k.month > (m.month - interval '24 months')::date
    GROUP BY 1, 2)
INSERT INTO mart_practice_month (practice_id, month, active_clients, new_clients, retention_base, retained_clients)
SELECT :p, m.month, coalesce(c.active, 0), coalesce(f.new_clients, 0), coalesce(c.base, 0), coalesce(c.retained, 0)
FROM months m
LEFT JOIN (SELECT month, count(*) FILTER (WHERE active) AS active, count(*) FILTER (WHERE before) AS base,
                  count(*) FILTER (WHERE before AND recent) AS retained FROM per_client GROUP BY 1) c USING (month)
LEFT JOIN (SELECT month, count(*) AS new_clients FROM first_month GROUP BY 1) f USING (month)
""",
    "mart_open_invoice": """
INSERT INTO mart_open_invoice (practice_id, invoice_id, client_id, issued_on, due_on, total_incl_cents, paid_cents,
                               outstanding_cents)
SELECT :p, i.id, i.client_id, i.issued_on, i.due_on, i.total_incl_cents, coalesce(pay.paid, 0),
       i.total_incl_cents - coalesce(pay.paid, 0)
FROM invoice i
LEFT JOIN (SELECT invoice_id, sum(amount_cents) AS paid FROM payment
           WHERE practice_id = :p AND invoice_id IS NOT NULL GROUP BY 1) pay ON pay.invoice_id = i.id
WHERE i.practice_id = :p AND i.status = 'issued' AND i.total_incl_cents - coalesce(pay.paid, 0) > 0
""",
}

_LOCK_KEY = 7_401  # advisory lock class of mart refreshes (the second key is the practice)
_WIDE = (dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2200, 1, 1, tzinfo=dt.UTC))


@dataclass(frozen=True)
class RefreshResult:
    practice_id: int
    days: int  # practice-days recomputed (0: nothing was dirty); -1 for a full rebuild
    full: bool


def _window(days: Sequence[dt.date] | None) -> tuple[dt.datetime, dt.datetime]:
    if days is None:
        return _WIDE
    # A day in any time zone lies within [day - 1, day + 2) UTC.
    lo, hi = min(days) - dt.timedelta(days=1), max(days) + dt.timedelta(days=2)
    return dt.datetime.combine(lo, dt.time(), dt.UTC), dt.datetime.combine(hi, dt.time(), dt.UTC)


def refresh_practice(
    session: Session, practice_id: int, *, full: bool = False, wait: bool = True
) -> RefreshResult:
    """Recompute one practice's dirty days (or everything) in the caller's transaction (RLS context: the
    practice). Takes the dirty days out of the queue first, so a concurrent writer marks its day again.

    One refresh of a practice at a time (a transaction-level advisory lock): two at once would both rebuild
    the whole-history marts and the second's insert would collide with the first's rows. ``wait=False`` (a
    dashboard refreshing on read) does nothing when another refresh holds the practice: that one is recomputing
    the same queue."""
    locked = session.scalar(
        text(
            f"SELECT {'pg_advisory_xact_lock' if wait else 'pg_try_advisory_xact_lock'}(:key, CAST(:p AS int))"
        ),
        {"key": _LOCK_KEY, "p": practice_id},
    )
    if locked is False:
        return RefreshResult(practice_id, 0, full)
    tz = session.execute(text("SELECT timezone FROM tenant WHERE id = :p"), {"p": practice_id}).scalar_one()
    # Whether reminders worked depends on bookings and doses that do not mark the reminder's day; settling it
    # first writes the reminders whose answer changed, and their days join the queue claimed below.
    if full:
        settle_worked(session, practice_id, since=None)
    else:
        queued = session.scalars(
            text("SELECT day FROM mart_dirty_day WHERE practice_id = :p"), {"p": practice_id}
        )
        settle_worked(session, practice_id, since=dt.datetime.now(dt.UTC) - LOOK_BACK, due_days=queued.all())
    claimed = sorted(
        session.scalars(
            text("DELETE FROM mart_dirty_day WHERE practice_id = :p RETURNING day"), {"p": practice_id}
        )
    )
    days: list[dt.date] | None = None if full else claimed
    if days == []:
        return RefreshResult(practice_id, 0, full)
    lo, hi = _window(days)
    params: dict[str, Any] = {"p": practice_id, "tz": tz, "days": days, "lo": lo, "hi": hi}
    for table in DAY_MARTS:
        session.execute(
            text(f"DELETE FROM {table} WHERE practice_id = :p AND ({_date_in_days('day')})"),  # noqa: S608
            {"p": practice_id, "days": days},
        )
        session.execute(text(STATEMENTS[table]), params)
    for table in PRACTICE_MARTS:
        session.execute(text(f"DELETE FROM {table} WHERE practice_id = :p"), {"p": practice_id})  # noqa: S608
        session.execute(text(STATEMENTS[table]), params)
    session.execute(
        text("INSERT INTO mart_refresh (practice_id, refreshed_at) VALUES (:p, now()) "
             "ON CONFLICT (practice_id) DO UPDATE SET refreshed_at = excluded.refreshed_at"),
        {"p": practice_id},
    )  # fmt: skip
    return RefreshResult(practice_id, -1 if full else len(claimed), full)


def refresh_pending(session: Session, practice_ids: Sequence[int]) -> dt.datetime | None:
    """What a dashboard runs before it reads: recompute the practices' dirty days now (today's work shows at
    once, not after the next scheduled refresh), then the latest refresh time of these practices, which is
    what the figures in memory must be newer than (None: never refreshed). Runs in the caller's session (the
    reader's own RLS context); a practice another refresh is working on is left to that refresh."""
    for practice_id in practice_ids:
        refresh_practice(session, practice_id, wait=False)
    return session.scalar(
        text("SELECT max(refreshed_at) FROM mart_refresh WHERE practice_id = ANY(:ids)"),
        {"ids": list(practice_ids)},
    )


def practices_to_refresh(admin_engine: Engine, *, full: bool = False) -> list[int]:
    """Practices with dirty days (or every live practice for a full rebuild): a cross-tenant read, audited."""
    query = (
        "SELECT id FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL ORDER BY id"
        if full
        else "SELECT DISTINCT practice_id FROM mart_dirty_day ORDER BY 1"
    )
    with system_session(admin_engine, reason=f"marts: list practices to refresh (full={full})") as session:
        return list(session.scalars(text(query)))


def refresh(
    app_engine: Engine, practice_ids: Sequence[int], *, full: bool = False, workers: int = 1
) -> list[RefreshResult]:
    """Refresh each practice in its own transaction under its own RLS context. Practices share no mart rows,
    so ``workers`` > 1 refreshes that many practices at once (one connection each; the engine's pool must
    allow it)."""

    def one(practice_id: int) -> RefreshResult:
        with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
            return refresh_practice(session, practice_id, full=full)

    if workers <= 1:
        return [one(practice_id) for practice_id in practice_ids]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="marts-refresh") as pool:
        return list(pool.map(one, practice_ids))


def refresh_all(
    app_engine: Engine, admin_engine: Engine, *, full: bool = False, workers: int = 1
) -> list[RefreshResult]:
    return refresh(app_engine, practices_to_refresh(admin_engine, full=full), full=full, workers=workers)
