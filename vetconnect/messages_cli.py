"""``vetconnect messages …``: generate and send the messages due to owners, and the local mail server and SMS
gateway simulator that the demo and development send them to."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.messaging.dispatch import Gateways, send_due_messages
from connectors.messaging.sms import SmsGateway
from connectors.messaging.smtp import SmtpSender
from vetconnect.runtime import get_runtime
from warehouse.kernel.tenancy import system_session
from warehouse.messaging.outbox import live_practices

messages_app = typer.Typer(
    help="Reminders and appointment messages to owners (e-mail and SMS)", no_args_is_help=True
)


@messages_app.command("send")
def send(
    practice: Annotated[
        str | None, typer.Option("--practice", "-p", help="Practice code (default: every one)")
    ] = None,
) -> None:
    """Queue the messages due now and send them; show what happened per practice."""
    runtime, settings = get_runtime(), get_runtime().settings
    with system_session(
        runtime.admin_engine, reason=f"messages send: practices {practice or 'all'}"
    ) as session:
        practices = live_practices(session, practice)
    if not practices:
        raise typer.BadParameter(f"no practice with code {practice!r}", param_hint="--practice")
    table = Table(title="Messages to owners")
    for column in ("Practice", "Queued", "Skipped", "Sent", "Delivered", "Retrying", "Bounced", "Failed"):
        table.add_column(column, justify="left" if column == "Practice" else "right")
    master_key = runtime.master_key()
    now = dt.datetime.now(dt.UTC)
    with (
        SmtpSender(settings.smtp_host, settings.smtp_port, settings.mail_from) as email,
        SmsGateway(settings.sms_gateway_url) as sms,
    ):
        for practice_id, code in practices:
            made, run = send_due_messages(
                runtime.app_engine, practice_id, master_key, Gateways(email, sms), now=now
            )
            table.add_row(code, *(str(n) for n in (made.queued, made.skipped, run["sent"], run["delivered"],
                                                   run["retry"], run["bounced"], run["failed"])))  # fmt: skip
    Console().print(table)


@messages_app.command("smtp-server")
def smtp_server(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8025,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """A catch-all mail server keeping every mail as .eml under VETCONNECT_HOME/mail (the demo's mailbox)."""
    from connectors.messaging.smtp_server import running_smtp_server

    directory = get_runtime().settings.mailbox
    with running_smtp_server(directory, host=host, port=port) as server:
        Console().print(f"SMTP on {server.host}:{server.port}, mail kept in {directory} (Ctrl-C stops)")
        try:
            asyncio.run(asyncio.Event().wait())
        except KeyboardInterrupt:
            pass


@messages_app.command("sms-simulator")
def sms_simulator(
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8766,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """The SMS gateway simulator (POST /messages, GET /messages/{id} receipts; faults via /_sim/config)."""
    from connectors.messaging.sms_simulator import serve

    serve(host=host, port=port)
