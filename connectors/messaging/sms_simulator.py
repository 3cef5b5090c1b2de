"""An SMS gateway simulator: ``POST /messages {id, to, body}`` → 202, idempotent on ``id``; ``GET /messages/{id}``
→ the delivery receipt (``accepted``, ``delivered``, ``failed`` with the error). Served by uvicorn in a thread
(tests, bench) or in the foreground (``vetconnect messages sms-simulator``), like the Animana simulator.

Faults, set over HTTP (``POST /_sim/config``): a ``script`` of faults the next sends meet in order, or a ``rate``
of random ones (seeded): ``5xx`` (refused before storing), ``timeout`` (no answer within the client's timeout,
nothing stored), ``lost`` (stored, then the answer never comes: the client must resend the same id), ``429``
(with ``Retry-After``). Receipts: a number ending in ``0000`` is unreachable (``failed``); others are delivered.
``GET /_sim/messages`` shows every accepted message (when first accepted) with how many times its id was posted; ``handset`` counts
what reached phones — one per id, whatever the retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FAULTS = ("5xx", "timeout", "lost", "429")
UNREACHABLE_SUFFIX = "0000"


@dataclass
class SmsState:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    script: list[str] = field(default_factory=list)
    rate: float = 0.0
    stall_seconds: float = 1.0  # how long a timeout/lost answer stalls: longer than the client's read timeout
    retry_after: int = 1
    random: random.Random = field(default_factory=lambda: random.Random(0))
    posts: int = 0
    faults_injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_fault(self) -> str | None:
        with self.lock:
            if self.script:
                fault = self.script.pop(0)
            elif self.rate and self.random.random() < self.rate:
                fault = self.random.choice(FAULTS)
            else:
                fault = None
            self.faults_injected += fault is not None and fault != "none"
            return None if fault == "none" else fault


def create_app(state: SmsState | None = None) -> Starlette:
    state = state or SmsState()

    async def send(request: Request) -> Response:
        payload = await request.json()
        if not all(isinstance(payload.get(k), str) and payload.get(k) for k in ("id", "to", "body")):
            return JSONResponse({"error": "id, to and body are required"}, status_code=400)
        if not payload["to"].startswith("+") or not payload["to"][1:].isdigit():
            return JSONResponse({"error": f"{payload['to']} is not an E.164 number"}, status_code=422)
        state.posts += 1
        fault = state.next_fault()
        if fault == "5xx":
            return JSONResponse({"error": "gateway overloaded"}, status_code=503)
        if fault == "429":
            return JSONResponse(
                {"error": "too many requests"},
                status_code=429,
                headers={"Retry-After": str(state.retry_after)},
            )
        if fault == "timeout":
            await asyncio.sleep(state.stall_seconds)
            return JSONResponse({"error": "timed out"}, status_code=504)
        with state.lock:
            known = state.messages.get(payload["id"])
            if known is None:
                unreachable = payload["to"].endswith(UNREACHABLE_SUFFIX)
                known = state.messages[payload["id"]] = {
                    "id": payload["id"], "to": payload["to"], "body": payload["body"], "posts": 0,
                    "status": "failed" if unreachable else "delivered",
                    "error": "Number not reachable" if unreachable else None,
                    "accepted_at": dt.datetime.now(dt.UTC).isoformat(),
                }  # fmt: skip
            known["posts"] += 1
        if fault == "lost":
            await asyncio.sleep(state.stall_seconds)
        return JSONResponse({"id": payload["id"], "status": "accepted"}, status_code=202)

    async def receipt(request: Request) -> Response:
        known = state.messages.get(request.path_params["id"])
        if known is None:
            return JSONResponse({"error": "unknown message"}, status_code=404)
        return JSONResponse({"id": known["id"], "status": known["status"], "error": known["error"]})

    async def config(request: Request) -> Response:
        settings = await request.json()
        with state.lock:
            if "script" in settings:
                state.script = list(settings["script"])
            if "rate" in settings:
                state.rate = float(settings["rate"])
            if "seed" in settings:
                state.random = random.Random(settings["seed"])
            if "stall_seconds" in settings:
                state.stall_seconds = float(settings["stall_seconds"])
        return JSONResponse(
            {"script": state.script, "rate": state.rate, "stall_seconds": state.stall_seconds}
        )

    async def messages(request: Request) -> Response:
        return JSONResponse(
            {
                "messages": list(state.messages.values()),
                "posts": state.posts,
                "faults": state.faults_injected,
                "handset": len(state.messages),
            }  # fmt: skip
        )

    app = Starlette(
        routes=[
            Route("/messages", send, methods=["POST"]),
            Route("/messages/{id}", receipt, methods=["GET"]),
            Route("/_sim/config", config, methods=["POST"]),
            Route("/_sim/messages", messages, methods=["GET"]),
        ]
    )
    app.state.sms = state
    return app


@dataclass(frozen=True)
class RunningSmsSimulator:
    base_url: str
    state: SmsState  # the live state, for assertions


@contextlib.contextmanager
def running_sms_simulator(host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSmsSimulator]:
    """Serve the simulator on a free port (or ``port``) in a daemon thread; stop it on exit."""
    app = create_app()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, log_level="warning", access_log=False, lifespan="off")
    )
    sock = socket.create_server((host, port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="sms-simulator"
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the SMS simulator did not start")
        time.sleep(0.01)
    try:
        yield RunningSmsSimulator(f"http://{host}:{sock.getsockname()[1]}", app.state.sms)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve in the foreground until interrupted."""
    uvicorn.run(create_app(), host=host, port=port, log_level="info", lifespan="off")
