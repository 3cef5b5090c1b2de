"""Fetching overlaps loading: a producer thread per practice reads, validates and maps the pages (all resources in
order) while the caller's thread loads; at most `PREFETCH_BATCHES` mapped batches wait in memory, so memory is
bounded whatever the history.

Consecutive pages of a resource are merged into one batch of up to ``limit`` records. A page that repeats a key
already in the batch (a record edited while the stream was read) starts a new batch, so each batch applies its
pages in order.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from connectors.animana.client import AnimanaClient
from connectors.animana.mapping import map_items
from connectors.animana.sync.links import LinkedPractice
from warehouse.ingest.animana.rows import Batch

PREFETCH_BATCHES = 2  # mapped batches buffered ahead of the loader


@dataclass
class MappedBatch:
    """What the producer hands the loader: a merged batch of one resource (``batch`` None: the resource's stream
    is complete) and how many source records it holds."""

    resource: str
    batch: Batch | None
    records: int = 0


def merge(resource: str, parts: list[Batch]) -> Batch:
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


def mapped_batches(
    client: AnimanaClient, practice: LinkedPractice, resource: str, since: dt.datetime | None, limit: int
) -> Iterator[MappedBatch]:
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
            yield MappedBatch(resource, merge(resource, parts), records)
            parts, keys, records = [], set(), 0
        parts.append(batch)
        keys |= page_keys
        records += len(page.items)
    if parts:
        yield MappedBatch(resource, merge(resource, parts), records)
    yield MappedBatch(resource, None)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch:
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
        self._queue: queue.Queue[MappedBatch | _Failure | None] = queue.Queue(maxsize=PREFETCH_BATCHES)
        self._stop = threading.Event()
        self._args = (client, practice, resources, since, limit)
        self._thread = threading.Thread(target=self._produce, name=f"animana-{practice.code}", daemon=True)

    def __enter__(self) -> Iterator[MappedBatch]:
        self._thread.start()
        return self._consume()

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _put(self, item: MappedBatch | _Failure | None) -> bool:
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
                for mapped in mapped_batches(client, practice, resource, since[resource], limit):
                    if not self._put(mapped):
                        return
        except BaseException as exc:  # handed to the loading thread, which raises it
            self._put(_Failure(exc))
            return
        self._put(None)

    def _consume(self) -> Iterator[MappedBatch]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
