"""What the Animana loader takes: plain rows (one NamedTuple per warehouse table a bespoke handler writes), the
`Batch` of one page, the records that did not become rows (`Rejection`), where a batch goes (`LoadTarget`) and what
it changed (`LoadCounts`).

A row of a mirrored table (one VetConnect writes back, `warehouse.integration.tables`) ends with the record's
``updated_at``: Animana's version of it, stored as ``animana_version`` (`statements.version`).

A resource loaded by a declarative plan (`plan.TableLoad`) needs no row type here: its rows are tuples in the
order of the plan's staging columns, declared beside its spec (`connectors.animana.resources`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple


class ClientRow(NamedTuple):
    animana_id: str
    title: str | None
    initials: str | None
    first_name: str | None
    last_name: str
    postcode: str | None
    city: str | None
    email: str | None  # clear text: encrypted by the loader, never stored as is
    phone: str | None
    address: str | None
    iban: str | None
    active: bool
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class PatientRow(NamedTuple):
    animana_id: str
    name: str
    species: str
    breed: str | None
    sex: str
    date_of_birth: dt.date | None
    colour: str | None
    microchip: str | None
    deceased: bool
    deceased_on: dt.date | None
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class OwnerRow(NamedTuple):
    patient_animana_id: str
    client_animana_id: str
    is_primary: bool


class ResourceRow(NamedTuple):
    animana_id: str  # namespaced: "staff:12", "resource:3"
    kind: str
    name: str
    active: bool


class ProductRow(NamedTuple):
    code: str
    name: str
    kind: str
    price_cents: int
    vat_rate_bp: int
    dispensing_category: str | None
    active: bool
    species: list[str] | None  # the species it is registered or made for; None: not recorded (any)


class AppointmentRow(NamedTuple):
    animana_id: str
    resource_animana_id: str
    patient_animana_id: str | None
    client_animana_id: str | None
    type_code: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: str
    reason: str | None
    booked_at: dt.datetime
    cancelled_at: dt.datetime | None
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class VisitRow(NamedTuple):
    animana_id: str
    patient_animana_id: str
    appointment_animana_id: str | None
    started_at: dt.datetime
    reason: str | None
    subjective: str | None
    objective: str | None
    assessment: str | None
    plan: str | None
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class DiagnosisRow(NamedTuple):
    animana_id: str  # "<consult id>:<index>"
    visit_animana_id: str
    venom_code: str | None
    term: str
    diagnosed_at: dt.datetime


class WeightRow(NamedTuple):
    animana_id: str  # "consult:<consult id>"
    visit_animana_id: str
    patient_animana_id: str
    measured_at: dt.datetime
    weight_grams: int


class PrescriptionRow(NamedTuple):
    animana_id: str
    patient_animana_id: str
    visit_animana_id: str | None
    product_code: str
    product_name: str
    quantity: Decimal
    dosage_instructions: str | None
    dispensing_category: str
    prescribed_at: dt.datetime
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class InvoiceRow(NamedTuple):
    animana_id: str
    client_animana_id: str
    number: str
    issued_on: dt.date
    status: str
    total_excl_cents: int
    vat_cents: int
    total_incl_cents: int
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


class InvoiceLineRow(NamedTuple):
    animana_id: str  # "<invoice id>:<line index>"
    invoice_animana_id: str
    product_code: str | None
    description: str
    quantity: Decimal
    unit_price_cents: int
    vat_rate_bp: int
    line_excl_cents: int
    line_vat_cents: int
    line_incl_cents: int


class PaymentRow(NamedTuple):
    animana_id: str
    invoice_animana_id: str | None
    client_animana_id: str | None
    method: str
    amount_cents: int
    paid_at: dt.datetime
    updated_at: dt.datetime  # the record's version in Animana (stored as animana_version)


@dataclass(frozen=True)
class Rejection:
    """A source record that did not become a row. ``note=True``: it did load, with a correction (kept for
    review, already resolved), e.g. a patient stored without its invalid microchip."""

    external_id: str | None
    raw: str
    reason: str
    note: bool = False


@dataclass
class Batch:
    """One page of one source resource, mapped: rows to upsert, child rows, ids to delete, rejections."""

    resource: str
    rows: list[tuple] = field(default_factory=list)
    children: dict[str, list[tuple]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    high_water: dt.datetime | None = None


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    quarantined: int = 0

    def add(self, other: LoadCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.deleted += other.deleted
        self.quarantined += other.quarantined

    def as_dict(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
        }


@dataclass(frozen=True)
class LoadTarget:
    practice_id: int
    franchise_id: int
    sync_run_id: int | None = None
