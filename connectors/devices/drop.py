"""File drops: analysers (or their middleware) write files into ``$VETCONNECT_HOME/drop/<practice code>/``.

A file is read, stored (raw + outcome, one committed transaction) and only then moved: to ``processed/`` when
its results are in the record (or it was a duplicate), to ``failed/`` when it went to the inbox. Moving after
the commit means a crash in between leaves the file in place to be picked up again: it is then a duplicate -
by sender + control id, or, for a file without one (many ASTM transcripts), by its content - and is stored as
such without loading anything twice. Names are prefixed with the message id so a
file can be found from the inbox and two drops of ``result.hl7`` never overwrite each other.

Files still being written are skipped: dot-files, ``*.part``/``*.tmp``/``*.partial``, and files younger than
``min_age`` seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from connectors.devices.ingest import ingest_bytes
from warehouse.ingest.devices.inputs import RecordResult
from warehouse.kernel.tenancy import AccessContext, tenant_session

__all__ = [
    "DropResult",
    "DroppedFile",
    "drop_root",
    "pending_files",
    "process_drop_file",
    "scan_drop_folders",
]

PROCESSED, FAILED = "processed", "failed"
_IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")


@dataclass(frozen=True, slots=True)
class DroppedFile:
    practice_code: str
    path: Path
    mtime_ns: int
    size: int


@dataclass(frozen=True, slots=True)
class DropResult:
    source: Path
    moved_to: Path
    record: RecordResult


def drop_root(home: Path) -> Path:
    return home / "drop"


def pending_files(folder: Path, practice_code: str, *, min_age: float = 0.0) -> list[DroppedFile]:
    """Files waiting in one practice's drop folder, oldest first."""
    if not folder.is_dir():
        return []
    now = time.time()
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            name = entry.name
            if name.startswith(".") or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
                continue
            stat = entry.stat(follow_symlinks=False)
            if now - stat.st_mtime < min_age:
                continue
            found.append(DroppedFile(practice_code, Path(entry.path), stat.st_mtime_ns, stat.st_size))
    return sorted(found, key=lambda f: (f.mtime_ns, f.path.name))


def scan_drop_folders(root: Path, *, min_age: float = 0.0) -> Iterator[DroppedFile]:
    """Pending files of every practice folder under ``root`` (one folder per practice code)."""
    if not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        yield from pending_files(folder, folder.name, min_age=min_age)


def _unique(target_dir: Path, name: str) -> Path:
    target = target_dir / name
    n = 1
    while target.exists():
        target = target_dir / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


def process_drop_file(
    engine: Engine, practice_id: int, path: Path, *, practice_code: str, master_key: bytes | None = None
) -> DropResult:
    """Store one dropped file (committed), then move it to ``processed/`` or ``failed/``."""
    raw = path.read_bytes()
    with tenant_session(engine, AccessContext.for_practices([practice_id])) as session:
        record = ingest_bytes(session, practice_id, raw, f"drop:{practice_code}", path.name,
                              master_key=master_key, dedup_by_content=True)  # fmt: skip
    target_dir = path.parent / (FAILED if record.status == "inbox" else PROCESSED)
    target_dir.mkdir(exist_ok=True)
    target = _unique(target_dir, f"{record.message_id}-{path.name}")
    path.replace(target)
    return DropResult(path, target, record)
