"""The HTTP SMS gateway: ``POST /messages {id, to, body}`` (202 accepted; idempotent on ``id``) and delivery
receipts by ``GET /messages/{id}`` — polled by the dispatcher rather than called back, so the app needs no
endpoint reachable from the gateway and a receipt missed while it was down is simply asked for again."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

import httpx

from connectors.messaging.gateway import Outcome

MAX_RETRY_AFTER = 300.0  # a Retry-After beyond five minutes is capped: the backoff takes over from there


@dataclass(frozen=True)
class Receipt:
    known: bool  # False: the gateway has no message with this id
    status: str = ""  # accepted | delivered | failed
    error: str | None = None


class SmsGateway:
    def __init__(self, base_url: str, *, connect_timeout: float = 2.0, read_timeout: float = 5.0) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=httpx.Timeout(read_timeout, connect=connect_timeout)
        )

    def __enter__(self) -> SmsGateway:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def send(self, message_id: str, to: str, body: str) -> Outcome:
        try:
            response = self._http.post("/messages", json={"id": message_id, "to": to, "body": body})
        except httpx.TimeoutException:
            return Outcome("retry", "The SMS gateway did not answer in time")
        except httpx.TransportError as exc:
            return Outcome("retry", f"The SMS gateway could not be reached: {exc.__class__.__name__}")
        if response.status_code in (200, 201, 202):
            return Outcome("sent")
        if response.status_code == 429:
            return Outcome("retry", "The SMS gateway asked to slow down", _retry_after(response))
        if response.status_code >= 500 or response.status_code == 408:
            return Outcome("retry", f"The SMS gateway answered {response.status_code}")
        return Outcome("bounced", f"The SMS gateway refused the message: {_error(response)}")

    def receipt(self, message_id: str) -> Receipt:
        """The delivery receipt; raises ``httpx.HTTPError`` when the gateway cannot say now (asked again later)."""
        response = self._http.get(f"/messages/{message_id}")
        if response.status_code == 404:
            return Receipt(known=False)
        response.raise_for_status()
        answer = response.json()
        return Receipt(True, answer["status"], answer.get("error"))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER)
    except (KeyError, ValueError):
        return None


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.status_code)
    except ValueError:
        return str(response.status_code)
