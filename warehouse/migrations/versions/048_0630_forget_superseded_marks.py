"""A superseded outbox entry's hand-over mark goes with it, by a trigger (issue 15).

A hand-over mark (``writeback_handed``, 0580) tells the settlement that a value of an *open* entry may have reached
Animana; no settlement looks at a superseded entry. Its mark stayed for ever, and the three ways an entry is
superseded (a settlement, a conflict's resolution, a retried dead letter folding later changes) would each have to
delete it: one row trigger on the state instead.

Revision ID: 0630
Revises: 0620
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0630"
down_revision: str | Sequence[str] | None = "0620"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WRITEBACK_FORGET_SUPERSEDED = """
CREATE OR REPLACE FUNCTION public.writeback_forget_superseded()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
  DELETE FROM writeback_handed WHERE practice_id = NEW.practice_id AND entry_id = NEW.id;
  RETURN NULL;
END $function$
"""
WRITEBACK_FORGET_SUPERSEDED_TRIGGER = (
    "CREATE TRIGGER writeback_forget_superseded AFTER UPDATE OF state ON public.writeback_outbox FOR EACH ROW "
    "WHEN (((new.state)::text = 'superseded'::text)) EXECUTE FUNCTION writeback_forget_superseded()"
)


def upgrade() -> None:
    op.execute(WRITEBACK_FORGET_SUPERSEDED)
    op.execute(WRITEBACK_FORGET_SUPERSEDED_TRIGGER)
    op.execute(
        "DELETE FROM writeback_handed h USING writeback_outbox o WHERE o.practice_id = h.practice_id "
        "AND o.id = h.entry_id AND o.state = 'superseded'"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER writeback_forget_superseded ON writeback_outbox")
    op.execute("DROP FUNCTION writeback_forget_superseded()")
