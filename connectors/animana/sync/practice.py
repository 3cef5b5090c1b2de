"""Syncing one practice (`sync_practice`): its resources parents first (`RESOURCE_ORDER`), each batch loaded in
ONE transaction under the practice's RLS context together with its ``sync_state`` cursor and the run's counts.

A crash at any point loses at most the batch in flight, and the rerun resumes from the committed cursor (upserts
on animana_id make a replayed page harmless). Pages are fetched and mapped ahead of the loader (`prefetch`).

Incremental: ``updated_since`` = the committed cursor (strictly after, so nothing repeats or is lost).
Full (``full=True``): every resource is re-read from the start and upserted (unchanged rows are not rewritten,
so the counts are the drift), products are reconciled against the live list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import psycopg
import stamina
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from connectors.animana.client import AnimanaClient
from connectors.animana.resources.registry import (
    RESOURCE_ORDER,
    RULES_BY_TABLE,
    SPEC_BY_NAME,
    resources_read_in,
)
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.prefetch import MappedBatch, Prefetch
from warehouse.ingest.animana.handlers.directory import reconcile_products
from warehouse.ingest.animana.load import load_batch
from warehouse.ingest.animana.progress import commit_progress, finish_run, mark_synced, read_cursor, start_run
from warehouse.ingest.animana.rows import Batch, LoadCounts, LoadTarget
from warehouse.integration.modes import modes
from warehouse.integration.settle import settle
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import FieldCipher
from warehouse.kernel.statistics import refresh_practice_statistics
from warehouse.kernel.tenancy import AccessContext, tenant_session

# Small resources re-read completely on every run (products: the live list is reconciled).
ALWAYS_FULL = ("products",)
# Records per load transaction (consecutive pages merged). 20,000 rather than 5,000: each transaction pays its
# statements, statement triggers, audit entries and FK-plan builds once; 2 medium practices, A/B twice: sync/raw
# COPY 64-66 % -> 68-72 %, peak RSS +9 MB.
BATCH_RECORDS = 20_000
# A load transaction the server rolled back (deadlock, serialization failure) is run again, this often in all.
TRANSACTION_ATTEMPTS = 4
ROLLED_BACK_BY_SERVER = {"40P01", "40001"}  # deadlock_detected, serialization_failure

Progress = Callable[[str, str, int], None]  # (practice code, resource, records in the page just loaded)


@dataclass
class PracticeResult:
    practice: LinkedPractice
    run_id: int
    full: bool
    counts: dict[str, LoadCounts] = field(default_factory=dict)
    records: int = 0

    def totals(self) -> LoadCounts:
        total = LoadCounts()
        for counts in self.counts.values():
            total.add(counts)
        return total


def sync_practice(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    *,
    master_key: bytes,
    full: bool = False,
    resources: Iterable[str] = RESOURCE_ORDER,
    progress: Progress | None = None,
    batch_records: int = BATCH_RECORDS,
) -> PracticeResult:
    """Sync one practice (see the module docstring). Raises on API or database errors after recording the
    run as failed; whatever was committed before stays (and is where the next run resumes)."""
    context = AccessContext.for_practices([practice.practice_id])
    with tenant_session(app_engine, context) as session:
        readable = set(resources_read_in(modes(session, practice.practice_id)))
        resources = [r for r in RESOURCE_ORDER if r in set(resources) and r in readable]
        run_id = start_run(session, practice.practice_id, full=full)
        cipher = practice_cipher(session, practice.practice_id, master_key)
        since = {
            r: None if full or r in ALWAYS_FULL else read_cursor(session, practice.practice_id, r)
            for r in resources
        }
    target = LoadTarget(practice.practice_id, practice.franchise_id, run_id)
    result = PracticeResult(practice, run_id, full)
    try:
        with Prefetch(client, practice, resources, since, batch_records) as batches:
            _load(
                app_engine,
                practice,
                target,
                batches,
                cipher=cipher,
                full=full,
                progress=progress,
                result=result,
            )
    except BaseException as exc:
        with tenant_session(app_engine, context) as session:
            finish_run(session, practice.practice_id, run_id, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    with tenant_session(app_engine, context) as session:
        # Before settling and before the workspaces read it: a first sync leaves tables without statistics, which
        # makes every key lookup a scan of the practice's partition until autovacuum's next look. A transaction of
        # its own, so its table locks (ANALYZE against ANALYZE) do not wait on another practice's settlement.
        refresh_practice_statistics(session, practice.practice_id)
    with tenant_session(app_engine, context) as session:
        # Animana's changes to rows with a local change Animana has not acknowledged were held by the loader, not
        # applied: settle them all at once (per field; what no rule decides becomes a conflict). Once per sync, not
        # per batch: each of settlement's statements fires the mirrored tables' triggers once however many rows it
        # writes, and per batch the same statements ran for a handful of rows each, in every batch that held any
        # (bench/writeback.py: 0.4-0.6 s of a medium practice's incremental sync). Held rows stay held until then
        # (durably: a crash leaves them for the next sync); a write the dispatcher sends meanwhile on the older
        # version is refused as stale by Animana and waits for this settlement like any other.
        settle(session, practice.practice_id, RULES_BY_TABLE, cipher=cipher)
        mark_synced(session, practice.practice_id, resources, full=full)
        finish_run(session, practice.practice_id, run_id)
    return result


def _load(
    app_engine: Engine,
    practice: LinkedPractice,
    target: LoadTarget,
    batches: Iterable[MappedBatch],
    *,
    cipher: FieldCipher,
    full: bool,
    progress: Progress | None,
    result: PracticeResult,
) -> None:
    context = AccessContext.for_practices([practice.practice_id])
    live_codes: list[str] = []
    for mapped in batches:
        resource, batch = mapped.resource, mapped.batch
        counts = result.counts.setdefault(resource, LoadCounts())
        whole = full or resource in ALWAYS_FULL
        if batch is None:  # the resource's stream is complete
            if resource == "products" and live_codes:
                reconcile = partial(_reconcile_products, target=target, live_codes=live_codes, counts=counts)
                counts.add(in_transaction(app_engine, context, reconcile))
            continue
        if resource == "products":
            live_codes.extend(row[0] for row in batch.rows)
        load = partial(_load_batch, target=target, batch=batch, cipher=cipher, counts=counts, full=whole)
        counts.add(in_transaction(app_engine, context, load))
        result.records += mapped.records
        if progress is not None:
            progress(practice.code, resource, mapped.records)


def _load_batch(
    session: Session,
    *,
    target: LoadTarget,
    batch: Batch,
    cipher: FieldCipher,
    counts: LoadCounts,
    full: bool,
) -> LoadCounts:
    """One batch and its cursor (one transaction): what it changed. ``counts`` (the resource's so far) is read only."""
    loaded = load_batch(session, target, batch, SPEC_BY_NAME[batch.resource].load, cipher=cipher)
    run_counts = _plus(counts, loaded)
    commit_progress(session, target, batch.resource, batch.high_water, full=full, run_counts=run_counts)
    return loaded


def _reconcile_products(
    session: Session, *, target: LoadTarget, live_codes: list[str], counts: LoadCounts
) -> LoadCounts:
    gone = LoadCounts(deleted=reconcile_products(session, target, live_codes))
    commit_progress(session, target, "products", None, full=True, run_counts=_plus(counts, gone))
    return gone


def _plus(counts: LoadCounts, more: LoadCounts) -> dict[str, int]:
    total = LoadCounts(**counts.as_dict())
    total.add(more)
    return total.as_dict()


T = TypeVar("T")


def in_transaction(
    app_engine: Engine,
    context: AccessContext,
    work: Callable[[Session], T],
    *,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """``work(session)`` in one `tenant_session` transaction, run again (up to ``attempts`` times in all, stamina's
    backoff with jitter) when the server rolled it back for a deadlock or a serialization failure. Practices of
    one franchise share its product list, so concurrent practices can deadlock there; the batch and its cursor
    are one transaction and the upserts are idempotent, so running the same batch again is exact. ``work`` must
    not change anything outside the transaction (counts are added by the caller once it committed)."""
    for attempt in stamina.retry_context(
        on=_rolled_back_by_server,
        attempts=attempts,
        timeout=None,
        wait_initial=0.05,
        wait_max=1.0,
        wait_jitter=0.2,
    ):
        with attempt, tenant_session(app_engine, context) as session:
            return work(session)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _rolled_back_by_server(exc: Exception) -> bool:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return isinstance(cause, psycopg.Error) and cause.sqlstate in ROLLED_BACK_BY_SERVER


def results_in_order(futures: Sequence[Future[T]]) -> list[T]:
    """The futures' results in their order; on the first error the ones not yet started are cancelled (those
    already running finish) and the error is raised. For practices run in threads or in worker processes."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
