"""Write-back is the inverse of the read mapping (hypothesis): for a generated record as the API sends it (JSON),
parsed, read into its warehouse row (with local ids, as the loader stores it) and written back, the body equals
the record's fields the read mapping keeps, in the API's own formats.

What is not round-trippable, and why, is in each resource module's docstring; the generated records avoid it
only where it is documented there (and each test says which). The local ids come from `LocalIds`, a stand-in for
the warehouse's id look-up (our own code, not an external part)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from connectors.animana.models import AnimanaRecord
from connectors.animana.parsing import as_wire, parse_record
from connectors.animana.resources import (
    agenda,
    animals,
    consults,
    invoices,
    payments,
    prescriptions,
    relations,
    vaccinations,
)
from connectors.animana.resources.values import resource_key
from warehouse.ingest.animana.rows import Batch
from warehouse.schema.clients import SPECIES

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
UPDATED = "2025-03-01T09:30:00Z"


class LocalIds:
    """Local ids handed out per table for Animana ids, and looked up both ways; plus the columns of referenced rows
    a write-back reads (`WriteRefs.value`)."""

    def __init__(self) -> None:
        self._local: dict[tuple[str, str], int] = {}
        self._animana: dict[tuple[str, int], str] = {}
        self.columns: dict[tuple[str, int, str], Any] = {}

    def local(self, table: str, animana_id: str | None) -> int | None:
        if animana_id is None:
            return None
        if (table, animana_id) not in self._local:
            local_id = len(self._local) + 1000
            self._local[table, animana_id] = local_id
            self._animana[table, local_id] = animana_id
        return self._local[table, animana_id]

    def animana_id(self, table: str, local_id: int | None) -> str | None:
        return None if local_id is None else self._animana[table, local_id]

    def value(self, table: str, local_id: int | None, column: str) -> Any:
        return None if local_id is None else self.columns[table, local_id, column]


def _wire(resource: str, raw: dict[str, Any]) -> dict[str, Any]:
    record = parse_record(1, resource, json.loads(json.dumps(raw)))
    assert isinstance(record, AnimanaRecord), record
    return as_wire(record)


def _kept(raw: dict[str, Any], body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The raw record's fields the body writes, with the documented changes."""
    return {**{key: raw[key] for key in body}, **changes}


ids = st.integers(1, 10**6)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
optional_texts = st.none() | texts
names = st.from_regex(r"[A-Z][a-z]{1,12}( [A-Za-z][a-z]{1,12}){0,2}", fullmatch=True)
days = st.dates(dt.date(2000, 1, 1), dt.date(2030, 12, 31))
# Times of the practice's day as the API writes them: Amsterdam time, with the offset, to the second.
local_times = st.datetimes(
    dt.datetime(2015, 1, 1), dt.datetime(2030, 12, 31), timezones=st.just(AMSTERDAM), allow_imaginary=False
).map(lambda t: t.replace(microsecond=0))


