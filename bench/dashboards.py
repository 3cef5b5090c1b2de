"""Benchmark: the dashboard data functions from the marts, against the same figures from the raw tables.

At 200 practices, 10 M appointments and 20 M invoice lines (issue #5, Performance): p50/p95 of every data
function of ``warehouse.marts.kpis`` (target p95 < 300 ms), called under ``tenant_session`` as the pages call
them — a practice manager (one practice) and a franchise manager (50 practices) — against a naive baseline
that computes the same figures with plain GROUP BYs over appointment / invoice_line / visit / … in the same
run, same session type, same parameters (the raw SQL replaces the mart SQL; the polars post-processing is the
same code). Then the time of a full mart rebuild and of an incremental refresh of one day in every practice.

    python bench/dashboards.py                    # 200 practices × 50,000 appointments × 100,000 lines
    python bench/dashboards.py --practices 200 --appointments-per-practice 5000 --lines-per-practice 10000
    python bench/dashboards.py --reuse            # measure again on the database of the previous run

Uses DATABASE_URL if set, else a throw-away embedded server under ./.vetconnect/bench-pgdata.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tenancy import add_bench_franchise, add_bench_practice, libpq, percentile, progress, server_url  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, tenant_session  # noqa: E402
from warehouse.marts import kpis  # noqa: E402
from warehouse.marts.refresh import ALL_MARTS, refresh_all  # noqa: E402
from warehouse.migrations import runner as migrate

DB_NAME = "vc_bench_dashboards"
timeouts: collections.Counter[tuple[str, str, str]] = collections.Counter()
PRACTICES_PER_FRANCHISE = 50
STAFF, ROOMS = 6, 2  # bookable resources per practice
DAYS = 365  # history generated, ending yesterday
SLOTS_PER_DAY = 24  # 20-minute slots from 07:00 UTC; appointments last 15 minutes
TERMS = ("Otitis externa", "Gastroenteritis", "Dermatitis", "Dental disease", "Obesity", "Arthritis", "Cystitis",
         "Conjunctivitis", "Lameness", "Pruritus", "Vomiting", "Healthy")  # fmt: skip


# --------------------------------------------------------------------------------------------- data generation


def practice_sql(per_practice: int, lines: int) -> list[str]:
    """Statements generating one practice's record (params: p, f, n, lines, npat, start)."""
    return [
        f"INSERT INTO resource (practice_id, kind, name) SELECT %(p)s, CASE WHEN g <= {STAFF} THEN 'staff' "
        f"ELSE 'room' END, CASE WHEN g <= {STAFF} THEN 'Vet ' ELSE 'Room ' END || g "
        f"FROM generate_series(1, {STAFF + ROOMS}) g",
        "INSERT INTO client (practice_id, last_name, postcode) SELECT %(p)s, 'Client ' || g, "
        "lpad((1000 + g %% 8999)::text, 4, '0') || 'AB' FROM generate_series(1, %(npat)s) g",
        "INSERT INTO patient (practice_id, name, species) SELECT %(p)s, 'Patient ' || g, "
        "CASE WHEN g %% 3 = 0 THEN 'cat' ELSE 'dog' END FROM generate_series(1, %(npat)s) g",
        f"""
        WITH r AS (SELECT array_agg(id ORDER BY id) ids FROM resource WHERE practice_id = %(p)s),
             pt AS (SELECT array_agg(id ORDER BY id) ids FROM patient WHERE practice_id = %(p)s),
             cl AS (SELECT array_agg(id ORDER BY id) ids FROM client WHERE practice_id = %(p)s),
             ty AS (SELECT array_agg(id ORDER BY id) ids, count(*) n FROM appointment_type WHERE franchise_id = %(f)s)
        INSERT INTO appointment (practice_id, resource_id, franchise_id, appointment_type_id, patient_id, client_id,
                                 starts_at, ends_at, status, booked_at, source)
        SELECT %(p)s, r.ids[1 + i %% {STAFF + ROOMS}], %(f)s, ty.ids[1 + (i / 7) %% ty.n],
               pt.ids[1 + (i * 7919) %% %(npat)s], cl.ids[1 + (i * 7919) %% %(npat)s], s, s + interval '15 minutes',
               CASE WHEN i %% 17 = 0 THEN 'no_show' WHEN i %% 13 = 0 THEN 'cancelled' ELSE 'done' END,
               s - (i %% 30) * interval '1 day', 'native'
        FROM r, pt, cl, ty, generate_series(0, %(n)s - 1) i,
             LATERAL (SELECT %(start)s::timestamptz + ((i / {STAFF + ROOMS}) %% {DAYS}) * interval '1 day'
                             + ((i / {STAFF + ROOMS}) / {DAYS}) * interval '20 minutes' AS s) t
        """,
        f"INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at) "
        f"SELECT %(p)s, r.id, %(start)s::timestamptz + d * interval '1 day' - interval '30 minutes', "
        f"%(start)s::timestamptz + d * interval '1 day' + interval '8 hours 30 minutes' "
        f"FROM resource r, generate_series(0, {DAYS - 1}) d WHERE r.practice_id = %(p)s AND r.kind = 'staff'",
        "INSERT INTO visit (practice_id, patient_id, appointment_id, started_at) "
        "SELECT practice_id, patient_id, id, starts_at + interval '5 minutes' FROM appointment "
        "WHERE practice_id = %(p)s AND status = 'done'",
        "INSERT INTO invoice (practice_id, number, client_id, visit_id, issued_on, due_on, status) "
        "SELECT v.practice_id, 'F' || v.id, a.client_id, v.id, (v.started_at AT TIME ZONE 'Europe/Amsterdam')::date, "
        "(v.started_at AT TIME ZONE 'Europe/Amsterdam')::date + 30, "
        "CASE WHEN v.id %% 50 = 0 THEN 'draft' WHEN v.id %% 9 = 0 THEN 'issued' ELSE 'paid' END "
        "FROM visit v JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id "
        "WHERE v.practice_id = %(p)s",
        """
        WITH inv AS (SELECT array_agg(id ORDER BY id) ids, count(*) n FROM invoice WHERE practice_id = %(p)s),
             pr AS (SELECT array_agg(id ORDER BY id) ids, array_agg(price_cents ORDER BY id) prices,
                           array_agg(vat_rate_bp ORDER BY id) vats, count(*) n FROM product WHERE franchise_id = %(f)s)
        INSERT INTO invoice_line (practice_id, invoice_id, franchise_id, product_id, description, quantity,
                                  unit_price_cents, vat_rate_bp, line_excl_cents, line_vat_cents, line_incl_cents)
        SELECT %(p)s, inv.ids[1 + j %% inv.n], %(f)s, pr.ids[k], 'Line ' || k, 1, pr.prices[k], pr.vats[k],
               pr.prices[k], vat, pr.prices[k] + vat
        FROM inv, pr, generate_series(0, %(lines)s - 1) j,
             LATERAL (SELECT 1 + (j * 31) %% pr.n AS k) x,
             LATERAL (SELECT round(pr.prices[k] * pr.vats[k] / 10000.0)::bigint AS vat) v
        """,
        "UPDATE invoice i SET total_excl_cents = s.e, vat_cents = s.v, total_incl_cents = s.e + s.v "
        "FROM (SELECT invoice_id, sum(line_excl_cents) e, sum(line_vat_cents) v FROM invoice_line "
        "WHERE practice_id = %(p)s GROUP BY 1) s WHERE i.practice_id = %(p)s AND i.id = s.invoice_id",
        "INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents, paid_at) "
        "SELECT practice_id, id, client_id, 'pin', total_incl_cents / 2, issued_on FROM invoice "
        "WHERE practice_id = %(p)s AND status = 'issued' AND id %% 3 = 0 AND total_incl_cents > 1",
        "INSERT INTO diagnosis (practice_id, visit_id, patient_id, venom_code, term, diagnosed_at) "
        "SELECT practice_id, id, patient_id, (1000 + id %% 12)::text, (%(terms)s::text[])[1 + id %% 12], started_at "
        "FROM visit WHERE practice_id = %(p)s AND id %% 3 = 0",
        "INSERT INTO vaccination (practice_id, patient_id, visit_id, vaccine_name, given_on, due_on) "
        "SELECT practice_id, patient_id, id, CASE WHEN id %% 2 = 0 THEN 'DHP' ELSE 'Lepto' END, "
        "(started_at AT TIME ZONE 'Europe/Amsterdam')::date, (started_at AT TIME ZONE 'Europe/Amsterdam')::date + 182 "
        "FROM visit WHERE practice_id = %(p)s AND id %% 4 = 0",
        "INSERT INTO reminder (practice_id, patient_id, kind, due_on, vaccination_id, status) "
        "SELECT practice_id, patient_id, 'vaccination', due_on - 14, id, "
        "CASE id %% 5 WHEN 0 THEN 'pending' WHEN 1 THEN 'sent' WHEN 2 THEN 'cancelled' ELSE 'done' END "
        "FROM vaccination WHERE practice_id = %(p)s",
    ]  # fmt: skip


