"""``GET /health`` and ``GET /metrics`` (Prometheus text format), served beside the Streamlit app by
``dashboard/asgi.py``.

``/health`` answers anyone with the overall status only (``{"status": "ok"}``; 503 when a check fails), so a load
balancer or uptime monitor needs neither parsing nor a secret; with ``Authorization: Bearer <token>``
(``VETCONNECT_METRICS_TOKEN``) it adds every check's value, threshold and detail. ``/metrics`` needs the token:
the checks name practices, queue depths and what failed, which is for the operator, not the internet. Without a
configured token ``/metrics`` is closed (403, saying which setting opens it) — never open by default.

Both read one cached run (``HealthCollector``): a scrape and a health probe at the same moment cost one run.
Neither shows a client or a record; they name practices by code and count queues."""

from __future__ import annotations

import hmac
from enum import Enum, auto

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dashboard.runtime import health_sources, metrics_token
from warehouse.health.checks import Status
from warehouse.health.metrics import HealthCollector, registry_for
from warehouse.health.report import HealthReport, run_health

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vetconnect"'}
NOT_CONFIGURED = (
    "metrics are closed: set VETCONNECT_METRICS_TOKEN on the server and send it as a bearer token\n"
)


class Caller(Enum):
    ANONYMOUS = auto()  # no Authorization header
    AUTHORIZED = auto()  # the configured bearer token
    REFUSED = auto()  # any other Authorization (or any at all when no token is configured)


def _run() -> HealthReport:
    return run_health(health_sources())


collector = HealthCollector(_run)
_registry = registry_for(collector)


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        return Caller.ANONYMOUS
    scheme, _, given = header.partition(" ")
    expected = metrics_token()
    if expected is None or scheme.lower() != "bearer":
        return Caller.REFUSED
    # Constant time: the comparison must not tell an attacker how many leading characters were right.
    same = hmac.compare_digest(given.strip().encode(), expected.encode())
    return Caller.AUTHORIZED if same else Caller.REFUSED


def _unauthorized() -> Response:
    return PlainTextResponse("a valid bearer token is required\n", status_code=401, headers=CHALLENGE)


# Plain functions: Starlette runs them in its thread pool, so the checks' blocking I/O never stalls the loop.
def health(request: Request) -> Response:
    caller = _caller(request)
    if caller is Caller.REFUSED:
        return _unauthorized()  # a wrong token is an error to see, not a quiet fall-back to the short answer
    report = collector.report()
    body = report.as_json() if caller is Caller.AUTHORIZED else {"status": report.status.label}
    return JSONResponse(
        body,
        status_code=503 if report.status is Status.FAIL else 200,
        headers={"Cache-Control": "no-store"},
    )


def metrics(request: Request) -> Response:
    if metrics_token() is None:
        return PlainTextResponse(NOT_CONFIGURED, status_code=403)
    if _caller(request) is not Caller.AUTHORIZED:
        return _unauthorized()
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
