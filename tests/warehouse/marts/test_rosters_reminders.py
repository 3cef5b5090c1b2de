"""Rosters and vaccination reminders: VetConnect's own data behind utilisation and reminder compliance for
practices loaded from Animana (which delivers neither)."""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from conftest import TODAY
from sqlalchemy import text
from typer.testing import CliRunner

from tests.animana_sync_support import MASTER_KEY
from vetconnect.cli import app
from vetconnect.settings import get_settings
from warehouse.kernel.tenancy import AccessContext
from warehouse.marts.refresh import refresh_all
from warehouse.records.reminders import generate_vaccination_reminders
from warehouse.scheduling.rosters import RosterError, WeeklyShift, create_roster, parse_week
from warehouse.schema.scheduling import Resource
from warehouse.tenants.admin import add_franchise, add_practice

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_week_notation_is_parsed_into_one_shift_per_weekday():
    week = parse_week(["mon-wed,fri 08:00-18:30", "sat 9:00-13:00"])
    assert [(s.weekday, s.starts, s.ends) for s in week] == [
        *((d, dt.time(8), dt.time(18, 30)) for d in (1, 2, 3, 5)),
        (6, dt.time(9), dt.time(13)),
    ]
    for bad in (["mon 18:00-08:00"], ["fri-mon 08:00-12:00"], ["mon 08:00-12:00", "mon 13:00-17:00"],
                ["maandag 08:00-12:00"], ["mon 25:00-26:00"]):  # fmt: skip
        with pytest.raises(RosterError):
            parse_week(bad)


def _shifts(session, resource_id: int) -> list[tuple[dt.datetime, dt.datetime]]:  # noqa: ANN001
    return [
        (a.astimezone(AMSTERDAM).replace(tzinfo=None), b.astimezone(AMSTERDAM).replace(tzinfo=None))
        for a, b in session.execute(
            text("SELECT starts_at, ends_at FROM staff_shift WHERE resource_id = :r ORDER BY starts_at"),
            {"r": resource_id},
        )
    ]


def test_a_roster_lays_local_shifts_over_the_range_across_dst_fills_only_gaps_and_stays_in_its_practice(
    fresh_db,
):
    with fresh_db.system() as session:
        franchise = add_franchise(session, code="fr-roster", name="Roster")
        mine, other = (
            add_practice(session, franchise_id=franchise.id, code=c, name=c, master_key=MASTER_KEY)
            for c in ("roster-a", "roster-b")
        )
        vet, room, foreign = (Resource(practice_id=mine.id, kind="staff", name="Vet"),
                              Resource(practice_id=mine.id, kind="room", name="Room"),
                              Resource(practice_id=other.id, kind="staff", name="Elsewhere"))  # fmt: skip
        session.add_all([vet, room, foreign])
        session.flush()
        ids = (mine.id, other.id, vet.id, room.id, foreign.id)
    mine_id, other_id, vet_id, room_id, foreign_id = ids
    week = parse_week(["mon-fri 08:00-18:30", "sat 09:00-13:00"])
    # 19 Oct – 1 Nov 2026: two weeks, clocks go back on 25 Oct (CEST → CET).
    first, last = dt.date(2026, 10, 19), dt.date(2026, 11, 1)
    with fresh_db.as_app(AccessContext.for_practices([mine_id])) as session:
        created = create_roster(session, practice_id=mine_id, resource_ids=[vet_id, room_id], week=week,
                                first_day=first, last_day=last)  # fmt: skip
        assert created == 2 * 6 * 2  # weeks × working days × resources; Sundays off
        shifts = _shifts(session, vet_id)
        assert shifts[4] == (dt.datetime(2026, 10, 23, 8), dt.datetime(2026, 10, 23, 18, 30))  # CEST Friday
        assert shifts[5] == (dt.datetime(2026, 10, 24, 9), dt.datetime(2026, 10, 24, 13))  # Saturday
        assert shifts[6] == (dt.datetime(2026, 10, 26, 8), dt.datetime(2026, 10, 26, 18, 30))  # CET Monday
        utc_starts = session.scalars(
            text("SELECT extract(hour FROM starts_at AT TIME ZONE 'UTC')::int FROM staff_shift "
                 "WHERE resource_id = :r AND starts_at::date IN ('2026-10-23', '2026-10-26') ORDER BY 1"),
            {"r": vet_id},
        ).all()  # fmt: skip
        assert utc_starts == [6, 7]
        # Again: nothing new. Extended by a week, with a hand-made shift on the Monday: only the gaps.
        assert create_roster(session, practice_id=mine_id, resource_ids=[vet_id, room_id], week=week,
                             first_day=first, last_day=last) == 0  # fmt: skip
        session.execute(
            text("INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at) VALUES "
                 "(:p, :r, '2026-11-02 10:00+01', '2026-11-02 12:00+01')"),
            {"p": mine_id, "r": vet_id},
        )  # fmt: skip
        assert create_roster(session, practice_id=mine_id, resource_ids=[vet_id, room_id], week=week,
                             first_day=first, last_day=last + dt.timedelta(days=7)) == 2 * 6 - 1  # fmt: skip
        with pytest.raises(RosterError, match="not resources of practice"):
            create_roster(session, practice_id=mine_id, resource_ids=[foreign_id], week=week,
                          first_day=first, last_day=last)  # fmt: skip
        with pytest.raises(RosterError):
            create_roster(session, practice_id=mine_id, resource_ids=[vet_id], week=week,
                          first_day=last, last_day=first)  # fmt: skip
    # Under the other practice's context the first practice's resources do not exist.
    with fresh_db.as_app(AccessContext.for_practices([other_id])) as session:
        with pytest.raises(RosterError):
            create_roster(session, practice_id=mine_id, resource_ids=[vet_id], week=week,
                          first_day=first, last_day=last)  # fmt: skip
        assert session.scalar(text("SELECT count(*) FROM staff_shift")) == 0
    with pytest.raises(RosterError):
        WeeklyShift(8, dt.time(8), dt.time(9))


