"""Vaccination reminders from the vaccination record: VetConnect is their system of record.

Animana's API exposes vaccinations with their next-due date, and only the reminders a practice set in Animana
itself: a practice that keeps none there would have none, and reminder compliance would stay empty. So
``generate_vaccination_reminders`` creates the reminder a practice would have sent for every booster falling
due, the way ``vaccinations.record_vaccination`` does for a vaccination given in VetConnect:

- one reminder per vaccination with a due date (``reminder.vaccination_id``), due on that date, for the
  patient's primary owner, linked to the franchise's vaccination reminder template;
- created once its send date has come: the due date minus the template's lead time (the practice's override of
  ``days_before_due`` where it has one; the longest lead of the franchise's ``vacc``/``vacc-…`` templates, as
  that is the first message a client gets; 14 days without a template);
- not for a booster that was already renewed before the send date (nothing to remind of), nor for a patient
  that had died by then;
- a pending reminder is closed (``done``) once a later vaccination of the same vaccine is recorded, as
  ``record_vaccination`` closes it.

Not where the practice already has the reminder in Animana (synced, with an ``animana_id``): one for the same
vaccination, or any vaccination reminder for the same patient and due date (it may name no vaccination or
another one due that day; either way it brings the client in for that day's vaccinations).

Idempotent: a rerun creates nothing twice (one transaction-scoped advisory lock per practice serialises
concurrent runs; existing reminders are matched by ``vaccination_id``). Runs in the caller's transaction and
RLS context. Whether a reminder "worked" (it was sent and a booking or its vaccine followed within
30 days) is ``warehouse.messaging.worked``'s, not a status flag.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

DEFAULT_LEAD_DAYS = 14
_LOCK_NAMESPACE = 5_0001  # pg_advisory_xact_lock(namespace, practice_id): reminder generation


def _renewal(alias: str, id_column: str) -> str:
    """A later vaccination of the same vaccine for the same patient (the marts' and records' renewal)."""
    return (
        f"SELECT 1 FROM vaccination w WHERE w.practice_id = {alias}.practice_id "
        f"AND w.patient_id = {alias}.patient_id AND w.vaccine_name = {alias}.vaccine_name "
        f"AND w.id <> {alias}.{id_column} AND w.given_on > {alias}.given_on"
    )


_CREATE = f"""
WITH template AS (
  SELECT t.franchise_id, t.id, coalesce(o.days_before_due, t.days_before_due) AS lead
  FROM tenant p JOIN reminder_template t ON t.franchise_id = p.franchise_id
  LEFT JOIN reminder_template_override o
    ON o.practice_id = p.id AND o.franchise_id = t.franchise_id AND o.template_id = t.id
  WHERE p.id = :p AND (t.code = 'vacc' OR t.code LIKE 'vacc-%')
  ORDER BY 3 DESC, 2 LIMIT 1),
settings AS (
  SELECT (SELECT franchise_id FROM template) AS franchise_id, (SELECT id FROM template) AS template_id,
         CAST(coalesce((SELECT lead FROM template), :default_lead) AS int) AS lead),
due AS (
  SELECT v.practice_id, v.patient_id, v.id AS vaccination_id, v.due_on, v.due_on - s.lead AS send_on,
         v.vaccine_name, v.given_on
  FROM vaccination v CROSS JOIN settings s
  WHERE v.practice_id = :p AND v.due_on IS NOT NULL AND v.due_on - s.lead <= :today
    AND NOT EXISTS (SELECT 1 FROM reminder r WHERE r.practice_id = v.practice_id AND r.vaccination_id = v.id)
    AND NOT EXISTS (SELECT 1 FROM reminder r WHERE r.practice_id = v.practice_id AND r.animana_id IS NOT NULL
                    AND r.kind = 'vaccination' AND r.patient_id = v.patient_id AND r.due_on = v.due_on))
INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on, franchise_id, template_id, vaccination_id,
                      status)
SELECT d.practice_id, d.patient_id,
       (SELECT min(cp.client_id) FROM client_patient cp
        WHERE cp.practice_id = d.practice_id AND cp.patient_id = d.patient_id AND cp.is_primary),
       'vaccination', d.due_on, s.franchise_id, s.template_id, d.vaccination_id,
       CASE WHEN EXISTS ({_renewal("d", "vaccination_id")}) THEN 'done' ELSE 'pending' END
FROM due d CROSS JOIN settings s
JOIN patient pa ON pa.practice_id = d.practice_id AND pa.id = d.patient_id
WHERE NOT (pa.deceased AND (pa.deceased_on IS NULL OR pa.deceased_on <= d.send_on))
  AND NOT EXISTS ({_renewal("d", "vaccination_id")} AND w.given_on < d.send_on)
"""

_CLOSE = """
UPDATE reminder r SET status = 'done', closed_by_vaccination_id = w.id, closed_at = now()
FROM vaccination v, LATERAL (
  SELECT w.id FROM vaccination w WHERE w.practice_id = v.practice_id AND w.patient_id = v.patient_id
    AND w.vaccine_name = v.vaccine_name AND w.id <> v.id AND w.given_on > v.given_on
  ORDER BY w.given_on, w.id LIMIT 1) w
WHERE r.practice_id = :p AND r.kind = 'vaccination' AND r.status IN ('pending', 'sent')
  AND v.practice_id = r.practice_id AND v.id = r.vaccination_id
"""


@dataclass(frozen=True)
class ReminderRun:
    practice_id: int
    created: int
    closed: int


def generate_vaccination_reminders(session: Session, practice_id: int, *, today: dt.date) -> ReminderRun:
    """Create the practice's missing vaccination reminders whose send date is ``today`` or earlier, and close
    pending ones whose booster has been given since."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(:ns, CAST(:p AS int))"), {"ns": _LOCK_NAMESPACE, "p": practice_id}
    )
    created = session.execute(
        text(_CREATE), {"p": practice_id, "today": today, "default_lead": DEFAULT_LEAD_DAYS}
    ).rowcount
    closed = session.execute(text(_CLOSE), {"p": practice_id}).rowcount
    return ReminderRun(practice_id, created, closed)
