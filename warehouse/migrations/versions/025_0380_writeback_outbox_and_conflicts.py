"""Two-way Animana: change capture, the write-back outbox, held incoming changes and the conflict queue.

- Every mirrored table VetConnect writes back (client, patient, appointment, visit, vaccination, prescription,
  invoice, payment) gets ``animana_version`` (the Animana ``updated_at`` of the record the row last agreed with;
  the If-Match of a write-back) and ``writeback_pending`` (a local change Animana has not acknowledged, or an
  open conflict). ``NOT NULL DEFAULT false`` is a catalogue-only change in PostgreSQL 11+, so no table rewrite.
- Who writes is the transaction-local setting ``vetconnect.writer``: unset for a local write (a service, a page,
  raw SQL as the application role), ``animana`` for the sync's loader, ``writeback`` for the dispatcher, the
  settlement and the synchronous gateway storing what Animana answered.
- ``writeback_capture`` (BEFORE INSERT/UPDATE/DELETE, every row, local writers only): unless the module is
  native for the practice or the practice is not linked to Animana (then there is no Animana to tell), the row
  is marked pending and an outbox entry with the changed columns is written in
  the same transaction. A trigger, like the audit log, so no write path can forget it.
- ``writeback_hold`` (BEFORE UPDATE or DELETE, only rows already pending, only the sync): the incoming Animana
  row (or that Animana deleted it) is kept in ``writeback_incoming`` and the update or delete is skipped. The
  settlement decides per field (the resource's rules) and records a conflict when it cannot. So an incoming
  change never overwrites, nor deletes, a row with a pending write.
- Both triggers are filtered by their ``WHEN`` clause, evaluated without entering PL/pgSQL, so the sync's
  inserts and the updates of rows that are not pending pay almost nothing for them.
- ``writeback_outbox.written_in``: the (top-level) transaction that captured the entry, so animana mode's
  write-through finds exactly the entries of the transaction it is about to commit.
- ``writeback_outbox``, ``writeback_incoming``, ``writeback_conflict``: practice tables with the usual
  ``tenant_isolation`` policy.

Revision ID: 0380
Revises: 0370
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0380"
down_revision: str | Sequence[str] | None = "0370"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Mirrored table → its module (``practice_module_mode.module``).
MIRRORED = {
    "client": "clients", "patient": "clients", "appointment": "agenda", "visit": "records",
    "vaccination": "records", "prescription": "records", "invoice": "invoices", "payment": "invoices",
}  # fmt: skip
PRACTICE_TABLES = ("writeback_outbox", "writeback_incoming", "writeback_conflict")

WRITEBACK_CAPTURE = """
CREATE OR REPLACE FUNCTION public.writeback_capture()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  row_now jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
  row_before jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
  bookkeeping text[] := ARRAY['updated_at', 'animana_version', 'writeback_pending'];
  changed jsonb := '{}'::jsonb;
  base jsonb := '{}'::jsonb;
  module_mode text;
BEGIN
  SELECT CASE WHEN t.animana_practice_id IS NULL THEN 'native' ELSE coalesce(m.mode, 'animana') END
    INTO module_mode
    FROM tenant t
    LEFT JOIN practice_module_mode m ON m.practice_id = t.id AND m.module = TG_ARGV[0]
   WHERE t.id = (row_now ->> 'practice_id')::bigint;
  IF module_mode = 'native' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb),
           coalesce(jsonb_object_agg(n.key, row_before -> n.key), '{}'::jsonb)
      INTO changed, base
      FROM jsonb_each(row_now) n
     WHERE n.key <> ALL (bookkeeping) AND n.value IS DISTINCT FROM row_before -> n.key;
    IF changed = '{}'::jsonb THEN
      RETURN NEW;
    END IF;
  ELSIF TG_OP = 'INSERT' THEN
    changed := row_now - bookkeeping;
  ELSE
    base := row_now - ARRAY['updated_at', 'writeback_pending'];
  END IF;
  INSERT INTO writeback_outbox (practice_id, module, table_name, row_id, operation, changes, base, created_by)
  VALUES ((row_now ->> 'practice_id')::bigint, TG_ARGV[0], TG_ARGV[1], (row_now ->> 'id')::bigint, lower(TG_OP),
          changed, base, app_user_id());
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  NEW.writeback_pending := true;
  RETURN NEW;
END $function$
"""

WRITEBACK_HOLD = """
CREATE OR REPLACE FUNCTION public.writeback_hold()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
BEGIN
  INSERT INTO writeback_incoming (practice_id, table_name, row_id, incoming, animana_version)
  VALUES (OLD.practice_id, TG_ARGV[0], OLD.id,
          CASE WHEN TG_OP = 'DELETE' THEN '{"deleted_in_animana": true}'::jsonb
               ELSE to_jsonb(NEW) - ARRAY['updated_at', 'animana_version', 'writeback_pending'] END,
          CASE WHEN TG_OP = 'DELETE' THEN OLD.animana_version ELSE NEW.animana_version END)
  ON CONFLICT (practice_id, table_name, row_id) DO UPDATE
    SET incoming = EXCLUDED.incoming, animana_version = EXCLUDED.animana_version, received_at = now();
  RETURN NULL;
