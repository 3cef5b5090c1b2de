"""Backups of the embedded server and point-in-time restore, with PostgreSQL's own tools.

Layout under ``VETCONNECT_HOME/backups/`` (the health check reads it):

- ``<label>/``: a plain-format ``pg_basebackup`` (its ``backup_manifest`` lists every file with a CRC32C) and our
  ``vetconnect.json`` {"label", "kind": "full|incremental", "started_at", "finished_at", "size_bytes", "parent"};
  an incremental backup (PostgreSQL 17+, ``--incremental`` against its parent's manifest) holds only the blocks
  changed since its parent, and ``parent`` names that parent.
- ``wal/``: the continuous WAL archive the server fills (``pgserver.archive_settings``).

A backup is written to ``<label>.partial`` and renamed when complete, so a listed backup is a whole one.
Restore verifies every backup of the chain (``pg_verifybackup``) and refuses a damaged one, combines the chain
(``pg_combinebackup``), then lets PostgreSQL replay the archive up to the target time and promote; the restored
directory is a VetConnect home of its own. The master key never enters a backup: it is a setting of the process
(environment or ``.env``), never stored in PGDATA.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil
import psycopg

from vetconnect import pgserver
from vetconnect.pgserver import POSTGRES_BIN_PATH, ServerInfo

MANIFEST = "backup_manifest"
METADATA = "vetconnect.json"
Kind = Literal["full", "incremental"]
# pg_basebackup --progress: "  12345/67890 kB (18%), 0/1 tablespace ..." (rewritten in place with \r).
PROGRESS_LINE = re.compile(rb"(\d+)/(\d+) kB")
RECOVERY_SETTINGS = ("restore_command", "recovery_target_time", "recovery_target_action")

Progress = Callable[[int, int], None]  # (done, total) in kB


class BackupError(RuntimeError):
    """An expected failure (no server, archiving off, a damaged backup…); the message says what and why."""


@dataclass(frozen=True)
class Backup:
    label: str
    kind: Kind
    started_at: dt.datetime
    finished_at: dt.datetime
    size_bytes: int
    parent: str | None
    path: Path


@dataclass(frozen=True)
class Verification:
    label: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Restored:
    pgdata: Path
    chain: tuple[str, ...]
    target: dt.datetime | None
    replayed_to: (
        dt.datetime | None
    )  # the last transaction replayed (commit time), None if none after the backup


def pg_tool(name: str, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(POSTGRES_BIN_PATH / name), *args],
        capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _connect(server: ServerInfo) -> psycopg.Connection:
    return psycopg.connect(
        host=str(server.socket_dir),
        port=server.port,
        user=pgserver.SUPERUSER,
        dbname="postgres",
        autocommit=True,
    )


# --- reading the backups directory ------------------------------------------------------------------------


def _read(path: Path) -> Backup:
    meta = json.loads((path / METADATA).read_text())
    return Backup(
        label=meta["label"],
        kind=meta["kind"],
        started_at=dt.datetime.fromisoformat(meta["started_at"]),
        finished_at=dt.datetime.fromisoformat(meta["finished_at"]),
        size_bytes=meta["size_bytes"],
        parent=meta.get("parent"),
        path=path,
    )


def list_backups(backups: Path) -> list[Backup]:
    """Complete backups, oldest first (a ``.partial`` directory or one without metadata is not a backup)."""
    if not backups.is_dir():
        return []
    found = [
        _read(entry)
        for entry in backups.iterdir()
        if entry.is_dir() and (entry / METADATA).is_file() and (entry / MANIFEST).is_file()
    ]
    return sorted(found, key=lambda b: b.started_at)


def _free_label(backups: Path, label: str) -> str:
    """The label, or with ``-2``, ``-3`` … when a backup of the same second has it (labels are to the second)."""
    taken = (
        {entry.name.removesuffix(".partial") for entry in backups.iterdir()} if backups.is_dir() else set()
    )
    if label not in taken:
        return label
    return next(f"{label}-{n}" for n in itertools.count(2) if f"{label}-{n}" not in taken)


def find_backup(backups: Path, label: str) -> Backup:
    for backup in list_backups(backups):
        if backup.label == label:
            return backup
    raise BackupError(f"no backup labelled {label!r} in {backups} (see `vetconnect backup list`)")


def chain_of(backups: Path, newest: Backup) -> list[Backup]:
    """The full backup and the incrementals leading to ``newest``, in the order pg_combinebackup takes them."""
    by_label = {b.label: b for b in list_backups(backups)}
    chain = [newest]
    while chain[0].parent is not None:
        parent = by_label.get(chain[0].parent)
        if parent is None:
            raise BackupError(
                f"backup {chain[0].label} needs {chain[0].parent}, which is no longer in {backups}"
            )
        chain.insert(0, parent)
    return chain


# --- create -----------------------------------------------------------------------------------------------


def _require_archiving(server: ServerInfo) -> None:
    with _connect(server) as conn:
        archive_mode = conn.execute("SHOW archive_mode").fetchone()
    if archive_mode is None or archive_mode[0] != "on":
        raise BackupError(
            "WAL archiving is off on the running server, so a backup could not be restored to a point in time. "
            "Restart it with `vetconnect db stop && vetconnect db start`, which turns archiving on."
        )


def disk_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _run_basebackup(args: list[str], progress: Progress | None) -> None:
    """pg_basebackup with its progress report fed to ``progress``; its error line raised as BackupError."""
    proc = subprocess.Popen(
        [str(POSTGRES_BIN_PATH / "pg_basebackup"), *args, "--progress"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    messages: list[bytes] = []
    for chunk in iter(lambda: proc.stderr.read1(4096), b""):  # type: ignore[union-attr]
        for piece in re.split(rb"[\r\n]", chunk):
            if match := PROGRESS_LINE.search(piece):
                if progress is not None:
                    progress(int(match[1]), int(match[2]))
            elif piece.strip():
                messages.append(piece.strip())
    if proc.wait() != 0:
        detail = messages[-1].decode(errors="replace") if messages else f"exit code {proc.returncode}"
        raise BackupError(f"pg_basebackup failed: {detail}")


def create_backup(
    server: ServerInfo, backups: Path, *, incremental: bool = False, progress: Progress | None = None
) -> Backup:
    """A full backup, or an incremental one on top of the newest backup (whatever its kind)."""
    _require_archiving(server)
    parent = None
    if incremental:
        existing = list_backups(backups)
        if not existing:
            raise BackupError(
                "an incremental backup needs a previous backup: run `vetconnect backup create` first"
            )
        parent = existing[-1]
    started = dt.datetime.now(dt.UTC)
    kind: Kind = "incremental" if parent else "full"
    label = _free_label(backups, started.strftime("%Y%m%dT%H%M%SZ") + ("-incr" if parent else "-full"))
    final, partial = backups / label, backups / f"{label}.partial"
    backups.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    args = [
        "-h", str(server.socket_dir), "-p", str(server.port), "-U", pgserver.SUPERUSER,
        "-D", str(partial), "--format=plain", "--wal-method=stream", "--checkpoint=fast",
        f"--label=vetconnect {label}",
    ]  # fmt: skip
    if parent is not None:
        args.append(f"--incremental={parent.path / MANIFEST}")
    try:
        _run_basebackup(args, progress)
    except BackupError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finished = dt.datetime.now(dt.UTC)
    meta = {
        "label": label,
        "kind": kind,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "size_bytes": disk_size(partial),
        "parent": parent.label if parent else None,
    }
    (partial / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    partial.rename(final)
    return _read(final)


def archive_now(server: ServerInfo, timeout_s: float = 60) -> str:
    """Close the current WAL segment and wait until it is in the archive (what ``archive_timeout`` does on its
    own within 30 s): everything committed before the call is then restorable. Returns the segment's name."""
    with _connect(server) as conn:
        # The byte before the switch point: after a switch that is the segment just closed; with no WAL since the
        # last switch (after a backup, say) the switch returns the start of the open segment, and the one to wait
        # for is the closed one before it, not the open one (which would wait for archive_timeout and more).
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal() - 1)").fetchone()[0]
        deadline, failed = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            # Archived: the server marked it `.done`, or it is gone from pg_wal (removed or recycled at a checkpoint,
            # which the archiver's mode allows only once it is archived). Not pg_stat_archiver's last_archived_wal:
            # a backup's history file archived after a later segment leaves it at the older name.
            archived, failed = conn.execute(
                "SELECT (pg_stat_file('pg_wal/archive_status/' || %(s)s || '.done', true)).size IS NOT NULL "
                "OR (pg_stat_file('pg_wal/' || %(s)s, true)).size IS NULL, last_failed_wal FROM pg_stat_archiver",
                {"s": segment},
            ).fetchone()
            if archived:
                return segment
            time.sleep(0.1)
    raise BackupError(
        f"WAL segment {segment} was not archived within {timeout_s:.0f} s (last failed: {failed})"
    )


