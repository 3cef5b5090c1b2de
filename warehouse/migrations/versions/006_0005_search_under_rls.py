"""Trigram search under row-level security: mark pg_trgm's word-similarity operators LEAKPROOF.

Under RLS, PostgreSQL evaluates a non-leakproof qual only after the policy's qual, so ``:q <% name`` could
never use the trigram GIN indexes for the application role: the planner read every row of the visible
practices and filtered (bench/workspaces.py: ≈360 ms for a franchise manager's 50 practices at 1 M patients;
with the index and a BitmapAnd with the practice index, ≈40–110 ms). The two functions compute a similarity
from their arguments, raise no input-dependent errors and have no side effects, so they leak nothing about
rows the policy hides — the property LEAKPROOF asserts. Needs a superuser, which migrations run as.

Revision ID: 0005
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = ("word_similarity_op(text, text)", "word_similarity_commutator_op(text, text)")


def upgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} LEAKPROOF")


def downgrade() -> None:
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} NOT LEAKPROOF")
