"""`load_batch`: one mapped page of one source resource into the warehouse, in the caller's transaction.

What a resource's rows need is its `ResourceLoad`: a declarative `plan.TableLoad` for a simple table, or a
`HandlerLoad` around a bespoke handler (`handlers`) where one table's plan cannot say it. The caller (the
sync, through the resource's spec) hands it in; the warehouse keeps no list of source resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from sqlalchemy.orm import Session

from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.quarantine import quarantine_rejections
from warehouse.ingest.animana.rows import Batch, LoadCounts, LoadTarget, Rejection
from warehouse.ingest.animana.statements import driver_connection
from warehouse.ingest.animana.tombstones import Tombstone
from warehouse.kernel.crypto import FieldCipher

# Stages and upserts one batch's rows (+ children) of ``resource``; returns (inserted, updated, quarantined).
Handler = Callable[
    [psycopg.Cursor, LoadTarget, str, list[tuple], dict[str, list[tuple]]], tuple[int, int, int]
]
# Rows holding PII in clear → the same rows with it encrypted (see `handlers.directory.encrypt_clients`).
Encrypt = Callable[[psycopg.Cursor, LoadTarget, FieldCipher, list[tuple]], list[tuple]]


class ResourceLoad(Protocol):
    """How one source resource's batches land: rows, deletions, and what counts as its mirror."""

    @property
    def tombstone(self) -> Tombstone: ...

    @property
    def mirror(self) -> MirrorCount: ...

    @property
    def children(self) -> Mapping[str, str]:
        """Child row lists of a batch → the child field holding its parent's id (for the row-by-row fallback)."""
        ...

    @property
    def encrypt(self) -> Encrypt | None: ...

    def handle(
        self,
        cur: psycopg.Cursor,
        target: LoadTarget,
        resource: str,
        rows: list[tuple],
        children: dict[str, list[tuple]],
    ) -> tuple[int, int, int]: ...


@dataclass(frozen=True)
class HandlerLoad:
    """A `ResourceLoad` by a bespoke handler: for resources a single-table plan cannot express."""

    handler: Handler
    tombstone: Tombstone
    mirror: MirrorCount
    children: Mapping[str, str] = field(default_factory=dict)
    encrypt: Encrypt | None = None

    def handle(
        self,
        cur: psycopg.Cursor,
        target: LoadTarget,
        resource: str,
        rows: list[tuple],
        children: dict[str, list[tuple]],
    ) -> tuple[int, int, int]:
        return self.handler(cur, target, resource, rows, children)


# Settings of a load transaction (SET LOCAL; the bench's raw COPY baseline uses them too):
# - plan_cache_mode = force_generic_plan: every row inserted into a table with a foreign key to a partitioned
#   table (visit -> appointment, diagnosis/vaccination/prescription -> visit, invoice_line -> invoice) runs the
#   referential check's cached query. Under the default `auto` mode the planner keeps choosing a custom plan for
#   it (it prunes to one partition, so it looks cheaper than the generic plan), i.e. it plans the check again
#   for every row. Measured with EXPLAIN ANALYZE of the same 348,458 rows (2 medium practices): FK check
#   visit -> appointment 3.07 s -> 0.49 s, diagnosis -> visit 2.21 s -> 0.43 s. The loader's own statements are
#   not prepared (`prepare_threshold = None`), so they are still planned with their parameters.
# - enable_nestloop = off, synchronous_commit = off: see `load_batch`.
# - vetconnect.writer = 'animana' (what `warehouse.integration.capture.writing_as` sets): the rows are Animana's,
#   so the change-capture triggers of the mirrored tables leave them out of the write-back outbox (no echo), and
#   an update of a row with an unacknowledged local change is held for settlement instead of reverting it.
#   Everything in the transaction is marked: rows, tombstones, the row-by-row fallback's savepoints.
LOAD_SETTINGS = (
    "SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_nestloop = off; "
    "SET LOCAL synchronous_commit = off; SET LOCAL vetconnect.writer = 'animana'"
)


