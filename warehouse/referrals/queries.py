"""What the referral pages read: the practices a referral can go to, a practice's outgoing and incoming
referrals, the referred patient's history as the practice referred to sees it, and the findings that came back.

The referred history belongs to the *referring* practice, which is not in the reader's access context; the
database grants it (migration 0480's ``referral_grant`` policies). ``tenant_session`` adds ``practice_id IN
(the context's practices)`` to every ORM statement as a planner hint, which would filter exactly those rows
out, so the history is read on the session's connection (Core, where no ORM hint is added) with the referring
practice named in the WHERE clause (which prunes the partitions the same way). The policies still decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.ciphers import cipher_of_wrapped_key
from warehouse.kernel.crypto import DecryptionError
from warehouse.records.patient_record import lab_flag
from warehouse.referrals.errors import ReferralError
from warehouse.schema.referrals import ACTIVE_STATUSES
from warehouse.security.permissions import RECORDS_READ, Actor, require


@dataclass(frozen=True)
class PracticeChoice:
    id: int
    name: str
    city: str | None
    franchise: str

    @property
    def label(self) -> str:
        return f"{self.name}{f' ({self.city})' if self.city else ''} · {self.franchise}"


def practice_directory(session: Session) -> list[PracticeChoice]:
    """Every practice a referral can be addressed to, also those of other franchises (which RLS hides)."""
    rows = session.execute(text("SELECT id, name, city, franchise_name FROM practice_directory()"))
    return [PracticeChoice(r.id, r.name, r.city, r.franchise_name) for r in rows]


def primary_owner(session: Session, practice_id: int, patient_id: int) -> int | None:
    """The owner a referral of the patient is about: whose consent it needs, whose name and phone it shows. The
    primary owner, by client number among equals — the database's grant (``referred_patients()``) picks the same."""
    return session.scalar(
        text(
            "SELECT client_id FROM client_patient WHERE practice_id = :p AND patient_id = :pat "
            "ORDER BY is_primary DESC, client_id LIMIT 1"
        ),
        {"p": practice_id, "pat": patient_id},
    )


def effective_status(status: str, valid_from: dt.datetime, valid_until: dt.datetime, consent_withdrawn: bool,
                     now: dt.datetime) -> str:  # fmt: skip
    """What a referral is now: an open or accepted one past its window is expired, one before it is pending,
    one whose consent was withdrawn has ended."""
    if status not in ACTIVE_STATUSES:
        return status
    if consent_withdrawn:
        return "consent withdrawn"
    if now >= valid_until:
        return "expired"
    if now < valid_from:
        return "not yet valid"
    return status


_LIST_SCHEMA = {
    "practice_id": pl.Int64, "id": pl.Int64, "patient_id": pl.Int64, "patient": pl.String,
    "other_practice": pl.String, "reason": pl.String, "referring_vet": pl.String, "status": pl.String,
    "valid_from": pl.Datetime("us", "UTC"), "valid_until": pl.Datetime("us", "UTC"), "reports": pl.Int64,
}  # fmt: skip


def _referral_list(session: Session, where: str, params: dict, other: str, now: dt.datetime) -> pl.DataFrame:
    names = {p.id: p.name for p in practice_directory(session)}
    rows = session.connection().execute(
        text(
            f"""SELECT r.practice_id, r.id, r.patient_id, p.name AS patient, r.{other} AS other_id, r.reason,
                       r.referring_vet_name, r.status, r.valid_from, r.valid_until,
                       r.consent_withdrawn_at IS NOT NULL AS withdrawn,
                       (SELECT count(*) FROM referral_report s
                         WHERE s.practice_id = r.practice_id AND s.referral_id = r.id) AS reports
                FROM referral r
                LEFT JOIN patient p ON p.practice_id = r.practice_id AND p.id = r.patient_id
                WHERE {where} ORDER BY r.created_at DESC"""  # noqa: S608 - fixed fragments, values bound
        ),
        params,
    )
    return pl.DataFrame(
        [(r.practice_id, r.id, r.patient_id, r.patient or "(no longer shared)", names.get(r.other_id, "?"),
          r.reason, r.referring_vet_name,
          effective_status(r.status, r.valid_from, r.valid_until, r.withdrawn, now), r.valid_from,
          r.valid_until, r.reports) for r in rows],
        schema=_LIST_SCHEMA, orient="row",
    )  # fmt: skip


def outgoing_referrals(
    session: Session, practice_id: int, *, now: dt.datetime, patient_id: int | None = None
) -> pl.DataFrame:
    """The referrals ``practice_id`` made (of one patient, if given), newest first."""
    where = "r.practice_id = :p" + (" AND r.patient_id = :pat" if patient_id is not None else "")
    return _referral_list(session, where, {"p": practice_id, "pat": patient_id}, "to_practice_id", now)


def incoming_referrals(session: Session, practice_ids: Sequence[int], *, now: dt.datetime) -> pl.DataFrame:
    """The referrals addressed to one of ``practice_ids``, newest first; the patient's name only while the
    referral grants it."""
    return _referral_list(
        session, "r.to_practice_id = ANY (:to)", {"to": list(practice_ids)}, "practice_id", now
    )


