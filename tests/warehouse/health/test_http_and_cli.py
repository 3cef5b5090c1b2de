"""``/health`` and ``/metrics`` over real HTTP (the routes served by uvicorn on a free port): the short answer to
anyone, the detail and the metrics only with the bearer token; the metrics parsed by prometheus_client's own
parser; and ``vetconnect health``'s exit codes and JSON."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from typer.testing import CliRunner

from tests.conftest import Database
from vetconnect.cli import app as cli_app
from vetconnect.settings import get_settings

TOKEN = "scrape-7c0ffee-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def env(fresh_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("VETCONNECT_METRICS_TOKEN", TOKEN)
    for name in (
        "VETCONNECT_ANIMANA_URL",
        "VETCONNECT_ANIMANA_CLIENT_ID",
        "VETCONNECT_ANIMANA_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


@pytest.fixture
def server(env: Database) -> Iterator[str]:
    from dashboard.components.health_routes import ROUTES, collector

    collector._cached = None  # a run of an earlier test's database must not answer for this one
    config = uvicorn.Config(Starlette(routes=ROUTES), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(5)


def test_health_is_503_without_a_backup_and_metrics_parse(server: str, env: Database, tmp_path: Path):
    health = httpx.get(f"{server}/health", headers=BEARER)
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "fail"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["backup"]["status"] == "fail" and "no backup yet" in checks["backup"]["detail"]

    metrics = httpx.get(f"{server}/metrics", headers=BEARER)
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    statuses = {s.labels["check"]: s.value for s in families["vetconnect_check_status"].samples}
    assert statuses["database"] == 0 and statuses["backup"] == 2
    assert families["vetconnect_up"].samples[0].value == 0
    assert "vetconnect_writeback_oldest_pending_age_seconds" in families
    assert all(name.startswith("vetconnect_") for name in families)


def test_anyone_gets_the_status_only_and_metrics_need_the_token(server: str):
    anonymous = httpx.get(f"{server}/health")
    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "fail"})

    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = httpx.get(f"{server}/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer") and "vetconnect_" not in refused.text
    wrong = httpx.get(f"{server}/health", headers={"Authorization": "Bearer wrong-token"})
    assert wrong.status_code == 401 and "checks" not in wrong.text


def test_without_a_configured_token_metrics_are_closed(server: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VETCONNECT_METRICS_TOKEN")
    get_settings.cache_clear()
    closed = httpx.get(f"{server}/metrics", headers=BEARER)
    assert closed.status_code == 403 and "VETCONNECT_METRICS_TOKEN" in closed.text
    assert httpx.get(f"{server}/health", headers=BEARER).status_code == 401
    assert httpx.get(f"{server}/health").json() == {"status": "fail"}


def test_cli_exit_codes_and_json(env: Database, tmp_path: Path):
    runner = CliRunner()
    failed = runner.invoke(cli_app, ["health", "--json"])
    assert failed.exit_code == 2, failed.output
    report = json.loads(failed.output)
    assert report["status"] == "fail" and {c["name"] for c in report["checks"]} >= {"database", "backup"}

    folder = tmp_path / "backups" / "nightly"
    folder.mkdir(parents=True)
    (folder / "backup_manifest").write_text("{}")
    (folder / "vetconnect.json").write_text(json.dumps({"label": "nightly", "kind": "full",
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:10:00+00:00", "size_bytes": 1}))  # fmt: skip
    old = runner.invoke(cli_app, ["health"])
    assert old.exit_code == 2 and "nightly" in old.output  # a backup from January is far too old

    (folder / "vetconnect.json").write_text(json.dumps({"label": "nightly", "kind": "full",
        "started_at": "x", "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "size_bytes": 1}))  # fmt: skip
    ok = runner.invoke(cli_app, ["health"])
    assert ok.exit_code == 0, ok.output
    assert "VetConnect health: ok" in ok.output
