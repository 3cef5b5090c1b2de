"""The client-credentials access token of the Animana client: fetched on first use, shared by every thread,
refreshed a little before it expires, and forgotten when the API refuses it (the transport then retries once
with a fresh one; see `transport.Transport`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from .errors import AuthError, Redactor

log = logging.getLogger(__name__)

# The transport's `call`: the token request runs through the same retry policy as every other request.
TokenRequest = Callable[..., tuple[httpx.Response, Any]]


class TokenRejected(AuthError):
    """The token was refused; refresh it and retry at once (only once per call). Never leaves the client."""


class AccessTokens:
    """Thread-safe cache of one access token. Every token it receives is added to `redact`, so it never
    appears in an error message or a log line."""

    def __init__(self, client_id: str, client_secret: str, redact: Redactor, request: TokenRequest) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._redact = redact
        self._request = request
        self._token: str | None = None
        self._deadline = 0.0
        self._lock = threading.Lock()

    def current(self) -> str:
        with self._lock:
            if self._token is not None and time.monotonic() < self._deadline:
                return self._token
            _, body = self._request(
                "POST",
                "/oauth/token",
                auth=False,
                expect=_expect_token,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                },
            )
            token, ttl = body["access_token"], float(body["expires_in"])
            self._redact.add(token)
            # Refresh a little early so a token does not expire between our check and the server's.
            self._deadline = time.monotonic() + ttl - min(30.0, ttl * 0.1)
            self._token = token
            log.debug("animana: new access token for client %s, valid %.0f s", self._client_id, ttl)
            return token

    def forget(self, token: str | None) -> None:
        with self._lock:
            if self._token == token:  # another thread may already have refreshed it
                self._token = None


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
