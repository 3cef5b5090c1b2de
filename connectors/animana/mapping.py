"""Animana records → plain warehouse rows (`warehouse.loaders` row types). No SQL here: the loader resolves
Animana ids to warehouse ids by joins.

Decisions:
- Ids become text ``animana_id``s; staff and rooms/equipment share the warehouse ``resource`` table, so their ids
  are namespaced (``staff:12``, ``resource:3``) — the agenda's ``resource_type`` picks the namespace.
- gender → sex: ``neutered_male`` → ``male_neutered`` etc.; species outside the warehouse list → ``other``.
- Products: category → kind (``lab`` stays ``lab``, so the marts report lab revenue); the price list's target
  species → ``product.species`` by the same species rule as a patient's (so an "alpaca" product fits an "alpaca"
  patient, both ``other``), each once; no species (absent, null or empty) → NULL: not recorded, no warning.
- Microchip: the API model already insists on 15 digits; `normalise_microchip` also refuses reserved prefixes
  (000, 999). Such a chip is stored as NULL and the record is noted (a *resolved* quarantine entry with the raw
  payload): the patient, its owners and its history still load, and a person can see what was dropped.
- Money stays integer cents; VAT percent → basis points (21 → 2100). Quantities become `Decimal`.
- A record that cannot become a valid row (e.g. a zero payment, which the warehouse forbids) is rejected with
  a reason; it never raises.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from pydantic_core import to_jsonable_python

from warehouse.kernel.validation import InvalidMicrochip, normalise_microchip
from warehouse.loaders import (
    AppointmentRow,
    Batch,
    ClientRow,
    DiagnosisRow,
    InvoiceLineRow,
    InvoiceRow,
    LabObservationRow,
    OwnerRow,
    PatientRow,
    PaymentRow,
    PrescriptionRow,
    ProductRow,
    Rejection,
    ResourceRow,
    VaccinationRow,
    VisitRow,
    WeightRow,
)
from warehouse.schema.clients import SPECIES

from . import models as m
from .models import RejectedRecord, Tombstone, WireRecord

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

SEX_BY_GENDER = {
    "male": "male",
    "female": "female",
    "neutered_male": "male_neutered",
    "neutered_female": "female_neutered",
    "unknown": "unknown",
}
PRODUCT_KIND_BY_CATEGORY = {
    "service": "service",
    "lab": "lab",
    "vaccine": "medicine",
    "medication": "medicine",
    "food": "food",
    "other": "goods",
}
# Animana agenda types → the franchise appointment-type codes (unknown types load without a type).
APPOINTMENT_TYPE_CODES = {
    "consult": "consult",
    "vaccinatie": "vacc",
    "controle": "followup",
    "check": "checkup",
    "senior check": "checkup",
    "operatie": "surgery",
    "gebitsbehandeling": "dental",
    "castratie": "castration",
    "euthanasie": "euthanasia",
}


class MappingError(ValueError):
    """The record is valid Animana but has no valid warehouse row."""


def resource_key(kind: str, record_id: int) -> str:
    """The namespaced animana_id of a bookable resource: ``staff:<id>`` or ``resource:<id>``."""
    return f"{'staff' if kind == 'staff' else 'resource'}:{record_id}"


def vat_bp(percent: int) -> int:
    return int(percent) * 100


@lru_cache(maxsize=8192)
def at_midnight(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in Amsterdam, given as the same instant in UTC. In UTC because psycopg's binary COPY
    asks every timestamptz for its UTC offset, which a ZoneInfo works out from the zone's transitions each time
    (payment rows: 0.65 -> 0.31 us each to encode); cached because a practice's ~30,000 payments, prescriptions and
    lab results fall on ~1,100 days. Datetimes are immutable, so rows may share one."""
    return dt.datetime.combine(day, dt.time(0, 0), AMSTERDAM).astimezone(dt.UTC)


def _s(value: int | None) -> str | None:
    return None if value is None else str(value)


def _blank(value: str | None) -> str | None:
    return value if value else None


def _address(street: str | None, house_number: str | None) -> str | None:
    parts = [p for p in (street, house_number) if p]
    return " ".join(parts) if parts else None


def map_relation(r: WireRecord) -> ClientRow:
    return ClientRow(
        str(r["id"]), _blank(r["title"]), _blank(r["initials"]), _blank(r["first_name"]), r["last_name"],
        r["postcode"], _blank(r["city"]), _blank(r["email"]), _blank(r["phone"]),
        _address(r["street"], r["house_number"]), r["iban"], r["active"],
    )  # fmt: skip


