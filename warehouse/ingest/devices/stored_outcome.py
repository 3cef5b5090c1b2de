"""The parsed outcome of an inbox message, kept with its row (``device_message.parsed_outcome``, JSON).

Why it is kept: a person resolving a message in the device inbox (a dashboard page) must load it as it was
read, and the dashboard may not import the parsers (``connectors``; architecture §1). Reading the raw copy
again with a newer parser is the devices CLI's and the inbox retry job's work; each run stores the outcome
again, so what a person resolves is never older than the last retry.

JSON, not JSONB: PostgreSQL's ``json`` keeps the text as given, so a NUL a device sent (``\\u0000``) is kept;
``jsonb`` refuses it, and the message would be lost with the transaction. Decimals, times and dates are
written as the text their constructors read back exactly (a time with its UTC offset, as the parsers give it;
a zone name would not be kept); bytes as base64. A DICOM file's content is its raw copy (the mapper keeps the
received bytes): then it is written as ``null`` and taken from the row's ``raw``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import types
from decimal import Decimal
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from warehouse.ingest.devices.inputs import DeviceOutcome
from warehouse.ingest.devices.raw import sha256_hex

__all__ = ["decode_outcome", "encode_outcome"]


def encode_outcome(outcome: DeviceOutcome, raw_sha256: str) -> dict[str, Any]:
    """``outcome`` as JSON-able values; an imaging content that is the raw copy (its SHA-256 is the row's
    ``sha256``) is written as ``null``."""
    data = _encode(outcome)
    if outcome.imaging is not None and sha256_hex(outcome.imaging.content) == raw_sha256:
        data["imaging"]["content"] = None
    return data


def decode_outcome(data: dict[str, Any], raw: bytes) -> DeviceOutcome:
    """The outcome ``encode_outcome`` wrote, with ``raw`` as the imaging content where it was left out."""
    outcome = _decode(DeviceOutcome, data)
    if outcome.imaging is not None and outcome.imaging.content is None:
        return dataclasses.replace(outcome, imaging=dataclasses.replace(outcome.imaging, content=raw))
    return outcome


def _encode(value: object) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(kind: Any, value: Any) -> Any:
    """``value`` as the declared type ``kind`` (a field annotation of the input dataclasses)."""
    if value is None:
        return None
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        (kind,) = [a for a in get_args(kind) if a is not type(None)]
        origin = get_origin(kind)
    if origin is tuple:
        return tuple(_decode(get_args(kind)[0], v) for v in value)
    if dataclasses.is_dataclass(kind):
        types_of = _field_types(kind)
        return kind(**{name: _decode(types_of[name], v) for name, v in value.items()})
    if kind is Decimal:
        return Decimal(value)
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is bytes:
        return base64.b64decode(value)
    return value
