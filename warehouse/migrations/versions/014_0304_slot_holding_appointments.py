"""No double booking among the appointments that hold their slot: booked, checked in, in consult.

Until now every appointment that was not cancelled took part in ``no_double_booking``, finished consults and
no-shows included. Those no longer occupy their resource: a no-show's slot can take a walk-in, and a consult
finished early frees the rest of its slot. The booking services (`warehouse.scheduling`) now see the same
appointments in the way as the constraint (`SLOT_HOLDING_STATUSES`).

It is also the largest single cost of loading history. The constraint's check is a GiST search per inserted
row (practice, resource, time range), ~15 µs, and an Animana mirror is almost all history (finished, no-show
or cancelled). Measured on the sync of 4 medium practices (84,097 appointments, pg_stat_statements): the
appointment inserts took 3.94 s with the old predicate, 2.64 s with this one, the same as with no constraint
at all.

Downgrade restores the old predicate; it fails (and changes nothing) if a slot freed here has been booked
again meanwhile, since the old rule would call that a double booking.

Revision ID: 0304
Revises: 0303
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0304"
down_revision: str | Sequence[str] | None = "0303"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Added on the partitioned parent: PostgreSQL creates it on every partition, and onboarding's new partitions
# (CREATE TABLE … PARTITION OF) get it from the parent.
_CONSTRAINT = """
ALTER TABLE appointment DROP CONSTRAINT no_double_booking;
ALTER TABLE appointment ADD CONSTRAINT no_double_booking
  EXCLUDE USING gist (practice_id WITH =, resource_id WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&)
  WHERE ({where})
"""


def upgrade() -> None:
    op.execute(_CONSTRAINT.format(where="status IN ('booked', 'checked_in', 'in_consult')"))


def downgrade() -> None:
    op.execute(_CONSTRAINT.format(where="status <> 'cancelled'"))
