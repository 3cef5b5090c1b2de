"""Pydantic models of every Animana payload.

Strict where bad data hides: ids, money and flags must have the JSON type they claim (no "12" -> 12, no
true -> 1), timestamps must be ISO strings with a timezone, enums are closed, and cross-field rules (end
after start, invoice totals add up, chip numbers have 15 digits) are checked. Unknown extra fields are
ignored so an additive API change does not quarantine every record.

The models describe the wire: validate JSON text (`model_validate_json`). From Python objects the strict
date/time fields take only `datetime`/`date` values, not ISO strings.

A record that fails validation becomes a `RejectedRecord` in the client's stream instead of an exception,
so the pipeline can quarantine it and carry on.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from typing_extensions import TypedDict


def _exactly(kind: type) -> BeforeValidator:
    # Literal[False] would accept 0 and Literal[9, 21] would accept 9.0; the JSON type must match too.
    def check(value: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(f"expected a JSON {'boolean' if kind is bool else 'integer'}")
        return value

    return BeforeValidator(check)


Id = Annotated[int, Strict(), Field(gt=0)]
Text = Annotated[str, Strict()]
NonEmpty = Annotated[str, Strict(), Field(min_length=1)]
Flag = Annotated[bool, Strict()]
Cents = Annotated[int, Strict()]
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
# Strict: from JSON only an ISO 8601 string (lax pydantic would read an integer as a Unix timestamp, and an integer
# here means the upstream is broken); checked in pydantic-core, no Python call per value. Strict types accept only
# strings when validating JSON, so every API payload is validated from JSON text (`parse_record`, `parse_page`).
Timestamp = Annotated[AwareDatetime, Strict()]
Day = Annotated[dt.date, Strict()]
VatRate = Annotated[Literal[0, 9, 21], _exactly(int)]
DispensingCategory = Literal["VRIJ", "URA", "UDA", "UDD"]
# A species as the API names it ("dog", "guinea_pig"); the warehouse maps names it does not know to "other".
Species = Annotated[str, Strict(), Field(pattern=r"^[a-z_]+$")]
AppointmentStatus = Literal["booked", "checked_in", "done", "cancelled", "no_show"]
POSTCODE = r"^[1-9][0-9]{3} ?[A-Z]{2}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
IBAN = r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$"


# ISO 13616 check: letters count as 10..35. One translate per IBAN instead of an int() and a str() per character
# (3.5 -> 1.2 us, once per relation with an IBAN).
_IBAN_LETTER_DIGITS = str.maketrans({ch: str(int(ch, 36)) for ch in string.ascii_letters})


def iban_is_valid(iban: str) -> bool:
    return int((iban[4:] + iban[:4]).translate(_IBAN_LETTER_DIGITS)) % 97 == 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AnimanaRecord(_Model):
    """Fields every live record has. `id` is unique per practice and resource: key on (practice_id, id)."""

    id: Id
    updated_at: Timestamp
    deleted: Annotated[Literal[False], _exactly(bool)] = False

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        """The resource's cross-field rules: raise ValueError when ``fields`` break one (none by default). They
        read the fields as a mapping so that a model and a wire record (`parse_wire_page`) run the same code."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        self.check(self.__dict__)
        return self


class Tombstone(_Model):
    """What a deleted record turns into: the pipeline should soft-delete (practice_id, resource, id)."""

    id: Id
    updated_at: Timestamp
    deleted: Annotated[Literal[True], _exactly(bool)]


class Practice(_Model):
    id: Id
    name: NonEmpty
    city: Text
    country: Text
    timezone: Text


class Staff(AnimanaRecord):
    role: Literal["vet", "nurse", "receptionist"]
    first_name: NonEmpty
    last_name: NonEmpty
    initials: Text | None = None
    email: Annotated[str, Strict(), Field(pattern=EMAIL)] | None = None
    active: Flag
    created_at: Timestamp | None = None


