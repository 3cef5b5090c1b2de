"""A franchise can switch a reminder template off, as it can its price list items, appointment types and
vaccine protocols.

The shared-resources pages (issue 16) create, edit and deactivate the franchise's items of all four resources;
a reminder template had no ``active`` column, so the only way to retire one was to delete it, which the
reminders that name it (``reminder.template_id``) and its version history forbid. Existing templates stay on.
The version trigger (``record_shared_change``) records the whole row, so the new column is versioned as is.

Revision ID: 0440
Revises: 0380
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0440"
down_revision: str | Sequence[str] | None = "0430"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE reminder_template ADD COLUMN active boolean DEFAULT true NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE reminder_template DROP COLUMN active")
