"""Did a reminder work: it reached the owner, and within ``WORKED_WITHIN`` of that the patient got a booking or
the vaccine the reminder was about.

- Reached the owner: a message about the reminder was ``sent`` or ``delivered`` (a bounced or failed one did
  not reach anyone); for a reminder no message was ever attempted for — one sent from Animana, or before the
  outbox existed — its own ``sent_at``.
- A booking: an appointment of the patient created (``booked_at``) after the send, whatever became of it (the
  owner answered; a later cancellation is another story).
- The vaccine: a dose of the vaccine of the reminder's vaccination given from the day of the send on.
- Within 30 days after a send (the appointment's ``booked_at`` ≤ send + 30 days; the dose's day ≤ the send's
  local day + 30). A reminder sent twice (the reminder, then its escalation once overdue) worked when either
  send was followed in time.

``settle_worked`` writes the answer to ``reminder.worked_at`` (when it worked: the booking's time, or the dose's
day), and clears it when what made it work is gone (a booking deleted by a sync). The marts run it before they
recompute a practice (``warehouse.marts.refresh``): writing the reminder marks its due day dirty (the reminder's
mart trigger), so reminder compliance follows without the bookings and doses having to know about reminders.
An incremental refresh looks at the reminders sent in the last ``LOOK_BACK`` and those due on its dirty days
(a reminder that just arrived, with its history: a sync's first load); a full rebuild at all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

WORKED_WITHIN = dt.timedelta(days=30)
# What an incremental refresh looks back over: a send older than 30 days cannot start working any more; the
# other 30 days cover refreshes that did not run for a while (the nightly full rebuild covers the rest).
LOOK_BACK = dt.timedelta(days=60)

_SETTLE = text(
    """
WITH candidate AS (
  SELECT id FROM reminder WHERE practice_id = :p AND CAST(:since AS timestamptz) IS NULL
  UNION
  SELECT id FROM reminder WHERE practice_id = :p AND due_on = ANY(CAST(:days AS date[]))
  UNION
  SELECT id FROM reminder WHERE practice_id = :p AND sent_at IS NOT NULL AND sent_at >= :since
  UNION
  SELECT reminder_id FROM message_outbox
   WHERE practice_id = :p AND reminder_id IS NOT NULL AND sent_at IS NOT NULL AND sent_at >= :since
),
sends AS (
  SELECT m.reminder_id, m.sent_at FROM message_outbox m JOIN candidate c ON c.id = m.reminder_id
   WHERE m.practice_id = :p AND m.state IN ('sent', 'delivered')
  UNION ALL
  SELECT r.id, r.sent_at FROM reminder r JOIN candidate c ON c.id = r.id
   WHERE r.practice_id = :p AND r.sent_at IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM message_outbox m WHERE m.practice_id = r.practice_id AND m.reminder_id = r.id
                     AND m.channel IS NOT NULL)
),
outcome AS (
  SELECT s.reminder_id,
         -- least and greatest skip NULLs: no dose must not read as "the send's own time"
         min(least(booking.at, CASE WHEN dose.on_day IS NOT NULL
                                    THEN greatest(s.sent_at, dose.on_day::timestamp AT TIME ZONE :tz) END)) AS worked_at
  FROM sends s
  JOIN reminder r ON r.practice_id = :p AND r.id = s.reminder_id
  LEFT JOIN vaccination v ON v.practice_id = r.practice_id AND v.id = r.vaccination_id
  LEFT JOIN LATERAL (
    SELECT min(a.booked_at) AS at FROM appointment a
     WHERE a.practice_id = :p AND a.patient_id = r.patient_id
       AND a.booked_at > s.sent_at AND a.booked_at <= s.sent_at + :within) booking ON true
  LEFT JOIN LATERAL (
    SELECT min(w.given_on) AS on_day FROM vaccination w
     WHERE w.practice_id = :p AND w.patient_id = r.patient_id AND w.vaccine_name = v.vaccine_name AND w.id <> v.id
       AND w.given_on BETWEEN (s.sent_at AT TIME ZONE :tz)::date
                          AND (s.sent_at AT TIME ZONE :tz)::date + :within_days) dose ON true
  GROUP BY s.reminder_id
)
UPDATE reminder r SET worked_at = o.worked_at
  FROM outcome o
 WHERE r.practice_id = :p AND r.id = o.reminder_id AND r.worked_at IS DISTINCT FROM o.worked_at
RETURNING r.id
"""
)


def settle_worked(
    session: Session, practice_id: int, *, since: dt.datetime | None, due_days: Sequence[dt.date] = ()
) -> int:
    """Set (or clear) ``worked_at`` of the practice's reminders sent since ``since`` and of those due on
    ``due_days`` (reminders that just arrived, e.g. a sync's history); ``since`` None: every reminder. How many
    changed. Runs in the caller's transaction and RLS context."""
    zone = session.scalar(text("SELECT timezone FROM tenant WHERE id = :p"), {"p": practice_id})
    changed = session.execute(
        _SETTLE,
        {
            "p": practice_id,
            "since": since,
            "days": list(due_days),
            "tz": zone,
            "within": WORKED_WITHIN,
            "within_days": WORKED_WITHIN.days,
        },
    ).all()
    return len(changed)
