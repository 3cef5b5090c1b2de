"""Tenancy and security: roles, RLS on every tenant table, practice partitions, audit chain, versioning.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = (
    "practice_module_mode", "tenant_data_key", "client", "patient", "client_patient", "weight_measurement",
    "resource", "appointment_type_override", "staff_shift", "appointment", "visit", "diagnosis",
    "vaccine_protocol_override", "vaccination", "prescription", "lab_order", "lab_observation", "document",
    "reminder_template_override", "reminder", "product_price_override", "invoice", "invoice_line", "payment",
    "event", "sync_state",
)  # fmt: skip
FRANCHISE_TABLES = ("appointment_type", "vaccine_protocol", "reminder_template", "product")
# Operational tables that are not audited row by row: the audit log itself, and high-volume logs of activity.
NOT_AUDITED = ("event", "sync_state")
VERSIONED = (
    "appointment_type", "appointment_type_override", "vaccine_protocol", "vaccine_protocol_override",
    "reminder_template", "reminder_template_override", "product", "product_price_override",
)  # fmt: skip

# Roles are cluster-wide and may already exist (another database on the same server, a re-run).
ROLES = """
    DO $$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vetconnect_app') THEN
        CREATE ROLE vetconnect_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vetconnect_system') THEN
        CREATE ROLE vetconnect_system NOLOGIN NOSUPERUSER BYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
    END $$;
    GRANT USAGE ON SCHEMA public TO vetconnect_app, vetconnect_system;
    """


def _protect_practice_table(table: str, *, app_privileges: str = "SELECT, INSERT, UPDATE, DELETE") -> str:
    """RLS enabled and forced; rows visible and writable only for practices in ``app.practice_ids``."""
    return f"""
    ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;
    ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON "{table}"
      USING (practice_id = ANY (app_practice_ids()))
      WITH CHECK (practice_id = ANY (app_practice_ids()));
    GRANT {app_privileges} ON "{table}" TO vetconnect_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_system;
    """


def _protect_franchise_table(table: str) -> str:
    """Franchise-level shared resources: visible and writable for the franchises of the allowed practices."""
    return f"""
    ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;
    ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;
    CREATE POLICY franchise_isolation ON "{table}"
      USING (franchise_id = ANY (app_franchise_ids()))
      WITH CHECK (franchise_id = ANY (app_franchise_ids()));
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_system;
    """


def _audit_writes(table: str) -> str:
    """Statement-level triggers with transition tables: one audit entry per practice per statement, listing
    every row id. Set-based, so a bulk load of a million rows costs one INSERT…SELECT, not a million."""
    events = (
        ("INSERT", "NEW TABLE AS changed_rows"),
        ("UPDATE", "NEW TABLE AS changed_rows"),
        ("DELETE", "OLD TABLE AS changed_rows"),
    )
    return "\n".join(
        f'CREATE TRIGGER audit_{event.lower()} AFTER {event} ON "{table}" REFERENCING {ref} '
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement();"
        for event, ref in events
    )


def _version_changes(table: str) -> str:
    """Row-level history (who, when, old → new) for franchise shared resources and their practice overrides."""
    return (
        f'CREATE TRIGGER version_changes AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
        "FOR EACH ROW EXECUTE FUNCTION record_shared_change();"
    )


FUNCTIONS = r"""
-- The access context of the current transaction, set by the application with set_config(..., true).
-- Unset or empty means the empty set: every policy fails closed.
CREATE FUNCTION app_practice_ids() RETURNS bigint[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_to_array(nullif(current_setting('app.practice_ids', true), ''), ',')::bigint[],
                  '{}'::bigint[])
$$;
CREATE FUNCTION app_user_id() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT nullif(current_setting('app.user_id', true), '')::bigint
$$;
-- Franchises are derived from the practice set inside the database, so they cannot be spoofed separately.
CREATE FUNCTION app_franchise_ids() RETURNS bigint[] LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = public AS $$
  SELECT coalesce(array_agg(DISTINCT franchise_id), '{}'::bigint[]) FROM tenant WHERE id = ANY (app_practice_ids())
$$;

