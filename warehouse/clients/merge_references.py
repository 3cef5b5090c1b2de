"""Which rows refer to a client or a patient, read from the database catalogue when a merge runs.

A hand-kept list of "tables with a client_id" goes stale the day someone adds a table; the catalogue does not.
Every foreign key to ``client`` or ``patient`` (on a table or a partitioned parent, never on one partition) is a
reference a merge moves, except the record's own ``merged_into_id`` (a merged duplicate keeps pointing at the
record it went into). A few columns refer to a client or patient without a foreign key (logs, and copies kept for
speed); they are listed here, and ``tests/warehouse/clients/test_merge.py`` checks against the catalogue that
every column named ``client_id``/``patient_id`` is either a foreign key, listed as moved, or listed as left alone
with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session

Kind = Literal["client", "patient"]

# Refer to a client or patient without a foreign key, and are about the same person or animal: moved too.
UNENFORCED: dict[str, tuple[tuple[str, str], ...]] = {
    "client": (("document", "client_id"), ("reminder", "client_id"), ("event", "client_id")),
    "patient": (("event", "patient_id"), ("device_message", "patient_id")),
}
# Refer to one without a foreign key and stay as they are, with the reason.
LEFT_ALONE: dict[tuple[str, str], str] = {
    ("mart_open_invoice", "client_id"): "a mart, rebuilt from the invoices (which move)",
    ("suggestion_log", "patient_id"): "a log of what a user was shown at the time",
    ("client_erasure", "client_id"): "an erased client is never merged (``merge._check_pair`` refuses it)",
}
# Columns the write-back keeps up to date by itself: a merge neither compares nor restores them.
BOOKKEEPING = ("updated_at", "animana_version", "writeback_pending")


@dataclass(frozen=True)
class Reference:
    """``table.column`` refers to a client or patient id (with ``practice_id``, as every key here)."""

    table: str
    column: str
    key: tuple[str, ...]  # the table's primary key without practice_id
    # Unique keys that include ``column`` (without practice_id and ``column``): a row of the duplicate whose other
    # key columns equal a row of the survivor's cannot move — the survivor already has that row.
    clashes_on: tuple[tuple[str, ...], ...]
    columns: tuple[str, ...]  # every column a row can be re-inserted with (not generated ones)


# ``conparentid = 0`` leaves out the copy of a partitioned table's foreign key on each of its partitions (one per
# practice and table: most of pg_constraint) before the joins; without it the planner joined pg_class by a
# sequential scan per constraint, ~0.9 s at 200 practices (bench/workspaces.py --explain).
_FOREIGN_KEYS = text(
    """
    SELECT r.relname AS table_name, a.attname AS column_name
      FROM pg_constraint c
      JOIN pg_class r ON r.oid = c.conrelid
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[2]
     WHERE c.contype = 'f' AND c.confrelid = CAST(:kind AS regclass) AND c.conparentid = 0 AND NOT r.relispartition
       AND cardinality(c.conkey) = 2
       AND (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) = 'practice_id'
       AND NOT (c.conrelid = c.confrelid AND a.attname = 'merged_into_id')
     ORDER BY 1, 2
    """
)
# The unique keys and the columns of every referring table, in one round trip (a query per table made a merge
# send ~35 small catalogue queries before moving anything).
_TABLES = text(
    """
    SELECT t.name AS table_name,
           ARRAY(SELECT attname::text FROM pg_attribute
                  WHERE attrelid = t.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                  ORDER BY attnum) AS columns,
           ARRAY(SELECT jsonb_build_object(
                          'is_primary', i.indisprimary, 'partial', i.indpred IS NOT NULL,
                          'columns', (SELECT jsonb_agg(a.attname ORDER BY k.ord)
                                        FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                                        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum))
                   FROM pg_index i WHERE i.indrelid = t.oid AND i.indisunique) AS keys
      FROM (SELECT name, CAST(name AS regclass) AS oid FROM unnest(CAST(:tables AS text[])) AS name) t
    """
)


class UnsupportedReference(RuntimeError):
    """A reference a merge cannot move safely (a partial unique index over it): the schema needs a decision."""


def references_to(session: Session, kind: Kind) -> list[Reference]:
    """Every (table, column) referring to a ``kind`` row that a merge moves, from the catalogue."""
    pairs = [(r.table_name, r.column_name) for r in session.execute(_FOREIGN_KEYS, {"kind": kind})]
    pairs += [pair for pair in UNENFORCED[kind] if pair not in pairs]
    tables = {
        row.table_name: row
        for row in session.execute(_TABLES, {"tables": sorted({table for table, _ in pairs})})
    }
    return [_reference(table, column, tables[table].keys, tables[table].columns) for table, column in pairs]


def _reference(table: str, column: str, unique_keys: list[dict], table_columns: list[str]) -> Reference:
    key: tuple[str, ...] = ()
    clashes: list[tuple[str, ...]] = []
    for index in unique_keys:
        columns = tuple(c for c in index["columns"] if c != "practice_id")
        if index["is_primary"]:
            key = columns
        if column in columns:
            if index["partial"]:
                raise UnsupportedReference(
                    f"{table}.{column} is part of a partial unique index: decide how a merge treats it"
                )
            clashes.append(tuple(c for c in columns if c != column))
    return Reference(table, column, key, tuple(clashes), tuple(table_columns))
