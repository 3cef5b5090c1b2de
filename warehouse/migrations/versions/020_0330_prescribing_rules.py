"""What the prescribing and vaccination rules need to record.

- ``product.species``: the species a medicine is registered for (NULL: not recorded, so no warning). A
  prescription for another species is allowed (the cascade) but only once the prescriber confirmed it, which
  ``prescription.other_species_confirmed`` keeps (the row is audited by its table's trigger).
- ``reminder.closed_by_vaccination_id`` and ``reminder.closed_at``: why and when a vaccination reminder was
  closed, when a later dose of the same vaccine was recorded (no foreign key, like ``vaccination_id``: the
  Animana loader deletes and reloads synced vaccinations).

Revision ID: 0330
Revises: 0320
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0330"
down_revision: str | Sequence[str] | None = "0320"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE product ADD COLUMN species varchar(32)[]")
    op.execute("ALTER TABLE prescription ADD COLUMN other_species_confirmed boolean NOT NULL DEFAULT false")
    op.execute(
        "ALTER TABLE reminder ADD COLUMN closed_by_vaccination_id bigint, ADD COLUMN closed_at timestamptz"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE reminder DROP COLUMN closed_at, DROP COLUMN closed_by_vaccination_id")
    op.execute("ALTER TABLE prescription DROP COLUMN other_species_confirmed")
    op.execute("ALTER TABLE product DROP COLUMN species")
