"""Messages in every state, as the outbox holds them after generation and sending: a row per message, with the
moments and reasons the dispatcher writes (``warehouse.messaging.outbox``). The views' tests and pages read them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.messages_support import Owner

_INSERT = text(
    """
INSERT INTO message_outbox (practice_id, kind, client_id, patient_id, reminder_id, channel, subject, body, state,
                            reason, last_error, attempts, created_at, sent_at, finished_at)
VALUES (:p, :kind, :client, :patient, :reminder, :channel, :subject, 'Beste klant', :state, :reason, :last_error,
        :attempts, :created_at, :sent_at, :finished_at)
RETURNING id
"""
)


def add_message(
    session: Session,
    practice_id: int,
    owner: Owner,
    state: str,
    *,
    queued_at: dt.datetime,
    kind: str = "vaccination_reminder",
    channel: str | None = "email",
    sent_after: dt.timedelta | None = None,
    finished_after: dt.timedelta | None = None,
    reason: str | None = None,
    last_error: str | None = None,
    attempts: int = 1,
) -> int:
    """One message about ``owner``'s reminder; ``sent_after``/``finished_after``: how long after queueing it was
    sent / reached its final state."""
    return session.execute(
        _INSERT,
        {
            "p": practice_id,
            "kind": kind,
            "client": owner.client_id,
            "patient": owner.patient_id,
            "reminder": owner.reminder_id,
            "channel": channel,
            "subject": f"{kind} {state}",
            "state": state,
            "reason": reason,
            "last_error": last_error or reason,
            "attempts": attempts,
            "created_at": queued_at,
            "sent_at": queued_at + sent_after if sent_after is not None else None,
            "finished_at": queued_at + finished_after if finished_after is not None else None,
        },  # fmt: skip
    ).scalar_one()
