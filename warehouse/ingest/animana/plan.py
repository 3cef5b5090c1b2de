"""A declarative load for a simple resource: one source record → one row of one table, keyed by
``(practice_id, animana_id)``, its parents resolved from their Animana ids.

A `TableLoad` is data — target table, staging columns, the columns to write (copied from staging, resolved from a
parent, or fixed), the tombstone rule — and builds its statements with `psycopg.sql` from it. It does what the
bespoke handlers do for such a table: stage, quarantine the rows whose required parent is unknown, upsert the
rest (a plain INSERT on a first load), and on deletion delete the row or mark it deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import psycopg
from psycopg import sql

from warehouse.ingest.animana.checks import FROM_ANIMANA, NOT_DELETED, MirrorCount
from warehouse.ingest.animana.load import Encrypt
from warehouse.ingest.animana.quarantine import quarantine_unresolved, unknown_parent
from warehouse.ingest.animana.rows import LoadTarget
from warehouse.ingest.animana.staging import Staging, stage
from warehouse.ingest.animana.statements import missing, ref, version, write_batch
from warehouse.ingest.animana.tombstones import Tombstone, delete_rows, mark_deleted


class OnDelete(StrEnum):
    """What a record deleted upstream does to its row."""

    DELETE = "delete"  # the row goes
    MARK_DELETED = (
        "mark_deleted"  # ``deleted_at`` is set (the table needs it, and ``updated_at``); the mirror
    )
    # counts live rows only, and a record that comes back live is undeleted


@dataclass(frozen=True)
class Reference:
    """Target ``column`` gets the id of the practice's row of ``table`` whose animana_id is in staging column
    ``key``. ``required``: a row whose parent is unknown is quarantined with the reason ``"<unknown> <id>"``
    and not written; otherwise the column is NULL."""

    column: str
    table: str
    key: str
    required: bool = False
    unknown: str = ""

    def __post_init__(self) -> None:
        if self.required and not self.unknown:
            raise ValueError(f"{self.column}: a required reference needs its quarantine reason ('unknown …')")


@dataclass(frozen=True)
class Fixed:
    """Target ``column`` gets the same value for every row (e.g. the code system of Animana's lab codes)."""

    column: str
    value: str | int | bool | None


@dataclass(frozen=True)
class Version:
    """Target column ``animana_version`` (a mirrored table's, `warehouse.integration.tables`) gets the record's
    version: its ``updated_at``, staged as a timestamptz in ``key``, as Animana writes it (`statements.version`)."""

    key: str = "updated_at"
    column = "animana_version"


Column = str | Reference | Fixed | Version  # a str: copied from the staging column of that name


@dataclass(frozen=True)
class TableLoad:
    """A `load.ResourceLoad` declared as data. ``staging`` starts with ``animana_id``; ``touch``: an update also
    sets ``updated_at``; ``prepare`` (a warehouse service taking the cursor and the practice id) runs before a
    batch is written, for what the rows replace (VetConnect's planned shifts give way to Animana's)."""

    table: str
    staging: Staging
    columns: tuple[Column, ...]
    on_delete: OnDelete = OnDelete.DELETE
    touch: bool = False
    prepare: Callable[[psycopg.Cursor, int], object] | None = None

    def __post_init__(self) -> None:
        staged = self.staging.names
        if staged[0] != "animana_id":
            raise ValueError(f"{self.staging.name}: the first staging column must be animana_id")
        for column in self.columns:
            name = (
                column
                if isinstance(column, str)
                else column.key
                if isinstance(column, Reference | Version)
                else None
            )
            if name is not None and name not in staged:
                raise ValueError(f"{self.table}: {name!r} is not a column of {self.staging.name}")

    # -- the `ResourceLoad` protocol ----------------------------------------------------------------------------
    @cached_property
    def tombstone(self) -> Tombstone:
        return delete_rows(self.table) if self.on_delete is OnDelete.DELETE else mark_deleted(self.table)

    @cached_property
    def mirror(self) -> MirrorCount:
        if self.on_delete is OnDelete.MARK_DELETED:
            return MirrorCount(self.table, (FROM_ANIMANA, NOT_DELETED))
        return MirrorCount(self.table)

    @property
    def children(self) -> Mapping[str, str]:
        return {}

    @property
    def encrypt(self) -> Encrypt | None:
        return None

    def handle(
        self,
        cur: psycopg.Cursor,
        target: LoadTarget,
        resource: str,
        rows: list[tuple],
        children: dict[str, list[tuple]],
    ) -> tuple[int, int, int]:
        stage(cur, self.staging, rows)
        if self.prepare is not None:
            self.prepare(cur, target.practice_id)
        quarantined = 0
        for reference in self._required:
            quarantined += quarantine_unresolved(
                cur, target, resource, self.staging.name, missing(reference.table, "s." + reference.key),
                unknown_parent(reference.unknown, reference.key),
            )  # fmt: skip
        inserted, updated = write_batch(
            cur, self.table, self._targets, self._select, target, self.staging.name, touch=self.touch
        )
        return inserted, updated, quarantined

    # -- statements ------------------------------------------------------------------------------------------------
    @cached_property
    def _required(self) -> list[Reference]:
        return [c for c in self.columns if isinstance(c, Reference) and c.required]

    @cached_property
    def _targets(self) -> list[str]:
        names = [c if isinstance(c, str) else c.column for c in self.columns]
        return [*names, "deleted_at"] if self.on_delete is OnDelete.MARK_DELETED else names

    @cached_property
    def _select(self) -> sql.Composed:
        """``SELECT %(pid)s, s.animana_id, <columns> FROM <staging> s <joins>``; a referenced table is joined under
        the name of the column it fills."""
        values: list[sql.Composable] = []
        joins: list[sql.Composable] = []
        for column in self.columns:
            if isinstance(column, str):
                values.append(sql.Identifier("s", column))
            elif isinstance(column, Reference):
                values.append(sql.Identifier(column.column, "id"))
                joins.append(ref(column.table, "s." + column.key, column.column, required=column.required))
            elif isinstance(column, Version):
                values.append(version("s." + column.key))
            else:
                values.append(sql.Literal(column.value))
        if self.on_delete is OnDelete.MARK_DELETED:
            values.append(sql.SQL("NULL::timestamptz"))  # live upstream: not deleted (any more)
        return sql.SQL("SELECT %(pid)s, s.animana_id, {values} FROM {staging} s {joins}").format(
            values=sql.SQL(", ").join(values),
            staging=sql.Identifier(self.staging.name),
            joins=sql.SQL(" ").join(joins),
        )
