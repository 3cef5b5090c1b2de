"""The records workspace's services: the client card, the patient record, and the clinical writes (consult
notes, vaccinations with their booster reminder, prescriptions).

Everything runs inside the caller's tenant session (RLS decides what exists). Every read of a clinical record
is written to the audit log here; writes are audited by the tables' triggers. Writes check the actor's
permissions again (the page hides what a role may not do, the service refuses it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Row, Select, func, or_, select, text, update
from sqlalchemy.orm import Session

from warehouse.billing.balances import OWED_STATUSES
from warehouse.kernel import formatting as fmt
from warehouse.kernel.audit import record
from warehouse.kernel.crypto import FieldCipher, unwrap_data_key
from warehouse.kernel.practice_time import local_day_bounds, practice_today, practice_zone
from warehouse.scheduling import transitions as sched
from warehouse.schema.billing import Product
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.schema.clinical import (
    DISPENSING_CATEGORIES,
    Diagnosis,
    Prescription,
    Reminder,
    ReminderTemplate,
    Vaccination,
    Visit,
)
from warehouse.schema.scheduling import Appointment
from warehouse.schema.tenancy import Tenant, TenantDataKey
from warehouse.security.permissions import CONSULT_WRITE, PRESCRIBE_VET_ONLY, RECORDS_WRITE, Actor, require

DUE_SOON_DAYS = 30
VACCINATION_TEMPLATE_CODE = "vacc"


class RecordsError(ValueError):
    """Input the records rules refuse; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- reading ----------------------------------------------------------------------------------------------------


def cipher(session: Session, practice_id: int, master_key: bytes, version: int | None = None) -> FieldCipher:
    """The practice's field cipher: the data key of ``version``, or the newest."""
    row = session.execute(
        select(TenantDataKey.wrapped_key, TenantDataKey.version)
        .where(TenantDataKey.practice_id == practice_id)
        .where(TenantDataKey.version == version if version is not None else True)
        .order_by(TenantDataKey.version.desc())
        .limit(1)
    ).one()
    return FieldCipher(practice_id, unwrap_data_key(master_key, practice_id, row.wrapped_key), row.version)


@dataclass(frozen=True)
class Balance:
    invoiced_cents: int
    paid_cents: int

    @property
    def outstanding_cents(self) -> int:
        return self.invoiced_cents - self.paid_cents


@dataclass(frozen=True)
class ClientCard:
    practice_id: int
    client_id: int
    name: str
    email: str | None
    phone: str | None
    address: str | None
    postcode: str | None
    city: str | None
    consent_reminders_email: bool
    consent_reminders_sms: bool
    consent_recorded_at: dt.datetime | None
    active: bool
    patients: pl.DataFrame  # id, name, species, breed, date_of_birth, deceased, primary
    balance: Balance


def client_name(client: Client) -> str:
    given = client.first_name or client.initials
    return " ".join(p for p in (client.title, given, client.last_name) if p)


def client_balance(session: Session, practice_id: int, client_id: int) -> Balance:
    """What the client owes: the same rule as ``client_balances`` (issued, paid and credited invoices, credit
    notes negative, minus payments), for one client."""
    row = session.execute(
        text(
            """SELECT (SELECT coalesce(sum(total_incl_cents), 0) FROM invoice
                       WHERE practice_id = :p AND client_id = :c AND status = ANY(:owed)) AS invoiced,
                      (SELECT coalesce(sum(amount_cents), 0) FROM payment
                       WHERE practice_id = :p AND client_id = :c) AS paid"""
        ),
        {"p": practice_id, "c": client_id, "owed": list(OWED_STATUSES)},
    ).one()
    return Balance(int(row.invoiced), int(row.paid))


_CLIENT_PATIENTS = text(
    """SELECT p.id, p.name, p.species, p.breed, p.date_of_birth, p.deceased, cp.is_primary AS "primary"
       FROM client_patient cp JOIN patient p ON p.practice_id = cp.practice_id AND p.id = cp.patient_id
       WHERE cp.practice_id = :p AND cp.client_id = :c AND p.deleted_at IS NULL
       ORDER BY p.deceased, p.name"""
)
_CLIENT_PATIENTS_SCHEMA = {"id": pl.Int64, "name": pl.String, "species": pl.String, "breed": pl.String,
                           "date_of_birth": pl.Date, "deceased": pl.Boolean, "primary": pl.Boolean}  # fmt: skip


