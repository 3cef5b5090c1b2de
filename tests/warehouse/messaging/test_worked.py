"""Did a reminder work, on real rows: sent, then a booking on day 29 → worked; on day 31 → not; never sent (or
bounced) → not, whatever followed; the vaccine given after the send → worked. The practice dashboard's reminder
compliance counts exactly those, after the marts' incremental refresh."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY, drop_database, open_database
from tests.factories import build_world
from tests.messages_support import Owner, add_owner
from warehouse.kernel.tenancy import AccessContext
from warehouse.marts import kpis
from warehouse.marts.refresh import refresh_practice
from warehouse.messaging.worked import settle_worked

NOW = dt.datetime.now(dt.UTC)
SENT = NOW - dt.timedelta(days=40)  # every window below has closed
slots = itertools.count()


@pytest.fixture(scope="module")
def db(server_url, template_db):
    database = open_database(server_url, template_db)
    with database.system() as session:
        database.world = build_world(session, MASTER_KEY)
    yield database
    database.dispose()
    drop_database(server_url, database.name)


def _owner(db, code: str, name: str) -> Owner:
    with db.system() as session:
        return add_owner(session, db.world.practices[code], MASTER_KEY, name, email=f"{name}@example.nl",
                         consents=("reminders_email",), due_in_days=-20)  # fmt: skip


def _message(db, code: str, owner: Owner, state: str, sent_at: dt.datetime | None) -> None:
    with db.system() as session:
        session.execute(
            text("INSERT INTO message_outbox (practice_id, kind, client_id, patient_id, reminder_id, channel, subject, "
                 "body, state, sent_at) VALUES (:p, 'vaccination_reminder', :c, :pa, :r, 'email', 'Vaccinatie', "
                 "'Beste klant', :state, :sent)"),
            {"p": db.world.practices[code].practice_id, "c": owner.client_id, "pa": owner.patient_id,
             "r": owner.reminder_id, "state": state, "sent": sent_at},
        )  # fmt: skip


def _booking(db, code: str, owner: Owner, booked_at: dt.datetime) -> None:
    rows = db.world.practices[code]
    starts = dt.datetime(2027, 3, 1, 8, tzinfo=dt.UTC) + dt.timedelta(minutes=30 * next(slots))
    with db.system() as session:
        session.execute(
            text("INSERT INTO appointment (practice_id, resource_id, patient_id, client_id, starts_at, ends_at, "
                 "status, booked_at) VALUES (:p, :res, :pa, :c, :s, :s + interval '20 minutes', 'booked', :b)"),
            {"p": rows.practice_id, "res": rows.resource_id, "pa": owner.patient_id, "c": owner.client_id,
             "s": starts, "b": booked_at},
        )  # fmt: skip


def _dose(db, code: str, owner: Owner, given_on: dt.date, vaccine: str = "Nobivac L4") -> None:
    with db.system() as session:
        session.execute(
            text("INSERT INTO vaccination (practice_id, patient_id, vaccine_name, given_on, due_on) "
                 "VALUES (:p, :pa, :v, :g, :g + 365)"),
            {"p": db.world.practices[code].practice_id, "pa": owner.patient_id, "v": vaccine, "g": given_on},
        )  # fmt: skip


def _settle(db, code: str) -> dict[int, dt.datetime | None]:
    practice_id = db.world.practices[code].practice_id
    with db.as_app(AccessContext.for_practices([practice_id])) as session:
        settle_worked(session, practice_id, since=None)
        rows = session.execute(
            text("SELECT id, worked_at FROM reminder WHERE practice_id = :p"), {"p": practice_id}
        )
        return {row.id: row.worked_at for row in rows}


def test_a_booking_within_30_days_of_the_send_is_a_reminder_that_worked(db):
    day_29, day_31, not_sent, bounced, before = (_owner(db, "a1", n) for n in
                                                 ("dag29", "dag31", "nooit", "bounce", "ervoor"))  # fmt: skip
    for owner in (day_29, day_31, before):
        _message(db, "a1", owner, "sent", SENT)
    _message(db, "a1", bounced, "bounced", None)
    _booking(db, "a1", day_29, SENT + dt.timedelta(days=29))
    _booking(db, "a1", day_31, SENT + dt.timedelta(days=31))
    _booking(db, "a1", not_sent, SENT + dt.timedelta(days=2))
    _booking(db, "a1", bounced, SENT + dt.timedelta(days=2))
    _booking(db, "a1", before, SENT - dt.timedelta(hours=1))  # booked before the reminder: not its doing

    worked = _settle(db, "a1")

    assert worked[day_29.reminder_id] == SENT + dt.timedelta(days=29)
    assert [worked[o.reminder_id] for o in (day_31, not_sent, bounced, before)] == [None] * 4


def test_the_vaccine_given_after_the_send_or_a_send_from_animana_counts_too(db):
    vaccinated, other_vaccine, from_animana = (_owner(db, "a2", n) for n in ("prik", "andere", "animana"))
    _message(db, "a2", vaccinated, "delivered", SENT)
    _message(db, "a2", other_vaccine, "sent", SENT)
    _dose(db, "a2", vaccinated, (SENT + dt.timedelta(days=10)).date())
    _dose(db, "a2", other_vaccine, (SENT + dt.timedelta(days=10)).date(), vaccine="Nobivac DHP")
    with db.system() as session:  # sent by Animana: no message here, the reminder's own send time
        session.execute(text("UPDATE reminder SET status = 'sent', sent_at = :s WHERE id = :r"),
                        {"s": SENT, "r": from_animana.reminder_id})  # fmt: skip
    _booking(db, "a2", from_animana, SENT + dt.timedelta(days=3))

    worked = _settle(db, "a2")

    # A dose has a day, not a time: it worked at the start of that day, the practice's time.
    given = (SENT + dt.timedelta(days=10)).date()
    assert worked[vaccinated.reminder_id] == dt.datetime.combine(
        given, dt.time(), ZoneInfo("Europe/Amsterdam")
    )
    assert worked[other_vaccine.reminder_id] is None
    assert worked[from_animana.reminder_id] == SENT + dt.timedelta(days=3)


def test_the_dashboards_reminder_compliance_counts_the_reminders_that_worked(db):
    rows = db.world.practices["b1"]
    context = AccessContext.for_practices([rows.practice_id])
    with db.as_app(context) as session:
        refresh_practice(session, rows.practice_id, full=True)
    booked, silent, unsent = (_owner(db, "b1", n) for n in ("geboekt", "stil", "onverstuurd"))
    due = (NOW - dt.timedelta(days=20)).date()
    for owner in (booked, silent):
        _message(db, "b1", owner, "sent", NOW - dt.timedelta(days=5))
    _booking(db, "b1", unsent, NOW - dt.timedelta(days=1))
    with db.as_app(context) as session:
        refresh_practice(session, rows.practice_id)  # incremental: the messages do not mark the day
        before = kpis.combined(kpis.period_totals(session, [rows.practice_id], due, due))
    assert (before["reminders_due"], before["reminders_done"], before["reminder_compliance"]) == (3, 0, 0.0)

    _booking(db, "b1", booked, NOW - dt.timedelta(days=1))
    with db.as_app(context) as session:
        refresh_practice(
            session, rows.practice_id
        )  # the booking marks its own day; the settling marks this one
        after = kpis.combined(kpis.period_totals(session, [rows.practice_id], due, due))
        tiles = {t.kpi.key: t.value for t in kpis.overview(session, [rows.practice_id], due, due).tiles}
    assert (after["reminders_due"], after["reminders_done"]) == (3, 1)
    assert after["reminder_compliance"] == pytest.approx(1 / 3)
    assert tiles["reminder_compliance"] == pytest.approx(1 / 3)