@dataclass(frozen=True)
class ReferredHistory:
    """The referred patient's record as the practice referred to reads it (read-only)."""

    practice_id: int
    referral_id: int
    patient_id: int
    reason: str
    referring_vet: str
    valid_until: dt.datetime
    status: str
    patient: dict[str, object]
    owner_name: str | None
    owner_phone: str | None
    visits: pl.DataFrame  # started_at, reason, subjective, objective, assessment, plan, diagnoses
    vaccinations: pl.DataFrame  # vaccine_name, given_on, due_on
    prescriptions: pl.DataFrame  # prescribed_at, product_name, quantity, dosage_instructions
    lab_results: pl.DataFrame  # observed_at, code, text, value, unit, flag
    weights: pl.DataFrame  # measured_at, weight_kg
    documents: pl.DataFrame  # uploaded_at, title, filename


def _read(session: Session, sql: str, params: dict, schema: dict) -> pl.DataFrame:
    rows = session.connection().execute(text(sql), params)
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


def _audit_read(session: Session, practice_id: int, referral_id: int, entity: str, ids: list[int]) -> None:
    if ids:
        session.execute(
            text("SELECT record_referral_read(:p, :r, :entity, :ids)"),
            {"p": practice_id, "r": referral_id, "entity": entity, "ids": ids},
        )


def referred_history(
    session: Session, actor: Actor, *, practice_id: int, referral_id: int, master_key: bytes
) -> ReferredHistory:
    """The history of the patient a referral of ``practice_id`` (the referring practice) shares with the
    caller's practice. Needs RECORDS_READ at the practice referred to; every entity read is written to the
    referring practice's audit chain (``record_referral_read``), which also refuses an inactive referral."""
    conn = session.connection()
    referral = conn.execute(
        text(
            """SELECT id, patient_id, to_practice_id, reason, referring_vet_name, status, valid_until
               FROM referral WHERE practice_id = :p AND id = :r"""
        ),
        {"p": practice_id, "r": referral_id},
    ).one_or_none()
    if referral is None:
        raise ReferralError("referral", "This referral is not addressed to your practice.")
    require(actor, RECORDS_READ, referral.to_practice_id)
    p = {"p": practice_id, "pat": referral.patient_id}
    patient = conn.execute(
        text("""SELECT name, species, breed, sex, date_of_birth, microchip, deceased FROM patient
                WHERE practice_id = :p AND id = :pat"""),
        p,
    ).one_or_none()  # fmt: skip
    if patient is None:
        raise ReferralError("referral", "This referral no longer shares the patient's record.")
    owner = conn.execute(
        text(
            """SELECT c.id, concat_ws(' ', c.title, coalesce(c.first_name, c.initials), c.last_name) AS name,
                      c.phone_enc, c.key_version
               FROM client c WHERE c.practice_id = :p AND c.id = :owner"""
        ),
        {"p": practice_id, "owner": primary_owner(session, practice_id, referral.patient_id)},
    ).one_or_none()
    visits = _read(
        session,
        """SELECT v.id, v.started_at, v.reason, v.subjective, v.objective, v.assessment, v.plan,
                  (SELECT string_agg(d.term || coalesce(' (VeNom ' || nullif(d.venom_code, '') || ')', ''), '; '
                          ORDER BY d.id) FROM diagnosis d
                    WHERE d.practice_id = v.practice_id AND d.visit_id = v.id AND d.removed_at IS NULL) AS diagnoses
           FROM visit v WHERE v.practice_id = :p AND v.patient_id = :pat ORDER BY v.started_at DESC""",
        p,
        {"id": pl.Int64, "started_at": pl.Datetime("us", "UTC"), "reason": pl.String, "subjective": pl.String,
         "objective": pl.String, "assessment": pl.String, "plan": pl.String, "diagnoses": pl.String},
    )  # fmt: skip
    vaccinations = _read(
        session,
        """SELECT id, vaccine_name, given_on, due_on FROM vaccination
           WHERE practice_id = :p AND patient_id = :pat ORDER BY given_on DESC""",
        p, {"id": pl.Int64, "vaccine_name": pl.String, "given_on": pl.Date, "due_on": pl.Date},
    )  # fmt: skip
    prescriptions = _read(
        session,
        """SELECT id, prescribed_at, product_name, quantity::float8, dosage_instructions FROM prescription
           WHERE practice_id = :p AND patient_id = :pat ORDER BY prescribed_at DESC""",
        p,
        {"id": pl.Int64, "prescribed_at": pl.Datetime("us", "UTC"), "product_name": pl.String,
         "quantity": pl.Float64, "dosage_instructions": pl.String},
    )  # fmt: skip
    lab_rows = conn.execute(
        text(
            """SELECT id, observed_at, code, text, value_numeric, value_text, unit, ref_low, ref_high, abnormal_flag
               FROM lab_observation WHERE practice_id = :p AND patient_id = :pat
                 AND superseded_by IS NULL AND status <> 'cancelled' ORDER BY observed_at DESC, code"""
        ),
        p,
    ).all()

    def _num(value: Decimal | None) -> str | None:
        return None if value is None else fmt.measured(format(value.normalize(), "f"))  # Dutch: 5,4

    lab_results = pl.DataFrame(
        [(r.id, r.observed_at, r.code, r.text, _num(r.value_numeric) if r.value_numeric is not None else r.value_text,
          r.unit, lab_flag(r.value_numeric, r.ref_low, r.ref_high, r.abnormal_flag)) for r in lab_rows],
        schema={"id": pl.Int64, "observed_at": pl.Datetime("us", "UTC"), "code": pl.String, "text": pl.String,
                "value": pl.String, "unit": pl.String, "flag": pl.String}, orient="row",
    )  # fmt: skip
    weights = _read(
        session,
        """SELECT id, measured_at, weight_grams / 1000.0 FROM weight_measurement
           WHERE practice_id = :p AND patient_id = :pat ORDER BY measured_at""",
        p, {"id": pl.Int64, "measured_at": pl.Datetime("us", "UTC"), "weight_kg": pl.Float64},
    )  # fmt: skip
    documents = _read(
        session,
        """SELECT id, uploaded_at, title, filename FROM document
           WHERE practice_id = :p AND patient_id = :pat ORDER BY uploaded_at DESC""",
        p, {"id": pl.Int64, "uploaded_at": pl.Datetime("us", "UTC"), "title": pl.String, "filename": pl.String},
    )  # fmt: skip
    for entity, ids in (
        ("patient", [referral.patient_id]),
        ("client", [owner.id] if owner else []),
        ("visit", visits["id"].to_list()),
        ("vaccination", vaccinations["id"].to_list()),
        ("prescription", prescriptions["id"].to_list()),
        ("lab_observation", lab_results["id"].to_list()),
        ("weight_measurement", weights["id"].to_list()),
        ("document", documents["id"].to_list()),
    ):
        _audit_read(session, practice_id, referral_id, entity, ids)
    return ReferredHistory(
        practice_id=practice_id, referral_id=referral_id, patient_id=referral.patient_id, reason=referral.reason,
        referring_vet=referral.referring_vet_name, valid_until=referral.valid_until, status=referral.status,
        patient=dict(patient._mapping), owner_name=owner.name if owner else None,
        owner_phone=_owner_phone(session, practice_id, owner, master_key) if owner else None,
        visits=visits.drop("id"), vaccinations=vaccinations.drop("id"), prescriptions=prescriptions.drop("id"),
        lab_results=lab_results.drop("id"), weights=weights.drop("id"), documents=documents.drop("id"),
    )  # fmt: skip


