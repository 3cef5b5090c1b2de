"""The audit viewer's reads: who read or changed what at a practice, when and from which sign-in session, and
whether the practice's chain still verifies.

Runs in the administrator's tenant session: the application role reads ``audit_log`` under RLS, so a viewer
sees only the chains of their own practices, and each function checks ``AUDIT_READ`` at the practice asked.

The log is large (an entry per write statement and per record read), so it is read a page at a time, newest
first, by keyset on ``(practice_id, seq)`` (the primary key): a page costs the same at the millionth entry as
at the first, which ``OFFSET`` would not. "A patient's record" means the entries on the patient itself and on
the rows that belong to it today (visits, vaccinations, lab results…); "a client's" those on the client and
on their appointments, invoices, payments, reminders and documents. A row deleted since is no longer found
that way; its entry still shows with the entity filter.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Table, or_, select, text
from sqlalchemy.orm import Session

from warehouse.kernel.audit import ChainReport, verify_chain
from warehouse.kernel.errors import DomainError
from warehouse.kernel.practice_time import practice_zone
from warehouse.schema import Base
from warehouse.schema.clients import Client, Patient
from warehouse.schema.operations import AuditLog
from warehouse.schema.tenancy import AppUser, Membership, Tenant
from warehouse.security.permissions import AUDIT_READ, Actor, require

PAGE_SIZE = 50
Subject = Literal["patient", "client"]
# The rows that make up a patient's or a client's record, by their table's ``patient_id`` / ``client_id``.
PATIENT_RECORD = ("visit", "diagnosis", "vaccination", "prescription", "weight_measurement", "lab_order",
                  "lab_observation", "document", "imaging_study", "appointment", "reminder")  # fmt: skip
CLIENT_RECORD = ("appointment", "invoice", "payment", "reminder", "document")
# What the action filter offers (the triggers' insert/update/delete, reads, and the services' own actions).
ACTIONS = ("read", "insert", "update", "delete", "export", "erase", "add_user", "invite", "grant_role",
           "revoke_role", "deactivate", "reactivate", "unlock", "reset_mfa", "end_sessions")  # fmt: skip


class AuditFilterError(DomainError):
    """A filter the viewer cannot apply; ``field`` names the filter."""


@dataclass(frozen=True)
class AuditFilter:
    user_id: int | None = None
    subject: Subject | None = None
    subject_id: int | None = None
    entity: str | None = None
    action: str | None = None
    since: dt.date | None = None  # local dates of the practice, both inclusive
    until: dt.date | None = None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    occurred_at: dt.datetime
    user_id: int | None
    user_name: str | None  # None: a system job, or a user no longer visible to the viewer
    session_id: int | None
    action: str
    entity: str
    entity_ids: tuple[int, ...]
    detail: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_before: int | None  # pass as ``before`` for the next (older) page; None: this was the last


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _subject_clause(session: Session, practice_id: int, subject: Subject, subject_id: int):  # noqa: ANN202
    model, children, column = (
        (Patient, PATIENT_RECORD, "patient_id")
        if subject == "patient"
        else (Client, CLIENT_RECORD, "client_id")
    )
    if session.get(model, (practice_id, subject_id)) is None:
        raise AuditFilterError("subject_id", f"There is no {subject} {subject_id} at this practice.")
    clauses = [(AuditLog.entity == subject) & AuditLog.entity_ids.contains([subject_id])]
    for name in children:
        table = _table(name)
        ids = list(
            session.scalars(
                select(table.c.id).where(table.c.practice_id == practice_id, table.c[column] == subject_id)
            )
        )
        if ids:
            clauses.append((AuditLog.entity == name) & AuditLog.entity_ids.overlap(ids))
    return or_(*clauses)


def _period(session: Session, practice_id: int, since: dt.date | None, until: dt.date | None) -> list:
    if since and until and since > until:
        raise AuditFilterError("until", "The period ends before it starts.")
    zone = practice_zone(session, practice_id)
    clauses = []
    if since:
        clauses.append(AuditLog.occurred_at >= dt.datetime.combine(since, dt.time(), zone))
    if until:
        clauses.append(
            AuditLog.occurred_at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), zone)
        )
    return clauses


def audit_page(
    session: Session, actor: Actor, practice_id: int, audit_filter: AuditFilter, *, before: int | None = None,
    limit: int = PAGE_SIZE,
) -> AuditPage:  # fmt: skip
    """One page of the practice's entries that match, newest first, older than seq ``before``."""
    require(actor, AUDIT_READ, practice_id)
    where = [AuditLog.practice_id == practice_id, *_period(session, practice_id, audit_filter.since,
                                                            audit_filter.until)]  # fmt: skip
    if before is not None:
        where.append(AuditLog.seq < before)
    if audit_filter.user_id is not None:
        where.append(AuditLog.actor_user_id == audit_filter.user_id)
    if audit_filter.entity:
        where.append(AuditLog.entity == audit_filter.entity)
    if audit_filter.action:
        where.append(AuditLog.action == audit_filter.action)
    if audit_filter.subject is not None:
        if audit_filter.subject_id is None:
            raise AuditFilterError("subject_id", f"Enter the {audit_filter.subject}'s number.")
        where.append(_subject_clause(session, practice_id, audit_filter.subject, audit_filter.subject_id))
    rows = session.execute(
        select(AuditLog.seq, AuditLog.occurred_at, AuditLog.actor_user_id, AppUser.full_name, AuditLog.session_id,
               AuditLog.action, AuditLog.entity, AuditLog.entity_ids, AuditLog.detail)
        .outerjoin(AppUser, AppUser.id == AuditLog.actor_user_id)
        .where(*where)
        .order_by(AuditLog.seq.desc())
        .limit(limit + 1)
    ).all()  # fmt: skip
    entries = [
        AuditEntry(seq, at, user_id, name, session_id, action, entity, tuple(ids or ()), detail or {})
        for seq, at, user_id, name, session_id, action, entity, ids, detail in rows[:limit]
    ]
    return AuditPage(entries, entries[-1].seq if len(rows) > limit else None)