def test_reminders_follow_the_vaccinations_once_each_and_the_mart_counts_a_renewal_within_30_days(mart_world):
    db, practice = mart_world.db, mart_world.practices[0].practice_id
    context = AccessContext.for_practices([practice])
    with db.as_app(context) as session:
        # A practice that keeps no reminders in Animana: the synced ones go, and VetConnect generates its own
        # (where Animana has one, none is generated: tests/warehouse/scheduling/test_synced_schedule_wins.py).
        session.execute(
            text("DELETE FROM reminder WHERE practice_id = :p AND animana_id IS NOT NULL"), {"p": practice}
        )
        assert generate_vaccination_reminders(session, practice, today=TODAY).created > 20
    refresh_all(db.app_engine, db.admin_engine)
    with db.as_app(context) as session:
        # One reminder per vaccination whose send date (due − 14 days without a template) has come, unless it
        # was renewed before that date or the patient had died.
        expected = session.scalar(
            text("""SELECT count(*) FROM vaccination v JOIN patient pa ON pa.practice_id = v.practice_id
                      AND pa.id = v.patient_id
                    WHERE v.practice_id = :p AND v.due_on - 14 <= :today
                      AND NOT (pa.deceased AND (pa.deceased_on IS NULL OR pa.deceased_on <= v.due_on - 14))
                      AND NOT EXISTS (SELECT 1 FROM vaccination w WHERE w.practice_id = v.practice_id
                        AND w.patient_id = v.patient_id AND w.vaccine_name = v.vaccine_name AND w.id <> v.id
                        AND w.given_on > v.given_on AND w.given_on < v.due_on - 14)"""),
            {"p": practice, "today": TODAY},
        )  # fmt: skip
        counts = session.execute(
            text("SELECT count(*), count(DISTINCT vaccination_id), count(*) FILTER (WHERE due_on - 14 > :today), "
                 "count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE client_id IS NULL) "
                 "FROM reminder WHERE practice_id = :p AND animana_id IS NULL"),  # VetConnect's own
            {"p": practice, "today": TODAY},
        ).one()  # fmt: skip
        assert expected > 20 and counts[0] == counts[1] == expected
        assert counts[2] == 0 and counts[3] > 0 and counts[4] < counts[0]
        assert generate_vaccination_reminders(session, practice, today=TODAY).created == 0  # idempotent
        # A pending reminder whose booster is now given 10 days after its due date: closed, and worked in the mart.
        pending = session.execute(
            text("SELECT r.id, r.due_on, v.patient_id, v.vaccine_name FROM reminder r JOIN vaccination v "
                 "ON v.practice_id = r.practice_id AND v.id = r.vaccination_id WHERE r.practice_id = :p "
                 "AND r.status = 'pending' AND r.due_on <= :today - 10 ORDER BY r.due_on DESC LIMIT 1"),
            {"p": practice, "today": TODAY},
        ).one()  # fmt: skip
        before = session.execute(
            text("SELECT reminders_due, reminders_done FROM mart_practice_day WHERE practice_id = :p AND day = :d"),
            {"p": practice, "d": pending.due_on},
        ).one()  # fmt: skip
        # It reached the owner by e-mail 14 days before the due date (a reminder never sent cannot work).
        session.execute(
            text("INSERT INTO message_outbox (practice_id, kind, client_id, patient_id, reminder_id, channel, "
                 "state, sent_at) SELECT practice_id, 'vaccination_reminder', client_id, patient_id, id, 'email', "
                 "'sent', CAST(due_on - 14 AS timestamptz) FROM reminder WHERE practice_id = :p AND id = :r"),
            {"p": practice, "r": pending.id},
        )  # fmt: skip
        session.execute(
            text("INSERT INTO vaccination (practice_id, patient_id, vaccine_name, given_on, due_on) "
                 "VALUES (:p, :patient, :name, :given, :given + 365)"),
            {"p": practice, "patient": pending.patient_id, "name": pending.vaccine_name,
             "given": pending.due_on + dt.timedelta(days=10)},
        )  # fmt: skip
        run = generate_vaccination_reminders(session, practice, today=TODAY)
        assert run.closed >= 1
        assert session.scalar(text("SELECT status FROM reminder WHERE id = :r"), {"r": pending.id}) == "done"
    refresh_all(db.app_engine, db.admin_engine)  # incremental: the vaccination marked the days around it
    with db.as_app(context) as session:
        after = session.execute(
            text("SELECT reminders_due, reminders_done FROM mart_practice_day WHERE practice_id = :p AND day = :d"),
            {"p": practice, "d": pending.due_on},
        ).one()  # fmt: skip
    assert (after.reminders_due, after.reminders_done) == (before.reminders_due, before.reminders_done + 1)


