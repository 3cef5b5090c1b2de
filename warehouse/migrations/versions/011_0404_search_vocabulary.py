"""Typo matching over one vocabulary of distinct name words, not over every practice's copy of them.

Why (bench/workspaces.py, 200 practices, franchise manager of 50): the typo branch matched the query against
``search_word``, which holds each practice's distinct words — 35,000 client-name rows for 50 practices, of
which 2,970 shared enough trigrams with "dberg" and were rechecked to find 62 distinct words (≈ 60 ms, the
franchise search's p95 tail). ``search_vocabulary`` holds each (kind, word) once for the whole warehouse, so
the trigram index yields those 62 words directly; ``search_similar_words()`` then keeps only words that occur
in one of the caller's practices (a primary-key probe of ``search_word`` per practice, in similarity order,
stopping at the limit). ``search_word``'s trigram indexes are dropped: nothing matches trigrams there any more.

The vocabulary spans tenants, so nobody reads it directly: the application role may only add words (through
``search_vocabulary_add``, called by the search triggers as the writer) and ask for similar words that its own
practices contain. A word leaves the vocabulary when no practice has it any more (an erased name does not stay).
There is no unique key on purpose: two transactions adding the same new word never wait for each other (a
unique key would make concurrent practice syncs queue behind each other and could deadlock); duplicates are
harmless (the function returns distinct words) and ``search_vocabulary_add`` skips words already committed.

Revision ID: 0404
Revises: 0403
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0404"
down_revision: str | Sequence[str] | None = "0403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUZZY_KINDS = ("client", "patient")  # the kinds whose search_word rows had trigram indexes (0402)

# What each indexed table contributes, as a query over a row set ``{rows}`` (a transition table or the table).
# Columns: practice_id, kind, word, entity_id.
TERMS = {
    "client": """
        SELECT r.practice_id, 'client'::varchar AS kind, w.word, r.id AS entity_id
        FROM {rows} r CROSS JOIN LATERAL unnest(search_words(concat_ws(' ', r.last_name, r.first_name))) AS w(word)
        WHERE r.deleted_at IS NULL
        UNION
        SELECT r.practice_id, 'postcode', lower(replace(r.postcode, ' ', '')), r.id
        FROM {rows} r WHERE r.deleted_at IS NULL AND coalesce(r.postcode, '') <> ''""",
    "patient": """
        SELECT r.practice_id, 'patient'::varchar AS kind, w.word, r.id AS entity_id
        FROM {rows} r CROSS JOIN LATERAL unnest(search_words(r.name)) AS w(word)
        WHERE r.deleted_at IS NULL""",
    "invoice": """
        SELECT r.practice_id, 'invoice'::varchar AS kind, lower(r.number) AS word, r.id AS entity_id
        FROM {rows} r""",
}

# 0402's add and remove statements, which the downgrade restores.
_ADD_0402 = """
    INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM ({terms}) s
      WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING;
    INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM ({terms}) s ON CONFLICT DO NOTHING;"""
_REMOVE_0402 = """
    DELETE FROM search_term t USING ({terms}) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;
    DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM ({terms}) s) s
     WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
       AND NOT EXISTS (SELECT FROM search_term t
                        WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word);"""

# The same, with the words a practice gains or loses offered to the vocabulary: only words new to (or gone
# from) the practice reach it, so a bulk load of known names costs the vocabulary nothing.
_ADD = """
    WITH added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM ({terms}) s
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;
    INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM ({terms}) s ON CONFLICT DO NOTHING;"""
_REMOVE = """
    DELETE FROM search_term t USING ({terms}) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;
    WITH gone AS (
      DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM ({terms}) s) s
       WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
         AND NOT EXISTS (SELECT FROM search_term t
                          WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word)
      RETURNING v.kind, v.word)
    SELECT search_vocabulary_forget(array_agg(kind::text), array_agg(word)) INTO changed FROM gone;"""


# The functions' one local: the vocabulary calls return a count that plpgsql must select INTO something.
_DECLARE = "DECLARE changed int;"


def _sync_function(table: str, add: str, remove: str, declare: str) -> str:
    """``search_sync_<table>()``: on INSERT ``add`` the new rows' terms, on DELETE ``remove`` the old rows'; on
    UPDATE remove the old terms the new rows lack, then add the new terms the old rows lacked."""
    new, old = TERMS[table].format(rows="new_rows"), TERMS[table].format(rows="old_rows")
    return f"""
    CREATE OR REPLACE FUNCTION search_sync_{table}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    {declare}
    BEGIN
      IF TG_OP = 'INSERT' THEN
        {add.format(terms=new)}
      ELSIF TG_OP = 'DELETE' THEN
        {remove.format(terms=old)}
      ELSE
        {remove.format(terms=f"{old} EXCEPT {new}")}
        {add.format(terms=f"{new} EXCEPT {old}")}
      END IF;
      RETURN NULL;
    END $fn$;
    """


def _reindex_function(add: str, declare: str, tables: Sequence[str]) -> str:
    """``search_reindex(practice)``: the practice's entries and words rebuilt from the ``tables``."""
    inserts = "\n".join(
        add.format(
            terms=TERMS[table].format(rows=f'(SELECT * FROM "{table}" WHERE practice_id = p_practice)')
        )
        for table in tables
    )
    return f"""
    CREATE OR REPLACE FUNCTION search_reindex(p_practice bigint) RETURNS void LANGUAGE plpgsql AS $fn$
    {declare}
    BEGIN
      DELETE FROM search_term WHERE practice_id = p_practice;
      DELETE FROM search_word WHERE practice_id = p_practice;
      {inserts}
    END $fn$;
    """


