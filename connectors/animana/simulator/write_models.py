"""What the simulated API accepts as a write body, per writable resource: the shape and the field rules of a create;
an update (PATCH) takes any subset of the same fields with the same rules (`patch_model`).

Deliberately separate from the client's models (see `writes`). Rules that look at other fields or at other records
(end after start, references, totals) are `writes`' job, so a create and an update share them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
)

POSTCODE = r"^[1-9][0-9]{3} ?[A-Z]{2}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
PHONE = r"^[0-9+() -]{6,20}$"
AgendaStatus = Literal["booked", "checked_in", "done", "cancelled", "no_show"]
Gender = Literal["male", "female", "neutered_male", "neutered_female", "unknown"]
Ref = Annotated[StrictInt, Field(gt=0)]
# Validated from the request's JSON text (`writes`): strict dates and times are ISO strings there, nothing else.
Day = Annotated[dt.date, Strict()]
Moment = Annotated[AwareDatetime, Strict()]
Number = StrictInt | StrictFloat


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RelationWrite(_Strict):
    title: str | None = Field(default=None, max_length=20)
    initials: str | None = Field(default=None, max_length=20)
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str = Field(min_length=1, max_length=120)
    street: str | None = Field(default=None, max_length=120)
    house_number: str | None = Field(default=None, max_length=20)
    postcode: str | None = Field(default=None, pattern=POSTCODE)
    city: str | None = Field(default=None, max_length=80)
    email: str | None = Field(default=None, pattern=EMAIL)
    phone: str | None = Field(default=None, pattern=PHONE)
    iban: str | None = None
    active: StrictBool = True


class AnimalWrite(_Strict):
    relation_ids: list[Ref] = Field(min_length=1, max_length=4)
    name: str = Field(min_length=1, max_length=80)
    species: str = Field(pattern=r"^[a-z_]+$")
    breed: str | None = Field(default=None, max_length=80)
    gender: Gender = "unknown"
    colour: str | None = Field(default=None, max_length=40)
    chip_number: str | None = Field(default=None, pattern=r"^[0-9]{15}$")
    date_of_birth: Day | None = None
    deceased: StrictBool = False
    deceased_on: Day | None = None


class AgendaWrite(_Strict):
    type: str = Field(min_length=1, max_length=40)
    start: Moment
    end: Moment
    resource_type: Literal["staff", "room"]
    resource_id: Ref
    animal_id: Ref
    relation_id: Ref
    status: AgendaStatus = "booked"
    reason: str | None = Field(default=None, max_length=200)


class SoapWrite(_Strict):
    """On an update, the parts sent replace those parts; the others stay (a merge, as a clinician edits one part)."""

    subjective: StrictStr = ""
    objective: StrictStr = ""
    assessment: StrictStr = ""
    plan: StrictStr = ""


class DiagnosisWrite(_Strict):
    description: str = Field(min_length=1, max_length=200)
    venom_code: str | None = Field(default=None, pattern=r"^[0-9]+$")


class ConsultWrite(_Strict):
    appointment_id: Ref | None = None
    animal_id: Ref
    relation_id: Ref | None = None
    vet_id: Ref
    date: Moment
    reason: str | None = Field(default=None, max_length=200)
    soap: SoapWrite = Field(default_factory=SoapWrite)
    diagnoses: list[DiagnosisWrite] = Field(default_factory=list, max_length=20)
    weight_kg: Annotated[Number, Field(gt=0, le=2000)] | None = None
    temperature_c: Annotated[Number, Field(ge=30, le=45)] | None = None


class VaccinationWrite(_Strict):
    animal_id: Ref
    consult_id: Ref | None = None
    vet_id: Ref | None = None
    vaccine_code: str | None = Field(default=None, min_length=1, max_length=20)  # from `vaccine` when absent
    vaccine: str = Field(min_length=1, max_length=120)
    batch_number: str | None = Field(default=None, max_length=64)
    given_on: Day
    due_on: Day | None = None


class PrescriptionWrite(_Strict):
    animal_id: Ref
    consult_id: Ref | None = None
    vet_id: Ref
    date: Day
    product_code: str = Field(min_length=1, max_length=20)
    product_name: str | None = Field(default=None, min_length=1, max_length=200)  # the product's when absent
    quantity: Annotated[Number, Field(gt=0, le=100_000)]
    dispensing_category: Literal["VRIJ", "URA", "UDA", "UDD"] | None = None  # the product's when absent
    instructions: str | None = Field(default=None, max_length=2000)


class InvoiceLineWrite(_Strict):
    """`line_total_cents` and `vat_cents` are worked out when absent; when sent they must add up."""

    product_code: str = Field(min_length=1, max_length=20)
    description: StrictStr | None = None  # the product's name when absent
    quantity: StrictInt
    unit_price_cents: StrictInt
    vat_rate: Literal[0, 9, 21]
    line_total_cents: StrictInt | None = None
    vat_cents: StrictInt | None = None


class InvoiceWrite(_Strict):
    relation_id: Ref
    appointment_id: Ref | None = None
    date: Day
    number: str | None = Field(default=None, min_length=1, max_length=40)  # the next in the year's series
    lines: list[InvoiceLineWrite] = Field(min_length=1, max_length=200)


class PaymentWrite(_Strict):
    invoice_id: Ref
    relation_id: Ref | None = None  # the invoice's when absent
    method: Literal["cash", "pin", "transfer"]
    amount_cents: StrictInt
    date: Day


CREATE_MODELS: dict[str, type[_Strict]] = {
    "relations": RelationWrite,
    "animals": AnimalWrite,
    "agenda": AgendaWrite,
    "consults": ConsultWrite,
    "vaccinations": VaccinationWrite,
    "prescriptions": PrescriptionWrite,
    "invoices": InvoiceWrite,
    "payments": PaymentWrite,
}


def patch_model(model: type[_Strict]) -> type[_Strict]:
    """The same fields and rules, every one optional. A required field sent as null is refused by `writes`,
    which knows which fields were sent."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        constrained = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        fields[name] = (constrained | None, None)
    patch: type[_Strict] = create_model(f"{model.__name__}Patch", __base__=_Strict, **fields)
    return patch


PATCH_MODELS: dict[str, type[_Strict]] = {name: patch_model(model) for name, model in CREATE_MODELS.items()}
WRITABLE: tuple[str, ...] = tuple(CREATE_MODELS)
