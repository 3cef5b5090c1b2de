"""Marts for dashboards and notebooks, their change queue (triggers on the source tables), the analyst role.

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = (
    "mart_practice_day", "mart_staff_day", "mart_appointment_type_day", "mart_hour_day", "mart_diagnosis_day",
    "mart_practice_month", "mart_open_invoice", "mart_dirty_day",
)  # fmt: skip

# Which practice-days a written row touches, per source table (``r`` is an old or new row). Local days follow
# the practice's time zone. Vaccination compliance of a due date depends on boosters given up to 30 days either
# side, so a vaccination touches its own due day and the 61 days around the day it was given. Ownership links
# and payments change practice-level measures (client history, receivables): they flag today.
DAY_OF_ROW = {
    "appointment": "SELECT mart_local_day(r.practice_id, r.starts_at)",
    "visit": "SELECT mart_local_day(r.practice_id, r.started_at)",
    "staff_shift": "SELECT mart_local_day(r.practice_id, r.starts_at)",
    "diagnosis": "SELECT mart_local_day(r.practice_id, r.diagnosed_at)",
    "invoice": "SELECT r.issued_on",
    "invoice_line": "SELECT i.issued_on FROM invoice i WHERE i.practice_id = r.practice_id AND i.id = r.invoice_id",
    "payment": "SELECT mart_local_day(r.practice_id, now())",
    "client_patient": "SELECT mart_local_day(r.practice_id, now())",
    "vaccination": "SELECT r.due_on UNION SELECT g::date FROM generate_series(r.given_on - 30, r.given_on + 30, "
    "interval '1 day') g",
    "reminder": "SELECT r.due_on",
}
# What the analyst role may read: the marts and the record without secrets (client PII is encrypted anyway).
ANALYST_TABLES = (
    *(t for t in PRACTICE_TABLES if t != "mart_dirty_day"), "tenant", "resource", "appointment_type", "appointment",
    "visit", "diagnosis", "vaccination", "reminder", "invoice", "invoice_line", "payment", "patient",
    "client_patient", "product", "staff_shift",
)  # fmt: skip
ANALYST_TABLE_NAMES = ", ".join(f'"{t}"' for t in ANALYST_TABLES)
ANALYST_CLIENT_COLUMNS = "practice_id, id, postcode, city, active, created_at, deleted_at"

FUNCTIONS = """
CREATE FUNCTION mart_local_day(p_practice bigint, p_at timestamptz) RETURNS date LANGUAGE sql STABLE AS $$
  SELECT (p_at AT TIME ZONE coalesce((SELECT timezone FROM tenant WHERE id = p_practice), 'Europe/Amsterdam'))::date
