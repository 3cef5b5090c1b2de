"""Coded diagnoses: the franchise's coded list (standard VeNom terms plus the franchise's own), searched by word
or code; several diagnoses per visit, each picked from the list, provisional or confirmed (and changed later),
removed only with a reason (the row stays, marked, for the record and the audit).

Diagnoses from Animana keep their ``venom_code`` and ``term`` and have no list row; they are shown with the
others and their status can be changed or they can be removed like any other. Writes check the actor's
permission again; the ``diagnosis`` table's triggers audit them, the franchise list's additions are audited here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from warehouse.kernel.audit import record
from warehouse.records.consults import coded_diagnoses
from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text
from warehouse.schema.clients import SPECIES, Patient
from warehouse.schema.clinical import DIAGNOSIS_STATUSES, Diagnosis, DiagnosisCode, Visit
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import RECORDS_WRITE, SHARED_RESOURCES_MANAGE, Actor, require

MAX_QUERY_WORDS = 8
OWN_CODE_PREFIX = "F-"
_VENOM_ID = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True)
class CodeChoice:
    """One entry of the coded list, as the picker offers it."""

    id: int
    code: str
    term: str
    venom_id: str | None
    species: str | None

    @property
    def label(self) -> str:
        venom = f" · VeNom {self.venom_id}" if self.venom_id else ""
        return f"{self.term} · {self.code}{venom}"


@dataclass(frozen=True)
class DiagnosisView:
    id: int
    visit_id: int
    visit_started_at: dt.datetime
    term: str
    code: str | None  # the list's code; None for Animana's diagnoses
    venom_code: str | None
    status: str
    diagnosed_at: dt.datetime
    diagnosed_by: str | None
    removed_at: dt.datetime | None
    removal_reason: str | None


def search_words(query: str) -> list[str]:
    """The words a search matches, all of them: split on white space, at most ``MAX_QUERY_WORDS``."""
    return query.split()[:MAX_QUERY_WORDS]


def like_escaped(word: str) -> str:
    """``word`` for LIKE/ILIKE with ``\\`` as escape: its ``%``, ``_`` and ``\\`` match themselves."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _franchise_of(session: Session, practice_id: int) -> int:
    franchise_id = session.scalar(select(Tenant.franchise_id).where(Tenant.id == practice_id))
    if franchise_id is None:
        raise RecordsError("practice", "Choose a practice you work at.")
    return franchise_id


def diagnosis_codes(
    session: Session, practice_id: int, *, query: str = "", species: str | None = None, limit: int = 50
) -> list[CodeChoice]:
    """The active entries of the practice's franchise list for ``species`` (and those for any species) whose
    term contains every word of ``query`` (case-insensitive), or whose code or VeNom id starts with it. Terms
    that start with the query come first, then alphabetical."""
    conditions = [
        DiagnosisCode.franchise_id == _franchise_of(session, practice_id),
        DiagnosisCode.active,
    ]
    if species is not None:
        conditions.append(or_(DiagnosisCode.species.is_(None), DiagnosisCode.species == species))
    for word in search_words(query):
        pattern = like_escaped(word)
        conditions.append(
            or_(
                DiagnosisCode.term.ilike(f"%{pattern}%", escape="\\"),
                DiagnosisCode.code.ilike(f"{pattern}%", escape="\\"),
                DiagnosisCode.venom_id.like(f"{pattern}%", escape="\\"),
            )
        )
    starts = DiagnosisCode.term.ilike(f"{like_escaped(query.strip())}%", escape="\\")
    rows = session.execute(
        select(DiagnosisCode.id, DiagnosisCode.code, DiagnosisCode.term, DiagnosisCode.venom_id,
               DiagnosisCode.species)
        .where(*conditions)
        .order_by(starts.desc(), func.lower(DiagnosisCode.term), DiagnosisCode.id)
        .limit(limit)
    )  # fmt: skip
    return [CodeChoice(*row) for row in rows]


