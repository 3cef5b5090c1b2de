"""Messages where people see them, under AppTest: the receptionist reads a client's messages on the card (a
delivered SMS, a bounced mail with its reason), the Messages page's report of the last 14 days (tiles, chart,
problem list with name, phone and why), and queues the due messages with "Send due messages now"; a franchise
manager, who may not write clients, reads the report without the button."""

from __future__ import annotations

import base64
import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY
from tests.dashboard.test_ws_app import ok, texts
from tests.factories import TZ
from tests.message_views_support import add_message
from tests.messages_support import add_owner
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.kernel import formatting as fmt

BOUNCE = "The mail server refused the address: 550 5.1.1 Mailbox unavailable"
NO_CONSENT = "No consent for reminders by e-mail or SMS"
PAGE = "workspaces/messages.py"
MINUTE = dt.timedelta(minutes=1)


def seed_messages(db):  # noqa: ANN001, ANN201
    """Alfa: an SMS delivered yesterday and a mail bounced today; Bravo: a reminder not sent (no consent)."""
    a1 = db.world.practices["a1"]
    today = dt.datetime.now(TZ).date()
    yesterday = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(9, 0), TZ)
    early = dt.datetime.combine(today, dt.time(0, 30), TZ)
    with db.system() as session:
        alfa = add_owner(session, a1, MASTER_KEY, "Alfa", email="alfa@bounce.invalid", phone="0612345678")
        bravo = add_owner(session, a1, MASTER_KEY, "Bravo", email="bravo@example.nl")
        add_message(session, a1.practice_id, alfa, "delivered", channel="sms", queued_at=yesterday,
                    sent_after=MINUTE, finished_after=2 * MINUTE)  # fmt: skip
        add_message(session, a1.practice_id, alfa, "bounced", kind="overdue_reminder", queued_at=early,
                    finished_after=MINUTE, reason=BOUNCE)  # fmt: skip
        add_message(session, a1.practice_id, bravo, "skipped", channel=None, queued_at=early, reason=NO_CONSENT,
                    attempts=0)  # fmt: skip
    db.alfa, db.yesterday = alfa, yesterday
    return db


@pytest.fixture
def messages(app_env):  # noqa: ANN001, ANN201
    return seed_messages(app_env)


def _numbers(values) -> list[int]:  # noqa: ANN001
    """A trace's values as plotly serialises them: a list, or base64 of a typed array."""
    if isinstance(values, list):
        return values
    return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()


