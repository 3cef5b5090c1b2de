"""Invoice numbers are searched in the invoice table itself, not copied into the search word index.

An invoice number is one identifier, matched exactly or as a prefix, never by typo: it needs an ordered index,
not the word index (``search_term``) that names need. Keeping a copy there cost every invoice write a trigger
statement, a ``search_term`` row with its speculative insertion and its foreign-key check, ~8 µs an invoice
(the insert trigger alone was 0.53 s of PostgreSQL time for the 72,000 invoices of 4 medium practices); the
expression index that replaces it costs one btree entry. The search (`warehouse.search`) reads
``ix_invoice_number_search`` exactly as it read ``search_term``: a range scan per visible practice, in
(number, id) order, lower case.

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

_terms = importlib.import_module("warehouse.migrations.versions.0402_search_terms")
_vocabulary = importlib.import_module("warehouse.migrations.versions.0404_search_vocabulary")
_once = importlib.import_module("warehouse.migrations.versions.0303_search_terms_once")

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
        'CREATE INDEX ix_invoice_number_search ON invoice (practice_id, (lower(number) COLLATE "C"), id)'
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_invoice_number_search")
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