def build(admin: str, practices: int, per_practice: int, lines: int, workers: int) -> None:
    """Tenants through the real onboarding function; the record generated inside the server (INSERT…SELECT)
    with triggers off (session_replication_role), so the marts' change queue stays empty: a full rebuild
    follows. Practices are generated ``workers`` at a time (one connection each: they share no rows)."""
    if per_practice > (STAFF + ROOMS) * DAYS * SLOTS_PER_DAY:
        raise SystemExit(f"at most {(STAFF + ROOMS) * DAYS * SLOTS_PER_DAY:,} appointments per practice")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    migrate.upgrade(
        make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    )
    master = bytes(32)
    today = dt.datetime.now(dt.UTC).date()
    start = dt.datetime.combine(today - dt.timedelta(days=DAYS), dt.time(7), dt.UTC)
    statements = practice_sql(per_practice, lines)
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        conn.execute("SET session_replication_role = replica")
        franchises = (practices + PRACTICES_PER_FRANCHISE - 1) // PRACTICES_PER_FRANCHISE
        started = time.perf_counter()
        plan: list[tuple[int, int]] = []
        for f in range(franchises):
            fid = add_bench_franchise(conn, f)
            conn.execute(
                "INSERT INTO appointment_type (franchise_id, code, name, duration_minutes) "
                "SELECT %s, 'T' || g, (ARRAY['Consult', 'Vaccination', 'Surgery', 'Check-up'])[g], 15 "
                "FROM generate_series(1, 4) g",
                (fid,),
            )
            conn.execute(
                "INSERT INTO product (franchise_id, code, name, kind, price_cents, vat_rate_bp) "
                "SELECT %s, 'P' || g, 'Product ' || g, "
                "(ARRAY['service', 'medicine', 'food', 'goods', 'lab', 'service', 'medicine', 'lab'])[g], "
                "1500 + 700 * g, (ARRAY[2100, 900, 900, 2100, 2100, 2100, 900, 2100])[g] FROM generate_series(1, 8) g",
                (fid,),
            )  # fmt: skip
            for _ in range(min(PRACTICES_PER_FRANCHISE, practices - f * PRACTICES_PER_FRANCHISE)):
                plan.append((add_bench_practice(conn, fid, master), fid))
            conn.commit()
            progress("practices", len(plan), practices, started)
        print()
    npat = max(200, per_practice // 5)
    started = time.perf_counter()

    def generate(practice: tuple[int, int]) -> None:
        pid, fid = practice
        params = {"p": pid, "f": fid, "n": per_practice, "lines": lines, "npat": npat, "start": start,
                  "terms": list(TERMS)}  # fmt: skip
        with psycopg.connect(libpq(admin, DB_NAME)) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("SET synchronous_commit = off")
            # The practice's new partitions have no statistics inside its transaction: a nested loop planned
            # on "a few rows" scans the invoice table once per invoice. Bulk generation wants hash joins.
            conn.execute("SET enable_nestloop = off")
            for sql in statements:
                conn.execute(sql, params)  # type: ignore[arg-type]

    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(generate, plan):
            done += 1
            progress("practice data", done, len(plan), started)
    print()
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# ------------------------------------------------------------------------------------------- naive baseline
# The same figures as the mart functions, from the raw tables: :ids, :start, :end, local days of the
# practice's time zone; :lo/:hi a UTC window around the period so the timestamp indexes can be used.

_IDS = (
    "ids AS (SELECT id AS practice_id, timezone AS tz FROM tenant WHERE id = ANY(:ids) AND kind = 'practice')"
)


def _local(table: str, column: str) -> str:
    return (
        f"{table}.practice_id = ANY(:ids) AND {table}.{column} >= :lo AND {table}.{column} < :hi "
        f"AND ({table}.{column} AT TIME ZONE ids.tz)::date BETWEEN :start AND :end"
    )


_APPT = f"""
r_appt AS (SELECT a.practice_id, a.resource_id, (a.starts_at AT TIME ZONE ids.tz)::date AS day,
                  extract(hour FROM a.starts_at AT TIME ZONE ids.tz)::int AS hour, a.status,
                  extract(epoch FROM a.ends_at - a.starts_at) / 60 AS minutes
           FROM appointment a JOIN ids USING (practice_id) WHERE {_local("a", "starts_at")}),
r_shift AS (SELECT s.practice_id, s.resource_id, (s.starts_at AT TIME ZONE ids.tz)::date AS day,
                   sum(extract(epoch FROM s.ends_at - s.starts_at) / 60) AS minutes
            FROM staff_shift s JOIN ids USING (practice_id) WHERE {_local("s", "starts_at")} GROUP BY 1, 2, 3)
"""

_RAW_DAY = f"""
{_IDS}, {_APPT},
r_sched AS (SELECT a.practice_id, a.day, count(*) AS appts_booked, count(*) FILTER (WHERE a.status = 'done') AS appts_completed,
                   count(*) FILTER (WHERE a.status = 'cancelled') AS appts_cancelled,
                   count(*) FILTER (WHERE a.status = 'no_show') AS appts_no_show,
                   coalesce(sum(a.minutes) FILTER (WHERE a.status <> 'cancelled' AND sh.minutes > 0), 0) AS booked_minutes
            FROM r_appt a LEFT JOIN r_shift sh USING (practice_id, resource_id, day) GROUP BY 1, 2),
r_shifts AS (SELECT practice_id, day, sum(minutes) AS shift_minutes FROM r_shift GROUP BY 1, 2),
r_inv AS (SELECT i.practice_id, i.issued_on AS day, sum(l.line_excl_cents) AS revenue_excl_cents,
                 sum(l.line_incl_cents) AS revenue_incl_cents,
                 coalesce(sum(l.line_excl_cents) FILTER (WHERE pr.kind = 'lab'), 0) AS lab_revenue_excl_cents,
                 count(DISTINCT i.id) FILTER (WHERE i.credit_of_id IS NULL AND i.total_incl_cents >= 0) AS invoices
          FROM invoice i JOIN invoice_line l ON l.practice_id = i.practice_id AND l.invoice_id = i.id
          LEFT JOIN product pr ON pr.franchise_id = l.franchise_id AND pr.id = l.product_id
          WHERE i.practice_id = ANY(:ids) AND i.status NOT IN ('draft', 'void') AND i.issued_on BETWEEN :start AND :end
          GROUP BY 1, 2),
r_vis AS (SELECT v.practice_id, (v.started_at AT TIME ZONE ids.tz)::date AS day, count(*) AS visits,
                 count(DISTINCT v.patient_id) AS patients_seen
          FROM visit v JOIN ids USING (practice_id) WHERE {_local("v", "started_at")} GROUP BY 1, 2),
r_vacc AS (SELECT v.practice_id, v.due_on AS day, count(*) AS vacc_due,
                  count(*) FILTER (WHERE EXISTS (
                    SELECT 1 FROM vaccination w WHERE w.practice_id = v.practice_id AND w.patient_id = v.patient_id
                      AND w.vaccine_name = v.vaccine_name AND w.id <> v.id AND w.given_on > v.given_on
                      AND w.given_on BETWEEN v.due_on - 30 AND v.due_on + 30)) AS vacc_done_30d
           FROM vaccination v WHERE v.practice_id = ANY(:ids) AND v.due_on BETWEEN :start AND :end GROUP BY 1, 2),
r_rem AS (SELECT practice_id, due_on AS day, count(*) AS reminders_due, count(*) FILTER (WHERE status = 'done') AS reminders_done
          FROM reminder WHERE practice_id = ANY(:ids) AND status <> 'cancelled' AND due_on BETWEEN :start AND :end
          GROUP BY 1, 2),
r_keys AS (SELECT practice_id, day FROM r_sched UNION SELECT practice_id, day FROM r_shifts
           UNION SELECT practice_id, day FROM r_inv UNION SELECT practice_id, day FROM r_vis
           UNION SELECT practice_id, day FROM r_vacc UNION SELECT practice_id, day FROM r_rem),
raw_day AS (SELECT * FROM r_keys LEFT JOIN r_sched USING (practice_id, day) LEFT JOIN r_shifts USING (practice_id, day)
            LEFT JOIN r_inv USING (practice_id, day) LEFT JOIN r_vis USING (practice_id, day)
            LEFT JOIN r_vacc USING (practice_id, day) LEFT JOIN r_rem USING (practice_id, day))
"""  # fmt: skip


def _params(practice_ids: Sequence[int], start: dt.date, end: dt.date, **extra: Any) -> dict[str, Any]:
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), dt.UTC)
    return {"ids": list(practice_ids), "start": start, "end": end, "lo": lo, "hi": hi, **extra}