-- Canonical text of an audit entry; the chain hash covers it, so any edit of a stored field breaks the chain.
CREATE FUNCTION audit_payload(p_practice bigint, p_seq bigint, p_at timestamptz, p_actor bigint, p_action text,
                              p_entity text, p_ids bigint[], p_detail jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object(
    'practice_id', p_practice, 'seq', p_seq,
    'at', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'actor', p_actor, 'action', p_action, 'entity', p_entity, 'ids', p_ids, 'detail', p_detail)::text
$$;

-- Appends to the practice's chain. The chain head row is locked FOR UPDATE, which serialises concurrent
-- writers of one practice until they commit: the price of a gap-free, verifiable chain.
CREATE FUNCTION audit_chain() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
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

-- One audit entry per practice per writing statement, with the ids of every row it touched.
CREATE FUNCTION audit_statement() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  has_id boolean;
BEGIN
  SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = TG_RELID AND attname = 'id' AND NOT attisdropped)
    INTO has_id;
  EXECUTE format(
    'INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail)
     SELECT practice_id, %L, %L, %s, jsonb_build_object(''rows'', count(*))
     FROM changed_rows GROUP BY practice_id',
    lower(TG_OP), TG_TABLE_NAME, CASE WHEN has_id THEN 'array_agg(id ORDER BY id)' ELSE 'NULL' END);
  RETURN NULL;
END $$;

-- Version history of shared resources: who, when, old -> new, for franchise rows and practice overrides.
CREATE FUNCTION record_shared_change() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
  new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
  any_row jsonb := coalesce(new_row, old_row);
BEGIN
  INSERT INTO shared_resource_change (franchise_id, practice_id, table_name, operation, row_key, changed_by, old, new)
  VALUES ((any_row ->> 'franchise_id')::bigint, (any_row ->> 'practice_id')::bigint, TG_TABLE_NAME, TG_OP,
          any_row - ARRAY(SELECT jsonb_object_keys(any_row)
                          EXCEPT SELECT unnest(ARRAY['franchise_id', 'practice_id', 'id',
                                  'appointment_type_id', 'protocol_id', 'template_id', 'product_id'])),
          app_user_id(), old_row, new_row);
  RETURN NULL;
END $$;

-- The fact tables partitioned by practice, found in the catalogue so that a table added by a later migration is
-- onboarded without redefining these functions.
CREATE FUNCTION practice_partitioned_tables() RETURNS SETOF text LANGUAGE sql STABLE AS $$
  SELECT c.relname::text
  FROM pg_partitioned_table pt
  JOIN pg_class c ON c.oid = pt.partrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
  WHERE n.nspname = 'public' AND NOT c.relispartition AND pt.partstrat = 'l' AND a.attname = 'practice_id'
  ORDER BY 1
$$;

-- Onboarding a practice creates its partition of every fact table and starts its audit chain. Partitions get
-- RLS forced and no grants: the application reaches rows only through the parent, where the policy applies.
CREATE FUNCTION onboard_practice(p_practice bigint) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  parent text;
  child text;
BEGIN
  IF NOT EXISTS (SELECT FROM tenant WHERE id = p_practice AND kind = 'practice') THEN
    RAISE EXCEPTION 'tenant % is not a practice', p_practice;
  END IF;
  FOR parent IN SELECT practice_partitioned_tables() LOOP
    child := parent || '_p' || p_practice;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES IN (%L)', child, parent, p_practice);
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', child);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', child);
  END LOOP;
  INSERT INTO audit_chain_head (practice_id, seq, hash) VALUES (p_practice, 0, repeat('0', 64))
  ON CONFLICT (practice_id) DO NOTHING;
END $$;

-- Offboarding takes the practice out of every access set (practice_ids_for_user skips it) and detaches the
-- partitions that nothing references, so the bulk of its history (events, audit, lab results, invoice
-- lines, raw device messages) leaves the live tables in one cheap step and stays as standalone tables for
-- export or archival. Partitions other tables point at by foreign key (appointments, visits) stay attached:
-- detaching them would orphan those references.
CREATE FUNCTION offboard_practice(p_practice bigint) RETURNS SETOF text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
DECLARE
  parent text;
BEGIN
  FOR parent IN
    SELECT t FROM practice_partitioned_tables() t
    WHERE NOT EXISTS (SELECT FROM pg_constraint c WHERE c.contype = 'f' AND c.confrelid = t::regclass)
  LOOP
    EXECUTE format('ALTER TABLE %I DETACH PARTITION %I', parent, parent || '_p' || p_practice);
    RETURN NEXT parent || '_p' || p_practice;
  END LOOP;
  UPDATE tenant SET offboarded_at = now() WHERE id = p_practice;
