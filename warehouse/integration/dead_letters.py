"""Dead letters: local changes Animana refused, or that failed too often, kept visible until a person retries them
(never dropped). The Integration page lists them with their reason and age; a retry puts them back in the queue."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.integration.outbox import retry_dead
from warehouse.security.permissions import INTEGRATION_MANAGE, Actor, require

OPERATION_LABELS = {"insert": "new", "update": "change", "delete": "deletion"}


@dataclass(frozen=True)
class DeadLetter:
    id: int
    practice_id: int
    module: str
    table: str
    row_id: int
    operation: str
    reason: str  # the outbox entry's last_error
    attempts: int
    created_at: dt.datetime


def dead_letters(session: Session, practice_ids: list[int], *, limit: int = 200) -> list[DeadLetter]:
    """The practices' dead letters, oldest first (at most ``limit``; the status counts them all)."""
    rows = session.execute(
        text(
            "SELECT id, practice_id, module, table_name, row_id, operation, last_error, attempts, created_at "
            "FROM writeback_outbox WHERE practice_id = ANY(:ps) AND state = 'dead' "
            "ORDER BY created_at, id LIMIT :limit"
        ),
        {"ps": practice_ids, "limit": limit},
    ).all()
    return [
        DeadLetter(r.id, r.practice_id, r.module, r.table_name, r.row_id, r.operation,
                   r.last_error or "unknown reason", r.attempts, r.created_at)
        for r in rows
    ]  # fmt: skip


def retry(session: Session, actor: Actor, practice_id: int, ids: Iterable[int] | None = None) -> int:
    """Put the practice's dead letters (all, or ``ids``) back in the queue, due now; audited. How many."""
    require(actor, INTEGRATION_MANAGE, practice_id)
    ids = list(ids) if ids is not None else None
    count = retry_dead(session, practice_id, ids)
    session.execute(
        text(
            "INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash) "
            "VALUES (:p, 'update', 'writeback_outbox', CAST(:ids AS bigint[]), "
            "jsonb_build_object('retried', CAST(:count AS int)), '', '')"
        ),
        {"p": practice_id, "ids": ids, "count": count},
    )
    return count
