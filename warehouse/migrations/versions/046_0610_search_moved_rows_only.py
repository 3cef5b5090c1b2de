"""The search index's update triggers look only at rows whose searched columns changed, and a client's old postcode
leaves the index when it changes (issue 15, the sync's overhead).

Splitting names into words (``search_words``) is what the client and patient triggers cost, and they did it for
every updated row, old and new, three times: bench/writeback.py phase 4 (auto_explain) put 3.4 ms of a settlement's
4.5 ms UPDATE of 15 clients in ``search_sync_client``, for rows whose phone, e-mail or address changed. The UPDATE
branch now first collects the rows whose names, postcode or deletion changed and returns at once when there are
none. Both triggers now plan generically from their first call (``moved`` is a parameter: each connection
planned every statement afresh for its first five calls, a 5-client UPDATE 3.8 ms instead of 2.1).

The client trigger's UPDATE branch read ``a UNION b EXCEPT c UNION d`` as ((a UNION b) EXCEPT c) UNION d: the
old postcode was never removed. The old and new entries are now each parenthesised, and the entries left behind
under an old postcode are deleted here.

Revision ID: 0610
Revises: 0600
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0610"
down_revision: str | Sequence[str] | None = "0600"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_SYNC_CLIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_client()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE changed int; moved bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    SELECT array_agg(o.id) INTO moved FROM old_rows o JOIN new_rows n ON n.practice_id = o.practice_id AND n.id = o.id
     WHERE (o.last_name, o.first_name, o.postcode, o.deleted_at)
           IS DISTINCT FROM (n.last_name, n.first_name, n.postcode, n.deleted_at);
    IF moved IS NULL THEN
      RETURN NULL;
    END IF;

    DELETE FROM search_term t USING ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED ((
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved)) EXCEPT (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' AND r.id = ANY (moved))),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""

SEARCH_SYNC_PATIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_patient()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE changed int; moved bigint[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    SELECT array_agg(o.id) INTO moved FROM old_rows o JOIN new_rows n ON n.practice_id = o.practice_id AND n.id = o.id
     WHERE (o.name, o.deleted_at) IS DISTINCT FROM (n.name, n.deleted_at);
    IF moved IS NULL THEN
      RETURN NULL;
    END IF;

    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved) EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL AND r.id = ANY (moved)),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""

# A postcode entry is right only while it is the client's current postcode (a live client's).
STALE_POSTCODES = """
DELETE FROM search_term t
 WHERE t.kind = 'postcode'
   AND NOT EXISTS (SELECT FROM client c
                    WHERE c.practice_id = t.practice_id AND c.id = t.entity_id AND c.deleted_at IS NULL
                      AND lower(replace(c.postcode, ' ', '')) = t.word)
"""

PREVIOUS_SEARCH_SYNC_CLIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_client()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
AS $function$
DECLARE changed int;
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' EXCEPT
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' EXCEPT
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '') s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM new_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> '' EXCEPT
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM old_rows r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""

PREVIOUS_SEARCH_SYNC_PATIENT = """
CREATE OR REPLACE FUNCTION public.search_sync_patient()
 RETURNS trigger
 LANGUAGE plpgsql
 SET enable_nestloop TO 'on'
AS $function$
DECLARE changed int;
BEGIN
  IF TG_OP = 'INSERT' THEN
    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  ELSIF TG_OP = 'DELETE' THEN
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;
  ELSE
    DELETE FROM search_term t USING (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;

    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;

    WITH terms AS MATERIALIZED (
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM new_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL EXCEPT
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM old_rows r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
  END IF;
  RETURN NULL;
END $function$
"""


def upgrade() -> None:
    op.execute(SEARCH_SYNC_CLIENT)
    op.execute(SEARCH_SYNC_PATIENT)
    op.execute(STALE_POSTCODES)


def downgrade() -> None:
    op.execute(PREVIOUS_SEARCH_SYNC_CLIENT)
    op.execute(PREVIOUS_SEARCH_SYNC_PATIENT)
