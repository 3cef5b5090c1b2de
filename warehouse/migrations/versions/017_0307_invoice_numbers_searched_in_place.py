"""Invoice numbers are searched in the invoice table itself, not copied into the search word index.

An invoice number is one identifier, matched exactly or as a prefix, never by typo: it needs an ordered index,
not the word index (``search_term``) that names need. Keeping a copy there cost every invoice write a trigger
statement, a ``search_term`` row with its speculative insertion and its foreign-key check, ~8 µs an invoice
(the insert trigger alone was 0.53 s of PostgreSQL time for the 72,000 invoices of 4 medium practices).
Instead the invoice keeps its number as the search matches it, ``search_number`` (lower case, byte order: a
stored generated column) with one btree entry in ``ix_invoice_number_search``; the search (`warehouse.search`)
reads it exactly as it read ``search_term``, a range scan per visible practice in (number, id) order.

A column, not an index on ``lower(number)``: under row-level security PostgreSQL uses a condition as an index
condition only if its functions are leakproof, and ``lower`` is not, so a franchise manager's search filtered
every invoice of 50 practices (30 ms) instead of reading a few index entries (1 ms). Comparisons of a plain
text column are leakproof.

Revision ID: 0307
Revises: 0306
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0307"
down_revision: str | Sequence[str] | None = "0306"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The kinds whose terms stay in search_term (TERMS minus invoice).
INDEXED = ("client", "patient")
_EVENTS = ("insert", "update", "delete")

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

# 0303's statements, the search functions' bodies since then.
_ADD_ONCE = """
    WITH terms AS MATERIALIZED ({terms}),
    added AS (
      INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM terms
       WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING RETURNING kind, word),
    entries AS (
      INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM terms ON CONFLICT DO NOTHING)
    SELECT search_vocabulary_add(array_agg(kind::text), array_agg(word)) INTO changed FROM added;"""
_REMOVE_0404 = """
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

# The invoice's search triggers, which the downgrade restores.
_TRIGGERS = """
    CREATE TRIGGER search_sync_insert AFTER INSERT ON "{table}" REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    CREATE TRIGGER search_sync_update AFTER UPDATE ON "{table}" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    CREATE TRIGGER search_sync_delete AFTER DELETE ON "{table}" REFERENCING OLD TABLE AS old_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    """


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


def upgrade() -> None:
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER search_sync_{event} ON invoice")
    op.execute("DROP FUNCTION search_sync_invoice()")
    op.execute(_reindex_function(_ADD_ONCE, _DECLARE, INDEXED))
    op.execute("DELETE FROM search_term WHERE kind = 'invoice'")
    op.execute(
        'ALTER TABLE invoice ADD COLUMN search_number text COLLATE "C" GENERATED ALWAYS AS (lower(number)) STORED'
    )
    op.execute("CREATE INDEX ix_invoice_number_search ON invoice (practice_id, search_number, id)")


def downgrade() -> None:
    op.execute("ALTER TABLE invoice DROP COLUMN search_number")  # and its index
    # The invoice's search function as 0303 left it, and its triggers (what the database had before).
    op.execute(
        _sync_function("invoice", _ADD_ONCE, _REMOVE_0404, _DECLARE) + _TRIGGERS.format(table="invoice")
    )
    op.execute(_reindex_function(_ADD_ONCE, _DECLARE, tuple(TERMS)))
    op.execute(
        "INSERT INTO search_term (practice_id, kind, word, entity_id) "
        "SELECT practice_id, 'invoice', lower(number), id FROM invoice ON CONFLICT DO NOTHING"
    )
