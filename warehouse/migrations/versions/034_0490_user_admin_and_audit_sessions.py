"""User administration and the audit viewer: invitations, the sign-in session of each audit entry, and an index.

- ``user_invitation``: an administrator adds a user without choosing their password; the user sets it through
  a one-time link. Only the token's SHA-256 is stored (as for ``user_session``), with an expiry and the moment
  it was used. Global like ``app_user``; the application role has no grant at all: issuing and accepting go
  through the audited system session, like sign-in.
- ``audit_log.session_id``: the audit viewer answers "from which session". The application sets
  ``app.session_id`` beside ``app.user_id`` (``AccessContext.session_id``) and the chain trigger stores it,
  so trigger-written entries get it as well as ``audit.record`` ones. The hash covers it: ``audit_payload``
  adds a ``session`` key only when there is one, so every entry written before this migration (and every
  entry without a session, e.g. a system job) hashes exactly as before and old chains still verify.
  (Downgrading drops the column: entries written with a session no longer verify after that.)
- ``ix_audit_actor`` on ``(practice_id, actor_user_id, seq)``: the viewer's "by this user" filter pages
  newest first through the practice's chain; without it that filter reads the practice's whole log backwards.
  (No index on ``entity_ids``: an Animana batch writes one entry with up to 20,000 ids, see 0306; a GIN entry
  per id would cost every sync far more than the viewer gains. The viewer narrows by entity and period.)

Revision ID: 0490
Revises: 0500
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0490"
down_revision: str | Sequence[str] | None = "0500"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAYLOAD_BODY = """
  SELECT (jsonb_build_object(
    'practice_id', p_practice, 'seq', p_seq,
    'at', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'actor', p_actor, 'action', p_action, 'entity', p_entity, 'ids', p_ids, 'detail', p_detail)
    || CASE WHEN p_session IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('session', p_session) END)::text
"""

_CHAIN = """
CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  head record;
BEGIN
  SELECT seq, hash INTO head FROM audit_chain_head WHERE practice_id = NEW.practice_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'practice % is not onboarded (no audit chain)', NEW.practice_id;
  END IF;
  NEW.seq := head.seq + 1;
  NEW.occurred_at := clock_timestamp();
  NEW.actor_user_id := coalesce(NEW.actor_user_id, app_user_id());
  NEW.session_id := coalesce(NEW.session_id, app_session_id());
  NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
  NEW.prev_hash := head.hash;
  NEW.hash := encode(sha256(convert_to(NEW.prev_hash || audit_payload(
      NEW.practice_id, NEW.seq, NEW.occurred_at, NEW.actor_user_id, NEW.action, NEW.entity,
      NEW.entity_ids, NEW.detail, NEW.session_id), 'UTF8')), 'hex');
  UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE practice_id = NEW.practice_id;
  RETURN NEW;
END $$;
"""

_CHAIN_BEFORE = """
CREATE OR REPLACE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  head record;
BEGIN
  SELECT seq, hash INTO head FROM audit_chain_head WHERE practice_id = NEW.practice_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'practice % is not onboarded (no audit chain)', NEW.practice_id;
  END IF;
  NEW.seq := head.seq + 1;
  NEW.occurred_at := clock_timestamp();
  NEW.actor_user_id := coalesce(NEW.actor_user_id, app_user_id());
  NEW.detail := coalesce(NEW.detail, '{}'::jsonb);
  NEW.prev_hash := head.hash;
  NEW.hash := encode(sha256(convert_to(NEW.prev_hash || audit_payload(
      NEW.practice_id, NEW.seq, NEW.occurred_at, NEW.actor_user_id, NEW.action, NEW.entity,
      NEW.entity_ids, NEW.detail), 'UTF8')), 'hex');
  UPDATE audit_chain_head SET seq = NEW.seq, hash = NEW.hash WHERE practice_id = NEW.practice_id;
  RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "user_invitation",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_user_invitation_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["app_user.id"], name=op.f("fk_user_invitation_created_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_invitation")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_user_invitation_token_sha256")),
        info={"tenancy": "global"},
    )
    op.create_index(op.f("ix_user_invitation_user_id"), "user_invitation", ["user_id"])
    op.execute(
        """
        ALTER TABLE user_invitation ENABLE ROW LEVEL SECURITY;
        ALTER TABLE user_invitation FORCE ROW LEVEL SECURITY;
        GRANT SELECT, INSERT, UPDATE, DELETE ON user_invitation TO vetconnect_system;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vetconnect_system;
        """
    )
    op.add_column("audit_log", sa.Column("session_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_audit_actor", "audit_log", ["practice_id", "actor_user_id", "seq"])
    op.execute(
        """
        CREATE FUNCTION app_session_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT nullif(current_setting('app.session_id', true), '')::bigint
        $$;
        """
    )
    op.execute(
        "CREATE FUNCTION audit_payload(p_practice bigint, p_seq bigint, p_at timestamptz, p_actor bigint, "
        "p_action text, p_entity text, p_ids bigint[], p_detail jsonb, p_session bigint) RETURNS text "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $${_PAYLOAD_BODY}$$"
    )
    op.execute(_CHAIN)
    op.execute(
        "DROP FUNCTION audit_payload(bigint, bigint, timestamptz, bigint, text, text, bigint[], jsonb)"
    )


def downgrade() -> None:
    op.execute(
        "CREATE FUNCTION audit_payload(p_practice bigint, p_seq bigint, p_at timestamptz, p_actor bigint, "
        "p_action text, p_entity text, p_ids bigint[], p_detail jsonb) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$\n"
        "  SELECT jsonb_build_object(\n"
        "    'practice_id', p_practice, 'seq', p_seq,\n"
        """    'at', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),\n"""
        "    'actor', p_actor, 'action', p_action, 'entity', p_entity, 'ids', p_ids, 'detail', p_detail)::text\n"
        "$$"
    )
    op.execute(_CHAIN_BEFORE)
    op.execute(
        "DROP FUNCTION audit_payload(bigint, bigint, timestamptz, bigint, text, text, bigint[], jsonb, bigint)"
    )
    op.execute("DROP FUNCTION app_session_id()")
    op.drop_index("ix_audit_actor", table_name="audit_log")
    op.drop_column("audit_log", "session_id")
    op.drop_index(op.f("ix_user_invitation_user_id"), table_name="user_invitation")
    op.drop_table("user_invitation")
