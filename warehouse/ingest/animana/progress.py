"""Sync bookkeeping: the per-resource ``sync_state`` cursor and the ``sync_run`` record of each run.

The cursor and the run's counts advance in the transaction that holds the page's rows (`commit_progress`), so a
crash at any point either keeps the page with its cursor or neither.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.ingest.animana.rows import LoadTarget
from warehouse.ingest.animana.statements import driver_connection, params

# When each resource was last synced, by kind of run.
_MARK_SYNCED = {
    True: text(
        "INSERT INTO sync_state (practice_id, source, resource, last_full_at) VALUES (:pid, 'animana', :r, now()) "
        "ON CONFLICT (practice_id, source, resource) DO UPDATE SET last_full_at = now()"
    ),
    False: text(
        "INSERT INTO sync_state (practice_id, source, resource, last_incremental_at) "
        "VALUES (:pid, 'animana', :r, now()) "
        "ON CONFLICT (practice_id, source, resource) DO UPDATE SET last_incremental_at = now()"
    ),
}


def commit_progress(
    session: Session,
    target: LoadTarget,
    resource: str,
    high_water: dt.datetime | None,
    *,
    full: bool,
    run_counts: dict[str, int] | None = None,
) -> None:
    """Advance the ``sync_state`` cursor (never backwards) and the run's counts for ``resource``, in the
    caller's transaction — the one that holds the page's rows."""
    cur = driver_connection(session).cursor()
    if high_water is not None:
        cur.execute(
            "INSERT INTO sync_state AS s (practice_id, source, resource, cursor) "
            "VALUES (%(pid)s, 'animana', %(resource)s, %(cursor)s) "
            "ON CONFLICT (practice_id, source, resource) DO UPDATE SET cursor = EXCLUDED.cursor "
            "WHERE s.cursor IS NULL OR EXCLUDED.cursor::timestamptz > s.cursor::timestamptz",
            params(target, resource=resource, cursor=high_water.isoformat()),
        )
    if run_counts is not None and target.sync_run_id is not None:
        cur.execute(
            "UPDATE sync_run SET counts = counts || jsonb_build_object(%(resource)s::text, %(c)s::jsonb) "
            "WHERE practice_id = %(pid)s AND id = %(run)s",
            params(target, resource=resource, c=json.dumps(run_counts)),
        )


def read_cursor(session: Session, practice_id: int, resource: str) -> dt.datetime | None:
    value = session.execute(
        text(
            "SELECT cursor FROM sync_state WHERE practice_id = :pid AND source = 'animana' AND resource = :r"
        ),
        {"pid": practice_id, "r": resource},
    ).scalar()
    return dt.datetime.fromisoformat(value) if value else None


def mark_synced(session: Session, practice_id: int, resources: Iterable[str], *, full: bool) -> None:
    statement = _MARK_SYNCED[full]
    for resource in resources:
        session.execute(statement, {"pid": practice_id, "r": resource})


def start_run(session: Session, practice_id: int, *, full: bool) -> int:
    return int(
        session.execute(
            text(
                "INSERT INTO sync_run (practice_id, source, mode) VALUES (:pid, 'animana', :mode) RETURNING id"
            ),
            {"pid": practice_id, "mode": "full" if full else "incremental"},
        ).scalar_one()
    )


def finish_run(session: Session, practice_id: int, run_id: int, *, error: str | None = None) -> None:
    session.execute(
        text(
            "UPDATE sync_run SET finished_at = clock_timestamp(), status = :status, error = :error "
            "WHERE practice_id = :pid AND id = :run"
        ),
        {"pid": practice_id, "run": run_id, "status": "failed" if error else "succeeded", "error": error},
    )
