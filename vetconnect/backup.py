"""Backups of the embedded server and point-in-time restore, with PostgreSQL's own tools.

Layout under ``VETCONNECT_HOME/backups/`` (the health check reads it):

- ``<label>/``: ``base.tar.enc``, the tar stream of ``pg_basebackup -D - --format=tar --wal-method=fetch``
  (data files, the WAL the backup needs, its ``backup_manifest``) encrypted as it streams in with the key of the
  backup's generation (``backup_crypto``, ``backup_keys``): no plaintext copy is ever written. Beside it, in
  clear, ``backup_manifest`` (what the next ``--incremental`` is taken against) and ``backup_label`` (where its
  WAL starts, for pruning): file names, sizes, checksums and WAL positions, no data. And our ``vetconnect.json``
  {"label", "kind": "full|incremental", "generation", "started_at", "finished_at", "size_bytes", "parent"}; an
  incremental backup (PostgreSQL 17+) holds only the blocks changed since its parent, named by ``parent``.
- ``wal/``: the continuous WAL archive, each file encrypted with its generation's key (``backup_wal``).

Why a tar stream rather than a plain backup encrypted file by file: it never puts the data on disk twice nor in
clear, and one sequential stream encrypts at the cipher's speed (``bench/backup.py`` measures the cost).
``--wal-method=fetch`` because streaming WAL needs a second output, which a backup to stdout cannot have.

A backup is written to ``<label>.partial`` and renamed when complete, so a listed backup is a whole one.
Verify and restore decrypt into a temporary directory under their target (never under ``backups/``); restore
verifies every backup of the chain (``pg_verifybackup``) and refuses a damaged or unreadable one, combines the
chain (``pg_combinebackup``), then lets PostgreSQL replay the archive up to the target time and promote; the
restored directory is a VetConnect home of its own. The master key never enters a backup: it is a setting of the
process (environment or ``.env``), never stored in PGDATA.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import psutil
import psycopg

from vetconnect import backup_keys, backup_wal, pgserver
from vetconnect.backup_crypto import CipherError, DecryptingReader, EncryptingWriter, KeyLookup
from vetconnect.pgserver import POSTGRES_BIN_PATH, ServerInfo
from warehouse.kernel.db import make_engine
from warehouse.privacy import compaction

MANIFEST = "backup_manifest"
LABEL_FILE = "backup_label"
METADATA = "vetconnect.json"
ENCRYPTED_BASE = "base.tar.enc"
Kind = Literal["full", "incremental"]
# pg_basebackup --progress: "  12345/67890 kB (18%), 0/1 tablespace ..." (rewritten in place with \r).
PROGRESS_LINE = re.compile(rb"(\d+)/(\d+) kB")
# backup_label: "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)"
START_WAL = re.compile(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", re.MULTILINE)
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
    generation: str
    path: Path

    def keys(self) -> KeyLookup:
        store = backup_keys.key_store(self.path.parent)
        return lambda generation: backup_keys.load_key(store, generation)

    def unreadable(self) -> str | None:
        """Why the backup cannot be read (its generation's key destroyed, or missing), None when it can."""
        try:
            backup_keys.load_key(backup_keys.key_store(self.path.parent), self.generation)
        except LookupError as exc:
            return str(exc)
        return None


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
        generation=meta["generation"],
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


class _Tee:
    """Reads ``source`` and writes what it read to ``sink``: the tar stream is parsed (to keep the manifest and
    label in clear) and encrypted in the same single pass."""

    def __init__(self, source: BinaryIO, sink: EncryptingWriter) -> None:
        self._source, self._sink = source, sink

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._sink.write(data)
        return data


def _stream_basebackup(
    args: list[str], target: Path, generation: str, key: bytes, progress: Progress | None
) -> None:
    """pg_basebackup's tar stream encrypted into ``target/ENCRYPTED_BASE``, its manifest and label kept in clear
    beside it; the progress report fed to ``progress``; its error line raised as BackupError."""
    proc = subprocess.Popen(
        [str(POSTGRES_BIN_PATH / "pg_basebackup"), *args, "--progress"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    messages: list[bytes] = []

    def read_stderr(stderr: BinaryIO) -> None:
        for chunk in iter(lambda: stderr.read1(4096), b""):  # type: ignore[attr-defined]
            for piece in re.split(rb"[\r\n]", chunk):
                if match := PROGRESS_LINE.search(piece):
                    if progress is not None:
                        progress(int(match[1]), int(match[2]))
                elif piece.strip():
                    messages.append(piece.strip())

    reporter = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
    reporter.start()
    with (target / ENCRYPTED_BASE).open("wb") as sink:
        writer = EncryptingWriter(sink, generation, key)
        tee = _Tee(proc.stdout, writer)
        try:
            with tarfile.open(fileobj=tee, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    if member.name in (MANIFEST, LABEL_FILE):
                        content = tar.extractfile(member)
                        assert content is not None
                        (target / member.name).write_bytes(content.read())
        except tarfile.ReadError:
            pass  # no tar at all: pg_basebackup failed before sending one, its message says why
        while tee.read(1 << 20):
            pass  # the end-of-archive padding after the last member
        writer.close()
        sink.flush()
        os.fsync(sink.fileno())
    reporter.join()
    if proc.wait() != 0:
        detail = messages[-1].decode(errors="replace") if messages else f"exit code {proc.returncode}"
        raise BackupError(f"pg_basebackup failed: {detail}")
    if not (target / MANIFEST).is_file():
        raise BackupError("pg_basebackup sent no backup_manifest: not a complete backup")


def _new_generation(server: ServerInfo, backups: Path, label: str, started: dt.datetime) -> bytes:
    """A full backup begins a generation: the server switches to a new WAL segment, which is the generation's
    first (everything before it stays with the previous generation's key, see ``backup_keys.key_for_wal``)."""
    with _connect(server) as conn:
        first_wal = conn.execute("SELECT pg_walfile_name(pg_switch_wal() + 1)").fetchone()[0]
    return backup_keys.create_generation(backup_keys.key_store(backups), label, started, first_wal)


def _compact_after_erasures(server: ServerInfo, backups: Path) -> None:
    """Before a full backup: rewrite the tables that still hold dead versions of rows erased since the previous
    full backup (`warehouse.privacy.compaction`), so the new generation starts without them."""
    fulls = [b for b in list_backups(backups) if b.kind == "full"]
    engine = make_engine(server.url())
    try:
        compaction.compact(
            engine, compaction.tables_to_compact(engine, fulls[-1].started_at if fulls else None)
        )
    finally:
        engine.dispose()


def create_backup(
    server: ServerInfo, backups: Path, *, incremental: bool = False, progress: Progress | None = None
) -> Backup:
    """A full backup (the start of a new key generation), or an incremental one on top of the newest backup."""
    _require_archiving(server)
    parent = None
    if incremental:
        existing = list_backups(backups)
        if not existing:
            raise BackupError(
                "an incremental backup needs a previous backup: run `vetconnect backup create` first"
            )
        parent = existing[-1]
        if (why := parent.unreadable()) is not None:
            raise BackupError(f"cannot take an incremental on top of {parent.label}: {why}")
    started = dt.datetime.now(dt.UTC)
    kind: Kind = "incremental" if parent else "full"
    label = _free_label(backups, started.strftime("%Y%m%dT%H%M%SZ") + ("-incr" if parent else "-full"))
    final, partial = backups / label, backups / f"{label}.partial"
    backups.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    if parent is None:
        _compact_after_erasures(server, backups)
        generation, key = label, _new_generation(server, backups, label, started)
    else:
        generation = parent.generation
        key = backup_keys.load_key(backup_keys.key_store(backups), generation)
    args = [
        "-h", str(server.socket_dir), "-p", str(server.port), "-U", pgserver.SUPERUSER,
        "-D", "-", "--format=tar", "--wal-method=fetch", "--checkpoint=fast",
        f"--label=vetconnect {label}",
    ]  # fmt: skip
    if parent is not None:
        args.append(f"--incremental={parent.path / MANIFEST}")
    partial.mkdir()
    try:
        _stream_basebackup(args, partial, generation, key, progress)
    except BackupError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finished = dt.datetime.now(dt.UTC)
    meta = {
        "label": label,
        "kind": kind,
        "generation": generation,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "size_bytes": disk_size(partial),
        "parent": parent.label if parent else None,
    }
    (partial / METADATA).write_text(json.dumps(meta, indent=2) + "\n")
    partial.rename(final)
    return _read(final)


def archive_now(server: ServerInfo, timeout_s: float = 60) -> str:
    """Close the current WAL segment and wait until it is in the (encrypted) archive — what ``archive_timeout``
    does on its own within 30 s: everything committed before the call is then restorable. Returns its name."""
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
            # Then the drainer encrypts it out of the spool into the archive.
            if archived and not (backup_wal.spool_of(server.pgdata) / segment).exists():
                return segment
            time.sleep(0.1)
    raise BackupError(
        f"WAL segment {segment} was not archived within {timeout_s:.0f} s (last failed: {failed}; "
        f"the drainer's log: {server.pgdata.parent / 'wal-drainer.log'})"
    )


# --- verify -----------------------------------------------------------------------------------------------


def _unpack(backup: Backup, into: Path) -> None:
    """Decrypt the backup's tar stream and extract it into ``into`` (a new directory), authenticating every
    chunk; BackupError when it is unreadable or damaged."""
    into.mkdir(parents=True)
    name = f"{backup.label}/{ENCRYPTED_BASE}"
    try:
        with (backup.path / ENCRYPTED_BASE).open("rb") as sealed:
            reader = DecryptingReader(sealed, backup.keys(), name)
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                tar.extractall(into, filter="tar")
            while reader.read(1 << 20):
                pass  # to its last chunk: a stream cut short after the tar's end is still refused
    except (CipherError, LookupError, tarfile.TarError, OSError) as exc:
        raise BackupError(str(exc)) from exc


def _verify_unpacked(label: str, data: Path) -> Verification:
    done = pg_tool("pg_verifybackup", str(data))
    if done.returncode == 0:
        return Verification(label, True, _last_line(done.stdout))
    return Verification(label, False, _last_line(done.stderr or done.stdout))


def verify_backup(backup: Backup) -> Verification:
    """Decrypted (authenticating every chunk) into a temporary directory of the home, then pg_verifybackup: every
    file against the manifest's size and checksum, and the WAL the backup needs."""
    if (why := backup.unreadable()) is not None:
        return Verification(backup.label, False, why)
    home = backup.path.parent.parent
    with tempfile.TemporaryDirectory(dir=home, prefix=".verify-") as work:
        try:
            _unpack(backup, Path(work) / backup.label)
        except BackupError as exc:
            return Verification(backup.label, False, str(exc))
        return _verify_unpacked(backup.label, Path(work) / backup.label)


def start_wal_file(backup: Backup) -> str:
    """The first WAL segment the backup needs: where its ``pg_basebackup`` started."""
    label = backup.path / LABEL_FILE
    match = START_WAL.search(label.read_text()) if label.is_file() else None
    if match is None:
        raise BackupError(f"backup {backup.label} has no readable backup_label ({label})")
    return match[1]


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
        if (why := backup.unreadable()) is not None:
            raise BackupError(f"backup {backup.label} is {why}: not restoring from it")
    work = target_home.resolve() / ".restore"  # decrypted data, removed when the restore ends either way
    shutil.rmtree(work, ignore_errors=True)
    try:
        for backup in chain:
            step(f"decrypting and verifying {backup.label}")
            try:
                _unpack(backup, work / backup.label)
            except BackupError as exc:
                raise BackupError(f"backup {backup.label} is damaged, not restoring from it: {exc}") from exc
            verdict = _verify_unpacked(backup.label, work / backup.label)
            if not verdict.ok:
                raise BackupError(
                    f"backup {backup.label} is damaged, not restoring from it: {verdict.detail}"
                )
        step("combining " + " + ".join(b.label for b in chain))
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        combined = pg_tool("pg_combinebackup", "-o", str(pgdata), *(str(work / b.label) for b in chain))
        if combined.returncode != 0:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise BackupError(f"pg_combinebackup failed: {_last_line(combined.stderr)}")
        for backup in chain:
            shutil.rmtree(work / backup.label)
        # The source server's socket lock (its socket lives in PGDATA), copied along with the data files.
        for leftover in pgdata.glob(".s.PGSQL.*"):
            leftover.unlink(missing_ok=True)
        step("decrypting the WAL archive")
        backup_wal.decrypt_archive(backups / "wal", work / "wal", start_wal_file(chain[0]))
        _recovery_conf(pgdata, work / "wal", to)
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Restored(pgdata, tuple(b.label for b in chain), to, replayed_to)


def embedded_server(pgdata: Path) -> ServerInfo:
    info = pgserver.status(pgdata)
    if info is None:
        raise BackupError(f"the embedded server is not running (data dir {pgdata}): `vetconnect db start`")
    return info
