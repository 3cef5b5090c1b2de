"""The encrypted WAL archive: the server archives each segment into a spool beside PGDATA (``basic_archive``:
temporary file, fsync, rename), and a drainer encrypts it into ``backups/wal/`` with its generation's key, then
removes it from the spool. The file keeps its segment name, so ``pg_archivecleanup`` prunes the archive as before.

Why a spool and a drainer rather than an encrypting ``archive_command``: the archiver runs as the server's OS
user, which must not read the backup keys (a database compromise would then reveal every old backup too), and on
a machine where we run as root that user cannot even execute the application's Python; a process per segment
would also pay an interpreter start (~50 ms) per 16 MB. The drainer is one long-lived process per server
(started and stopped with it by ``pgserver``), polling every ``POLL_S``: the RPO grows by at most that, and the
spool holds only what PGDATA's own ``pg_wal`` holds anyway, on the same disk, never under ``backups/``.

``python -m vetconnect.backup_wal PGDATA ARCHIVE`` runs the drainer until the server at PGDATA is gone.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path

from vetconnect import backup_keys
from vetconnect.backup_crypto import decrypt_file, encrypt_file

POLL_S = 0.5
# What basic_archive renames into place (never its temporary files): segments, partial segments, backup history
# files and timeline history files.
ARCHIVED = re.compile(r"^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$")


def spool_of(pgdata: Path) -> Path:
    return pgdata.parent / "wal-spool"


def drain(spool: Path, archive: Path) -> int:
    """Encrypt every archived file waiting in the spool into the archive; the number moved. A file no live
    generation covers (before the first full backup, or of a crypto-erased generation) is dropped: no backup
    could replay it, and keeping it would keep what the erasure destroyed."""
    store = backup_keys.key_store(archive.parent)
    moved = 0
    for path in sorted(spool.iterdir()) if spool.is_dir() else ():
        if not ARCHIVED.match(path.name):
            continue
        owner = backup_keys.key_for_wal(store, path.name)
        try:
            if owner is not None:
                archive.mkdir(parents=True, exist_ok=True)
                encrypt_file(path, archive / path.name, *owner)
                moved += 1
            path.unlink()
        except FileNotFoundError:
            continue  # another drainer (``backup.archive_now`` in-process) took it first
    return moved


def decrypt_archive(archive: Path, into: Path, first_segment: str) -> int:
    """The archived files from ``first_segment`` on (and timeline histories), decrypted into ``into`` for a
    restore's ``restore_command``; files of a destroyed generation are left out. The number decrypted."""
    store = backup_keys.key_store(archive.parent)
    into.mkdir(parents=True, exist_ok=True)
    done = 0
    for path in sorted(archive.iterdir()):
        if not ARCHIVED.match(path.name) or (
            not path.name.endswith(".history") and path.name[:24] < first_segment
        ):
            continue
        try:
            decrypt_file(path, into / path.name, lambda g: backup_keys.load_key(store, g))
        except LookupError:
            (into / path.name).unlink(missing_ok=True)
            continue
        done += 1
    return done


def _server_alive(pgdata: Path) -> bool:
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by the server's own OS user
    return True


def run(pgdata: Path, archive: Path) -> None:
    """Drain until the server is gone, then once more (a clean shutdown archives the last segment)."""
    spool = spool_of(pgdata)
    while _server_alive(pgdata):
        try:
            drain(spool, archive)
        except OSError:
            # A full disk or the like: said in the log, retried next round (the spool keeps the segment and the
            # health check's backup age shows it if it lasts).
            logging.exception("draining %s into %s failed; retrying", spool, archive)
        time.sleep(POLL_S)
    drain(spool, archive)


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]))