def map_animal(a: WireRecord) -> tuple[PatientRow, list[OwnerRow], str | None]:
    """The patient row, its owner links (first relation is primary) and a note when something was dropped."""
    note = None
    chip = None
    if a["chip_number"] is not None:
        try:
            chip = normalise_microchip(a["chip_number"])
        except InvalidMicrochip as exc:
            note = f"microchip not stored: {exc}"
    animal_id = str(a["id"])
    species = warehouse_species(a["species"])
    row = PatientRow(
        animal_id, a["name"], species, _blank(a["breed"]), SEX_BY_GENDER[a["gender"]], a["date_of_birth"],
        _blank(a["colour"]), chip, a["deceased"], a["deceased_on"],
    )  # fmt: skip
    owners = []
    seen: set[int] = set()
    for index, relation_id in enumerate(a["relation_ids"]):
        if relation_id in seen:
            continue
        seen.add(relation_id)
        owners.append(OwnerRow(animal_id, str(relation_id), index == 0))
    return row, owners, note


def map_staff(s: WireRecord) -> ResourceRow:
    name = f"{s['first_name']} {s['last_name']}"[:120]
    return ResourceRow(resource_key("staff", s["id"]), "staff", name, s["active"])


def map_resource(r: WireRecord) -> ResourceRow:
    return ResourceRow(resource_key(r["kind"], r["id"]), r["kind"], r["name"][:120], r["active"])


def warehouse_species(species: str) -> str:
    """A species name from Animana as the warehouse records it: one of its list, else ``other``."""
    return species if species in SPECIES else "other"


def map_product(p: WireRecord) -> ProductRow:
    species = p["species"]
    return ProductRow(
        p["code"], p["name"], PRODUCT_KIND_BY_CATEGORY[p["category"]], p["price_cents"], vat_bp(p["vat_rate"]),
        p["dispensing_category"], p["active"],
        list(dict.fromkeys(warehouse_species(s) for s in species)) if species else None,
    )  # fmt: skip


def map_appointment(a: WireRecord) -> AppointmentRow:
    status = a["status"]
    return AppointmentRow(
        str(a["id"]), resource_key(a["resource_type"], a["resource_id"]), str(a["animal_id"]),
        str(a["relation_id"]), APPOINTMENT_TYPE_CODES.get(a["type"].strip().lower()), a["start"], a["end"],
        status, a["reason"], a["booked_at"], a["updated_at"] if status == "cancelled" else None,
    )  # fmt: skip


def map_consult(c: WireRecord) -> tuple[VisitRow, list[DiagnosisRow], list[WeightRow]]:
    consult_id, animal_id, date, soap = str(c["id"]), str(c["animal_id"]), c["date"], c["soap"]
    visit = VisitRow(
        consult_id, animal_id, _s(c["appointment_id"]), date, c["reason"], soap.subjective or None,
        soap.objective or None, soap.assessment or None, soap.plan or None,
    )  # fmt: skip
    diagnoses = [
        DiagnosisRow(f"{consult_id}:{i}", consult_id, d.venom_code, d.description[:200], date)
        for i, d in enumerate(c["diagnoses"])
    ]
    weights = []
    if c["weight_kg"] is not None:
        grams = int((Decimal(repr(c["weight_kg"])) * 1000).to_integral_value())
        if 0 < grams < 2_000_000:
            weights.append(WeightRow(f"consult:{consult_id}", consult_id, animal_id, date, grams))
    return visit, diagnoses, weights


def map_vaccination(v: WireRecord) -> VaccinationRow:
    return VaccinationRow(
        str(v["id"]), str(v["animal_id"]), _s(v["consult_id"]), v["vaccine"][:120], _blank(v["batch_number"]),
        v["given_on"], v["due_on"],
    )  # fmt: skip


def map_prescription(p: WireRecord) -> PrescriptionRow:
    return PrescriptionRow(
        str(p["id"]), str(p["animal_id"]), _s(p["consult_id"]), p["product_code"], p["product_name"][:200],
        Decimal(repr(p["quantity"])).quantize(Decimal("0.001")), p["instructions"], p["dispensing_category"],
        at_midnight(p["date"]),
    )  # fmt: skip


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def map_labresult(r: WireRecord) -> LabObservationRow:
    return LabObservationRow(
        str(r["id"]), str(r["animal_id"]), r["test_code"][:64], _blank(r["test_name"]), _decimal(r["value"]),
        _blank(r["unit"]), _decimal(r["reference_low"]), _decimal(r["reference_high"]), r["flag"],
        at_midnight(r["date"]),
    )  # fmt: skip


