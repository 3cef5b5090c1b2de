"""Read models for the hub page: what the signed-in user's practices look like today."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel import formatting as fmt
from warehouse.kernel.audit import record
from warehouse.search.service import SearchHit


@dataclass(frozen=True)
class Task:
    kind: str  # a key of TASK_LABELS
    practice_id: int
    id: int  # of what the task is about: the visit, lab order, appointment, invoice or reminder
    title: str
    detail: str
    patient_id: int | None = None
    client_id: int | None = None
    starts_at: dt.datetime | None = None  # an arrival's appointment time (the agenda opens on its day)

    def opens(self) -> SearchHit:
        """What a click on the task opens, in the form the workspaces take from the search: the patient of a
        note, lab result or reminder, the appointment of an arrival, the invoice."""
        kind = TASK_OPENS[self.kind]
        target = self.patient_id if kind == "patient" else self.id
        return SearchHit(
            kind,
            self.practice_id,
            target or self.id,
            self.title,
            self.detail,
            1.0,  # fmt: skip
            self.patient_id,
            self.client_id,
            self.starts_at,
        )


@dataclass(frozen=True)
class Today:
    day: dt.date
    agenda: (
        pl.DataFrame
    )  # today's appointments of the user's own column if they have one, else the practice's
    own_agenda: bool
    waiting: int
    in_consult: int
    tasks: tuple[Task, ...]
    task_counts: dict[str, int]  # the user's task kinds only (by role), each with its number open
    appointments: int = 0  # today's appointments in the context (the agenda shows at most 200)
    # Filled by the models issue (next-action prediction); the hub reserves its place.
    suggested_actions: tuple[str, ...] = ()


TASK_LABELS = {
    "unsigned_note": "My unsigned visit notes",
    "lab_review": "Lab results of my patients to review",
    "arrival": "Arrivals not checked in",
    "unpaid_invoice": "Overdue unpaid invoices",
    "due_reminder": "Reminders due this week",
}
TASK_OPENS = {"unsigned_note": "patient", "lab_review": "patient", "arrival": "appointment",
              "unpaid_invoice": "invoice", "due_reminder": "patient"}  # fmt: skip
# A task is the user's own work: a vet's notes and lab results, the front desk's arrivals, money and reminders.
# Roles without tasks here (franchise roles, analysts) read dashboards instead of working a list.
TASKS_BY_ROLE: dict[str, tuple[str, ...]] = {
    "veterinarian": ("unsigned_note", "lab_review"),
    "nurse": ("arrival",),
    "receptionist": ("arrival", "unpaid_invoice", "due_reminder"),
    "practice_manager": ("unpaid_invoice",),
}
ARRIVAL_LEAD = dt.timedelta(minutes=15)  # an appointment this close is an arrival the desk expects now


def task_kinds(roles: frozenset[str]) -> tuple[str, ...]:
    """The user's task kinds, in the order the hub lists them."""
    mine = {kind for role in roles for kind in TASKS_BY_ROLE.get(role, ())}
    return tuple(kind for kind in TASK_LABELS if kind in mine)


