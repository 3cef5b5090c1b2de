"""The Animana simulator as a Starlette app: OAuth2 client-credentials, cursor pagination, updated_since,
writes (`write_routes`), and configurable misbehaviour (5xx, slow pages, truncated JSON, 429 + Retry-After, token
expiry; for writes also lost answers, refusals and an Animana user editing the records just written).

Faults default to off; tests and demos switch them on through `SimulatorConfig` or `POST /_sim/config`.
The `/_sim/*` admin routes exist only in the simulator (the real API has no such thing) and take no auth.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.animana.resources.registry import RESOURCE_ORDER

from .clock import ts
from .config import DEFAULT_ANCHOR, SCALES, GeneratorConfig
from .routing import error, guarded, json_response
from .store import Operation, PracticeCache, decode_cursor, replay
from .write_routes import etag, write_routes

# What /_sim/mutate may be asked to change, by how many records.
MUTATE_COUNTS = ("edits", "cancellations", "deletions", "shift_changes", "reminder_changes")
FAULT_KINDS = ("error_500", "error_503", "slow", "truncate")
# Probabilities that apply to writes only (see `write_routes`).
WRITE_FAULTS = ("response_lost", "refuse_writes", "concurrent_edits")


@dataclass
class SimulatorConfig:
    seed: int = 42
    practices: int = 3
    scale: str = "small"
    history_years: float = 3.0
    anchor: dt.datetime = DEFAULT_ANCHOR
    client_id: str = "vetconnect-sim"
    client_secret: str = field(default_factory=lambda: "sim-" + secrets.token_urlsafe(18))
    token_ttl: float = 3600.0  # seconds
    faults: float = 0.0  # probability that a request misbehaves
    fault_kinds: tuple[str, ...] = FAULT_KINDS  # which misbehaviours to draw from, uniformly
    slow_seconds: float = 0.5
    rate_limit: int = 0  # requests per rate_window per client; 0 = unlimited
    rate_window: float = 60.0
    max_page_size: int = 500
    default_page_size: int = 100
    cache_practices: int = 4  # generated practices kept in memory (~100 MB each at medium)
    fault_seed: int | None = None
    response_lost: float = 0.0  # a write commits, then its answer is lost (502 without a body)
    refuse_writes: float = 0.0  # a valid write is refused: 422 on one of its fields, or 409
    concurrent_edits: float = 0.0  # right after a write, an Animana user edits the same record

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose one of {sorted(SCALES)}")
        for name in ("faults", *WRITE_FAULTS):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        unknown = set(self.fault_kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")

    # Settings that may change while the server runs (POST /_sim/config).
    RUNTIME: ClassVar[tuple[str, ...]] = (
        "token_ttl",
        "faults",
        "fault_kinds",
        "slow_seconds",
        "rate_limit",
        "rate_window",
        "max_page_size",
        *WRITE_FAULTS,
    )

    def public(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "client_secret"}
        data["anchor"] = ts(self.anchor)
        data["fault_kinds"] = list(self.fault_kinds)
        return data


class Simulator:
    """State behind the app: practices, tokens, rate-limit windows, fault dice, counters."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.cache = PracticeCache(
            GeneratorConfig(
                seed=config.seed, scale=config.scale, history_years=config.history_years, anchor=config.anchor
            ),
            config.practices,
            config.cache_practices,
        )
        self._tokens: dict[str, tuple[str, float]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._dice = random.Random(config.fault_seed)
        self.stats: dict[str, int] = {
            "requests": 0,
            "tokens": 0,
            "rate_limited": 0,
            "unauthorized": 0,
            **dict.fromkeys(FAULT_KINDS, 0),
            # writes: applied, answered again from an idempotency key, refused on a stale If-Match, and the
            # write faults (refused, answer lost, concurrent edits made)
            "writes": 0,
            "idempotent_replays": 0,
            "precondition_failed": 0,
            "response_lost": 0,
            "refused": 0,
            "concurrent_edits": 0,
        }

    # -- auth ----------------------------------------------------------------------------------------
    def issue_token(self, client_id: str) -> tuple[str, float]:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (client_id, time.monotonic() + self.config.token_ttl)
            self.stats["tokens"] += 1
        return token, self.config.token_ttl

    def check_token(self, request: Request) -> tuple[str | None, JSONResponse | None]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, self._unauthorized("missing_token", "Send 'Authorization: Bearer <token>'.")
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None:
            return None, self._unauthorized("invalid_token", "The access token is not known.")
        client_id, expires = entry
        if time.monotonic() >= expires:
            return client_id, self._unauthorized(
                "token_expired", "The access token has expired; request a new one at /oauth/token."
            )
        return client_id, None

    def _unauthorized(self, code: str, message: str) -> JSONResponse:
        with self._lock:
            self.stats["unauthorized"] += 1
        return error(401, code, message, {"WWW-Authenticate": f'Bearer error="{code}"'})

    def issued_tokens(self) -> list[str]:
        """For tests that assert no token ever leaks into logs or error messages."""
        with self._lock:
            return list(self._tokens)

    def expire_tokens(self) -> int:
        with self._lock:
            for token, (client_id, _) in self._tokens.items():
                self._tokens[token] = (client_id, 0.0)
            return len(self._tokens)

    # -- limits and faults ---------------------------------------------------------------------------
    def rate_limited(self, key: str) -> float | None:
        """Sliding window: returns seconds until a slot frees, or None when the request may pass."""
        limit, window = self.config.rate_limit, self.config.rate_window
        if limit <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._windows.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                self.stats["rate_limited"] += 1
                return hits[0] + window - now
            hits.append(now)
        return None

    def draw_fault(self) -> str | None:
        with self._lock:
            self.stats["requests"] += 1
            if self.config.faults <= 0 or self._dice.random() >= self.config.faults:
                return None
            kind = self._dice.choice(list(self.config.fault_kinds))
            self.stats[kind] += 1
            return kind

    def roll(self, setting: str) -> bool:
        """True with the probability the config's `setting` (one of WRITE_FAULTS) gives, from the fault dice."""
        with self._lock:
            return self._dice.random() < getattr(self.config, setting)

    def draw_seed(self) -> int:
        """A seed from the fault dice, for a fault that needs several draws of its own (which field, what value)."""
        with self._lock:
            return self._dice.getrandbits(32)

    def count(self, stat: str) -> None:
        with self._lock:
            self.stats[stat] += 1


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    sim = Simulator(config or SimulatorConfig())

    async def token(request: Request) -> Response:
        async def handle() -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
            if form.get("grant_type") != "client_credentials":
                return error(
                    400, "unsupported_grant_type", "Only grant_type=client_credentials is supported."
                )
            ok = secrets.compare_digest(
                form.get("client_id", ""), sim.config.client_id
            ) and secrets.compare_digest(form.get("client_secret", ""), sim.config.client_secret)
            if not ok:
                return error(401, "invalid_client", "Unknown client or wrong secret.")
            access, ttl = sim.issue_token(form["client_id"])
            return json_response({"access_token": access, "token_type": "Bearer", "expires_in": ttl})

        return await guarded(sim, request, handle, auth=False)

    def practice_or_404(request: Request) -> int | Response:
        pid = request.path_params["pid"]
        if pid not in sim.cache:
            return error(404, "not_found", f"Practice {pid} does not exist.")
        return pid

    async def practices(request: Request) -> Response:
        async def handle() -> Response:
            return json_response({"data": sim.cache.practices(), "next_cursor": None})

        return await guarded(sim, request, handle)

    async def counts(request: Request) -> Response:
        async def handle() -> Response:
            pid = practice_or_404(request)
            if isinstance(pid, Response):
                return pid
            totals = await run_in_threadpool(sim.cache.run, pid, lambda s: s.counts())
            return json_response({"practice_id": pid, "counts": totals})

        return await guarded(sim, request, handle)

    async def listing(request: Request) -> Response:
        async def handle() -> Response:
            pid = practice_or_404(request)
            if isinstance(pid, Response):
                return pid
            resource = request.path_params["resource"]
            if resource not in RESOURCE_ORDER:
                return error(404, "not_found", f"Unknown resource {resource!r}.")
            query = request.query_params
            try:
                limit = int(query.get("limit", sim.config.default_page_size))
            except ValueError:
                return error(400, "bad_request", "limit must be an integer")
            if limit < 1:
                return error(400, "bad_request", "limit must be at least 1")
            limit = min(limit, sim.config.max_page_size)  # larger requests are capped, not refused
            since = None
            if "updated_since" in query:
                try:
                    parsed = dt.datetime.fromisoformat(query["updated_since"])
                except ValueError:
                    return error(400, "bad_request", "updated_since must be an ISO 8601 timestamp")
                if parsed.tzinfo is None:
                    return error(400, "bad_request", "updated_since must include a timezone offset")
                since = ts(parsed)
            cursor = None
            if query.get("cursor"):
                try:
                    cursor = decode_cursor(query["cursor"])
                except ValueError:
                    return error(400, "bad_request", "invalid cursor")
            data, next_cursor = await run_in_threadpool(
                sim.cache.run,
                pid,
                lambda s: s.page(resource, updated_since=since, cursor=cursor, limit=limit),
            )
            return json_response({"data": data, "next_cursor": next_cursor})

        return await guarded(sim, request, handle)

    async def single(request: Request) -> Response:
        async def handle() -> Response:
            pid = practice_or_404(request)
            if isinstance(pid, Response):
                return pid
            resource, rid = request.path_params["resource"], request.path_params["rid"]
            if resource not in RESOURCE_ORDER:
                return error(404, "not_found", f"Unknown resource {resource!r}.")
            record = await run_in_threadpool(sim.cache.run, pid, lambda s: s.get(resource, rid))
            if record is None:
                return error(404, "not_found", f"{resource} {rid} does not exist in practice {pid}.")
            return json_response(record, headers=etag(record))

        return await guarded(sim, request, handle)

    # -- simulator admin -----------------------------------------------------------------------------
    async def admin_mutate(request: Request) -> Response:
        body = await request.json()
        pid = body.get("practice")
        if pid not in sim.cache:
            return error(404, "not_found", f"Practice {pid} does not exist.")
        args = {k: int(body.get(k, 0)) for k in (*MUTATE_COUNTS, "seed")}
        op = Operation("mutate", (args,))
        result = await run_in_threadpool(sim.cache.run, pid, lambda s: replay(s, op), op)
        return json_response(result)

    async def admin_inject(request: Request) -> Response:
        body = await request.json()
        pid, resource = body.get("practice"), body.get("resource")
        if pid not in sim.cache or resource not in RESOURCE_ORDER:
            return error(404, "not_found", "unknown practice or resource")
        op = Operation("inject", (resource, list(body.get("records", []))))
        before, ids = await run_in_threadpool(
            sim.cache.run, pid, lambda s: (s.high_water(), replay(s, op)), op
        )
        return json_response({"ids": ids, "high_water_before": before})

    async def admin_config(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            unknown = set(body) - set(SimulatorConfig.RUNTIME)
            if unknown:
                return error(
                    422,
                    "validation_error",
                    "not a runtime setting",
                    fields=dict.fromkeys(sorted(unknown), "unknown or not changeable at runtime"),
                )
            updated = {**asdict(sim.config), **body}
            updated["fault_kinds"] = tuple(updated["fault_kinds"])
            try:
                sim.config = SimulatorConfig(**updated)
            except (TypeError, ValueError) as exc:
                return error(422, "validation_error", str(exc))
        return json_response(sim.config.public())

    async def admin_expire(request: Request) -> Response:
        return json_response({"expired": sim.expire_tokens()})

    async def admin_stats(request: Request) -> Response:
        return json_response(
            {**sim.stats, "cached_practices": sim.cache.cached(), "generations": sim.cache.generations}
        )

    routes = [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/v1/practices", practices, methods=["GET"]),
        Route("/v1/practices/{pid:int}/counts", counts, methods=["GET"]),
        Route("/v1/practices/{pid:int}/{resource:str}", listing, methods=["GET"]),
        Route("/v1/practices/{pid:int}/{resource:str}/{rid:int}", single, methods=["GET"]),
        Route("/_sim/mutate", admin_mutate, methods=["POST"]),
        Route("/_sim/inject", admin_inject, methods=["POST"]),
        Route("/_sim/config", admin_config, methods=["GET", "POST"]),
        Route("/_sim/expire_tokens", admin_expire, methods=["POST"]),
        Route("/_sim/stats", admin_stats, methods=["GET"]),
        *write_routes(sim),
    ]
    app = Starlette(routes=routes)
    app.state.simulator = sim
    return app
