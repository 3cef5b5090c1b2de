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

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0307"
down_revision: str | Sequence[str] | None = "0306"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_terms = importlib.import_module("warehouse.migrations.versions.008_0402_search_terms")
_vocabulary = importlib.import_module("warehouse.migrations.versions.011_0404_search_vocabulary")
_once = importlib.import_module("warehouse.migrations.versions.013_0303_search_terms_once")

# The kinds whose terms stay in search_term (0402's TERMS minus invoice).
INDEXED = ("client", "patient")
_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    for event in _EVENTS:
        op.execute(f"DROP TRIGGER search_sync_{event} ON invoice")
    op.execute("DROP FUNCTION search_sync_invoice()")
    op.execute(_terms.reindex_function(_once._ADD_ONCE, _vocabulary._DECLARE, INDEXED))
    op.execute("DELETE FROM search_term WHERE kind = 'invoice'")
    op.execute(
        'ALTER TABLE invoice ADD COLUMN search_number text COLLATE "C" GENERATED ALWAYS AS (lower(number)) STORED'
    )
    op.execute("CREATE INDEX ix_invoice_number_search ON invoice (practice_id, search_number, id)")


def downgrade() -> None:
    op.execute("ALTER TABLE invoice DROP COLUMN search_number")  # and its index
    # 0402's function and triggers, then 0303's body of the function (what the database had before).
    op.execute(_terms._sync_function("invoice"))
    op.execute(
        _terms.sync_function_body("invoice", _once._ADD_ONCE, _vocabulary._REMOVE, _vocabulary._DECLARE)
    )
    op.execute(_terms.reindex_function(_once._ADD_ONCE, _vocabulary._DECLARE))
    op.execute(
        "INSERT INTO search_term (practice_id, kind, word, entity_id) "
        "SELECT practice_id, 'invoice', lower(number), id FROM invoice ON CONFLICT DO NOTHING"
    )