def add_franchise_code(
    session: Session, actor: Actor, *, practice_id: int, term: str, venom_id: str | None = None,
    species: str | None = None,
) -> DiagnosisCode:  # fmt: skip
    """A term the franchise adds to its coded list (coded ``F-nnn``), for every practice of the franchise. The
    list is the franchise's, kept like its other shared resources by whoever manages those."""
    require(actor, SHARED_RESOURCES_MANAGE, practice_id)
    franchise_id = _franchise_of(session, practice_id)
    term = optional_text(term) or ""
    if not term:
        raise RecordsError("term", "Type the diagnosis.")
    if len(term) > 200:
        raise RecordsError("term", "A diagnosis is at most 200 characters.")
    venom = optional_text(venom_id)
    if venom is not None and not _VENOM_ID.fullmatch(venom):
        raise RecordsError("venom_id", "A VeNom concept id is a number of at most 16 digits.")
    if species is not None and species not in SPECIES:
        raise RecordsError("species", "Choose a species of the list, or none for any species.")
    # The same term for the same species, or for any species when either is for any.
    same_term = select(DiagnosisCode.code).where(
        DiagnosisCode.franchise_id == franchise_id, func.lower(DiagnosisCode.term) == term.lower()
    )
    if species is not None:
        same_term = same_term.where(or_(DiagnosisCode.species.is_(None), DiagnosisCode.species == species))
    same = session.scalar(same_term.limit(1))
    if same is not None:
        raise RecordsError("term", f"{term} is on the list already ({same}).")
    # Our own codes count up within the franchise; a concurrent addition hits the unique (franchise, code).
    own = session.scalar(
        select(func.count()).where(
            DiagnosisCode.franchise_id == franchise_id, DiagnosisCode.code.like(f"{OWN_CODE_PREFIX}%")
        )
    )
    entry = DiagnosisCode(franchise_id=franchise_id, code=f"{OWN_CODE_PREFIX}{own + 1:03d}", term=term,
                          venom_id=venom, species=species, created_by=actor.user_id)  # fmt: skip
    session.add(entry)
    session.flush()
    record(session, practice_id=practice_id, action="insert", entity="diagnosis_code", entity_ids=[entry.id],
           detail={"franchise_id": franchise_id, "code": entry.code, "term": term, "venom_id": venom})  # fmt: skip
    return entry


def _check_status(status: str) -> None:
    if status not in DIAGNOSIS_STATUSES:
        raise RecordsError("status", "Choose provisional or confirmed.")


def add_diagnoses(
    session: Session, actor: Actor, *, practice_id: int, visit_id: int | None, code_ids: Sequence[int],
    status: str = "provisional",
) -> list[Diagnosis]:  # fmt: skip
    """One diagnosis per chosen list entry on the visit, all with ``status``. An entry already on the visit (and
    not removed) is refused, as is one for another species than the patient's. Nothing is written when any
    entry is refused."""
    require(actor, RECORDS_WRITE, practice_id)
    _check_status(status)
    visit = None
    if visit_id is not None:
        visit = session.scalar(select(Visit).where(Visit.practice_id == practice_id, Visit.id == visit_id))
    if visit is None:
        raise RecordsError("visit", "Choose a visit of this patient.")
    chosen = list(dict.fromkeys(code_ids))
    if not chosen:
        raise RecordsError("diagnosis_code", "Choose at least one diagnosis from the coded list.")
    franchise_id = _franchise_of(session, practice_id)
    entries = {
        e.id: e
        for e in session.scalars(
            select(DiagnosisCode).where(DiagnosisCode.franchise_id == franchise_id,
                                        DiagnosisCode.id.in_(chosen), DiagnosisCode.active)
        )
    }  # fmt: skip
    if len(entries) != len(chosen):
        raise RecordsError("diagnosis_code", "Choose diagnoses from the franchise's coded list.")
    species = session.scalar(
        select(Patient.species).where(Patient.practice_id == practice_id, Patient.id == visit.patient_id)
    )
    on_visit = set(
        session.scalars(
            select(Diagnosis.diagnosis_code_id).where(
                Diagnosis.practice_id == practice_id, Diagnosis.visit_id == visit.id,
                Diagnosis.removed_at.is_(None), Diagnosis.diagnosis_code_id.is_not(None),
            )
        )
    )  # fmt: skip
    for entry in (entries[i] for i in chosen):
        if entry.species is not None and entry.species != species:
            raise RecordsError("diagnosis_code", f"{entry.term} is a diagnosis for {entry.species}s, "
                                                 f"not for a {species}.")  # fmt: skip
        if entry.id in on_visit:
            raise RecordsError("diagnosis_code", f"{entry.term} is on this visit already.")
    # Where the list has no VeNom id, the practice's own history (Animana's coded diagnoses) may know the term's.
    known = coded_diagnoses(session, practice_id, [entries[i].term for i in chosen])
    added = [
        Diagnosis(practice_id=practice_id, visit_id=visit.id, patient_id=visit.patient_id, term=e.term,
                  venom_code=e.venom_id or known.get(e.term.casefold()), franchise_id=franchise_id,
                  diagnosis_code_id=e.id, status=status, diagnosed_by=actor.user_id)
        for e in (entries[i] for i in chosen)
    ]  # fmt: skip
    session.add_all(added)
    session.flush()
    return added


