"""Mart change queue: "today" is looked up once per practice of a statement, not once per row.

0301's triggers for payment and client_patient mark the practice's local today, computed over the distinct
practices of the transition table. But the insert's ``WHERE day IS NOT NULL`` is pushed down below that
DISTINCT into the scan of the transition table, so ``mart_local_day`` (a SQL function with a tenant look-up)
ran for every row: 43,198 calls for the 43,188 payment and ownership rows of a sync of 2 medium practices,
0.21 s of PostgreSQL time. ``OFFSET 0`` keeps the filter above the DISTINCT (one call per practice). Same rows
end up in ``mart_dirty_day``.

Revision ID: 0302
Revises: 0404
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0302"
down_revision: str | Sequence[str] | None = "0404"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TODAY_ONCE = (
    "SELECT p.practice_id, mart_local_day(p.practice_id, now()) FROM (SELECT DISTINCT practice_id FROM {rows} "
    "OFFSET 0) p"
)
# 0301's query, which the downgrade restores.
TODAY_BEFORE = "SELECT p.practice_id, mart_local_day(p.practice_id, now()) FROM (SELECT DISTINCT practice_id FROM {rows}) p"
TABLES = ("payment", "client_patient")


def _queue_function(table: str, days: str) -> str:
    """``mart_dirty_<table>()`` marking the (practice_id, day) pairs of the query ``days`` (``{rows}``: the
    statement's transition table)."""
    insert = (
        "INSERT INTO mart_dirty_day (practice_id, day) SELECT d.practice_id, d.day "
        f"FROM ({days}) AS d(practice_id, day) WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;"
    )
    return f"""
    CREATE OR REPLACE FUNCTION "mart_dirty_{table}"() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'DELETE' THEN {insert.format(rows="new_rows")} END IF;
      IF TG_OP <> 'INSERT' THEN {insert.format(rows="old_rows")} END IF;
      RETURN NULL;
    END $$;
    """


def upgrade() -> None:
    for table in TABLES:
        op.execute(_queue_function(table, TODAY_ONCE))


def downgrade() -> None:
    for table in TABLES:
        op.execute(_queue_function(table, TODAY_BEFORE))
