"""Pruning the backups directory: keep the newest N full backups with their incrementals, and the WAL archive
from the oldest kept backup's start on (what a restore from it replays); delete the rest.

Which backups go: every backup that started before the oldest kept full one. An incremental is always taken on
top of the newest backup there is (``backup.create_backup``), so one that started after a kept full backup
descends from it or a newer one, and one that started before it belongs to an older, deleted chain: "started
before the oldest kept full" is exactly "not a kept full nor one of their incrementals".

Which WAL goes: ``pg_archivecleanup`` with the first segment the oldest kept backup needs (the ``START WAL
LOCATION`` of its ``backup_label``); it also removes the backup history files older than that (``-b``) and
never timeline history files. Backups are deleted before the WAL, so an interrupted prune leaves only extra WAL.
A backup whose generation's key is destroyed (``backup forget-erased``) is unreadable and always deleted; the
kept full backups are the newest readable ones.
A ``.partial`` directory (a backup being written, or one that failed) is left alone.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from vetconnect.backup import Backup, BackupError, disk_size, list_backups, pg_tool, start_wal_file


@dataclass(frozen=True)
class WalFile:
    name: str
    size_bytes: int


@dataclass(frozen=True)
class PrunePlan:
    kept: tuple[Backup, ...]
    deleted: tuple[Backup, ...]
    deleted_sizes: tuple[int, ...]  # bytes on disk of each deleted backup, in the order of ``deleted``
    first_kept_wal: str | None  # None: nothing kept, the WAL archive is left as it is
    wal: tuple[WalFile, ...]  # archived files older than ``first_kept_wal``

    @property
    def freed_bytes(self) -> int:
        return sum(self.deleted_sizes) + sum(w.size_bytes for w in self.wal)


def _archive_cleanup(wal_archive: Path, first_kept: str, *, dry_run: bool) -> list[str]:
    """pg_archivecleanup; with ``dry_run`` the paths it would remove (it prints one a line, removes nothing)."""
    flags = ["--clean-backup-history"] + (["--dry-run"] if dry_run else [])
    done = pg_tool("pg_archivecleanup", *flags, str(wal_archive), first_kept)
    if done.returncode != 0:
        raise BackupError(f"pg_archivecleanup failed: {done.stderr.strip() or done.returncode}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def plan_prune(backups: Path, keep: int) -> PrunePlan:
    """What ``prune(backups, keep)`` deletes, deleting nothing."""
    if keep < 1:
        raise BackupError("--keep must be at least 1: pruning never deletes the newest full backup")
    every = list_backups(backups)
    unreadable = tuple(b for b in every if b.unreadable() is not None)
    listed = [b for b in every if b not in unreadable]
    fulls = [b for b in listed if b.kind == "full"]
    if not fulls:
        return PrunePlan(tuple(listed), unreadable, tuple(disk_size(b.path) for b in unreadable), None, ())
    oldest_kept = fulls[-keep:][0]
    kept = tuple(b for b in listed if b.started_at >= oldest_kept.started_at)
    deleted = unreadable + tuple(b for b in listed if b.started_at < oldest_kept.started_at)
    first_kept_wal = start_wal_file(oldest_kept)
    wal_archive = backups / "wal"
    wal: tuple[WalFile, ...] = ()
    if wal_archive.is_dir():
        paths = [Path(p) for p in _archive_cleanup(wal_archive, first_kept_wal, dry_run=True)]
        wal = tuple(WalFile(p.name, p.stat().st_size) for p in sorted(paths) if p.is_file())
    return PrunePlan(kept, deleted, tuple(disk_size(b.path) for b in deleted), first_kept_wal, wal)


def prune(backups: Path, keep: int) -> PrunePlan:
    """Delete what ``plan_prune`` lists: the older backups first, then the WAL before the oldest kept one."""
    plan = plan_prune(backups, keep)
    for backup in plan.deleted:
        shutil.rmtree(backup.path)
    if plan.first_kept_wal is not None and plan.wal:
        # Run for real with the same cut-off: it removes what the dry run listed (segments archived since are
        # newer than the cut-off and stay).
        _archive_cleanup(backups / "wal", plan.first_kept_wal, dry_run=False)
    return plan
