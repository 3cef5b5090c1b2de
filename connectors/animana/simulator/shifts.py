"""Staff work schedules (Animana's *werkrooster*) as the API serves them: one record per staff member per day
worked, with the local start and end of the shift.

Why dated shifts rather than a weekly pattern with valid_from/valid_to: a practice plans its roster as a
pattern, but what the agenda shows, and what the warehouse's utilisation divides by, is the day as it was
worked: holidays, leave, sick days and the extra day a vet came in for a full agenda are in it, a pattern is
not. One dated record is also one ``staff_shift`` row, so its id, ``updated_at`` and tombstone carry over one to
one; a changed pattern would re-expand into hundreds of rows, and a deleted one into deleting a set the mirror
would have to work out.

The story: every staff member works a weekly pattern that fits their role (vets four or five days, assistants
and receptionists often part-time, half days at the desk), renewed once or twice over the years as contracts
change; Saturday mornings rotate among the vets and among the others. Nobody works on a Dutch public holiday, a
summer holiday of two or three weeks, another week off, or a few sick spells a year — unless they have
patients booked that day: the agenda is the truth, so a vet with appointments always has a shift that covers
them (it starts earlier or ends later, or is an extra day). A roster is published about four weeks ahead; a
shift changed for the agenda was changed when the first appointment that needed it was booked.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import AMSTERDAM, moment, ts

Record = dict[str, Any]
Hours = tuple[dt.time, dt.time]

SATURDAY = 5
SATURDAY_HOURS: Hours = (dt.time(8, 45), dt.time(13, 0))
# Per role: the weekday hours a contract may have, and how many weekdays (Monday-Friday) it may cover.
ROLE_HOURS: dict[str, list[Hours]] = {
    "vet": [(dt.time(8, 0), dt.time(18, 0)), (dt.time(8, 30), dt.time(18, 30))],
    "nurse": [(dt.time(7, 45), dt.time(16, 45)), (dt.time(8, 0), dt.time(17, 0))],
    "receptionist": [
        (dt.time(8, 0), dt.time(13, 0)),
        (dt.time(13, 0), dt.time(18, 30)),
        (dt.time(8, 0), dt.time(17, 0)),
    ],
}
ROLE_DAYS: dict[str, list[int]] = {"vet": [4, 5], "nurse": [3, 4, 5], "receptionist": [2, 3, 4, 5]}
PUBLISHED_AHEAD = dt.timedelta(weeks=4)
SICK_SPELL_START = 0.012  # chance per working day that a sick spell of one to five days begins
LEAD_IN = dt.timedelta(minutes=15)  # a shift starts at least this long before the first patient


@dataclass(frozen=True)
class _Contract:
    """A weekly pattern from ``first_day`` on: local hours per weekday (0 = Monday)."""

    first_day: dt.date
    days: dict[int, Hours]


def generate_shifts(
    rng_for: Callable[[str], random.Random],
    staff: list[Record],
    agenda: list[Record],
    *,
    first_day: dt.date,
    last_day: dt.date,
    anchor: dt.datetime,
    opening_weekday: Callable[[dt.date], int | None],
) -> list[Record]:
    """The practice's shifts from ``first_day`` to ``last_day`` (inclusive), ordered by day, start and staff
    member; records without ``id``/``deleted``, which the generator adds. ``opening_weekday`` is the generator's
    rule for which weekday's hours a day keeps (None: closed)."""
    booked = _booked_days(agenda)
    holidays = _public_holidays(first_day.year, last_day.year)
    groups = {"vet": [s["id"] for s in staff if s["role"] == "vet"]}
    groups["other"] = [s["id"] for s in staff if s["role"] != "vet"]
    shifts: list[Record] = []
    for member in staff:
        rng = rng_for(f"shifts:{member['id']}")
        group = groups["vet" if member["role"] == "vet" else "other"]
        saturday_turn = (group.index(member["id"]), len(group))
        leaves = None if member["active"] else moment(member["updated_at"]).astimezone(AMSTERDAM).date()
        contracts = _contracts(rng, member["role"], first_day, last_day)
        away = _days_away(rng, first_day, last_day)
        day = first_day
        while day <= last_day:
            # Draw for every day, worked or not, so one day's outcome never shifts the next day's dice.
            published = _published(rng, day)
            weekday = opening_weekday(day)
            hours = None
            if weekday is not None and day not in holidays and day not in away:
                if leaves is None or day <= leaves:
                    hours = _hours(contracts, day, weekday, saturday_turn)
            appointments = booked.get((member["id"], day))
            if appointments is not None:
                hours, published = _cover(hours, appointments, weekday, published)
            if hours is not None:
                shifts.append(_shift(member["id"], day, hours, min(published, anchor)))
            day += dt.timedelta(days=1)
    shifts.sort(key=lambda s: (s["date"], s["start"], s["staff_id"]))
    return shifts


@dataclass(frozen=True)
class _Booked:
    """A staff member's appointments on one day: the span they need, and when the first was booked."""

    first_start: dt.datetime
    last_end: dt.datetime
    first_booked: str  # a `ts` timestamp: their order is time order, and most are never needed as instants


