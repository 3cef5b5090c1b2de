"""The demo's first day is a working day even at a weekend (the simulator keeps it open), so its shifts must
be there too, or utilisation would divide that day's consults by nothing."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from conftest import TODAY
from sqlalchemy import text

from vetconnect.demo import roster_and_remind
from warehouse.kernel.tenancy import AccessContext
from warehouse.scheduling.rosters import agenda_spans

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_a_weekend_open_day_gets_weekday_shifts_once(mart_world):
    db, practice = mart_world.db, mart_world.practices[0]
    sunday = TODAY
    assert sunday.isoweekday() == 7
    shifts = (
        "SELECT resource_id, starts_at, ends_at FROM staff_shift"
        " WHERE (starts_at AT TIME ZONE 'Europe/Amsterdam')::date = :d"
    )
    with db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        assert session.execute(text(shifts), {"d": sunday}).all() == []  # the standard week has no Sunday
        # The staff's shifts come from Animana's werkrooster (synced): VetConnect rosters the rest (the rooms).
        synced_staff = set(session.scalars(text(
            "SELECT DISTINCT resource_id FROM staff_shift WHERE practice_id = :p AND animana_id IS NOT NULL"),
            {"p": practice.practice_id}))  # fmt: skip
        resources = {span.resource_id for span in agenda_spans(session, practice.practice_id)} - synced_staff
    assert resources and synced_staff
    first = roster_and_remind(db.app_engine, db.admin_engine, [practice.code], today=TODAY, open_day=sunday)
    again = roster_and_remind(db.app_engine, db.admin_engine, [practice.code], today=TODAY, open_day=sunday)
    assert first[0].shifts_created == len(resources) and again[0].shifts_created == 0
    with db.as_app(AccessContext.for_practices([practice.practice_id])) as session:
        rows = session.execute(text(shifts), {"d": sunday}).all()
    assert {r.resource_id for r in rows} == resources
    local = {(r.starts_at.astimezone(AMSTERDAM).time(), r.ends_at.astimezone(AMSTERDAM).time()) for r in rows}
    assert local == {(dt.time(8), dt.time(18, 30))}
