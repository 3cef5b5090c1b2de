"""`vetconnect backup prune --keep N` on real backups and a real WAL archive: the dry run deletes nothing and says
what it would; the prune deletes the older chains and the WAL before the oldest kept backup, and what is kept
still verifies and restores to a moment between the kept backups (replaying the archive that is left)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.vetconnect.backup_support import Home, add_practice_to, archiving_home, new_home, snapshot
from vetconnect import backup, backup_keys, pgserver
from vetconnect.backup_prune import plan_prune, prune, start_wal_file
from vetconnect.cli import app


@pytest.fixture
def home() -> Iterator[Home]:
    with archiving_home() as made:
        yield made


def _archived(home: Home) -> set[str]:
    return {p.name for p in (home.backups / "wal").iterdir() if len(p.name) >= 24 and p.name[:24].isalnum()}


def _chain(home: Home, code: str) -> tuple[backup.Backup, backup.Backup]:
    """A full backup, a write, an incremental on top of it, and the WAL of both in the archive."""
    full = backup.create_backup(home.server, home.backups)
    add_practice_to(home.url, f"f{code}", code)
    incremental = backup.create_backup(home.server, home.backups, incremental=True)
    backup.archive_now(home.server)
    return full, incremental


def test_prune_keeps_the_newest_full_backup_with_its_incremental_and_the_wal_it_needs(
    home: Home, cli_home: CliRunner, monkeypatch: pytest.MonkeyPatch
):
    oldest_full, oldest_incr = _chain(home, "pa")
    kept_full, kept_incr = _chain(home, "pb")
    add_practice_to(home.url, "fm", "pm")  # only in the archive: replayed on top of kept_incr
    at_t = snapshot(home.server)
    moment = dt.datetime.now(dt.UTC)
    add_practice_to(home.url, "fn", "pn")
    backup.archive_now(home.server)
    monkeypatch.setenv("VETCONNECT_HOME", str(home.path))
    cut = start_wal_file(kept_full)
    before = _archived(home)
    older = sorted(name for name in before if name[8:24] < cut[8:24])
    assert older, "the first chain's WAL is in the archive"

    dry = cli_home.invoke(app, ["backup", "prune", "--keep", "1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    for gone in (oldest_full, oldest_incr):
        assert f"would delete {gone.kind} backup {gone.label}" in dry.output
    assert f"{len(older)} archived WAL file(s) before {cut}" in dry.output
    assert f"kept 2 backup(s): {kept_full.label}, {kept_incr.label}" in dry.output
    assert len(backup.list_backups(home.backups)) == 4 and _archived(home) >= before

    pruned = cli_home.invoke(app, ["backup", "prune", "--keep", "1"])
    assert pruned.exit_code == 0, pruned.output
    assert f"deleted full backup {oldest_full.label}" in pruned.output
    assert f"deleted incremental backup {oldest_incr.label}" in pruned.output
    assert [b.label for b in backup.list_backups(home.backups)] == [kept_full.label, kept_incr.label]
    left = _archived(home)
    assert not left & set(older) and min(name[8:24] for name in left) == cut[8:24]
    assert all(backup.verify_backup(b).ok for b in (kept_full, kept_incr))
    again = cli_home.invoke(app, ["backup", "prune", "--keep", "1"])
    assert "nothing to delete: 2 backup(s) kept" in again.output

    target = new_home()
    try:
        restored = backup.restore(home.backups, target, to=moment)
        assert restored.chain == (kept_full.label, kept_incr.label)
        assert snapshot(pgserver.start(target / "pgdata")) == at_t
    finally:
        pgserver.stop(target / "pgdata")
        shutil.rmtree(target, ignore_errors=True)
    with pytest.raises(backup.BackupError, match="no backup finished before"):
        backup.restore(home.backups, home.path / "never", to=oldest_incr.finished_at)


def _fake_backup(backups: Path, label: str, kind: str, started: str, parent: str | None, wal: str) -> None:
    """A backup directory as `create_backup` leaves it, as far as pruning reads it (no data files), and the key
    of its generation."""
    generation = parent or label
    if parent is None:
        backup_keys.create_generation(
            backup_keys.key_store(backups), label, dt.datetime.fromisoformat(started), wal
        )
    folder = backups / label
    folder.mkdir(parents=True)
    (folder / "backup_manifest").write_text("{}")
    (folder / "backup_label").write_text(
        f"START WAL LOCATION: 0/{wal[-2:]}000028 (file {wal})\nCHECKPOINT LOCATION: 0/0\n"
    )
    (folder / "vetconnect.json").write_text(json.dumps({"label": label, "kind": kind, "started_at": started,
        "finished_at": started, "size_bytes": 1, "parent": parent, "generation": generation}))  # fmt: skip


def test_keep_two_keeps_both_newest_chains_and_the_wal_from_the_older_ones_start(tmp_path: Path):
    segment = "0000000100000000000000{:02X}".format
    backups = tmp_path / "backups"
    for label, kind, day, parent, wal in (
        ("a-full", "full", 1, None, 2), ("a-incr", "incremental", 2, "a-full", 4),
        ("b-full", "full", 3, None, 6), ("b-incr", "incremental", 4, "b-full", 8),
        ("c-full", "full", 5, None, 10),
    ):  # fmt: skip
        _fake_backup(backups, label, kind, f"2026-12-0{day}T02:00:00+00:00", parent, segment(wal))
    (backups / "c-incr.partial").mkdir()  # being written: not a backup, never touched
    (backups / "wal").mkdir()
    for n in range(1, 12):
        (backups / "wal" / segment(n)).write_bytes(b"x" * 16)
    (backups / "wal" / f"{segment(2)}.00000028.backup").write_text("history of a-full")
    (backups / "wal" / "00000002.history").write_text("a timeline's history is never removed")

    plan = prune(backups, 2)
    assert [b.label for b in plan.deleted] == ["a-full", "a-incr"]
    assert [b.label for b in plan.kept] == ["b-full", "b-incr", "c-full"]
    assert plan.first_kept_wal == segment(6)
    assert [w.name for w in plan.wal] == sorted(
        [segment(n) for n in range(1, 6)] + [f"{segment(2)}.00000028.backup"]
    )
    assert sorted(p.name for p in backups.iterdir()) == [
        "b-full",
        "b-incr",
        "c-full",
        "c-incr.partial",
        "wal",
    ]
    kept_wal = {"00000002.history"} | {segment(n) for n in range(6, 12)}
    assert {p.name for p in (backups / "wal").iterdir()} == kept_wal


def test_prune_never_deletes_the_newest_full_backup(tmp_path: Path):
    with pytest.raises(backup.BackupError, match="at least 1"):
        plan_prune(tmp_path, 0)
    assert plan_prune(tmp_path / "none", 1).deleted == ()