def client_card(
    session: Session, practice_id: int, client_id: int, *, master_key: bytes
) -> ClientCard | None:
    """The client with decrypted contact details, their animals and their balance (an audited read)."""
    client = session.scalar(
        select(Client).where(
            Client.practice_id == practice_id, Client.id == client_id, Client.deleted_at.is_(None)
        )
    )
    if client is None:
        return None
    record(session, practice_id=practice_id, action="read", entity="client", entity_ids=[client_id],
           detail={"view": "records.client_card"})  # fmt: skip
    fc = cipher(session, practice_id, master_key)
    rows = session.execute(_CLIENT_PATIENTS, {"p": practice_id, "c": client_id})
    patients = pl.DataFrame([dict(r._mapping) for r in rows], schema=_CLIENT_PATIENTS_SCHEMA)
    return ClientCard(
        practice_id=practice_id, client_id=client_id, name=client_name(client),
        email=fc.decrypt("email", client.email_enc), phone=fc.decrypt("phone", client.phone_enc),
        address=fc.decrypt("address", client.address_enc), postcode=client.postcode, city=client.city,
        consent_reminders_email=client.consent_reminders_email, consent_reminders_sms=client.consent_reminders_sms,
        consent_recorded_at=client.consent_recorded_at, active=client.active, patients=patients,
        balance=client_balance(session, practice_id, client_id),
    )  # fmt: skip


@dataclass(frozen=True)
class PatientRecord:
    practice_id: int
    patient_id: int
    name: str
    species: str
    breed: str | None
    sex: str
    date_of_birth: dt.date | None
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
                   WHERE d.practice_id = v.practice_id AND d.visit_id = v.id) AS diagnoses
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
        patient.microchip, patient.deceased, patient.insured_with, owners, visits, vaccinations, prescriptions,
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


# --- writing ----------------------------------------------------------------------------------------------------


def _require_patient(session: Session, practice_id: int, patient_id: int) -> Patient:
    patient = session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id, Patient.id == patient_id, Patient.deleted_at.is_(None)
        )
    )
    if patient is None:
        raise RecordsError("patient", "Choose a patient of this practice.")
    return patient


def _clean(value: str | None) -> str | None:
    return (value or "").strip() or None


@dataclass(frozen=True)
class ConsultNote:
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    diagnoses: tuple[str, ...] = ()


