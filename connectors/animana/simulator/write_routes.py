"""The write side of the simulated API: create (POST), update (PATCH) and delete (DELETE) of the writable
resources, with versions, conditional writes, idempotency keys and the write faults.

- A record's `updated_at` is its version: GET of one record and every write answer carry ``ETag: "<updated_at>"``.
  PATCH and DELETE with ``If-Match`` (quoted or bare, ``*`` = any) not equal to the current version are refused with
  412 ``{"error": "precondition_failed", "current": <record>}``; without If-Match the write goes ahead.
- ``Idempotency-Key``: the first answer to a key is kept per practice (journaled with the write, so it survives
  eviction); the same key again gets that answer and status and changes nothing. The same key for a different
  write (method, resource, id or body) is refused with 422 ``idempotency_key_reused``. As with Stripe, refusals
  are not kept: a refused write retried with its key is judged afresh.
- DELETE leaves a tombstone (``{"id", "updated_at", "deleted": true}``), as the listing shows deletions.
- Faults (`SimulatorConfig`, changeable at runtime): ``refuse_writes`` refuses a valid write (422 on one of the
  fields it sent, or 409), ``response_lost`` commits the write and then answers 502 without the answer, and
  ``concurrent_edits`` has an Animana user edit the record just written (`editor`). The 5xx, slow, truncate and
  429 faults apply as to any request (`routing.guarded`).
- ``POST /_sim/edit`` edits a record as an Animana user would; ``GET /_sim/edits?practice=`` lists those edits and
  the concurrent editor's, so tests can compare the conflicts VetConnect records with the overlapping edits made.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.animana.resources.registry import RESOURCE_ORDER

from .editor import apply_edit, random_edit
from .routing import error, guarded, json_response
from .store import Operation, PracticeStore, replay
from .write_models import WRITABLE
from .writes import Conflict, validate_write

if TYPE_CHECKING:
    from .app import Simulator

# What a lost answer looks like: a proxy's error page instead of the API's JSON.
LOST_ANSWER = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def etag(record: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{record["updated_at"]}"'}


def _version(if_match: str) -> str:
    value = if_match.strip()
    value = value.removeprefix("W/")
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


@dataclass(frozen=True)
class WriteRequest:
    practice_id: int
    method: str  # POST, PATCH or DELETE
    resource: str
    record_id: int | None
    body: Any  # the decoded JSON body; None for DELETE
    key: str | None
    if_match: str | None

    @property
    def fingerprint(self) -> str:
        return json.dumps([self.method, self.resource, self.record_id, self.body], sort_keys=True)


def apply_write(sim: Simulator, store: PracticeStore, request: WriteRequest) -> Response:
    """Judge and apply one write under the practice's lock; journal it when it happened."""
    resource, rid = request.resource, request.record_id
    if request.key:
        first = store.idempotency.get(request.key)
        if first is not None:
            if first.request != request.fingerprint:
                return error(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request.",
                    fields={"Idempotency-Key": "already used for a different request"},
                )
            sim.count("idempotent_replays")
            return json_response(first.record, first.status, etag(first.record))
    if rid is not None:
        current = store.get(resource, rid)
        if current is None:
            return error(
                404, "not_found", f"{resource} {rid} does not exist in practice {request.practice_id}."
            )
        if request.if_match is not None and _version(request.if_match) not in ("*", current["updated_at"]):
            sim.count("precondition_failed")
            return error(
                412,
                "precondition_failed",
                f"{resource} {rid} is at version {current['updated_at']}, not {_version(request.if_match)}.",
                etag(current),
                current=current,
            )
    changes: dict[str, Any] | None = None
    if request.method != "DELETE":
        try:
            changes, errors = validate_write(store, resource, request.body, rid)
        except Conflict as exc:
            return error(409, "conflict", str(exc))
        if changes is None:
            return error(422, "validation_error", "The request has invalid fields.", fields=errors)
    if sim.roll("refuse_writes"):
        sim.count("refused")
        return _refusal(sim, request)
    if request.method == "POST":
        op, status = Operation("insert", (resource, changes, request.key, request.fingerprint)), 201
    elif request.method == "PATCH":
        op, status = Operation("update", (resource, rid, changes, request.key, request.fingerprint)), 200
    else:
        op, status = Operation("delete", (resource, rid, request.key, request.fingerprint)), 200
    record = replay(store, op)
    # Journal only writes that happened (still under the lock), so a replay is exact.
    sim.cache.journal(request.practice_id, op)
    sim.count("writes")
    if request.method != "DELETE" and sim.roll("concurrent_edits"):
        # The user's edit lands after the write's answer was made: the caller's version is stale at once.
        edit = random_edit(random.Random(sim.draw_seed()), resource, record)
        if edit:
            apply_edit(sim.cache, store, resource, record["id"], edit, "concurrent")
            sim.count("concurrent_edits")
    if sim.roll("response_lost"):
        sim.count("response_lost")
        return Response(LOST_ANSWER, status_code=502, media_type="text/html")
    return json_response(record, status, etag(record))


