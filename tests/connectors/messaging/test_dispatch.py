"""The dispatcher against a real SMTP server (aiosmtpd) and the SMS simulator over HTTP: exactly once under
faults, bounces visible with their reason, nothing to an owner without consent."""

from __future__ import annotations

import datetime as dt
import itertools

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from connectors.messaging.dispatch import Gateways, dispatch_practice
from connectors.messaging.sms import SmsGateway
from connectors.messaging.sms_simulator import running_sms_simulator
from connectors.messaging.smtp import SmtpSender
from connectors.messaging.smtp_server import BOUNCE_DOMAIN, running_smtp_server
from tests.conftest import MASTER_KEY, drop_database, open_database
from tests.factories import build_world
from tests.messages_support import add_owner
from warehouse.kernel.tenancy import AccessContext
from warehouse.messaging.generate import generate_messages

STALL = 0.4  # the servers' stalled answers: longer than the clients' timeouts below
CLIENT_TIMEOUT = 0.2
names = itertools.count()


@pytest.fixture(scope="module")
def world(server_url, template_db):
    db = open_database(server_url, template_db)
    with db.system() as session:
        db.world = build_world(session, MASTER_KEY)
        # The world's own reminder message is not part of these runs.
        session.execute(text("DELETE FROM message_outbox"))
    yield db
    db.dispose()
    drop_database(server_url, db.name)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory):
    with running_smtp_server(tmp_path_factory.mktemp("mail")) as smtp, running_sms_simulator() as sms:
        sms_client = SmsGateway(sms.base_url, connect_timeout=1, read_timeout=CLIENT_TIMEOUT)
        sender = SmtpSender(smtp.host, smtp.port, "praktijk@example.nl", timeout=CLIENT_TIMEOUT)
        with sms_client, sender:
            yield smtp, sms, Gateways(sender, sms_client)


def _configure(sms, **settings_):
    httpx.post(f"{sms.base_url}/_sim/config", json=settings_, timeout=5).raise_for_status()


def _run_until_settled(db, practice_id, gateways_, rounds=40):
    """Dispatch, each round making retries due at once (the backoff's waiting, skipped)."""
    for _ in range(rounds):
        dispatch_practice(db.app_engine, practice_id, MASTER_KEY, gateways_)
        with db.system() as session:
            left = session.execute(
                text("UPDATE message_outbox SET next_attempt_at = now() WHERE practice_id = :p "
                     "AND state IN ('queued', 'sending') RETURNING id"), {"p": practice_id},
            ).all()  # fmt: skip
        if not left:
            dispatch_practice(db.app_engine, practice_id, MASTER_KEY, gateways_)  # the last receipts
            return
    raise AssertionError("messages still queued after every round")


def _outbox(db, practice_id, client_ids):
    with db.system() as session:
        return session.execute(
            text("SELECT client_id, message_id::text AS message_id, channel, state, reason, attempts "
                 "FROM message_outbox WHERE practice_id = :p AND client_id = ANY(:c) ORDER BY id"),
            {"p": practice_id, "c": client_ids},
        ).all()  # fmt: skip


fault_lists = st.lists(st.sampled_from(["none", "5xx", "timeout", "lost", "429"]), max_size=6)
mail_fault_lists = st.lists(st.sampled_from(["none", "4xx", "lost"]), max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sms_faults=fault_lists, mail_faults=mail_fault_lists, owners=st.integers(min_value=1, max_value=4))
def test_every_due_message_reaches_its_owner_exactly_once_under_faults(
    world, gateways, sms_faults, mail_faults, owners
):
    smtp, sms, gateways_ = gateways
    rows = world.world.practices["a1"]
    _configure(sms, script=sms_faults, stall_seconds=STALL)
    smtp.mailbox.script, smtp.mailbox.stall_seconds = list(mail_faults), STALL
    with world.system() as session:
        consenting = [
            add_owner(session, rows, MASTER_KEY, f"Eigenaar{n}", email=f"e{n}@example.nl",
                      phone=f"0612{n % 10000:04d}{i + 1:02d}", preferred=("sms", "email")[i % 2],
                      consents=("reminders_email", "reminders_sms")).client_id
            for i, n in ((i, next(names)) for i in range(owners))
        ]  # fmt: skip
        refusing = add_owner(session, rows, MASTER_KEY, f"Nee{next(names)}", email="nee@example.nl",
                             phone="0612349991").client_id  # fmt: skip
    with world.as_app(AccessContext.for_practices([rows.practice_id])) as session:
        generate_messages(session, rows.practice_id, now=dt.datetime.now(dt.UTC))

    _run_until_settled(world, rows.practice_id, gateways_)

    messages = _outbox(world, rows.practice_id, [*consenting, refusing])
    due = [m for m in messages if m.client_id in consenting]
    assert len(due) == owners
    assert {m.state for m in due} <= {"sent", "delivered"}
    assert [m.state for m in messages if m.client_id == refusing] == ["skipped"]
    # Each message reached the gateway of its channel exactly once under its id, and nothing else did.
    at_sms = {m["id"]: m for m in sms.state.messages.values()}
    kept = {p.stem for p in smtp.mailbox.kept()}
    for m in due:
        assert (m.message_id in at_sms) == (m.channel == "sms")
        assert (m.message_id in kept) == (m.channel == "email")
    # No other id reached either gateway: a resend that minted a new id would show up here as one more.
    with world.system() as session:
        sent = dict(session.execute(text(
            "SELECT channel, count(*) FROM message_outbox WHERE state IN ('sent', 'delivered') GROUP BY channel"
        )).tuples().all())  # fmt: skip
    assert (len(at_sms), len(kept)) == (sent.get("sms", 0), sent.get("email", 0))
    refused_ids = {m.message_id for m in messages if m.client_id == refusing}
    assert not refused_ids & (set(at_sms) | kept)
    assert not any("9991" in m["to"] or m["to"].endswith("nee@example.nl") for m in at_sms.values())


def test_bounces_are_final_and_say_why(world, gateways):
    smtp, sms, gateways_ = gateways
    rows = world.world.practices["a2"]
    _configure(sms, script=[])
    smtp.mailbox.script = []
    with world.system() as session:
        to_bounce = add_owner(session, rows, MASTER_KEY, "Bounce", email=f"weg@{BOUNCE_DOMAIN}",
                              consents=("reminders_email",)).client_id  # fmt: skip
        unreachable = add_owner(session, rows, MASTER_KEY, "Onbereikbaar", phone="0612340000",
                                consents=("reminders_sms",)).client_id  # fmt: skip
    with world.as_app(AccessContext.for_practices([rows.practice_id])) as session:
        generate_messages(session, rows.practice_id, now=dt.datetime.now(dt.UTC))
    _run_until_settled(world, rows.practice_id, gateways_)
    by_client = {m.client_id: m for m in _outbox(world, rows.practice_id, [to_bounce, unreachable])}
    assert by_client[to_bounce].state == "bounced"
    assert by_client[to_bounce].reason.startswith("The mail server refused the address: 550")
    assert by_client[to_bounce].attempts == 1
    assert (by_client[unreachable].state, by_client[unreachable].reason) == (
        "bounced",
        "Number not reachable",
    )
