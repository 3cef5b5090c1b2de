"""The `UpstreamSender` of `animana` mode's write-through (`warehouse.integration.gateway`): the dispatcher's send
path, with a short retry budget because a person is waiting, and its outcomes turned into a refusal the page shows
at the form's fields, or an outage that names Animana."""

from __future__ import annotations

from sqlalchemy.orm import Session

from connectors.animana.client import AnimanaClient
from connectors.animana.errors import SettingsError
from connectors.animana.settings import load_settings
from connectors.animana.transport import RetryPolicy
from connectors.animana.writeback.refs import BatchRefs
from connectors.animana.writeback.sender import Refused, Retry, Sender, Sent, Stale
from warehouse.integration.gateway import UpstreamAnswer, UpstreamRefused, UpstreamSender, UpstreamUnavailable
from warehouse.integration.outbox import OutboxEntry

# A few quick tries within ~10 s: long enough to ride out a blip, short enough for someone at the desk.
PERSON_WAITING = RetryPolicy(
    attempts=3, timeout=10, wait_initial=0.2, wait_max=1.0, wait_jitter=0.2, max_retry_after=2
)


class WriteThrough:
    def __init__(self, client: AnimanaClient, *, retry: RetryPolicy = PERSON_WAITING) -> None:
        self._sender = Sender(client, retry=retry)

    def send(self, session: Session, entry: OutboxEntry, animana_practice_id: int) -> UpstreamAnswer:
        refs = BatchRefs(session, entry.practice_id)
        outcome = self._sender.send(entry, animana_practice_id, refs)
        if isinstance(outcome, Sent):
            return UpstreamAnswer(outcome.animana_id, outcome.version)
        if isinstance(outcome, Refused):
            raise UpstreamRefused(outcome.reason, outcome.fields)
        if isinstance(outcome, Stale):
            raise UpstreamRefused(
                "This record was changed in Animana meanwhile; refresh the page and try again."
            )
        if isinstance(outcome, Retry) and not outcome.counts:
            raise UpstreamRefused(f"Not in Animana yet: {outcome.error}")
        raise UpstreamUnavailable(outcome.error)


class AnimanaNotConfigured:
    """The write-through of a process without Animana settings: a linked practice's write in animana mode is
    refused, naming what is missing, rather than saved here only (Animana would never see it)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def send(self, session: Session, entry: OutboxEntry, animana_practice_id: int) -> UpstreamAnswer:
        raise UpstreamUnavailable(f"Animana is unreachable: {self.reason}")


def write_through_from_env() -> UpstreamSender:
    """The process's write-through, with the Animana API of the ``VETCONNECT_ANIMANA_*`` settings."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        return AnimanaNotConfigured(str(exc))
    return WriteThrough(AnimanaClient(settings))
