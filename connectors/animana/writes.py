"""Writes to the Animana API, and the strict validation of the objects it answers with.

Every write carries an `Idempotency-Key`, the same on every retry of one call, so a retried POST/PATCH is
applied once.
"""

from __future__ import annotations

import json as json_text
import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import AnimanaError
from .transport import Transport

M = TypeVar("M", bound=BaseModel)


def write(transport: Transport, method: str, path: str, payload: BaseModel, model: type[M]) -> M:
    """POST `payload`, or PATCH the fields set on it, and return the answer as a `model`."""
    body = payload.model_dump(mode="json", exclude_unset=method == "PATCH")
    # Same key on every retry of this call: the server applies the write once.
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    _, answer = transport.call(method, path, json=body, headers=headers)
    return parse_answer(model, answer, path)


def parse_answer(model: type[M], raw: Any, what: str) -> M:
    """`raw` (decoded JSON) as a `model`; an `AnimanaError` naming `what` and the invalid fields otherwise."""
    try:  # from JSON text: the payload models' strict date/time types accept only ISO strings there
        return model.model_validate_json(json_text.dumps(raw, ensure_ascii=False))
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise AnimanaError(f"unexpected {what} payload: {reason}") from None
