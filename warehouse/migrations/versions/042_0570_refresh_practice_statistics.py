"""The sync refreshes the planner's statistics of what it loaded (issue 15, the sync's settlement).

A table the sync has just filled has no statistics until autovacuum's next look (up to a minute, then only past
its threshold), and the application role may not ANALYZE. Meanwhile the planner takes a partition of 21,000
appointments for one row: the settlement's UPDATE of 41 held appointments by id ran as a nested loop over the whole
partition (867,929 rows filtered, 178 ms; bench/writeback.py phase 4), and every key lookup of a workspace after a
practice's first sync fares the same. ``refresh_practice_statistics(practice)`` does at the end of a sync what
autovacuum would do at its next look, with autovacuum's own threshold (``autovacuum_analyze_threshold`` +
``autovacuum_analyze_scale_factor`` × rows, or never analysed): ANALYZE the practice's partitions and the tenant
tables that changed that much. SECURITY DEFINER because only the tables' owner may ANALYZE them; it answers only for
a practice of the caller's access context and returns the tables it analysed.

Revision ID: 0570
Revises: 0560
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0570"
down_revision: str | Sequence[str] | None = "0560"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFRESH_PRACTICE_STATISTICS = """
CREATE OR REPLACE FUNCTION public.refresh_practice_statistics(p_practice bigint)
 RETURNS SETOF text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public'
AS $function$
DECLARE
  stale text;
BEGIN
  IF NOT p_practice = ANY (app_practice_ids()) THEN
    RAISE EXCEPTION 'practice % is not in the caller''s access context', p_practice USING ERRCODE = '42501';
  END IF;
  FOR stale IN
    SELECT c.relname::text
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'practice_id' AND NOT a.attisdropped
    LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
    LEFT JOIN pg_class parent ON parent.oid = i.inhparent
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE n.nspname = 'public' AND c.relkind = 'r'
      AND (NOT c.relispartition OR c.relname = parent.relname || '_p' || p_practice)
      AND (c.reltuples < 0
           OR coalesce(s.n_mod_since_analyze, 0) > current_setting('autovacuum_analyze_threshold')::bigint
                + current_setting('autovacuum_analyze_scale_factor')::float8 * c.reltuples)
    ORDER BY 1
  LOOP
    EXECUTE format('ANALYZE %I', stale);
    RETURN NEXT stale;
  END LOOP;
END $function$
"""


def upgrade() -> None:
    op.execute(REFRESH_PRACTICE_STATISTICS)
    op.execute(
        """
        REVOKE ALL ON FUNCTION refresh_practice_statistics(bigint) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION refresh_practice_statistics(bigint) TO vetconnect_app, vetconnect_system;
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION refresh_practice_statistics(bigint)")
