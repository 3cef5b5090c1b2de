"""The key store of the backups: one random 256-bit key per backup generation, kept OUTSIDE ``backups/``.

A generation is a full backup and what follows it until the next full one: its incrementals and the WAL archived
from its start on. Everything of a generation under ``backups/`` is encrypted with its key (``backup_crypto``),
so destroying that one key makes every byte of the generation unreadable at once — old backups included, on
whatever disk or tape they were copied to. That is how an erased client stops being recoverable from backups:
per-client keys could not cover the free text (clinical notes, device messages, audit details) that names them.

Layout of ``VETCONNECT_HOME/backup-keys/`` (0700; in production this is a KMS, and it is never copied along with
the backups — a copy of both together is a plaintext backup):

- ``<generation>.key``: the 32-byte key (0600).
- ``<generation>.json``: {"generation", "started_at", "first_wal"}; ``first_wal`` is the first WAL segment of the
  generation (the archive encrypts a segment with the key of the newest generation whose ``first_wal`` is not
  after it, see ``key_for_wal``).
- ``<generation>.destroyed``: {"destroyed_at", "reason"}, written before the key is removed, so tools can say why
  a generation is unreadable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

from warehouse.kernel import formatting

KEY_BYTES = 32


class KeyDestroyed(LookupError):
    """The generation's key was destroyed on purpose; the message says when and why."""


@dataclass(frozen=True)
class Tombstone:
    destroyed_at: dt.datetime
    reason: str


@dataclass(frozen=True)
class Generation:
    id: str
    started_at: dt.datetime
    first_wal: str
    destroyed: Tombstone | None


def key_store(backups: Path) -> Path:
    """The key store of a backups directory: its sibling ``backup-keys/`` in the same VetConnect home."""
    return backups.parent / "backup-keys"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_private(path: Path, content: bytes) -> None:
    """Readable only by us, and whole or absent: the drainer reads the store while it is being written."""
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(path)


def create_generation(store: Path, generation: str, started_at: dt.datetime, first_wal: str) -> bytes:
    """A new generation's key, stored (and fsynced) before anything is encrypted with it."""
    store.mkdir(mode=0o700, parents=True, exist_ok=True)
    store.chmod(0o700)
    key = os.urandom(KEY_BYTES)
    meta = {"generation": generation, "started_at": started_at.isoformat(), "first_wal": first_wal}
    # The key before its metadata: a generation the drainer can see always has its key.
    _write_private(store / f"{generation}.key", key)
    _write_private(store / f"{generation}.json", json.dumps(meta).encode())
    _fsync_dir(store)
    return key


def _tombstone(store: Path, generation: str) -> Tombstone | None:
    path = store / f"{generation}.destroyed"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return Tombstone(dt.datetime.fromisoformat(data["destroyed_at"]), data["reason"])


def destroyed_message(generation: str, tombstone: Tombstone) -> str:
    when = formatting.date_time(tombstone.destroyed_at)
    return f"unreadable: key destroyed on {when} ({tombstone.reason}; generation {generation})"


def load_key(store: Path, generation: str) -> bytes:
    """The generation's key; KeyDestroyed (saying when and why) when it was destroyed, LookupError when absent."""
    tombstone = _tombstone(store, generation)
    if tombstone is not None:
        raise KeyDestroyed(destroyed_message(generation, tombstone))
    path = store / f"{generation}.key"
    if not path.is_file():
        raise LookupError(f"unreadable: no key for generation {generation} in {store}")
    return path.read_bytes()


def generations(store: Path) -> list[Generation]:
    """Every generation the store knows, oldest first, destroyed ones included."""
    if not store.is_dir():
        return []
    found = []
    for meta_path in store.glob("*.json"):
        meta = json.loads(meta_path.read_text())
        found.append(
            Generation(
                id=meta["generation"],
                started_at=dt.datetime.fromisoformat(meta["started_at"]),
                first_wal=meta["first_wal"],
                destroyed=_tombstone(store, meta["generation"]),
            )
        )
    return sorted(found, key=lambda g: g.first_wal)


def destroy(store: Path, generation: str, reason: str, *, now: dt.datetime | None = None) -> Tombstone:
    """Crypto-erase the generation: the tombstone is written, then the key removed and the directory fsynced."""
    tombstone = Tombstone(now or dt.datetime.now(dt.UTC), reason)
    path = store / f"{generation}.destroyed"
    if not path.exists():
        content = {"destroyed_at": tombstone.destroyed_at.isoformat(), "reason": reason}
        _write_private(path, json.dumps(content).encode())
    (store / f"{generation}.key").unlink(missing_ok=True)
    _fsync_dir(store)
    return _tombstone(store, generation) or tombstone


def key_for_wal(store: Path, name: str) -> tuple[str, bytes] | None:
    """The generation (and key) an archived WAL file belongs to, None when no live generation covers it.

    A segment (and a ``.backup``/``.partial`` file named after one) belongs to the newest generation whose first
    segment is not after it — by name, not by when it is archived: a segment written before a full backup but
    archived after it started is still the older generation's, so destroying that key also covers the last
    moments before the backup. A timeline ``.history`` file belongs to the newest generation. None: the segment
    precedes every generation (no backup could replay it) or belongs to a destroyed one — it is not kept.
    """
    known = generations(store)
    if not name.endswith(".history"):
        known = [g for g in known if g.first_wal <= name[:24]]
    if not known or known[-1].destroyed is not None:
        return None
    try:
        return known[-1].id, load_key(store, known[-1].id)
    except LookupError:
        return None
