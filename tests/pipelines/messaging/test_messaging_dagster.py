"""Messages to owners in Dagster, with real resources: the job queues and sends every practice's due messages
to a real SMTP server (aiosmtpd) and the SMS gateway simulator over HTTP; a second run sends nothing twice; the
schedule is the daytime one and the one Definitions loads with the domain."""

from __future__ import annotations

import base64
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import Definitions, build_schedule_context
from dagster._utils.schedules import cron_string_iterator
from sqlalchemy import text

from connectors.messaging.sms_simulator import running_sms_simulator
from connectors.messaging.smtp_server import running_smtp_server
from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.messaging.jobs import messages_daytime_schedule, messages_send_job
from pipelines.messaging.resources import MessageGatewaysResource
from tests.conftest import MASTER_KEY
from tests.messages_support import add_owner


@pytest.fixture
def gateways(tmp_path):
    with running_smtp_server(tmp_path / "mail") as smtp, running_sms_simulator() as sms:
        yield smtp, sms


def _resources(db, smtp, sms) -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(database_url=db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()),
        "messaging": MessageGatewaysResource(smtp_host=smtp.host, smtp_port=smtp.port, mail_from="praktijk@example.nl",
                                             sms_gateway_url=sms.base_url),
    }  # fmt: skip


def test_the_job_sends_every_practices_due_messages_once(ws_db, gateways):
    smtp, sms = gateways
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    with ws_db.system() as session:
        session.execute(text("DELETE FROM message_outbox"))  # the world's own sent message is not this run's
        by_mail = add_owner(session, a1, MASTER_KEY, "Visser", email="visser@example.nl", preferred="email",
                            consents=("reminders_email",))  # fmt: skip
        by_sms = add_owner(session, b1, MASTER_KEY, "Smit", phone="06-12345001", preferred="sms",
                           consents=("reminders_sms",))  # fmt: skip
        no_consent = add_owner(
            session, b1, MASTER_KEY, "Bakker", email="bakker@example.nl", phone="06-12345002"
        )

    result = messages_send_job.execute_in_process(resources=_resources(ws_db, smtp, sms))

    assert result.success
    report = result.output_for_node("send_due_owner_messages")
    # The world's own clients have reminders due too (a1, a2, b1 each one, consent by e-mail in each).
    assert set(report) == {"a1", "a2", "b1"}
    assert (report["a1"]["queued"], report["a1"]["sent"]) == (2, 2)
    assert (report["b1"]["queued"], report["b1"]["skipped"], report["b1"]["sent"]) == (2, 1, 2)
    assert report["b1"]["delivered"] == 1  # the SMS's receipt, asked for in the same round
    with ws_db.system() as session:
        states = {row.client_id: row.state for row in session.execute(text(
            "SELECT client_id, state FROM message_outbox WHERE client_id = ANY(:c) AND practice_id IN (:a, :b)"
        ), {"c": [by_mail.client_id, by_sms.client_id, no_consent.client_id], "a": a1.practice_id,
            "b": b1.practice_id})}  # fmt: skip
    assert states == {
        by_mail.client_id: "sent",
        by_sms.client_id: "delivered",
        no_consent.client_id: "skipped",
    }
    mails = [p.read_text() for p in smtp.mailbox.kept()]
    assert sum("To: visser@example.nl" in m for m in mails) == 1
    assert [m["to"] for m in sms.state.messages.values()] == ["+31612345001"]

    again = messages_send_job.execute_in_process(resources=_resources(ws_db, smtp, sms))

    assert again.success
    assert all(
        not any(counts.values()) for counts in again.output_for_node("send_due_owner_messages").values()
    )
    assert (len(smtp.mailbox.kept()), smtp.mailbox.duplicates, len(sms.state.messages)) == (len(mails), 0, 1)


def test_one_practice_only_when_configured(ws_db, gateways):
    smtp, sms = gateways
    with ws_db.system() as session:
        session.execute(text("DELETE FROM message_outbox"))
    result = messages_send_job.execute_in_process(
        run_config={"ops": {"send_due_owner_messages": {"config": {"practice_code": "a2"}}}},
        resources=_resources(ws_db, smtp, sms),
    )
    assert result.success
    assert list(result.output_for_node("send_due_owner_messages")) == ["a2"]


def test_the_schedule_runs_every_quarter_hour_by_day_only():
    assert messages_daytime_schedule.cron_schedule == "*/15 8-20 * * *"
    assert messages_daytime_schedule.execution_timezone == "Europe/Amsterdam"
    zone = ZoneInfo("Europe/Amsterdam")
    # Dagster's own reading of the cron string (no public API for a schedule's ticks).
    ticks = cron_string_iterator(dt.datetime(2026, 12, 4, 20, 20, tzinfo=zone).timestamp(),
                                 messages_daytime_schedule.cron_schedule, "Europe/Amsterdam")  # fmt: skip
    assert [next(ticks).astimezone(zone).strftime("%a %H:%M") for _ in range(4)] == [
        "Fri 20:30", "Fri 20:45", "Sat 08:00", "Sat 08:15"
    ]  # fmt: skip
    with build_schedule_context() as context:
        assert messages_daytime_schedule.evaluate_tick(context).run_requests


def test_the_one_definitions_loads_with_the_messaging_domain():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert repository.get_job("messages_send_job")
    assert "messages_daytime_schedule" in {s.name for s in repository.schedule_defs}
