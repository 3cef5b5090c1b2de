"""Tombstones: what a record deleted in Animana does to the warehouse rows that mirror it.

A `Tombstone` is a short list of statements run with ``%(ids)s`` = the deleted Animana ids of one batch; the
last one's row count is what the batch reports as deleted. The simple rules are built for a table
(`delete_rows`, `mark_deleted`); the rest are written out for the resource whose history they keep valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from warehouse.ingest.animana.rows import LoadTarget
from warehouse.ingest.animana.statements import params

DELETED_UPSTREAM = "deleted in Animana"  # an appointment's cancel_reason when Animana deleted it


@dataclass(frozen=True)
class Tombstone:
    """Statements applying a batch's deletions (none: deletions are ignored, see `IGNORED`)."""

    statements: tuple[sql.Composable, ...] = ()

    def apply(self, cur: psycopg.Cursor, target: LoadTarget, ids: Sequence[str]) -> int:
        deleted = 0
        for statement in self.statements:
            cur.execute(statement, params(target, ids=list(ids)))
            deleted = cur.rowcount
        return deleted


def delete_rows(table: str) -> Tombstone:
    """The row goes: nothing else points at it, or what does is deleted with it by the foreign key."""
    return Tombstone(
        (
            sql.SQL("DELETE FROM {} WHERE practice_id = %(pid)s AND animana_id = ANY(%(ids)s)").format(
                sql.Identifier(table)
            ),
        )
    )


def mark_deleted(table: str) -> Tombstone:
    """The row stays with ``deleted_at`` set (once): history and what points at it stay valid."""
    return Tombstone(
        (
            sql.SQL(
                "UPDATE {} SET deleted_at = now(), updated_at = now() WHERE practice_id = %(pid)s "
                "AND animana_id = ANY(%(ids)s) AND deleted_at IS NULL"
            ).format(sql.Identifier(table)),
        )
    )


# Products: Animana's price list is read whole every run and reconciled after the stream
# (`handlers.directory.reconcile_products`), so a deleted article needs no statement of its own.
IGNORED = Tombstone()

# Staff and rooms (both `resource`): one still referenced by the agenda or shifts is switched off instead of
# deleted.
BOOKABLE = Tombstone(
    (
        sql.SQL(
            "UPDATE resource SET active = false WHERE practice_id = %(pid)s AND animana_id = ANY(%(ids)s)"
        ),
        sql.SQL(
            "DELETE FROM resource r WHERE r.practice_id = %(pid)s AND r.animana_id = ANY(%(ids)s) "
            "AND NOT EXISTS (SELECT 1 FROM appointment a WHERE a.practice_id = %(pid)s AND a.resource_id = r.id) "
            "AND NOT EXISTS (SELECT 1 FROM staff_shift s WHERE s.practice_id = %(pid)s AND s.resource_id = r.id)"
        ),
    )
)

# An appointment deleted upstream is flagged cancelled (keeps visits pointing at it valid, frees the slot); a
# cancellation already recorded keeps its time.
APPOINTMENT = Tombstone(
    (
        sql.SQL(
            "UPDATE appointment SET status = 'cancelled', cancelled_at = coalesce(cancelled_at, now()), "
            "cancel_reason = {reason}, updated_at = now() WHERE practice_id = %(pid)s "
            "AND animana_id = ANY(%(ids)s) AND cancel_reason IS DISTINCT FROM {reason}"
        ).format(reason=sql.Literal(DELETED_UPSTREAM)),
    )
)

# A consult goes with its diagnoses and weight; records that merely point at it (vaccinations, prescriptions,
# lab orders, invoices) stay and lose the link.
CONSULT = Tombstone(
    tuple(
        sql.SQL(statement)
        for statement in (
            "DELETE FROM diagnosis d USING visit v WHERE d.practice_id = %(pid)s AND v.practice_id = %(pid)s "
            "AND d.visit_id = v.id AND v.animana_id = ANY(%(ids)s)",
            "DELETE FROM weight_measurement WHERE practice_id = %(pid)s "
            "AND animana_id = ANY(array(SELECT 'consult:' || i FROM unnest(%(ids)s::text[]) i))",
            "UPDATE vaccination x SET visit_id = NULL FROM visit v WHERE x.practice_id = %(pid)s "
            "AND v.practice_id = %(pid)s AND x.visit_id = v.id AND v.animana_id = ANY(%(ids)s)",
            "UPDATE prescription x SET visit_id = NULL FROM visit v WHERE x.practice_id = %(pid)s "
            "AND v.practice_id = %(pid)s AND x.visit_id = v.id AND v.animana_id = ANY(%(ids)s)",
            "UPDATE lab_order x SET visit_id = NULL FROM visit v WHERE x.practice_id = %(pid)s "
            "AND v.practice_id = %(pid)s AND x.visit_id = v.id AND v.animana_id = ANY(%(ids)s)",
            "UPDATE invoice x SET visit_id = NULL FROM visit v WHERE x.practice_id = %(pid)s "
            "AND v.practice_id = %(pid)s AND x.visit_id = v.id AND v.animana_id = ANY(%(ids)s)",
            "DELETE FROM visit WHERE practice_id = %(pid)s AND animana_id = ANY(%(ids)s)",
        )
    )
)

# An invoice goes with its lines (foreign key); its payments stay, unlinked.
INVOICE = Tombstone(
    (
        sql.SQL(
            "UPDATE payment x SET invoice_id = NULL FROM invoice i WHERE x.practice_id = %(pid)s "
            "AND i.practice_id = %(pid)s AND x.invoice_id = i.id AND i.animana_id = ANY(%(ids)s)"
        ),
        *delete_rows("invoice").statements,
    )
)