def write_consult(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, note: ConsultNote,
    sign: bool = False, finish: bool = False,
) -> Visit:  # fmt: skip
    """The SOAP note of an appointment's consult. The appointment moves on as the scheduling service moves it
    (checked in → in consult, and done when ``finish``); the visit of the appointment is reused while unsigned."""
    require(actor, CONSULT_WRITE, practice_id)
    require(actor, RECORDS_WRITE, practice_id)
    fields = {"subjective": note.subjective, "objective": note.objective, "assessment": note.assessment,
              "plan": note.plan}  # fmt: skip
    if not any((v or "").strip() for v in fields.values()):
        raise RecordsError("subjective", "Write at least one part of the SOAP note.")
    for name, value in fields.items():
        if len(value or "") > 20_000:
            raise RecordsError(name, "Keep this part under 20,000 characters.")
    appointment = session.scalar(
        select(Appointment).where(Appointment.practice_id == practice_id, Appointment.id == appointment_id)
    )
    if appointment is None or appointment.patient_id is None:
        raise RecordsError("appointment", "Choose an appointment of this practice with a patient.")
    if appointment.status in ("cancelled", "no_show"):
        raise RecordsError("appointment", f"The appointment is {appointment.status.replace('_', ' ')}.")
    if appointment.status == "booked":
        appointment = sched.check_in(session, actor, practice_id=practice_id, appointment_id=appointment_id)
    if appointment.status == "checked_in":
        appointment = sched.start_consult(
            session, actor, practice_id=practice_id, appointment_id=appointment_id
        )
    visit = session.scalar(
        select(Visit)
        .where(Visit.practice_id == practice_id, Visit.appointment_id == appointment_id)
        .order_by(Visit.id.desc())
        .limit(1)
        .with_for_update()
    )
    if visit is not None and visit.signed_at is not None:
        raise RecordsError("appointment", "The note of this consult is signed; it can no longer be changed.")
    if visit is None:
        visit = Visit(practice_id=practice_id, patient_id=appointment.patient_id, appointment_id=appointment_id,
                      vet_user_id=actor.user_id, reason=appointment.reason,
                      started_at=appointment.consult_started_at or dt.datetime.now(dt.UTC))  # fmt: skip
        session.add(visit)
    for name, value in fields.items():
        setattr(visit, name, _clean(value))
    if sign:
        visit.signed_at = dt.datetime.now(dt.UTC)
        visit.signed_by = actor.user_id
    session.flush()
    terms = [t.strip() for t in note.diagnoses if t and t.strip()]
    for term in terms:
        if len(term) > 200:
            raise RecordsError("diagnoses", "A diagnosis is at most 200 characters.")
    existing = set(session.scalars(select(Diagnosis.term).where(
        Diagnosis.practice_id == practice_id, Diagnosis.visit_id == visit.id)))  # fmt: skip
    codes = coded_diagnoses(session, practice_id, terms) if terms else {}
    session.add_all(
        Diagnosis(practice_id=practice_id, visit_id=visit.id, patient_id=visit.patient_id, term=term,
                  venom_code=codes.get(term.casefold()))
        for term in dict.fromkeys(terms) if term not in existing
    )  # fmt: skip
    if finish and appointment.status == "in_consult":
        sched.finish_consult(session, actor, practice_id=practice_id, appointment_id=appointment_id)
    session.flush()
    return visit


def coded_diagnoses(session: Session, practice_id: int, terms: list[str] | None = None) -> dict[str, str]:
    """The practice's coded diagnosis list: each term it has used with a VeNom code (from Animana's history or
    its own earlier entries), case-folded term -> code; with ``terms``, only those. A term typed here that is on
    the list is stored with its code, so the dashboards' diagnosis counts and the models see one concept."""
    query = (
        select(func.lower(Diagnosis.term), func.min(Diagnosis.venom_code))
        .where(
            Diagnosis.practice_id == practice_id,
            Diagnosis.venom_code.is_not(None),
            Diagnosis.venom_code != "",
        )
        .group_by(func.lower(Diagnosis.term))
    )
    if terms is not None:
        query = query.where(func.lower(Diagnosis.term).in_([t.casefold() for t in terms]))
    return dict(session.execute(query).tuples().all())


def diagnosis_choices(session: Session, practice_id: int) -> list[tuple[str, str]]:
    """The coded list as (term as first written, code), in alphabetical order, for the consult form."""
    rows = session.execute(
        select(func.min(Diagnosis.term), func.min(Diagnosis.venom_code))
        .where(
            Diagnosis.practice_id == practice_id,
            Diagnosis.venom_code.is_not(None),
            Diagnosis.venom_code != "",
        )
        .group_by(func.lower(Diagnosis.term))
        .order_by(func.lower(Diagnosis.term))
    ).tuples()
    return [(term, code) for term, code in rows]


@dataclass(frozen=True)
class ProtocolView:
    franchise_id: int
    id: int
    code: str
    name: str
    species: str
    booster_interval_days: int
    overridden: bool


def vaccine_protocols(session: Session, practice_id: int, species: str | None = None) -> list[ProtocolView]:
    """The franchise's active vaccine protocols with the practice's booster interval where it set one."""
    rows = session.execute(
        text(
            """SELECT v.franchise_id, v.id, v.code, v.name, v.species,
                      coalesce(o.booster_interval_days, v.booster_interval_days) AS interval,
                      o.booster_interval_days IS NOT NULL AS overridden
               FROM vaccine_protocol v JOIN tenant t ON t.id = :p AND t.franchise_id = v.franchise_id
               LEFT JOIN vaccine_protocol_override o
                 ON o.practice_id = :p AND o.protocol_id = v.id AND o.franchise_id = v.franchise_id
               WHERE v.active AND coalesce(o.active, true)
                 AND (CAST(:species AS text) IS NULL OR v.species = :species)
               ORDER BY v.name"""
        ),
        {"p": practice_id, "species": species},
    )
    return [ProtocolView(*r) for r in rows]


