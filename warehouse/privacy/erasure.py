"""The right to erasure (GDPR art. 17) with retention: a client's personal data goes, their animals' clinical and
financial records stay — pseudonymised — until the franchise's retention period after their last activity ends
(then ``warehouse.privacy.retention`` purges them).

In one transaction: the client row (and every duplicate merged into it) is pseudonymised — surname
"Erased client <pseudonym>", every other personal column emptied, consents withdrawn, inactive — and every other
copy of the data in the warehouse is removed (``warehouse.privacy.copies``). Refused while the client owes money
or when already erased. For a practice whose clients module is linked to Animana the pseudonymised row is captured
like any change (hybrid: written back later; animana: sent before commit by the gateway), without the old values
(``vetconnect.erasure``); the sync never loads an erased relation again (``handlers.directory.load_clients``).

Not in scope here: crypto-shredding a per-client key so that old backups cannot reveal the data either. Names,
postcode and city are stored in clear (search and the trigram index read them), so that is a redesign of the
client's storage, planned separately; until then a backup keeps what it held for its own retention period.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.billing.balances import client_outstanding
from warehouse.kernel import formatting
from warehouse.kernel.audit import record
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.errors import DomainError
from warehouse.privacy.copies import PII_COLUMNS, scrub_copies
from warehouse.security.permissions import PRIVACY_MANAGE, Actor, require

DEFAULT_REASON = "At the client's request (GDPR article 17)"
ENCRYPTED = ("email", "phone", "address", "iban")


class ErasureError(DomainError):
    """An erasure the rules refuse (the client owes money, is already erased, or is not there)."""


@dataclass(frozen=True)
class ErasurePreview:
    """What an erasure of the client would do, for the confirmation: who, what stays, until when, or why not."""

    client_id: int
    name: str
    animals: int
    visits: int
    invoices: int
    retention_until: dt.date
    refusal: str | None


@dataclass(frozen=True)
class ErasureResult:
    erasure_id: int
    client_id: int
    pseudonym: str
    retention_until: dt.date
    # Rows changed per place a copy of the data was removed from (``copies.scrub_copies``).
    copies_removed: dict[str, int]


def erasure_preview(
    session: Session, practice_id: int, client_id: int, *, now: dt.datetime | None = None
) -> ErasurePreview:
    """The confirmation's facts; ``refusal`` says why the erasure would be refused (None: it would go ahead)."""
    client = _client(session, practice_id, client_id, lock=False)
    group = _merged_group(session, practice_id, client_id)
    patients = _patients(session, practice_id, group)
    counts = session.execute(
        text(
            "SELECT (SELECT count(*) FROM visit WHERE practice_id = :p AND patient_id = ANY(:patients)) AS visits, "
            "(SELECT count(*) FROM invoice WHERE practice_id = :p AND client_id = ANY(:clients)) AS invoices"
        ),
        {"p": practice_id, "patients": patients, "clients": group},
    ).one()
    return ErasurePreview(
        client_id=client_id,
        name=" ".join(p for p in (client["first_name"] or client["initials"], client["last_name"]) if p),
        animals=len(patients),
        visits=int(counts.visits),
        invoices=int(counts.invoices),
        retention_until=_retention_until(session, practice_id, group, patients, now),
        refusal=_refusal(session, practice_id, client_id, client),
    )


