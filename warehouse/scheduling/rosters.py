"""Rosters: recurring weekly shifts for a practice's bookable resources (vets, nurses, rooms).

Utilisation (booked minutes ÷ shift minutes) needs shifts. A roster is a weekly pattern — per ISO weekday one
local time range — laid over a date range for some resources. Times are local to the practice (its
``tenant.timezone``), so a shift stays 08:00–18:00 on both sides of a daylight-saving change; the server converts
each day to UTC.

The synced schedule wins: once a practice's shifts come from Animana's werkrooster (a ``staff_shift`` with an
``animana_id``), that is the schedule of its staff synced from Animana, and no roster plans shifts for them — not
even on days the werkrooster leaves free (a day off is a fact, not a gap). Animana schedules people only, so the
practice's rooms and equipment, and staff VetConnect keeps itself, are still rostered here. Shifts planned before
the werkrooster was synced give way to it (`give_way_to_synced_shifts`, for the shift loader).

Creating a roster is idempotent: a day on which the resource already has an overlapping shift is skipped (the
``no_overlapping_shifts`` exclusion constraint would refuse it anyway), so rerunning a roster, or extending its
date range, adds only the missing shifts. Runs in the caller's transaction and RLS context.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ROSTER_DAYS = 3 * 366  # a roster is planned, not a fill of the whole century


class RosterError(ValueError):
    """A roster the practice cannot have; the message says why."""


@dataclass(frozen=True)
class WeeklyShift:
    """One shift per week: ISO weekday (1 = Monday) and local start and end."""

    weekday: int
    starts: dt.time
    ends: dt.time

    def __post_init__(self) -> None:
        if not 1 <= self.weekday <= 7:
            raise RosterError(f"weekday {self.weekday} is not an ISO weekday (1 = Monday … 7 = Sunday)")
        if self.ends <= self.starts:
            raise RosterError(f"a shift ends after it starts ({self.starts:%H:%M}–{self.ends:%H:%M})")


# Opening hours of a typical Dutch small-animal practice: weekdays 08:00–18:30, Saturday morning.
STANDARD_WEEK = (
    *(WeeklyShift(day, dt.time(8, 0), dt.time(18, 30)) for day in range(1, 6)),
    WeeklyShift(6, dt.time(9, 0), dt.time(13, 0)),
)

_PATTERN = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*) (?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$")  # fmt: skip


def parse_week(specs: Sequence[str]) -> tuple[WeeklyShift, ...]:
    """``["mon-fri 08:00-18:30", "sat 09:00-13:00"]`` → weekly shifts (the CLI's notation)."""
    shifts: list[WeeklyShift] = []
    for spec in specs:
        match = _PATTERN.match(spec.strip().lower())
        if match is None:
            raise RosterError(f"{spec!r}: expected e.g. 'mon-fri 08:00-18:30' or 'sat 09:00-13:00'")
        try:
            starts, ends = (dt.time.fromisoformat(match[k].zfill(5)) for k in ("start", "end"))
        except ValueError as exc:
            raise RosterError(f"{spec!r}: {exc}") from None
        for part in match["days"].split(","):
            first, _, last = part.partition("-")
            if first not in WEEKDAYS or (last or first) not in WEEKDAYS:
                raise RosterError(f"{spec!r}: weekdays are {', '.join(WEEKDAYS)}")
            lo, hi = WEEKDAYS.index(first) + 1, WEEKDAYS.index(last or first) + 1
            if hi < lo:
                raise RosterError(f"{spec!r}: {part} runs backwards")
            shifts += [WeeklyShift(day, starts, ends) for day in range(lo, hi + 1)]
    days = [s.weekday for s in shifts]
    if len(days) != len(set(days)):
        raise RosterError("one shift per weekday: a weekday appears twice")
    return tuple(shifts)


# Staff synced from Animana, whose schedule is Animana's once the practice's werkrooster is synced too.
_ANIMANA_STAFF = "r.kind = 'staff' AND r.animana_id IS NOT NULL"
# Uncorrelated (the practice is the parameter), so it runs once, on the unique (practice_id, animana_id) index.
_WERKROOSTER_SYNCED = (
    "EXISTS (SELECT 1 FROM staff_shift w WHERE w.practice_id = :p AND w.animana_id IS NOT NULL)"
)

_CREATE = f"""
WITH pattern AS (
  SELECT * FROM unnest(CAST(:weekdays AS int[]), CAST(:starts AS time[]), CAST(:ends AS time[]))
    AS p(weekday, starts, ends)),
planned AS (
  SELECT r.id AS resource_id, (d::date + p.starts) AT TIME ZONE t.timezone AS starts_at,
         (d::date + p.ends) AT TIME ZONE t.timezone AS ends_at
  FROM tenant t
  JOIN resource r ON r.practice_id = t.id AND r.id = ANY(CAST(:resources AS bigint[]))
  CROSS JOIN generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') d
  JOIN pattern p ON p.weekday = extract(isodow FROM d)::int
  WHERE t.id = :p AND NOT ({_ANIMANA_STAFF} AND {_WERKROOSTER_SYNCED}))
INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at)
SELECT :p, resource_id, starts_at, ends_at FROM planned n
WHERE NOT EXISTS (
  SELECT 1 FROM staff_shift s
  WHERE s.practice_id = :p AND s.resource_id = n.resource_id
    AND tstzrange(s.starts_at, s.ends_at, '[)') && tstzrange(n.starts_at, n.ends_at, '[)'))
"""


def create_roster(
    session: Session,
    *,
    practice_id: int,
    resource_ids: Sequence[int],
    week: Sequence[WeeklyShift],
    first_day: dt.date,
    last_day: dt.date,
) -> int:
    """Lay the weekly pattern over ``first_day``…``last_day`` (inclusive) for the resources; returns the number
    of shifts created (days already covered by a shift of the resource are left as they are, and staff whose
    schedule Animana keeps get none)."""
    if last_day < first_day:
        raise RosterError(f"the roster ends ({last_day}) before it starts ({first_day})")
    if (last_day - first_day).days >= MAX_ROSTER_DAYS:
        raise RosterError(f"a roster covers at most {MAX_ROSTER_DAYS} days; split it")
    if not week:
        raise RosterError("the week has no shifts")
    wanted = sorted(set(resource_ids))
    known = set(
        session.scalars(
            text("SELECT id FROM resource WHERE practice_id = :p AND id = ANY(CAST(:ids AS bigint[]))"),
            {"p": practice_id, "ids": wanted},
        )
    )
    if missing := [r for r in wanted if r not in known]:
        raise RosterError(f"resource(s) {missing} are not resources of practice {practice_id}")
    result = session.execute(
        text(_CREATE),
        {
            "p": practice_id,
            "resources": wanted,
            "weekdays": [s.weekday for s in week],
            "starts": [s.starts for s in week],
            "ends": [s.ends for s in week],
            "first": first_day,
            "last": last_day,
        },
    )
    return result.rowcount


# In the driver's parameter style: the Animana loader runs it on its psycopg cursor, the services through
# the session's connection.
_GIVE_WAY = f"""
DELETE FROM staff_shift s USING resource r
WHERE s.practice_id = %(p)s AND s.animana_id IS NULL AND r.practice_id = s.practice_id AND r.id = s.resource_id
  AND {_ANIMANA_STAFF}
"""


def scheduled_by_animana(session: Session, practice_id: int, resource_ids: Sequence[int]) -> list[str]:
    """The names of these resources whose shifts come from Animana's werkrooster, which a roster leaves alone:
    so that whoever rosters them is told why nothing was planned for them."""
    return list(session.scalars(text(
        f"SELECT r.name FROM resource r WHERE r.practice_id = :p AND r.id = ANY(CAST(:ids AS bigint[])) "
        f"AND {_ANIMANA_STAFF} AND {_WERKROOSTER_SYNCED} ORDER BY r.name"), {"p": practice_id, "ids": list(resource_ids)}))  # fmt: skip


def give_way_to_synced_shifts(session: Session, practice_id: int) -> int:
    """Delete the shifts VetConnect planned for the practice's staff synced from Animana (a roster laid before
    its werkrooster was synced); returns how many. For the shift loader, before it writes a batch of synced
    shifts: the ``no_overlapping_shifts`` exclusion would refuse a synced shift over a planned one. Once synced
    shifts exist no roster plans such shifts again, so later calls delete nothing."""
    return session.connection().exec_driver_sql(_GIVE_WAY, {"p": practice_id}).rowcount


def give_way_on(cur: psycopg.Cursor, practice_id: int) -> int:
    """`give_way_to_synced_shifts` on the Animana loader's psycopg cursor (the shift spec's ``prepare``)."""
    cur.execute(_GIVE_WAY, {"p": practice_id})
    return cur.rowcount


@dataclass(frozen=True)
class AgendaSpan:
    resource_id: int
    name: str
    first_day: dt.date
    last_day: dt.date


def agenda_spans(session: Session, practice_id: int) -> list[AgendaSpan]:
    """Per resource with appointments: the first and last local day of its agenda — the window a roster must
    cover for utilisation to mean something over a practice's (synced) history."""
    rows = session.execute(
        text(
            """SELECT a.resource_id, r.name, min((a.starts_at AT TIME ZONE t.timezone)::date),
                      max((a.starts_at AT TIME ZONE t.timezone)::date)
               FROM appointment a JOIN tenant t ON t.id = a.practice_id
               JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
               WHERE a.practice_id = :p GROUP BY 1, 2 ORDER BY 1"""
        ),
        {"p": practice_id},
    )
    return [AgendaSpan(*row) for row in rows]


def roster_agenda(session: Session, practice_id: int, week: Sequence[WeeklyShift] = STANDARD_WEEK) -> int:
    """Give every resource with appointments the weekly pattern over its agenda's span (a leaver's shifts
    stop at their last appointment). Returns the shifts created."""
    created = 0
    for span in agenda_spans(session, practice_id):
        first = span.first_day
        while first <= span.last_day:  # in pieces a roster may have
            last = min(span.last_day, first + dt.timedelta(days=MAX_ROSTER_DAYS - 1))
            created += create_roster(
                session, practice_id=practice_id, resource_ids=[span.resource_id], week=week,
                first_day=first, last_day=last,
            )  # fmt: skip
            first = last + dt.timedelta(days=1)
    return created
