"""The global search's word index (``search_term``, ``search_word``), kept current by triggers on the record.

Why: at 1 M patients a franchise manager's search for a common name matched ~4,600 of their 250,000 patients;
ranking them meant a word-similarity per row (≈150 ms, p95 near a second for short words). With one row per
word, exact and prefix hits come out of a btree already in order and the search stops after the 8 it shows;
typos are matched against the few distinct words of a practice (``search_word``), not against every row.

Triggers are statement-level with transition tables (like the audit triggers), so a bulk load indexes its rows
in one INSERT…SELECT. An UPDATE re-indexes only what changed (old terms EXCEPT new terms and vice versa).
``search_reindex(practice)`` rebuilds one practice (for loads run with triggers off, e.g. the benchmarks).
Deleting the last entry of a word also removes the word, so an erased name does not stay in the vocabulary.

Also ``ix_invoice_unpaid``: the hub's unpaid invoices of a franchise manager's 50 practices (~10,000 of 50,000)
were read row by row from the heap; the partial index answers the list and the count from the index alone.

Revision ID: 0402
Revises: 0401
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0402"
down_revision: str | Sequence[str] | None = "0401"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = ("search_term", "search_word")
FUZZY_KINDS = ("client", "patient")  # the kinds with a typo vocabulary

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

# Postcodes and invoice numbers are identifiers, matched exactly or by prefix: only names are in the typo
# vocabulary (digit trigrams would make every number a candidate for every other): the FUZZY_KINDS.
_ADD = """
    INSERT INTO search_word (practice_id, kind, word) SELECT DISTINCT practice_id, kind, word FROM ({terms}) s
      WHERE kind IN ('client', 'patient') ON CONFLICT DO NOTHING;
    INSERT INTO search_term (practice_id, kind, word, entity_id) SELECT * FROM ({terms}) s ON CONFLICT DO NOTHING;"""
_REMOVE = """
    DELETE FROM search_term t USING ({terms}) s
     WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word AND t.entity_id = s.entity_id;
    DELETE FROM search_word v USING (SELECT DISTINCT practice_id, kind, word FROM ({terms}) s) s
     WHERE v.practice_id = s.practice_id AND v.kind = s.kind AND v.word = s.word
       AND NOT EXISTS (SELECT FROM search_term t
                        WHERE t.practice_id = s.practice_id AND t.kind = s.kind AND t.word = s.word);"""


# This revision's own copies of the tenancy building blocks: a migration keeps the SQL it ran (README.md).
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


_TRIGGERS = """
    CREATE TRIGGER search_sync_insert AFTER INSERT ON "{table}" REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    CREATE TRIGGER search_sync_update AFTER UPDATE ON "{table}" REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    CREATE TRIGGER search_sync_delete AFTER DELETE ON "{table}" REFERENCING OLD TABLE AS old_rows
      FOR EACH STATEMENT EXECUTE FUNCTION search_sync_{table}();
    """


def upgrade() -> None:
    for table in PRACTICE_TABLES:
        columns = [
            sa.Column("practice_id", sa.BigInteger(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("word", sa.Text(collation="C"), nullable=False),
        ]
        if table == "search_term":
            columns.append(sa.Column("entity_id", sa.BigInteger(), nullable=False))
        op.create_table(
            table,
            *columns,
            sa.ForeignKeyConstraint(
                ["practice_id"], ["tenant.id"], name=op.f(f"fk_{table}_practice_id_tenant")
            ),
            sa.PrimaryKeyConstraint(*(c.name for c in columns), name=op.f(f"pk_{table}")),
            info={"tenancy": "practice"},
        )
        op.execute(_protect_practice_table(table))
    op.execute(
        """CREATE FUNCTION search_words(value text) RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
        RETURN ARRAY(SELECT DISTINCT w FROM regexp_split_to_table(lower(value), '[^[:alnum:]]+') AS w WHERE w <> '')"""
    )
    for table in TERMS:
        op.execute(_sync_function(table, _ADD, _REMOVE, declare="") + _TRIGGERS.format(table=table))
    op.execute(_reindex_function(_ADD, declare="", tables=tuple(TERMS)))
    op.execute("SELECT search_reindex(id) FROM tenant WHERE kind = 'practice'")
    # Built after the backfill: one sort instead of millions of index insertions.
    # One trigram index per kind: a patient's name typed in the box is also looked for among client words, and
    # with one index for both it would recheck every practice's patient words that share its trigrams.
    for kind in FUZZY_KINDS:
        op.create_index(
            f"ix_search_word_{kind}_trgm", "search_word", ["word"], postgresql_using="gin",
            postgresql_ops={"word": "gin_trgm_ops"}, postgresql_where=sa.text(f"kind = '{kind}'"),
        )  # fmt: skip
    op.create_index(
        "ix_invoice_unpaid", "invoice", ["practice_id", "issued_on", "id"], postgresql_where=sa.text("status = 'issued'"),
        postgresql_include=["number", "client_id", "total_incl_cents"],
    )  # fmt: skip
    op.execute("ANALYZE search_term; ANALYZE search_word")


def downgrade() -> None:
    op.drop_index("ix_invoice_unpaid", table_name="invoice")
    for table in TERMS:
        for event in ("insert", "update", "delete"):
            op.execute(f'DROP TRIGGER search_sync_{event} ON "{table}"')
        op.execute(f"DROP FUNCTION search_sync_{table}()")
    op.execute("DROP FUNCTION search_reindex(bigint)")
    op.execute("DROP FUNCTION search_words(text)")
    for table in PRACTICE_TABLES:
        op.execute(f'REVOKE ALL ON "{table}" FROM vetconnect_app, vetconnect_system')
        op.drop_table(table)