_FUNCTIONS = """
CREATE FUNCTION search_vocabulary_add(p_kinds text[], p_words text[]) RETURNS int
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  WITH added AS (
    INSERT INTO search_vocabulary (kind, word)
    SELECT DISTINCT n.kind, n.word FROM unnest(p_kinds, p_words) AS n(kind, word)
     WHERE n.kind IN ('client', 'patient')
       AND NOT EXISTS (SELECT FROM search_vocabulary v WHERE v.kind = n.kind AND v.word = n.word)
    RETURNING 1)
  SELECT count(*)::int FROM added
$$;

CREATE FUNCTION search_vocabulary_forget(p_kinds text[], p_words text[]) RETURNS int
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  WITH gone AS (
    DELETE FROM search_vocabulary v USING unnest(p_kinds, p_words) AS g(kind, word)
     WHERE v.kind = g.kind AND v.word = g.word
       -- A primary-key probe per practice: search_word has no index that starts with the word.
       AND NOT EXISTS (SELECT FROM tenant t JOIN search_word w ON w.practice_id = t.id
                        WHERE t.kind = 'practice' AND w.kind = g.kind AND w.word = g.word)
    RETURNING 1)
  SELECT count(*)::int FROM gone
$$;

-- Words similar to p_word (pg_trgm word_similarity above the caller's pg_trgm.word_similarity_threshold) that
-- occur in one of the caller's practices (app.practice_ids), best first.
CREATE FUNCTION search_similar_words(p_kind text, p_word text, p_limit int)
RETURNS TABLE (word text, score real)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT v.word, v.score
    FROM (SELECT DISTINCT v.word, word_similarity(p_word, v.word) AS score FROM search_vocabulary v
           WHERE p_word <% v.word AND v.kind = p_kind) v
   WHERE EXISTS (SELECT FROM search_word w
                  WHERE w.practice_id = ANY (app_practice_ids()) AND w.kind = p_kind AND w.word = v.word)
   ORDER BY v.score DESC, v.word
   LIMIT p_limit
$$;
"""
_NAMES = (
    "search_vocabulary_add(text[], text[])",
    "search_vocabulary_forget(text[], text[])",
    "search_similar_words(text, text, int)",
)


def upgrade() -> None:
    op.create_table(
        "search_vocabulary",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("word", sa.Text(collation="C"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_vocabulary")),
        info={"tenancy": "global"},
    )
    op.execute("INSERT INTO search_vocabulary (kind, word) SELECT DISTINCT kind, word FROM search_word")
    op.create_index("ix_search_vocabulary_kind_word", "search_vocabulary", ["kind", "word"])
    op.create_index(
        "ix_search_vocabulary_trgm", "search_vocabulary", ["word"], postgresql_using="gin",
        postgresql_ops={"word": "gin_trgm_ops"},
    )  # fmt: skip
    op.execute(
        f"""
        ALTER TABLE search_vocabulary ENABLE ROW LEVEL SECURITY;
        ALTER TABLE search_vocabulary FORCE ROW LEVEL SECURITY;
        GRANT SELECT, INSERT, DELETE ON search_vocabulary TO vetconnect_system;
        {_FUNCTIONS}
        """
    )
    for name in _NAMES:
        # Owned by the BYPASSRLS system role, not the superuser that runs migrations: least privilege.
        op.execute(f"ALTER FUNCTION {name} OWNER TO vetconnect_system")
        op.execute(f"REVOKE ALL ON FUNCTION {name} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {name} TO vetconnect_app, vetconnect_system")
    for table in TERMS:
        op.execute(_sync_function(table, _ADD, _REMOVE, _DECLARE))
    op.execute(_reindex_function(_ADD, _DECLARE, tuple(TERMS)))
    # Typo matching no longer reads search_word by trigram (only by primary key): its trigram indexes only
    # cost writes now.
    for kind in FUZZY_KINDS:
        op.drop_index(f"ix_search_word_{kind}_trgm", table_name="search_word")
    op.execute("ANALYZE search_vocabulary")


def downgrade() -> None:
    for kind in FUZZY_KINDS:
        op.create_index(
            f"ix_search_word_{kind}_trgm", "search_word", ["word"], postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"}, postgresql_where=sa.text(f"kind = '{kind}'"),
        )  # fmt: skip
    for table in TERMS:
        op.execute(_sync_function(table, _ADD_0402, _REMOVE_0402, declare=""))
    op.execute(_reindex_function(_ADD_0402, declare="", tables=tuple(TERMS)))
    for name in _NAMES:
        op.execute(f"DROP FUNCTION {name}")
    op.drop_table("search_vocabulary")
