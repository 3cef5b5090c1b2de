"""Messages to owners beside the demo app: the local mail server (its mailbox under VETCONNECT_HOME/mail) and the SMS
gateway simulator run in the demo's process while the app is open, the app's settings point at them, and a
background loop does what the Dagster schedule does in production — queue what is due and send it — every
``SEND_EVERY_S``, so "Send due messages now" on the Messages page is followed by mail in the demo's mailbox.

The synced demo clients carry no consents (the Animana simulator keeps none), so no message would ever leave:
`grant_demo_consents` records, once, the consents Animana would have held — every client but every fifth, whose
messages the Messages page then lists as not sent for want of consent."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from rich.console import Console
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from connectors.messaging.dispatch import DispatchRun, Gateways, dispatch_practice
from connectors.messaging.sms import SmsGateway
from connectors.messaging.sms_simulator import running_sms_simulator
from connectors.messaging.smtp import SmtpSender
from connectors.messaging.smtp_server import running_smtp_server
from vetconnect.demo_loops import BackgroundLoop
from vetconnect.settings import Settings
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.messaging.generate import GenerateRun, generate_messages

SEND_EVERY_S = (
    30.0  # the demo's stand-in for the schedule's 15 minutes: a queued message shows up within a minute
)
SETTINGS_ENV = ("VETCONNECT_SMTP_HOST", "VETCONNECT_SMTP_PORT", "VETCONNECT_SMS_GATEWAY_URL")
WITHOUT_CONSENT_EVERY = 5  # every fifth client never gave consent: the page shows their messages as not sent

_GRANT = text(
    """
INSERT INTO client_consent (practice_id, client_id, purpose, granted, how, note)
SELECT c.practice_id, c.id, purpose, true, 'animana', 'Demo: the consent Animana would have held'
FROM client c CROSS JOIN unnest(ARRAY['reminders_email', 'reminders_sms']) AS purpose
WHERE c.practice_id = :p AND c.id % :every <> 0
  AND NOT EXISTS (SELECT 1 FROM client_consent k WHERE k.practice_id = c.practice_id AND k.client_id = c.id)
"""
)


@dataclass(frozen=True)
class DemoMessaging:
    smtp_host: str
    smtp_port: int
    sms_url: str
    mailbox: str
    mail_from: str


@contextmanager
def demo_messaging(settings: Settings) -> Iterator[DemoMessaging]:
    """The mail server on ``settings.smtp_host:smtp_port`` (0: any free port) keeping mail in ``settings.mailbox``,
    and the SMS simulator on the port of ``settings.sms_gateway_url``; VETCONNECT_SMTP_* and _SMS_GATEWAY_URL point
    at them for this process and the app it starts, undone on exit."""
    sms_address = urlsplit(settings.sms_gateway_url)
    with ExitStack() as running:
        smtp = running.enter_context(
            running_smtp_server(settings.mailbox, host=settings.smtp_host, port=settings.smtp_port)
        )
        sms = running.enter_context(
            running_sms_simulator(host=sms_address.hostname or "127.0.0.1", port=sms_address.port or 0)
        )
        before = {name: os.environ.get(name) for name in SETTINGS_ENV}
        os.environ.update(dict(zip(SETTINGS_ENV, (smtp.host, str(smtp.port), sms.base_url), strict=True)))
        try:
            yield DemoMessaging(smtp.host, smtp.port, sms.base_url, str(settings.mailbox), settings.mail_from)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def practice_ids(admin_engine: Engine, codes: Sequence[str]) -> dict[str, int]:
    with system_session(admin_engine, reason="demo: practices to send messages for") as session:
        found = {code: tenant_id_by_code(session, code) for code in codes}
    if missing := [code for code, practice_id in found.items() if practice_id is None]:
        raise LookupError(f"no demo practice with code(s) {missing}")
    return {code: practice_id for code, practice_id in found.items() if practice_id is not None}


def grant_demo_consents(app_engine: Engine, practices: dict[str, int]) -> dict[str, int]:
    """Record the consents of the clients who have none yet (all but every fifth); consents added per practice."""
    added = {}
    for code, practice_id in practices.items():
        with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
            added[code] = session.execute(_GRANT, {"p": practice_id, "every": WITHOUT_CONSENT_EVERY}).rowcount
    return added


@dataclass(frozen=True)
class SentRound:
    code: str
    generated: GenerateRun
    dispatched: DispatchRun


def send_due(
    app_engine: Engine, practices: dict[str, int], messaging: DemoMessaging, *, master_key: bytes
) -> list[SentRound]:
    """Queue and send what is due at each practice, as the schedule's run does."""
    rounds = []
    with (
        SmtpSender(messaging.smtp_host, messaging.smtp_port, messaging.mail_from) as email,
        SmsGateway(messaging.sms_url) as sms,
    ):
        for code, practice_id in practices.items():
            with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
                generated = generate_messages(session, practice_id, now=dt.datetime.now(dt.UTC))
            dispatched = dispatch_practice(app_engine, practice_id, master_key, Gateways(email, sms))
            rounds.append(SentRound(code, generated, dispatched))
    return rounds


def describe(rounds: list[SentRound]) -> list[str]:
    return [
        f"• messages {r.code}: {r.generated.queued} queued, {r.generated.skipped} not sent (no consent), "
        f"{r.dispatched['sent']} sent, {r.dispatched['delivered']} SMS delivered, {r.dispatched['bounced']} bounced"
        for r in rounds
        if r.generated.queued or r.generated.skipped or r.dispatched.counts
    ]


class MessagesLoop(BackgroundLoop):
    """Queue and send every `SEND_EVERY_S` while the app runs; a failing round is reported, the next retries."""

    thread_name = "demo-messages"

    def __init__(
        self,
        app_engine: Engine,
        practices: dict[str, int],
        messaging: DemoMessaging,
        *,
        master_key: bytes,
        console: Console,
    ) -> None:
        self._args = (app_engine, practices, messaging)
        self._key, self._console = master_key, console
        super().__init__()

    def run(self) -> None:
        while not self._stop.wait(SEND_EVERY_S):
            try:
                for line in describe(send_due(*self._args, master_key=self._key)):
                    self._console.print(line)
            except SQLAlchemyError as exc:
                self._console.print(f"[yellow]messages round failed, the next one retries:[/yellow] {exc}")