def _frame(at, column: str):  # noqa: ANN202, ANN001
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_the_client_card_lists_the_messages_newest_first_with_the_bounce_reason(messages):
    a1 = messages.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.session_state["card.client"] = (a1.practice_id, messages.alfa.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    shown = _frame(at, "Why")
    assert list(shown.columns) == [
        "Queued",
        "Message",
        "Animal",
        "Channel",
        "State",
        "Sent",
        "Delivered",
        "Why",
    ]
    assert shown[["Message", "Channel", "State", "Why"]].values.tolist() == [
        ["Overdue vaccination", "e-mail", "Bounced", BOUNCE],
        ["Vaccination reminder", "SMS", "Delivered", "–"],
    ]
    assert shown["Delivered"].tolist() == ["–", fmt.date_time(messages.yesterday + 2 * MINUTE, TZ)]
    assert "+00:00" not in " ".join(shown["Queued"])  # local time, Dutch date
    assert "1 message(s) did not reach the client" in texts(at)


def test_the_receptionist_reads_the_report_and_queues_the_due_messages(messages):
    a1 = messages.world.practices["a1"]
    with messages.system() as session:
        add_owner(
            session, a1, MASTER_KEY, "Charlie", email="charlie@example.nl", consents=("reminders_email",)
        )
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    ok(at)
    tiles = {m.label: m.value for m in at.metric}
    # The factories' world sent its client a reminder today too.
    assert tiles == {"Messages": "4", "Sent": "1", "Delivered": "1", "Bounced": "1", "Failed": "0",
                     "Not sent": "1", "Waiting": "0"}  # fmt: skip
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = {trace["name"]: (trace["x"], _numbers(trace["y"])) for trace in chart["data"]}
    assert list(bars) == ["Sent", "Delivered", "Bounced", "Failed", "Not sent"]
    days, delivered = bars["Delivered"]
    assert len(days) == 14 and days[-1] == fmt.date(messages.yesterday + dt.timedelta(days=1))
    assert delivered[-2:] == [1, 0] and bars["Bounced"][1][-2:] == [0, 1] and bars["Not sent"][1][-1] == 1
    problems = _frame(at, "Phone")
    assert problems[["Client", "Phone", "State", "Why"]].values.tolist() == [
        ["A. Alfa", "0612345678", "Bounced", BOUNCE],
        ["A. Bravo", "–", "Not sent", NO_CONSENT],
    ]

    click(at, "Send due messages now")
    ok(at)
    with messages.system() as session:
        queued = session.execute(
            text("SELECT count(*) FROM message_outbox WHERE practice_id = :p AND state = 'queued'"),
            {"p": a1.practice_id},
        ).scalar_one()
        charlie = session.execute(
            text("SELECT m.state, m.channel FROM message_outbox m JOIN client c ON c.practice_id = m.practice_id "
                 "AND c.id = m.client_id WHERE m.practice_id = :p AND c.last_name = 'Charlie'"),
            {"p": a1.practice_id},
        ).all()  # fmt: skip
    assert [tuple(r) for r in charlie] == [("queued", "email")]
    assert f"{queued} queued" in " ".join(str(m.value) for m in at.markdown)
    assert {m.label: m.value for m in at.metric}["Waiting"] == str(queued)


def test_a_franchise_manager_reads_the_report_without_the_send_button(messages):
    at = sign_in("fm-a")
    at.session_state["practice_choice"] = messages.world.practices["a1"].practice_id
    at.switch_page(PAGE).run()
    ok(at)
    assert {m.label: m.value for m in at.metric}["Bounced"] == "1"
    assert "Send due messages now" not in [b.label for b in at.button]


def test_in_demo_mode_the_page_shows_the_demo_mailbox(messages, monkeypatch, tmp_path):
    """What the demo's mail server kept and the SMS simulator accepted, read back on the page."""
    from connectors.messaging.sms import SmsGateway
    from connectors.messaging.sms_simulator import running_sms_simulator
    from connectors.messaging.smtp import SmtpSender
    from connectors.messaging.smtp_server import running_smtp_server
    from vetconnect.settings import get_settings

    monkeypatch.setenv("VETCONNECT_DEMO", "1")
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    with running_sms_simulator() as sim:
        monkeypatch.setenv("VETCONNECT_SMS_GATEWAY_URL", sim.base_url)
        get_settings.cache_clear()
        with running_smtp_server(get_settings().mailbox) as server:
            with SmtpSender(server.host, server.port, "noreply@demo.vetconnect.nl") as smtp:
                smtp.send("0b7f3c52-1d2e-4f6a-9b8c-7d6e5f4a3b2c", "anna@example.nl", "Tijd voor de vaccinatie van Rex",
                          "Beste Anna, de vaccinatie van Rex is weer nodig.")  # fmt: skip
        with SmsGateway(sim.base_url) as sms:
            sms.send("sms-1", "+31612345678", "Rex moet gevaccineerd worden. Bel Praktijk a1.")
        at = sign_in(RECEPTIONIST)
        at.switch_page(PAGE).run()
    ok(at)
    mailbox = next(e for e in at.expander if e.label == "Mailbox (demo)")
    (mail,) = [e for e in mailbox.expander if "anna@example.nl" in e.label]
    assert mail.label.endswith("· anna@example.nl · Tijd voor de vaccinatie van Rex")
    assert [t.value for t in mail.text] == ["Beste Anna, de vaccinatie van Rex is weer nodig."]
    texted = _frame(mailbox, "Text")
    assert texted[["To", "Status", "Text"]].values.tolist() == [
        ["+31612345678", "Delivered", "Rex moet gevaccineerd worden. Bel Praktijk a1."]
    ]


def test_outside_demo_mode_there_is_no_mailbox(messages):
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    ok(at)
    assert "Mailbox (demo)" not in [e.label for e in at.expander]
