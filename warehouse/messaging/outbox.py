"""The message outbox as a queue: claim what is due, then mark how it went.

At least once plus an idempotent id is exactly once: a claim (``FOR UPDATE SKIP LOCKED``, so concurrent
dispatchers never take the same row) sets ``sending`` with a lease; the claim is committed before anything is
sent. A sender that dies mid-send leaves the row ``sending`` with its lease running out, and the next claim
sends it again under the same ``message_id`` — which the gateways honour (the SMS gateway keeps one message per
id, the mailbox one mail per Message-ID), so the owner gets it once.

Failures that may pass (a timeout, a 5xx, SMTP 4xx) come back ``queued`` after an exponential backoff, like the
write-back's; after ``MAX_ATTEMPTS`` the message ``failed``. A refusal for good (SMTP 5xx on RCPT or DATA, an SMS
receipt ``failed``, a number the gateway refuses) is ``bounced`` with the reason, shown on the client card.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel.ciphers import practice_cipher

LEASE_SECONDS = 120  # longer than a send takes with its timeouts; a claim older than this was abandoned
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0
RECEIPT_WINDOW = dt.timedelta(days=3)  # how long an SMS is asked for its receipt


def live_practices(session: Session, code: str | None = None) -> list[tuple[int, str]]:
    """(id, code) of every practice not offboarded, or of the one with ``code``: whom a messages run serves.
    A cross-tenant read: the caller passes its audited system session."""
    rows = session.execute(
        text("SELECT id, code FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL "
             "AND (CAST(:code AS text) IS NULL OR code = :code) ORDER BY code"), {"code": code},
    )  # fmt: skip
    return [(int(row.id), row.code) for row in rows]


def backoff_seconds(attempts: int) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: 30 s, 1 min, 2 min … at most an hour."""
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)


@dataclass(frozen=True)
class Outgoing:
    """A claimed message with its recipient decrypted (``to`` None: the client has no such address now)."""

    practice_id: int
    id: int
    message_id: str
    kind: str
    channel: str
    to: str | None
    subject: str
    body: str
    attempts: int  # including this one


_CLAIM = text(
    """
UPDATE message_outbox m
   SET state = 'sending', attempts = m.attempts + 1,
       next_attempt_at = clock_timestamp() + make_interval(secs => :lease)
  FROM (SELECT id FROM message_outbox
         WHERE practice_id = :p AND state IN ('queued', 'sending') AND next_attempt_at <= clock_timestamp()
         ORDER BY next_attempt_at, id LIMIT :n FOR UPDATE SKIP LOCKED) due,
       client c
 WHERE m.practice_id = :p AND m.id = due.id AND c.practice_id = m.practice_id AND c.id = m.client_id
RETURNING m.id, m.message_id, m.kind, m.channel, m.subject, m.body, m.attempts, c.email_enc, c.phone_enc
"""
)


def e164(phone: str | None) -> str | None:
    """A stored phone number as the SMS gateway wants it (+31612345678); None when it is not a valid number."""
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, "NL")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def claim_due(session: Session, practice_id: int, master_key: bytes, *, limit: int = 50) -> list[Outgoing]:
    """Claim up to ``limit`` due messages of the practice (commit before sending them)."""
    rows = session.execute(_CLAIM, {"p": practice_id, "n": limit, "lease": LEASE_SECONDS}).all()
    if not rows:
        return []
    cipher = practice_cipher(session, practice_id, master_key)
    claimed = []
    for row in rows:
        if row.channel == "email":
            to = cipher.decrypt("email", row.email_enc)
        else:
            to = e164(cipher.decrypt("phone", row.phone_enc))
        claimed.append(
            Outgoing(
                practice_id,
                row.id,
                str(row.message_id),
                row.kind,
                row.channel,
                to,
                row.subject or "",
                row.body or "",
                row.attempts,
            )  # fmt: skip
        )
    return sorted(claimed, key=lambda o: o.id)