# Tasks with their counts in one statement. Each kind's open rows are read once (a materialised CTE) and both
# counted and cut to the first few before names are joined: a franchise manager's 50 practices have ~10,000
# unpaid invoices, and ``count(*) OVER ()`` on the joined rows built every one of them to show five. ``visit``
# is partitioned per practice, so reading it once also means planning its 50 partitions once. A kind the user
# does not have is cut by its constant ``= ANY(:kinds)`` test before any table is read.
#
# Unsigned notes are the user's own: visits they wrote in VetConnect. A visit synced from Animana has no
# VetConnect author (``vet_user_id`` is NULL) and is history, not a note waiting for a signature.
_TASKS = text(
    """
    WITH unsigned AS MATERIALIZED (
           SELECT v.practice_id, v.id, v.started_at, v.reason, v.patient_id FROM visit v
           WHERE 'unsigned_note' = ANY(:kinds) AND v.practice_id = ANY(:p) AND v.signed_at IS NULL
             AND v.vet_user_id = :user),
         to_review AS MATERIALIZED (
           SELECT o.practice_id, o.id, o.ordered_at, coalesce(o.test_name, o.test_code, o.accession_number) AS test,
                  o.patient_id
           FROM lab_order o
           LEFT JOIN visit v ON v.practice_id = o.practice_id AND v.id = o.visit_id
           WHERE 'lab_review' = ANY(:kinds) AND o.practice_id = ANY(:p) AND o.status IN ('partial', 'resulted')
             AND o.reviewed_at IS NULL AND (o.ordered_by = :user OR v.vet_user_id = :user)),
         arrivals AS MATERIALIZED (
           SELECT a.practice_id, a.id, a.starts_at, a.resource_id, a.patient_id, a.client_id FROM appointment a
           WHERE 'arrival' = ANY(:kinds) AND a.practice_id = ANY(:p) AND a.status = 'booked'
             AND a.starts_at >= :day_start AND a.starts_at < :arriving_by),
         unpaid AS MATERIALIZED (
           SELECT i.practice_id, i.id, i.number, i.issued_on, coalesce(i.due_on, i.issued_on + 30) AS due_on,
                  i.client_id, i.total_incl_cents - coalesce(paid.cents, 0) AS open_cents
           FROM invoice i
           LEFT JOIN LATERAL (SELECT sum(amount_cents) AS cents FROM payment y
                              WHERE y.practice_id = i.practice_id AND y.invoice_id = i.id) paid ON true
           WHERE 'unpaid_invoice' = ANY(:kinds) AND i.practice_id = ANY(:p) AND i.status = 'issued'
             AND coalesce(i.due_on, i.issued_on + 30) < :today AND i.total_incl_cents > coalesce(paid.cents, 0)),
         due AS MATERIALIZED (
           SELECT r.practice_id, r.id, r.due_on, r.kind, r.patient_id, r.client_id FROM reminder r
           WHERE 'due_reminder' = ANY(:kinds) AND r.practice_id = ANY(:p) AND r.status = 'pending'
             AND r.due_on <= :due_by)
    (SELECT 'unsigned_note' AS kind, v.practice_id, v.id, p.name AS title, coalesce(v.reason, 'visit') AS what,
            v.started_at AS at, NULL::date AS on_day, NULL::bigint AS cents, v.patient_id, NULL::bigint AS client_id,
            (SELECT count(*) FROM unsigned) AS total
     FROM (SELECT * FROM unsigned ORDER BY started_at, id LIMIT :limit) v
     JOIN patient p ON p.practice_id = v.practice_id AND p.id = v.patient_id
     ORDER BY v.started_at, v.id)
    UNION ALL
    (SELECT 'lab_review', o.practice_id, o.id, p.name, o.test, o.ordered_at, NULL, NULL, o.patient_id, NULL,
            (SELECT count(*) FROM to_review)
     FROM (SELECT * FROM to_review ORDER BY ordered_at, id LIMIT :limit) o
     JOIN patient p ON p.practice_id = o.practice_id AND p.id = o.patient_id
     ORDER BY o.ordered_at, o.id)
    UNION ALL
    (SELECT 'arrival', a.practice_id, a.id, coalesce(p.name, c.last_name, 'Afspraak'), r.name, a.starts_at, NULL,
            NULL, a.patient_id, a.client_id, (SELECT count(*) FROM arrivals)
     FROM (SELECT * FROM arrivals ORDER BY starts_at, id LIMIT :limit) a
     JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
     LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
     LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id
     ORDER BY a.starts_at, a.id)
    UNION ALL
    (SELECT 'unpaid_invoice', i.practice_id, i.id, i.number, c.last_name, NULL, i.due_on, i.open_cents, NULL,
            i.client_id, (SELECT count(*) FROM unpaid)
     FROM (SELECT * FROM unpaid ORDER BY due_on, id LIMIT :limit) i
     JOIN client c ON c.practice_id = i.practice_id AND c.id = i.client_id
     ORDER BY i.due_on, i.id)
    UNION ALL
    (SELECT 'due_reminder', r.practice_id, r.id, p.name, r.kind, NULL, r.due_on, NULL, r.patient_id, r.client_id,
            (SELECT count(*) FROM due)
     FROM (SELECT * FROM due ORDER BY due_on, id LIMIT :limit) r
     JOIN patient p ON p.practice_id = r.practice_id AND p.id = r.patient_id
     ORDER BY r.due_on, r.id)
    """
)


