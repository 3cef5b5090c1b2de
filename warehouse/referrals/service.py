"""The writes of a referral: the referring practice refers, revokes and records a withdrawn consent; the practice
referred to accepts, completes and sends its findings back. Each checks "this permission at this practice"
(the referring practice's or the receiving one's); the database checks the rest again (the receiving practice
writes only through the functions of migration 0480) and audits every write by trigger.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import exc, select, text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.privacy.consent import Purpose, has_consent, record_consent
from warehouse.referrals.errors import ReferralError
from warehouse.referrals.queries import practice_directory, primary_owner
from warehouse.schema.clients import Patient
from warehouse.schema.referrals import ACTIVE_STATUSES, CONSENT_HOWS, Referral
from warehouse.schema.tenancy import AppUser
from warehouse.security.permissions import REFERRALS_WRITE, Actor, require

DEFAULT_VALID_DAYS = 90
MAX_VALID_DAYS = 365
# The SQLSTATE the referral functions raise when a referral is not active for the caller or a status change
# is not allowed (migration 0480).
REFUSED_BY_DATABASE = "VC001"


@dataclass(frozen=True)
class Finding:
    """A diagnosis the practice referred to sends back: the term and, if it has one, its VeNom code."""

    term: str
    code: str | None = None


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _user_name(session: Session, user_id: int | None) -> str:
    name = session.scalar(select(AppUser.full_name).where(AppUser.id == user_id)) if user_id else None
    return name or "unknown"


def refer_patient(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    patient_id: int,
    to_practice_id: int,
    reason: str,
    consent_how: str,
    valid_from: dt.datetime | None = None,
    valid_days: int = DEFAULT_VALID_DAYS,
    now: dt.datetime | None = None,
) -> Referral:
    """Refer a patient of ``practice_id`` to another practice (any practice, also of another franchise), with
    the owner's consent recorded now by the referring user, valid from ``valid_from`` (default now) for
    ``valid_days`` days. The referring vet is the user who refers."""
    require(actor, REFERRALS_WRITE, practice_id)
    moment = _now(now)
    if not reason.strip():
        raise ReferralError("reason", "Say why the patient is referred.")
    if consent_how not in CONSENT_HOWS:
        raise ReferralError("consent_how", "Choose how the owner gave consent to share the record.")
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise ReferralError("valid_days", f"A referral is valid for 1 to {MAX_VALID_DAYS} days.")
    if to_practice_id == practice_id:
        raise ReferralError("to_practice_id", "Refer to another practice than your own.")
    if to_practice_id not in {p.id for p in practice_directory(session)}:
        raise ReferralError("to_practice_id", "Choose the practice to refer to.")
    patient = session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id, Patient.id == patient_id, Patient.deleted_at.is_(None)
        )
    )
    if patient is None:
        raise ReferralError("patient_id", "This patient is not available.")
    if patient.deceased:
        raise ReferralError("patient_id", f"{patient.name} is deceased and cannot be referred.")
    owner = primary_owner(session, practice_id, patient_id)
    if owner is None:
        raise ReferralError("patient_id", f"{patient.name} has no owner to give consent to share the record.")
    # The owner's consent to share for referrals is the client's (client_consent): recorded here when given for
    # this referral, withdrawn on the client card — which ends the access of every referral of their animals.
    if not has_consent(session, practice_id, owner, Purpose.REFERRAL_SHARING):
        record_consent(session, actor, practice_id, owner, Purpose.REFERRAL_SHARING, True, consent_how,
                       "Given when the patient was referred")  # fmt: skip
    start = valid_from or moment
    referral = Referral(
        practice_id=practice_id,
        patient_id=patient_id,
        to_practice_id=to_practice_id,
        reason=reason.strip(),
        referring_vet_id=actor.user_id,
        referring_vet_name=_user_name(session, actor.user_id),
        valid_from=start,
        valid_until=start + dt.timedelta(days=valid_days),
        consent_recorded_at=moment,
        consent_recorded_by=actor.user_id,
        consent_how=consent_how,
    )
    session.add(referral)
    session.flush()
    return referral


def _own_referral(session: Session, practice_id: int, referral_id: int) -> Referral:
    referral = session.get(Referral, (practice_id, referral_id))
    if referral is None:
        raise ReferralError("referral", "This referral is not one of your practice's.")
    return referral


def revoke_referral(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    referral_id: int,
    reason: str,
    now: dt.datetime | None = None,
) -> Referral:
    """End a referral of ``practice_id``: the practice referred to loses access at its next statement."""
    require(actor, REFERRALS_WRITE, practice_id)
    if not reason.strip():
        raise ReferralError("revoke_reason", "Say why the referral is revoked.")
    referral = _own_referral(session, practice_id, referral_id)
    if referral.status not in ACTIVE_STATUSES:
        raise ReferralError("referral", f"This referral is {referral.status} and cannot be revoked.")
    referral.status = "revoked"
    referral.revoked_at = _now(now)
    referral.revoked_by = actor.user_id
    referral.revoked_reason = reason.strip()
    session.flush()
    return referral


def withdraw_consent(
    session: Session, actor: Actor, *, practice_id: int, referral_id: int, now: dt.datetime | None = None
) -> Referral:
    """The owner withdrew consent to share the record: access ends as on a revocation."""
    require(actor, REFERRALS_WRITE, practice_id)
    referral = _own_referral(session, practice_id, referral_id)
    if referral.consent_withdrawn_at is not None:
        raise ReferralError("referral", "The owner's consent was already withdrawn.")
    referral.consent_withdrawn_at = _now(now)
    referral.consent_withdrawn_by = actor.user_id
    session.flush()
    return referral


@contextmanager
def _refused_by_database(field: str) -> Iterator[None]:
    """The referral functions refuse with SQLSTATE VC001 and a message a user can read."""
    try:
        yield
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != REFUSED_BY_DATABASE:
            raise
        message = error.orig.diag.message_primary or "the referral refused this"  # type: ignore[union-attr]
        raise ReferralError(field, message[:1].upper() + message[1:] + ".") from error


def _respond(session: Session, actor: Actor, practice_id: int, referral_id: int, status: str) -> None:
    require(actor, REFERRALS_WRITE, _addressed_practice(session, practice_id, referral_id))
    with _refused_by_database("referral"):
        session.execute(
            text("SELECT respond_to_referral(:p, :r, :s)"), {"p": practice_id, "r": referral_id, "s": status}
        )


def _addressed_practice(session: Session, practice_id: int, referral_id: int) -> int:
    """The practice a referral visible to the caller is addressed to (read past the ORM's practice hint: the
    referral belongs to the referring practice, not to one of the caller's)."""
    to_practice = (
        session.connection()
        .execute(
            text("SELECT to_practice_id FROM referral WHERE practice_id = :p AND id = :r"),
            {"p": practice_id, "r": referral_id},
        )
        .scalar()
    )
    if to_practice is None:
        raise ReferralError("referral", "This referral is not addressed to your practice.")
    return int(to_practice)


def accept_referral(session: Session, actor: Actor, *, practice_id: int, referral_id: int) -> None:
    """The practice referred to takes the referral on (``practice_id`` is the referring practice's)."""
    _respond(session, actor, practice_id, referral_id, "accepted")


def complete_referral(session: Session, actor: Actor, *, practice_id: int, referral_id: int) -> None:
    """The practice referred to is done: its access ends with this statement's commit."""
    _respond(session, actor, practice_id, referral_id, "completed")


def send_findings(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    referral_id: int,
    findings: str,
    diagnoses: Sequence[Finding] = (),
    lab_observation_ids: Sequence[int] = (),
    letter: str | None = None,
) -> int:
    """The practice referred to sends its findings back into the referring practice's record: the text, the
    diagnoses, the values of its own lab observations (copied: the referring practice cannot read the other
    practice's record) and a letter. Returns the report's id."""
    to_practice = _addressed_practice(session, practice_id, referral_id)
    require(actor, REFERRALS_WRITE, to_practice)
    if not findings.strip():
        raise ReferralError("findings", "Write the findings.")
    lab_results = _copied_lab_results(session, to_practice, lab_observation_ids)
    with _refused_by_database("findings"):
        return int(
            session.execute(
                text(
                    "SELECT submit_referral_report(:p, :r, :findings, CAST(:diagnoses AS jsonb), "
                    "CAST(:lab AS jsonb), :letter, :author)"
                ),
                {
                    "p": practice_id,
                    "r": referral_id,
                    "findings": findings.strip(),
                    "diagnoses": json.dumps([{"term": d.term, "code": d.code} for d in diagnoses if d.term]),
                    "lab": json.dumps(lab_results),
                    "letter": (letter or "").strip() or None,
                    "author": _user_name(session, actor.user_id),
                },
            ).scalar_one()
        )


def _copied_lab_results(session: Session, practice_id: int, ids: Sequence[int]) -> list[dict[str, str]]:
    """The values of the sender's own lab observations, as text the way the record shows them."""
    if not ids:
        return []
    rows = session.execute(
        text(
            """SELECT id, code, text, value_numeric, value_text, unit, ref_low, ref_high, abnormal_flag,
                      observed_at FROM lab_observation WHERE practice_id = :p AND id = ANY (:ids) ORDER BY observed_at, code"""
        ),
        {"p": practice_id, "ids": list(ids)},
    ).all()
    if len(rows) != len(set(ids)):
        raise ReferralError("lab_results", "Attach lab results of your own practice only.")

    def _num(value: object) -> str:
        return "" if value is None else fmt.measured(format(value.normalize(), "f"))  # type: ignore[attr-defined]

    return [
        {
            "code": r.code,
            "text": r.text or "",
            "value": _num(r.value_numeric) if r.value_numeric is not None else (r.value_text or ""),
            "unit": r.unit or "",
            "reference": " – ".join(v for v in (_num(r.ref_low), _num(r.ref_high)) if v),
            "flag": (r.abnormal_flag or "").replace("N", "").strip("~"),
            "observed_at": r.observed_at.isoformat(),
        }
        for r in rows
    ]