def _primary_client_id(session: Session, practice_id: int, patient_id: int) -> int | None:
    return session.scalar(
        select(ClientPatient.client_id)
        .where(ClientPatient.practice_id == practice_id, ClientPatient.patient_id == patient_id)
        .order_by(ClientPatient.is_primary.desc())
        .limit(1)
    )


def visit_of_the_day(session: Session, practice_id: int, patient_id: int, day: dt.date) -> int | None:
    """The patient's latest visit started on ``day`` (practice time): what is given or prescribed during a
    consult belongs to that visit, and so to the invoice made from it."""
    start, end = local_day_bounds(day, practice_zone(session, practice_id))
    return session.scalar(
        select(Visit.id)
        .where(Visit.practice_id == practice_id, Visit.patient_id == patient_id,
               Visit.started_at >= start, Visit.started_at < end)
        .order_by(Visit.started_at.desc(), Visit.id.desc())
        .limit(1)
    )  # fmt: skip


def record_vaccination(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, protocol_id: int | None,
    given_on: dt.date, today: dt.date, batch_number: str | None = None, visit_id: int | None = None,
) -> tuple[Vaccination, Reminder]:  # fmt: skip
    """A vaccination and its booster reminder: due after the protocol's interval (the practice's own interval
    when it overrides the franchise's). The open reminders of earlier doses of the same vaccine are closed
    (``done``, with the dose that closed them and when)."""
    require(actor, RECORDS_WRITE, practice_id)
    patient = _require_patient(session, practice_id, patient_id)
    if protocol_id is None:
        raise RecordsError("protocol", "Choose the vaccine.")
    protocol = next((p for p in vaccine_protocols(session, practice_id) if p.id == protocol_id), None)
    if protocol is None:
        raise RecordsError("protocol", "This vaccine is not in the practice's protocols.")
    if protocol.species != patient.species:
        raise RecordsError(
            "protocol", f"{protocol.name} is for {protocol.species}s, not for a {patient.species}."
        )
    if given_on > today:
        raise RecordsError("given_on", "A vaccination cannot be given in the future.")
    if given_on < today - dt.timedelta(days=366):
        raise RecordsError("given_on", "Record vaccinations of the past year only here.")
    batch = _clean(batch_number)
    if batch and len(batch) > 64:
        raise RecordsError("batch_number", "A batch number is at most 64 characters.")
    due_on = given_on + dt.timedelta(days=protocol.booster_interval_days)
    if visit_id is None:
        visit_id = visit_of_the_day(session, practice_id, patient_id, given_on)
    vaccination = Vaccination(practice_id=practice_id, patient_id=patient_id, visit_id=visit_id,
                              franchise_id=protocol.franchise_id, protocol_id=protocol.id, vaccine_name=protocol.name,
                              batch_number=batch, given_on=given_on, due_on=due_on, given_by=actor.user_id)  # fmt: skip
    session.add(vaccination)
    session.flush()
    # The earlier doses of this vaccine: recorded under the protocol, or under its name (Animana's vaccinations
    # carry a name only). Their open reminders (pending, or sent and not yet followed) are closed by this dose;
    # a dose recorded after the fact (older than one already on record) closes nothing newer than itself.
    same_vaccine = or_(Vaccination.protocol_id == protocol.id,
                       func.lower(Vaccination.vaccine_name) == protocol.name.lower())  # fmt: skip
    earlier = select(Vaccination.id).where(
        Vaccination.practice_id == practice_id, Vaccination.patient_id == patient_id, same_vaccine,
        Vaccination.id != vaccination.id, Vaccination.given_on <= given_on,
    )  # fmt: skip
    closed_at = dt.datetime.now(dt.UTC)
    session.execute(
        update(Reminder)
        .where(Reminder.practice_id == practice_id, Reminder.patient_id == patient_id,
               Reminder.kind == "vaccination", Reminder.status.in_(("pending", "sent")),
               Reminder.vaccination_id.in_(earlier))
        .values(status="done", closed_by_vaccination_id=vaccination.id, closed_at=closed_at)
    )  # fmt: skip
    later_dose = session.scalar(
        select(Vaccination.id)
        .where(Vaccination.practice_id == practice_id, Vaccination.patient_id == patient_id, same_vaccine,
               Vaccination.id != vaccination.id, Vaccination.given_on > given_on)
        .order_by(Vaccination.given_on, Vaccination.id)
        .limit(1)
    )  # fmt: skip
    # The same template the reminder generator picks (warehouse/reminders.py): a franchise may keep one
    # vaccination template ("vacc") or one per channel ("vacc-email", "vacc-sms"); the longest lead time wins.
    template_id = session.scalar(
        select(ReminderTemplate.id)
        .where(
            ReminderTemplate.franchise_id == protocol.franchise_id,
            or_(ReminderTemplate.code == VACCINATION_TEMPLATE_CODE,
                ReminderTemplate.code.like(VACCINATION_TEMPLATE_CODE + "-%")),
        )
        .order_by(ReminderTemplate.days_before_due.desc(), ReminderTemplate.id)
        .limit(1)
    )  # fmt: skip
    reminder = Reminder(practice_id=practice_id, patient_id=patient_id,
                        client_id=_primary_client_id(session, practice_id, patient_id), kind="vaccination",
                        due_on=due_on, franchise_id=protocol.franchise_id if template_id else None,
                        template_id=template_id, vaccination_id=vaccination.id)  # fmt: skip
    if later_dose is not None:  # this dose's booster was given already: nothing to remind of
        reminder.status, reminder.closed_by_vaccination_id, reminder.closed_at = "done", later_dose, closed_at
    session.add(reminder)
    session.flush()
    return vaccination, reminder


