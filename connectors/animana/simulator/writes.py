"""Server-side validation of write requests (agenda and relations), returning field errors for a 422.

Deliberately separate from the client's models: if the simulator reused them, a mismatch between what
the client sends and what the API accepts could never show up in tests.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from .store import PracticeStore

POSTCODE = r"^[1-9][0-9]{3} ?[A-Z]{2}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
AgendaStatus = Literal["booked", "checked_in", "done", "cancelled", "no_show"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AgendaCreate(_Strict):
    type: str = Field(min_length=1, max_length=40)
    start: AwareDatetime
    end: AwareDatetime
    resource_type: Literal["staff", "room"]
    resource_id: StrictInt
    animal_id: StrictInt
    relation_id: StrictInt
    status: AgendaStatus = "booked"
    reason: str | None = Field(default=None, max_length=200)


class AgendaPatch(_Strict):
    type: str | None = Field(default=None, min_length=1, max_length=40)
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    resource_type: Literal["staff", "room"] | None = None
    resource_id: StrictInt | None = None
    animal_id: StrictInt | None = None
    relation_id: StrictInt | None = None
    status: AgendaStatus | None = None
    reason: str | None = Field(default=None, max_length=200)


class RelationCreate(_Strict):
    title: str | None = Field(default=None, max_length=20)
    initials: str | None = Field(default=None, max_length=20)
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str = Field(min_length=1, max_length=120)
    street: str | None = Field(default=None, max_length=120)
    house_number: str | None = Field(default=None, max_length=20)
    postcode: str | None = Field(default=None, pattern=POSTCODE)
    city: str | None = Field(default=None, max_length=80)
    email: str | None = Field(default=None, pattern=EMAIL)
    phone: str | None = Field(default=None, pattern=r"^[0-9+() -]{6,20}$")
    iban: str | None = None
    active: StrictBool = True


class RelationPatch(_Strict):
    title: str | None = Field(default=None, max_length=20)
    initials: str | None = Field(default=None, max_length=20)
    first_name: str | None = Field(default=None, max_length=80)
    last_name: str | None = Field(default=None, min_length=1, max_length=120)
    street: str | None = Field(default=None, max_length=120)
    house_number: str | None = Field(default=None, max_length=20)
    postcode: str | None = Field(default=None, pattern=POSTCODE)
    city: str | None = Field(default=None, max_length=80)
    email: str | None = Field(default=None, pattern=EMAIL)
    phone: str | None = Field(default=None, pattern=r"^[0-9+() -]{6,20}$")
    iban: str | None = None
    active: StrictBool | None = None


class Conflict(Exception):
    """The write would double-book a staff member or room (409)."""


ACTIVE_STATUSES = ("booked", "checked_in", "done")


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


def iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in err["loc"]) or "body": err["msg"] for err in exc.errors()}


def validate_write(
    store: PracticeStore,
    resource: str,
    body: Any,
    record_id: int | None,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Return (changes, {}) when valid, else (None, field errors); raise `Conflict` on a double booking.
    Runs under the practice lock so the checks see the same state the write will be applied to."""
    if not isinstance(body, dict):
        return None, {"body": "expected a JSON object"}
    create = record_id is None
    model = {
        ("agenda", True): AgendaCreate,
        ("agenda", False): AgendaPatch,
        ("relations", True): RelationCreate,
        ("relations", False): RelationPatch,
    }[(resource, create)]
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        return None, _errors(exc)
    changes = parsed.model_dump(mode="json", exclude_unset=not create)
    errors: dict[str, str] = {}
    current = {} if create else dict(store.get(resource, record_id) or {})
    merged = {**current, **changes}
    if resource == "agenda":
        start, end = merged.get("start"), merged.get("end")
        if start and end and dt.datetime.fromisoformat(end) <= dt.datetime.fromisoformat(start):
            errors["end"] = "end must be after start"
        refs = [
            ("animal_id", "animals"),
            ("relation_id", "relations"),
            ("resource_id", "staff" if merged.get("resource_type") == "staff" else "resources"),
        ]
        for field, target in refs:
            if field in changes or create:
                if store.get(target, merged[field]) is None:
                    errors[field] = f"{target} {merged[field]} does not exist"
        if not errors:
            clash = _overlap(store, record_id, merged)
            if clash is not None:
                raise Conflict(
                    f"overlaps appointment {clash} on {merged['resource_type']} {merged['resource_id']}"
                )
        if create:
            changes.setdefault("booked_at", store.high_water())
    else:
        if changes.get("iban") and not iban_ok(changes["iban"]):
            errors["iban"] = "invalid IBAN (checksum)"
        if create:
            changes["created_at"] = store.high_water()
    return (None, errors) if errors else (changes, {})
