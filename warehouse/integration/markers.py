"""Which records are not yet in step with Animana, for the small markers on the workspaces (agenda, client card):
a local change still on its way (an open outbox entry), one Animana refused (a dead letter), or an open conflict.

One query for all the records a page shows, never one per row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

Marker = Literal["conflict", "dead", "pending"]
RecordRef = tuple[str, int]  # (mirrored table, row id)

# The most pressing state wins when a record has several: a conflict waits for a person, a dead letter for a
# retry, a pending entry only for the dispatcher.
_MARKERS = text(
    """
    WITH wanted AS (
      SELECT * FROM unnest(CAST(:tables AS text[]), CAST(:ids AS bigint[])) AS w(table_name, row_id)
    ), states AS (
      SELECT o.table_name, o.row_id, CASE o.state WHEN 'dead' THEN 2 ELSE 1 END AS weight
      FROM writeback_outbox o JOIN wanted USING (table_name, row_id)
      WHERE o.practice_id = :p AND o.row_id = ANY(:ids) AND o.state IN ('pending', 'held', 'dead')
      UNION ALL
      SELECT c.table_name, c.row_id, 3
      FROM writeback_conflict c JOIN wanted USING (table_name, row_id)
      WHERE c.practice_id = :p AND c.row_id = ANY(:ids) AND c.state = 'open'
    )
    SELECT table_name, row_id, max(weight) AS weight FROM states GROUP BY 1, 2
    """
)
_BY_WEIGHT: dict[int, Marker] = {1: "pending", 2: "dead", 3: "conflict"}


def writeback_markers(
    session: Session, practice_id: int, records: Iterable[RecordRef]
) -> dict[RecordRef, Marker]:
    """The marker of each of these records of the practice that has one (records in step are left out)."""
    wanted = list(dict.fromkeys(records))
    if not wanted:
        return {}
    rows = session.execute(
        _MARKERS,
        {"p": practice_id, "tables": [t for t, _ in wanted], "ids": [i for _, i in wanted]},
    ).all()
    return {(r.table_name, r.row_id): _BY_WEIGHT[r.weight] for r in rows}
