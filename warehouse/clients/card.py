"""The client card: the client's name and decrypted contact details, their animals and their balance.

Runs inside the caller's tenant session (RLS decides what exists); opening a card is written to the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.billing.balances import Balance, client_balance
from warehouse.kernel.audit import record
from warehouse.kernel.ciphers import practice_cipher
from warehouse.schema.clients import Client


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
    active: bool
    preferred_channel: str | None  # email, sms, phone, post; None: not asked
    patients: (
        pl.DataFrame
    )  # id, name, species, breed, date_of_birth, date_of_birth_estimated, deceased, primary
    balance: Balance


def client_name(client: Client) -> str:
    given = client.first_name or client.initials
    return " ".join(p for p in (client.title, given, client.last_name) if p)


_CLIENT_PATIENTS = text(
    """SELECT p.id, p.name, p.species, p.breed, p.date_of_birth, p.date_of_birth_estimated, p.deceased,
              cp.is_primary AS "primary"
       FROM client_patient cp JOIN patient p ON p.practice_id = cp.practice_id AND p.id = cp.patient_id
       WHERE cp.practice_id = :p AND cp.client_id = :c AND p.deleted_at IS NULL
       ORDER BY p.deceased, p.name"""
)
_CLIENT_PATIENTS_SCHEMA = {"id": pl.Int64, "name": pl.String, "species": pl.String, "breed": pl.String,
                           "date_of_birth": pl.Date, "date_of_birth_estimated": pl.Boolean, "deceased": pl.Boolean,
                           "primary": pl.Boolean}  # fmt: skip


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
    fc = practice_cipher(session, practice_id, master_key)
    rows = session.execute(_CLIENT_PATIENTS, {"p": practice_id, "c": client_id})
    patients = pl.DataFrame([dict(r._mapping) for r in rows], schema=_CLIENT_PATIENTS_SCHEMA)
    return ClientCard(
        practice_id=practice_id, client_id=client_id, name=client_name(client),
        email=fc.decrypt("email", client.email_enc), phone=fc.decrypt("phone", client.phone_enc),
        address=fc.decrypt("address", client.address_enc), postcode=client.postcode, city=client.city,
        active=client.active, preferred_channel=client.preferred_channel, patients=patients,
        balance=client_balance(session, practice_id, client_id),
    )  # fmt: skip