END $$;
"""


def upgrade() -> None:
    op.execute(ROLES)
    op.execute(FUNCTIONS)
    op.execute(
        """
        REVOKE ALL ON FUNCTION onboard_practice(bigint), offboard_practice(bigint) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION onboard_practice(bigint), offboard_practice(bigint) TO vetconnect_system;
        CREATE TRIGGER audit_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_chain();
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vetconnect_app, vetconnect_system;
        """
    )
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))
        if table not in NOT_AUDITED:
            op.execute(_audit_writes(table))
    for table in FRANCHISE_TABLES:
        op.execute(_protect_franchise_table(table))
    for table in VERSIONED:
        op.execute(_version_changes(table))
    # Append-only: the application may add and read audit entries, never change or remove them.
    op.execute(_protect_practice_table("audit_log", app_privileges="SELECT, INSERT"))
    op.execute("REVOKE UPDATE, DELETE ON audit_log FROM vetconnect_system")
    op.execute(_protect_practice_table("audit_chain_head", app_privileges="SELECT"))
    op.execute("REVOKE INSERT, UPDATE, DELETE ON audit_chain_head FROM vetconnect_system")
    op.execute(_protect_franchise_table("shared_resource_change"))
    op.execute(
        "REVOKE INSERT, UPDATE, DELETE ON shared_resource_change FROM vetconnect_app, vetconnect_system"
    )
    op.execute(
        """
        ALTER TABLE tenant ENABLE ROW LEVEL SECURITY;
        ALTER TABLE tenant FORCE ROW LEVEL SECURITY;
        CREATE POLICY visible_tenants ON tenant FOR SELECT
          USING (coalesce(practice_id, id) = ANY (app_practice_ids()) OR id = ANY (app_franchise_ids()));
        GRANT SELECT ON tenant TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE ON tenant TO vetconnect_system;

        ALTER TABLE membership ENABLE ROW LEVEL SECURITY;
        ALTER TABLE membership FORCE ROW LEVEL SECURITY;
        CREATE POLICY visible_memberships ON membership FOR SELECT
          USING (user_id = app_user_id() OR tenant_id IN (SELECT id FROM tenant));
        GRANT SELECT ON membership TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON membership TO vetconnect_system;

        ALTER TABLE app_user ENABLE ROW LEVEL SECURITY;
        ALTER TABLE app_user FORCE ROW LEVEL SECURITY;
        CREATE POLICY colleagues ON app_user FOR SELECT
          USING (id = app_user_id() OR id IN (SELECT user_id FROM membership));
        CREATE POLICY own_account ON app_user FOR UPDATE
          USING (id = app_user_id()) WITH CHECK (id = app_user_id());
        GRANT SELECT ON app_user TO vetconnect_app;
        GRANT UPDATE (full_name, email, password_hash, password_changed_at, totp_secret_enc, mfa_enabled)
          ON app_user TO vetconnect_app;
        GRANT SELECT, INSERT, UPDATE ON app_user TO vetconnect_system;

        -- The bypass log: written by system sessions, readable by nobody but the owner, never changed.
        ALTER TABLE system_access ENABLE ROW LEVEL SECURITY;
        ALTER TABLE system_access FORCE ROW LEVEL SECURITY;
        GRANT INSERT ON system_access TO vetconnect_system;
        """
    )


def downgrade() -> None:
    tables = (*PRACTICE_TABLES, *FRANCHISE_TABLES, "audit_log", "audit_chain_head", "shared_resource_change",
              "tenant", "membership", "app_user", "system_access")  # fmt: skip
    for table in tables:
        op.execute(f'DROP POLICY IF EXISTS tenant_isolation ON "{table}"')
        op.execute(f'DROP POLICY IF EXISTS franchise_isolation ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
        op.execute(f'REVOKE ALL ON "{table}" FROM vetconnect_app, vetconnect_system')
        for trigger in ("audit_insert", "audit_update", "audit_delete", "version_changes"):
            op.execute(f'DROP TRIGGER IF EXISTS {trigger} ON "{table}"')
    op.execute("DROP POLICY IF EXISTS visible_tenants ON tenant")
    op.execute("DROP POLICY IF EXISTS visible_memberships ON membership")
    op.execute("DROP POLICY IF EXISTS colleagues ON app_user")
    op.execute("DROP POLICY IF EXISTS own_account ON app_user")
    op.execute("DROP TRIGGER IF EXISTS audit_chain ON audit_log")
    # Partitions created by onboarding are dropped with their parents by 0001's downgrade.
    for fn in (
        "offboard_practice(bigint)", "onboard_practice(bigint)", "practice_partitioned_tables()", "record_shared_change()", "audit_statement()",
        "audit_chain()", "audit_payload(bigint, bigint, timestamptz, bigint, text, text, bigint[], jsonb)",
        "app_franchise_ids()", "app_user_id()", "app_practice_ids()",
    ):  # fmt: skip
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM vetconnect_app, vetconnect_system")
    op.execute("REVOKE USAGE ON SCHEMA public FROM vetconnect_app, vetconnect_system")