END $function$
"""

LOCAL_WRITER = "COALESCE(current_setting('vetconnect.writer', true), '') NOT IN ('animana', 'writeback')"


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


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE writeback_outbox (
          practice_id bigint NOT NULL CONSTRAINT fk_writeback_outbox_practice_id_tenant REFERENCES tenant (id),
          id bigint GENERATED BY DEFAULT AS IDENTITY,
          module varchar(16) NOT NULL,
          table_name varchar(32) NOT NULL,
          row_id bigint NOT NULL,
          operation varchar(8) NOT NULL
            CONSTRAINT ck_writeback_outbox_operation CHECK (operation IN ('insert', 'update', 'delete')),
          changes jsonb NOT NULL,
          base jsonb NOT NULL DEFAULT '{}'::jsonb,
          idempotency_key uuid NOT NULL DEFAULT gen_random_uuid(),
          state varchar(12) NOT NULL DEFAULT 'pending'
            CONSTRAINT ck_writeback_outbox_state
            CHECK (state IN ('pending', 'done', 'dead', 'held', 'superseded')),
          attempts integer NOT NULL DEFAULT 0,
          next_attempt_at timestamptz NOT NULL DEFAULT now(),
          last_error text,
          created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
          sent_at timestamptz,
          answered_version text,
          created_by bigint,
          written_in bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
          CONSTRAINT pk_writeback_outbox PRIMARY KEY (practice_id, id)
        );
        CREATE INDEX ix_writeback_outbox_due ON writeback_outbox (practice_id, next_attempt_at)
          WHERE state = 'pending';
        CREATE INDEX ix_writeback_outbox_written_in ON writeback_outbox (written_in) WHERE state = 'pending';
        CREATE INDEX ix_writeback_outbox_row ON writeback_outbox (practice_id, table_name, row_id);
        CREATE INDEX ix_writeback_outbox_open ON writeback_outbox (practice_id, state)
          WHERE state IN ('pending', 'dead', 'held');

        CREATE TABLE writeback_incoming (
          practice_id bigint NOT NULL CONSTRAINT fk_writeback_incoming_practice_id_tenant REFERENCES tenant (id),
          table_name varchar(32) NOT NULL,
          row_id bigint NOT NULL,
          incoming jsonb NOT NULL,
          animana_version text,
          received_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_writeback_incoming PRIMARY KEY (practice_id, table_name, row_id)
        );

        CREATE TABLE writeback_conflict (
          practice_id bigint NOT NULL CONSTRAINT fk_writeback_conflict_practice_id_tenant REFERENCES tenant (id),
          id bigint GENERATED BY DEFAULT AS IDENTITY,
          module varchar(16) NOT NULL,
          table_name varchar(32) NOT NULL,
          row_id bigint NOT NULL,
          animana_id varchar(64),
          state varchar(16) NOT NULL DEFAULT 'open'
            CONSTRAINT ck_writeback_conflict_state CHECK (state IN ('open', 'auto_resolved', 'resolved')),
          fields jsonb NOT NULL,
          animana_version text,
          detected_at timestamptz NOT NULL DEFAULT now(),
          resolved_at timestamptz,
          resolved_by bigint,
          CONSTRAINT pk_writeback_conflict PRIMARY KEY (practice_id, id)
        );
        CREATE INDEX ix_writeback_conflict_row ON writeback_conflict (practice_id, table_name, row_id);
        CREATE INDEX ix_writeback_conflict_open ON writeback_conflict (practice_id, detected_at)
          WHERE state = 'open';
        """
    )
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))
    op.execute(WRITEBACK_CAPTURE)
    op.execute(WRITEBACK_HOLD)
    for table, module in MIRRORED.items():
        op.execute(
            f'ALTER TABLE "{table}" ADD COLUMN animana_version text, '
            "ADD COLUMN writeback_pending boolean NOT NULL DEFAULT false"
        )
        op.execute(
            f'CREATE TRIGGER writeback_capture BEFORE INSERT OR DELETE OR UPDATE ON "{table}" '
            f"FOR EACH ROW WHEN ({LOCAL_WRITER}) EXECUTE FUNCTION writeback_capture('{module}', '{table}')"
        )
        op.execute(
            f'CREATE TRIGGER writeback_hold BEFORE DELETE OR UPDATE ON "{table}" FOR EACH ROW '
            "WHEN (old.writeback_pending AND current_setting('vetconnect.writer', true) = 'animana') "
            f"EXECUTE FUNCTION writeback_hold('{table}')"
        )


def downgrade() -> None:
    for table in MIRRORED:
        op.execute(f'DROP TRIGGER writeback_hold ON "{table}"')
        op.execute(f'DROP TRIGGER writeback_capture ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN writeback_pending, DROP COLUMN animana_version')
    op.execute("DROP FUNCTION writeback_hold()")
    op.execute("DROP FUNCTION writeback_capture()")
    for table in reversed(PRACTICE_TABLES):
        op.execute(f'DROP TABLE "{table}"')