def test_cli_rosters_named_resources_and_generates_reminders_for_every_practice(
    mart_world, monkeypatch, tmp_path
):
    db, practice = mart_world.db, mart_world.practices[0]
    for key, value in {"DATABASE_URL": db.admin_url, "VETCONNECT_HOME": str(tmp_path),
                       "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode()}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    with db.system() as session:
        name = session.scalar(
            # A room: the staff's shifts come from Animana's werkrooster, which rosters leave alone.
            text(
                "SELECT name FROM resource WHERE practice_id = :p AND active AND starts_with(animana_id, 'resource:') "
                "ORDER BY id LIMIT 1"
            ),
            {"p": practice.practice_id},
        )
    # After the synced agenda ends: two weeks of Monday/Thursday mornings for one resource.
    args = ["schedule", "roster", "--practice", practice.code, "--week", "mon,thu 08:00-12:00",
            "--from", "2027-01-04", "--to", "2027-01-17", "--resource", name]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"{practice.code}: 4 shift(s) created for 1 resource(s)" in result.output
    assert "0 shift(s)" in runner.invoke(app, args).output  # again: nothing new
    with db.system() as session:
        staff = session.scalar(text("SELECT name FROM resource WHERE practice_id = :p AND active "
                                    "AND starts_with(animana_id, 'staff:') ORDER BY id LIMIT 1"), {"p": practice.practice_id})  # fmt: skip
    synced = runner.invoke(
        app, [*args[:-1], staff]
    )  # a staff member whose shifts Animana's werkrooster holds
    assert synced.exit_code == 0 and f"{practice.code}: 0 shift(s) created for 1 resource(s)" in synced.output
    assert f"left to Animana's werkrooster (synced): {staff}" in synced.output
    wrong = runner.invoke(app, [*args[:-1], "Nobody"])
    assert wrong.exit_code == 1 and "no active resource named 'Nobody'" in wrong.output
    bad = runner.invoke(app, [*args[:5], "sun 18:00-08:00", *args[6:]])
    assert bad.exit_code == 1 and "ends after it starts" in bad.output

    generated = runner.invoke(app, ["reminders", "generate", "--all"])
    assert generated.exit_code == 0, generated.output
    lines = sorted(generated.output.strip().splitlines())
    assert [line.split(":")[0] for line in lines] == sorted(p.code for p in mart_world.practices)
    assert all("reminder(s) created" in line for line in lines)
    again = runner.invoke(app, ["reminders", "generate", "--practice", practice.code])
    assert f"{practice.code}: 0 reminder(s) created, 0 closed" in again.output
    get_settings.cache_clear()
