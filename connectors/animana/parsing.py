"""Validating API payloads against the resources' wire models (`resources.registry.RESOURCE_MODELS`).

A page is first validated whole from its bytes (`parse_page`, or `parse_wire_page` for the sync: one pydantic-core
pass, no Python dicts); only a page holding a tombstone or a bad record is parsed record by record
(`parse_record`), which sorts out tombstones and gives each bad record its reason. Bad data never raises: it
becomes a `RejectedRecord`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from .models import AnimanaRecord, ApiModel, Item, RejectedRecord, Text, Tombstone, WireItem, WireRecord
from .resources.registry import RESOURCE_MODELS


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


class _LivePage(ApiModel):
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


# -- wire records: the sync's fast path (`models.WireRecord`) -----------------------------------------
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
