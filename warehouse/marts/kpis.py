"""Dashboard data: KPI definitions and the functions that read them from the marts (polars frames, frozen
dataclasses). Pages only lay these out; the same numbers are recomputed from the record in the tests.

Every function takes the practice ids explicitly and runs in the caller's RLS session, so a franchise
manager's roll-up covers exactly the practices RLS lets them see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: str  # eur, count, pct, ratio
    definition: str
    higher_is_better: bool = True


KPIS: tuple[Kpi, ...] = (
    Kpi("revenue_excl", "Revenue excl. VAT", "eur", "Sum of invoice totals excl. VAT issued in the period "
        "(draft and void invoices excluded, credit notes subtract)."),
    Kpi("revenue_incl", "Revenue incl. VAT", "eur", "As revenue excl. VAT, including VAT."),
    Kpi("visits", "Visits", "count", "Consultations started in the period (practice-local dates)."),
    Kpi("atv", "Average transaction value", "eur", "Revenue excl. VAT ÷ invoices issued (credit notes not "
        "counted as invoices)."),
    Kpi("invoices_per_patient", "Invoices per patient", "ratio", "Invoices issued ÷ patients seen, a patient "
        "counted once per day with a visit."),
    Kpi("new_clients", "New clients", "count", "Clients whose first visit at the practice falls in a month of "
        "the period."),
    Kpi("active_clients", "Active clients", "count", "Clients with a visit in the 18 months up to the end of "
        "the period's last month."),
    Kpi("retention", "Client retention", "pct", "Of the clients with a visit in the 12 months before the last 12 "
        "months (to the period's last month), the share with a visit in the last 12 months."),
    Kpi("appts_booked", "Appointments", "count", "Appointments scheduled in the period, whatever their status."),
    Kpi("appts_completed", "Completed", "count", "Appointments with status done."),
    Kpi("appts_cancelled", "Cancelled", "count", "Appointments cancelled.", higher_is_better=False),
    Kpi("no_show_rate", "No-show rate", "pct", "No-shows ÷ appointments not cancelled.", higher_is_better=False),
    Kpi("utilisation", "Utilisation", "pct", "Booked minutes (not cancelled) ÷ shift minutes, over resources "
        "with a shift that day."),
    Kpi("vacc_compliance", "Vaccination compliance", "pct", "Boosters falling due in the period that were given "
        "within 30 days of the due date ÷ boosters due (recent due dates are still open)."),
    Kpi("reminder_compliance", "Reminder compliance", "pct", "Reminders due in the period that worked ÷ "
        "reminders due (cancelled excluded): a reminder worked when it reached the owner (sent by e-mail or SMS "
        "and not bounced, or sent from Animana) and within 30 days after that the animal was booked in or given "
        "the vaccine the reminder was about. A reminder never sent did not work."),
    Kpi("lab_revenue", "Lab revenue", "eur", "Invoice lines excl. VAT of products of kind lab (the lab tests of "
        "the price list, Animana's lab articles included). Shows – when no lab test was billed in the period: "
        "lab work billed under another kind of product is in revenue, but cannot be told apart as lab revenue."),
    Kpi("receivables", "Receivables", "eur", "Outstanding on issued invoices today (total incl. VAT minus "
        "payments); not limited to the period.", higher_is_better=False),
)  # fmt: skip
KPI_BY_KEY = {k.key: k for k in KPIS}

SUMS = (
    "revenue_excl_cents", "revenue_incl_cents", "invoices", "lab_revenue_excl_cents", "visits", "patients_seen",
    "appts_booked", "appts_completed", "appts_cancelled", "appts_no_show", "booked_minutes", "shift_minutes",
    "vacc_due", "vacc_done_30d", "reminders_due", "reminders_done",
)  # fmt: skip


def _frame(
    session: Session, sql: str, params: dict[str, Any], schema: dict[str, Any] | None = None
) -> pl.DataFrame:
    result = session.execute(text(sql), params)
    rows = result.all()
    columns = list(result.keys())
    if not rows:
        return pl.DataFrame(schema=schema or dict.fromkeys(columns, pl.Int64))
    frame = pl.DataFrame([tuple(r) for r in rows], schema=columns, orient="row", infer_schema_length=None)
    # PostgreSQL sums are numeric: whole numbers become Int64, the rest Float64 (ratios must not be decimals).
    return frame.with_columns(
        pl.col(name).cast(pl.Int64 if dtype.scale == 0 else pl.Float64)  # type: ignore[attr-defined]
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Decimal)
    )


def practice_names(session: Session, practice_ids: Sequence[int]) -> dict[int, str]:
    rows = session.execute(
        text("SELECT id, name FROM tenant WHERE id = ANY(:ids) AND kind = 'practice'"),
        {"ids": list(practice_ids)},
    )
    return {int(r.id): r.name for r in rows}


def period_totals(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """One row per practice: the additive sums of the period, the client history at its last month, and
    today's receivables. The raw material of every KPI."""
    sums = ", ".join(f"coalesce(sum(d.{c}), 0)::bigint AS {c}" for c in SUMS)
    sql = f"""
    WITH ids AS (SELECT unnest(CAST(:ids AS bigint[])) AS practice_id),
    days AS (SELECT d.practice_id, {sums} FROM mart_practice_day d
             WHERE d.practice_id = ANY(:ids) AND d.day BETWEEN :start AND :end GROUP BY 1),
    months AS (SELECT practice_id,
                 coalesce(sum(new_clients) FILTER (WHERE month >= date_trunc('month', CAST(:start AS date))), 0)
                   AS new_clients,
                 (array_agg(active_clients ORDER BY month DESC))[1] AS active_clients,
                 (array_agg(retention_base ORDER BY month DESC))[1] AS retention_base,
                 (array_agg(retained_clients ORDER BY month DESC))[1] AS retained_clients
               FROM mart_practice_month WHERE practice_id = ANY(:ids) AND month <= :end GROUP BY 1),
    recv AS (SELECT practice_id, sum(outstanding_cents) AS receivables_cents FROM mart_open_invoice
             WHERE practice_id = ANY(:ids) GROUP BY 1)
    SELECT ids.practice_id, {", ".join(f"coalesce(days.{c}, 0)::bigint AS {c}" for c in SUMS)},
           coalesce(months.new_clients, 0)::bigint AS new_clients,
           coalesce(months.active_clients, 0)::bigint AS active_clients,
           coalesce(months.retention_base, 0)::bigint AS retention_base,
           coalesce(months.retained_clients, 0)::bigint AS retained_clients,
           coalesce(recv.receivables_cents, 0)::bigint AS receivables_cents
    FROM ids LEFT JOIN days USING (practice_id) LEFT JOIN months USING (practice_id) LEFT JOIN recv USING (practice_id)
    ORDER BY 1
    """  # noqa: S608
    return _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def kpi_values(totals: pl.DataFrame) -> pl.DataFrame:
    """KPI columns (keys of ``KPIS``) from a frame of period totals (per practice or summed)."""
    return totals.with_columns(
        (pl.col("revenue_excl_cents") / 100).alias("revenue_excl"),
        (pl.col("revenue_incl_cents") / 100).alias("revenue_incl"),
        (_ratio("revenue_excl_cents", "invoices") / 100).alias("atv"),
        _ratio("invoices", "patients_seen").alias("invoices_per_patient"),
        _ratio("retained_clients", "retention_base").alias("retention"),
        (pl.col("appts_no_show") / (pl.col("appts_booked") - pl.col("appts_cancelled")))
        .fill_nan(None)
        .alias("no_show_rate"),
        _ratio("booked_minutes", "shift_minutes").alias("utilisation"),
        _ratio("vacc_done_30d", "vacc_due").alias("vacc_compliance"),
        _ratio("reminders_done", "reminders_due").alias("reminder_compliance"),
        # No lab line billed is "not recorded", not "€ 0 of lab work" (lab results may well exist).
        pl.when(pl.col("lab_revenue_excl_cents") != 0)
        .then(pl.col("lab_revenue_excl_cents") / 100)
        .alias("lab_revenue"),
        (pl.col("receivables_cents") / 100).alias("receivables"),
    ).with_columns(
        pl.when(pl.col("appts_booked") > pl.col("appts_cancelled"))
        .then(pl.col("no_show_rate"))
        .alias("no_show_rate")
    )


