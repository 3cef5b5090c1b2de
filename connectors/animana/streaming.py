"""Paged listings of the Animana API, streamed: one HTTP call per page, each page yielded before the next is
fetched, so a practice's whole history is never held in memory; and several streams at once in a bounded
thread pool (`stream_concurrently`, behind `AnimanaClient.iter_many`)."""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .models import AnimanaRecord, Item, RejectedRecord, Tombstone, WireItem, WireRecord
from .pagination import PageRequest, Paginator
from .parsing import parse_page, parse_wire_page
from .resources.registry import RESOURCE_ORDER
from .transport import Transport


@dataclass(frozen=True)
class Page:
    """One page of a stream. Commit `next_cursor` with the page's rows to resume mid-stream; use
    `max_updated_at` (over the whole stream) as the next run's `updated_since`. Live records are models, or
    `WireRecord` dicts when the page came from ``iter_pages(..., wire=True)``."""

    practice_id: int
    resource: str
    items: list[Item] | list[WireItem]
    cursor: str | None  # the cursor that fetched this page (None for the first)
    next_cursor: str | None

    @cached_property
    def max_updated_at(self) -> dt.datetime | None:
        # Computed when asked (the sync takes its batches' high-water marks from `mapping.map_items` instead):
        # pydantic-core's datetimes each carry their own `TzInfo`, so every comparison makes two Python-level
        # utcoffset() calls; the max over a page cost ~0.3 us per record, ~4 % of the sync's producer thread.
        stamps = [s for s in map(_stamp, self.items) if s is not None]
        return max(stamps, default=None)

    @property
    def records(self) -> list[AnimanaRecord] | list[WireRecord]:
        return [i for i in self.items if isinstance(i, AnimanaRecord | dict)]  # type: ignore[return-value]

    @property
    def tombstones(self) -> list[Tombstone]:
        return [i for i in self.items if isinstance(i, Tombstone)]

    @property
    def rejected(self) -> list[RejectedRecord]:
        return [i for i in self.items if isinstance(i, RejectedRecord)]


def fetch_pages(
    transport: Transport,
    path: str,
    params: dict[str, Any],
    paginator: Paginator,
    decode: Callable[[bytes], Any] | None = None,
) -> Iterator[tuple[str | None, Any]]:
    """Yield (the cursor that fetched it, body) for each page of `path`, lazily."""
    while paginator.has_next_page:
        request = PageRequest(path, dict(params))
        paginator.update_request(request)
        cursor = request.params.get("cursor")
        response, body = transport.call(
            "GET", request.path, params=request.params, expect=_expect_page, decode=decode
        )
        paginator.update_state(response, body)
        yield cursor, body


class ValidRecords(list[Any]):
    """A page's records (models or wire records) already validated from the bytes (see `PageDecoder`)."""


@dataclass(frozen=True)
class PageDecoder:
    """Pages of one resource validated in one pass from the body's bytes (`parsing.parse_page`); None (read it as
    JSON, record by record) when the page holds a tombstone or a record that does not validate, or is not a
    well-formed page (e.g. truncated — the JSON path then raises `InvalidResponse`, which is retried)."""

    resource: str
    wire: bool = False

    def __call__(self, content: bytes) -> dict[str, Any] | None:
        parsed = (parse_wire_page if self.wire else parse_page)(self.resource, content)
        if parsed is None:
            return None
        records, next_cursor = parsed
        return {"data": ValidRecords(records), "next_cursor": next_cursor}


@dataclass
class _Failure:
    error: Exception


def stream_concurrently(
    iter_pages: Callable[..., Iterator[Page]],
    jobs: Iterable[tuple[int, str]],
    *,
    updated_since: dt.datetime | Mapping[tuple[int, str], dt.datetime | None] | None,
    max_workers: int,
    max_buffered_pages: int,
) -> Iterator[Page]:
    """`iter_pages(practice_id, resource, updated_since=...)` for every job in a pool of `max_workers` threads;
    see `AnimanaClient.iter_many`."""
    jobs = list(jobs)
    pages: queue.Queue[Page | _Failure | None] = queue.Queue(maxsize=max_buffered_pages)
    stop = threading.Event()

    def put(item: Page | _Failure | None) -> bool:
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(job: tuple[int, str]) -> None:
        since = updated_since.get(job) if isinstance(updated_since, Mapping) else updated_since
        try:
            for page in iter_pages(job[0], job[1], updated_since=since):
                if not put(page):
                    return
        except Exception as exc:  # handed to the consumer thread, which raises it
            put(_Failure(exc))
        finally:
            put(None)

    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="animana")
    for job in jobs:
        pool.submit(work, job)
    remaining = len(jobs)
    try:
        while remaining:
            item = pages.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield item
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def check_resource(resource: str) -> None:
    if resource not in RESOURCE_ORDER:
        raise ValueError(
            f"unknown Animana resource {resource!r}; expected one of {', '.join(RESOURCE_ORDER)}"
        )


def updated_since_param(value: dt.datetime | str) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        raise ValueError("updated_since must be timezone-aware")
    return value.isoformat()


def _stamp(item: Item | WireItem) -> dt.datetime | None:
    if isinstance(item, dict):
        return item["updated_at"]
    if isinstance(item, AnimanaRecord | Tombstone):
        return item.updated_at
    if item.updated_at:
        try:
            parsed = dt.datetime.fromisoformat(item.updated_at)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else None
    return None


def _expect_page(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return "expected an object with a 'data' list"
    if not (body.get("next_cursor") is None or isinstance(body.get("next_cursor"), str)):
        return "next_cursor must be a string or null"
    return None