# Least to most restricted (the order of ``DISPENSING_CATEGORIES``): free sale, pharmacy/licensed retail, on a
# veterinarian's prescription, administered by the veterinarian. UDA and UDD are prescription-only veterinary
# medicines (Diergeneesmiddelenbesluit; EU 2019/6 art. 105): only a veterinarian may prescribe them.
CATEGORY_RANK = {category: rank for rank, category in enumerate(DISPENSING_CATEGORIES)}
VET_ONLY_CATEGORIES = frozenset({"UDA", "UDD"})


@dataclass(frozen=True)
class Medicine:
    franchise_id: int
    product_id: int
    code: str
    name: str
    dispensing_category: str | None
    species: tuple[str, ...] = ()  # registered for these species; empty: not recorded

    @property
    def label(self) -> str:
        return f"{self.name} ({self.dispensing_category or 'no category'})"


def _medicine_query(practice_id: int) -> Select:
    franchise_id = select(Tenant.franchise_id).where(Tenant.id == practice_id).scalar_subquery()
    return select(
        Product.franchise_id,
        Product.id,
        Product.code,
        Product.name,
        Product.dispensing_category,
        Product.species,
    ).where(Product.franchise_id == franchise_id, Product.kind == "medicine")


def _medicine(row: Row) -> Medicine:
    return Medicine(
        row.franchise_id, row.id, row.code, row.name, row.dispensing_category, tuple(row.species or ())
    )


def medicines(session: Session, practice_id: int) -> list[Medicine]:
    """The franchise's active medicines, the list a prescription is chosen from."""
    return [_medicine(r) for r in session.execute(_medicine_query(practice_id).where(Product.active)
                                                  .order_by(Product.name))]  # fmt: skip


def medicines_named(session: Session, practice_id: int, name: str) -> list[Medicine]:
    """The franchise's medicines (inactive ones too: a product taken off the list keeps its category) whose name
    is ``name``, ignoring case and surrounding spaces — what a typed name is checked against."""
    wanted = " ".join(name.split()).casefold()
    rows = session.execute(_medicine_query(practice_id))
    return [_medicine(r) for r in rows if " ".join(r.name.split()).casefold() == wanted]


