"""`Sender`: one outbox entry → one HTTP write to Animana, and what its outcome means for the entry.

The body is the resource's `ResourceSpec.write_back` of the row as the entry left it; the idempotency key is the
entry's own, so every retry of an entry — after a timeout, a lost answer or a killed dispatcher — has one effect.
An update or delete carries the row's Animana version as If-Match, so it never overwrites a change made in Animana
since the row last agreed with it.

The outcome is classified once, here, for both callers: the dispatcher turns it into the entry's next state, the
write-through of `animana` mode into an answer or a refusal for the person waiting.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from connectors.animana.client import AnimanaClient
from connectors.animana.errors import (
    AnimanaError,
    ApiUnavailable,
    AuthError,
    Conflict,
    NotFound,
    PreconditionFailed,
    RateLimited,
    ValidationFailed,
)
from connectors.animana.resources.registry import SPEC_BY_NAME
from connectors.animana.resources.spec import WriteRefs
from connectors.animana.transport import RetryPolicy
from warehouse.integration.outbox import OutboxEntry, ParentNotInAnimana
from warehouse.integration.tables import MIRRORED

STALE = "Animana has a newer version; waiting for the sync"
# The dispatcher schedules its own retries (the outbox's next_attempt_at), so one HTTP attempt per send.
ONE_ATTEMPT = RetryPolicy(attempts=1, timeout=30)


@dataclass(frozen=True)
class Sent:
    animana_id: str | None
    version: str | None


@dataclass(frozen=True)
class Retry:
    """Not now: a transient failure (``counts``: towards the dead-letter limit) or a parent still on its way.
    ``maybe_applied``: no answer says whether Animana took the write (5xx, a timeout, a lost answer); every other
    outcome but `Sent` is an answer that it did not."""

    error: str
    delay_s: float
    counts: bool = True
    maybe_applied: bool = False


@dataclass(frozen=True)
class Refused:
    """Animana will not take the write as it is (422/409/404): a person has to change something. ``maybe_applied``:
    the refusal is of the idempotency key (used for another request), not of the write — an earlier request under
    that key may have been taken."""

    reason: str
    fields: dict[str, str] = field(default_factory=dict)
    maybe_applied: bool = False


@dataclass(frozen=True)
class Stale:
    """412: the record changed in Animana since the row agreed with it; ``current`` is the record as Animana
    answered it, loaded and settled before the entry goes again (`dispatcher`)."""

    resource: str
    current: dict[str, Any] = field(hash=False, compare=False)


Outcome = Sent | Retry | Refused | Stale


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter for transient failures, capped; a parent is waited for briefly."""

    initial_s: float = 1.0
    cap_s: float = 300.0
    parent_wait_s: float = 2.0

    def after(self, attempts: int) -> float:
        ceiling = min(self.cap_s, self.initial_s * 2 ** min(attempts, 20))
        return random.uniform(ceiling / 2, ceiling)


class Sender:
    def __init__(
        self, client: AnimanaClient, *, retry: RetryPolicy = ONE_ATTEMPT, backoff: Backoff | None = None
    ) -> None:
        self.client = client
        self.retry = retry
        self.backoff = backoff or Backoff()

    def send(self, entry: OutboxEntry, animana_practice_id: int, refs: WriteRefs) -> Outcome:
        resource = MIRRORED[entry.table_name].resource
        try:
            return self._write(entry, animana_practice_id, resource, refs)
        except ParentNotInAnimana as waiting:
            if (
                waiting.table not in MIRRORED
            ):  # VetConnect's own (a room of its own): it never reaches Animana
                return Refused(f"{waiting.table} {waiting.local_id} does not exist in Animana")
            return Retry(str(waiting), self.backoff.parent_wait_s, counts=False)
        except RateLimited as exc:
            hint = exc.retry_after if exc.retry_after is not None else self.backoff.after(entry.attempts)
            # Animana asked us to slow down, not that the write fails: waiting never turns it into a dead letter.
            return Retry(f"Animana is unreachable: too many requests ({exc.message})", hint, counts=False)
        except (
            ApiUnavailable
        ) as exc:  # 5xx, timeouts, a lost answer: the write may have happened; the key knows
            delay = max(exc.retry_after or 0.0, self.backoff.after(entry.attempts))
            return Retry(f"Animana is unreachable: {exc.message}", delay, maybe_applied=True)
        except PreconditionFailed as exc:
            return Stale(resource, exc.current)
        except ValidationFailed as exc:
            reason = "; ".join(f"{name}: {message}" for name, message in exc.fields.items()) or exc.message
            key_reused = exc.error_code == "idempotency_key_reused"
            return Refused(f"Animana refused: {reason}", dict(exc.fields), maybe_applied=key_reused)
        except (Conflict, NotFound) as exc:
            return Refused(f"Animana refused: {exc.message}")
        except AuthError as exc:  # credentials, not this entry: wait for them to be fixed, like an outage
            return Retry(
                f"Animana is unreachable: sign-in refused ({exc.message})",
                self.backoff.after(entry.attempts),
            )
        except AnimanaError as exc:  # another 4xx: a request Animana will refuse again as it is
            return Refused(f"Animana refused: {exc.message}")

    def _write(self, entry: OutboxEntry, practice: int, resource: str, refs: WriteRefs) -> Outcome:
        key = entry.idempotency_key
        if entry.operation == "delete":
            if entry.animana_id is None:  # the row never reached Animana: nothing to delete there
                return Sent(None, None)
            answer = self.client.delete(
                practice, resource, int(entry.animana_id), idempotency_key=key,
                if_match=entry.animana_version, retry=self.retry,
            )  # fmt: skip
            return Sent(entry.animana_id, answer.version)
        write_back = SPEC_BY_NAME[resource].write_back
        if write_back is None:
            return Refused(f"{resource} is not written back to Animana")
        try:
            body = write_back(entry.row, refs)
        except ParentNotInAnimana:
            raise
        except Exception as exc:  # a row the mapping cannot express must not block the rest of the outbox
            return Refused(f"cannot be mapped to Animana: {type(exc).__name__}: {exc}")
        if entry.animana_id is None:
            answer = self.client.create(practice, resource, body, idempotency_key=key, retry=self.retry)
        else:
            answer = self.client.update(
                practice, resource, int(entry.animana_id), body, idempotency_key=_update_key(entry),
                if_match=entry.animana_version, retry=self.retry,
            )  # fmt: skip
        return Sent(str(answer.record["id"]), answer.version)


def request_key(entry: OutboxEntry) -> str:
    """The idempotency key the entry's write goes out with (`Sender.send`)."""
    return _update_key(entry) if entry.operation == "update" else entry.idempotency_key


def _update_key(entry: OutboxEntry) -> str:
    """The key of an update: the entry's own, per version it is conditional on.

    A retry must be the same request as the attempt whose answer was lost, or Animana refuses the reused key. An
    update's body is the row as it is when sent, and a sync between two attempts can change the row (settling
    Animana's edit of another field), so the body can differ — but such a sync also moves the row to Animana's
    newer version. Keyed per version, a retry on the same version replays the first answer, and a retry on a newer
    one is a new conditional write (If-Match): at most one effect per version, never a blind second one. A create
    has no version and keeps its one key: its body cannot change (no sync touches a record Animana has not got)."""
    return (
        f"{entry.idempotency_key}@{entry.animana_version}" if entry.animana_version else entry.idempotency_key
    )
