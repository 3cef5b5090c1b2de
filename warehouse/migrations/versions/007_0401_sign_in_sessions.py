"""Sign-in hardening: TOTP replay guard, server-side sessions, linked OIDC identities.

- ``app_user.totp_last_step``: the last accepted TOTP time step; a code is accepted only for a later step.
- ``user_session``: one row per signed-in browser session, keyed by the SHA-256 of a random token the browser
  session holds. ``touch_user_session(hash)`` validates it on every page load (revoked, absolute and idle
  expiry) and is the only way the application role reads a row by its hash: the role cannot select the hash
  column. A change of a user's memberships or deactivating the account revokes their sessions (triggers),
  so a profile cached in a browser session never outlives a change of roles.
- ``oidc_identity``: external identities an admin linked to accounts (no provisioning from the provider).

Like ``app_user`` and ``membership`` these are global, not practice data: a user sees only their own rows;
everything else goes through the audited system session.

Revision ID: 0401
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0401"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Seconds between two writes of last_seen_at for one session: a rerun per keystroke need not write a row.
_TOUCH_EVERY = "30 seconds"

FUNCTIONS = f"""
CREATE FUNCTION touch_user_session(p_token_sha256 bytea)
RETURNS TABLE (user_id bigint, session_id bigint, ended text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
  s user_session%ROWTYPE;
BEGIN
  SELECT * INTO s FROM user_session WHERE token_sha256 = p_token_sha256 FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT NULL::bigint, NULL::bigint, 'unknown'::text;
    RETURN;
  END IF;
  IF s.revoked_at IS NULL THEN
    IF now() >= s.expires_at THEN
      s.revoked_reason := 'absolute timeout';
    ELSIF now() - s.last_seen_at > s.idle_timeout THEN
      s.revoked_reason := 'idle timeout';
    END IF;
    IF s.revoked_reason IS NOT NULL THEN
      s.revoked_at := now();
      UPDATE user_session SET revoked_at = s.revoked_at, revoked_reason = s.revoked_reason WHERE id = s.id;
    ELSIF now() - s.last_seen_at > interval '{_TOUCH_EVERY}' THEN
      UPDATE user_session SET last_seen_at = now() WHERE id = s.id;
    END IF;
  END IF;
  RETURN QUERY SELECT s.user_id, s.id,
    CASE WHEN s.revoked_at IS NULL THEN NULL ELSE coalesce(s.revoked_reason, 'revoked')::text END;
END $$;

CREATE FUNCTION revoke_sessions_of_changed_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
  IF TG_TABLE_NAME = 'membership' THEN
    UPDATE user_session SET revoked_at = now(), revoked_reason = 'roles changed'
    WHERE user_session.user_id = coalesce(NEW.user_id, OLD.user_id) AND revoked_at IS NULL;
  ELSIF NOT NEW.is_active AND OLD.is_active THEN
    UPDATE user_session SET revoked_at = now(), revoked_reason = 'account deactivated'
    WHERE user_session.user_id = NEW.id AND revoked_at IS NULL;
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column("app_user", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "user_session",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "password",
                "oidc",
                name="sign_in_method",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),  # fmt: skip
        sa.Column("user_agent", sa.String(length=400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("idle_timeout", sa.Interval(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_user_session_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_user_session_token_sha256")),
        info={"tenancy": "global"},
    )
    op.create_index(
        "ix_user_session_live", "user_session", ["user_id"], postgresql_where=sa.text("revoked_at IS NULL")
    )
    op.create_table(
        "oidc_identity",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("issuer", sa.String(length=400), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("linked_by", sa.BigInteger(), nullable=True),
        sa.Column("last_id_token_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "subject IS NOT NULL OR email IS NOT NULL", name=op.f("ck_oidc_identity_subject_or_email")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_oidc_identity_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["linked_by"], ["app_user.id"], name=op.f("fk_oidc_identity_linked_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_identity")),
        sa.UniqueConstraint("issuer", "subject", name=op.f("uq_oidc_identity_issuer_subject")),
        sa.UniqueConstraint("issuer", "email", name=op.f("uq_oidc_identity_issuer_email")),
        info={"tenancy": "global"},
    )
    op.create_index(op.f("ix_oidc_identity_user_id"), "oidc_identity", ["user_id"])
    op.execute(FUNCTIONS)
    op.execute(
        """
        GRANT UPDATE (totp_last_step) ON app_user TO vetconnect_app;

        ALTER TABLE user_session ENABLE ROW LEVEL SECURITY;
        ALTER TABLE user_session FORCE ROW LEVEL SECURITY;
        CREATE POLICY own_sessions ON user_session FOR SELECT USING (user_id = app_user_id());
        CREATE POLICY end_own_sessions ON user_session FOR UPDATE
          USING (user_id = app_user_id()) WITH CHECK (user_id = app_user_id());
        -- Not the token hash: the application finds a session by its hash only through touch_user_session.
        GRANT SELECT (id, user_id, method, user_agent, created_at, last_seen_at, idle_timeout, expires_at,
                      revoked_at, revoked_reason) ON user_session TO vetconnect_app;
        GRANT UPDATE (revoked_at, revoked_reason) ON user_session TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON user_session TO vetconnect_system;

        ALTER TABLE oidc_identity ENABLE ROW LEVEL SECURITY;
        ALTER TABLE oidc_identity FORCE ROW LEVEL SECURITY;
        CREATE POLICY own_identities ON oidc_identity FOR SELECT USING (user_id = app_user_id());
        GRANT SELECT ON oidc_identity TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON oidc_identity TO vetconnect_system;

        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vetconnect_app, vetconnect_system;

        -- Owned by the BYPASSRLS system role, not the superuser that runs migrations: least privilege.
        ALTER FUNCTION touch_user_session(bytea) OWNER TO vetconnect_system;
        REVOKE ALL ON FUNCTION touch_user_session(bytea) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION touch_user_session(bytea) TO vetconnect_app, vetconnect_system;
        ALTER FUNCTION revoke_sessions_of_changed_user() OWNER TO vetconnect_system;
        CREATE TRIGGER revoke_sessions AFTER INSERT OR UPDATE OR DELETE ON membership
          FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_changed_user();
        CREATE TRIGGER revoke_sessions AFTER UPDATE OF is_active ON app_user
          FOR EACH ROW EXECUTE FUNCTION revoke_sessions_of_changed_user();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS revoke_sessions ON membership")
    op.execute("DROP TRIGGER IF EXISTS revoke_sessions ON app_user")
    op.execute("DROP FUNCTION IF EXISTS revoke_sessions_of_changed_user()")
    op.execute("DROP FUNCTION IF EXISTS touch_user_session(bytea)")
    op.execute("REVOKE UPDATE (totp_last_step) ON app_user FROM vetconnect_app")
    op.drop_index(op.f("ix_oidc_identity_user_id"), table_name="oidc_identity")
    op.drop_table("oidc_identity")
    op.drop_index("ix_user_session_live", table_name="user_session")
    op.drop_table("user_session")
    op.drop_column("app_user", "totp_last_step")
