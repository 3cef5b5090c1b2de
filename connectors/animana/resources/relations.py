"""Animana ``relations``: clients (owners), mirrored as ``client`` rows with their PII encrypted by the loader."""

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
from connectors.animana.resources.spec import ResourceSpec
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


def map_relation(r: WireRecord) -> ClientRow:
    return ClientRow(
        str(r["id"]), blank_to_none(r["title"]), blank_to_none(r["initials"]), blank_to_none(r["first_name"]),
        r["last_name"], r["postcode"], blank_to_none(r["city"]), blank_to_none(r["email"]),
        blank_to_none(r["phone"]), _address(r["street"], r["house_number"]), r["iban"], r["active"], r["updated_at"],
    )  # fmt: skip


SPEC = ResourceSpec(
    name="relations",
    model=Relation,
    read_row=map_relation,
    load=HandlerLoad(
        handler=load_clients,
        tombstone=mark_deleted("client"),
        mirror=MirrorCount("client", (FROM_ANIMANA, NOT_DELETED)),
        encrypt=encrypt_clients,
    ),
)
