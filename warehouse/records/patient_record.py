"""The patient record: everything the records workspace shows of one patient (owners, SOAP notes,
vaccinations with their status, prescriptions, flagged lab results, weights, documents, one timeline), read in
one transaction of the caller's tenant session. Opening it is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.audit import record
from warehouse.kernel.practice_time import practice_zone
from warehouse.schema.clients import Patient

DUE_SOON_DAYS = 30


@dataclass(frozen=True)
class PatientRecord:
    practice_id: int
    patient_id: int
    name: str
    species: str
    breed: str | None
    sex: str
    date_of_birth: dt.date | None
    date_of_birth_estimated: bool  # counted back from an age the owner or vet estimated
    microchip: str | None
    deceased: bool
    insured_with: str | None
    owners: pl.DataFrame  # client_id, name, primary
    visits: pl.DataFrame  # one row per visit: SOAP, signed_at, vet, diagnoses
    vaccinations: pl.DataFrame  # id, vaccine_name, batch_number, given_on, due_on, status
    prescriptions: pl.DataFrame
    lab_results: pl.DataFrame  # observed_at, code, text, value, unit, ref_low, ref_high, flag
    weights: pl.DataFrame  # measured_at, weight_kg
    documents: pl.DataFrame
    timeline: pl.DataFrame  # at, kind, title, detail, all_day (newest first)
    open_appointments: pl.DataFrame  # today's and recent appointments a consult can be written for

    @property
    def primary_client_id(self) -> int | None:
        primary = self.owners.filter(pl.col("primary"))
        frame = primary if primary.height else self.owners
        return int(frame["client_id"][0]) if frame.height else None


def born_text(date_of_birth: dt.date | None, estimated: bool) -> str | None:
    """How a patient's date of birth is shown: "born 12-03-2021", or "born 12-03-2021 (estimated)" when it was
    counted back from an estimated age (the day is then not known); None when there is none."""
    if date_of_birth is None:
        return None
    return f"born {date_of_birth:%d-%m-%Y}" + (" (estimated)" if estimated else "")


def vaccination_status(due_on: dt.date | None, today: dt.date, *, superseded: bool = False) -> str:
    if superseded:
        return "renewed"
    if due_on is None:
        return "no booster"
    if due_on < today:
        return "overdue"
    if due_on <= today + dt.timedelta(days=DUE_SOON_DAYS):
        return "due"
    return "ok"


def lab_flag(
    value: Decimal | None, low: Decimal | None, high: Decimal | None, device_flag: str | None
) -> str:
    """``L``/``H`` from the reference range where there is a numeric value and a range; otherwise the flag the
    device sent; empty when normal."""
    if value is not None and low is not None and value < low:
        return "L"
    if value is not None and high is not None and value > high:
        return "H"
    if value is not None and (low is not None or high is not None):
        return ""
    return (device_flag or "").replace("N", "").strip("~")


def _frame(session: Session, sql: str, params: dict, schema: dict) -> pl.DataFrame:
    rows = session.execute(text(sql), params)
    return pl.DataFrame([dict(r._mapping) for r in rows], schema=schema, orient="row")


def patient_record(
    session: Session, practice_id: int, patient_id: int, *, today: dt.date, now: dt.datetime | None = None
) -> PatientRecord | None:
    """Everything the patient record shows, in one transaction; opening it is written to the audit log."""
    patient = session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id, Patient.id == patient_id, Patient.deleted_at.is_(None)
        )
    )
    if patient is None:
        return None
    record(session, practice_id=practice_id, action="read", entity="patient", entity_ids=[patient_id],
           detail={"view": "records.patient_record"})  # fmt: skip
    p = {"p": practice_id, "pat": patient_id}
    owners = _frame(
        session,
        """SELECT c.id AS client_id, concat_ws(' ', c.title, coalesce(c.first_name, c.initials), c.last_name) AS name,
                  cp.is_primary AS "primary"
           FROM client_patient cp JOIN client c ON c.practice_id = cp.practice_id AND c.id = cp.client_id
           WHERE cp.practice_id = :p AND cp.patient_id = :pat ORDER BY cp.is_primary DESC, c.last_name""",
        p, {"client_id": pl.Int64, "name": pl.String, "primary": pl.Boolean},
    )  # fmt: skip
    visits = _frame(
        session,
        """SELECT v.id, v.started_at, v.reason, v.subjective, v.objective, v.assessment, v.plan, v.signed_at,
                  v.appointment_id, u.full_name AS vet,
                  (SELECT string_agg(d.term || coalesce(' (VeNom ' || nullif(d.venom_code, '') || ')', ''), '; '
                          ORDER BY d.id) FROM diagnosis d
                   WHERE d.practice_id = v.practice_id AND d.visit_id = v.id AND d.removed_at IS NULL
                  ) AS diagnoses
           FROM visit v LEFT JOIN app_user u ON u.id = v.vet_user_id
           WHERE v.practice_id = :p AND v.patient_id = :pat ORDER BY v.started_at DESC""",
        p,
        {"id": pl.Int64, "started_at": pl.Datetime("us", "UTC"), "reason": pl.String, "subjective": pl.String,
         "objective": pl.String, "assessment": pl.String, "plan": pl.String,
         "signed_at": pl.Datetime("us", "UTC"), "appointment_id": pl.Int64, "vet": pl.String,
         "diagnoses": pl.String},
    )  # fmt: skip
    vacc_rows = session.execute(
        text(
            """SELECT v.id, v.vaccine_name, v.batch_number, v.given_on, v.due_on, v.protocol_id,
                      EXISTS (SELECT 1 FROM vaccination n WHERE n.practice_id = v.practice_id
                              AND n.patient_id = v.patient_id AND n.id <> v.id AND n.given_on > v.given_on
                              AND (n.protocol_id = v.protocol_id OR n.vaccine_name = v.vaccine_name)) AS renewed
               FROM vaccination v WHERE v.practice_id = :p AND v.patient_id = :pat
               ORDER BY v.given_on DESC, v.id DESC"""
        ),
        p,
    ).all()
    vaccinations = pl.DataFrame(
        [(r.id, r.vaccine_name, r.batch_number, r.given_on, r.due_on,
          vaccination_status(r.due_on, today, superseded=r.renewed)) for r in vacc_rows],
        schema={"id": pl.Int64, "vaccine_name": pl.String, "batch_number": pl.String, "given_on": pl.Date,
                "due_on": pl.Date, "status": pl.String}, orient="row",
    )  # fmt: skip
    prescriptions = _frame(
        session,
        """SELECT r.id, r.prescribed_at, r.product_name, r.quantity::float8 AS quantity, r.dosage_instructions,
                  r.dispensing_category, u.full_name AS prescribed_by
           FROM prescription r LEFT JOIN app_user u ON u.id = r.prescribed_by
           WHERE r.practice_id = :p AND r.patient_id = :pat ORDER BY r.prescribed_at DESC""",
        p,
        {"id": pl.Int64, "prescribed_at": pl.Datetime("us", "UTC"), "product_name": pl.String,
         "quantity": pl.Float64, "dosage_instructions": pl.String, "dispensing_category": pl.String,
         "prescribed_by": pl.String},
    )  # fmt: skip
    lab_rows = session.execute(
        text(
            """SELECT o.observed_at, o.code, o.text, o.value_numeric, o.value_text, o.unit, o.ref_low, o.ref_high,
                      o.ref_text, o.abnormal_flag, o.status
               FROM lab_observation o WHERE o.practice_id = :p AND o.patient_id = :pat
                 AND o.superseded_by IS NULL AND o.status <> 'cancelled'
               ORDER BY o.observed_at DESC, o.code"""
        ),
        p,
    ).all()

    def _num(value: Decimal | None) -> str | None:
        return None if value is None else format(value.normalize(), "f")

    lab_results = pl.DataFrame(
        [(r.observed_at, r.code, r.text, _num(r.value_numeric) if r.value_numeric is not None else r.value_text,
          r.unit, _num(r.ref_low), _num(r.ref_high),
          lab_flag(r.value_numeric, r.ref_low, r.ref_high, r.abnormal_flag), r.status) for r in lab_rows],
        schema={"observed_at": pl.Datetime("us", "UTC"), "code": pl.String, "text": pl.String, "value": pl.String,
                "unit": pl.String, "ref_low": pl.String, "ref_high": pl.String, "flag": pl.String,
                "status": pl.String}, orient="row",
    )  # fmt: skip
    weights = _frame(
        session,
        """SELECT measured_at, weight_grams / 1000.0 AS weight_kg FROM weight_measurement
           WHERE practice_id = :p AND patient_id = :pat ORDER BY measured_at""",
        p, {"measured_at": pl.Datetime("us", "UTC"), "weight_kg": pl.Float64},
    )  # fmt: skip
    documents = _frame(
        session,
        """SELECT d.id, d.uploaded_at, d.title, d.filename, d.content_type, d.size_bytes, d.source,
                  EXISTS (SELECT 1 FROM document_content c WHERE c.practice_id = d.practice_id
                          AND c.document_id = d.id) AS stored
           FROM document d WHERE d.practice_id = :p AND d.patient_id = :pat ORDER BY d.uploaded_at DESC""",
        p,
        {"id": pl.Int64, "uploaded_at": pl.Datetime("us", "UTC"), "title": pl.String, "filename": pl.String,
         "content_type": pl.String, "size_bytes": pl.Int64, "source": pl.String, "stored": pl.Boolean},
    )  # fmt: skip
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=2)
    open_appointments = _frame(
        session,
        """SELECT a.id, a.starts_at, a.status, coalesce(t.name, 'Afspraak') AS type, a.reason
           FROM appointment a
           LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
           WHERE a.practice_id = :p AND a.patient_id = :pat AND a.status IN ('booked', 'checked_in', 'in_consult')
             AND a.starts_at >= :since AND a.starts_at < :until ORDER BY a.starts_at""",
        {**p, "since": since, "until": since + dt.timedelta(days=3)},
        {"id": pl.Int64, "starts_at": pl.Datetime("us", "UTC"), "status": pl.String, "type": pl.String,
         "reason": pl.String},
    )  # fmt: skip
    timeline = _timeline(visits, vaccinations, prescriptions, lab_results, documents,
                         practice_zone(session, practice_id))  # fmt: skip
    return PatientRecord(
        practice_id, patient_id, patient.name, patient.species, patient.breed, patient.sex, patient.date_of_birth,
        patient.date_of_birth_estimated, patient.microchip, patient.deceased, patient.insured_with, owners, visits, vaccinations, prescriptions,
        lab_results, weights, documents, timeline, open_appointments,
    )  # fmt: skip


def _timeline(visits: pl.DataFrame, vaccinations: pl.DataFrame, prescriptions: pl.DataFrame,
              lab: pl.DataFrame, documents: pl.DataFrame, zone: ZoneInfo) -> pl.DataFrame:  # fmt: skip
    """One row per event, newest first. A vaccination is dated, not timed: it sits at the start of its local day
    and is marked ``all_day`` so that it is shown as a date (not as midnight UTC, i.e. 01:00 local)."""
    utc = pl.Datetime("us", "UTC")

    def _day(col: str) -> pl.Expr:
        local = pl.col(col).cast(pl.Datetime("us")).dt.replace_time_zone(str(zone))
        return local.dt.convert_time_zone("UTC")

    parts = [
        visits.select(pl.col("started_at").alias("at"), pl.lit("visit").alias("kind"),
                      pl.col("reason").fill_null("Consult").alias("title"),
                      pl.concat_str([pl.col("assessment").fill_null(""), pl.col("diagnoses").fill_null("")],
                                    separator=" · ").str.strip_chars(" ·").alias("detail")),
        vaccinations.select(_day("given_on").alias("at"), pl.lit("vaccination").alias("kind"), pl.lit(True).alias("all_day"),
                            pl.col("vaccine_name").alias("title"),
                            pl.concat_str([pl.lit("booster "), pl.col("due_on").map_elements(fmt.date, return_dtype=pl.String),
                                           pl.lit(" ("), pl.col("status"), pl.lit(")")]).fill_null("").alias("detail")),
        prescriptions.select(pl.col("prescribed_at").alias("at"), pl.lit("prescription").alias("kind"),
                             pl.col("product_name").alias("title"),
                             pl.concat_str([pl.col("dispensing_category"), pl.col("dosage_instructions").fill_null("")],
                                           separator=" · ").alias("detail")),
        lab.group_by("observed_at").agg(
            pl.col("code").str.join(", ").alias("title"), (pl.col("flag") != "").sum().alias("flagged"),
        ).select(pl.col("observed_at").alias("at"), pl.lit("lab").alias("kind"), "title",
                 pl.format("{} flagged", "flagged").alias("detail")),
        documents.select(pl.col("uploaded_at").alias("at"), pl.lit("document").alias("kind"),
                         pl.col("title"), pl.col("filename").alias("detail")),
    ]  # fmt: skip
    schema = {"at": utc, "kind": pl.String, "title": pl.String, "detail": pl.String, "all_day": pl.Boolean}
    frames = [
        (part if "all_day" in part.columns else part.with_columns(pl.lit(False).alias("all_day")))
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        for part in parts
        if part.height
    ]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).sort("at", descending=True)
