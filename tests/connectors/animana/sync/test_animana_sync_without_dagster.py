"""The sync service lives beside the connector, so the CLI runs it without importing Dagster (about 0.7 s of CPU
per start): neither the service nor the `vetconnect` command with its sync sub-command imports it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


@pytest.mark.parametrize(
    "modules",
    [
        "connectors.animana.sync.service, connectors.animana.sync.processes",
        "vetconnect.cli, vetconnect.animana_cli",
    ],
    ids=["sync-service", "cli"],
)
def test_importing_the_sync_does_not_import_dagster(modules: str):
    code = f"import sys; import {modules}; assert 'dagster' not in sys.modules, 'dagster was imported'"
    subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True
    )