def combined(totals: pl.DataFrame) -> dict[str, Any]:
    """KPI values of the practices together (sums first, ratios after)."""
    summed = totals.drop("practice_id").sum() if totals.height else totals.drop("practice_id").clear(1)
    return kpi_values(summed).row(0, named=True)


@dataclass(frozen=True)
class Tile:
    kpi: Kpi
    value: float | None
    previous: float | None
    median: float | None  # median over the practices in view (None when only one practice is visible)

    @property
    def change(self) -> float | None:
        if self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / abs(self.previous)


@dataclass(frozen=True)
class Overview:
    start: dt.date
    end: dt.date
    tiles: tuple[Tile, ...]
    by_practice: pl.DataFrame  # practice_id, practice, every KPI


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    length = end - start
    return start - length - dt.timedelta(days=1), start - dt.timedelta(days=1)


def overview(session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date) -> Overview:
    now = period_totals(session, practice_ids, start, end)
    before = period_totals(session, practice_ids, *previous_period(start, end))
    current, prev = combined(now), combined(before)
    per_practice = kpi_values(now)
    names = practice_names(session, practice_ids)
    per_practice = per_practice.with_columns(
        pl.col("practice_id").replace_strict(names, default="?", return_dtype=pl.String).alias("practice")
    )
    tiles = []
    for kpi in KPIS:
        values = [v for v in per_practice[kpi.key].to_list() if v is not None]
        tiles.append(
            Tile(
                kpi,
                current[kpi.key],
                prev[kpi.key],
                median(values) if len(practice_ids) > 1 and values else None,
            )
        )
    return Overview(
        start, end, tuple(tiles), per_practice.select("practice_id", "practice", *(k.key for k in KPIS))
    )


