"""The one way the Animana client talks HTTP: an httpx connection pool, the retry policy, the bearer token and
the mapping of error answers onto the typed exceptions of `errors`.

One retry policy for every call (stamina): 408/429/5xx, connection errors, timeouts and unreadable JSON
bodies are retried with exponential backoff and jitter; a `Retry-After` header replaces the backoff,
capped by `RetryPolicy.max_retry_after`. A call may bring its own policy (`RetryPolicy(attempts=1)`: one attempt,
for a caller that schedules its own retries). A 401 on an expired or unknown token refreshes the token once and
sends the request again within the same attempt; a second 401 is an `AuthError`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import stamina

from .auth import AccessTokens, TokenRejected
from .errors import (
    AnimanaError,
    ApiUnavailable,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Redactor,
    ValidationFailed,
)
from .settings import AnimanaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8
    timeout: float = 180.0  # overall seconds for one call including waits
    wait_initial: float = 0.2
    wait_max: float = 10.0
    wait_jitter: float = 0.5
    max_retry_after: float = 60.0  # never sleep longer than this on a Retry-After hint


@dataclass
class _Call:
    """What the attempts of one call share."""

    refreshed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class Transport:
    """Thread-safe: one connection pool and one access token for all the client's threads."""

    def __init__(
        self,
        settings: AnimanaSettings,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.retry = retry
        secret = settings.client_secret.get_secret_value()
        self._redact = Redactor()
        self._redact.add(secret)
        self._http = httpx.Client(
            base_url=settings.url,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "vetconnect-animana/0.1"},
            transport=transport,
        )
        self._tokens = AccessTokens(settings.client_id, secret, self._redact, self.call)

    def close(self) -> None:
        self._http.close()

    def call(
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
        retry: RetryPolicy | None = None,
    ) -> tuple[httpx.Response, Any]:
        """``expect``: checks the JSON body's shape, returning what is wrong with it (None when it is fine).
        ``decode``: a fast path from the body's bytes to the body; when it returns None the body is read as
        JSON and checked with ``expect`` as usual. ``retry``: this call's policy instead of the client's."""
        state = _Call(headers=dict(headers or {}))
        policy = retry or self.retry
        for attempt in stamina.retry_context(
            on=self._backoff,
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                try:
                    return self._attempt(method, path, params, json, data, auth, expect, decode, state)
                except TokenRejected:
                    # Sent again at once with a fresh token, within this attempt: a token that expired between
                    # two calls costs no attempt, so a one-attempt call survives it too.
                    return self._attempt(method, path, params, json, data, auth, expect, decode, state)
        raise AssertionError("unreachable: stamina re-raises the last error")

    def _backoff(self, exc: Exception) -> bool | float:
        """stamina hook: False = do not retry, True = exponential backoff, float = sleep exactly that."""
        if isinstance(exc, AnimanaError) and exc.retries_exhausted:
            return False
        if isinstance(exc, RateLimited | ApiUnavailable):
            hint = exc.retry_after
            if hint is None:
                return True
            # Honour the server's hint (capped), plus a little jitter so parallel workers do not stampede.
            capped = min(hint, self.retry.max_retry_after)
            return capped + random.uniform(0, min(0.25, capped * 0.1))
        return False

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
                token = self._tokens.current()
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
                self._tokens.forget(token)
                raise TokenRejected(
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
        if status == 412:
            current = _json_field(response, "current")
            raise PreconditionFailed(
                text, current=current if isinstance(current, dict) else {}, error_code=code
            )
        if status in (401, 403):
            raise AuthError(text, status_code=status, error_code=code)
        if status == 422:
            raw_fields = _json_field(response, "fields")
            fields = (
                {str(k): self._redact(str(v)) for k, v in raw_fields.items()}
                if isinstance(raw_fields, dict)
                else {}
            )
            raise ValidationFailed(text + (f" {fields}" if fields else ""), fields=fields, error_code=code)
        raise AnimanaError(text, status_code=status, error_code=code)


def _json_field(response: httpx.Response, name: str) -> Any:
    """Field `name` of an error answer's JSON object; None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


_READ = httpx.ByteStream(b"")  # stands in for the stream of a response whose body has been read


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
