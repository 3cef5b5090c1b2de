"""Drop the practice → tenant foreign keys that another foreign key already implies.

``appointment.practice_id``, ``visit.practice_id`` and ``invoice.practice_id`` each had their own foreign key
to ``tenant``, next to a NOT NULL composite key whose first column is that same ``practice_id``:
appointment → resource (practice_id, resource_id), visit → patient (practice_id, patient_id), invoice →
client (practice_id, client_id). The referenced row has its own foreign key to ``tenant``, so a row whose
practice is not a tenant can already not exist, and a tenant with rows cannot be deleted (its resources,
patients or clients could not be). The direct keys only cost a check per inserted row: 1.1 M checks in a
20-practice Animana load (~1 µs each, the per-row trigger time of EXPLAIN ANALYZE).

Tables whose practice is not implied this way (client, patient, resource, …) keep their key.

Revision ID: 0305
Revises: 0304
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0305"
down_revision: str | Sequence[str] | None = "0304"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the table whose NOT NULL (practice_id, …) key implies the table's practice is a tenant (tested)
IMPLIED_BY = {"appointment": "resource", "visit": "patient", "invoice": "client"}


def upgrade() -> None:
    for table in IMPLIED_BY:
        op.drop_constraint(f"fk_{table}_practice_id_tenant", table, type_="foreignkey")


def downgrade() -> None:
    for table in IMPLIED_BY:
        op.create_foreign_key(f"fk_{table}_practice_id_tenant", table, "tenant", ["practice_id"], ["id"])
