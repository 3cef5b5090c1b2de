"""Typed httpx client for the Animana API (and its simulator).

`AnimanaClient` is the public face; the work is done beside it: `transport` (the retry policy, the token,
typed errors for error answers), `streaming` (paged listings, one page at a time, and several at once) and
`writes` (idempotent, conditional POST/PATCH/DELETE: `create`, `update`, `delete`).

Streaming: `iter_pages` / `iter_records` fetch one page at a time and yield it, so a practice's whole
history is never held in memory. Records that fail validation come out as `RejectedRecord`s, in stream
order, next to the valid ones. `iter_many` fetches several (practice, resource) streams in a bounded
thread pool.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from .models import Item, Practice, WireItem
from .pagination import CursorPaginator
from .parsing import as_wire, parse_record
from .resources.agenda import Appointment, AppointmentCreate, AppointmentUpdate
from .resources.relations import Relation, RelationCreate, RelationUpdate
from .settings import AnimanaSettings, load_settings
from .streaming import (
    Page,
    PageDecoder,
    ValidRecords,
    check_resource,
    fetch_pages,
    stream_concurrently,
    updated_since_param,
)
from .transport import RetryPolicy, Transport
from .writes import WriteAnswer, parse_answer, send_write


class AnimanaClient:
    """Synchronous, thread-safe client. Use as a context manager or call `close()`.

    >>> with AnimanaClient(load_settings()) as client:
    ...     for item in client.iter_records(1001, "agenda", updated_since=last_sync):
    ...         ...  # Appointment | Tombstone | RejectedRecord
    """

    def __init__(
        self,
        settings: AnimanaSettings | None = None,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._transport = Transport(settings or load_settings(), retry or RetryPolicy(), transport)

    @property
    def settings(self) -> AnimanaSettings:
        return self._transport.settings

    @property
    def retry(self) -> RetryPolicy:
        return self._transport.retry

    @classmethod
    def from_env(cls, **kwargs: Any) -> AnimanaClient:
        return cls(load_settings(), **kwargs)

    def __repr__(self) -> str:
        return f"AnimanaClient(url={self.settings.url!r}, client_id={self.settings.client_id!r})"

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> AnimanaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def practices(self) -> list[Practice]:
        result: list[Practice] = []
        for body in fetch_pages(self._transport, "/v1/practices", {}, CursorPaginator()):
            for raw in body[1]["data"]:
                result.append(parse_answer(Practice, raw, "practice"))
        return result

    def counts(self, practice_id: int) -> dict[str, int]:
        """Live (non-deleted) record totals per resource."""
        _, body = self._transport.call("GET", f"/v1/practices/{practice_id}/counts", expect=_expect_counts)
        return dict(body["counts"])

    def get(self, practice_id: int, resource: str, record_id: int) -> Item:
        check_resource(resource)
        _, body = self._transport.call("GET", f"/v1/practices/{practice_id}/{resource}/{record_id}")
        return parse_record(practice_id, resource, body)

    def iter_pages(
        self,
        practice_id: int,
        resource: str,
        *,
        updated_since: dt.datetime | str | None = None,
        start_cursor: str | None = None,
        page_size: int | None = None,
        wire: bool = False,
    ) -> Iterator[Page]:
        """Yield pages of `resource` ordered by (updated_at, id), lazily, one HTTP call per page.

        `updated_since` (timezone-aware) returns records changed strictly after it, tombstones included.
        `start_cursor` resumes a stream from a committed `Page.next_cursor`.
        `wire`: live records come as `WireRecord` dicts rather than models (same validation; cheaper for a
        consumer that only reads their fields, like the sync's mapping).
        """
        check_resource(resource)
        params: dict[str, Any] = {"limit": page_size or self.settings.page_size}
        if updated_since is not None:
            params["updated_since"] = updated_since_param(updated_since)
        paginator = CursorPaginator(start_cursor)
        path = f"/v1/practices/{practice_id}/{resource}"
        decode = PageDecoder(resource, wire)
        for cursor, body in fetch_pages(self._transport, path, params, paginator, decode=decode):
            data = body["data"]
            items: list[Item] | list[WireItem]
            if isinstance(data, ValidRecords):
                items = data
            elif wire:
                items = [as_wire(parse_record(practice_id, resource, raw)) for raw in data]
            else:
                items = [parse_record(practice_id, resource, raw) for raw in data]
            yield Page(practice_id, resource, items, cursor, body["next_cursor"])

    def iter_records(
        self,
        practice_id: int,
        resource: str,
        updated_since: dt.datetime | str | None = None,
        **kwargs: Any,
    ) -> Iterator[Item]:
        """Yield `AnimanaRecord` subclasses (see `resources.registry.RESOURCE_MODELS`), `Tombstone`s and
        `RejectedRecord`s one by one, page by page."""
        for page in self.iter_pages(practice_id, resource, updated_since=updated_since, **kwargs):
            yield from page.items

    def iter_many(
        self,
        jobs: Iterable[tuple[int, str]],
        *,
        updated_since: dt.datetime | Mapping[tuple[int, str], dt.datetime | None] | None = None,
        max_workers: int = 4,
        max_buffered_pages: int = 8,
    ) -> Iterator[Page]:
        """Stream several (practice_id, resource) jobs concurrently; pages arrive as they complete (pages
        of one job stay in order). At most `max_buffered_pages` wait in memory: workers block when the
        consumer is slower. The first error in any job is raised here and stops the others."""
        return stream_concurrently(
            self.iter_pages,
            jobs,
            updated_since=updated_since,
            max_workers=max_workers,
            max_buffered_pages=max_buffered_pages,
        )

    # -- writes ------------------------------------------------------------------------------------------
    # The caller's idempotency key goes with every retry of the call, so a retried write has one effect. `retry`:
    # this call's policy, e.g. `RetryPolicy(attempts=1)` for a caller that schedules its own retries (Retry-After
    # on `RateLimited`, backoff on `ApiUnavailable`).

    def create(
        self,
        practice_id: int,
        resource: str,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        retry: RetryPolicy | None = None,
    ) -> WriteAnswer:
        """POST a new record; the answer is the record as Animana stored it (201)."""
        check_resource(resource)
        path = f"/v1/practices/{practice_id}/{resource}"
        return send_write(self._transport, "POST", path, body, idempotency_key=idempotency_key, retry=retry)

    def update(
        self,
        practice_id: int,
        resource: str,
        record_id: int,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        if_match: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> WriteAnswer:
        """PATCH the fields in `body`. `if_match`: the version the change was based on; a record changed since
        then raises `PreconditionFailed` with the current record."""
        check_resource(resource)
        path = f"/v1/practices/{practice_id}/{resource}/{record_id}"
        return send_write(
            self._transport,
            "PATCH",
            path,
            body,
            idempotency_key=idempotency_key,
            if_match=if_match,
            retry=retry,
        )

    def delete(
        self,
        practice_id: int,
        resource: str,
        record_id: int,
        *,
        idempotency_key: str,
        if_match: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> WriteAnswer:
        """DELETE a record; the answer is its tombstone, as the listing will show it."""
        check_resource(resource)
        path = f"/v1/practices/{practice_id}/{resource}/{record_id}"
        return send_write(
            self._transport,
            "DELETE",
            path,
            None,
            idempotency_key=idempotency_key,
            if_match=if_match,
            retry=retry,
        )

    # Typed conveniences: one fresh key per call (the same on its retries).
    def create_appointment(self, practice_id: int, appointment: AppointmentCreate) -> Appointment:
        answer = self.create(
            practice_id, "agenda", appointment.model_dump(mode="json"), idempotency_key=_key()
        )
        return parse_answer(Appointment, answer.record, "agenda")

    def update_appointment(
        self, practice_id: int, appointment_id: int, changes: AppointmentUpdate
    ) -> Appointment:
        body = changes.model_dump(mode="json", exclude_unset=True)
        answer = self.update(practice_id, "agenda", appointment_id, body, idempotency_key=_key())
        return parse_answer(Appointment, answer.record, "agenda")

    def create_relation(self, practice_id: int, relation: RelationCreate) -> Relation:
        answer = self.create(
            practice_id, "relations", relation.model_dump(mode="json"), idempotency_key=_key()
        )
        return parse_answer(Relation, answer.record, "relations")

    def update_relation(self, practice_id: int, relation_id: int, changes: RelationUpdate) -> Relation:
        body = changes.model_dump(mode="json", exclude_unset=True)
        answer = self.update(practice_id, "relations", relation_id, body, idempotency_key=_key())
        return parse_answer(Relation, answer.record, "relations")


def _key() -> str:
    return uuid.uuid4().hex


def _expect_counts(body: Any) -> str | None:
    counts = body.get("counts") if isinstance(body, dict) else None
    if not isinstance(counts, dict) or not all(type(v) is int and v >= 0 for v in counts.values()):
        return "expected {'counts': {resource: non-negative int}}"
    return None