def entities(session: Session, actor: Actor, practice_id: int) -> list[str]:
    """The kinds of record the practice's log names, for the filter: a skip scan over ``ix_audit_entity``
    (one index probe per distinct entity, instead of reading the whole log)."""
    require(actor, AUDIT_READ, practice_id)
    return list(
        session.scalars(
            text(
                """
                WITH RECURSIVE e(entity) AS (
                  SELECT min(entity) FROM audit_log WHERE practice_id = :p
                  UNION ALL
                  SELECT (SELECT min(entity) FROM audit_log WHERE practice_id = :p AND entity > e.entity)
                  FROM e WHERE e.entity IS NOT NULL)
                SELECT entity FROM e WHERE entity IS NOT NULL
                """
            ),
            {"p": practice_id},
        )
    )


def staff(session: Session, actor: Actor, practice_id: int) -> dict[int, str]:
    """The users with a role at the practice, its departments or its franchise (the user filter's choices)."""
    require(actor, AUDIT_READ, practice_id)
    franchise_id = session.scalar(select(Tenant.franchise_id).where(Tenant.id == practice_id))
    rows = session.execute(
        select(AppUser.id, AppUser.full_name)
        .join(Membership, Membership.user_id == AppUser.id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .where(or_(Tenant.id == practice_id, Tenant.practice_id == practice_id, Tenant.id == franchise_id))
        .distinct()
        .order_by(AppUser.full_name)
    )
    return {user_id: name for user_id, name in rows}


def subject_name(session: Session, practice_id: int, subject: Subject, subject_id: int) -> str | None:
    """The patient's name or the client's surname, to confirm the number typed in the filter."""
    if subject == "patient":
        return session.scalar(
            select(Patient.name).where(Patient.practice_id == practice_id, Patient.id == subject_id)
        )
    return session.scalar(
        select(Client.last_name).where(Client.practice_id == practice_id, Client.id == subject_id)
    )


def chain_status(session: Session, actor: Actor, practice_id: int) -> ChainReport:
    """Verify the practice's chain (every hash, link and the head); reads the practice's whole log."""
    require(actor, AUDIT_READ, practice_id)
    return verify_chain(session, practice_id)


def readable_detail(detail: dict[str, Any]) -> str:
    """An entry's detail as a person reads it: ``role: nurse · tenant id: 2`` (nested values stay compact JSON)."""

    def value(v: Any) -> str:
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
        return "—" if v is None else str(v)

    return " · ".join(f"{key.replace('_', ' ')}: {value(v)}" for key, v in detail.items())