def mark_sent(session: Session, message: Outgoing) -> None:
    """Accepted by the gateway; its reminder counts as sent (by this channel) from now."""
    session.execute(
        text(
            "UPDATE message_outbox SET state = 'sent', sent_at = coalesce(sent_at, clock_timestamp()), "
            "last_error = NULL WHERE practice_id = :p AND id = :id AND state IN ('queued', 'sending')"
        ),
        {"p": message.practice_id, "id": message.id},
    )
    session.execute(
        text(
            "UPDATE reminder r SET status = 'sent', sent_at = coalesce(r.sent_at, clock_timestamp()), "
            "channel = m.channel FROM message_outbox m WHERE m.practice_id = :p AND m.id = :id "
            "AND r.practice_id = m.practice_id AND r.id = m.reminder_id AND r.status = 'pending'"
        ),
        {"p": message.practice_id, "id": message.id},
    )


def mark_retry(session: Session, message: Outgoing, error: str, delay_s: float | None = None) -> str:
    """Not now: ``queued`` again after ``delay_s`` (default: the backoff), or ``failed`` after the last attempt.
    Returns the new state."""
    if message.attempts >= MAX_ATTEMPTS:
        mark_final(session, message, "failed", f"Gave up after {message.attempts} attempts: {error}")
        return "failed"
    delay = backoff_seconds(message.attempts) if delay_s is None else delay_s
    session.execute(
        text(
            "UPDATE message_outbox SET state = 'queued', last_error = :error, "
            "next_attempt_at = clock_timestamp() + make_interval(secs => :delay) "
            "WHERE practice_id = :p AND id = :id AND state = 'sending'"
        ),
        {"p": message.practice_id, "id": message.id, "error": error, "delay": delay},
    )
    return "queued"


def mark_final(session: Session, message: Outgoing, state: str, reason: str) -> None:
    """``bounced`` or ``failed`` for good, with the reason a person reads."""
    session.execute(
        text(
            "UPDATE message_outbox SET state = :state, reason = :reason, last_error = :reason, "
            "finished_at = clock_timestamp() WHERE practice_id = :p AND id = :id "
            "AND state IN ('queued', 'sending', 'sent')"
        ),
        {"p": message.practice_id, "id": message.id, "state": state, "reason": reason},
    )


def awaiting_receipt(session: Session, practice_id: int, *, limit: int = 200) -> list[tuple[int, str]]:
    """(id, message_id) of the SMS messages sent recently whose delivery is not known yet."""
    rows = session.execute(
        text(
            "SELECT id, message_id FROM message_outbox WHERE practice_id = :p AND channel = 'sms' "
            "AND state = 'sent' AND sent_at >= clock_timestamp() - :window ORDER BY id LIMIT :n"
        ),
        {"p": practice_id, "window": RECEIPT_WINDOW, "n": limit},
    ).all()
    return [(row.id, str(row.message_id)) for row in rows]


def mark_receipt(session: Session, practice_id: int, id_: int, delivered: bool, reason: str | None) -> None:
    """An SMS receipt: ``delivered``, or ``bounced`` with the gateway's reason."""
    session.execute(
        text(
            "UPDATE message_outbox SET state = :state, reason = :reason, finished_at = clock_timestamp() "
            "WHERE practice_id = :p AND id = :id AND state = 'sent'"
        ),
        {
            "p": practice_id,
            "id": id_,
            "state": "delivered" if delivered else "bounced",
            "reason": None if delivered else reason or "Not delivered",
        },
    )


def requeue_unknown(session: Session, practice_id: int, id_: int) -> None:
    """The gateway does not know a message it accepted (it lost it): send it again, same id."""
    session.execute(
        text(
            "UPDATE message_outbox SET state = 'queued', next_attempt_at = clock_timestamp(), "
            "last_error = 'The SMS gateway no longer knew the message' "
            "WHERE practice_id = :p AND id = :id AND state = 'sent'"
        ),
        {"p": practice_id, "id": id_},
    )
