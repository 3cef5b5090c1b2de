"""Which messages are queued: consent and the preferred channel decide, templates render, generation is
idempotent; the channel rule as a property."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from tests.factories import build_world
from tests.messages_support import add_owner
from warehouse.kernel.tenancy import AccessContext
from warehouse.messaging.generate import CHANNEL_LABELS, choose_channel, generate_messages
from warehouse.messaging.render import fill


@pytest.fixture(scope="module")
def world(server_url, template_db):
    from tests.conftest import drop_database, open_database

    db = open_database(server_url, template_db)
    with db.system() as session:
        db.world = build_world(session, MASTER_KEY)
        session.execute(
            text(
                "UPDATE tenant SET phone = '020-1234567', booking_url = 'https://example.nl/boek' WHERE code = 'a1'"
            )
        )
    yield db
    db.dispose()
    drop_database(server_url, db.name)


def _generate(db, practice_id):
    with db.as_app(AccessContext.for_practices([practice_id])) as session:
        return generate_messages(session, practice_id, now=dt.datetime.now(dt.UTC))


def _messages(db, practice_id, client_id):
    with db.system() as session:
        return session.execute(
            text("SELECT kind, channel, state, reason, subject, body FROM message_outbox "
                 "WHERE practice_id = :p AND client_id = :c ORDER BY id"),
            {"p": practice_id, "c": client_id},
        ).all()  # fmt: skip


def test_consent_and_the_preferred_channel_decide_and_generation_is_idempotent(world):
    rows = world.world.practices["a1"]
    with world.system() as session:
        none = add_owner(session, rows, MASTER_KEY, "Geen", email="geen@example.nl", phone="0612345678")
        sms = add_owner(session, rows, MASTER_KEY, "Sms", email="sms@example.nl", phone="0612345671",
                        preferred="sms", consents=("reminders_email", "reminders_sms"))  # fmt: skip
        fallback = add_owner(session, rows, MASTER_KEY, "Terug", email="terug@example.nl", phone="0612345672",
                             preferred="sms", consents=("reminders_email",))  # fmt: skip
        no_phone = add_owner(session, rows, MASTER_KEY, "Zonder", email=None, phone=None,
                             consents=("reminders_sms",))  # fmt: skip
    first = _generate(world, rows.practice_id)
    assert (first.queued, first.skipped) == (2, 2)

    assert [(m.channel, m.state, m.reason) for m in _messages(world, rows.practice_id, none.client_id)] == [
        (None, "skipped", "No consent for reminders by e-mail or SMS")
    ]
    [by_sms] = _messages(world, rows.practice_id, sms.client_id)
    assert (by_sms.kind, by_sms.channel, by_sms.state) == ("vaccination_reminder", "sms", "queued")
    assert [m.channel for m in _messages(world, rows.practice_id, fallback.client_id)] == ["email"]
    assert [m.reason for m in _messages(world, rows.practice_id, no_phone.client_id)] == [
        "Consent for SMS, but no mobile number"
    ]

    again = _generate(world, rows.practice_id)
    assert (again.queued, again.skipped) == (0, 0)
    assert len(_messages(world, rows.practice_id, sms.client_id)) == 1


def test_the_practice_override_of_the_template_is_rendered_with_the_practice_details(world):
    rows = world.world.practices["a1"]
    with world.system() as session:
        owner = add_owner(session, rows, MASTER_KEY, "Template", email="t@example.nl",
                          consents=("reminders_email",))  # fmt: skip
        session.execute(
            text("UPDATE reminder_template_override SET body = 'Hallo {client}, {patient} moet op {due_date} "
                 "geprikt worden ({vaccine}).' WHERE practice_id = :p"), {"p": rows.practice_id},
        )  # fmt: skip
    _generate(world, rows.practice_id)
    [message] = _messages(world, rows.practice_id, owner.client_id)
    # The world's franchise template 'vacc' says "Vaccinatie"; a1 overrides the subject and (now) the body.
    assert message.subject == "Vaccinatie!"
    assert message.body.startswith("Hallo A. Template, Rex Template moet op ")
    assert "geprikt worden (Nobivac L4)." in message.body
    assert message.body.endswith("\n\nPraktijk a1, tel. 020-1234567, afspraak maken: https://example.nl/boek")


def test_a_practice_sees_only_its_own_messages(world):
    a1, b1 = world.world.practices["a1"], world.world.practices["b1"]
    with world.as_app(AccessContext.for_practices([a1.practice_id])) as session:
        seen = session.execute(text("SELECT DISTINCT practice_id FROM message_outbox")).scalars().all()
    assert seen == [a1.practice_id]
    with world.system() as session:
        assert (
            session.execute(
                text("SELECT count(*) FROM message_outbox WHERE practice_id = :p"), {"p": b1.practice_id}
            ).scalar_one()
            > 0
        )


flags = st.fixed_dictionaries({c: st.booleans() for c in CHANNEL_LABELS})


@given(st.sampled_from([None, "email", "sms", "phone", "post"]), flags, flags)
def test_a_channel_is_chosen_only_where_consent_and_address_meet(preferred, consents, addresses):
    choice = choose_channel(preferred, consents, addresses)
    usable = [c for c in CHANNEL_LABELS if consents[c] and addresses[c]]
    if not usable:
        assert choice.channel is None and choice.reason
    else:
        assert choice.channel in usable and choice.reason is None
        if preferred in usable:
            assert choice.channel == preferred


@given(
    st.dictionaries(st.sampled_from(["client", "patient", "when"]), st.text(max_size=20)),
    st.text(max_size=40),
)
def test_filling_replaces_only_plain_fields_and_keeps_literal_text(values, literal):
    escaped = literal.replace("{", "{{").replace("}", "}}")
    assert fill(escaped + "{client}", values) == literal + values.get("client", "{client}")
