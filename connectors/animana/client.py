"""Typed httpx client for the Animana API (and its simulator).

One retry policy for every call (stamina): 408/429/5xx, connection errors, timeouts and unreadable JSON
bodies are retried with exponential backoff and jitter; a `Retry-After` header replaces the backoff,
capped by `RetryPolicy.max_retry_after`. A 401 on an expired or unknown token refreshes the token once and
retries; a second 401 is an `AuthError`. Writes carry an `Idempotency-Key` so a retried POST/PATCH is
applied once.

Streaming: `iter_pages` / `iter_records` fetch one page at a time and yield it, so a practice's whole
history is never held in memory. Records that fail validation come out as `RejectedRecord`s, in stream
order, next to the valid ones. `iter_many` fetches several (practice, resource) streams in a bounded
thread pool.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json as json_text
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import httpx
import stamina
from pydantic import BaseModel, ValidationError

from .errors import (
    AnimanaError,
    ApiUnavailable,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    RateLimited,
    Redactor,
    ValidationFailed,
)
from .models import AnimanaRecord, Item, Practice, RejectedRecord, Tombstone, WireItem, WireRecord
from .pagination import CursorPaginator, PageRequest, Paginator
from .parsing import as_wire, parse_page, parse_record, parse_wire_page
from .resources.agenda import Appointment, AppointmentCreate, AppointmentUpdate
from .resources.registry import RESOURCE_ORDER
from .resources.relations import Relation, RelationCreate, RelationUpdate
from .settings import AnimanaSettings, load_settings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    timeout: float = 180.0  # overall seconds for one call including waits
    wait_initial: float = 0.2
    wait_max: float = 10.0
    wait_jitter: float = 0.5
    max_retry_after: float = 60.0  # never sleep longer than this on a Retry-After hint


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


class _TokenRejected(AuthError):
    """Internal: the token was refused; refresh it and retry at once (only once per call)."""


@dataclass
class _Failure:
    error: Exception


@dataclass
class _Call:
    refreshed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _iso(value: dt.datetime | str) -> str:
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
        self.settings = settings or load_settings()
        self.retry = retry or RetryPolicy()
        self._secret = self.settings.client_secret.get_secret_value()
        self._redact = Redactor()
        self._redact.add(self._secret)
        self._http = httpx.Client(
            base_url=self.settings.url,
            timeout=httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "vetconnect-animana/0.1"},
            transport=transport,
        )
        self._token: str | None = None
        self._token_deadline = 0.0
        self._token_lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> AnimanaClient:
        return cls(load_settings(), **kwargs)

    def __repr__(self) -> str:
        return f"AnimanaClient(url={self.settings.url!r}, client_id={self.settings.client_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AnimanaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public API ----------------------------------------------------------------------------------
    def practices(self) -> list[Practice]:
        result: list[Practice] = []
        for body in self._paged("/v1/practices", {}, CursorPaginator()):
            for raw in body[1]["data"]:
                result.append(self._model(Practice, raw, "practice"))
        return result

    def counts(self, practice_id: int) -> dict[str, int]:
        """Live (non-deleted) record totals per resource."""
        _, body = self._call("GET", f"/v1/practices/{practice_id}/counts", expect=_expect_counts)
        return dict(body["counts"])

    def get(self, practice_id: int, resource: str, record_id: int) -> Item:
        _check_resource(resource)
        _, body = self._call("GET", f"/v1/practices/{practice_id}/{resource}/{record_id}")
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
        _check_resource(resource)
        params: dict[str, Any] = {"limit": page_size or self.settings.page_size}
        if updated_since is not None:
            params["updated_since"] = _iso(updated_since)
        paginator = CursorPaginator(start_cursor)
        path = f"/v1/practices/{practice_id}/{resource}"
        for cursor, body in self._paged(path, params, paginator, decode=_PageDecoder(resource, wire)):
            data = body["data"]
            items: list[Item] | list[WireItem]
            if isinstance(data, _ValidRecords):
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
                for page in self.iter_pages(job[0], job[1], updated_since=since):
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

    def create_appointment(self, practice_id: int, appointment: AppointmentCreate) -> Appointment:
        return self._write("POST", f"/v1/practices/{practice_id}/agenda", appointment, Appointment)

    def update_appointment(
        self, practice_id: int, appointment_id: int, changes: AppointmentUpdate
    ) -> Appointment:
        return self._write(
            "PATCH", f"/v1/practices/{practice_id}/agenda/{appointment_id}", changes, Appointment
        )

    def create_relation(self, practice_id: int, relation: RelationCreate) -> Relation:
        return self._write("POST", f"/v1/practices/{practice_id}/relations", relation, Relation)

    def update_relation(self, practice_id: int, relation_id: int, changes: RelationUpdate) -> Relation:
        return self._write("PATCH", f"/v1/practices/{practice_id}/relations/{relation_id}", changes, Relation)

    # -- plumbing ------------------------------------------------------------------------------------
    def _paged(
        self,
        path: str,
        params: dict[str, Any],
        paginator: Paginator,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Iterator[tuple[str | None, Any]]:
        while paginator.has_next_page:
            request = PageRequest(path, dict(params))
            paginator.update_request(request)
            cursor = request.params.get("cursor")
            response, body = self._call(
                "GET", request.path, params=request.params, expect=_expect_page, decode=decode
            )
            paginator.update_state(response, body)
            yield cursor, body

    def _write(self, method: str, path: str, payload: BaseModel, model: type[M]) -> M:
        body = payload.model_dump(mode="json", exclude_unset=method == "PATCH")
        # Same key on every retry of this call: the server applies the write once.
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        _, answer = self._call(method, path, json=body, headers=headers)
        return self._model(model, answer, path)

    def _model(self, model: type[M], raw: Any, what: str) -> M:
        try:  # from JSON text: the payload models' strict date/time types accept only ISO strings there
            return model.model_validate_json(json_text.dumps(raw, ensure_ascii=False))
        except ValidationError as exc:
            reason = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            raise AnimanaError(f"unexpected {what} payload: {reason}") from None

    def _access_token(self) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_deadline:
                return self._token
            _, body = self._call(
                "POST",
                "/oauth/token",
                auth=False,
                expect=_expect_token,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.settings.client_id,
                    "client_secret": self._secret,
                },
            )
            token, ttl = body["access_token"], float(body["expires_in"])
            self._redact.add(token)
            # Refresh a little early so a token does not expire between our check and the server's.
            self._token_deadline = time.monotonic() + ttl - min(30.0, ttl * 0.1)
            self._token = token
            log.debug("animana: new access token for client %s, valid %.0f s", self.settings.client_id, ttl)
            return token

    def _forget_token(self, token: str | None) -> None:
        with self._token_lock:
            if self._token == token:  # another thread may already have refreshed it
                self._token = None

    def _backoff(self, exc: Exception) -> bool | float:
        """stamina hook: False = do not retry, True = exponential backoff, float = sleep exactly that."""
        if isinstance(exc, AnimanaError) and exc.retries_exhausted:
            return False
        if isinstance(exc, _TokenRejected):
            return 0.0
        if isinstance(exc, RateLimited | ApiUnavailable):
            hint = exc.retry_after
            if hint is None:
                return True
            # Honour the server's hint (capped), plus a little jitter so parallel workers do not stampede.
            capped = min(hint, self.retry.max_retry_after)
            return capped + random.uniform(0, min(0.25, capped * 0.1))
        return False

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        expect: Callable[[Any], str | None] | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> tuple[httpx.Response, Any]:
        """``decode``: a fast path from the body's bytes to the body; when it returns None the body is read as
        JSON and checked with ``expect`` as usual."""
        state = _Call(headers=dict(headers or {}))
        policy = self.retry
        for attempt in stamina.retry_context(
            on=self._backoff,
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                return self._attempt(method, path, params, json, data, auth, expect, decode, state)
        raise AssertionError("unreachable: stamina re-raises the last error")

    def _attempt(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        data: dict[str, str] | None,
        auth: bool,
        expect: Callable[[Any], str | None] | None,
        decode: Callable[[bytes], Any] | None,
        state: _Call,
    ) -> tuple[httpx.Response, Any]:
        request_headers = dict(state.headers)
        token = None
        if auth:
            try:
                token = self._access_token()
            except AnimanaError as exc:
                exc.retries_exhausted = True
                raise
            request_headers["Authorization"] = f"Bearer {token}"
        started = time.monotonic()
        try:
            response = self._http.request(
                method, path, params=params, json=json, data=data, headers=request_headers
            )
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(f"{method} {path}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"{method} {path}: connection failed ({type(exc).__name__})") from exc
        # The body is read and the connection released. httpx leaves each response in a reference cycle (its
        # bound stream refers back to it), so the body (~250 KB a page) would wait for the garbage collector,
        # which the sync's workers run rarely; without the stream the response goes as soon as it is dropped.
        response.stream = _READ
        log.debug(
            "animana: %s %s %s -> %s in %.3f s",
            method,
            path,
            params or "",
            response.status_code,
            time.monotonic() - started,
        )
        if response.status_code == 401 and auth:
            code, message = self._error_body(response)
            if not state.refreshed:
                state.refreshed = True
                self._forget_token(token)
                raise _TokenRejected(
                    f"{method} {path}: token refused ({code}); refreshing", status_code=401, error_code=code
                )
            raise AuthError(
                f"{method} {path}: still unauthorized after a token refresh ({code}: {message})",
                status_code=401,
                error_code=code,
            )
        self._raise_for_status(method, path, response)
        if decode is not None:
            decoded = decode(response.content)
            if decoded is not None:
                return response, decoded
        try:
            body = response.json()
        except ValueError:
            raise InvalidResponse(
                f"{method} {path}: body is not valid JSON ({len(response.content)} bytes, probably truncated)",
                status_code=response.status_code,
            ) from None
        if expect is not None:
            problem = expect(body)
            if problem:
                raise InvalidResponse(f"{method} {path}: {problem}", status_code=response.status_code)
        return response, body

    def _error_body(self, response: httpx.Response) -> tuple[str | None, str]:
        try:
            body = response.json()
        except ValueError:
            return None, self._redact(response.text[:200])
        if not isinstance(body, dict):
            return None, self._redact(str(body)[:200])
        code = body.get("error") if isinstance(body.get("error"), str) else None
        return code, self._redact(str(body.get("message", ""))[:300])

    def _raise_for_status(self, method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message = self._error_body(response)
        text = (
            f"{method} {path} -> {status}"
            + (f" {code}" if code else "")
            + (f": {message}" if message else "")
        )
        if status == 429:
            raise RateLimited(text, retry_after=_retry_after(response), error_code=code)
        if status == 408 or status >= 500:
            raise ApiUnavailable(
                text, retry_after=_retry_after(response), status_code=status, error_code=code
            )
        if status == 404:
            raise NotFound(text, status_code=status, error_code=code)
        if status == 409:
            raise Conflict(text, status_code=status, error_code=code)
        if status in (401, 403):
            raise AuthError(text, status_code=status, error_code=code)
        if status == 422:
            fields: dict[str, str] = {}
            try:
                raw_fields = response.json().get("fields") or {}
                fields = {str(k): self._redact(str(v)) for k, v in raw_fields.items()}
            except (ValueError, AttributeError):
                pass
            raise ValidationFailed(text + (f" {fields}" if fields else ""), fields=fields, error_code=code)
        raise AnimanaError(text, status_code=status, error_code=code)


_READ = httpx.ByteStream(b"")  # stands in for the stream of a response whose body has been read


class _ValidRecords(list[Any]):
    """A page's records (models or wire records) already validated from the bytes (see `_PageDecoder`)."""


@dataclass(frozen=True)
class _PageDecoder:
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
        return {"data": _ValidRecords(records), "next_cursor": next_cursor}


def _check_resource(resource: str) -> None:
    if resource not in RESOURCE_ORDER:
        raise ValueError(
            f"unknown Animana resource {resource!r}; expected one of {', '.join(RESOURCE_ORDER)}"
        )


def _expect_page(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return "expected an object with a 'data' list"
    if not (body.get("next_cursor") is None or isinstance(body.get("next_cursor"), str)):
        return "next_cursor must be a string or null"
    return None


def _expect_counts(body: Any) -> str | None:
    counts = body.get("counts") if isinstance(body, dict) else None
    if not isinstance(counts, dict) or not all(type(v) is int and v >= 0 for v in counts.values()):
        return "expected {'counts': {resource: non-negative int}}"
    return None


def _expect_token(body: Any) -> str | None:
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("access_token"), str)
        or not body["access_token"]
    ):
        return "token response without access_token"
    if type(body.get("expires_in")) not in (int, float) or body["expires_in"] <= 0:
        return "token response without a positive expires_in"
    return None