def _owner_phone(session: Session, practice_id: int, owner: object, master_key: bytes) -> str | None:
    """The owner's phone, decrypted with the referring practice's data key (granted while the referral is)."""
    phone_enc, version = owner.phone_enc, owner.key_version  # type: ignore[attr-defined]
    if phone_enc is None:
        return None
    wrapped = (
        session.connection()
        .execute(
            text("SELECT wrapped_key FROM tenant_data_key WHERE practice_id = :p AND version = :v"),
            {"p": practice_id, "v": version},
        )
        .scalar_one()
    )
    try:
        return cipher_of_wrapped_key(master_key, practice_id, bytes(wrapped), version).decrypt(
            "phone", phone_enc
        )
    except DecryptionError:
        return None


@dataclass(frozen=True)
class ReportView:
    """Findings another practice sent back, as the referring practice's record shows them."""

    id: int
    submitted_at: dt.datetime
    from_practice: str
    written_by: str | None
    reason: str
    findings: str
    diagnoses: str
    lab_results: list[dict[str, str]]
    letter: str | None


def referral_reports(session: Session, practice_id: int, patient_id: int) -> list[ReportView]:
    """The findings other practices sent back on this patient's referrals, newest first (the referring
    practice's own rows: no bypass needed)."""
    names = {p.id: p.name for p in practice_directory(session)}
    rows = session.execute(
        text(
            """SELECT s.id, s.submitted_at, s.from_practice_id, s.written_by_name, r.reason, s.findings,
                      s.diagnoses, s.lab_results, s.letter
               FROM referral_report s JOIN referral r ON r.practice_id = s.practice_id AND r.id = s.referral_id
               WHERE s.practice_id = :p AND r.patient_id = :pat ORDER BY s.submitted_at DESC"""
        ),
        {"p": practice_id, "pat": patient_id},
    )
    return [
        ReportView(r.id, r.submitted_at, names.get(r.from_practice_id, "?"), r.written_by_name, r.reason,
                   r.findings,
                   "; ".join(d["term"] + (f" (VeNom {d['code']})" if d.get("code") else "") for d in r.diagnoses),
                   r.lab_results, r.letter)
        for r in rows
    ]  # fmt: skip
