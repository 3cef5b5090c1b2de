"""Send a practice's due messages, then ask the SMS gateway for the receipts of those sent.

At least once and an idempotent id: each batch is claimed and committed first (``warehouse.messaging.outbox``),
each message is sent under its ``message_id`` and its outcome committed right after, so a crash between the
send and the mark leaves a claim whose lease runs out and whose resend the gateway recognises. Retries follow
the outbox's exponential backoff (a 429's Retry-After where the gateway gave one); bounces are final and show
their reason. Runs as the practice (tenant session), and writes one audit entry per run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.messaging.gateway import Outcome
from connectors.messaging.sms import SmsGateway
from connectors.messaging.smtp import SmtpSender
from warehouse.kernel.audit import record
from warehouse.kernel.tenancy import AccessContext, apply_context, tenant_session
from warehouse.messaging import outbox
from warehouse.messaging.generate import GenerateRun, generate_messages
from warehouse.messaging.outbox import Outgoing

MAX_BATCHES = 1000  # a run ends; what is left is due for the next one


@dataclass(frozen=True)
class Gateways:
    email: SmtpSender | None
    sms: SmsGateway | None


@dataclass(frozen=True)
class DispatchRun:
    practice_id: int
    counts: dict[str, int]  # sent, retry, bounced, failed, delivered

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


def _send(message: Outgoing, gateways: Gateways) -> Outcome:
    if message.to is None:
        what = "e-mail address" if message.channel == "email" else "valid mobile number"
        return Outcome("bounced", f"The client has no {what} any more")
    if message.channel == "email":
        if gateways.email is None:
            return Outcome("retry", "No mail server configured")
        return gateways.email.send(message.message_id, message.to, message.subject, message.body)
    if gateways.sms is None:
        return Outcome("retry", "No SMS gateway configured")
    return gateways.sms.send(message.message_id, message.to, message.body)


@contextmanager
def _marking(session: Session, context: AccessContext) -> Iterator[None]:
    """One message's mark, committed on its own (so a crash re-sends at most the message in hand), on the run's
    one connection: ``tenant_session`` per mark would rebuild its ORM practice filters each time, which the
    outbox's plain SQL statements do not use — a third of a send's time (bench/messages.py)."""
    with session.begin():
        apply_context(session, context)
        yield


def dispatch_practice(
    app_engine: Engine, practice_id: int, master_key: bytes, gateways: Gateways, *, batch: int = 50
) -> DispatchRun:
    """Send what is due now at the practice and collect the SMS receipts; the counts of what happened."""
    context = AccessContext.for_practices([practice_id])
    counts: Counter[str] = Counter()
    for _ in range(MAX_BATCHES):
        with tenant_session(app_engine, context) as session:
            claimed = outbox.claim_due(session, practice_id, master_key, limit=batch)
        if not claimed:
            break
        with Session(app_engine) as session:
            for message in claimed:
                outcome = _send(message, gateways)
                with _marking(session, context):
                    if outcome.verdict == "sent":
                        outbox.mark_sent(session, message)
                        counts["sent"] += 1
                    elif outcome.verdict == "bounced":
                        outbox.mark_final(session, message, "bounced", outcome.detail)
                        counts["bounced"] += 1
                    else:
                        state = outbox.mark_retry(session, message, outcome.detail, outcome.retry_after)
                        counts["failed" if state == "failed" else "retry"] += 1
    if gateways.sms is not None:
        counts.update(collect_receipts(app_engine, practice_id, gateways.sms))
    if counts:
        with tenant_session(app_engine, context) as session:
            record(session, practice_id=practice_id, action="dispatch", entity="message_outbox",
                   detail=dict(counts))  # fmt: skip
    return DispatchRun(practice_id, dict(counts))


def collect_receipts(app_engine: Engine, practice_id: int, sms: SmsGateway) -> Counter[str]:
    """Ask the gateway about every recent SMS not yet known delivered; mark delivered or bounced."""
    context = AccessContext.for_practices([practice_id])
    counts: Counter[str] = Counter()
    with tenant_session(app_engine, context) as session:
        waiting = outbox.awaiting_receipt(session, practice_id)
    with Session(app_engine) as session:
        for id_, message_id in waiting:
            try:
                receipt = sms.receipt(message_id)
            except httpx.HTTPError:
                continue  # asked again on the next run
            with _marking(session, context):
                if not receipt.known:
                    outbox.requeue_unknown(session, practice_id, id_)
                    counts["requeued"] += 1
                elif receipt.status in ("delivered", "failed"):
                    outbox.mark_receipt(
                        session, practice_id, id_, receipt.status == "delivered", receipt.error
                    )
                    counts["delivered" if receipt.status == "delivered" else "bounced"] += 1
    return counts


def send_due_messages(
    app_engine: Engine, practice_id: int, master_key: bytes, gateways: Gateways, *, now: dt.datetime
) -> tuple[GenerateRun, DispatchRun]:
    """One practice's round, as ``vetconnect messages send`` and the Dagster schedule run it: queue what is due
    at ``now`` (committed on its own, so a failing gateway never loses what was queued), then send."""
    with tenant_session(app_engine, AccessContext.for_practices([practice_id])) as session:
        made = generate_messages(session, practice_id, now=now)
    return made, dispatch_practice(app_engine, practice_id, master_key, gateways)
