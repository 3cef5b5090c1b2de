"""The search index's triggers plan with nested loops whatever the writing transaction set.

The Animana loader turns nested loops off for its load transactions (``enable_nestloop = off``,
``warehouse.ingest.animana.load``): right for its bulk statements, wrong for the statement triggers they fire. The
search triggers look up a batch's few hundred index entries by their full key in ``search_term``; without nested
loops PostgreSQL merge-joins them against every entry of the practice instead, and PL/pgSQL keeps that plan for
the connection's life, so the settlement's and the pages' later updates on the same connection use it too.
Measured on 4 medium practices (auto_explain): the entry DELETE of one 171-client batch read 367,493 index
entries (215 ms); the trigger of a 2-client update took 17-34 ms. A function-level setting applies while the
function plans and runs, and to nothing else.

Revision ID: 0500
Revises: 0450
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0500"
down_revision: str | Sequence[str] | None = "0450"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("search_sync_client", "search_sync_patient")


def upgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION public.{function}() SET enable_nestloop TO 'on'")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION public.{function}() RESET enable_nestloop")
