"""The loader takes an Animana update of a pending row itself when Animana changed none of the columns the row's
local change is sending (issue 15, the sync's overhead).

Until now every loaded update of a row with an unacknowledged local change was held for the settlement, which
then took Animana's columns the local change does not touch — a second UPDATE of the table, firing its audit,
search and mart triggers once more (bench/writeback.py phase 4: a client settlement UPDATE ~5 ms, an appointment
one ~4 ms, about half of what capture and conflict detection added to an incremental sync of 4 medium practices).
``writeback_hold`` now compares, in the loader's statement, each column the row's open entries are sending with the
value both sides last agreed on (the first open entry's ``base``, as the settlement does): when Animana changed
none of them, its update goes through with the local values of those columns kept and the row still pending. The
rest is held as before: a column both sides changed, an open conflict, an encrypted column SQL cannot compare, a
deletion. See ``database_code.WRITEBACK_HOLD``.

Revision ID: 0620
Revises: 0610
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0620"
down_revision: str | Sequence[str] | None = "0610"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WRITEBACK_HOLD = """
CREATE OR REPLACE FUNCTION public.writeback_hold()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  animana jsonb;
  local_row jsonb;
  base jsonb := '{}'::jsonb;
  entry record;
BEGIN
  IF TG_OP = 'UPDATE' AND NOT EXISTS (
      SELECT FROM writeback_conflict c
       WHERE c.practice_id = OLD.practice_id AND c.table_name = TG_ARGV[0] AND c.row_id = OLD.id
         AND c.state = 'open') THEN
    FOR entry IN
      SELECT o.changes, o.base FROM writeback_outbox o
       WHERE o.practice_id = OLD.practice_id AND o.table_name = TG_ARGV[0] AND o.row_id = OLD.id
         AND o.state IN ('pending', 'held', 'dead')
       ORDER BY o.id
    LOOP
      -- An earlier entry's base of a column stays: it is the value both sides last agreed on.
      base := coalesce((SELECT jsonb_object_agg(k, coalesce(entry.base -> k, 'null'::jsonb))
                          FROM jsonb_object_keys(entry.changes) k), '{}'::jsonb) || base;
    END LOOP;
    animana := to_jsonb(NEW);
    local_row := to_jsonb(OLD);
    IF base <> '{}'::jsonb
       AND NOT (base ?| ARRAY['email_enc', 'phone_enc', 'address_enc', 'iban_enc']
                AND animana -> 'key_version' IS DISTINCT FROM local_row -> 'key_version')
       AND NOT EXISTS (
         SELECT FROM jsonb_object_keys(base) k
          WHERE CASE
                  WHEN k IN ('address_enc', 'iban_enc') THEN true
                  WHEN k IN ('email_enc', 'phone_enc') THEN
                    NOT base ? replace(k, '_enc', '_bidx')
                    OR animana -> replace(k, '_enc', '_bidx') IS DISTINCT FROM base -> replace(k, '_enc', '_bidx')
                  -- Follow another column (a blind index and key version their ciphertext, cancelled_at the
                  -- status), or are the table's own (a generated column).
                  WHEN k IN ('email_bidx', 'phone_bidx', 'key_version', 'cancelled_at', 'search_number') THEN false
                  ELSE animana -> k IS DISTINCT FROM base -> k
                END) THEN
      NEW := jsonb_populate_record(NEW, (
        SELECT coalesce(jsonb_object_agg(k, local_row -> k), '{}'::jsonb) FROM jsonb_object_keys(base) k
         WHERE k <> 'search_number' AND animana -> k IS DISTINCT FROM local_row -> k));
      IF to_jsonb(NEW) - ARRAY['updated_at', 'writeback_pending']
         = local_row - ARRAY['updated_at', 'writeback_pending'] THEN
        RETURN NULL;  -- what Animana has is what the row holds but for the local change: nothing to write
      END IF;
      NEW.writeback_pending := true;
      RETURN NEW;
    END IF;
  END IF;
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

PREVIOUS_WRITEBACK_HOLD = """
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


def upgrade() -> None:
    op.execute(WRITEBACK_HOLD)


def downgrade() -> None:
    op.execute(PREVIOUS_WRITEBACK_HOLD)
