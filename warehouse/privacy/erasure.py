"""The right to erasure (GDPR art. 17) with retention: a client's personal data goes, their animals' clinical and
financial records stay — pseudonymised — until the franchise's retention period after their last activity ends
(then ``warehouse.privacy.retention`` purges them).

In one transaction: the client row (and every duplicate merged into it) is pseudonymised — surname
"Erased client <pseudonym>", every other personal column emptied, consents withdrawn, inactive — and every other
copy of the data in the warehouse is removed (``warehouse.privacy.copies``). Refused while the client owes money
or when already erased. For a practice whose clients module is linked to Animana the pseudonymised row is captured
like any change (hybrid: written back later; animana: sent before commit by the gateway), without the old values
(``vetconnect.erasure``); the sync never loads an erased relation again (``handlers.directory.load_clients``).

Old backups: each backup generation is encrypted under a key of its own, outside the backups, and a full backup
after an erasure first rewrites the tables it changed (``compaction``), so the erased values are in no newer
generation; ``vetconnect backup forget-erased`` then destroys the older generations' keys after their grace
period (``vetconnect.backup_forget``). Per-client keys would not reach the free text that names an owner (a
note, a device message), a key per generation reaches every byte of a backup.
"""

from __future__ import annotations

import base64
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
from warehouse.kernel.crypto import DecryptionError
from warehouse.kernel.errors import DomainError
from warehouse.privacy.copies import PII_COLUMNS, scrub_copies
from warehouse.security.permissions import PRIVACY_MANAGE, Actor, require

DEFAULT_REASON = "At the client's request (GDPR article 17)"
ENCRYPTED = ("email", "phone", "address", "iban")
# Letters only (no I or O, read as 1 and 0): a pseudonym never looks like a phone or invoice number to the search
# or to a person reading it out. 24^8 of them, so two clients of a practice practically never share one.
PSEUDONYM_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


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
    pseudonym = "".join(secrets.choice(PSEUDONYM_LETTERS) for _ in range(8))
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
    """Everything known about the person, in clear: what to look for in the copies. Their rows as they are, and
    as they were — the values a former version of the row had are found in the write-back's history, in a
    merge's record of the duplicate and in the contact edits' audit entries (whose old e-mail, phone, address
    and IBAN are kept as ciphertext: that ciphertext is looked for too, it opens with the practice's key)."""
    group = [r["id"] for r in rows]
    versions: list[dict[str, Any]] = list(rows)
    for (version,) in session.execute(
        text(
            """SELECT changes FROM writeback_outbox WHERE practice_id = :p AND table_name = 'client' AND row_id = ANY(:g)
               UNION ALL SELECT base FROM writeback_outbox
                          WHERE practice_id = :p AND table_name = 'client' AND row_id = ANY(:g)
               UNION ALL SELECT incoming FROM writeback_incoming
                          WHERE practice_id = :p AND table_name = 'client' AND row_id = ANY(:g)
               UNION ALL SELECT duplicate_before FROM record_merge
                          WHERE practice_id = :p AND kind = 'client' AND duplicate_id = ANY(:g)
               UNION ALL SELECT jsonb_object_agg(f.key, f.value -> s.side) FROM writeback_conflict c
                          CROSS JOIN jsonb_each(c.fields) f CROSS JOIN unnest(ARRAY['local', 'animana', 'base']) s(side)
                          WHERE c.practice_id = :p AND c.table_name = 'client' AND c.row_id = ANY(:g)
                            AND jsonb_typeof(f.value) = 'object' GROUP BY c.id, s.side"""
        ),
        {"p": practice_id, "g": group},
    ):
        versions.append(version or {})
    strings: list[str | None] = []
    for (changes,) in session.execute(
        text(
            "SELECT detail -> 'changes' FROM audit_log WHERE practice_id = :p AND entity = 'client' "
            "AND entity_ids && CAST(:g AS bigint[]) AND action = 'edit_contact'"
        ),
        {"p": practice_id, "g": group},
    ):
        old: dict[str, Any] = {}
        for column, change in (changes or {}).items():
            if not isinstance(change, dict):
                continue
            if change.get("old_ciphertext"):
                strings.append(change["old_ciphertext"])
                old[f"{column}_enc"] = base64.b64decode(change["old_ciphertext"])
            old[column] = change.get("old")
        versions.append(old)
    ciphers: dict[int, Any] = {}
    for version in versions:
        first, last = _text(version.get("first_name")), _text(version.get("last_name"))
        strings += [last, first, f"{first} {last}" if first and last else None, _text(version.get("city"))]
        strings += _name_words(first, last)
        postcode = (_text(version.get("postcode")) or "").replace(" ", "")
        strings += [postcode, f"{postcode[:4]} {postcode[4:]}" if len(postcode) == 6 else None]
        key_version = int(version.get("key_version") or rows[0]["key_version"])
        if key_version not in ciphers:
            ciphers[key_version] = practice_cipher(session, practice_id, master_key, key_version)
        for name in ENCRYPTED:
            value = _ciphertext(version.get(f"{name}_enc"))
            if value is None:
                continue
            try:
                clear = ciphers[key_version].decrypt(name, value)
            except DecryptionError:  # another key version's ciphertext; every row's own is tried above
                continue
            strings += _phone_forms(clear) if name == "phone" and clear else [clear]
    return strings


# Dutch surname particles: too common to erase on their own ("van" is in every other note).
PARTICLES = frozenset(
    {"van", "der", "den", "de", "het", "ten", "ter", "te", "op", "in", "von", "la", "le", "du"}
)


def _name_words(*names: str | None) -> list[str]:
    """The words of a name on their own ("Zwartkruis" of "Zwartkruis-Oosterbeek"), as a note would write it."""
    words = [w for name in names if name for w in re.split(r"[^\w']+", name)]
    return [w for w in words if len(w) >= 3 and w.lower() not in PARTICLES]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _ciphertext(value: Any) -> bytes | None:
    """A ciphertext as a row (bytes), a jsonb copy of a row (``"\\x…"`` hex) or an audit entry gives it."""
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    if isinstance(value, str) and value.startswith("\\x"):
        return bytes.fromhex(value[2:])
    return None


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
    # Consents: an erased client consents to nothing (``client_has_consent`` asks client_erasure); the notes typed
    # with them are cleared with the other copies.
    session.execute(
        text(
            "UPDATE client SET title = NULL, initials = NULL, first_name = NULL, last_name = :name, "
            "postcode = NULL, city = NULL, email_enc = NULL, phone_enc = NULL, address_enc = NULL, "
            "iban_enc = NULL, email_bidx = NULL, phone_bidx = NULL, preferred_channel = NULL, active = false "
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