def monthly_trend(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Per practice and month: revenue, visits, appointments, no-show rate, utilisation (for trends and
    seasonality: ``year`` and ``month_of_year`` columns)."""
    sql = """
    SELECT practice_id, date_trunc('month', day)::date AS month, sum(revenue_excl_cents) / 100.0 AS revenue_excl,
           sum(visits) AS visits, sum(appts_booked) AS appts_booked, sum(appts_no_show) AS appts_no_show,
           sum(appts_booked - appts_cancelled) AS appts_kept, sum(booked_minutes) AS booked_minutes,
           sum(shift_minutes) AS shift_minutes
    FROM mart_practice_day WHERE practice_id = ANY(:ids) AND day BETWEEN :start AND :end GROUP BY 1, 2 ORDER BY 1, 2
    """
    frame = _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})
    if not frame.height:
        return frame
    return frame.with_columns(
        _ratio("appts_no_show", "appts_kept").alias("no_show_rate"),
        _ratio("booked_minutes", "shift_minutes").alias("utilisation"),
        pl.col("month").dt.year().alias("year"),
        pl.col("month").dt.month().alias("month_of_year"),
        pl.col("revenue_excl").cast(pl.Float64),
    )


def staff_breakdown(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """Per resource (vet, nurse, room): appointments, no-shows, booked/shift minutes, utilisation, visits,
    with its department (for the drill-down practice → department → vet)."""
    # Sum per resource first, then name the few hundred sums (not every resource-day row).
    sql = """
    SELECT s.practice_id, s.resource_id, r.name AS resource, r.kind, coalesce(dep.name, '(no department)') AS department,
           s.appts_booked, s.appts_completed, s.appts_no_show, s.appts_cancelled, s.booked_minutes, s.shift_minutes,
           s.visits
    FROM (SELECT practice_id, resource_id, sum(appts_booked) AS appts_booked, sum(appts_completed) AS appts_completed,
                 sum(appts_no_show) AS appts_no_show, sum(appts_cancelled) AS appts_cancelled,
                 sum(booked_minutes) AS booked_minutes, sum(shift_minutes) AS shift_minutes, sum(visits) AS visits
          FROM mart_staff_day WHERE practice_id = ANY(:ids) AND day BETWEEN :start AND :end GROUP BY 1, 2) s
    JOIN resource r ON r.practice_id = s.practice_id AND r.id = s.resource_id
    LEFT JOIN tenant dep ON dep.id = r.department_id
    ORDER BY 1, 3
    """
    frame = _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})
    if not frame.height:
        return frame
    return frame.with_columns(
        _ratio("booked_minutes", "shift_minutes").alias("utilisation"),
        (pl.col("appts_no_show") / (pl.col("appts_booked") - pl.col("appts_cancelled"))).alias(
            "no_show_rate"
        ),
    )


def department_breakdown(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date
) -> pl.DataFrame:
    staff = staff_breakdown(session, practice_ids, start, end)
    if not staff.height:
        return staff
    cols = ["appts_booked", "appts_completed", "appts_no_show", "appts_cancelled", "booked_minutes", "shift_minutes",
            "visits"]  # fmt: skip
    return (
        staff.group_by("practice_id", "department")
        .agg(pl.col(c).sum() for c in cols)
        .with_columns(_ratio("booked_minutes", "shift_minutes").alias("utilisation"))
        .sort("practice_id", "department")
    )


def heatmap(session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date) -> pl.DataFrame:
    """Weekday (1 = Monday) × hour: appointments and no-shows."""
    sql = """
    SELECT extract(isodow FROM day)::int AS weekday, hour::int AS hour, sum(appts_booked) AS appts_booked,
           sum(appts_no_show) AS appts_no_show, sum(booked_minutes) AS booked_minutes
    FROM mart_hour_day WHERE practice_id = ANY(:ids) AND day BETWEEN :start AND :end GROUP BY 1, 2 ORDER BY 1, 2
    """
    return _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})


def receivables_ageing(session: Session, practice_ids: Sequence[int], as_of: dt.date) -> pl.DataFrame:
    """Outstanding amounts by age since the invoice date: 0–30, 31–60, 61–90, > 90 days."""
    sql = """
    SELECT practice_id, CASE WHEN :as_of - issued_on <= 30 THEN '0-30' WHEN :as_of - issued_on <= 60 THEN '31-60'
                             WHEN :as_of - issued_on <= 90 THEN '61-90' ELSE '>90' END AS bucket,
           count(*) AS invoices, sum(outstanding_cents) / 100.0 AS outstanding
    FROM mart_open_invoice WHERE practice_id = ANY(:ids) GROUP BY 1, 2 ORDER BY 1, 2
    """
    return _frame(session, sql, {"ids": list(practice_ids), "as_of": as_of})


def compliance(session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date) -> pl.DataFrame:
    """Per month of due date: vaccinations due and done within 30 days, reminders due and done."""
    sql = """
    SELECT date_trunc('month', day)::date AS month, sum(vacc_due) AS vacc_due, sum(vacc_done_30d) AS vacc_done_30d,
           sum(reminders_due) AS reminders_due, sum(reminders_done) AS reminders_done
    FROM mart_practice_day WHERE practice_id = ANY(:ids) AND day BETWEEN :start AND :end
      AND (vacc_due > 0 OR reminders_due > 0)
    GROUP BY 1 ORDER BY 1
    """
    frame = _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end})
    if not frame.height:
        return frame
    return frame.with_columns(
        _ratio("vacc_done_30d", "vacc_due").alias("vacc_compliance"),
        _ratio("reminders_done", "reminders_due").alias("reminder_compliance"),
    )


def top_diagnoses(
    session: Session, practice_ids: Sequence[int], start: dt.date, end: dt.date, limit: int = 10
) -> pl.DataFrame:
    sql = """
    SELECT venom_code, term, sum(diagnoses) AS diagnoses FROM mart_diagnosis_day
    WHERE practice_id = ANY(:ids) AND day BETWEEN :start AND :end GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT :limit
    """
    return _frame(session, sql, {"ids": list(practice_ids), "start": start, "end": end, "limit": limit})


def no_show_list(
    session: Session, practice_id: int, start: dt.date, end: dt.date, limit: int = 200
) -> pl.DataFrame:
    """The no-shows of a practice in the period (an operational list, read from the agenda itself)."""
    # The newest ``limit`` no-shows first, names joined to those only (not to every no-show of the period);
    # the UTC window around the local days lets the agenda's time index do the range.
    sql = """
    WITH picked AS (
      SELECT a.* FROM appointment a JOIN tenant pr ON pr.id = a.practice_id
      WHERE a.practice_id = :p AND a.status = 'no_show' AND a.starts_at >= :lo AND a.starts_at < :hi
        AND (a.starts_at AT TIME ZONE pr.timezone)::date BETWEEN :start AND :end
      ORDER BY a.starts_at DESC LIMIT :limit)
    SELECT a.starts_at, p.name AS patient, c.last_name AS client, r.name AS resource, t.name AS type,
           (a.starts_at::date - a.booked_at::date) AS lead_days
    FROM picked a
    JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
    LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
    LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id
    LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
    ORDER BY a.starts_at DESC
    """
    lo = dt.datetime.combine(start - dt.timedelta(days=1), dt.time(), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=2), dt.time(), dt.UTC)
    return _frame(
        session, sql, {"p": practice_id, "start": start, "end": end, "limit": limit, "lo": lo, "hi": hi}
    )
