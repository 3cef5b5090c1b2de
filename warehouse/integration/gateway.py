"""Write-through for `animana` mode: a local write of a linked practice whose module Animana still owns goes to
Animana before it is committed here, and Animana's answer decides.

The write itself runs as any other (services, pages, raw SQL): the capture triggers leave its outbox entries in the
transaction. `install_write_through` hooks the session's commit: the entries *this transaction* created, for a
module in `animana` mode, are sent synchronously through an `UpstreamSender` (a port: the warehouse may not import
the Animana connector; `connectors.animana.writeback.write_through` implements it with the dispatcher's own send
path). Animana's refusal raises `UpstreamRefused` with its field messages, an outage `UpstreamUnavailable`; either
rolls the whole transaction back, so nothing is saved here that Animana did not take. On success the entries are
done and the rows carry the Animana id and version at once. A practice not linked to Animana keeps its entries
pending, saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Row, event, text
from sqlalchemy.orm import Session

from warehouse.integration.errors import IntegrationError
from warehouse.integration.outbox import OutboxEntry, due_entries, mark_sent, note_waiting
from warehouse.integration.tables import MIRRORED

NOT_LINKED = "praktijk niet gekoppeld aan Animana"


class UpstreamRefused(IntegrationError):
    """Animana refused the write (422 field errors, 409 a clash such as a double booking): nothing was saved.
    ``fields``: Animana's message per field of its record (the form shows them at its fields)."""

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        self.fields = dict(fields or {})
        super().__init__(next(iter(self.fields), ""), message)


class UpstreamUnavailable(IntegrationError):
    """Animana could not be reached (or kept failing within the short budget of a person waiting)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


@dataclass(frozen=True)
class UpstreamAnswer:
    animana_id: str | None
    version: str | None


class UpstreamSender(Protocol):
    def send(self, session: Session, entry: OutboxEntry, animana_practice_id: int) -> UpstreamAnswer:
        """Write one entry to Animana now; raise `UpstreamRefused` or `UpstreamUnavailable` when it did not."""
        ...


# The pending entries of modules in animana mode made by this very transaction: inserted by it or by one of its
# subtransactions (savepoints), i.e. visible rows whose inserting transaction is still in progress — only this one
# can be. ``xmin`` is a 32-bit xid: it is widened to the xid8 ``pg_xact_status`` needs within this transaction's
# epoch, and only for xids from this transaction's own (assigned first) on, below the next xid to be assigned.
# A transaction that wrote nothing has no xid: then nothing is read at all.
_MINE = """
WITH me AS (SELECT pg_current_xact_id_if_assigned()::text::bigint AS top,
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next),
     candidate AS (
  SELECT o.id, o.practice_id, o.table_name, o.row_id, t.animana_practice_id,
         me.top - me.top % 4294967296 + o.xmin::text::bigint
           + CASE WHEN o.xmin::text::bigint < me.top % 4294967296 THEN 4294967296 ELSE 0 END AS xid
    FROM me, writeback_outbox o
    JOIN tenant t ON t.id = o.practice_id
    LEFT JOIN practice_module_mode m ON m.practice_id = o.practice_id AND m.module = o.module
   WHERE me.top IS NOT NULL AND o.state = 'pending' AND coalesce(m.mode, 'animana') = 'animana')
SELECT c.id, c.practice_id, c.table_name, c.row_id, c.animana_practice_id FROM candidate c, me
 WHERE CASE WHEN c.xid >= me.top AND c.xid < me.next THEN pg_xact_status(c.xid::text::xid8) = 'in progress'
            ELSE false END
 ORDER BY c.id
"""


def install_write_through(session: Session, sender: UpstreamSender, *, master_key: bytes) -> None:
    """Send this session's animana-mode outbox entries to Animana when it commits (see the module docstring)."""

    @event.listens_for(session, "before_commit")
    def _write_through(session: Session) -> None:
        session.flush()  # the ORM's pending changes, so their triggers have left their entries
        write_through(session, sender, master_key=master_key)


def write_through(session: Session, sender: UpstreamSender, *, master_key: bytes) -> int:
    """Send this transaction's animana-mode entries now, in order; how many reached Animana."""
    mine = session.execute(text(_MINE)).all()
    unlinked = [m for m in mine if m.animana_practice_id is None]
    if unlinked:
        note_waiting(session, [(m.practice_id, m.id) for m in unlinked], NOT_LINKED)
    sent = 0
    for practice_id in sorted({m.practice_id for m in mine if m.animana_practice_id is not None}):
        ours = [m for m in mine if m.practice_id == practice_id]
        animana_practice_id = int(ours[0].animana_practice_id)
        remaining = {m.id for m in ours}
        while remaining:  # one entry per row at a time: a row's second change follows its first
            entries = due_entries(session, practice_id, len(remaining), master_key=master_key, ids=remaining)
            if not entries:
                raise UpstreamRefused(_blocked(ours, remaining))
            for entry in entries:
                answer = sender.send(session, entry, animana_practice_id)
                mark_sent(session, entry, answer.animana_id, answer.version)
                remaining.discard(entry.id)
                sent += 1
    return sent


def _blocked(ours: list[Row[Any]], remaining: set[int]) -> str:
    row = next(m for m in ours if m.id in remaining)
    label = MIRRORED[row.table_name].label
    return (
        f"Eerdere wijziging van {label} {row.row_id} staat nog niet in Animana (zie Integratie); "
        "deze wijziging wacht daarop en is niet opgeslagen."
    )
