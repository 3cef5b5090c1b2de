"""Which messages are due today at a practice, each queued once — or recorded as skipped, with why.

Due today (the practice's today and clock):

- ``vaccination_reminder``: a pending vaccination reminder (``warehouse.records.reminders`` creates it on its
  send date) whose due date has not passed;
- ``overdue_reminder``: a reminder still pending or sent ``OVERDUE_AFTER_DAYS`` after its due date (the booster
  was not given: a reminder given one closes ``done``), up to ``STALE_AFTER_DAYS`` (older is no longer news);
- ``appointment_confirmation``: an appointment a user booked (``booked_by``: not one a sync imported) in the
  last ``CONFIRM_WITHIN``, still booked and ahead (one that is tomorrow gets the day-before message instead);
- ``appointment_day_before``: a booked appointment on the practice's tomorrow;
- ``no_show_follow_up``: an appointment marked no-show in the last ``NO_SHOW_WITHIN``.

Only for a live client (not deleted, not merged away) and a patient that has not died. Consent decides the
channel (:func:`choose_channel`): the preferred one when consented (``client_has_consent``, the question
``warehouse.privacy.consent.has_consent`` asks) and the client has that address, else the other consented one,
else the message is ``skipped`` with the reason and never sent. An erased client consents to nothing.

Idempotent: the outbox holds one row per (kind, reminder or appointment, channel), and nothing is queued for
something already queued or sent by any channel; a transaction-scoped advisory lock per practice serialises
concurrent runs. Runs in the caller's transaction and tenant context.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.audit import record
from warehouse.kernel.practice_time import practice_zone
from warehouse.messaging.render import Practice, practice_template, render

OVERDUE_AFTER_DAYS = 14
STALE_AFTER_DAYS = 60
CONFIRM_WITHIN = dt.timedelta(days=1)
NO_SHOW_WITHIN = dt.timedelta(days=7)
_LOCK_NAMESPACE = 5_0002  # pg_advisory_xact_lock(namespace, practice_id): message generation
CHANNEL_LABELS = {"email": "e-mail", "sms": "SMS"}

_LIVE = """
  JOIN client c ON c.practice_id = {a}.practice_id AND c.id = {a}.client_id
   AND c.deleted_at IS NULL AND c.merged_into_id IS NULL
  LEFT JOIN patient pa ON pa.practice_id = {a}.practice_id AND pa.id = {a}.patient_id
"""
_NOT_SENT = """NOT EXISTS (SELECT 1 FROM message_outbox m WHERE m.practice_id = :p AND m.kind = {kind}
  AND m.{about} = {a}.id AND m.state <> 'skipped')"""

_DUE = text(
    f"""
WITH due AS (
  SELECT 'vaccination_reminder' AS kind, r.id AS reminder_id, NULL::bigint AS appointment_id, r.client_id,
         r.patient_id, r.due_on, NULL::timestamptz AS at, v.vaccine_name
  FROM reminder r LEFT JOIN vaccination v ON v.practice_id = r.practice_id AND v.id = r.vaccination_id
  {_LIVE.format(a="r")}
  WHERE r.practice_id = :p AND r.kind = 'vaccination' AND r.status = 'pending' AND r.due_on >= :today
    AND NOT coalesce(pa.deceased, false) AND {
        _NOT_SENT.format(kind="'vaccination_reminder'", about="reminder_id", a="r")
    }
  UNION ALL
  SELECT 'overdue_reminder', r.id, NULL, r.client_id, r.patient_id, r.due_on, NULL, v.vaccine_name
  FROM reminder r LEFT JOIN vaccination v ON v.practice_id = r.practice_id AND v.id = r.vaccination_id
  {_LIVE.format(a="r")}
  WHERE r.practice_id = :p AND r.kind = 'vaccination' AND r.status IN ('pending', 'sent')
    AND r.due_on BETWEEN CAST(:today AS date) - :stale AND CAST(:today AS date) - :overdue
    AND NOT coalesce(pa.deceased, false) AND {
        _NOT_SENT.format(kind="'overdue_reminder'", about="reminder_id", a="r")
    }
  UNION ALL
  SELECT CASE WHEN ap.status = 'no_show' THEN 'no_show_follow_up'
              WHEN ap.starts_at >= :tomorrow AND ap.starts_at < :day_after THEN 'appointment_day_before'
              ELSE 'appointment_confirmation' END,
         NULL, ap.id, ap.client_id, ap.patient_id, NULL, ap.starts_at, NULL
  FROM appointment ap
  {_LIVE.format(a="ap")}
  WHERE ap.practice_id = :p AND NOT coalesce(pa.deceased, false)
    AND ((ap.status = 'booked' AND ap.booked_by IS NOT NULL AND ap.booked_at >= :now - :confirm
          AND ap.starts_at > :now)
      OR (ap.status = 'booked' AND ap.starts_at >= :tomorrow AND ap.starts_at < :day_after)
      OR (ap.status = 'no_show' AND ap.starts_at >= :now - :no_show AND ap.starts_at <= :now))
)
SELECT d.*, c.initials, c.first_name, c.last_name, c.preferred_channel, pa.name AS patient_name,
       client_has_consent(:p, d.client_id, 'reminders_email') AS email_consent,
       client_has_consent(:p, d.client_id, 'reminders_sms') AS sms_consent,
       c.email_enc IS NOT NULL AS has_email, c.phone_enc IS NOT NULL AS has_phone
