"""The dispatcher's bookkeeping no longer recomputes search words and mart days (issue 15, dispatcher throughput).

When Animana acknowledges a batch, the dispatcher stamps each row with its Animana id and version
(`warehouse.integration.outbox.mark_all_sent`): one UPDATE per table that changes only ``animana_id``,
``animana_version`` and ``writeback_pending``. The statement-level search-index and mart-queue triggers have no
column list, so they fired on it and redid their work over every stamped row — for a batch of 100 the larger part
of the ~50 ms the marking cost, for nothing: neither reads those columns. Their UPDATE triggers now skip a statement
made while ``vetconnect.bookkeeping`` is ``on``, a transaction-local setting only the marking sets (and unsets after
its statements). The audit trigger still fires: the stamp is a write like any other.

Revision ID: 0560
Revises: 0550
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0560"
down_revision: str | Sequence[str] | None = "0550"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TABLES = ("client", "patient")
MART_TABLES = (
    "appointment", "visit", "staff_shift", "diagnosis", "invoice", "invoice_line", "payment", "client_patient",
    "vaccination", "reminder",
)  # fmt: skip
NOT_BOOKKEEPING = "WHEN (current_setting('vetconnect.bookkeeping', true) IS DISTINCT FROM 'on') "
TRIGGER = (
    "CREATE TRIGGER {name} AFTER UPDATE ON public.{table} REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT {when}EXECUTE FUNCTION {function}_{table}()"
)


def _recreate(when: str) -> None:
    for name, function, tables in (
        ("search_sync_update", "search_sync", SEARCH_TABLES),
        ("mart_dirty_update", "mart_dirty", MART_TABLES),
    ):
        for table in tables:
            op.execute(f"DROP TRIGGER {name} ON public.{table}")
            op.execute(TRIGGER.format(name=name, table=table, when=when, function=function))


def upgrade() -> None:
    _recreate(NOT_BOOKKEEPING)


def downgrade() -> None:
    _recreate("")