def _detail(kind: str, what: str | None, at: dt.datetime | None, on_day: dt.date | None, cents: int | None,
            tz: ZoneInfo) -> str:  # fmt: skip
    """The task's second line, in Dutch formats and the practice's local time."""
    what = what or fmt.EMPTY
    if kind == "unsigned_note":
        return f"{what} · {fmt.date_time(at, tz)}"
    if kind == "lab_review":
        return f"{what} · ordered {fmt.date_time(at, tz)}"
    if kind == "arrival":
        return f"{fmt.time(at, tz)} · {what}"
    if kind == "unpaid_invoice":
        return f"{what} · {fmt.euros(cents)} open, due {fmt.date(on_day)}"
    return f"{what} due {fmt.date(on_day)}"


def today_for_user(
    session: Session, *, user_id: int | None, roles: frozenset[str], now: dt.datetime, tz: ZoneInfo,
    limit: int = 5,
) -> Today:  # fmt: skip
    """The hub's "today": the user's agenda (their own column when they are bookable staff), the waiting
    room in numbers, and the user's own open tasks (by role) in the practices of the session's access context."""
    # Custom plans only (transaction-local): a generic plan of a prepared statement cannot prune the
    # appointment and visit partitions to the visible practices (see warehouse.search.service).
    practices = list(session.execute(
        text("SELECT app_practice_ids(), set_config('plan_cache_mode', 'force_custom_plan', true)")
    ).one()[0] or [])  # fmt: skip
    day = now.astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time(0), tz)
    own = session.execute(
        text("SELECT practice_id, id FROM resource WHERE practice_id = ANY(:p) AND user_id = :u AND active"),
        {"p": practices, "u": user_id},
    ).all()
    window = {"p": practices, "start": start, "end": start + dt.timedelta(days=1),
              "own": [rid for _, rid in own] if own else None}  # fmt: skip
    agenda_rows = session.execute(_AGENDA, window).all()
    agenda = pl.DataFrame([dict(r._mapping) for r in agenda_rows], schema=AGENDA_SCHEMA)
    day_counts = agenda_rows[0] if agenda_rows else None
    kinds = task_kinds(roles)
    rows = session.execute(
        _TASKS,
        {
            "p": practices,
            "kinds": list(kinds),
            "user": user_id,
            "today": day,
            "day_start": start,
            "arriving_by": now + ARRIVAL_LEAD,
            "due_by": day + dt.timedelta(days=7),
            "limit": limit,
        },
    ).all()
    tasks = tuple(
        Task(
            r.kind,
            r.practice_id,
            r.id,
            r.title,
            _detail(r.kind, r.what, r.at, r.on_day, r.cents, tz),
            r.patient_id,
            r.client_id,
            r.at if r.kind == "arrival" else None,
        )  # fmt: skip
        for r in rows
    )
    counts = dict.fromkeys(kinds, 0)
    for r in rows:
        counts[r.kind] = int(r.total)
    return Today(
        day, agenda, bool(own), day_counts.waiting if day_counts else 0, day_counts.in_consult if day_counts else 0,
        tasks, counts, day_counts.appointments if day_counts else 0,
    )  # fmt: skip