def load_batch(
    session: Session,
    target: LoadTarget,
    batch: Batch,
    load: ResourceLoad,
    *,
    cipher: FieldCipher | None = None,
) -> LoadCounts:
    """Load one mapped page in the session's transaction (see the package docstring) the way ``load`` says. Does
    not advance the cursor: call `progress.commit_progress` in the same transaction."""
    connection = driver_connection(session)
    # Generic plans of prepared statements do not prune partitions by the parameter; plan each statement.
    connection.prepare_threshold = None
    cur = connection.cursor()
    # Per transaction:
    # - DISCARD PLANS: the foreign-key checks (and the triggers' statements) run cached plans that the backend
    #   made generic after a few rows; one made while the parent partition was nearly empty seq-scans it for
    #   every child row for the rest of the session (measured: invoice_line's FK check on invoice, 2.7 ms a row
    #   by the twentieth page). Replanning once per transaction costs a few milliseconds.
    # - no nested loops: the tables being loaded have no statistics until the end of the sync
    #   (`refresh_practice_statistics`) or autovacuum's next look, so the planner takes a partition of thousands of
    #   rows for one row and nests loops over it, quadratic (measured: 5,000 appointments against 4,000 patients,
    #   9.5 M rows filtered, 5 s a batch). Hash joins read each parent partition once per batch whatever the
    #   estimates.
    # - asynchronous commit: the batch and its cursor stay one atomic transaction; a server crash can only lose
    #   the last few committed batches together with their cursor, and the next run reads them again.
    # - generic plans (`LOAD_SETTINGS`): see there.
    cur.execute("DISCARD PLANS; " + LOAD_SETTINGS)
    counts = LoadCounts()
    if batch.rows:
        rows = batch.rows
        if load.encrypt is not None:
            if cipher is None:
                raise ValueError(f"loading {batch.resource} needs the practice's FieldCipher")
            rows = load.encrypt(cur, target, cipher, rows)
            batch = Batch(
                batch.resource, rows, batch.children, batch.deleted, batch.rejected, batch.high_water
            )
        try:
            with cur.connection.transaction():
                inserted, updated, quarantined = load.handle(
                    cur, target, batch.resource, rows, batch.children
                )
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
            inserted, updated, quarantined = _row_by_row(cur, target, batch, load)
        counts.inserted, counts.updated, counts.quarantined = inserted, updated, quarantined
    if batch.deleted:
        counts.deleted = load.tombstone.apply(cur, target, batch.deleted)
    counts.quarantined += quarantine_rejections(cur, target, batch.resource, batch.rejected)
    return counts


def _row_by_row(
    cur: psycopg.Cursor, target: LoadTarget, batch: Batch, load: ResourceLoad
) -> tuple[int, int, int]:
    """Fallback when the set-based load hits a constraint: each row (with its children) in a savepoint; a row
    the database refuses is quarantined with the database's message."""
    inserted = updated = quarantined = 0
    for row in batch.rows:
        key = row[0]
        children = {
            name: [c for c in rows if getattr(c, load.children[name]) == key]
            for name, rows in batch.children.items()
        }
        try:
            with cur.connection.transaction():
                i, u, q = load.handle(cur, target, batch.resource, [row], children)
        except (psycopg.errors.IntegrityError, psycopg.errors.DataError) as exc:
            message = (exc.diag.message_primary or str(exc)).strip()
            detail = exc.diag.message_detail
            reason = f"refused by the database: {message}" + (f" ({detail})" if detail else "")
            quarantined += quarantine_rejections(
                cur, target, batch.resource, [Rejection(str(key), json.dumps(_jsonable(row)), reason)]
            )
            continue
        inserted, updated, quarantined = inserted + i, updated + u, quarantined + q
    return inserted, updated, quarantined


def _jsonable(row: tuple) -> Any:
    if hasattr(row, "_asdict"):
        data = row._asdict()  # type: ignore[attr-defined]
    else:
        data = {str(i): v for i, v in enumerate(row)}
    return {k: (v if isinstance(v, str | int | float | bool | None) else str(v)) for k, v in data.items()}
