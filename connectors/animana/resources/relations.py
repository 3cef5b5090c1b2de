"""Animana ``relations``: clients (owners), mirrored as ``client`` rows with their PII encrypted by the loader.

Written back from the row with its PII decrypted (``email``, ``phone``, ``address``, ``iban``). Not round-trippable:
blank texts (read as None, written as None); the address, stored as one string (`_address`) and split again by
`_street_and_number` — a street whose last word starts with a digit, or a house number with a space in it, splits
differently; ``created_at`` (Animana's own stamp, never written)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, Strict

from connectors.animana.models import (
    EMAIL,
    IBAN,
    POSTCODE,
    AnimanaRecord,
    Flag,
    NonEmpty,
    Text,
    Timestamp,
    WireRecord,
    WritePayload,
    iban_is_valid,
)
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import blank_to_none
from warehouse.ingest.animana.checks import FROM_ANIMANA, NOT_DELETED, MirrorCount
from warehouse.ingest.animana.handlers.directory import encrypt_clients, load_clients
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import ClientRow
from warehouse.ingest.animana.tombstones import mark_deleted


class Relation(AnimanaRecord):
    """A client (owner)."""

    title: Text | None = None
    initials: Text | None = None
    first_name: Text | None = None
    last_name: NonEmpty
    street: Text | None = None
    house_number: Text | None = None
    postcode: Annotated[str, Strict(), Field(pattern=POSTCODE)] | None = None
    city: Text | None = None
    email: Annotated[str, Strict(), Field(pattern=EMAIL)] | None = None
    phone: Text | None = None
    iban: Annotated[str, Strict(), Field(pattern=IBAN)] | None = None
    active: Flag
    created_at: Timestamp | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["iban"] is not None and not iban_is_valid(fields["iban"]):
            raise ValueError("iban: checksum does not match")


class RelationCreate(WritePayload):
    title: str | None = None
    initials: str | None = None
    first_name: str | None = None
    last_name: Annotated[str, Field(min_length=1)]
    street: str | None = None
    house_number: str | None = None
    postcode: Annotated[str, Field(pattern=POSTCODE)] | None = None
    city: str | None = None
    email: Annotated[str, Field(pattern=EMAIL)] | None = None
    phone: str | None = None
    iban: Annotated[str, Field(pattern=IBAN)] | None = None
    active: bool = True


class RelationUpdate(WritePayload):
    """Only the fields you set are sent (PATCH semantics)."""

    title: str | None = None
    initials: str | None = None
    first_name: str | None = None
    last_name: Annotated[str, Field(min_length=1)] | None = None
    street: str | None = None
    house_number: str | None = None
    postcode: Annotated[str, Field(pattern=POSTCODE)] | None = None
    city: str | None = None
    email: Annotated[str, Field(pattern=EMAIL)] | None = None
    phone: str | None = None
    iban: Annotated[str, Field(pattern=IBAN)] | None = None
    active: bool | None = None


def _address(street: str | None, house_number: str | None) -> str | None:
    parts = [p for p in (street, house_number) if p]
    return " ".join(parts) if parts else None


def _street_and_number(address: str | None) -> tuple[str | None, str | None]:
    """`_address` inverted as far as one string allows: the last word is the house number when it starts with a
    digit (``Kerkstraat 12bis`` → ``Kerkstraat``, ``12bis``); an address that is only a number is a house number
    without a street; anything else is all street."""
    if not address:
        return None, None
    street, _, last = address.rpartition(" ")
    if street and last[:1].isdigit():
        return street, last
    if address[:1].isdigit() and " " not in address:
        return None, address
    return address, None


def write_relation(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    street, house_number = _street_and_number(row["address"])
    return {
        "title": row["title"], "initials": row["initials"], "first_name": row["first_name"],
        "last_name": row["last_name"], "street": street, "house_number": house_number, "postcode": row["postcode"],
        "city": row["city"], "email": row["email"], "phone": row["phone"], "iban": row["iban"],
        "active": row["active"],
    }  # fmt: skip


def map_relation(r: WireRecord) -> ClientRow:
    return ClientRow(
        str(r["id"]), blank_to_none(r["title"]), blank_to_none(r["initials"]), blank_to_none(r["first_name"]),
        r["last_name"], r["postcode"], blank_to_none(r["city"]), blank_to_none(r["email"]),
        blank_to_none(r["phone"]), _address(r["street"], r["house_number"]), r["iban"], r["active"], r["updated_at"],
    )  # fmt: skip


SPEC = ResourceSpec(
    name="relations",
    module="clients",
    model=Relation,
    read_row=map_relation,
    table="client",
    write_back=write_relation,
    load=HandlerLoad(
        handler=load_clients,
        tombstone=mark_deleted("client"),
        mirror=MirrorCount("client", (FROM_ANIMANA, NOT_DELETED)),
        encrypt=encrypt_clients,
    ),
)
