"""Credentials private to their owner: colleagues may see each other's names, not their password hashes.

Since 0002 the ``colleagues`` policy lets the application role read every column of the accounts that share a
practice with the signed-in user, ``password_hash`` and ``totp_secret_enc`` included: a page bug or an
injected query would hand out argon2 hashes to crack offline. The application role now selects every column
but those two; a signed-in user reads *their own* credentials only through ``own_credentials()`` (a
SECURITY DEFINER function keyed on ``app.user_id``), and sign-in reads them in the audited system session.
Updates are unchanged (the ``own_account`` policy and the column grants of 0002/0401).

Revision ID: 0403
Revises: 0301
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0403"
down_revision: str | Sequence[str] | None = "0301"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRIVATE = ("password_hash", "totp_secret_enc")


def upgrade() -> None:
    # The grant lists every other column as it is now; a column added later must be granted by its migration.
    op.execute(
        f"""
        REVOKE SELECT ON app_user FROM vetconnect_app;
        DO $$
        DECLARE readable text;
        BEGIN
          SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) INTO readable
            FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = 'app_user'
             AND column_name NOT IN {_PRIVATE!r};
          EXECUTE format('GRANT SELECT (%s) ON app_user TO vetconnect_app', readable);
        END $$;

        CREATE FUNCTION own_credentials() RETURNS TABLE (password_hash text, totp_secret_enc bytea)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
          SELECT u.password_hash, u.totp_secret_enc FROM app_user u WHERE u.id = app_user_id()
        $$;
        -- Owned by the BYPASSRLS system role, not the superuser that runs migrations: least privilege.
        ALTER FUNCTION own_credentials() OWNER TO vetconnect_system;
        REVOKE ALL ON FUNCTION own_credentials() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION own_credentials() TO vetconnect_app;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS own_credentials()")
    op.execute("GRANT SELECT ON app_user TO vetconnect_app")
