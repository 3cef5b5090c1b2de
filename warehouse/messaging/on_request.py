"""Messages queued when a user asks ("Send due messages now" on the Messages page) instead of at the schedule's
next run: the same generation, guarded by the permission to write the practice's clients (the front desk that
phones owners about their messages holds it). The sender — the Dagster schedule, ``vetconnect messages send``
or the demo's loop — takes them from the outbox; the app itself never talks to a gateway."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from warehouse.messaging.generate import GenerateRun, generate_messages
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

SEND_PERMISSION = CLIENTS_WRITE


def queue_due_now(session: Session, actor: Actor, practice_id: int, *, now: dt.datetime) -> GenerateRun:
    """Queue the practice's messages due at ``now`` (audited by the generation when it queues any)."""
    require(actor, SEND_PERMISSION, practice_id)
    return generate_messages(session, practice_id, now=now)