def _refusal(sim: Simulator, request: WriteRequest) -> Response:
    """409, or 422 on one of the fields the request sent, chosen by the fault dice."""
    rng = random.Random(sim.draw_seed())
    fields = sorted(request.body) if isinstance(request.body, dict) else []
    if not fields or rng.random() < 0.5:
        return error(409, "conflict", f"Animana refused the change to {request.resource} (simulated).")
    field = rng.choice(fields)
    return error(
        422,
        "validation_error",
        "The request has invalid fields.",
        fields={field: "refused by Animana (simulated)"},
    )


def write_routes(sim: Simulator) -> list[Route]:
    async def write(request: Request) -> Response:
        async def handle() -> Response:
            pid, resource = request.path_params["pid"], request.path_params["resource"]
            if pid not in sim.cache:
                return error(404, "not_found", f"Practice {pid} does not exist.")
            if resource not in RESOURCE_ORDER:
                return error(404, "not_found", f"Unknown resource {resource!r}.")
            if resource not in WRITABLE:
                return error(405, "method_not_allowed", f"{resource} is read-only.")
            body = None
            if request.method != "DELETE":
                try:
                    body = json.loads(await request.body())
                except ValueError:
                    return error(400, "bad_request", "body must be JSON")
            write_request = WriteRequest(
                pid,
                request.method,
                resource,
                request.path_params.get("rid"),
                body,
                request.headers.get("idempotency-key"),
                request.headers.get("if-match"),
            )
            return await run_in_threadpool(
                sim.cache.run, pid, lambda store: apply_write(sim, store, write_request)
            )

        return await guarded(sim, request, handle)

    async def admin_edit(request: Request) -> Response:
        body = await request.json()
        pid, resource, rid = body.get("practice"), body.get("resource"), body.get("id")
        if pid not in sim.cache or resource not in WRITABLE:
            return error(404, "not_found", "unknown practice or writable resource")

        def edit(store: PracticeStore) -> Response:
            if store.get(resource, rid) is None:
                return error(404, "not_found", f"{resource} {rid} does not exist in practice {pid}.")
            try:  # an Animana user's edit obeys the same rules as an API write
                changes, errors = validate_write(store, resource, body.get("fields", {}), rid)
            except Conflict as exc:
                return error(409, "conflict", str(exc))
            if changes is None:
                return error(422, "validation_error", "The edit has invalid fields.", fields=errors)
            record = apply_edit(sim.cache, store, resource, rid, changes, "admin")
            return json_response(record, headers=etag(record))

        return await run_in_threadpool(sim.cache.run, pid, edit)

    async def admin_edits(request: Request) -> Response:
        try:
            pid = int(request.query_params.get("practice", ""))
        except ValueError:
            return error(400, "bad_request", "practice must be an integer")
        if pid not in sim.cache:
            return error(404, "not_found", f"Practice {pid} does not exist.")
        edits = await run_in_threadpool(sim.cache.run, pid, lambda store: list(store.edits))
        return json_response({"practice": pid, "edits": edits})

    path = "/v1/practices/{pid:int}/{resource:str}"
    return [
        Route(path, write, methods=["POST"]),
        Route(path + "/{rid:int}", write, methods=["PATCH", "DELETE"]),
        Route("/_sim/edit", admin_edit, methods=["POST"]),
        Route("/_sim/edits", admin_edits, methods=["GET"]),
    ]
