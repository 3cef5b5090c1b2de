"""What a gateway says about one send: the dispatcher turns it into the outbox's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["sent", "retry", "bounced"]


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    detail: str = ""  # the gateway's words: the error to retry on, or the bounce reason
    retry_after: float | None = None  # the gateway asked to wait this long (429 Retry-After)
