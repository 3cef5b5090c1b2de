"""The embedded server's start-up after a crash: a socket lock left by a dead server is cleared, a live one is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from vetconnect import pgserver


@pytest.fixture
def stopped_server():
    """An initialised, stopped embedded server (short path: the socket lives in the data directory)."""
    root = Path(tempfile.mkdtemp(prefix="vc-pgs-"))
    info = pgserver.start(root / "pgdata")
    pgserver.stop(root / "pgdata")
    yield root / "pgdata", info.socket_dir, info.port
    pgserver.stop(root / "pgdata")
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _leave_socket(socket_dir: Path, port: int, holder: int) -> None:
    """What a server killed without its shutdown leaves: its socket file (bound, never unlinked) and lock."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as leftover:
        leftover.bind(str(socket_dir / f".s.PGSQL.{port}"))
    (socket_dir / f".s.PGSQL.{port}.lock").write_text(f"{holder}\n/some/pgdata\n")


def test_a_lock_left_by_a_dead_server_is_cleared_and_the_server_starts(stopped_server):
    pgdata, socket_dir, port = stopped_server
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _leave_socket(socket_dir, port, int(dead.stdout))
    info = pgserver.start(pgdata)
    assert pgserver.status(pgdata) is not None and (info.socket_dir, info.port) == (socket_dir, port)


def test_a_lock_held_by_a_live_process_is_refused_by_name(stopped_server):
    pgdata, socket_dir, port = stopped_server
    _leave_socket(socket_dir, port, os.getpid())
    with pytest.raises(pgserver.ServerError, match=f"in use by process {os.getpid()}"):
        pgserver.start(pgdata)
    assert (socket_dir / f".s.PGSQL.{port}.lock").exists()  # not ours to remove
