"""The dispatcher: push a linked practice's outbox to Animana, batch by batch.

Each batch is one transaction under the practice's RLS context: claim due entries (`outbox.due_entries`, which
keeps per-record order and skips entries another dispatcher holds), send them (`Sender`), record the outcomes (the
acknowledged ones together, `outbox.mark_all_sent`), and commit once. A claim holds at most one entry of a record,
so the batch's writes are independent except a child created with its parent: they go in waves (`_waves`), each
wave's writes ``concurrency`` at a time — Animana is a cloud API, and one write at a time would cap a practice at
one round trip per write (at 100 ms, 10 writes/s: less than a busy practice makes). A dispatcher killed mid-batch
loses nothing: its uncommitted claims are pending again and are re-sent with the same idempotency keys, which
Animana answers without a second effect.

While a full batch's writes are in flight, the next batch is claimed (and its parents read) in a transaction of its
own on another thread (`_Claim`), and the batch before is recorded and committed there (`_commit`): under load the
claim cost about as much as a third of the batch's HTTP writes and the recording a sixth, and done in turn they
left Animana idle meanwhile. This is as safe as two dispatchers: the claim skips the entries the
batch in flight holds (SKIP LOCKED), and as those are still open, the later entries of their records are not the
oldest open ones and are not claimed either — per-record order holds. A parent the batch in flight creates is
learnt from its answer (`BatchRefs.learn`) before the next batch is sent. Killed, every open transaction rolls back.

Outcomes: sent → done (the row gets the Animana id and version); 429 → due again after Retry-After; 5xx, timeout
or a lost answer → exponential backoff with jitter, a dead letter after `max_attempts` with the last reason;
422/409/404 → a dead letter with Animana's message; 412 (the record changed in Animana) → pending, and after the
batch the resource is synced and the held change settled, which decides whether the entry goes again (now
conditional on the new version), waits on a conflict, or is superseded by its resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from sqlalchemy import Engine

from connectors.animana.client import AnimanaClient
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.sync.practice import sync_practice
from connectors.animana.sync.records import load_records
from connectors.animana.writeback.refs import BatchRefs
from connectors.animana.writeback.sender import (
    STALE,
    Outcome,
    Refused,
    Retry,
    Sender,
    Sent,
    Stale,
    request_key,
)
from warehouse.integration.outbox import (
    Answer,
    HandOver,
    OutboxEntry,
    due_entries,
    forget_handed,
    mark_all_sent,
    mark_dead,
    mark_retry,
    note_handed,
    parents_of,
)
from warehouse.kernel.tenancy import AccessContext, tenant_session

MAX_ATTEMPTS = 12
# Entries a batch claims. A claim and a commit cost ~5-10 ms of this process's CPU whatever their size, which the
# writer threads wait for under the GIL: bench/writeback.py, rounds of 200 writes, 4 in flight, 100 against 200
# alternately: dispatcher ÷ bare 0.74/0.78/0.81 against 0.84/0.84/0.81. A larger batch only holds its claims longer
# (a killed dispatcher's are pending again, sent with the same keys).
BATCH = 200
FIRST_BATCH = 16  # the first claim of a push (see `push`)
STALE_WAIT_S = 30.0  # a stale entry waits this long for the sync + settlement to decide it
CONCURRENCY = 4  # HTTP writes of one batch in flight at once (Animana's 429s slow it down when it must)


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
    concurrency: int = CONCURRENCY,
) -> PushReport:
    """Push the practice's due entries until none is due, ``max_entries`` are handled or ``deadline``
    (``time.monotonic()``) has passed. Entries of native modules are never sent. ``after_send``: called after each
    HTTP write (progress, tests)."""
    sender = sender or Sender(client)
    report = PushReport(practice.code)
    stale: dict[str, list[dict[str, Any]]] = {}  # resource → Animana's current records its 412s carried
    context = AccessContext.for_practices([practice.practice_id])

    def claim(limit: int) -> _Claim:
        return _Claim(app_engine, context, practice.practice_id, limit, master_key)

    def more_wanted(handled: int) -> int:
        """How many entries the next batch may claim (0: stop)."""
        if deadline is not None and time.monotonic() >= deadline:
            return 0
        return max(0, min(batch_size, max_entries - handled))

    with (
        ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="writeback") as writers,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="writeback-books") as bookkeeper,
    ):
        # A small first claim: the first writes leave at once and the full batch after it is claimed while they
        # are out (measured: a claim of 100 kept Animana idle ~20 ms at the start of every push).
        batch: _Claim | None = claim(min(FIRST_BATCH, more_wanted(0))) if more_wanted(0) else None
        following: Future[_Claim] | None = None
        recording: Future[None] | None = None  # the last batch sent, being recorded and committed
        try:
            while batch is not None and batch.entries:
                next_limit = more_wanted(report.handled + len(batch.entries))
                # A full batch means a backlog: the next one is claimed while this one is sent.
                if len(batch.entries) == batch.limit and next_limit:
                    following = bookkeeper.submit(claim, next_limit)
                answers: list[Answer] = []
                created: list[tuple[str, int, str]] = []
                for wave in _waves(batch.entries):
                    # The session is the main thread's again once every write of the wave has its outcome.
                    outcomes = writers.map(sender.send, wave, repeat(practice.animana_id), repeat(batch.refs))
                    for entry, outcome in zip(wave, list(outcomes), strict=True):
                        if isinstance(outcome, Sent):
                            answers.append((entry, outcome.animana_id, outcome.version))
                            if entry.operation == "insert" and outcome.animana_id is not None:
                                batch.refs.learn(entry.table_name, entry.row_id, outcome.animana_id)
                                created.append((entry.table_name, entry.row_id, outcome.animana_id))
                        else:
                            _record(batch, entry, outcome, max_attempts, report)
                            if isinstance(outcome, Stale):
                                records = stale.setdefault(outcome.resource, [])
                                # Not a deletion's: loaded, the record would come back as a row deleted here.
                                if entry.operation != "delete":
                                    records.append(outcome.current)
                        if after_send is not None:
                            after_send(entry)
                if recording is not None:  # long done (it ran while this batch was sent); its error stops us
                    recording.result()
                # Recorded and committed on the bookkeeper's thread while the next batch is sent: the batches'
                # HTTP writes follow each other without waiting for the database.
                recording = bookkeeper.submit(_commit, batch, answers)
                sent_batch_followed = any(entry.followed for entry in batch.entries)
                report.sent += len(answers)
                report.batches += 1
                batch = None
                if following is not None:
                    batch, following = following.result(), None
                    for table, row_id, animana_id in created:  # its parents as they are now in Animana
                        batch.refs.learn(table, row_id, animana_id)
                if (
                    (batch is None or not batch.entries)
                    and sent_batch_followed
                    and more_wanted(report.handled)
                ):
                    # Nothing claimed meanwhile, but later changes of the batch's records wait behind it: they are
                    # the oldest open ones once it is committed. (Entries made while the push ran are the next
                    # push's.)
                    recording.result()
                    if batch is not None:
                        batch.abandon()
                    batch = claim(more_wanted(report.handled))
            if recording is not None:
                recording.result()
        finally:  # an error: whatever is still claimed goes back to pending; what was sent is still recorded
            if batch is not None:
                batch.abandon()
            if following is not None and following.exception() is None:
                following.result().abandon()
            if recording is not None:  # its own error, if any, is raised above or yields to the one in flight
                wait([recording])
    if stale:
        _sync_and_settle(app_engine, client, practice, stale, master_key)
        report.synced = sorted(stale)
    return report


class _Claim:
    """A batch of claimed entries in a transaction of its own, open (holding them) until it commits: the entries
    and their parents (`BatchRefs`)."""

    def __init__(
        self, app_engine: Engine, context: AccessContext, practice_id: int, limit: int, master_key: bytes
    ) -> None:
        self.limit = limit
        self._transaction = ExitStack()
        self.session = self._transaction.enter_context(tenant_session(app_engine, context))
        try:
            self.entries = due_entries(self.session, practice_id, limit, master_key=master_key)
            self.handed: dict[int, HandOver] = {}  # what the entries' earlier hand-overs were (see `_record`)
            if self.entries:  # committed before any of them goes out: a kill mid-send leaves the trace
                with tenant_session(app_engine, context) as handing:
                    self.handed = note_handed(
                        handing, practice_id, {e.id: request_key(e) for e in self.entries}
                    )
            self.refs = BatchRefs(self.session, practice_id)
            self.refs.prefetch(self.entries)
        except BaseException:
            self.abandon()
            raise

    def commit(self) -> None:
        self._transaction.close()

    def abandon(self) -> None:
        """Roll back: the claims are pending again."""
        self._transaction.__exit__(_Abandoned, _Abandoned(), None)


def _commit(batch: _Claim, answers: list[Answer]) -> None:
    """Record the batch's acknowledged entries (its failed ones were recorded as their outcomes came) and commit."""
    mark_all_sent(batch.session, answers)
    batch.commit()


