"""Typed errors of the Animana client. Callers catch these, never httpx or pydantic exceptions.

Messages never contain the client secret or an access token: the client builds them from status codes
and the API's error bodies, and masks its own secrets in any text it passes on (see `Redactor`).
"""

from __future__ import annotations

from typing import Any


class AnimanaError(Exception):
    """Base class. `status_code` and `error_code` are set when the API answered."""

    # Set when a nested call (the token request) already ran the whole retry policy, so the outer call
    # must not retry it again: nested retries would multiply (3 attempts x 3 attempts = 9 requests).
    retries_exhausted: bool = False

    def __init__(
        self, message: str, *, status_code: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code


class SettingsError(AnimanaError, ValueError):
    """Configuration is missing or invalid; the message names the environment variable(s)."""


class AuthError(AnimanaError):
    """Credentials rejected, or a token still refused after one refresh."""


class NotFound(AnimanaError):
    """The practice, resource or record does not exist."""


class Conflict(AnimanaError):
    """409: the write clashes with the current state (e.g. a double booking)."""


class PreconditionFailed(AnimanaError):
    """412: the record changed since the version sent as If-Match. `current` is the record as it is now (its
    `updated_at` is the version to send next, once the change has been reconciled with it)."""

    def __init__(
        self,
        message: str,
        *,
        current: dict[str, Any],
        status_code: int | None = 412,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code)
        self.current = current


class RateLimited(AnimanaError):
    """429 after all retries. `retry_after` is the server's last hint in seconds (uncapped)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        status_code: int | None = 429,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code)
        self.retry_after = retry_after


class ApiUnavailable(AnimanaError):
    """5xx, 408, connection failures and timeouts: worth retrying, and retried until the policy gives up."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code)
        self.retry_after = retry_after


class InvalidResponse(ApiUnavailable):
    """The body was not the JSON we expect (truncated, not JSON, wrong envelope). Retried like a 5xx,
    because in practice it is a transport problem (a proxy cut the body short), not a data problem."""


class ValidationFailed(AnimanaError):
    """422 on a write: `fields` maps field names to the API's messages."""

    def __init__(
        self,
        message: str,
        *,
        fields: dict[str, str],
        status_code: int | None = 422,
        error_code: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_code=error_code)
        self.fields = fields


class Redactor:
    """Replaces known secrets in text. Secrets shorter than 4 characters are ignored to avoid masking
    ordinary words."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text