class Resource(AnimanaRecord):
    """A bookable room or piece of equipment."""

    name: NonEmpty
    kind: Literal["room", "equipment"]
    purpose: Text
    active: Flag


class Product(AnimanaRecord):
    """An article of the practice's price list. ``category`` "lab" is a laboratory test (priced like a service,
    reported apart). ``species`` are the species the article is registered or made for (a medicine's target
    species, as on its label); absent, null or empty when the price list does not say — then it is for any."""

    code: NonEmpty
    name: NonEmpty
    category: Literal["service", "lab", "vaccine", "medication", "food", "other"]
    price_cents: Annotated[int, Strict(), Field(ge=0)]
    vat_rate: VatRate
    dispensing_category: DispensingCategory | None = None
    species: list[Species] | None = None
    active: Flag


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


class Animal(AnimanaRecord):
    """A patient. Usually one owner; occasionally two (`relation_ids`)."""

    relation_ids: Annotated[list[Id], Field(min_length=1, max_length=4)]
    name: NonEmpty
    species: Species
    breed: Text | None = None
    gender: Literal["male", "female", "neutered_male", "neutered_female", "unknown"]
    colour: Text | None = None
    chip_number: Annotated[str, Strict(), Field(pattern=r"^[0-9]{15}$")] | None = None
    date_of_birth: Day | None = None
    deceased: Flag
    deceased_on: Day | None = None
    created_at: Timestamp | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        born, died = fields["date_of_birth"], fields["deceased_on"]
        if died is not None and not fields["deceased"]:
            raise ValueError("deceased_on is set but deceased is false")
        if born and died and died < born:
            raise ValueError("deceased_on is before date_of_birth")


class Appointment(AnimanaRecord):
    """An agenda entry, booked on a staff member or a room (`resource_type` + `resource_id`)."""

    type: NonEmpty
    start: Timestamp
    end: Timestamp
    resource_type: Literal["staff", "room"]
    resource_id: Id
    animal_id: Id
    relation_id: Id
    status: AppointmentStatus
    reason: Text | None = None
    booked_at: Timestamp

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["end"] <= fields["start"]:
            raise ValueError("end must be after start")


class Soap(_Model):
    subjective: Text
    objective: Text
    assessment: Text
    plan: Text


class Diagnosis(_Model):
    description: NonEmpty
    venom_code: Annotated[str, Strict(), Field(pattern=r"^[0-9]+$")] | None = None


class Consult(AnimanaRecord):
    appointment_id: Id | None = None
    animal_id: Id
    relation_id: Id | None = None
    vet_id: Id
    date: Timestamp
    reason: Text | None = None
    soap: Soap
    diagnoses: list[Diagnosis]
    weight_kg: Annotated[float, Strict(), Field(gt=0, le=2000, allow_inf_nan=False)] | None = None
    temperature_c: Annotated[float, Strict(), Field(ge=30, le=45, allow_inf_nan=False)] | None = None