class _Abandoned(Exception):  # noqa: N818 — the reason a claim's transaction is rolled back, never raised
    pass


def _waves(entries: list[OutboxEntry]) -> Iterator[list[OutboxEntry]]:
    """The batch in waves that can each be written at once: an entry whose row points at a row created by another
    entry of the batch waits for the wave after that one (its parent's Animana id comes with the answer)."""
    created = {(e.table_name, e.row_id) for e in entries if e.operation == "insert"}
    wave_of: dict[tuple[str, int], int] = {}
    waves: list[list[OutboxEntry]] = []
    for entry in entries:
        after = [wave_of.get(parent, 0) + 1 for parent in _parent_rows(entry) if parent in created]
        wave = max(after, default=0)
        wave_of[(entry.table_name, entry.row_id)] = wave
        waves.extend([] for _ in range(wave + 1 - len(waves)))
        waves[wave].append(entry)
    yield from (wave for wave in waves if wave)


def _parent_rows(entry: OutboxEntry) -> Iterator[tuple[str, int]]:
    for column, parent in parents_of(entry.table_name):
        if entry.row.get(column) is not None:
            yield parent, entry.row[column]
    for client_id in entry.row.get("client_ids", ()):  # a patient's owners travel on the animal
        yield "client", client_id


def _record(
    batch: _Claim, entry: OutboxEntry, outcome: Outcome, max_attempts: int, report: PushReport
) -> None:
    """What a failed send means for the entry (the acknowledged ones are recorded together, `mark_all_sent`).

    An answer proving that no hand-over of the entry was taken takes its hand-over mark back (`none_taken`):
    Animana holding the entry's value is then an Animana user's edit, which the settlement must not take for ours
    come back."""
    session = batch.session
    hand_over = batch.handed.get(entry.id)
    if hand_over is not None and none_taken(outcome, hand_over):
        forget_handed(session, entry.practice_id, [entry.id])
    if isinstance(outcome, Retry) and not outcome.counts:
        mark_retry(session, entry, outcome.error, outcome.delay_s, counts=False)
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