def erase_client(
    session: Session,
    actor: Actor,
    practice_id: int,
    client_id: int,
    *,
    master_key: bytes,
    reason: str = DEFAULT_REASON,
    now: dt.datetime | None = None,
) -> ErasureResult:
    """Erase the client's personal data (see the module docstring) in the session's transaction, audited.

    ``master_key`` opens the practice's data key: the encrypted e-mail, phone, address and IBAN are searched for
    in the free text and raw messages that may hold them before their ciphertext is emptied."""
    require(actor, PRIVACY_MANAGE, practice_id)
    if not reason.strip():
        raise ErasureError("reason", "Say why the client's data is erased.")
    client = _client(session, practice_id, client_id, lock=True)
    refusal = _refusal(session, practice_id, client_id, client)
    if refusal:
        raise ErasureError("client", refusal)
    moment = now or dt.datetime.now(dt.UTC)
    group = _merged_group(session, practice_id, client_id)
    rows = _rows(session, practice_id, group)
    patients = _patients(session, practice_id, group)
    strings = _personal_strings(session, practice_id, rows, master_key)
    pseudonym = secrets.token_hex(4).upper()
    retention_until = _retention_until(session, practice_id, group, patients, moment)
    erasure_id = session.execute(
        text(
            "INSERT INTO client_erasure (practice_id, client_id, pseudonym, erased_at, erased_by, reason, "
            "retention_until) VALUES (:p, :c, :pseudonym, :at, :by, :reason, :until) RETURNING id"
        ),
        {"p": practice_id, "c": client_id, "pseudonym": pseudonym, "at": moment, "by": actor.user_id,
         "reason": reason.strip(), "until": retention_until},
    ).scalar_one()  # fmt: skip
    # Read by the change-capture trigger: the outbox entry of this update keeps no values from before it.
    session.execute(text("SELECT set_config('vetconnect.erasure', 'on', true)"))
    erased_row = _pseudonymise(session, practice_id, group, pseudonym)
    copies = scrub_copies(
        session, practice_id, group, patients, [r["animana_id"] for r in rows if r["animana_id"]], strings,
        erased_row, erasure_id,
    )  # fmt: skip
    session.execute(text("SELECT set_config('vetconnect.erasure', '', true)"))
    record(session, practice_id=practice_id, action="erase", entity="client", entity_ids=group,
           detail={"erasure_id": erasure_id, "retention_until": retention_until.isoformat(),
                   "copies_removed": copies})  # fmt: skip
    return ErasureResult(erasure_id, client_id, pseudonym, retention_until, copies)


def erased_label(pseudonym: str) -> str:
    return f"Erased client {pseudonym}"