class Vaccination(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    vet_id: Id | None = None
    vaccine_code: NonEmpty
    vaccine: NonEmpty
    batch_number: Text | None = None
    given_on: Day
    due_on: Day | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["due_on"] is not None and fields["due_on"] <= fields["given_on"]:
            raise ValueError("due_on must be after given_on")


class Prescription(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    vet_id: Id
    date: Day
    product_code: NonEmpty
    product_name: NonEmpty
    quantity: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
    dispensing_category: DispensingCategory
    instructions: Text | None = None


class LabResult(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    date: Day
    test_code: NonEmpty
    test_name: Text
    value: Number
    unit: Text
    reference_low: Number | None = None
    reference_high: Number | None = None
    flag: Literal["H", "L", "N"] | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        low, high = fields["reference_low"], fields["reference_high"]
        if low is not None and high is not None and low > high:
            raise ValueError("reference_low is above reference_high")


class InvoiceLine(_Model):
    product_id: Id | None = None
    product_code: NonEmpty
    description: Text
    quantity: Annotated[int, Strict()]
    unit_price_cents: Cents
    vat_rate: VatRate
    line_total_cents: Cents
    vat_cents: Cents

    @model_validator(mode="after")
    def _arithmetic(self) -> InvoiceLine:
        if self.line_total_cents != self.quantity * self.unit_price_cents:
            raise ValueError("line_total_cents != quantity * unit_price_cents")
        return self


class Invoice(AnimanaRecord):
    relation_id: Id
    appointment_id: Id | None = None
    date: Day
    number: NonEmpty
    lines: Annotated[list[InvoiceLine], Field(min_length=1)]
    total_excl_vat_cents: Cents
    vat_cents: Cents
    total_cents: Cents

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        # One plain loop for both sums: two generator expressions cost more than the rest of this check.
        excl_vat = vat = 0
        for line in fields["lines"]:  # InvoiceLine models, in a model and in a wire record alike
            excl_vat += line.line_total_cents
            vat += line.vat_cents
        if fields["total_excl_vat_cents"] != excl_vat:
            raise ValueError("total_excl_vat_cents is not the sum of the lines")
        if fields["vat_cents"] != vat:
            raise ValueError("vat_cents is not the sum of the lines")
        if fields["total_cents"] != fields["total_excl_vat_cents"] + fields["vat_cents"]:
            raise ValueError("total_cents != total_excl_vat_cents + vat_cents")


class Payment(AnimanaRecord):
    invoice_id: Id
    relation_id: Id | None = None
    method: Literal["cash", "pin", "transfer"]
    amount_cents: Cents
    date: Day


RESOURCE_MODELS: dict[str, type[AnimanaRecord]] = {
    "relations": Relation,
    "animals": Animal,
    "staff": Staff,
    "resources": Resource,
    "agenda": Appointment,
    "consults": Consult,
    "vaccinations": Vaccination,
    "prescriptions": Prescription,
    "labresults": LabResult,
    "products": Product,
    "invoices": Invoice,
    "payments": Payment,
}
RESOURCES: tuple[str, ...] = tuple(RESOURCE_MODELS)


@dataclass(frozen=True)
class RejectedRecord:
    """A record the API sent that does not validate: kept whole for the quarantine table, with why.

    `raw` is the JSON object as received, or its JSON text when it was not an object. `record_id` and
    `updated_at` are best-effort copies from `raw` (None when absent or malformed).
    """

    practice_id: int
    resource: str
    raw: dict[str, Any] | str
    reason: str
    record_id: int | None = None
    updated_at: str | None = None


Item = AnimanaRecord | Tombstone | RejectedRecord


def _reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(p) for p in error["loc"]) or "record"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def parse_record(practice_id: int, resource: str, raw: Any) -> Item:
    """Validate one record from a page. Never raises for bad data: returns a `RejectedRecord` instead."""
    if not isinstance(raw, dict):
        return RejectedRecord(
            practice_id,
            resource,
            json.dumps(raw, ensure_ascii=False),
            f"record is a JSON {type(raw).__name__}, not an object",
        )
    record_id = raw.get("id") if type(raw.get("id")) is int else None
    updated_at = raw.get("updated_at") if isinstance(raw.get("updated_at"), str) else None
    model: type[AnimanaRecord] | type[Tombstone] = (
        Tombstone if raw.get("deleted") is True else RESOURCE_MODELS[resource]
    )
    try:
        # From JSON text, like the page fast path: the same strict rules, hence the same verdicts and reasons.
        return model.model_validate_json(json.dumps(raw, ensure_ascii=False))
    except ValidationError as exc:
        return RejectedRecord(practice_id, resource, raw, _reason(exc), record_id, updated_at)


class _LivePage(_Model):
    """A page whose every record is live and valid: the common case, validated in one pass from the bytes."""

    data: list[AnimanaRecord]
    next_cursor: Text | None


def _live_page_model(model: type[AnimanaRecord]) -> type[_LivePage]:
    return type(f"{model.__name__}Page", (_LivePage,), {"__annotations__": {"data": list[model]}})


_LIVE_PAGES: dict[str, type[_LivePage]] = {r: _live_page_model(m) for r, m in RESOURCE_MODELS.items()}


def parse_page(resource: str, body: bytes) -> tuple[list[AnimanaRecord], str | None] | None:
    """Validate a whole page of ``resource`` from its JSON bytes in one pass (pydantic-core parses and validates
    without building Python dicts first): the records and ``next_cursor``, or None when any record is not a valid
    live record (a tombstone, a bad record) or the body is not a well-formed page — then the caller parses it
    record by record with `parse_record`, which sorts out tombstones and rejects with their reasons. The fast
    path only ever accepts what `parse_record` would accept: both validate with the same models."""
    try:
        page = _LIVE_PAGES[resource].model_validate_json(body)
    except ValidationError:
        return None
    return page.data, page.next_cursor


# -- wire records: the sync's fast path -------------------------------------------------------------------
WireRecord = dict[str, Any]
"""A live record validated from JSON into a plain dict instead of a model instance: the model's fields (defaults
filled in, nested objects still models), by the same field rules and the same `check`. What the sync maps to rows:
pydantic-core builds that dict anyway, a model instance adds an object and a fields-set per record, and the mapping
reads dict keys faster than model attributes (one medium practice's pages, same process: validating and freeing
them 2.36 -> 2.09 us/record)."""
WireItem = WireRecord | Tombstone | RejectedRecord


def _wire_type(model: type[AnimanaRecord]) -> Any:
    """A TypedDict of ``model``'s fields with their own annotations and constraints, so both validate alike."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        if not info.is_required():
            annotation = NotRequired[Annotated[annotation, Field(default=info.default)]]
        fields[name] = annotation
    record = TypedDict(f"{model.__name__}Wire", fields)  # type: ignore[misc]
    if model.check is AnimanaRecord.check:
        return record

    def check(fields: WireRecord) -> WireRecord:
        model.check(fields)
        return fields

    return Annotated[record, AfterValidator(check)]


def _wire_page_type(model: type[AnimanaRecord]) -> TypeAdapter[Any]:
    fields = {"data": list[_wire_type(model)], "next_cursor": Text | None}  # as `_LivePage`
    return TypeAdapter(TypedDict(f"{model.__name__}WirePage", fields))  # type: ignore[operator]


_WIRE_PAGES: dict[str, TypeAdapter[Any]] = {r: _wire_page_type(m) for r, m in RESOURCE_MODELS.items()}


def parse_wire_page(resource: str, body: bytes) -> tuple[list[WireRecord], str | None] | None:
    """`parse_page`, with the records as `WireRecord` dicts: None exactly when `parse_page` gives None."""
    try:
        page = _WIRE_PAGES[resource].validate_json(body)
    except ValidationError:
        return None
    return page["data"], page["next_cursor"]


def as_wire(item: Item) -> WireItem:
    """A record from `parse_record` as a wire record (tombstones and rejected records stay as they are)."""
    return dict(item.__dict__) if isinstance(item, AnimanaRecord) else item


class Counts(_Model):
    practice_id: Id
    counts: dict[str, Annotated[int, Strict(), Field(ge=0)]]


# -- write payloads ------------------------------------------------------------------------------------
class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppointmentCreate(_Write):
    type: NonEmpty
    start: AwareDatetime
    end: AwareDatetime
    resource_type: Literal["staff", "room"]
    resource_id: Id
    animal_id: Id
    relation_id: Id
    status: AppointmentStatus = "booked"
    reason: str | None = None

    @model_validator(mode="after")
    def _order(self) -> AppointmentCreate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AppointmentUpdate(_Write):
    """Only the fields you set are sent (PATCH semantics)."""

    type: str | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    resource_type: Literal["staff", "room"] | None = None
    resource_id: Id | None = None
    animal_id: Id | None = None
    relation_id: Id | None = None
    status: AppointmentStatus | None = None
    reason: str | None = None


class RelationCreate(_Write):
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


class RelationUpdate(_Write):
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
