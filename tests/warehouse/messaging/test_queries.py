"""What people read about messages, from real outbox rows in every state: a client's messages newest first with
the reason in words, the delivery report per local day × kind × channel × state with its totals, the problem
list with the owner's name and phone; only the practice's own; queueing on request needs the permission."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from tests.factories import TZ, build_world
from tests.message_views_support import add_message
from tests.messages_support import add_owner
from warehouse.kernel.tenancy import AccessContext
from warehouse.messaging.on_request import queue_due_now
from warehouse.messaging.queries import client_messages, delivery_report, problem_messages, waiting
from warehouse.security.permissions import Actor, NotPermitted

FIRST, LAST = dt.date(2026, 11, 30), dt.date(2026, 12, 3)
BOUNCE = "The mail server refused the address: 550 5.1.1 Mailbox unavailable"
GAVE_UP = "Gave up after 8 attempts: The SMS gateway answered 503"
NO_CONSENT = "No consent for reminders by e-mail or SMS"
RETRYING = "The mail server could not be reached: SMTPServerDisconnected"
NO_NUMBER = "The client has no valid mobile number any more"
MINUTE = dt.timedelta(minutes=1)


def local(day: int, hour: int, minute: int = 0, month: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=TZ)


@pytest.fixture(scope="module")
def world(server_url, template_db):
    from tests.conftest import drop_database, open_database

    db = open_database(server_url, template_db)
    with db.system() as session:
        db.world = build_world(session, MASTER_KEY)
        a1, b1 = db.world.practices["a1"], db.world.practices["b1"]
        alfa = add_owner(session, a1, MASTER_KEY, "Alfa", email="alfa@example.nl", phone="0612345678")
        bravo = add_owner(session, a1, MASTER_KEY, "Bravo", email="bravo@example.nl")
        other = add_owner(session, b1, MASTER_KEY, "Elders", email="elders@example.nl")
        p = a1.practice_id
        db.ids = {
            "outside": add_message(session, p, alfa, "sent", queued_at=local(29, 12, month=11), sent_after=MINUTE),
            "delivered": add_message(session, p, alfa, "delivered", channel="sms", queued_at=local(1, 9),
                                     sent_after=MINUTE, finished_after=2 * MINUTE),
            "sent": add_message(session, p, alfa, "sent", kind="appointment_confirmation", queued_at=local(1, 12),
                                sent_after=MINUTE),
            "bounced": add_message(session, p, alfa, "bounced", kind="overdue_reminder", queued_at=local(2, 10),
                                   finished_after=MINUTE, reason=BOUNCE),
            # 23:30 UTC on 2 December is 00:30 on the 3rd in Amsterdam: the practice's day counts.
            "skipped": add_message(session, p, alfa, "skipped", channel=None, reason=NO_CONSENT, attempts=0,
                                   queued_at=dt.datetime(2026, 12, 2, 23, 30, tzinfo=dt.UTC)),
            "failed": add_message(session, p, alfa, "failed", kind="no_show_follow_up", channel="sms",
                                  queued_at=local(3, 8), finished_after=120 * MINUTE, reason=GAVE_UP, attempts=8),
            "retrying": add_message(session, p, alfa, "queued", kind="appointment_day_before", queued_at=local(3, 9),
                                    last_error=RETRYING, attempts=2),
            "no_number": add_message(session, p, bravo, "bounced", channel="sms", queued_at=local(1, 11),
                                     finished_after=MINUTE, reason=NO_NUMBER),
            "elsewhere": add_message(session, b1.practice_id, other, "bounced", queued_at=local(1, 9),
                                     finished_after=MINUTE, reason=BOUNCE),
        }  # fmt: skip
        db.alfa, db.bravo = alfa, bravo
    yield db
    db.dispose()
    drop_database(server_url, db.name)


def _as(db, practice_id):
    return db.as_app(AccessContext.for_practices([practice_id]))


def test_a_clients_messages_newest_first_with_when_and_why_in_words(world):
    a1 = world.world.practices["a1"]
    with _as(world, a1.practice_id) as session:
        shown = client_messages(session, a1.practice_id, world.alfa.client_id)
    ids = world.ids
    assert shown["id"].to_list() == [ids[k] for k in ("retrying", "failed", "skipped", "bounced", "sent",
                                                         "delivered", "outside")]  # fmt: skip
    by_id = {row["id"]: row for row in shown.iter_rows(named=True)}
    delivered = by_id[ids["delivered"]]
    assert (delivered["kind_label"], delivered["channel_label"], delivered["state_label"]) == (
        "Vaccination reminder", "SMS", "Delivered",
    )  # fmt: skip
    assert delivered["queued_at"] == local(1, 9)
    assert (delivered["sent_at"], delivered["delivered_at"]) == (local(1, 9, 1), local(1, 9, 2))
    assert by_id[ids["sent"]]["delivered_at"] is None  # a mail server does not report delivery
    assert by_id[ids["bounced"]]["why"] == BOUNCE
    assert by_id[ids["skipped"]]["why"] == NO_CONSENT
    assert by_id[ids["skipped"]]["state_label"] == "Not sent"
    assert by_id[ids["failed"]]["why"] == GAVE_UP
    assert by_id[ids["retrying"]]["why"] == f"Will be retried: {RETRYING}"
    assert by_id[ids["sent"]]["why"] is None and by_id[ids["delivered"]]["why"] is None
    assert by_id[ids["sent"]]["patient"] == "Rex Alfa"


def test_another_practice_sees_none_of_the_clients_messages(world):
    a1, b1 = world.world.practices["a1"], world.world.practices["b1"]
    with _as(world, b1.practice_id) as session:
        assert client_messages(session, a1.practice_id, world.alfa.client_id).height == 0


def test_the_delivery_report_counts_per_local_day_kind_channel_and_state(world):
    a1 = world.world.practices["a1"]
    with _as(world, a1.practice_id) as session:
        report = delivery_report(session, a1.practice_id, FIRST, LAST)
    assert report.totals == {"queued": 1, "sending": 0, "sent": 1, "delivered": 1, "bounced": 2, "failed": 1,
                             "skipped": 1}  # fmt: skip
    assert report.total == 7  # the 29 November message and b1's are not in it
    rows = {
        (r["day"], r["kind"], r["channel"], r["state"]): r["messages"]
        for r in report.rows.iter_rows(named=True)
    }
    assert rows[(dt.date(2026, 12, 3), "vaccination_reminder", None, "skipped")] == 1
    assert rows[(dt.date(2026, 12, 1), "vaccination_reminder", "sms", "bounced")] == 1
    assert rows[(dt.date(2026, 12, 1), "vaccination_reminder", "sms", "delivered")] == 1
    per_day = report.per_day()
    assert per_day["day"].to_list() == [dt.date(2026, 11, 30) + dt.timedelta(days=n) for n in range(4)]
    assert per_day.drop("day").rows() == [
        # sent, delivered, bounced, failed, skipped
        (0, 0, 0, 0, 0),
        (1, 1, 1, 0, 0),
        (0, 0, 1, 0, 0),
        (0, 0, 0, 1, 1),
    ]


def test_an_empty_period_reports_zero_every_day(world):
    a1 = world.world.practices["a1"]
    with _as(world, a1.practice_id) as session:
        report = delivery_report(session, a1.practice_id, dt.date(2026, 1, 1), dt.date(2026, 1, 2))
    assert report.total == 0
    assert report.per_day().drop("day").rows() == [(0, 0, 0, 0, 0)] * 2


def test_the_problem_list_names_the_owner_their_phone_and_why(world):
    a1 = world.world.practices["a1"]
    with _as(world, a1.practice_id) as session:
        problems = problem_messages(session, a1.practice_id, FIRST, LAST, master_key=MASTER_KEY)
    assert problems.select("client", "phone", "state_label", "why").rows() == [
        ("A. Alfa", "0612345678", "Failed", GAVE_UP),
        ("A. Alfa", "0612345678", "Not sent", NO_CONSENT),
        ("A. Alfa", "0612345678", "Bounced", BOUNCE),
        ("A. Bravo", None, "Bounced", NO_NUMBER),
    ]
    assert problems["at"][0] == local(3, 10)  # when it failed for good, not when it was queued


def test_what_waits_for_the_sender(world):
    a1 = world.world.practices["a1"]
    with _as(world, a1.practice_id) as session:
        found = waiting(session, a1.practice_id)
    assert (found.messages, found.oldest) == (1, local(3, 9))


def test_queueing_on_request_needs_the_permission_to_write_clients(world):
    a2 = world.world.practices["a2"]
    with world.system() as session:
        add_owner(
            session, a2, MASTER_KEY, "Charlie", email="charlie@example.nl", consents=("reminders_email",)
        )
    now = dt.datetime.now(dt.UTC)
    with _as(world, a2.practice_id) as session, pytest.raises(NotPermitted):
        queue_due_now(session, Actor.at(a2.user_id, a2.practice_id, {"analyst"}), a2.practice_id, now=now)
    with _as(world, a2.practice_id) as session:
        run = queue_due_now(
            session, Actor.at(a2.user_id, a2.practice_id, {"receptionist"}), a2.practice_id, now=now
        )
    assert run.queued >= 1
    with world.system() as session:
        states = session.execute(
            text("SELECT m.state FROM message_outbox m JOIN client c ON c.practice_id = m.practice_id "
                 "AND c.id = m.client_id WHERE m.practice_id = :p AND c.last_name = 'Charlie'"),
            {"p": a2.practice_id},
        ).scalars().all()  # fmt: skip
    assert states == ["queued"]