def raw_period_totals(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    sums = ", ".join(f"coalesce(sum({c}), 0)::bigint AS {c}" for c in kpis.SUMS)
    sql = f"""
    WITH {_RAW_DAY},
    days AS (SELECT practice_id, {sums} FROM raw_day GROUP BY 1),
    client_month AS (
      SELECT DISTINCT v.practice_id, a.client_id, date_trunc('month', v.started_at AT TIME ZONE ids.tz)::date AS month
      FROM visit v JOIN ids USING (practice_id)
      JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id
      WHERE v.practice_id = ANY(:ids) AND v.started_at < :hi AND a.client_id IS NOT NULL),
    clients AS (
      SELECT practice_id,
             count(*) FILTER (WHERE first_month BETWEEN date_trunc('month', CAST(:start AS date)) AND :mon) AS new_clients,
             count(*) FILTER (WHERE active) AS active_clients, count(*) FILTER (WHERE before) AS retention_base,
             count(*) FILTER (WHERE before AND recent) AS retained_clients
      FROM (SELECT practice_id, client_id, min(month) AS first_month,
                   bool_or(month > CAST(:mon AS date) - interval '18 months' AND month <= :mon) AS active,
                   bool_or(month > CAST(:mon AS date) - interval '12 months' AND month <= :mon) AS recent,
                   bool_or(month <= CAST(:mon AS date) - interval '12 months'
                           AND month > CAST(:mon AS date) - interval '24 months') AS before
            FROM client_month GROUP BY 1, 2) c GROUP BY 1),
    recv AS (
      SELECT i.practice_id, sum(i.total_incl_cents - coalesce(pay.paid, 0)) AS receivables_cents
      FROM invoice i LEFT JOIN (SELECT practice_id, invoice_id, sum(amount_cents) AS paid FROM payment
                                WHERE practice_id = ANY(:ids) AND invoice_id IS NOT NULL GROUP BY 1, 2) pay
        ON pay.practice_id = i.practice_id AND pay.invoice_id = i.id
      WHERE i.practice_id = ANY(:ids) AND i.status = 'issued' AND i.total_incl_cents - coalesce(pay.paid, 0) > 0
      GROUP BY 1)
    SELECT ids.practice_id, {", ".join(f"coalesce(days.{c}, 0)::bigint AS {c}" for c in kpis.SUMS)},
           coalesce(clients.new_clients, 0)::bigint AS new_clients,
           coalesce(clients.active_clients, 0)::bigint AS active_clients,
           coalesce(clients.retention_base, 0)::bigint AS retention_base,
           coalesce(clients.retained_clients, 0)::bigint AS retained_clients,
           coalesce(recv.receivables_cents, 0)::bigint AS receivables_cents
    FROM ids LEFT JOIN days USING (practice_id) LEFT JOIN clients USING (practice_id) LEFT JOIN recv USING (practice_id)
    ORDER BY 1
    """  # noqa: S608
    mon = end.replace(day=1)
    return kpis._frame(session, sql, _params(practice_ids, start, end, mon=mon))


def raw_overview(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> kpis.Overview:
    with mock.patch.object(kpis, "period_totals", raw_period_totals):
        return kpis.overview(session, practice_ids, start, end)


def raw_monthly_trend(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    sql = f"""
    WITH {_RAW_DAY}
    SELECT practice_id, date_trunc('month', day)::date AS month,
           coalesce(sum(revenue_excl_cents), 0) / 100.0 AS revenue_excl, coalesce(sum(visits), 0) AS visits,
           coalesce(sum(appts_booked), 0) AS appts_booked, coalesce(sum(appts_no_show), 0) AS appts_no_show,
           coalesce(sum(appts_booked - appts_cancelled), 0) AS appts_kept,
           coalesce(sum(booked_minutes), 0)::bigint AS booked_minutes, coalesce(sum(shift_minutes), 0)::bigint AS shift_minutes
    FROM raw_day GROUP BY 1, 2 ORDER BY 1, 2
    """  # noqa: S608
    frame = kpis._frame(session, sql, _params(practice_ids, start, end))
    if not frame.height:
        return frame
    return frame.with_columns(
        kpis._ratio("appts_no_show", "appts_kept").alias("no_show_rate"),
        kpis._ratio("booked_minutes", "shift_minutes").alias("utilisation"),
        pl.col("month").dt.year().alias("year"),
        pl.col("month").dt.month().alias("month_of_year"),
        pl.col("revenue_excl").cast(pl.Float64),
    )


def raw_staff_breakdown(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    sql = f"""
    WITH {_IDS}, {_APPT},
    st_appt AS (SELECT practice_id, resource_id, count(*) AS appts_booked,
                       count(*) FILTER (WHERE status = 'done') AS appts_completed,
                       count(*) FILTER (WHERE status = 'no_show') AS appts_no_show,
                       count(*) FILTER (WHERE status = 'cancelled') AS appts_cancelled,
                       coalesce(sum(minutes) FILTER (WHERE status <> 'cancelled'), 0) AS booked_minutes
                FROM r_appt GROUP BY 1, 2),
    st_shift AS (SELECT practice_id, resource_id, sum(minutes) AS shift_minutes FROM r_shift GROUP BY 1, 2),
    st_vis AS (SELECT v.practice_id, a.resource_id, count(*) AS visits FROM visit v JOIN ids USING (practice_id)
               JOIN appointment a ON a.practice_id = v.practice_id AND a.id = v.appointment_id
               WHERE {_local("v", "started_at")} GROUP BY 1, 2),
    st AS (SELECT * FROM st_appt FULL JOIN st_shift USING (practice_id, resource_id)
           FULL JOIN st_vis USING (practice_id, resource_id))
    SELECT s.practice_id, s.resource_id, r.name AS resource, r.kind, coalesce(dep.name, '(no department)') AS department,
           coalesce(sum(s.appts_booked), 0) AS appts_booked, coalesce(sum(s.appts_completed), 0) AS appts_completed,
           coalesce(sum(s.appts_no_show), 0) AS appts_no_show, coalesce(sum(s.appts_cancelled), 0) AS appts_cancelled,
           coalesce(sum(s.booked_minutes), 0)::bigint AS booked_minutes,
           coalesce(sum(s.shift_minutes), 0)::bigint AS shift_minutes, coalesce(sum(s.visits), 0) AS visits
    FROM st s JOIN resource r ON r.practice_id = s.practice_id AND r.id = s.resource_id
    LEFT JOIN tenant dep ON dep.id = r.department_id
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 3
    """  # noqa: S608
    frame = kpis._frame(session, sql, _params(practice_ids, start, end))
    if not frame.height:
        return frame
    return frame.with_columns(
        kpis._ratio("booked_minutes", "shift_minutes").alias("utilisation"),
        (pl.col("appts_no_show") / (pl.col("appts_booked") - pl.col("appts_cancelled"))).alias(
            "no_show_rate"
        ),
    )


def raw_department_breakdown(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    with mock.patch.object(kpis, "staff_breakdown", raw_staff_breakdown):
        return kpis.department_breakdown(session, practice_ids, start, end)


def raw_heatmap(session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date) -> pl.DataFrame:
    sql = f"""
    WITH {_IDS}, {_APPT}
    SELECT extract(isodow FROM day)::int AS weekday, hour, count(*) AS appts_booked,
           count(*) FILTER (WHERE status = 'no_show') AS appts_no_show,
           coalesce(sum(minutes) FILTER (WHERE status <> 'cancelled'), 0)::bigint AS booked_minutes
    FROM r_appt GROUP BY 1, 2 ORDER BY 1, 2
    """  # noqa: S608
    return kpis._frame(session, sql, _params(practice_ids, start, end))


def raw_receivables_ageing(session: Session, practice_ids: Sequence[int], as_of: dt.date) -> pl.DataFrame:
    sql = """
    SELECT i.practice_id, CASE WHEN :as_of - i.issued_on <= 30 THEN '0-30' WHEN :as_of - i.issued_on <= 60 THEN '31-60'
                               WHEN :as_of - i.issued_on <= 90 THEN '61-90' ELSE '>90' END AS bucket,
           count(*) AS invoices, sum(i.total_incl_cents - coalesce(pay.paid, 0)) / 100.0 AS outstanding
    FROM invoice i LEFT JOIN (SELECT practice_id, invoice_id, sum(amount_cents) AS paid FROM payment
                              WHERE practice_id = ANY(:ids) AND invoice_id IS NOT NULL GROUP BY 1, 2) pay
      ON pay.practice_id = i.practice_id AND pay.invoice_id = i.id
    WHERE i.practice_id = ANY(:ids) AND i.status = 'issued' AND i.total_incl_cents - coalesce(pay.paid, 0) > 0
    GROUP BY 1, 2 ORDER BY 1, 2
    """
    return kpis._frame(session, sql, {"ids": list(practice_ids), "as_of": as_of})


def raw_compliance(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    sql = """
    WITH vacc AS (
      SELECT date_trunc('month', v.due_on)::date AS month, count(*) AS vacc_due,
             count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM vaccination w WHERE w.practice_id = v.practice_id AND w.patient_id = v.patient_id
                 AND w.vaccine_name = v.vaccine_name AND w.id <> v.id AND w.given_on > v.given_on
                 AND w.given_on BETWEEN v.due_on - 30 AND v.due_on + 30)) AS vacc_done_30d
      FROM vaccination v WHERE v.practice_id = ANY(:ids) AND v.due_on BETWEEN :start AND :end GROUP BY 1),
    rem AS (
      SELECT date_trunc('month', r.due_on)::date AS month, count(*) AS reminders_due,
             count(*) FILTER (WHERE CASE WHEN v.id IS NULL THEN r.status = 'done' ELSE EXISTS (
               SELECT 1 FROM vaccination w WHERE w.practice_id = v.practice_id AND w.patient_id = v.patient_id
                 AND w.vaccine_name = v.vaccine_name AND w.id <> v.id AND w.given_on > v.given_on
                 AND w.given_on BETWEEN r.due_on - 30 AND r.due_on + 30) END) AS reminders_done
      FROM reminder r LEFT JOIN vaccination v
        ON r.kind = 'vaccination' AND v.practice_id = r.practice_id AND v.id = r.vaccination_id
      WHERE r.practice_id = ANY(:ids) AND r.status <> 'cancelled' AND r.due_on BETWEEN :start AND :end
      GROUP BY 1)
    SELECT month, coalesce(vacc_due, 0) AS vacc_due, coalesce(vacc_done_30d, 0) AS vacc_done_30d,
           coalesce(reminders_due, 0) AS reminders_due, coalesce(reminders_done, 0) AS reminders_done
    FROM vacc FULL JOIN rem USING (month) ORDER BY 1
    """
    frame = kpis._frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})
    if not frame.height:
        return frame
    return frame.with_columns(
        kpis._ratio("vacc_done_30d", "vacc_due").alias("vacc_compliance"),
        kpis._ratio("reminders_done", "reminders_due").alias("reminder_compliance"),
    )


def raw_top_diagnoses(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date, limit: int = 10
) -> pl.DataFrame:
    sql = f"""
    WITH {_IDS}
    SELECT coalesce(d.venom_code, '') AS venom_code, d.term, count(*) AS diagnoses
    FROM diagnosis d JOIN ids USING (practice_id) WHERE {_local("d", "diagnosed_at")}
    GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT :limit
    """  # noqa: S608
    return kpis._frame(session, sql, _params(practice_ids, start, end, limit=limit))


# ------------------------------------------------------------------------------------------------ measuring

Call = Callable[[Session, list[int], dt.date, dt.date], object]
FUNCTIONS: dict[str, tuple[Call, Call | None]] = {
    "overview": (kpis.overview, raw_overview),
    "monthly_trend": (kpis.monthly_trend, raw_monthly_trend),
    "staff_breakdown": (kpis.staff_breakdown, raw_staff_breakdown),
    "department_breakdown": (kpis.department_breakdown, raw_department_breakdown),
    "heatmap": (kpis.heatmap, raw_heatmap),
    "receivables_ageing": (
        lambda s, ids, start, end: kpis.receivables_ageing(s, ids, end),
        lambda s, ids, start, end: raw_receivables_ageing(s, ids, end),
    ),
    "compliance": (kpis.compliance, raw_compliance),
    "top_diagnoses": (kpis.top_diagnoses, raw_top_diagnoses),
    # An operational list read from the agenda itself: there is no mart, so no separate baseline.
    "no_show_list": (lambda s, ids, start, end: kpis.no_show_list(s, ids[0], start, end), None),
}


def measure(
    engine: Any,
    scopes: dict[str, list[list[int]]],
    samples: int,
    start: dt.date,
    end: dt.date,
    raw_timeout: float,
    raw_samples: int,
) -> dict:
    """Per scope, function and arm: milliseconds per call, each call in its own tenant session (as a page
    does). Arms alternate call by call so both see the same load; the first sample is a warm-up. The raw arm
    runs in the first ``raw_samples`` samples only (at full scale one raw franchise call takes minutes)."""
    rng = random.Random(5)
    timings: dict[tuple[str, str, str], list[float]] = {}
    total, done, started = len(scopes) * (samples + 1), 0, time.perf_counter()
    for scope, choices in scopes.items():
        for n in range(samples + 1):
            ids = rng.choice(choices)
            context = AccessContext.for_practices(ids)
            for name, (mart_fn, raw_fn) in FUNCTIONS.items():
                for arm, fn in (("marts", mart_fn), ("raw", raw_fn)):
                    if fn is None or (arm == "raw" and (n > raw_samples or not raw_samples)):
                        continue
                    t0 = time.perf_counter()
                    try:
                        with tenant_session(engine, context) as session:
                            if (
                                arm == "raw"
                            ):  # CTE row estimates are poor: nested loops over them take minutes
                                session.execute(text("SET LOCAL enable_nestloop = off"))
                                session.execute(
                                    text(f"SET LOCAL statement_timeout = {int(raw_timeout * 1000)}")
                                )
                            fn(session, ids, start, end)
                    except OperationalError:  # the raw arm hit its timeout: counted as the timeout
                        timeouts[(scope, name, arm)] = timeouts.get((scope, name, arm), 0) + 1
                    if n:
                        timings.setdefault((scope, name, arm), []).append((time.perf_counter() - t0) * 1000)
            done += 1
            progress("dashboard calls", done, total, started)
    print()
    return timings


def touch_one_day(engine: Any, practice_ids: list[int], day: dt.date) -> int:
    """With triggers on, as the application: update one appointment per practice on ``day`` (the change
    queue's statement triggers mark the practice-day dirty). Returns the dirty practice-days queued."""
    with tenant_session(engine, AccessContext.for_practices(practice_ids)) as session:
        last = session.execute(  # the last day with appointments, if the history ends before ``day``
            text("SELECT max(starts_at)::date FROM appointment WHERE practice_id = :p"),
            {"p": practice_ids[0]},
        ).scalar_one()
    lo = dt.datetime.combine(min(day, last), dt.time(), dt.UTC)
    with tenant_session(engine, AccessContext.for_practices(practice_ids)) as session:
        session.execute(
            text(
                "UPDATE appointment SET reason = 'bench: touched' WHERE (practice_id, id) IN ("
                "SELECT DISTINCT ON (practice_id) practice_id, id FROM appointment WHERE practice_id = ANY(:ids) "
                "AND starts_at >= :lo AND starts_at < :hi ORDER BY practice_id, id)"
            ),
            {"ids": practice_ids, "lo": lo, "hi": lo + dt.timedelta(days=1)},
        )
    with tenant_session(engine, AccessContext.for_practices(practice_ids)) as session:
        return session.execute(text("SELECT count(*) FROM mart_dirty_day")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--practices", type=int, default=200)
    parser.add_argument("--appointments-per-practice", type=int, default=50_000)
    parser.add_argument("--lines-per-practice", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20, help="timed calls per function, arm and scope")
    parser.add_argument(
        "--raw-timeout", type=float, default=120, help="seconds; a raw query over it counts as it"
    )
    parser.add_argument(
        "--raw-samples", type=int, default=None, help="timed raw-table calls (default: --samples)"
    )
    parser.add_argument("--workers", type=int, default=2, help="practices generated / refreshed at once")
    parser.add_argument("--reuse", action="store_true", help="reuse the database of a previous run")
    parser.add_argument(
        "--no-rebuild", action="store_true", help="with --reuse: keep its marts (skip the timed full rebuild)"
    )
    args = parser.parse_args()

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}")
    admin = libpq(server_url())
    if not args.reuse:
        print(
            f"building {args.practices} practices × {args.appointments_per_practice:,} appointments × "
            f"{args.lines_per_practice:,} invoice lines …"
        )
        t0 = time.perf_counter()
        build(admin, args.practices, args.appointments_per_practice, args.lines_per_practice, args.workers)
        print(f"built in {time.perf_counter() - t0:,.0f}s")
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    admin_engine = make_engine(url, pool_size=2)
    app_engine = make_engine(app_url(url), pool_size=max(2, args.workers))
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                  for t in ("appointment", "invoice_line", "invoice", "visit", "staff_shift", "diagnosis")}  # fmt: skip
        franchises = conn.execute(
            "SELECT franchise_id, array_agg(id ORDER BY id) FROM tenant WHERE kind = 'practice' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    practice_ids = sorted(p for _, ids in franchises for p in ids)

    rebuilt: list = []
    full_seconds = float("nan")
    if not (args.reuse and args.no_rebuild):
        t0 = time.perf_counter()
        rebuilt = refresh_all(app_engine, admin_engine, full=True, workers=args.workers)
        full_seconds = time.perf_counter() - t0
        print(f"full rebuild: {len(rebuilt)} practices, {args.workers} at a time, in {full_seconds:,.1f}s")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
            for table in ALL_MARTS:  # the source tables were analysed after the build
                conn.execute(f"VACUUM ANALYZE {table}")

    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=DAYS - 1)
    scopes = {
        "practice (1)": [[p] for p in practice_ids],
        f"franchise ({max(len(ids) for _, ids in franchises)})": [list(ids) for _, ids in franchises],
    }
    print(f"period: {start} … {end} (12 months); {args.samples} samples per function, arm and scope")
    raw_samples = args.samples if args.raw_samples is None else args.raw_samples
    print(f"raw-table arm: {raw_samples} timed calls per function and scope")
    timings = measure(app_engine, scopes, args.samples, start, end, args.raw_timeout, raw_samples)
    print(f"raw calls that hit the {args.raw_timeout:.0f}s timeout: {dict(timeouts) or 'none'}")

    day = end - dt.timedelta(days=7)
    dirty = touch_one_day(app_engine, practice_ids, day)
    t0 = time.perf_counter()
    refreshed = refresh_all(app_engine, admin_engine, workers=args.workers)
    incr_seconds = time.perf_counter() - t0
    print(f"incremental refresh: {dirty} dirty practice-days ({day}), {len(refreshed)} practices refreshed")

    print(
        f"\n{'scope':<15}{'function':<22}{'marts p50':>10}{'p95':>9}{'raw p50':>10}{'p95':>10}{'p95 raw/marts':>15}"
    )
    for scope in scopes:
        for name in FUNCTIONS:
            marts = timings[(scope, name, "marts")]
            m50, m95 = percentile(marts, 0.5), percentile(marts, 0.95)
            raw = timings.get((scope, name, "raw"))
            if raw:
                r50, r95 = percentile(raw, 0.5), percentile(raw, 0.95)
                tail = f"{r50:>8.1f}ms{r95:>8.1f}ms{r95 / m95:>14.1f}x"
            elif FUNCTIONS[name][1] is None:
                tail = f"{'(reads the agenda: no mart)':>33}"
            else:
                tail = f"{'(raw arm not timed)':>33}"
            flag = "" if m95 < 300 else "  > 300 ms"
            print(f"{scope:<15}{name:<22}{m50:>8.1f}ms{m95:>7.1f}ms{tail}{flag}")
    print(f"\nfull rebuild ({len(rebuilt)} practices): {full_seconds:,.1f}s")
    print(f"incremental refresh (one day, {len(refreshed)} practices): {incr_seconds:,.1f}s")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    app_engine.dispose()
    admin_engine.dispose()


if __name__ == "__main__":
    main()
