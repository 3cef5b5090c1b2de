"""What the checks judge, read in one go: the database's facts in one audited system session (health spans
practices), the backups from their directory, the MLLP listeners by a TCP connect, Animana through the probe
the shell passes in (the warehouse never imports the connector)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from warehouse.integration.status import ModuleStatus, integration_status
from warehouse.kernel.tenancy import system_session
from warehouse.migrations.runner import head_revision

# Given an Animana practice id, a cheap authenticated GET: None when it answered, else why it did not.
AnimanaProbe = Callable[[int], str | None]
SYSTEM_REASON = "health checks: sync, write-back and device queues of every practice"


@dataclass(frozen=True)
class LinkedPractice:
    practice_id: int
    code: str
    animana_practice_id: int


@dataclass(frozen=True)
class Queue:
    """Entries waiting in one practice's queue (write-back states, conflicts, the device inbox)."""

    practice_code: str
    kind: str
    count: int
    oldest: dt.datetime | None


@dataclass(frozen=True)
class Backup:
    label: str
    kind: str
    finished_at: dt.datetime
    size_bytes: int


@dataclass(frozen=True)
class DatabaseFacts:
    revision: str | None
    head: str | None
    linked: list[LinkedPractice]
    modules: list[ModuleStatus]
    outbox: list[Queue]  # kind: the outbox state (pending, held, dead)
    conflicts: list[Queue]
    device_inbox: list[Queue]


@dataclass(frozen=True)
class Facts:
    now: dt.datetime
    database: DatabaseFacts | None
    database_error: str | None
    animana: dict[str, str | None] | None  # practice code -> None (answered) or why not; None: no probe
    mllp: dict[str, str | None]  # "host:port" -> None (accepts connections) or why not
    backups_dir: Path
    backup: Backup | None


_OUTBOX = text(
    "SELECT t.code, o.state, count(*) AS n, min(o.created_at) AS oldest FROM writeback_outbox o "
    "JOIN tenant t ON t.id = o.practice_id WHERE o.state IN ('pending', 'held', 'dead') GROUP BY 1, 2 ORDER BY 1, 2"
)
_CONFLICTS = text(
    "SELECT t.code, count(*) AS n, min(c.detected_at) AS oldest FROM writeback_conflict c "
    "JOIN tenant t ON t.id = c.practice_id WHERE c.state = 'open' GROUP BY 1 ORDER BY 1"
)
_DEVICE_INBOX = text(
    "SELECT t.code, count(*) AS n, min(m.received_at) AS oldest FROM device_message m "
    "JOIN tenant t ON t.id = m.practice_id WHERE m.status = 'inbox' GROUP BY 1 ORDER BY 1"
)
_PRACTICES = text(
    "SELECT id, code, animana_practice_id FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL ORDER BY code"
)


def _database_facts(session: Session) -> DatabaseFacts:
    practices = session.execute(_PRACTICES).all()
    linked = [
        LinkedPractice(p.id, p.code, int(p.animana_practice_id))
        for p in practices
        if p.animana_practice_id is not None
    ]
    return DatabaseFacts(
        revision=None,
        head=None,
        linked=linked,
        modules=integration_status(session, [p.id for p in practices]),
        outbox=[Queue(r.code, r.state, r.n, r.oldest) for r in session.execute(_OUTBOX)],
        conflicts=[Queue(r.code, "open", r.n, r.oldest) for r in session.execute(_CONFLICTS)],
        device_inbox=[Queue(r.code, "inbox", r.n, r.oldest) for r in session.execute(_DEVICE_INBOX)],
    )


def read_database(admin_engine: Engine) -> DatabaseFacts:
    """The schema revision (a plain connection: ``alembic_version`` is no tenant data), then everything else in
    ONE audited system session."""
    with admin_engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    with system_session(admin_engine, reason=SYSTEM_REASON) as session:
        facts = _database_facts(session)
    return replace(facts, revision=revision, head=head_revision())


def newest_backup(backups_dir: Path) -> Backup | None:
    """The newest complete backup: a directory with PostgreSQL's ``backup_manifest`` and our ``vetconnect.json``
    (written last by ``vetconnect backup create``, so a backup still being taken is not counted)."""
    found = []
    for manifest in backups_dir.glob("*/backup_manifest"):
        described = manifest.with_name("vetconnect.json")
        try:
            meta = json.loads(described.read_text())
            finished = dt.datetime.fromisoformat(meta["finished_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not (yet) a complete backup
        if finished.tzinfo is None:
            finished = finished.replace(tzinfo=dt.UTC)
        found.append(Backup(str(meta.get("label", manifest.parent.name)), str(meta.get("kind", "?")), finished,
                            int(meta.get("size_bytes", 0))))  # fmt: skip
    return max(found, key=lambda b: b.finished_at, default=None)


def tcp_refusal(address: str, timeout: float) -> str | None:
    """None when ``host:port`` accepts a TCP connection, else why not."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except ValueError:
        return f"{address!r} is not host:port"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