def none_taken(outcome: Outcome, hand_over: HandOver) -> bool:
    """Whether Animana's answer proves that none of the entry's hand-overs was taken. A refusal made after looking the
    request's key up (412, 422, 409, 404) covers every hand-over that was this same request — Animana would have
    replayed its first answer had it taken one; a refusal made before (429, sign-in refused) or no request at all (a
    parent still on its way) covers this hand-over only. A 5xx, a timeout or a lost answer proves nothing."""
    if isinstance(outcome, Stale) or (isinstance(outcome, Refused) and not outcome.maybe_applied):
        return hand_over.same_request
    if isinstance(outcome, Retry) and not outcome.maybe_applied:
        return hand_over.first
    return False


def _sync_and_settle(
    app_engine: Engine,
    client: AnimanaClient,
    practice: LinkedPractice,
    stale: dict[str, list[dict[str, Any]]],
    master_key: bytes,
) -> None:
    """Bring Animana's newer versions in: the records the refusals carried first (`load_records`: a row behind a
    version the sync's cursor has passed gets it only this way), then whatever else changed; the loader holds them
    for the pending rows and the sync settles them (`sync_practice`)."""
    load_records(app_engine, practice, stale, master_key=master_key)
    sync_practice(app_engine, client, practice, master_key=master_key, resources=sorted(stale))
