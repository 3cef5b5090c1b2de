"""Declarative base shared by every table: constraint naming, timezone-aware timestamps, tenant classification.

Each table declares its *tenancy* in ``info``:
- ``"practice"``: owned by one practice; carries ``practice_id`` in every key (Citus distribution column), RLS.
- ``"franchise"``: a franchise-level shared resource (price lists, protocols…); carries ``franchise_id``, RLS.
- ``"global"``: reference data across tenants (the tenant registry, staff identities).
The tenancy tests and the RLS migration helpers read this, so a new table cannot forget its policy silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import BigInteger, DateTime, MetaData, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Tenancy = Literal["practice", "franchise", "global"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: DateTime(timezone=True), int: BigInteger}


def tenancy_of(table_info: dict) -> Tenancy:
    return table_info.get("tenancy", "global")


def practice_table(**extra: object) -> dict:
    """``info`` for a practice-owned table; ``partitioned=True`` marks a LIST(practice_id) partitioned fact table."""
    return {"tenancy": "practice", **extra}


def franchise_table(**extra: object) -> dict:
    return {"tenancy": "franchise", **extra}


class MirroredWrites:
    """Columns of a mirrored table VetConnect writes back to Animana (migration 0380, ``warehouse.integration``):
    the Animana version the row last agreed with (the If-Match of a write-back) and whether a local change is
    still unacknowledged by Animana (or in an open conflict). Set by triggers and the write-back, never by hand."""

    animana_version: Mapped[str | None] = mapped_column(Text)
    writeback_pending: Mapped[bool] = mapped_column(server_default="false")


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
