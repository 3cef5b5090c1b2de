"""The health check "Animana reachable with a valid token" against the real simulator over HTTP: the probe the
shell builds from the ``VETCONNECT_ANIMANA_*`` settings (``probe_from_env``), run through the whole health run
(facts from a real database with a linked practice, then the check): ok with the right secret, fail naming the
practice and the refusal with a wrong one, fail when Animana is down."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from connectors.animana.health import probe_from_env
from connectors.animana.simulator import RunningSimulator, running_simulator
from tests.conftest import MASTER_KEY, Database
from tests.connectors.animana.animana_support import SECRET
from warehouse.health.checks import Check, Status
from warehouse.health.report import HealthSources, run_health
from warehouse.tenants.admin import add_franchise, add_practice


@pytest.fixture
def linked(fresh_db: Database) -> Database:
    """A practice linked to Animana practice 1001, as `vetconnect tenants link-animana` leaves it."""
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="PF", name="Probe Franchise")
        practice = add_practice(
            session, franchise_id=franchise.id, code="PROBE1", name="Probe Practice", master_key=MASTER_KEY
        )
        session.execute(
            text("UPDATE tenant SET animana_practice_id = '1001' WHERE id = :p"), {"p": practice.id}
        )
    return fresh_db


def _animana_check(db: Database, home: Path, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch,
                   secret: str) -> Check:  # fmt: skip
    monkeypatch.setenv("VETCONNECT_ANIMANA_URL", sim.base_url)
    monkeypatch.setenv("VETCONNECT_ANIMANA_CLIENT_ID", sim.client_id)
    monkeypatch.setenv("VETCONNECT_ANIMANA_CLIENT_SECRET", secret)
    probe = probe_from_env()
    assert probe is not None
    report = run_health(HealthSources(db.admin_engine, home / "backups", animana_probe=probe))
    return next(c for c in report.checks if c.name == "animana")


def test_ok_with_a_valid_token(
    linked: Database, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    check = _animana_check(linked, tmp_path, sim, monkeypatch, SECRET)
    assert (check.status, check.value) == (Status.OK, 0)
    assert check.detail == "1 linked practice(s) answer with a valid token"


def test_fails_with_a_wrong_secret(
    linked: Database, sim: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    check = _animana_check(linked, tmp_path, sim, monkeypatch, "not-the-secret")
    assert (check.status, check.value) == (Status.FAIL, 1)
    assert check.detail.startswith("PROBE1: AuthError (HTTP 401)"), check.detail
    assert "not-the-secret" not in check.detail


def test_fails_when_animana_is_down(linked: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with running_simulator(seed=7, practices=1, client_secret=SECRET) as stopped:
        pass  # its address now refuses connections
    check = _animana_check(linked, tmp_path, stopped, monkeypatch, SECRET)
    assert (check.status, check.value) == (Status.FAIL, 1)
    assert check.detail.startswith("PROBE1: ApiUnavailable"), check.detail
    assert "connection failed" in check.detail
