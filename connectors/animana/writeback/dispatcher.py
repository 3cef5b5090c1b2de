"""The dispatcher: push a linked practice's outbox to Animana, batch by batch.

Each batch is one transaction under the practice's RLS context: claim due entries (`outbox.due_entries`, which
keeps per-record order and skips entries another dispatcher holds), send each (`Sender`), record the outcomes (the
acknowledged ones together, `outbox.mark_all_sent`), and commit once. A dispatcher killed mid-batch loses nothing: its uncommitted claims are pending again and are re-sent
with the same idempotency keys, which Animana answers without a second effect.

Outcomes: sent → done (the row gets the Animana id and version); 429 → due again after Retry-After; 5xx, timeout
or a lost answer → exponential backoff with jitter, a dead letter after `max_attempts` with the last reason;
422/409/404 → a dead letter with Animana's message; 412 (the record changed in Animana) → pending, and after the
batch the resource is synced and the held change settled, which decides whether the entry goes again (now
conditional on the new version), waits on a conflict, or is superseded by its resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.animana.client import AnimanaClient
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import sync_practice
from connectors.animana.writeback.refs import BatchRefs
from connectors.animana.writeback.sender import STALE, Outcome, Refused, Retry, Sender, Sent, Stale
from warehouse.integration.outbox import (
    Answer,
    OutboxEntry,
    due_entries,
    mark_all_sent,
    mark_dead,
    mark_retry,
)
from warehouse.kernel.tenancy import AccessContext, tenant_session

MAX_ATTEMPTS = 12
BATCH = 100
STALE_WAIT_S = 30.0  # a stale entry waits this long for the sync + settlement to decide it


@dataclass
class PushReport:
    practice: str
    sent: int = 0
    retried: int = 0
    # Not counted towards the dead-letter limit: a parent on its way, or Animana's Retry-After.
    waiting: int = 0
    dead: int = 0
    stale: int = 0
    batches: int = 0
    synced: list[str] = field(default_factory=list)  # resources synced because Animana had a newer version

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.waiting + self.dead + self.stale


def push(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    *,
    master_key: bytes,
    max_entries: int = 10_000,
    deadline: float | None = None,
    batch_size: int = BATCH,
    max_attempts: int = MAX_ATTEMPTS,
    sender: Sender | None = None,
    after_send: Callable[[OutboxEntry], None] | None = None,
) -> PushReport:
    """Push the practice's due entries until none is due, ``max_entries`` are handled or ``deadline``
    (``time.monotonic()``) has passed. Entries of native modules are never sent. ``after_send``: called after each
    HTTP write (progress, tests)."""
    sender = sender or Sender(client)
    report = PushReport(practice.code)
    stale: set[str] = set()
    context = AccessContext.for_practices([practice.practice_id])
    while report.handled < max_entries and (deadline is None or time.monotonic() < deadline):
        limit = min(batch_size, max_entries - report.handled)
        with tenant_session(app_engine, context) as session:
            entries = due_entries(session, practice.practice_id, limit, master_key=master_key)
            if not entries:
                break
            refs = BatchRefs(session, practice.practice_id)
            refs.prefetch(entries)
            answers: list[Answer] = []
            for entry in entries:
                outcome = sender.send(entry, practice.animana_id, refs)
                if isinstance(outcome, Sent):
                    answers.append((entry, outcome.animana_id, outcome.version))
                    if entry.operation == "insert" and outcome.animana_id is not None:
                        refs.learn(entry.table_name, entry.row_id, outcome.animana_id)
                else:
                    _record(session, entry, outcome, max_attempts, report)
                    if isinstance(outcome, Stale):
                        stale.add(outcome.resource)
                if after_send is not None:
                    after_send(entry)
            mark_all_sent(session, answers)
            report.sent += len(answers)
        report.batches += 1
    if stale:
        _sync_and_settle(app_engine, client, practice, sorted(stale), master_key)
        report.synced = sorted(stale)
    return report


def _record(
    session: Session, entry: OutboxEntry, outcome: Outcome, max_attempts: int, report: PushReport
) -> None:
    """What a failed send means for the entry (the acknowledged ones are recorded together, `mark_all_sent`)."""
    if isinstance(outcome, Retry) and not outcome.counts:
        mark_retry(session, entry, outcome.error, outcome.delay_s)
        report.waiting += 1
    elif isinstance(outcome, Retry) and entry.attempts + 1 >= max_attempts:
        mark_dead(session, entry, f"after {entry.attempts + 1} attempts: {outcome.error}")
        report.dead += 1
    elif isinstance(outcome, Retry):
        mark_retry(session, entry, outcome.error, outcome.delay_s)
        report.retried += 1
    elif isinstance(outcome, Refused):
        mark_dead(session, entry, outcome.reason)
        report.dead += 1
    elif isinstance(outcome, Stale) and entry.attempts + 1 >= max_attempts:
        mark_dead(session, entry, f"after {entry.attempts + 1} attempts: {STALE}")
        report.dead += 1
    elif isinstance(outcome, Stale):
        mark_retry(session, entry, STALE, STALE_WAIT_S)
        report.stale += 1


def _sync_and_settle(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    resources: list[str],
    master_key: bytes,
) -> None:
    """Bring Animana's newer versions in: the loader holds them for the pending rows and the sync settles them in
    each batch's own transaction (`sync_practice`)."""
    sync_practice(app_engine, client, practice, master_key=master_key, resources=resources)
