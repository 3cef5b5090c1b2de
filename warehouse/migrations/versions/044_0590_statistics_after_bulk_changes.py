"""The sync's statistics refresh analyses only what a bulk change left behind (issue 15, the sync's overhead).

0570 analysed, at the end of every sync, each of the practice's tables past autovacuum's own threshold (50 rows +
10 %). On the shared tables that means an incremental sync now and then pays for analysing every practice's rows:
bench/writeback.py phase 4, auto_explain, 3 rounds of 4 medium practices — 4 of 24 syncs took 77 to 266 ms in
the refresh (the others 5 to 13 ms), landing on one arm or the other at random, on a sync of ~170 ms. Ordinary
growth does not need it: autovacuum analyses within its naptime, and meanwhile the planner scales the row count of
the last statistics by the table's current size. What it cannot do in time is a table never analysed or changed
more than its whole size since (a first sync, a bulk rewrite): the planner then takes thousands of rows for one.
So the threshold is 50 rows + the whole table (``reltuples``) instead of + 10 %.

Revision ID: 0590
Revises: 0580
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0590"
down_revision: str | Sequence[str] | None = "0580"
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
                + c.reltuples)
    ORDER BY 1
  LOOP
    EXECUTE format('ANALYZE %I', stale);
    RETURN NEXT stale;
  END LOOP;
END $function$
"""

PREVIOUS = """
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


def downgrade() -> None:
    op.execute(PREVIOUS)
