"""The Animana sync service: one function the CLI, the demo and the Dagster assets all call.

Per practice, resources load parents first (`RESOURCE_ORDER`). Each page is mapped (connectors) and loaded
(warehouse); consecutive pages of a resource are merged into one batch of up to `BATCH_RECORDS` records, loaded in
ONE transaction under the practice's RLS context together with its `sync_state` cursor and the run's counts; a
crash at any point loses at most the batch in flight, and the rerun resumes from the committed cursor (upserts on
animana_id make a replayed page harmless). A page that repeats a key already in the batch (a record edited while
the stream was read) starts a new batch, so each batch applies its pages in order.

Fetching overlaps loading: one producer thread per practice reads, validates and maps the pages (all resources in
order) while the caller's thread loads; at most `PREFETCH_BATCHES` mapped batches wait in memory, so memory is
bounded whatever the history. `sync_all` runs up to `workers` practices at once (one connection each; practices
do not share an audit chain, so their transactions do not wait on each other), as threads or, with
``processes=True``, in worker processes (`pipelines.animana.processes`).

Incremental: ``updated_since`` = the committed cursor (strictly after, so nothing repeats or is lost).
Full (``full=True``): every resource is re-read from the start and upserted (unchanged rows are not rewritten,
so the counts are the drift), products are reconciled against the live list.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import psycopg
import stamina
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from connectors.animana import AnimanaClient
from connectors.animana.mapping import map_items
from warehouse import loaders
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.loaders import Batch, LoadCounts, LoadTarget

RESOURCE_ORDER: tuple[str, ...] = (
    "staff",
    "resources",
    "products",
    "relations",
    "animals",
    "agenda",
    "consults",
    "vaccinations",
    "prescriptions",
    "labresults",
    "invoices",
    "payments",
)
# Small resources re-read completely on every run (products: the live list is reconciled).
ALWAYS_FULL = ("products",)
# Records per load transaction (consecutive pages merged), and mapped batches buffered ahead of the loader.
# 20,000 rather than 5,000: each transaction pays its statements, statement triggers, audit entries and
# FK-plan builds once; 2 medium practices, A/B twice: sync/raw COPY 64-66 % -> 68-72 %, peak RSS +9 MB.
BATCH_RECORDS = 20_000
PREFETCH_BATCHES = 2
# A load transaction the server rolled back (deadlock, serialization failure) is run again, this often in all.
TRANSACTION_ATTEMPTS = 4
ROLLED_BACK_BY_SERVER = {"40P01", "40001"}  # deadlock_detected, serialization_failure

Progress = Callable[[str, str, int], None]  # (practice code, resource, records in the page just loaded)


@dataclass(frozen=True)
class LinkedPractice:
    """A warehouse practice and the Animana practice it mirrors."""

    practice_id: int
    franchise_id: int
    code: str
    animana_id: int


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


def linked_practices(admin_engine: Engine, codes: Sequence[str] | None = None) -> list[LinkedPractice]:
    """Practices linked to Animana (``tenant.animana_practice_id`` set), optionally only ``codes``. Listing
    across practices is a cross-tenant read, so it goes through the audited system session."""
    with system_session(admin_engine, reason="animana sync: list linked practices") as session:
        rows = session.execute(
            text(
                "SELECT id, franchise_id, code, animana_practice_id FROM tenant WHERE kind = 'practice' "
                "AND animana_practice_id IS NOT NULL AND offboarded_at IS NULL ORDER BY id"
            )
        ).all()
    found = [LinkedPractice(r.id, r.franchise_id, r.code, int(r.animana_practice_id)) for r in rows]
    if codes is not None:
        wanted = set(codes)
        found = [p for p in found if p.code in wanted]
        missing = wanted - {p.code for p in found}
        if missing:
            raise LookupError(f"not linked to Animana (or unknown): {', '.join(sorted(missing))}")
    return found


def link_practice(admin_engine: Engine, code: str, animana_practice_id: int) -> None:
    """Onboarding: link a warehouse practice to its Animana practice id."""
    with system_session(admin_engine, reason=f"animana: link practice {code}") as session:
        updated = session.execute(
            text("UPDATE tenant SET animana_practice_id = :aid WHERE code = :code AND kind = 'practice'"),
            {"aid": str(animana_practice_id), "code": code},
        ).rowcount
    if not updated:
        raise LookupError(f"no practice with code {code!r}")


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
    resources = [r for r in RESOURCE_ORDER if r in set(resources)]
    with tenant_session(app_engine, context) as session:
        run_id = loaders.start_run(session, practice.practice_id, full=full)
        cipher = loaders.practice_cipher(session, practice.practice_id, master_key)
        since = {
            r: None if full or r in ALWAYS_FULL else loaders.read_cursor(session, practice.practice_id, r)
            for r in resources
        }
    target = LoadTarget(practice.practice_id, practice.franchise_id, run_id)
    result = PracticeResult(practice, run_id, full)
    try:
        with _Prefetch(client, practice, resources, since, batch_records) as batches:
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
            loaders.finish_run(
                session, practice.practice_id, run_id, error=f"{type(exc).__name__}: {exc}"[:2000]
            )
        raise
    with tenant_session(app_engine, context) as session:
        loaders.mark_synced(session, practice.practice_id, resources, full=full)
        loaders.finish_run(session, practice.practice_id, run_id)
    return result


@dataclass
class _Mapped:
    """What the producer hands the loader: a merged batch of one resource (``batch`` None: the resource's stream
    is complete) and how many source records it holds."""

    resource: str
    batch: Batch | None
    records: int = 0


def _merge(resource: str, parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    merged = Batch(resource)
    for part in parts:
        merged.rows.extend(part.rows)
        for name, rows in part.children.items():
            merged.children.setdefault(name, []).extend(rows)
        merged.deleted.extend(part.deleted)
        merged.rejected.extend(part.rejected)
        if part.high_water is not None and (merged.high_water is None or part.high_water > merged.high_water):
            merged.high_water = part.high_water
    return merged


def _batches(
    client: AnimanaClient, practice: LinkedPractice, resource: str, since: dt.datetime | None, limit: int
) -> Iterator[_Mapped]:
    """Mapped pages of one resource, merged up to ``limit`` records. A page that names a key the pending batch
    already holds (as a row or a tombstone) closes the batch first: within a batch every key is unique, so the
    set-based upsert never meets a key twice and an upsert never follows its own tombstone."""
    parts: list[Batch] = []
    keys: set[str] = set()
    records = 0
    for page in client.iter_pages(practice.animana_id, resource, updated_since=since, wire=True):
        batch = map_items(resource, page.items)
        page_keys = {row[0] for row in batch.rows}
        page_keys.update(batch.deleted)
        if parts and (records + len(page.items) > limit or not keys.isdisjoint(page_keys)):
            yield _Mapped(resource, _merge(resource, parts), records)
            parts, keys, records = [], set(), 0
        parts.append(batch)
        keys |= page_keys
        records += len(page.items)
    if parts:
        yield _Mapped(resource, _merge(resource, parts), records)
    yield _Mapped(resource, None)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Prefetch:
    """A producer thread that fetches and maps every resource of one practice in order, at most
    ``PREFETCH_BATCHES`` batches ahead of the loader. Iterate it in the loading thread; an error in the producer
    is raised there. Leaving the ``with`` block stops the producer (it never blocks on a full buffer for long)."""

    def __init__(
        self,
        client: AnimanaClient,
        practice: LinkedPractice,
        resources: Sequence[str],
        since: dict[str, dt.datetime | None],
        limit: int,
    ) -> None:
        self._queue: queue.Queue[_Mapped | _Failure | None] = queue.Queue(maxsize=PREFETCH_BATCHES)
        self._stop = threading.Event()
        self._args = (client, practice, resources, since, limit)
        self._thread = threading.Thread(target=self._produce, name=f"animana-{practice.code}", daemon=True)

    def __enter__(self) -> Iterator[_Mapped]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _put(self, item: _Mapped | _Failure | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        client, practice, resources, since, limit = self._args
        try:
            for resource in resources:
                for mapped in _batches(client, practice, resource, since[resource], limit):
                    if not self._put(mapped):
                        return
        except BaseException as exc:  # handed to the loading thread, which raises it
            self._put(_Failure(exc))
            return
        self._put(None)

    def _consume(self) -> Iterator[_Mapped]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item


def _load(
    app_engine: Engine,
    practice: LinkedPractice,
    target: LoadTarget,
    batches: Iterable[_Mapped],
    *,
    cipher: loaders.FieldCipher,
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
    cipher: loaders.FieldCipher,
    counts: LoadCounts,
    full: bool,
) -> LoadCounts:
    """One batch and its cursor (one transaction): what it changed. ``counts`` (the resource's so far) is read only."""
    loaded = loaders.load_batch(session, target, batch, cipher=cipher)
    run_counts = _plus(counts, loaded)
    loaders.commit_progress(
        session, target, batch.resource, batch.high_water, full=full, run_counts=run_counts
    )
    return loaded


def _reconcile_products(
    session: Session, *, target: LoadTarget, live_codes: list[str], counts: LoadCounts
) -> LoadCounts:
    gone = LoadCounts(deleted=loaders.reconcile_products(session, target, live_codes))
    loaders.commit_progress(session, target, "products", None, full=True, run_counts=_plus(counts, gone))
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


def sync_all(
    app_engine: Engine,
    client: AnimanaClient,
    practices: Sequence[LinkedPractice],
    *,
    master_key: bytes,
    full: bool = False,
    progress: Progress | None = None,
    resources: Iterable[str] = RESOURCE_ORDER,
    workers: int = 1,
    processes: bool = False,
) -> list[PracticeResult]:
    """Sync practices, up to ``workers`` at once (one connection each, results in the order given). The first
    error is raised once the practices already started have finished; practices not yet started are skipped.

    ``processes``: the practices run in worker processes (`pipelines.animana.processes`; they parse and map in
    parallel instead of sharing one GIL) rather than threads of this process."""
    resources = tuple(resources)
    if processes and workers > 1 and len(practices) > 1:
        from pipelines.animana.processes import sync_in_processes

        return sync_in_processes(
            app_engine,
            client,
            practices,
            master_key=master_key,
            full=full,
            resources=resources,
            progress=progress,
            workers=workers,
        )

    def one(practice: LinkedPractice) -> PracticeResult:
        return sync_practice(
            app_engine,
            client,
            practice,
            master_key=master_key,
            full=full,
            progress=progress,
            resources=resources,
        )

    if workers <= 1 or len(practices) <= 1:
        return [one(p) for p in practices]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="animana-sync") as pool:
        return results_in_order([pool.submit(one, p) for p in practices])


def results_in_order(futures: Sequence[Future[T]]) -> list[T]:
    """The futures' results in their order; on the first error the ones not yet started are cancelled (those
    already running finish) and the error is raised."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


@dataclass(frozen=True)
class Drift:
    """API totals against the warehouse mirror for one practice (quarantined records counted as accounted)."""

    api: dict[str, int]
    warehouse: dict[str, int]
    quarantined: dict[str, int]

    @property
    def differences(self) -> dict[str, int]:
        out = {}
        for resource, total in self.api.items():
            have = self.warehouse.get(resource, 0) + self.quarantined.get(resource, 0)
            if have != total:
                out[resource] = have - total
        return out


def drift(app_engine: Engine, client: AnimanaClient, practice: LinkedPractice) -> Drift:
    api = client.counts(practice.animana_id)
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        mirror = loaders.mirror_counts(session, practice.practice_id)
        quarantined = loaders.open_quarantine_counts(session, practice.practice_id)
    return Drift({r: api.get(r, 0) for r in RESOURCE_ORDER}, mirror, quarantined)


def integrity(app_engine: Engine, practice: LinkedPractice) -> dict[str, int]:
    with tenant_session(app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        return loaders.integrity_problems(session, practice.practice_id)
