"""Which outbox entries were handed to Animana (issue 15, conflicts never silent).

When Animana holds, for a field with an unacknowledged local change, a value one of our own open entries carries,
the settlement took it for our write come back (applied, its answer lost or not yet recorded) and kept ours. An
Animana user who typed that same value was overwritten without a conflict: bench/writeback.py found 4 of 57
overlapping edits so (values from 10 towns and 6 surnames). The entry's ``attempts`` cannot tell the two apart: a
dispatcher killed mid-send leaves no attempt recorded. ``writeback_handed``: the dispatcher commits a row per entry
before its write goes out (a transaction of its own; the entry itself is locked by the claim until the batch
commits), and removes it when Animana acknowledges the entry. Only a handed entry's value is taken for an echo.

A practice table with the usual ``tenant_isolation`` policy.

Revision ID: 0580
Revises: 0570
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0580"
down_revision: str | Sequence[str] | None = "0570"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE writeback_handed (
          practice_id bigint NOT NULL CONSTRAINT fk_writeback_handed_practice_id_tenant REFERENCES tenant (id),
          entry_id bigint NOT NULL,
          handed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          CONSTRAINT pk_writeback_handed PRIMARY KEY (practice_id, entry_id)
        );
        ALTER TABLE writeback_handed ENABLE ROW LEVEL SECURITY;
        ALTER TABLE writeback_handed FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON writeback_handed
          USING (practice_id = ANY (app_practice_ids()))
          WITH CHECK (practice_id = ANY (app_practice_ids()));
        GRANT SELECT, INSERT, UPDATE, DELETE ON writeback_handed TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON writeback_handed TO vetconnect_system;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE writeback_handed")
