"""Staging: a batch's rows are COPYed into a TEMP table, and the loader's statements read them from there.

A `Staging` names the table and its columns in the order of the row tuples. Column types come from a short list
(`COPY_TYPES`): the binary COPY needs each type by name, and the DDL is composed from the identifiers and these
known types only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import psycopg
from psycopg import sql

# The PostgreSQL types a staged column may have (what the mapped Python values dump to in binary COPY).
COPY_TYPES = frozenset({"text", "text[]", "boolean", "bigint", "numeric", "date", "timestamptz", "bytea"})


@dataclass(frozen=True)
class Staging:
    """A TEMP staging table: ``name`` and its ``columns`` as ``"column type"``, in the order of the row tuples."""

    name: str
    columns: tuple[str, ...]

    def __post_init__(self) -> None:
        for column in self.columns:
            parts = column.split()
            if len(parts) != 2 or parts[1] not in COPY_TYPES:
                raise ValueError(
                    f"{self.name}: staging column {column!r} is not 'name type' of {sorted(COPY_TYPES)}"
                )

    @cached_property
    def names(self) -> list[str]:
        return [c.split()[0] for c in self.columns]

    @cached_property
    def types(self) -> list[str]:
        return [c.split()[1] for c in self.columns]


def stage(cur: psycopg.Cursor, staging: Staging, rows: Iterable[Sequence[Any]]) -> None:
    """Binary COPY into the staging table (the mapped values are already typed; binary spares the server the
    text parsing). Not analysed: the loader's joins are hash joins whatever the estimates (see `load.load_batch`).

    The TEMP table is made once per connection and is empty at the start of every transaction (ON COMMIT DELETE
    ROWS); the DELETE only matters when one transaction stages twice (the row-by-row fallback). Not TRUNCATE:
    that gives the table a new file on every call (measured 1-2.5 ms each, ~100 calls per 2 medium practices),
    where a DELETE of an empty or one-row table costs microseconds. One round trip for both statements."""
    table = sql.Identifier(staging.name)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))  # kind: one of COPY_TYPES
        for name, kind in zip(staging.names, staging.types, strict=True)
    )
    cur.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS; DELETE FROM {}").format(
            table, definitions, table
        )
    )
    columns = sql.SQL(", ").join(sql.Identifier(name) for name in staging.names)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, columns)
    with cur.copy(statement) as copy:
        copy.set_types(staging.types)
        for row in rows:
            copy.write_row(row)
