"""What people read about the messages to owners: a client's messages (the client card), the practice's delivery
report per day, kind, channel and state, and the problem messages a receptionist phones owners about.

A message's day is the practice's local day it was queued (the day it fell due), so a report of a period counts
every message that fell due in it once, in the state it is in now. The reason is in words: the gateway's bounce
reason, the last error of a message that failed for good, why a message was skipped (no consent), or — for one
still waiting to be retried — the error it will be retried after.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.practice_time import practice_zone
from warehouse.messaging.generate import CHANNEL_LABELS

KIND_LABELS = {
    "vaccination_reminder": "Vaccination reminder",
    "overdue_reminder": "Overdue vaccination",
    "appointment_confirmation": "Appointment confirmation",
    "appointment_day_before": "Day-before reminder",
    "no_show_follow_up": "No-show follow-up",
}
STATE_LABELS = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "delivered": "Delivered",
    "bounced": "Bounced",
    "failed": "Failed",
    "skipped": "Not sent",
}
# The states a receptionist acts on: the owner did not get the message.
PROBLEM_STATES = ("bounced", "failed", "skipped")
# The outcomes the report's chart shows per day, in this order; queued and sending are "waiting".
CHART_STATES = ("sent", "delivered", "bounced", "failed", "skipped")
WAITING_STATES = ("queued", "sending")

_WHY = """CASE WHEN m.state IN ('bounced', 'failed', 'skipped') THEN m.reason
               WHEN m.state = 'queued' AND m.last_error IS NOT NULL THEN 'Will be retried: ' || m.last_error
          END"""

_CLIENT_MESSAGES = text(
    f"""
SELECT m.id, m.kind, m.channel, m.state, pa.name AS patient, m.subject, m.created_at AS queued_at, m.sent_at,
       CASE WHEN m.state = 'delivered' THEN m.finished_at END AS delivered_at, m.attempts, {_WHY} AS why
FROM message_outbox m
LEFT JOIN patient pa ON pa.practice_id = m.practice_id AND pa.id = m.patient_id
WHERE m.practice_id = :p AND m.client_id = :c
ORDER BY m.created_at DESC, m.id DESC
LIMIT :n
"""
)
_CLIENT_SCHEMA = {
    "id": pl.Int64, "kind": pl.String, "channel": pl.String, "state": pl.String, "patient": pl.String,
    "subject": pl.String, "queued_at": pl.Datetime("us", "UTC"), "sent_at": pl.Datetime("us", "UTC"),
    "delivered_at": pl.Datetime("us", "UTC"), "attempts": pl.Int64, "why": pl.String,
}  # fmt: skip


def _labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """The kind, channel and state as words beside their codes."""
    return frame.with_columns(
        kind_label=pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")),
        channel_label=pl.col("channel").replace_strict(CHANNEL_LABELS, default=None),
        state_label=pl.col("state").replace_strict(STATE_LABELS, default=pl.col("state")),
    )


def client_messages(session: Session, practice_id: int, client_id: int, *, limit: int = 50) -> pl.DataFrame:
    """The client's messages, newest first: kind, channel, state (with labels), the patient, when it was queued,
    sent and delivered (SMS receipts; a mail server does not say), attempts and the reason in words."""
    rows = session.execute(_CLIENT_MESSAGES, {"p": practice_id, "c": client_id, "n": limit}).mappings().all()
    return _labelled(pl.DataFrame([dict(r) for r in rows], schema=_CLIENT_SCHEMA, orient="row"))


_REPORT = text(
    """
SELECT (m.created_at AT TIME ZONE :zone)::date AS day, m.kind, m.channel, m.state, count(*) AS messages
FROM message_outbox m
WHERE m.practice_id = :p AND m.created_at >= :start AND m.created_at < :end
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""
)
_REPORT_SCHEMA = {"day": pl.Date, "kind": pl.String, "channel": pl.String, "state": pl.String,
                  "messages": pl.Int64}  # fmt: skip


