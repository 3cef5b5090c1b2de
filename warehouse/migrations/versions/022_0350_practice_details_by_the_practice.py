"""The practice keeps the details its invoices must carry (address, postcode, city, VAT, KvK, IBAN) itself.

Until now only a system session could write ``tenant``. The application role gets UPDATE on exactly those six
columns, and a policy lets it update only a practice row of the session's access set: it can never rename a
practice, move it to another franchise or touch a franchise or department row. Which role at the practice may
do it (``practice.settings``) is checked by the service, as for every other write.

``tenant`` is a global table, so the statement-level audit triggers of the practice tables do not apply; a row
trigger writes one entry to the practice's audit chain per change of these columns, with old -> new of each
changed column (who and when come from the chain's own trigger), whichever session made it.

Revision ID: 0350
Revises: 0340
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0350"
down_revision: str | Sequence[str] | None = "0340"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DETAIL_COLUMNS = ("address", "postcode", "city", "vat_number", "kvk_number", "iban")


def upgrade() -> None:
    columns = ", ".join(DETAIL_COLUMNS)
    changed = " || ".join(
        f"CASE WHEN OLD.{c} IS DISTINCT FROM NEW.{c} THEN "
        f"jsonb_build_object('{c}', jsonb_build_object('old', OLD.{c}, 'new', NEW.{c})) ELSE '{{}}'::jsonb END"
        for c in DETAIL_COLUMNS
    )
    op.execute(
        f"""
        GRANT UPDATE ({columns}) ON tenant TO vetconnect_app;
        CREATE POLICY practice_details ON tenant FOR UPDATE
          USING (kind = 'practice' AND id = ANY (app_practice_ids()))
          WITH CHECK (kind = 'practice' AND id = ANY (app_practice_ids()));

        CREATE FUNCTION audit_practice_details() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public AS $$
        DECLARE
          changes jsonb := {changed};
        BEGIN
          IF changes <> '{{}}'::jsonb THEN
            INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash)
            VALUES (NEW.id, 'update', 'practice_details', ARRAY[NEW.id], jsonb_build_object('changes', changes),
                    '', '');
          END IF;
          RETURN NULL;
        END $$;
        CREATE TRIGGER audit_practice_details AFTER UPDATE OF {columns} ON tenant
          FOR EACH ROW WHEN (NEW.kind = 'practice') EXECUTE FUNCTION audit_practice_details();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_practice_details ON tenant")
    op.execute("DROP FUNCTION IF EXISTS audit_practice_details()")
    op.execute("DROP POLICY IF EXISTS practice_details ON tenant")
    op.execute(f"REVOKE UPDATE ({', '.join(DETAIL_COLUMNS)}) ON tenant FROM vetconnect_app")
