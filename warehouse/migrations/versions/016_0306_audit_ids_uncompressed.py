"""Audit entries keep the ids of the rows a statement changed uncompressed (``STORAGE EXTERNAL``).

An audit entry lists every id a statement touched: a batch of an Animana load writes one entry with up to
20,000 ids (160 kB). PostgreSQL compressed that array with pglz on the way to TOAST, ~6 ms per 20,000 ids
(this server has no lz4), and compression was most of the audit trigger's cost: 0.54 s -> 0.21 s of audit
inserts for a sync of 4 medium practices (pg_stat_statements). The arrays are still stored out of line, at
~2.5x the compressed size (28 MB for a 20-practice load's 3.5 M ids), which an audit log can afford.

Set on the partitioned parent: it recurses to the existing partitions, and a partition created later
(``CREATE TABLE … PARTITION OF``) takes its columns' storage from the parent.

Revision ID: 0306
Revises: 0305
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0306"
down_revision: str | Sequence[str] | None = "0305"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ALTER COLUMN entity_ids SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE audit_log ALTER COLUMN entity_ids SET STORAGE EXTENDED")