def species_warning(medicine: Medicine, species: str) -> str | None:
    """The warning a prescription for ``species`` needs, when the medicine is registered for other species."""
    if not medicine.species or species in medicine.species:
        return None
    return (f"{medicine.name} is registered for {', '.join(medicine.species)}, not for {species}. "
            "Confirm that you prescribe it for this animal anyway (the cascade).")  # fmt: skip


def parse_quantity(raw: str | Decimal | int, field: str = "quantity") -> Decimal:
    try:
        quantity = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        raise RecordsError(field, "Enter a number, e.g. 2 or 0,5.") from None
    if not quantity.is_finite() or quantity <= 0:
        raise RecordsError(field, "The quantity must be more than 0.")
    if quantity >= Decimal(10_000_000) or quantity != quantity.quantize(Decimal("0.001")):
        raise RecordsError(field, "At most three decimals and less than 10,000,000.")
    return quantity


def prescribe(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, quantity: str | Decimal,
    product_id: int | None = None, product_name: str | None = None, dispensing_category: str | None = None,
    dosage_instructions: str | None = None, visit_id: int | None = None, confirm_other_species: bool = False,
) -> Prescription:  # fmt: skip
    """A prescription of a medicine from the price list (``product_id``) or of a typed name (``product_name``),
    never both. A listed medicine's dispensing category is the product's; a typed name is never less restricted
    than a medicine of that name on the list. UDA and UDD medicines are prescribed by a veterinarian only. A
    medicine registered for other species than the patient's needs ``confirm_other_species``."""
    require(actor, RECORDS_WRITE, practice_id)
    patient = _require_patient(session, practice_id, patient_id)
    typed = _clean(product_name)
    if product_id is not None and typed:
        raise RecordsError("product", "Choose a medicine from the list or type a name, not both.")
    if product_id is not None:
        listed = next((m for m in medicines(session, practice_id) if m.product_id == product_id), None)
        if listed is None:
            raise RecordsError("product", "This medicine is not in the practice's price list.")
        if listed.dispensing_category is not None:
            if dispensing_category not in (None, listed.dispensing_category):
                raise RecordsError("dispensing_category", f"{listed.name} is {listed.dispensing_category} in the "
                                   "price list; its category cannot be changed here.")  # fmt: skip
            dispensing_category = listed.dispensing_category
        name, matches = listed.name, [listed]
    elif typed:
        name, matches = typed, medicines_named(session, practice_id, typed)
    else:
        raise RecordsError("product", "Choose a medicine from the list or type its name.")
    if dispensing_category not in DISPENSING_CATEGORIES:
        raise RecordsError("dispensing_category", "Choose the dispensing category (VRIJ, URA, UDA or UDD).")
    strictest = max((m.dispensing_category for m in matches if m.dispensing_category), key=CATEGORY_RANK.get,
                    default=None)  # fmt: skip
    if strictest is not None and CATEGORY_RANK[dispensing_category] < CATEGORY_RANK[strictest]:
        raise RecordsError("dispensing_category", f"{name} is {strictest} in the price list: choose {strictest} "
                           "or stricter, or choose it from the list.")  # fmt: skip
    if dispensing_category in VET_ONLY_CATEGORIES:
        require(actor, PRESCRIBE_VET_ONLY, practice_id)
    warnings = [w for m in matches if (w := species_warning(m, patient.species))]
    if warnings and not confirm_other_species:
        raise RecordsError("confirm_other_species", warnings[0])
    amount = parse_quantity(quantity)
    if len(name) > 200:
        raise RecordsError("product", "A medicine's name is at most 200 characters.")
    if visit_id is None:
        visit_id = visit_of_the_day(session, practice_id, patient_id, practice_today(session, practice_id))
    prescription = Prescription(practice_id=practice_id, patient_id=patient_id, visit_id=visit_id,
                                franchise_id=matches[0].franchise_id if product_id is not None else None,
                                product_id=product_id, product_name=name, quantity=amount,
                                dosage_instructions=_clean(dosage_instructions),
                                dispensing_category=dispensing_category, prescribed_by=actor.user_id,
                                other_species_confirmed=bool(warnings))  # fmt: skip
    session.add(prescription)
    session.flush()
    return prescription
