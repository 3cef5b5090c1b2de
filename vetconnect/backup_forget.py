"""Crypto-erasure of old backups: once a full backup exists that started after the newest client erasure, the
keys of the generations that started before that erasure (and are older than the grace period) are destroyed,
so no backup or archived WAL of them can reveal the erased client any more — wherever copies of them went.

The grace period (``VETCONNECT_BACKUP_ERASURE_GRACE_DAYS``, default 7) is the trade-off between two duties: to
be able to undo a disaster (restore to a moment before a mistaken erasure or a bad week) and to make an erasure
final. Within it, generations stay readable; after it, point-in-time restore to any moment of a destroyed
generation is given up. An erased client's data thus survives in backups at most the grace period, or until
the next full backup if that is later: ``backup create`` runs this after every full backup.

The erasures are read from ``client_erasure`` as the superuser (across practices, past RLS).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import psycopg

from vetconnect import backup_keys, pgserver
from vetconnect.backup import Backup, list_backups
from vetconnect.pgserver import ServerInfo
from warehouse.kernel import formatting


@dataclass(frozen=True)
class Forgotten:
    generation: backup_keys.Generation
    backups: tuple[str, ...]  # labels of the backups that became unreadable


@dataclass(frozen=True)
class ForgetResult:
    erasure: dt.datetime | None  # the newest erasure, None when no client was ever erased
    covering: Backup | None  # the first full backup started after it, None when there is none yet
    destroyed: tuple[Forgotten, ...]
    waiting: tuple[backup_keys.Generation, ...]  # before the erasure, but still within the grace period


def newest_erasure(server: ServerInfo) -> dt.datetime | None:
    with psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=pgserver.SUPERUSER, dbname=pgserver.DATABASE
    ) as conn:
        row = conn.execute("SELECT max(erased_at) FROM client_erasure").fetchone()
    return row[0] if row else None


def forget_erased(
    backups: Path, erasure: dt.datetime | None, *, grace: dt.timedelta, now: dt.datetime | None = None
) -> ForgetResult:
    """Destroy the keys the rule above names; what was destroyed, and what waits for its grace to end."""
    if erasure is None:
        return ForgetResult(None, None, (), ())
    listed = list_backups(backups)
    covering = next(
        (b for b in listed if b.kind == "full" and b.started_at > erasure and b.unreadable() is None), None
    )
    if covering is None:
        return ForgetResult(erasure, None, (), ())
    now = now or dt.datetime.now(dt.UTC)
    store = backup_keys.key_store(backups)
    before = [g for g in backup_keys.generations(store) if g.destroyed is None and g.started_at < erasure]
    reason = f"client erasure of {formatting.date_time(erasure)}"
    destroyed = []
    for generation in before:
        if generation.started_at <= now - grace:
            backup_keys.destroy(store, generation.id, reason, now=now)
            labels = tuple(b.label for b in listed if b.generation == generation.id)
            destroyed.append(Forgotten(generation, labels))
    waiting = tuple(g for g in before if g.started_at > now - grace)
    return ForgetResult(erasure, covering, tuple(destroyed), waiting)