def _booked_days(agenda: list[Record]) -> dict[tuple[int, dt.date], _Booked]:
    days: dict[tuple[int, dt.date], _Booked] = {}
    for appointment in agenda:
        if appointment["resource_type"] != "staff" or appointment["status"] == "cancelled":
            continue
        start = dt.datetime.fromisoformat(appointment["start"])
        end = dt.datetime.fromisoformat(appointment["end"])
        booked = appointment["booked_at"]
        key = (appointment["resource_id"], start.date())
        seen = days.get(key)
        if seen is not None:
            start, end = min(start, seen.first_start), max(end, seen.last_end)
            booked = min(booked, seen.first_booked)
        days[key] = _Booked(start, end, booked)
    return days


def _contracts(rng: random.Random, role: str, first_day: dt.date, last_day: dt.date) -> list[_Contract]:
    """One to three consecutive contracts: the pattern changes on a Monday somewhere in the window."""
    span = (last_day - first_day).days
    starts = sorted(
        first_day + dt.timedelta(days=rng.randrange(max(1, span))) for _ in range(rng.randint(0, 2))
    )
    starts = [first_day] + [d - dt.timedelta(days=d.weekday()) for d in starts]
    contracts = []
    for start in starts:
        weekdays = sorted(rng.sample(range(5), rng.choice(ROLE_DAYS[role])))
        hours = rng.choice(ROLE_HOURS[role])
        contracts.append(_Contract(start, dict.fromkeys(weekdays, hours)))
    return contracts


def _days_away(rng: random.Random, first_day: dt.date, last_day: dt.date) -> set[dt.date]:
    """Holidays and sick days: per year a summer holiday of two or three weeks, one other week off, and sick
    spells of one to five days."""
    away: set[dt.date] = set()
    for year in range(first_day.year, last_day.year + 1):
        summer = dt.date.fromisocalendar(year, rng.randint(27, 32), 1)
        away.update(summer + dt.timedelta(days=i) for i in range(7 * rng.choice([2, 3])))
        other = dt.date.fromisocalendar(year, rng.choice([9, 17, 18, 43, 52]), 1)
        away.update(other + dt.timedelta(days=i) for i in range(7))
    day = first_day
    while day <= last_day:
        if rng.random() < SICK_SPELL_START:
            away.update(day + dt.timedelta(days=i) for i in range(rng.randint(1, 5)))
        day += dt.timedelta(days=1)
    return away


def _hours(
    contracts: list[_Contract], day: dt.date, weekday: int, saturday_turn: tuple[int, int]
) -> Hours | None:
    if weekday == SATURDAY:
        position, size = saturday_turn
        return SATURDAY_HOURS if day.isocalendar().week % size == position else None
    contract = next(c for c in reversed(contracts) if c.first_day <= day)
    return contract.days.get(weekday)


def _cover(
    hours: Hours | None, booked: _Booked, weekday: int | None, published: dt.datetime
) -> tuple[Hours, dt.datetime]:
    """Hours that cover the day's appointments: the planned shift stretched, or an extra shift on a day off
    (the role's usual day, or Saturday morning). Changed shifts were changed when the first patient was booked."""
    planned = hours
    if hours is None:
        hours = SATURDAY_HOURS if weekday == SATURDAY else ROLE_HOURS["vet"][0]
    first = (booked.first_start - LEAD_IN).astimezone(AMSTERDAM)
    last = booked.last_end.astimezone(AMSTERDAM)
    starts = min(hours[0], _quarter(first.time(), up=False))
    ends = max(hours[1], _quarter(last.time(), up=True))
    if (starts, ends) != planned:
        published = max(published, moment(booked.first_booked))
    return (starts, ends), published


def _quarter(clock_time: dt.time, *, up: bool) -> dt.time:
    minutes = clock_time.hour * 60 + clock_time.minute + (clock_time.second > 0)
    minutes = (minutes + 14) // 15 * 15 if up else minutes // 15 * 15
    minutes = min(minutes, 23 * 60 + 45)
    return dt.time(minutes // 60, minutes % 60)


def _published(rng: random.Random, day: dt.date) -> dt.datetime:
    """When the roster holding ``day`` was published: the Monday four weeks before its week, office hours."""
    monday = day - dt.timedelta(days=day.weekday()) - PUBLISHED_AHEAD
    return dt.datetime.combine(monday, dt.time(10, 0), AMSTERDAM) + dt.timedelta(minutes=rng.randrange(360))


def _shift(staff_id: int, day: dt.date, hours: Hours, updated: dt.datetime) -> Record:
    return {
        "updated_at": ts(updated),
        "staff_id": staff_id,
        "date": day.isoformat(),
        "start": dt.datetime.combine(day, hours[0], AMSTERDAM).isoformat(),
        "end": dt.datetime.combine(day, hours[1], AMSTERDAM).isoformat(),
    }


def _public_holidays(first_year: int, last_year: int) -> set[dt.date]:
    """Dutch public holidays on which a practice is closed but for emergencies."""
    days: set[dt.date] = set()
    for year in range(first_year, last_year + 1):
        easter = _easter(year)
        kings_day = dt.date(year, 4, 27)
        if kings_day.weekday() == 6:  # Koningsdag moves to the Saturday before when the 27th is a Sunday
            kings_day -= dt.timedelta(days=1)
        days |= {dt.date(year, 1, 1), dt.date(year, 12, 25), dt.date(year, 12, 26), kings_day}
        days |= {easter + dt.timedelta(days=n) for n in (1, 39, 50)}  # Easter Monday, Ascension, Whit Monday
    return days


def _easter(year: int) -> dt.date:
    """Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)
