"""The restore drill and its failure modes, on an embedded server of the test's own that archives its WAL.

Backups, verification and restore run the real PostgreSQL tools; the restored directory is served by the real
`vetconnect db start`; every table's row count and content checksum are compared with the moment restored to.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import MASTER_KEY
from tests.vetconnect.backup_support import (
    Home,
    add_practice_to,
    archiving_home,
    new_home,
    run_vetconnect,
    snapshot,
)
from vetconnect import backup, backup_cli, pgserver
from vetconnect.backup_cli import parse_moment
from vetconnect.cli import app
from warehouse.kernel.formatting import DEFAULT_TZ


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    with archiving_home() as made:
        yield made


def test_the_restore_drill_gives_back_every_table_as_it_was_at_the_chosen_moment(home: Home):
    full = backup.create_backup(home.server, home.backups)
    add_practice_to(home.url, "fc", "c1")
    incremental = backup.create_backup(home.server, home.backups, incremental=True)
    assert (incremental.kind, incremental.parent) == ("incremental", full.label)
    assert incremental.size_bytes < full.size_bytes
    add_practice_to(home.url, "fd", "d1")  # after the newest backup: only the WAL archive has it
    at_t = snapshot(home.server)
    moment = dt.datetime.now(dt.UTC)
    add_practice_to(home.url, "fe", "e1")  # after T: must not come back
    backup.archive_now(home.server)
    assert snapshot(home.server) != at_t

    assert [backup.verify_backup(b).ok for b in (full, incremental)] == [True, True]
    target = new_home()
    try:
        restored = backup.restore(home.backups, target, to=moment)
        assert restored.chain == (full.label, incremental.label)
        assert restored.replayed_to is not None and restored.replayed_to <= moment
        started = run_vetconnect(target, "db", "start")
        assert started.returncode == 0, started.stderr
        served = pgserver.status(target / "pgdata")
        assert served is not None
        assert snapshot(served) == at_t
    finally:
        pgserver.stop(target / "pgdata")
        shutil.rmtree(target, ignore_errors=True)


def _flip_bytes_in_the_encrypted_stream(backup_dir: Path) -> None:
    with (backup_dir / backup.ENCRYPTED_BASE).open("r+b") as fh:
        fh.seek(100_000)  # inside the first chunk (1 MiB)
        original = fh.read(8)
        fh.seek(100_000)
        fh.write(bytes(b ^ 0xFF for b in original))


def test_a_damaged_backup_is_reported_by_verify_and_refused_by_restore(
    home: Home, cli_home: CliRunner, monkeypatch: pytest.MonkeyPatch
):
    # Its own backups directory (same server): the drill's chain stays whole.
    other = new_home()
    try:
        damaged = backup.create_backup(home.server, other / "backups")
        _flip_bytes_in_the_encrypted_stream(damaged.path)
        verdict = backup.verify_backup(damaged)
        assert not verdict.ok
        assert verdict.detail == f"{damaged.label}/base.tar.enc is damaged: chunk 0 fails authentication"

        monkeypatch.setenv("VETCONNECT_HOME", str(other))
        shown = cli_home.invoke(app, ["backup", "verify", damaged.label])
        assert shown.exit_code == 2
        assert "damaged" in shown.output and "chunk 0 fails authentication" in shown.output

        with pytest.raises(backup.BackupError, match=f"{damaged.label} is damaged, not restoring"):
            backup.restore(other / "backups", other / "restored")
        assert not (other / "restored" / "pgdata").exists()
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_the_master_key_is_never_inside_a_backup(home: Home):
    made = backup.create_backup(home.server, home.backups)
    encoded = base64.b64encode(MASTER_KEY)
    for path in made.path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert MASTER_KEY not in content and encoded not in content, path


def test_the_list_shows_each_backup_with_its_kind_local_time_and_size(
    home: Home, cli_home: CliRunner, monkeypatch: pytest.MonkeyPatch
):
    backup.create_backup(home.server, home.backups)
    monkeypatch.setenv("VETCONNECT_HOME", str(home.path))
    # A terminal wide enough for one line a backup (without one, Rich folds the columns at 80 characters).
    monkeypatch.setattr(backup_cli, "out", Console(width=200))
    listed = cli_home.invoke(app, ["backup", "list"])
    assert listed.exit_code == 0, listed.output
    for made in backup.list_backups(home.backups):
        row = next(line for line in listed.output.splitlines() if made.label in line)
        local = made.started_at.astimezone(DEFAULT_TZ)
        assert made.kind in row and f"{local:%H:%M}" in row
        assert f"{made.size_bytes / 1_000_000:.1f}".replace(".", ",") + " MB" in row


def test_a_backup_needs_wal_archiving_and_an_incremental_needs_a_previous_backup(
    server_url: str, home: Home, tmp_path: Path
):
    if os.environ.get("DATABASE_URL"):
        pytest.skip("the test server is external")
    query = make_url(server_url).query  # the suite's own server: started without archiving
    plain = pgserver.ServerInfo(0, Path(), Path(str(query["host"])), int(str(query["port"])), tcp=False)
    empty = tmp_path / "backups"  # no server runs here: pytest's own directory, removed with it
    with pytest.raises(backup.BackupError, match="WAL archiving is off"):
        backup.create_backup(plain, empty)
    with pytest.raises(backup.BackupError, match="needs a previous backup"):
        backup.create_backup(home.server, empty, incremental=True)
    assert not empty.exists() or not any(empty.iterdir())


@given(st.datetimes(timezones=st.timezones()))
def test_a_restore_time_with_an_offset_is_taken_as_it_is(moment: dt.datetime):
    written = moment.isoformat()
    assert parse_moment(written).isoformat() == written


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_a_restore_time_without_an_offset_is_local_time(moment: dt.datetime):
    assert parse_moment(moment.isoformat()) == moment.replace(tzinfo=DEFAULT_TZ)


def test_a_second_backup_in_the_same_second_gets_its_own_label(tmp_path: Path):
    (tmp_path / "20261204T100747Z-full").mkdir()
    (tmp_path / "20261204T100747Z-full-2.partial").mkdir()  # one being written
    assert backup._free_label(tmp_path, "20261204T100747Z-full") == "20261204T100747Z-full-3"
    assert backup._free_label(tmp_path, "20261204T100748Z-full") == "20261204T100748Z-full"
