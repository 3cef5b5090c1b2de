"""Messages in `make demo`: the local mail server and the SMS simulator run beside the app with the app's settings
pointing at them; the synced demo clients get the consents Animana would have held (every fifth none), and the
due messages are queued and sent once — mail lands in the demo's mailbox, texts at the simulator, each ending with
the practice's phone and booking link; the clients without consent are listed as not sent."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from vetconnect.animana_cli import demo_sync
from vetconnect.demo import build_demo_world, roster_and_remind
from vetconnect.demo_animana import demo_animana
from vetconnect.demo_messages import (
    SETTINGS_ENV,
    WITHOUT_CONSENT_EVERY,
    demo_messaging,
    grant_demo_consents,
    practice_ids,
    send_due,
)
from vetconnect.settings import get_settings
from warehouse.messaging.mailbox import mails, sms_messages


@pytest.fixture
def demo_env(fresh_db, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    monkeypatch.setenv("VETCONNECT_DEMO_SCALE", "small")
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    monkeypatch.setenv("VETCONNECT_SMTP_PORT", "0")
    monkeypatch.setenv("VETCONNECT_SMS_GATEWAY_URL", "http://127.0.0.1:0")
    monkeypatch.delenv("VETCONNECT_MASTER_KEY", raising=False)
    get_settings.cache_clear()
    yield fresh_db
    get_settings.cache_clear()


def test_the_demo_sends_its_due_messages_to_the_local_mailbox_and_sms_simulator(demo_env):
    key = get_settings().require_master_key()
    with demo_env.system() as session:
        summary = build_demo_world(session, master_key=key)
    with demo_animana(demo_env.admin_engine, ["dz-amstel"], summary.anchor, port=0) as animana:
        with animana.client() as client:
            demo_sync(demo_env.app_engine, client, animana.practices, master_key=key)
    roster_and_remind(demo_env.app_engine, demo_env.admin_engine, ["dz-amstel"])
    amstel = practice_ids(demo_env.admin_engine, ["dz-amstel"])

    with demo_messaging(get_settings()) as messaging:
        assert os.environ["VETCONNECT_SMS_GATEWAY_URL"] == messaging.sms_url  # what the app started now reads
        assert os.environ["VETCONNECT_SMTP_PORT"] == str(messaging.smtp_port) != "0"
        assert grant_demo_consents(demo_env.app_engine, amstel)["dz-amstel"] > 0
        assert grant_demo_consents(demo_env.app_engine, amstel)["dz-amstel"] == 0  # once
        (sent,) = send_due(demo_env.app_engine, amstel, messaging, master_key=key)
        texts = sms_messages(messaging.sms_url)
    assert [os.environ.get(name) for name in SETTINGS_ENV] == [None, "0", "http://127.0.0.1:0"]  # undone

    with demo_env.system() as session:
        rows = session.execute(
            text("SELECT client_id, channel, state, reason, body FROM message_outbox WHERE practice_id = :p"),
            {"p": amstel["dz-amstel"]},
        ).all()
        phone = session.execute(text("SELECT phone FROM tenant WHERE code = 'dz-amstel'")).scalar_one()
    assert sent.generated.queued > 0 and sent.dispatched["sent"] == sent.generated.queued
    by_state = {state: [r for r in rows if r.state == state] for state in {r.state for r in rows}}
    assert set(by_state) <= {"sent", "delivered", "bounced", "skipped"}
    assert all(r.client_id % WITHOUT_CONSENT_EVERY == 0 for r in by_state.get("skipped", []))
    assert all(r.client_id % WITHOUT_CONSENT_EVERY != 0 for r in rows if r.state != "skipped")
    emailed = [r for r in rows if r.channel == "email" and r.state != "skipped"]
    texted = [r for r in rows if r.channel == "sms" and r.state != "skipped"]
    kept = mails(get_settings().mailbox)
    assert len(kept) == len(emailed) > 0
    assert len(texts) == len(texted)
    assert all(f"tel. {phone}" in mail.body and "demo.vetconnect.nl/afspraak" in mail.body for mail in kept)
