"""The demo's mailbox as a demo user reads it: the mails the real local SMTP server kept (to, subject, date, body;
newest first) and the texts the real SMS simulator accepted, with their receipts."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid

import httpx
import pytest

from connectors.messaging.sms import SmsGateway
from connectors.messaging.sms_simulator import running_sms_simulator
from connectors.messaging.smtp import SmtpSender
from connectors.messaging.smtp_server import running_smtp_server
from warehouse.messaging.mailbox import mails, sms_messages


def test_the_mails_the_local_server_kept_newest_first(tmp_path):
    with (
        running_smtp_server(tmp_path / "mail") as server,
        SmtpSender(server.host, server.port, "praktijk@example.nl") as smtp,
    ):
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        assert (
            smtp.send(
                first, "anna@example.nl", "Tijd voor de vaccinatie van Rex", "Beste Anna,\nRex moet."
            ).verdict
            == "sent"
        )
        # The file's time orders the list; make the second clearly newer than the first.
        os.utime(tmp_path / "mail" / f"{first}.eml", (time.time() - 60, time.time() - 60))
        assert (
            smtp.send(second, "bert@example.nl", "Morgen: afspraak voor Max", "Tot morgen.").verdict == "sent"
        )
    kept = mails(tmp_path / "mail")
    assert [(m.name, m.to, m.subject) for m in kept] == [
        (second, "bert@example.nl", "Morgen: afspraak voor Max"),
        (first, "anna@example.nl", "Tijd voor de vaccinatie van Rex"),
    ]
    assert kept[1].body == "Beste Anna,\nRex moet."
    assert kept[0].sent is not None and abs(kept[0].sent - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_no_mailbox_yet_is_an_empty_one(tmp_path):
    assert mails(tmp_path / "not-there") == []


def test_the_texts_the_sms_simulator_accepted_with_their_receipts():
    with running_sms_simulator() as sim, SmsGateway(sim.base_url) as sms:
        assert sms.send("id-1", "+31612345678", "Rex moet gevaccineerd worden.").verdict == "sent"
        assert sms.send("id-2", "+31612340000", "Max: afspraak morgen.").verdict == "sent"
        listed = sms_messages(sim.base_url)
    assert [(s.id, s.to, s.status, s.error) for s in listed] == [
        ("id-2", "+31612340000", "failed", "Number not reachable"),
        ("id-1", "+31612345678", "delivered", None),
    ]
    assert listed[1].body == "Rex moet gevaccineerd worden."
    assert listed[0].accepted is not None and listed[0].accepted >= listed[1].accepted


def test_a_simulator_that_is_not_there_says_so():
    with running_sms_simulator() as sim:
        url = sim.base_url
    with pytest.raises(httpx.HTTPError):
        sms_messages(url, timeout=0.5)
