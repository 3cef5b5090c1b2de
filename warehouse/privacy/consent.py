"""A client's consent per purpose: recorded, withdrawn, shown with who, when and how — and asked.

``client_consent`` is append-only: granting or withdrawing adds a row, the newest row per purpose is the
current consent, and a purpose never recorded is not granted. :func:`has_consent` is THE question every user of a
purpose asks (reminder delivery, referrals); it asks the database's ``client_has_consent`` so that a row-level
security policy and the application give the same answer from the same rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.kernel.audit import record
from warehouse.kernel.errors import DomainError
from warehouse.schema.clients import CONSENT_HOWS, Client, ClientConsent
from warehouse.schema.tenancy import AppUser
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

MAX_NOTE = 500


class Purpose(StrEnum):
    REMINDERS_EMAIL = "reminders_email"
    REMINDERS_SMS = "reminders_sms"
    REFERRAL_SHARING = "referral_sharing"
    ANALYTICS = "analytics"


PURPOSE_LABELS = {
    Purpose.REMINDERS_EMAIL: "Reminders by e-mail",
    Purpose.REMINDERS_SMS: "Reminders by SMS",
    Purpose.REFERRAL_SHARING: "Sharing the record with a referral practice",
    Purpose.ANALYTICS: "Use in analytics",
}
HOW_LABELS = {"in_person": "In person", "phone": "By phone", "email": "By e-mail", "paper": "On paper",
              "web": "Online", "animana": "From Animana"}  # fmt: skip

# How a user may say the client told the practice; ``animana`` marks the consents that came from Animana (0460).
SAID_HOWS = tuple(h for h in CONSENT_HOWS if h != "animana")


class ConsentError(DomainError):
    """A consent the rules refuse; ``field`` is ``purpose``, ``how``, ``note`` or ``client``."""


@dataclass(frozen=True)
class ConsentState:
    """One purpose as it stands: granted or not, and (when ever recorded) when, by whom and how."""

    purpose: Purpose
    granted: bool
    recorded_at: dt.datetime | None = None
    recorded_by: str | None = None  # the user's name
    how: str | None = None
    note: str | None = None


def record_consent(
    session: Session,
    actor: Actor,
    practice_id: int,
    client_id: int,
    purpose: Purpose | str,
    granted: bool,
    how: str,
    note: str | None = None,
    *,
    now: dt.datetime | None = None,
) -> ConsentState:
    """Add a grant or withdrawal (audited: the table's trigger and an entry saying which purpose and how).
    ``now``: when it was given (default: the transaction's time)."""
    require(actor, CLIENTS_WRITE, practice_id)
    try:
        purpose = Purpose(purpose)
    except ValueError:
        raise ConsentError("purpose", f"Unknown purpose {purpose!r}.") from None
    if how not in SAID_HOWS:
        raise ConsentError(
            "how", f"Choose how the client said so: {', '.join(map(HOW_LABELS.get, SAID_HOWS))}."
        )
    note = " ".join((note or "").split()) or None
    if note is not None and len(note) > MAX_NOTE:
        raise ConsentError("note", f"At most {MAX_NOTE} characters ({len(note)} typed).")
    exists = session.scalar(
        select(Client.id).where(
            Client.practice_id == practice_id, Client.id == client_id, Client.deleted_at.is_(None)
        )
    )
    if exists is None:
        raise ConsentError("client", f"Client {client_id} does not exist at this practice.")
    row = ClientConsent(practice_id=practice_id, client_id=client_id, purpose=purpose.value, granted=granted,
                        recorded_by=actor.user_id, how=how, note=note)  # fmt: skip
    if now is not None:
        row.recorded_at = now
    session.add(row)
    session.flush()
    record(session, practice_id=practice_id, action="consent", entity="client", entity_ids=[client_id],
           detail={"purpose": purpose.value, "granted": granted, "how": how})  # fmt: skip
    session.refresh(row)
    return ConsentState(purpose, granted, row.recorded_at, _user_names(session, [actor.user_id]).get(actor.user_id),
                        how, note)  # fmt: skip


def _user_names(session: Session, user_ids: list[int | None]) -> dict[int, str]:
    ids = sorted({u for u in user_ids if u is not None})
    if not ids:
        return {}
    return dict(
        session.execute(select(AppUser.id, AppUser.full_name).where(AppUser.id.in_(ids))).tuples().all()
    )


def consent_history(session: Session, practice_id: int, client_id: int) -> list[ConsentState]:
    """Every grant and withdrawal of the client, newest first."""
    rows = session.scalars(
        select(ClientConsent)
        .where(ClientConsent.practice_id == practice_id, ClientConsent.client_id == client_id)
        .order_by(ClientConsent.recorded_at.desc(), ClientConsent.id.desc())
    ).all()
    names = _user_names(session, [r.recorded_by for r in rows])
    return [
        ConsentState(Purpose(r.purpose), r.granted, r.recorded_at, names.get(r.recorded_by), r.how, r.note)
        for r in rows
    ]


def current_consents(session: Session, practice_id: int, client_id: int) -> dict[Purpose, ConsentState]:
    """Each purpose as it stands now, in the order of ``Purpose`` (never recorded: not granted, no who/when)."""
    current: dict[Purpose, ConsentState] = {}
    for state in consent_history(session, practice_id, client_id):
        current.setdefault(state.purpose, state)
    return {purpose: current.get(purpose, ConsentState(purpose, False)) for purpose in Purpose}


def has_consent(session: Session, practice_id: int, client_id: int, purpose: Purpose | str) -> bool:
    """Whether the client's newest word on ``purpose`` is a grant: ask this before using a purpose."""
    return bool(
        session.scalar(
            text("SELECT client_has_consent(:p, :c, :purpose)"),
            {"p": practice_id, "c": client_id, "purpose": Purpose(purpose).value},
        )
    )