def _client(session: Session, practice_id: int, client_id: int, *, lock: bool) -> dict[str, Any]:
    row = (
        session.execute(
            text(
                "SELECT id, first_name, initials, last_name, merged_into_id FROM client "
                "WHERE practice_id = :p AND id = :c" + (" FOR UPDATE" if lock else "")
            ),
            {"p": practice_id, "c": client_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise ErasureError("client", f"There is no client {client_id} at this practice.")
    return dict(row)


def _refusal(session: Session, practice_id: int, client_id: int, client: dict[str, Any]) -> str | None:
    erased = session.execute(
        text("SELECT erased_at FROM client_erasure WHERE practice_id = :p AND client_id = :c"),
        {"p": practice_id, "c": client_id},
    ).scalar_one_or_none()
    if erased is not None:
        return f"This client's personal data was already erased on {formatting.date(erased)}."
    if client["merged_into_id"] is not None:
        return (
            f"This client was merged into client {client['merged_into_id']}: erase that client, which erases "
            "this one with it."
        )
    owed = client_outstanding(session, practice_id, client_id)
    if owed <= 0:
        return None
    unpaid = session.execute(
        text(
            "SELECT i.number, i.total_incl_cents - coalesce((SELECT sum(amount_cents) FROM payment y "
            "WHERE y.practice_id = i.practice_id AND y.invoice_id = i.id), 0) AS open_cents FROM invoice i "
            "WHERE i.practice_id = :p AND i.client_id = :c AND i.status = 'issued' ORDER BY i.issued_on, i.id"
        ),
        {"p": practice_id, "c": client_id},
    ).all()
    listed = ", ".join(
        f"invoice {u.number} ({formatting.euros(u.open_cents)} open)" for u in unpaid if u.open_cents > 0
    )
    return (
        f"The client still owes {formatting.euros(owed)}"
        + (f": {listed}" if listed else "")
        + ". Personal data can be erased once everything is paid."
    )


def _merged_group(session: Session, practice_id: int, client_id: int) -> list[int]:
    """The client and every duplicate merged into it (directly or through another duplicate)."""
    return list(
        session.execute(
            text(
                "WITH RECURSIVE g(id) AS (SELECT CAST(:c AS bigint) UNION SELECT c.id FROM client c JOIN g "
                "ON c.practice_id = :p AND c.merged_into_id = g.id) SELECT id FROM g ORDER BY id"
            ),
            {"p": practice_id, "c": client_id},
        ).scalars()
    )


def _patients(session: Session, practice_id: int, group: list[int]) -> list[int]:
    return list(
        session.execute(
            text(
                "SELECT DISTINCT patient_id FROM client_patient WHERE practice_id = :p AND client_id = ANY(:g) "
                "ORDER BY 1"
            ),
            {"p": practice_id, "g": group},
        ).scalars()
    )


def _rows(session: Session, practice_id: int, group: list[int]) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in session.execute(
            text("SELECT * FROM client WHERE practice_id = :p AND id = ANY(:g) ORDER BY id FOR UPDATE"),
            {"p": practice_id, "g": group},
        ).mappings()
    ]


def _personal_strings(
    session: Session, practice_id: int, rows: list[dict[str, Any]], master_key: bytes
) -> list[str | None]:
    """Everything the rows say about the person, in clear: what to look for in the copies."""
    strings: list[str | None] = []
    for row in rows:
        first, last = row["first_name"], row["last_name"]
        strings += [last, first, f"{first} {last}" if first else None, row["city"]]
        postcode = (row["postcode"] or "").replace(" ", "")
        strings += [postcode, f"{postcode[:4]} {postcode[4:]}" if len(postcode) == 6 else None]
        cipher = practice_cipher(session, practice_id, master_key, row["key_version"])
        for name in ENCRYPTED:
            value = row[f"{name}_enc"]
            if value is not None:
                clear = cipher.decrypt(name, bytes(value))
                strings += _phone_forms(clear) if name == "phone" else [clear]
    return strings


def _phone_forms(phone: str) -> list[str]:
    """A phone number as it is stored and as people and devices write it (+31 6 …, 06 …, 06…)."""
    try:
        number = phonenumbers.parse(phone, "NL")
    except phonenumbers.NumberParseException:
        return [phone]
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return [phone, national, re.sub(r"\D", "", national), str(number.national_number)]


def _pseudonymise(session: Session, practice_id: int, group: list[int], pseudonym: str) -> dict[str, Any]:
    erased: dict[str, Any] = {column: None for column in PII_COLUMNS}
    erased["last_name"] = erased_label(pseudonym)
    # consent_*: part A (client_consent) decides where consents live; an erased client has none left.
    session.execute(
        text(
            "UPDATE client SET title = NULL, initials = NULL, first_name = NULL, last_name = :name, "
            "postcode = NULL, city = NULL, email_enc = NULL, phone_enc = NULL, address_enc = NULL, "
            "iban_enc = NULL, email_bidx = NULL, phone_bidx = NULL, preferred_channel = NULL, "
            "consent_reminders_email = false, consent_reminders_sms = false, consent_data_sharing = false, "
            "consent_recorded_at = NULL, consent_recorded_by = NULL, active = false "
            "WHERE practice_id = :p AND id = ANY(:g)"
        ),
        {"p": practice_id, "g": group, "name": erased["last_name"]},
    )
    return erased


def _retention_until(
    session: Session, practice_id: int, group: list[int], patients: list[int], now: dt.datetime | None
) -> dt.date:
    """The last activity (an appointment, a visit of their animals, an invoice or a payment; the erasure itself
    when there was none) plus the franchise's retention years."""
    row = session.execute(
        text(
            """SELECT (SELECT retention_years FROM tenant f WHERE f.id = t.franchise_id) AS years,
                      greatest((SELECT max(starts_at)::date FROM appointment
                                 WHERE practice_id = :p AND client_id = ANY(:g) AND starts_at <= :now),
                               (SELECT max(started_at)::date FROM visit
                                 WHERE practice_id = :p AND patient_id = ANY(:patients) AND started_at <= :now),
                               (SELECT max(issued_on) FROM invoice WHERE practice_id = :p AND client_id = ANY(:g)),
                               (SELECT max(paid_at)::date FROM payment WHERE practice_id = :p AND client_id = ANY(:g))
                      ) AS last_activity
                 FROM tenant t WHERE t.id = :p"""
        ),
        {"p": practice_id, "g": group, "patients": patients, "now": now or dt.datetime.now(dt.UTC)},
    ).one()
    last = row.last_activity or (now or dt.datetime.now(dt.UTC)).date()
    return _add_years(last, int(row.years))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)