@st.composite
def relations_raw(draw: st.DrawFn) -> dict[str, Any]:
    street = draw(st.none() | names)
    return {
        "id": draw(ids), "updated_at": UPDATED, "title": draw(optional_texts), "initials": draw(optional_texts),
        "first_name": draw(optional_texts), "last_name": draw(texts.filter(bool)), "street": street,
        "house_number": draw(st.none() | st.from_regex(r"[1-9][0-9]{0,2}(A|B|-2|bis)?", fullmatch=True)),
        "postcode": draw(st.none() | st.from_regex(r"[1-9][0-9]{3} ?[A-Z]{2}", fullmatch=True)),
        "city": draw(optional_texts), "email": draw(st.none() | st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.nl", fullmatch=True)),
        "phone": draw(optional_texts), "iban": draw(st.sampled_from([None, "NL91ABNA0417164300"])),
        "active": draw(st.booleans()),
    }  # fmt: skip


@given(relations_raw())
def test_relations_round_trip(raw):
    client = relations.map_relation(_wire("relations", raw))
    row = client._asdict()  # the PII decrypted under its field names, as the write-back reads it
    body = relations.write_relation(row, LocalIds())
    blank = {k: raw[k] or None for k in ("title", "initials", "first_name", "city", "phone")}  # blank → None
    assert body == _kept(raw, body, **blank)


@st.composite
def animals_raw(draw: st.DrawFn) -> dict[str, Any]:
    deceased = draw(st.booleans())
    born = draw(st.none() | days)
    died = draw(st.none() | days.filter(lambda d: born is None or d >= born)) if deceased else None
    return {
        "id": draw(ids), "updated_at": UPDATED, "relation_ids": draw(st.lists(ids, min_size=1, max_size=4, unique=True)),
        "name": draw(texts.filter(bool)), "species": draw(st.sampled_from(SPECIES) | st.just("alpaca")),
        "breed": draw(optional_texts), "gender": draw(st.sampled_from(sorted(animals.SEX_BY_GENDER))),
        "colour": draw(optional_texts),
        "chip_number": draw(st.none() | st.from_regex(r"528[0-9]{12}", fullmatch=True)),
        "date_of_birth": born and born.isoformat(), "deceased": deceased, "deceased_on": died and died.isoformat(),
    }  # fmt: skip


@given(animals_raw())
def test_animals_round_trip(raw):
    refs, batch = LocalIds(), Batch("animals")
    animals.add_animal(_wire("animals", raw), batch)
    [patient] = batch.rows
    owners = batch.children["owners"]
    row = {**patient._asdict(), "client_ids": [refs.local("client", o.client_animana_id) for o in owners]}
    body = animals.write_animal(row, refs)
    assert body == _kept(
        raw, body, species=raw["species"] if raw["species"] in SPECIES else "other",  # outside the list: other
        breed=raw["breed"] or None, colour=raw["colour"] or None,
    )  # fmt: skip


def _later(start: dt.datetime, minutes: int) -> str:
    """``minutes`` of real time after ``start`` (across a change of the clocks, wall-clock arithmetic is not)."""
    return (start.astimezone(dt.UTC) + dt.timedelta(minutes=minutes)).astimezone(AMSTERDAM).isoformat()


@st.composite
def agenda_raw(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(local_times)
    name = draw(st.sampled_from(sorted(agenda.APPOINTMENT_TYPE_CODES)))
    return {
        "id": draw(ids), "updated_at": UPDATED,
        "type": draw(st.sampled_from([name, name.upper(), f" {name.title()} "])),
        "start": start.isoformat(), "end": _later(start, draw(st.integers(5, 240))),
        "resource_type": draw(st.sampled_from(["staff", "room"])), "resource_id": draw(ids),
        "animal_id": draw(ids), "relation_id": draw(ids),
        "status": draw(st.sampled_from(["booked", "checked_in", "done", "cancelled", "no_show"])),
        "reason": draw(optional_texts), "booked_at": UPDATED,
    }  # fmt: skip


def _appointment_row(appointment: Any, refs: LocalIds) -> dict[str, Any]:
    """An `AppointmentRow` as the loader stores it (`handlers.clinical.load_appointments`)."""
    type_id = refs.local("appointment_type", appointment.type_code)
    if type_id is not None:
        refs.columns["appointment_type", type_id, "code"] = appointment.type_code
    return {
        **appointment._asdict(), "resource_id": refs.local("resource", appointment.resource_animana_id),
        "patient_id": refs.local("patient", appointment.patient_animana_id),
        "client_id": refs.local("client", appointment.client_animana_id), "appointment_type_id": type_id,
    }  # fmt: skip


@given(agenda_raw())
def test_agenda_round_trip(raw):
    refs = LocalIds()
    row = _appointment_row(agenda.map_appointment(_wire("agenda", raw)), refs)
    body = agenda.write_appointment(row, refs)
    # Types are read case- and space-insensitively, and several names share a code: the code's first name.
    name = agenda.ANIMANA_TYPE_BY_CODE[agenda.APPOINTMENT_TYPE_CODES[raw["type"].strip().lower()]]
    assert body == _kept(raw, body, type=name)
    assert "booked_at" not in body  # Animana's own stamp


@st.composite
def consults_raw(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(ids), "updated_at": UPDATED, "appointment_id": draw(st.none() | ids), "animal_id": draw(ids),
        "relation_id": draw(st.none() | ids), "vet_id": draw(ids), "date": draw(local_times).isoformat(),
        "reason": draw(optional_texts),
        "soap": {part: draw(texts) for part in consults.SOAP},
        "diagnoses": [], "weight_kg": None, "temperature_c": None,
    }  # fmt: skip


@given(consults_raw())
def test_consults_round_trip(raw):
    refs = LocalIds()
    visit, _, _ = consults.map_consult(_wire("consults", raw))
    appointment_id = refs.local("appointment", visit.appointment_animana_id)
    if appointment_id is not None:  # the consult's appointment, booked on its vet
        refs.columns["appointment", appointment_id, "resource_id"] = refs.local(
            "resource", f"staff:{raw['vet_id']}"
        )
    row = {
        **visit._asdict(),
        "patient_id": refs.local("patient", visit.patient_animana_id),
        "appointment_id": appointment_id,
    }
    body = consults.write_consult(row, refs)
    # Not stored: relation, temperature, and (children of the visit) diagnoses and weight; the vet only by the
    # appointment.
    assert ("vet_id" in body) == (raw["appointment_id"] is not None)
    assert body == _kept(raw, body)


@st.composite
def vaccinations_raw(draw: st.DrawFn) -> dict[str, Any]:
    given_on = draw(days)
    due = draw(st.none() | st.integers(1, 1500).map(lambda n: given_on + dt.timedelta(days=n)))
    return {
        "id": draw(ids), "updated_at": UPDATED, "animal_id": draw(ids), "consult_id": draw(st.none() | ids),
        "vet_id": draw(st.none() | ids), "vaccine_code": "DHP", "vaccine": draw(st.text(min_size=1, max_size=120)),
        "batch_number": draw(st.none() | st.text(min_size=1, max_size=20)), "given_on": given_on.isoformat(),
        "due_on": due and due.isoformat(),
    }  # fmt: skip


@given(vaccinations_raw())
def test_vaccinations_round_trip(raw):
    refs = LocalIds()
    v = vaccinations.map_vaccination(_wire("vaccinations", raw))
    row = {
        **v._asdict(),
        "patient_id": refs.local("patient", v.patient_animana_id),
        "visit_id": refs.local("visit", v.visit_animana_id),
    }
    body = vaccinations.write_vaccination(row, refs)
    assert "vaccine_code" not in body and "vet_id" not in body  # not stored
    assert body == _kept(raw, body)


@st.composite
def prescriptions_raw(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(ids), "updated_at": UPDATED, "animal_id": draw(ids), "consult_id": draw(st.none() | ids),
        "vet_id": draw(ids), "date": draw(days).isoformat(), "product_code": draw(st.sampled_from(["AMOX", "MELOX"])),
        "product_name": draw(st.text(min_size=1, max_size=200)),
        "quantity": draw(st.integers(1, 10**6).map(lambda n: n / 1000)),  # three decimals: the column's scale
        "dispensing_category": draw(st.sampled_from(["VRIJ", "URA", "UDA", "UDD"])),
        "instructions": draw(optional_texts),
    }  # fmt: skip


@given(prescriptions_raw())
def test_prescriptions_round_trip(raw):
    refs = LocalIds()
    p = prescriptions.map_prescription(_wire("prescriptions", raw))
    product_id = refs.local("product", p.product_code)  # a product the franchise's list has
    refs.columns["product", product_id, "code"] = p.product_code
    row = {
        **p._asdict(), "patient_id": refs.local("patient", p.patient_animana_id),
        "visit_id": refs.local("visit", p.visit_animana_id), "product_id": product_id,
        "dosage_instructions": p.dosage_instructions,
    }  # fmt: skip
    body = prescriptions.write_prescription(row, refs)
    assert "vet_id" not in body
    assert body == _kept(raw, body)


@st.composite
def invoices_raw(draw: st.DrawFn) -> dict[str, Any]:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        quantity, price, rate = (
            draw(st.integers(1, 20)),
            draw(st.integers(0, 50_000)),
            draw(st.sampled_from([0, 9, 21])),
        )
        lines.append({
            "product_code": draw(st.sampled_from(["C-CONS", "AMOX"])), "description": draw(st.text(min_size=1, max_size=200)),
            "quantity": quantity, "unit_price_cents": price, "vat_rate": rate, "line_total_cents": quantity * price,
            "vat_cents": quantity * price * rate // 100,
        })  # fmt: skip
    excl, vat = sum(x["line_total_cents"] for x in lines), sum(x["vat_cents"] for x in lines)
    return {
        "id": draw(ids), "updated_at": UPDATED, "relation_id": draw(ids), "appointment_id": None,
        "date": draw(days).isoformat(), "number": draw(st.from_regex(r"F-[0-9]{4,8}", fullmatch=True)),
        "lines": lines, "total_excl_vat_cents": excl, "vat_cents": vat, "total_cents": excl + vat,
    }  # fmt: skip


@given(invoices_raw())
def test_invoices_round_trip(raw):
    refs, batch = LocalIds(), Batch("invoices")
    invoices.add_invoice(_wire("invoices", raw), batch)
    [invoice] = batch.rows
    lines = []
    for line in batch.children["lines"]:
        product_id = refs.local("product", line.product_code)
        refs.columns["product", product_id, "code"] = line.product_code
        lines.append({**line._asdict(), "product_id": product_id})
    row = {**invoice._asdict(), "client_id": refs.local("client", invoice.client_animana_id), "lines": lines}
    body = invoices.write_invoice(row, refs)
    assert "appointment_id" not in body  # not stored
    assert body == _kept(raw, body)


@st.composite
def payments_raw(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "id": draw(ids), "updated_at": UPDATED, "invoice_id": draw(ids), "relation_id": draw(ids),
        "method": draw(st.sampled_from(["cash", "pin", "transfer"])),
        "amount_cents": draw(st.integers(-10**6, 10**6).filter(bool)), "date": draw(days).isoformat(),
    }  # fmt: skip


@given(payments_raw())
def test_payments_round_trip(raw):
    refs = LocalIds()
    p = payments.map_payment(_wire("payments", raw))
    row = {
        **p._asdict(),
        "invoice_id": refs.local("invoice", p.invoice_animana_id),
        "client_id": refs.local("client", p.client_animana_id),
    }
    body = payments.write_payment(row, refs)
    assert body == _kept(raw, body)


@given(st.sampled_from(["staff", "room"]), ids)
def test_a_resource_key_splits_back(kind, record_id):
    from connectors.animana.resources.values import split_resource_key

    assert split_resource_key(resource_key(kind, record_id)) == (kind, record_id)


WRITE_BACKS: dict[str, Callable[..., dict[str, Any]]] = {
    "relations": relations.write_relation, "animals": animals.write_animal, "agenda": agenda.write_appointment,
    "consults": consults.write_consult, "vaccinations": vaccinations.write_vaccination,
    "prescriptions": prescriptions.write_prescription, "invoices": invoices.write_invoice,
    "payments": payments.write_payment,
}  # fmt: skip


def test_every_mirrored_resource_declares_the_write_back_tested_here():
    from connectors.animana.resources.registry import SPEC_BY_NAME

    assert {name: SPEC_BY_NAME[name].write_back for name in WRITE_BACKS} == WRITE_BACKS
