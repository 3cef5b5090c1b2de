"""`vetconnect sync animana` through Typer's CliRunner against the simulator and a real database."""

from __future__ import annotations

import base64

from typer.testing import CliRunner

from tests.animana_sync_support import MASTER_KEY, SyncWorld
from vetconnect.cli import app
from vetconnect.settings import get_settings


def test_cli_sync_all_then_incremental_then_one_practice_full(animana_world: SyncWorld, monkeypatch):
    world = animana_world
    for name, value in {
        "DATABASE_URL": world.db.admin_url,
        "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
        "VETCONNECT_ANIMANA_URL": world.sim.base_url,
        "VETCONNECT_ANIMANA_CLIENT_ID": world.sim.client_id,
        "VETCONNECT_ANIMANA_CLIENT_SECRET": world.sim.client_secret,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "160")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["sync", "animana", "--all", "--workers", "2"])  # practices in parallel
        assert first.exit_code == 0, first.output
        assert "Animana sync" in first.output and "sync-1001" in first.output and "relations" in first.output
        world.assert_counts_match()
        second = runner.invoke(app, ["sync", "animana", "--all"])
        assert second.exit_code == 0, second.output
        assert (
            "relations" not in second.output.split("Animana sync")[-1]
        )  # nothing changed: only the per-practice totals are listed
        full = runner.invoke(app, ["sync", "animana", "--practice", "sync-1002", "--full"])
        assert full.exit_code == 0 and "full" in full.output and "sync-1001" not in full.output
        unknown = runner.invoke(app, ["sync", "animana", "--practice", "nope"])
        assert unknown.exit_code == 1 and "nope" in unknown.output
        neither = runner.invoke(app, ["sync", "animana"])
        assert neither.exit_code == 2
        no_workers = runner.invoke(app, ["sync", "animana", "--all", "--workers", "0"])
        assert no_workers.exit_code == 2
    finally:
        get_settings.cache_clear()
