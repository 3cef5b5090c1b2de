"""The practice's own local time: its day, its clock, from ``tenant.timezone``.

Appointments, shifts and visits are stored in UTC; "today", "the day's schedule" and every time a user reads
are the practice's local ones. Most practices are Dutch (``Europe/Amsterdam``, the column's default), but a
franchise can have practices elsewhere, the Dutch Caribbean included (``America/Curacao``), so the zone is
always looked up for the practice, never assumed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

# A practice's zone is set when it is onboarded and nothing in VetConnect changes it later (the application
# role may update only the practice's invoice details, migration 0350), so a zone once looked up stays valid
# for the process. Bounded: a server sees a few hundred practices; beyond that the least used go first.
MAX_CACHED_ZONES = 4096
_zones: OrderedDict[tuple[str, int], ZoneInfo] = OrderedDict()
_zones_lock = threading.Lock()


def _database(session: Session) -> str:
    """Which database the session reads (without the user): practice ids are only unique within one."""
    url = session.get_bind().engine.url
    return url.set(username=None, password=None).render_as_string(hide_password=True)


def practice_zone(session: Session, practice_id: int) -> ZoneInfo:
    """The practice's time zone (``tenant.timezone``); raises :class:`LookupError` when the practice is not
    visible to the session (RLS), rather than guessing a zone."""
    key = (_database(session), practice_id)
    with _zones_lock:
        zone = _zones.get(key)
        if zone is not None:
            _zones.move_to_end(key)
            return zone
    name = session.scalar(
        text("SELECT timezone FROM tenant WHERE id = :p AND kind = 'practice'"), {"p": practice_id}
    )
    if name is None:
        raise LookupError(f"practice {practice_id} does not exist or is not visible here")
    zone = ZoneInfo(name)
    with _zones_lock:
        _zones[key] = zone
        while len(_zones) > MAX_CACHED_ZONES:
            _zones.popitem(last=False)
    return zone


def local_day_bounds(day: dt.date, zone: ZoneInfo, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight at the start of ``day`` and ``days`` days later, in ``zone`` (a day with a DST change
    is 23 or 25 hours long)."""
    start = dt.datetime.combine(day, dt.time(0), zone)
    return start, dt.datetime.combine(day + dt.timedelta(days=days), dt.time(0), zone)


def practice_today(session: Session, practice_id: int, now: dt.datetime | None = None) -> dt.date:
    """The practice's local date at ``now`` (default: this moment)."""
    zone = practice_zone(session, practice_id)
    return (now or dt.datetime.now(dt.UTC)).astimezone(zone).date()