@dataclass(frozen=True)
class DeliveryReport:
    first_day: dt.date
    last_day: dt.date
    rows: pl.DataFrame  # day, kind, channel, state (+ labels), messages
    totals: dict[str, int]  # messages per state over the period (every state, 0 when none)

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def per_day(self) -> pl.DataFrame:
        """One row per day of the period (none left out) and one column per outcome of ``CHART_STATES``."""
        days = pl.DataFrame({"day": pl.date_range(self.first_day, self.last_day, eager=True)})
        counts = (
            self.rows.filter(pl.col("state").is_in(CHART_STATES)).pivot(
                on="state", index="day", values="messages", aggregate_function="sum"
            )
            if self.rows.height
            else pl.DataFrame(schema={"day": pl.Date})
        )
        frame = days.join(counts, on="day", how="left")
        return frame.select(
            "day",
            *(pl.col(s).fill_null(0) if s in frame.columns else pl.lit(0).alias(s) for s in CHART_STATES),
        )


def _period(session: Session, practice_id: int, first_day: dt.date, last_day: dt.date) -> dict[str, object]:
    zone = practice_zone(session, practice_id)
    return {
        "p": practice_id,
        "zone": zone.key,
        "start": dt.datetime.combine(first_day, dt.time(), zone),
        "end": dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), zone),
    }


def delivery_report(
    session: Session, practice_id: int, first_day: dt.date, last_day: dt.date
) -> DeliveryReport:
    """Messages queued at the practice from ``first_day`` to ``last_day`` (local days, both included), counted
    per day × kind × channel × state, and the period's totals per state."""
    rows = session.execute(_REPORT, _period(session, practice_id, first_day, last_day)).mappings().all()
    frame = _labelled(pl.DataFrame([dict(r) for r in rows], schema=_REPORT_SCHEMA, orient="row"))
    totals = dict.fromkeys(STATE_LABELS, 0)
    for state, messages in frame.group_by("state").agg(pl.col("messages").sum()).iter_rows():
        totals[state] = messages
    return DeliveryReport(first_day, last_day, frame, totals)


_PROBLEMS = text(
    f"""
SELECT m.id, m.client_id, c.title, c.initials, c.first_name, c.last_name, c.phone_enc, pa.name AS patient,
       m.kind, m.channel, m.state, {_WHY} AS why, coalesce(m.finished_at, m.created_at) AS at
FROM message_outbox m
JOIN client c ON c.practice_id = m.practice_id AND c.id = m.client_id
LEFT JOIN patient pa ON pa.practice_id = m.practice_id AND pa.id = m.patient_id
WHERE m.practice_id = :p AND m.state IN ('bounced', 'failed', 'skipped')
  AND m.created_at >= :start AND m.created_at < :end
ORDER BY coalesce(m.finished_at, m.created_at) DESC, m.id DESC
LIMIT :n
"""
)
_PROBLEM_SCHEMA = {
    "id": pl.Int64, "client_id": pl.Int64, "client": pl.String, "phone": pl.String, "patient": pl.String,
    "kind": pl.String, "channel": pl.String, "state": pl.String, "why": pl.String, "at": pl.Datetime("us", "UTC"),
}  # fmt: skip


def problem_messages(
    session: Session,
    practice_id: int,
    first_day: dt.date,
    last_day: dt.date,
    *,
    master_key: bytes,
    limit: int = 500,
) -> pl.DataFrame:
    """The messages queued in the period that did not reach the owner (bounced, failed, not sent), newest
    outcome first, with the client's name and phone number (decrypted) to call them on and the reason."""
    params = {**_period(session, practice_id, first_day, last_day), "n": limit}
    rows = session.execute(_PROBLEMS, params).all()
    cipher = practice_cipher(session, practice_id, master_key) if rows else None
    records = [
        {
            "id": r.id,
            "client_id": r.client_id,
            "client": " ".join(p for p in (r.title, r.first_name or r.initials, r.last_name) if p),
            "phone": cipher.decrypt("phone", r.phone_enc) if cipher else None,
            "patient": r.patient,
            "kind": r.kind,
            "channel": r.channel,
            "state": r.state,
            "why": r.why,
            "at": r.at,
        }
        for r in rows
    ]
    return _labelled(pl.DataFrame(records, schema=_PROBLEM_SCHEMA, orient="row"))


@dataclass(frozen=True)
class Waiting:
    messages: int  # queued or being sent
    oldest: dt.datetime | None  # when the oldest of them was queued


def waiting(session: Session, practice_id: int) -> Waiting:
    """What waits for the sender at the practice now."""
    row = session.execute(
        text("SELECT count(*), min(created_at) FROM message_outbox "
             "WHERE practice_id = :p AND state IN ('queued', 'sending')"), {"p": practice_id},
    ).one()  # fmt: skip
    return Waiting(row[0], row[1])
