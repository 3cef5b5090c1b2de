"""What the CLI tests share: a `CliRunner` whose settings point at a synced warehouse and the simulator."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from tests.animana_sync_support import MASTER_KEY, SyncWorld
from vetconnect.settings import get_settings


@pytest.fixture
def cli(synced_world: SyncWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    world = synced_world
    for name, value in {
        "DATABASE_URL": world.db.admin_url,
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
        "VETCONNECT_ANIMANA_URL": world.sim.base_url,
        "VETCONNECT_ANIMANA_CLIENT_ID": world.sim.client_id,
        "VETCONNECT_ANIMANA_CLIENT_SECRET": world.sim.client_secret,
        "COLUMNS": "220",  # rich's tables at full width, so the tests read whole cells
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def cli_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A `CliRunner` for the embedded server (no DATABASE_URL); the test sets VETCONNECT_HOME."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
