"""Writes to the Animana API, and the strict validation of the objects it answers with.

Every write carries the caller's `Idempotency-Key`, the same on every retry, so a write whose answer was lost
(a 502, a dropped connection, a truncated body: all retried like a 5xx) is applied once and the retry gets the
first answer. `If-Match` makes an update or delete conditional on the version the caller last saw; a stale
version is a `PreconditionFailed` carrying the record as it is now.
"""

from __future__ import annotations

import json as json_text
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import AnimanaError
from .transport import RetryPolicy, Transport

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class WriteAnswer:
    """What Animana answered to a write: the record in its wire shape (for a delete, its tombstone
    ``{"id", "updated_at", "deleted": true}``) and its version (the ETag: the record's `updated_at`), which is
    the If-Match of the next write to it."""

    record: dict[str, Any]
    version: str


def send_write(
    transport: Transport,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    idempotency_key: str,
    if_match: str | None = None,
    retry: RetryPolicy | None = None,
) -> WriteAnswer:
    headers = {"Idempotency-Key": idempotency_key}
    if if_match is not None:
        headers["If-Match"] = f'"{if_match}"'
    response, record = transport.call(
        method, path, json=body, headers=headers, retry=retry, expect=_expect_record
    )
    etag = response.headers.get("etag", "").removeprefix("W/").strip('"')
    return WriteAnswer(record, etag or record["updated_at"])


def _expect_record(body: Any) -> str | None:
    if (
        not isinstance(body, dict)
        or type(body.get("id")) is not int
        or not isinstance(body.get("updated_at"), str)
    ):
        return "expected a record with an integer id and an updated_at"
    return None


def parse_answer(model: type[M], raw: Any, what: str) -> M:
    """`raw` (decoded JSON) as a `model`; an `AnimanaError` naming `what` and the invalid fields otherwise."""
    try:  # from JSON text: the payload models' strict date/time types accept only ISO strings there
        return model.model_validate_json(json_text.dumps(raw, ensure_ascii=False))
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise AnimanaError(f"unexpected {what} payload: {reason}") from None