$$;
"""


# This revision's own copies of the tenancy building blocks: a migration keeps the SQL it ran (README.md).
def _protect_practice_table(table: str) -> str:
    """RLS enabled and forced; rows visible and writable only for practices in ``app.practice_ids``."""
    return f"""
    ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;
    ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON "{table}"
      USING (practice_id = ANY (app_practice_ids()))
      WITH CHECK (practice_id = ANY (app_practice_ids()));
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_system;
    """


def _dirty_function(table: str, days: str) -> str:
    insert = (
        "INSERT INTO mart_dirty_day (practice_id, day) SELECT DISTINCT r.practice_id, d.day FROM {rows} r "
        f"CROSS JOIN LATERAL ({days}) AS d(day) WHERE d.day IS NOT NULL ON CONFLICT DO NOTHING;"
    )
    return f"""
    CREATE FUNCTION "mart_dirty_{table}"() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'DELETE' THEN {insert.format(rows="new_rows")} END IF;
      IF TG_OP <> 'INSERT' THEN {insert.format(rows="old_rows")} END IF;
      RETURN NULL;
    END $$;
    CREATE TRIGGER mart_dirty_insert AFTER INSERT ON "{table}" REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION "mart_dirty_{table}"();
    CREATE TRIGGER mart_dirty_update AFTER UPDATE ON "{table}" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION "mart_dirty_{table}"();
    CREATE TRIGGER mart_dirty_delete AFTER DELETE ON "{table}" REFERENCING OLD TABLE AS old_rows
      FOR EACH STATEMENT EXECUTE FUNCTION "mart_dirty_{table}"();
    """


def _measures(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.BigInteger(), server_default="0", nullable=False) for n in names]


def _table(name: str, keys: list[sa.Column], *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        *keys,
        *columns,
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f(f"fk_{name}_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", *(k.name for k in keys), name=op.f(f"pk_{name}")),
        info={"tenancy": "practice"},
    )


APPOINTMENT_COUNTS = ("appts_booked", "appts_completed", "appts_cancelled", "appts_no_show")


def upgrade() -> None:
    def day() -> sa.Column:
        return sa.Column("day", sa.Date(), nullable=False)

    _table(
        "mart_practice_day", [day()],
        *_measures("revenue_excl_cents", "revenue_incl_cents", "invoices", "credit_notes", "lab_revenue_excl_cents",
                   "visits", "patients_seen", *APPOINTMENT_COUNTS, "booked_minutes", "shift_minutes", "vacc_due",
                   "vacc_done_30d", "reminders_due", "reminders_done"),
    )  # fmt: skip
    _table(
        "mart_staff_day", [day(), sa.Column("resource_id", sa.BigInteger(), nullable=False)],
        *_measures(*APPOINTMENT_COUNTS, "booked_minutes", "shift_minutes", "visits"),
    )  # fmt: skip
    _table(
        "mart_appointment_type_day", [day(), sa.Column("appointment_type_id", sa.BigInteger(), nullable=False)],
        *_measures(*APPOINTMENT_COUNTS, "booked_minutes"),
    )  # fmt: skip
    _table(
        "mart_hour_day", [day(), sa.Column("hour", sa.SmallInteger(), nullable=False)],
        *_measures("appts_booked", "appts_no_show", "booked_minutes"),
    )  # fmt: skip
    _table(
        "mart_diagnosis_day",
        [day(), sa.Column("venom_code", sa.String(16), nullable=False), sa.Column("term", sa.String(200), nullable=False)],
        *_measures("diagnoses"),
    )  # fmt: skip
    _table(
        "mart_practice_month", [sa.Column("month", sa.Date(), nullable=False)],
        *_measures("active_clients", "new_clients", "retention_base", "retained_clients"),
    )  # fmt: skip
    _table(
        "mart_open_invoice", [sa.Column("invoice_id", sa.BigInteger(), nullable=False)],
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("total_incl_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column("outstanding_cents", sa.BigInteger(), nullable=False),
    )  # fmt: skip
    op.create_index("ix_mart_open_invoice_issued", "mart_open_invoice", ["practice_id", "issued_on"])
    _table(
        "mart_dirty_day", [day()],
        sa.Column("marked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )  # fmt: skip
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))
    op.execute(FUNCTIONS)
    for table, days in DAY_OF_ROW.items():
        op.execute(_dirty_function(table, days))
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vetconnect_analyst') THEN
            CREATE ROLE vetconnect_analyst LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$;
        GRANT USAGE ON SCHEMA public TO vetconnect_analyst;
        GRANT SELECT ON {ANALYST_TABLE_NAMES} TO vetconnect_analyst;
        GRANT SELECT ({ANALYST_CLIENT_COLUMNS}) ON client TO vetconnect_analyst;
        """
    )


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON {ANALYST_TABLE_NAMES} FROM vetconnect_analyst")
    op.execute("REVOKE ALL ON client FROM vetconnect_analyst")
    op.execute("REVOKE USAGE ON SCHEMA public FROM vetconnect_analyst")
    for table in DAY_OF_ROW:
        for trigger in ("mart_dirty_insert", "mart_dirty_update", "mart_dirty_delete"):
            op.execute(f'DROP TRIGGER IF EXISTS {trigger} ON "{table}"')
        op.execute(f'DROP FUNCTION IF EXISTS "mart_dirty_{table}"()')
    op.execute("DROP FUNCTION IF EXISTS mart_local_day(bigint, timestamptz)")
    for table in reversed(PRACTICE_TABLES):
        op.execute(f'REVOKE ALL ON "{table}" FROM vetconnect_app, vetconnect_system')
        op.drop_table(table)
