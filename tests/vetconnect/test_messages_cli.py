"""``vetconnect messages send`` against a real SMTP server (aiosmtpd) and the SMS gateway simulator over HTTP:
the table says per practice what was queued, skipped, sent, delivered and bounced, and that is what the
gateways received; an unknown practice is refused."""

from __future__ import annotations

import base64
import re

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from connectors.messaging.sms_simulator import running_sms_simulator
from connectors.messaging.smtp_server import BOUNCE_DOMAIN, running_smtp_server
from tests.conftest import MASTER_KEY
from tests.messages_support import add_owner
from vetconnect.cli import app
from vetconnect.settings import get_settings

COLUMNS = ("Queued", "Skipped", "Sent", "Delivered", "Retrying", "Bounced", "Failed")


@pytest.fixture
def messages_env(ws_db, monkeypatch, tmp_path):
    with running_smtp_server(tmp_path / "mail") as smtp, running_sms_simulator() as sms:
        for name, value in {
            "DATABASE_URL": ws_db.admin_url, "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
            "VETCONNECT_SMTP_HOST": smtp.host, "VETCONNECT_SMTP_PORT": str(smtp.port),
            "VETCONNECT_SMS_GATEWAY_URL": sms.base_url, "COLUMNS": "200",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("VETCONNECT_DEMO", raising=False)
        get_settings.cache_clear()
        yield ws_db, smtp, sms
        get_settings.cache_clear()


def _row(output: str, code: str) -> dict[str, int]:
    """The practice's row of the rich table, by column name."""
    (line,) = [line for line in output.splitlines() if re.match(rf"^\W*{code}\W", line)]
    cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
    return dict(zip(COLUMNS, map(int, cells[1:]), strict=True))


def test_send_shows_what_happened_and_the_gateways_got_exactly_that(messages_env):
    db, smtp, sms = messages_env
    a1 = db.world.practices["a1"]
    with db.system() as session:
        session.execute(text("DELETE FROM message_outbox"))  # the world's own reminder is due again
        add_owner(session, a1, MASTER_KEY, "Mail", email="mail@example.nl", consents=("reminders_email",))
        add_owner(
            session, a1, MASTER_KEY, "Sms", phone="06-12345101", preferred="sms", consents=("reminders_sms",)
        )
        add_owner(session, a1, MASTER_KEY, "Weg", email=f"weg@{BOUNCE_DOMAIN}", consents=("reminders_email",))
        add_owner(session, a1, MASTER_KEY, "Nee", email="nee@example.nl", phone="06-12345102")

    result = CliRunner().invoke(app, ["messages", "send", "--practice", "a1"])

    assert result.exit_code == 0, result.output
    assert "Messages to owners" in result.output
    assert _row(result.output, "a1") == {
        "Queued": 4, "Skipped": 1, "Sent": 3, "Delivered": 1, "Retrying": 0, "Bounced": 1, "Failed": 0
    }  # fmt: skip
    assert len(smtp.mailbox.kept()) == 2 and smtp.mailbox.duplicates == 0  # the world's client's and Mail's
    assert [m["to"] for m in sms.state.messages.values()] == ["+31612345101"]
    assert not any("nee@example.nl" in p.read_text() for p in smtp.mailbox.kept())

    again = CliRunner().invoke(app, ["messages", "send", "--practice", "a1"])

    assert again.exit_code == 0, again.output
    assert set(_row(again.output, "a1").values()) == {0}
    assert len(smtp.mailbox.kept()) == 2 and len(sms.state.messages) == 1


def test_an_unknown_practice_is_refused(messages_env):
    result = CliRunner().invoke(app, ["messages", "send", "--practice", "nope"])
    assert result.exit_code != 0
    assert "no practice with code 'nope'" in result.output