FROM due d
JOIN client c ON c.practice_id = :p AND c.id = d.client_id
LEFT JOIN patient pa ON pa.practice_id = :p AND pa.id = d.patient_id
WHERE NOT EXISTS (SELECT 1 FROM message_outbox m WHERE m.practice_id = :p AND m.kind = d.kind
                  AND m.appointment_id = d.appointment_id AND m.state <> 'skipped')
ORDER BY d.kind, d.reminder_id, d.appointment_id
"""
)
_INSERT = text(
    """
INSERT INTO message_outbox (practice_id, kind, client_id, patient_id, reminder_id, appointment_id, channel, subject,
                            body, state, reason)
VALUES (:p, :kind, :client, :patient, :reminder, :appointment, :channel, :subject, :body, :state, :reason)
ON CONFLICT ON CONSTRAINT uq_message_outbox_about DO NOTHING
RETURNING state
"""
)


@dataclass(frozen=True)
class ChannelChoice:
    channel: str | None  # None: skipped
    reason: str | None  # why skipped


def choose_channel(
    preferred: str | None, consents: dict[str, bool], addresses: dict[str, bool]
) -> ChannelChoice:
    """The channel a message goes by: the client's preferred one (``email``/``sms``) when they consented to it
    and the practice has that address, else the other such one (e-mail first), else none and why."""
    order = [preferred] if preferred in CHANNEL_LABELS else []
    order += [c for c in CHANNEL_LABELS if c not in order]
    for channel in order:
        if consents.get(channel) and addresses.get(channel):
            return ChannelChoice(channel, None)
    consented = [c for c in CHANNEL_LABELS if consents.get(c)]
    if not consented:
        return ChannelChoice(None, "No consent for reminders by e-mail or SMS")
    missing = " or ".join("e-mail address" if c == "email" else "mobile number" for c in consented)
    return ChannelChoice(
        None, f"Consent for {' and '.join(CHANNEL_LABELS[c] for c in consented)}, but no {missing}"
    )


@dataclass(frozen=True)
class GenerateRun:
    practice_id: int
    queued: int
    skipped: int


def _client_name(row: Any) -> str:
    given = row.first_name or row.initials
    return f"{given} {row.last_name}" if given else row.last_name


def generate_messages(session: Session, practice_id: int, *, now: dt.datetime) -> GenerateRun:
    """Queue the practice's messages due at ``now`` (skipped ones recorded with their reason); audited once."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, CAST(:p AS int))"), {"ns": _LOCK_NAMESPACE, "p": practice_id}
    )
    zone = practice_zone(session, practice_id)
    today = now.astimezone(zone).date()
    tomorrow = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), zone)
    practice = Practice(
        *session.execute(
            text("SELECT name, phone, booking_url FROM tenant WHERE id = :p"), {"p": practice_id}
        ).one()
    )
    rows = session.execute(
        _DUE,
        {
            "p": practice_id,
            "today": today,
            "now": now,
            "tomorrow": tomorrow,
            "day_after": tomorrow + dt.timedelta(days=1),
            "overdue": OVERDUE_AFTER_DAYS,
            "stale": STALE_AFTER_DAYS,
            "confirm": CONFIRM_WITHIN,
            "no_show": NO_SHOW_WITHIN,
        },  # fmt: skip
    ).all()
    queued = skipped = 0
    for row in rows:
        choice = choose_channel(
            row.preferred_channel,
            {"email": row.email_consent, "sms": row.sms_consent},
            {"email": row.has_email, "sms": row.has_phone},
        )
        subject = body = None
        if choice.channel is not None:
            values = {
                "client": _client_name(row),
                "patient": row.patient_name or "uw dier",
                "vaccine": row.vaccine_name or "",
                "due_date": fmt.date(row.due_on) if row.due_on else "",
                "when": f"{fmt.date(row.at, weekday=True, tz=zone)} om {fmt.time(row.at, tz=zone)}"
                if row.at
                else "",
            }
            template = practice_template(session, practice_id, row.kind, choice.channel)
            subject, body = render(template, values, practice, choice.channel)
        state = session.execute(
            _INSERT,
            {
                "p": practice_id,
                "kind": row.kind,
                "client": row.client_id,
                "patient": row.patient_id,
                "reminder": row.reminder_id,
                "appointment": row.appointment_id,
                "channel": choice.channel,
                "subject": subject,
                "body": body,
                "state": "queued" if choice.channel else "skipped",
                "reason": choice.reason,
            },  # fmt: skip
        ).scalar()
        queued += state == "queued"
        skipped += state == "skipped"
    if queued or skipped:
        record(session, practice_id=practice_id, action="generate", entity="message_outbox",
               detail={"queued": queued, "skipped": skipped})  # fmt: skip
    return GenerateRun(practice_id, queued, skipped)
