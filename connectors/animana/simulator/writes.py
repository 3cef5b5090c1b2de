"""Server-side validation of write requests, returning field errors for a 422, and the fields Animana fills in
itself (a consult's owner, an invoice's number and totals, a prescription's product name).

Deliberately separate from the client's models: if the simulator reused them, a mismatch between what
the client sends and what the API accepts could never show up in tests. The shapes are in `write_models`; the
rules here look across fields and at other records, for a create and an update alike (on the merged record).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from .store import PracticeStore
from .write_models import CREATE_MODELS, PATCH_MODELS

Errors = dict[str, str]


class Conflict(Exception):
    """The write clashes with another record (409): a double booking, an invoice number already used."""


# Fields that name another record: (field, resource it must exist in). The agenda's bookable resource depends on
# its resource_type and is checked by `_agenda`.
REFERENCES: dict[str, tuple[tuple[str, str], ...]] = {
    "agenda": (("animal_id", "animals"), ("relation_id", "relations")),
    "consults": (
        ("appointment_id", "agenda"),
        ("animal_id", "animals"),
        ("relation_id", "relations"),
        ("vet_id", "staff"),
    ),
    "vaccinations": (("animal_id", "animals"), ("consult_id", "consults"), ("vet_id", "staff")),
    "prescriptions": (("animal_id", "animals"), ("consult_id", "consults"), ("vet_id", "staff")),
    "invoices": (("relation_id", "relations"), ("appointment_id", "agenda")),
    "payments": (("invoice_id", "invoices"), ("relation_id", "relations")),
}
ACTIVE_STATUSES = ("booked", "checked_in", "done")


def validate_write(
    store: PracticeStore,
    resource: str,
    body: Any,
    record_id: int | None,
) -> tuple[dict[str, Any] | None, Errors]:
    """Return (changes, {}) when valid, else (None, field errors); raise `Conflict` on a clash.
    Runs under the practice lock so the checks see the same state the write will be applied to."""
    create = record_id is None
    model = CREATE_MODELS[resource] if create else PATCH_MODELS[resource]
    try:  # from JSON text: strict dates and times accept ISO strings there and nothing else
        parsed = model.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        return None, _errors(exc)
    changes = parsed.model_dump(mode="json", exclude_unset=not create)
    errors: Errors = {}
    if not create:
        required = {name for name, info in CREATE_MODELS[resource].model_fields.items() if info.is_required()}
        errors.update(
            {name: "may not be null" for name in required & changes.keys() if changes[name] is None}
        )
    current = {} if create else dict(store.get(resource, record_id) or {})
    if resource == "consults" and not create and "soap" in changes:
        changes["soap"] = {**current.get("soap", {}), **changes["soap"]}
    merged = {**current, **changes}
    for field, target in REFERENCES.get(resource, ()):
        if (create or field in changes) and merged.get(field) is not None:
            if store.get(target, merged[field]) is None:
                errors[field] = f"{target} {merged[field]} does not exist"
    if errors:  # the rules below read the fields these name
        return None, errors
    errors = RULES[resource](store, record_id, changes, merged)
    if errors:
        return None, errors
    if create and resource in ("relations", "animals"):
        changes["created_at"] = store.high_water()
    return changes, {}


def _errors(exc: ValidationError) -> Errors:
    return {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _product(store: PracticeStore, **match: Any) -> dict[str, Any] | None:
    """The live product whose fields equal `match` (a practice has ~100 products: a scan is fine)."""
    for row in store.by_id["products"].values():
        payload = row.payload
        if (
            not row.deleted
            and isinstance(payload, dict)
            and all(payload.get(k) == v for k, v in match.items())
        ):
            return payload
    return None


# -- the rules of each resource: (store, record id or None, changes, merged record) -> field errors ------------
# They may fill in `changes` with what Animana works out itself.
Rule = Callable[[PracticeStore, int | None, dict[str, Any], dict[str, Any]], Errors]


def _relation(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    if changes.get("iban") and not iban_ok(changes["iban"]):
        return {"iban": "invalid IBAN (checksum)"}
    return {}


def _animal(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    errors: Errors = {}
    for owner in changes.get("relation_ids") or ():
        if store.get("relations", owner) is None:
            errors["relation_ids"] = f"relations {owner} does not exist"
    if merged.get("deceased_on") and not merged.get("deceased"):
        errors["deceased_on"] = "deceased_on is set but deceased is false"
    born, died = merged.get("date_of_birth"), merged.get("deceased_on")
    if born and died and died < born:
        errors["deceased_on"] = "deceased_on is before date_of_birth"
    return errors


def _agenda(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    errors: Errors = {}
    start, end = merged.get("start"), merged.get("end")
    if start and end and dt.datetime.fromisoformat(end) <= dt.datetime.fromisoformat(start):
        errors["end"] = "end must be after start"
    if record_id is None or {"resource_type", "resource_id"} & changes.keys():
        target = "staff" if merged.get("resource_type") == "staff" else "resources"
        if store.get(target, merged["resource_id"]) is None:
            errors["resource_id"] = f"{target} {merged['resource_id']} does not exist"
    if errors:
        return errors
    clash = _overlap(store, record_id, merged)
    if clash is not None:
        raise Conflict(f"overlaps appointment {clash} on {merged['resource_type']} {merged['resource_id']}")
    if record_id is None:
        changes.setdefault("booked_at", store.high_water())
    return {}


def _overlap(store: PracticeStore, record_id: int | None, merged: dict[str, Any]) -> int | None:
    """Id of a live appointment on the same resource overlapping `merged`, if any. A linear scan: writes
    are rare next to reads, and even a medium practice has only ~20k appointments."""
    if merged.get("status") not in ACTIVE_STATUSES:
        return None
    start, end = dt.datetime.fromisoformat(merged["start"]), dt.datetime.fromisoformat(merged["end"])
    for row in store.by_id["agenda"].values():
        other = row.payload
        if row.deleted or row.id == record_id or not isinstance(other, dict):
            continue
        if (other.get("resource_type"), other.get("resource_id")) != (
            merged["resource_type"],
            merged["resource_id"],
        ):
            continue
        if other.get("status") not in ACTIVE_STATUSES:
            continue
        if dt.datetime.fromisoformat(other["start"]) < end and start < dt.datetime.fromisoformat(
            other["end"]
        ):
            return row.id
    return None


def _consult(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    if record_id is None and merged.get("relation_id") is None:
        # Animana files a consult under the appointment's client, else the animal's first owner.
        appointment = store.get("agenda", merged["appointment_id"]) if merged.get("appointment_id") else None
        animal = store.get("animals", merged["animal_id"])
        if appointment:
            changes["relation_id"] = appointment["relation_id"]
        elif animal:
            changes["relation_id"] = animal["relation_ids"][0]
    return {}


def _vaccination(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    errors: Errors = {}
    if merged.get("vaccine_code") is None:
        product = _product(store, name=merged.get("vaccine"))
        if product is None:
            errors["vaccine_code"] = "required when the vaccine is not a product of the practice"
        else:
            changes["vaccine_code"] = product["code"]
    given, due = merged.get("given_on"), merged.get("due_on")
    if given and due and due <= given:
        errors["due_on"] = "due_on must be after given_on"
    return errors


def _prescription(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    if record_id is not None and "product_code" not in changes:
        return {}
    product = _product(store, code=merged["product_code"])
    if product is None:
        return {"product_code": f"no product with code {merged['product_code']!r}"}
    if changes.get("product_name") is None:
        changes["product_name"] = product["name"]
    if changes.get("dispensing_category") is None:
        changes["dispensing_category"] = product["dispensing_category"] or "VRIJ"
    return {}


def _invoice(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    errors: Errors = {}
    if "lines" in changes:
        lines = []
        for index, line in enumerate(changes["lines"]):
            product = _product(store, code=line["product_code"])
            if product is None:
                errors[f"lines.{index}.product_code"] = f"no product with code {line['product_code']!r}"
                continue
            total = line["quantity"] * line["unit_price_cents"]
            if line["line_total_cents"] not in (None, total):
                errors[f"lines.{index}.line_total_cents"] = "line_total_cents != quantity * unit_price_cents"
            vat = (
                line["vat_cents"] if line["vat_cents"] is not None else (total * line["vat_rate"] + 50) // 100
            )
            lines.append(
                {
                    "product_id": product["id"],
                    "product_code": line["product_code"],
                    "description": line["description"]
                    if line["description"] is not None
                    else product["name"],
                    "quantity": line["quantity"],
                    "unit_price_cents": line["unit_price_cents"],
                    "vat_rate": line["vat_rate"],
                    "line_total_cents": total,
                    "vat_cents": vat,
                }
            )
        excl = sum(line["line_total_cents"] for line in lines)
        vat_total = sum(line["vat_cents"] for line in lines)
        changes.update(
            lines=lines, total_excl_vat_cents=excl, vat_cents=vat_total, total_cents=excl + vat_total
        )
    if record_id is None and changes.get("number") is None:
        changes["number"] = _next_invoice_number(store, merged["date"])
    elif changes.get("number") is not None:
        for row in store.by_id["invoices"].values():
            other = row.payload
            if not row.deleted and row.id != record_id and isinstance(other, dict):
                if other.get("number") == changes["number"]:
                    raise Conflict(f"invoice number {changes['number']} is already used by invoice {row.id}")
    return errors


def _next_invoice_number(store: PracticeStore, day: str) -> str:
    """The next number of the day's year in the practice's series ``<practice>-<year>-<00001>``."""
    prefix = f"{store.practice_id}-{day[:4]}-"
    used = [
        int(row.payload["number"][len(prefix) :])
        for row in store.by_id["invoices"].values()
        if isinstance(row.payload, dict)
        and str(row.payload.get("number", "")).startswith(prefix)
        and row.payload["number"][len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(used, default=0) + 1:05d}"


def _payment(
    store: PracticeStore, record_id: int | None, changes: dict[str, Any], merged: dict[str, Any]
) -> Errors:
    if merged.get("amount_cents") == 0:
        return {"amount_cents": "a payment of zero is not a payment"}
    if record_id is None and merged.get("relation_id") is None:
        invoice = store.get("invoices", merged["invoice_id"])
        if invoice:
            changes["relation_id"] = invoice["relation_id"]
    return {}


RULES: dict[str, Rule] = {
    "relations": _relation,
    "animals": _animal,
    "agenda": _agenda,
    "consults": _consult,
    "vaccinations": _vaccination,
    "prescriptions": _prescription,
    "invoices": _invoice,
    "payments": _payment,
}
