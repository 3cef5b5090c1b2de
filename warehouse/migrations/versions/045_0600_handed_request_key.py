"""The request an entry was handed over as (issue 15, conflicts never silent).

A hand-over mark (0580) says an entry's write may have reached Animana; the settlement then takes Animana holding
the entry's value for that write come back. When the write's outcome was never learnt (the dispatcher killed, the
answer lost) and an Animana user typed that very value meanwhile, the user's edit was overwritten without a
conflict (bench/writeback.py: 1 to 3 of ~55 overlapping edits). ``request_key``: the idempotency key of the request
the entry was handed over as (NULL once it was handed over as two different requests — an update's key follows the
version it is conditional on). Animana answers a repeated request with its first answer when it took it, so a
refusal of the same request (a 412) proves that no attempt under that key happened: the settlement defers such a
row until the entry's re-send tells, and the dispatcher then takes the mark back.

Revision ID: 0600
Revises: 0590
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0600"
down_revision: str | Sequence[str] | None = "0590"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE writeback_handed ADD COLUMN request_key text")


def downgrade() -> None:
    op.execute("ALTER TABLE writeback_handed DROP COLUMN request_key")
