"""What every API route of the simulator shares: JSON answers, error answers, and the guarded path a request takes
before its handler runs (faults, auth, rate limit)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from .app import Simulator


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


async def guarded(sim: Simulator, request: Request, handler: Any, *, auth: bool = True) -> Response:
    """Common path for API routes: faults, auth, rate limit, then the handler; slow/truncate after."""
    fault = sim.draw_fault()
    if fault == "error_500":
        return error(500, "internal_error", "Simulated internal server error.")
    if fault == "error_503":
        return error(503, "unavailable", "Simulated maintenance window, try again.")
    client_key = "anonymous"
    if auth:
        client_id, denied = sim.check_token(request)
        if denied is not None:
            return denied
        client_key = client_id or client_key
    wait = sim.rate_limited(client_key)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        return error(
            429,
            "rate_limited",
            f"Rate limit of {sim.config.rate_limit} requests per {sim.config.rate_window:g} s exceeded.",
            {"Retry-After": str(seconds)},
        )
    if fault == "slow":
        await asyncio.sleep(sim.config.slow_seconds)
    response: Response = await handler()
    if fault == "truncate" and 200 <= response.status_code < 300:
        body = bytes(response.body)
        # A valid HTTP response whose JSON stops halfway, as when a proxy cuts a body short.
        return Response(
            body[: max(1, len(body) // 2)], status_code=response.status_code, media_type="application/json"
        )
    return response


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Compact UTF-8 JSON. orjson, because serialising the pages is most of the simulator's CPU and the
    simulator shares the machine with the sync it serves (a 20-practice medium world is 705 MB of pages: stdlib
    json 5.8 s, orjson 1.4 s). Payloads orjson refuses (integers beyond 64 bits, injected by the tests' bad
    records) go through the stdlib, which writes them as the real API would."""
    try:
        body = orjson.dumps(payload)
    except orjson.JSONEncodeError:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)