def _open_diagnosis(session: Session, practice_id: int, diagnosis_id: int) -> Diagnosis:
    diagnosis = session.scalar(
        select(Diagnosis)
        .where(Diagnosis.practice_id == practice_id, Diagnosis.id == diagnosis_id)
        .with_for_update()
    )
    if diagnosis is None:
        raise RecordsError("diagnosis", "Choose a diagnosis of this practice.")
    if diagnosis.removed_at is not None:
        raise RecordsError("diagnosis", f"{diagnosis.term} was removed from the record.")
    return diagnosis


def set_status(
    session: Session, actor: Actor, *, practice_id: int, diagnosis_id: int, status: str
) -> Diagnosis:
    """Provisional → confirmed (or back), with who changed it and when."""
    require(actor, RECORDS_WRITE, practice_id)
    _check_status(status)
    diagnosis = _open_diagnosis(session, practice_id, diagnosis_id)
    if diagnosis.status == status:
        raise RecordsError("status", f"{diagnosis.term} is {status} already.")
    diagnosis.status = status
    diagnosis.status_changed_at = dt.datetime.now(dt.UTC)
    diagnosis.status_changed_by = actor.user_id
    session.flush()
    return diagnosis


def remove_diagnosis(
    session: Session, actor: Actor, *, practice_id: int, diagnosis_id: int, reason: str
) -> Diagnosis:
    """Taken off the record with a reason (entered in error, ruled out…); the row stays, marked."""
    require(actor, RECORDS_WRITE, practice_id)
    why = optional_text(reason)
    if why is None or len(why) < 3:
        raise RecordsError("reason", "Say why the diagnosis is removed (at least 3 characters).")
    if len(why) > 500:
        raise RecordsError("reason", "Keep the reason under 500 characters.")
    diagnosis = _open_diagnosis(session, practice_id, diagnosis_id)
    diagnosis.removed_at = dt.datetime.now(dt.UTC)
    diagnosis.removed_by = actor.user_id
    diagnosis.removal_reason = why
    session.flush()
    return diagnosis


def patient_diagnoses(
    session: Session, practice_id: int, patient_id: int, *, include_removed: bool = False
) -> list[DiagnosisView]:
    """The patient's diagnoses, newest visit first, each with its list code, status and who diagnosed it."""
    rows = session.execute(
        text(
            """SELECT d.id, d.visit_id, v.started_at, d.term, c.code, d.venom_code, d.status, d.diagnosed_at,
                      u.full_name, d.removed_at, d.removal_reason
               FROM diagnosis d
               JOIN visit v ON v.practice_id = d.practice_id AND v.id = d.visit_id
               LEFT JOIN diagnosis_code c ON c.franchise_id = d.franchise_id AND c.id = d.diagnosis_code_id
               LEFT JOIN app_user u ON u.id = d.diagnosed_by
               WHERE d.practice_id = :p AND d.patient_id = :pat AND (:all OR d.removed_at IS NULL)
               ORDER BY v.started_at DESC, d.diagnosed_at, d.id"""
        ),
        {"p": practice_id, "pat": patient_id, "all": include_removed},
    )
    return [DiagnosisView(*row) for row in rows]