def map_invoice(i: WireRecord) -> tuple[InvoiceRow, list[InvoiceLineRow]]:
    invoice_id = str(i["id"])
    row = InvoiceRow(
        invoice_id, str(i["relation_id"]), i["number"], i["date"], "issued", i["total_excl_vat_cents"],
        i["vat_cents"], i["total_cents"],
    )  # fmt: skip
    lines = [
        InvoiceLineRow(
            f"{invoice_id}:{n}",
            invoice_id,
            line.product_code,
            (line.description or line.product_code)[:200],
            Decimal(line.quantity),
            line.unit_price_cents,
            vat_bp(line.vat_rate),
            line.line_total_cents,
            line.vat_cents,
            line.line_total_cents + line.vat_cents,
        )  # fmt: skip
        for n, line in enumerate(i["lines"])
    ]
    return row, lines


def map_payment(p: WireRecord) -> PaymentRow:
    if p["amount_cents"] == 0:
        raise MappingError("amount_cents: a payment of zero is not a payment")
    return PaymentRow(
        str(p["id"]), str(p["invoice_id"]), _s(p["relation_id"]), p["method"], p["amount_cents"],
        at_midnight(p["date"]),
    )  # fmt: skip


def _raw(record: WireRecord) -> str:
    """The record as JSON, as its model would dump it (for the quarantine table)."""
    return json.dumps(to_jsonable_python(record), ensure_ascii=False)


def map_items(resource: str, items: Iterable[m.WireItem]) -> Batch:
    """Map one page's items (wire records, tombstones, rejected records: ``iter_pages(..., wire=True)``) to a
    loader `Batch`."""
    # The mapping is looked up once per page, not per record: most resources map one record to one row.
    row_of = _ROW_MAPPERS.get(resource)
    if row_of is None and resource not in _CHILD_RESOURCES:
        raise KeyError(f"no mapping for Animana resource {resource!r}")
    batch = Batch(resource)
    rows = batch.rows
    children: dict[str, list[tuple]] = {}
    stamps: list[dt.datetime] = []
    for item in items:
        if isinstance(item, RejectedRecord):
            raw = item.raw if isinstance(item.raw, str) else json.dumps(item.raw, ensure_ascii=False)
            batch.rejected.append(Rejection(_s(item.record_id), raw, item.reason))
            continue
        if isinstance(item, Tombstone):
            stamps.append(item.updated_at)
            batch.deleted.append(str(item.id))
            continue
        stamps.append(item["updated_at"])
        try:
            if row_of is not None:
                rows.append(row_of(item))
            else:
                _map_with_children(resource, item, batch, children)
        except (MappingError, ValueError, ArithmeticError) as exc:
            batch.rejected.append(Rejection(str(item["id"]), _raw(item), str(exc)))
    batch.children = children
    batch.high_water = max(stamps, default=None)
    return batch


# Resources whose record becomes exactly one row.
_ROW_MAPPERS: dict[str, Callable[[WireRecord], tuple]] = {
    "relations": map_relation,
    "staff": map_staff,
    "resources": map_resource,
    "products": map_product,
    "agenda": map_appointment,
    "vaccinations": map_vaccination,
    "prescriptions": map_prescription,
    "labresults": map_labresult,
    "payments": map_payment,
}
# Resources whose record also gives child rows (`Batch.children`) or a note.
_CHILD_RESOURCES = ("animals", "consults", "invoices")


def _map_with_children(
    resource: str, item: WireRecord, batch: Batch, children: dict[str, list[tuple]]
) -> None:
    if resource == "animals":
        patient, owners, note = map_animal(item)
        batch.rows.append(patient)
        children.setdefault("owners", []).extend(owners)
        if note:
            batch.rejected.append(Rejection(str(item["id"]), _raw(item), note, note=True))
    elif resource == "consults":
        visit, diagnoses, weights = map_consult(item)
        batch.rows.append(visit)
        children.setdefault("diagnoses", []).extend(diagnoses)
        children.setdefault("weights", []).extend(weights)
    else:  # invoices
        invoice, lines = map_invoice(item)
        batch.rows.append(invoice)
        children.setdefault("lines", []).extend(lines)