# The day's appointments are read once (``appointment`` is partitioned per practice: one planning of the visible
# partitions), counted, and the first 200 in time order chosen before patient, client and type are joined: a
# franchise manager's 50 practices have ~2,000 appointments a day. Every row carries the day's counts.
_AGENDA = text(
    """
    WITH day AS MATERIALIZED (
      SELECT a.practice_id, a.id, a.starts_at, a.ends_at, a.status, a.resource_id, a.patient_id, a.client_id,
             a.franchise_id, a.appointment_type_id
      FROM appointment a
      WHERE a.practice_id = ANY(:p) AND a.starts_at >= :start AND a.starts_at < :end AND a.status <> 'cancelled'
        AND (CAST(:own AS bigint[]) IS NULL OR a.resource_id = ANY(:own)))
    SELECT a.practice_id, a.id, a.starts_at, a.ends_at, a.status, a.resource, p.name AS patient,
           p.species, c.last_name AS client, coalesce(t.name, 'Afspraak') AS type, a.patient_id,
           n.appointments, n.waiting, n.in_consult
    FROM (SELECT d.*, r.name AS resource FROM day d
          JOIN resource r ON r.practice_id = d.practice_id AND r.id = d.resource_id
          ORDER BY d.starts_at, r.name, d.id LIMIT 200) a
    CROSS JOIN (SELECT count(*) AS appointments, count(*) FILTER (WHERE status = 'checked_in') AS waiting,
                       count(*) FILTER (WHERE status = 'in_consult') AS in_consult FROM day) n
    LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
    LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id
    LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
    ORDER BY a.starts_at, a.resource, a.id
    """
)
AGENDA_SCHEMA = {
    "practice_id": pl.Int64, "id": pl.Int64, "starts_at": pl.Datetime("us", "UTC"),
    "ends_at": pl.Datetime("us", "UTC"), "status": pl.String, "resource": pl.String, "patient": pl.String,
    "species": pl.String, "client": pl.String, "type": pl.String, "patient_id": pl.Int64,
}  # fmt: skip


@dataclass(frozen=True)
class PatientCard:
    """What the hub shows when a patient is opened (the records workspace shows the full record)."""

    practice_id: int
    patient_id: int
    name: str
    species: str
    breed: str | None
    date_of_birth: dt.date | None
    date_of_birth_estimated: bool
    microchip: str | None
    deceased: bool
    owner: str | None
    client_id: int | None
    upcoming: pl.DataFrame


def open_patient(
    session: Session, practice_id: int, patient_id: int, *, now: dt.datetime
) -> PatientCard | None:
    """The patient's card; opening it is a read of a clinical record, so it is written to the audit log."""
    row = session.execute(
        text(
            """SELECT p.name, p.species, p.breed, p.date_of_birth, p.date_of_birth_estimated, p.microchip, p.deceased, o.client_id,
                      o.owner
               FROM patient p
               LEFT JOIN LATERAL (SELECT cp.client_id, concat_ws(', ', c.last_name, c.initials) AS owner
                                  FROM client_patient cp JOIN client c
                                    ON c.practice_id = cp.practice_id AND c.id = cp.client_id
                                  WHERE cp.practice_id = p.practice_id AND cp.patient_id = p.id
                                  ORDER BY cp.is_primary DESC LIMIT 1) o ON true
               WHERE p.practice_id = :practice AND p.id = :patient AND p.deleted_at IS NULL"""
        ),
        {"practice": practice_id, "patient": patient_id},
    ).first()
    if row is None:
        return None
    record(session, practice_id=practice_id, action="read", entity="patient", entity_ids=[patient_id],
           detail={"view": "hub.patient_card"})  # fmt: skip
    upcoming = session.execute(
        text(
            """SELECT a.id, a.starts_at, a.status, r.name AS resource FROM appointment a
               JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
               WHERE a.practice_id = :practice AND a.patient_id = :patient AND a.starts_at >= :since
                 AND a.status <> 'cancelled' ORDER BY a.starts_at LIMIT 10"""
        ),
        {"practice": practice_id, "patient": patient_id, "since": now - dt.timedelta(hours=12)},
    )
    frame = pl.DataFrame(
        [dict(r._mapping) for r in upcoming],
        schema={
            "id": pl.Int64,
            "starts_at": pl.Datetime("us", "UTC"),
            "status": pl.String,
            "resource": pl.String,
        },
    )
    return PatientCard(practice_id, patient_id, row.name, row.species, row.breed, row.date_of_birth,
                       row.date_of_birth_estimated, row.microchip, row.deceased, row.owner, row.client_id, frame)  # fmt: skip