# --- verify -----------------------------------------------------------------------------------------------


def verify_backup(backup: Backup) -> Verification:
    """pg_verifybackup: every file against the manifest's size and checksum, and the WAL the backup needs."""
    done = pg_tool("pg_verifybackup", f"--ignore={METADATA}", str(backup.path))
    if done.returncode == 0:
        return Verification(backup.label, True, _last_line(done.stdout))
    return Verification(backup.label, False, _last_line(done.stderr or done.stdout))


# --- restore ----------------------------------------------------------------------------------------------


def _choose(backups: Path, to: dt.datetime | None) -> list[Backup]:
    candidates = [b for b in list_backups(backups) if to is None or b.finished_at <= to]
    if not candidates:
        when = f" finished before {to.isoformat()}" if to else ""
        raise BackupError(f"no backup{when} in {backups}: nothing to restore from")
    return chain_of(backups, candidates[-1])


def _recovery_conf(pgdata: Path, wal_archive: Path, to: dt.datetime | None) -> None:
    """Recovery settings appended to the restored ``postgresql.auto.conf`` (removed again after promotion)."""

    def quoted(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    settings = {
        # The archive is read, never written, by the restored server: it archives into its own home.
        "restore_command": f'cp "{wal_archive}/%f" "%p"',
        "recovery_target_action": "promote",
    }
    if to is not None:
        settings["recovery_target_time"] = to.isoformat(sep=" ")
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        for key, value in settings.items():
            conf.write(f"{key} = {quoted(value)}\n")
    (pgdata / "recovery.signal").touch()


def _wait_for_promotion(pgdata: Path, server: ServerInfo, timeout_s: float) -> dt.datetime | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(server.pid):  # the server gave up (a FATAL recovery error) and exited
            log = (pgdata / "server.log").read_text(errors="replace")
            fatal = [line for line in log.splitlines() if "FATAL" in line]
            raise BackupError(f"recovery failed: {fatal[-1] if fatal else _last_line(log)}")
        try:
            with _connect(server) as conn:
                row = conn.execute("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()").fetchone()
        except psycopg.OperationalError:
            row = None  # between the end of recovery and the promoted server's first connection
        if row is not None and not row[0]:
            return row[1]
        time.sleep(0.2)
    raise BackupError(f"recovery did not finish within {timeout_s:.0f} s; see {pgdata / 'server.log'}")


def restore(
    backups: Path,
    target_home: Path,
    *,
    to: dt.datetime | None = None,
    step: Callable[[str], None] = lambda _: None,
    timeout_s: float = 3600,
) -> Restored:
    """Restore into ``target_home`` (a new VetConnect home) as of ``to`` (None: the end of the archive).

    The chain is verified first and a damaged backup refused; recovery runs to completion here (the restored
    server is started, promoted and stopped), so `VETCONNECT_HOME=target_home vetconnect db start` serves it.
    """
    if to is not None and to.tzinfo is None:
        raise BackupError("the restore time needs a time zone (or is taken as local time by the CLI)")
    pgdata = target_home.resolve() / "pgdata"
    if pgdata.exists() and any(pgdata.iterdir()):
        raise BackupError(f"{pgdata} is not empty: restore into a new directory")
    chain = _choose(backups, to)
    for backup in chain:
        step(f"verifying {backup.label}")
        verdict = verify_backup(backup)
        if not verdict.ok:
            raise BackupError(f"backup {backup.label} is damaged, not restoring from it: {verdict.detail}")
    step("combining " + " + ".join(b.label for b in chain))
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    combined = pg_tool("pg_combinebackup", "-o", str(pgdata), *(str(b.path) for b in chain))
    if combined.returncode != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise BackupError(f"pg_combinebackup failed: {_last_line(combined.stderr)}")
    # Ours, and the source server's socket lock (its socket lives in PGDATA), copied along with the data files.
    for leftover in (pgdata / METADATA, *pgdata.glob(".s.PGSQL.*")):
        leftover.unlink(missing_ok=True)
    _recovery_conf(pgdata, backups / "wal", to)
    pgserver.adopt_data_dir(pgdata)
    step("replaying the WAL archive" + (f" up to {to.isoformat()}" if to else " to its end"))
    server = pgserver.start(pgdata, wal_archive=target_home.resolve() / "backups" / "wal")
    try:
        replayed_to = _wait_for_promotion(pgdata, server, timeout_s)
        with _connect(server) as conn:
            for name in RECOVERY_SETTINGS:
                conn.execute(f"ALTER SYSTEM RESET {name}")  # a constant from RECOVERY_SETTINGS, not input
    finally:
        pgserver.stop(pgdata)
    return Restored(pgdata, tuple(b.label for b in chain), to, replayed_to)


def embedded_server(pgdata: Path) -> ServerInfo:
    info = pgserver.status(pgdata)
    if info is None:
        raise BackupError(f"the embedded server is not running (data dir {pgdata}): `vetconnect db start`")
    return info
