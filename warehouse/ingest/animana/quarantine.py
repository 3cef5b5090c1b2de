"""Quarantine: source records that did not become rows go to ``ingest_quarantine`` with the reason, never dropped.

Two ways in: the mapping's rejections and notes (`quarantine_rejections`), and staged rows whose required parent
is not in the warehouse (`quarantine_unresolved`, set-based, before the upsert leaves them out).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from warehouse.ingest.animana.rows import LoadTarget, Rejection
from warehouse.ingest.animana.statements import missing, params

NOTE_PREFIX = "loaded with a correction: "


def quarantine_rejections(
    cur: psycopg.Cursor, target: LoadTarget, resource: str, rejected: Sequence[Rejection]
) -> int:
    """Insert rejections, skipping one already open with the same id and reason (a rerun does not duplicate).
    Notes (loaded with a correction) are stored resolved. Returns the number of real rejections."""
    if not rejected:
        return 0
    cur.executemany(
        "INSERT INTO ingest_quarantine (practice_id, source, resource, external_id, raw, reason, sync_run_id, "
        "resolved_at) SELECT %(pid)s, 'animana', %(resource)s::text, %(external_id)s::text, %(raw)s::text, "
        "%(reason)s::text, %(run)s::bigint, CASE WHEN %(note)s::boolean THEN clock_timestamp() END "
        "WHERE NOT EXISTS (SELECT 1 FROM ingest_quarantine q WHERE q.practice_id = %(pid)s "
        "AND q.source = 'animana' AND q.resource = %(resource)s::text "
        "AND q.external_id IS NOT DISTINCT FROM %(external_id)s::text AND q.reason = %(reason)s::text "
        "AND (q.resolved_at IS NULL OR %(note)s::boolean)) "
        # An erased client's relation is not kept as raw text either (``warehouse.privacy.erasure``).
        "AND NOT (%(resource)s::text = 'relations' AND EXISTS (SELECT 1 FROM client c JOIN client_erasure e "
        "ON e.practice_id = c.practice_id AND e.client_id = c.id WHERE c.practice_id = %(pid)s "
        "AND c.animana_id = %(external_id)s::text))",
        [
            params(
                target,
                resource=resource,
                external_id=r.external_id,
                raw=r.raw,
                reason=(NOTE_PREFIX + r.reason) if r.note else r.reason,
                note=r.note,
            )
            for r in rejected
        ],
    )
    return sum(1 for r in rejected if not r.note)


def quarantine_unresolved(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    staging: str,
    unresolved: sql.Composable,
    reason: sql.Composable,
) -> int:
    """Quarantine the rows of ``staging`` for which ``unresolved`` holds (their required parent is unknown), with
    ``reason`` (an expression over the staged row ``s``); returns how many."""
    cur.execute(
        sql.SQL(
            "INSERT INTO ingest_quarantine (practice_id, source, resource, external_id, raw, reason, sync_run_id) "
            "SELECT %(pid)s, 'animana', %(resource)s, s.animana_id, row_to_json(s)::text, {reason}, %(run)s "
            "FROM {staging} s WHERE {unresolved}"
        ).format(reason=reason, staging=sql.Identifier(staging), unresolved=unresolved),
        params(target, resource=resource),
    )
    return cur.rowcount


def unknown_parent(prefix: str, key: str) -> sql.Composed:
    """The reason ``'<prefix> ' || s.<key>``: what was missing and the source id that named it."""
    return sql.SQL("{} || {}").format(sql.Literal(prefix + " "), sql.Identifier("s", key))


def quarantine_unknown_animal(cur: psycopg.Cursor, target: LoadTarget, resource: str, staging: str) -> int:
    """Quarantine staged clinical rows whose animal is not (yet) in the warehouse."""
    return quarantine_unresolved(
        cur, target, resource, staging, missing("patient", "s.patient_animana_id"),
        unknown_parent("unknown animal", "patient_animana_id"),
    )  # fmt: skip
