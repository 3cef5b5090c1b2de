"""``GET /health`` (the report as JSON; 503 when a check fails, so a load balancer or uptime monitor needs no
parsing) and ``GET /metrics`` (Prometheus text format), served beside the Streamlit app by ``dashboard/asgi.py``.

Both read one cached run (``HealthCollector``): a scrape and a health probe at the same moment cost one run.
Neither shows a client or a record; they name practices by code and count queues."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dashboard.runtime import health_sources
from warehouse.health.checks import Status
from warehouse.health.metrics import HealthCollector, registry_for
from warehouse.health.report import HealthReport, run_health


def _run() -> HealthReport:
    return run_health(health_sources())


collector = HealthCollector(_run)
_registry = registry_for(collector)


# Plain functions: Starlette runs them in its thread pool, so the checks' blocking I/O never stalls the loop.
def health(request: Request) -> Response:
    report = collector.report()
    return JSONResponse(
        report.as_json(),
        status_code=503 if report.status is Status.FAIL else 200,
        headers={"Cache-Control": "no-store"},
    )


def metrics(request: Request) -> Response:
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/health", health, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
