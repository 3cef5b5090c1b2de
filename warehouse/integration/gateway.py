"""Write-through for `animana` mode: a local write of a linked practice whose module Animana still owns goes to
Animana before it is committed here, and Animana's answer decides.

The write itself runs as any other (services, pages, raw SQL): the capture triggers leave its outbox entries in the
transaction. `install_write_through` hooks the session's commit: the entries *this transaction* created, for a
module in `animana` mode, are sent synchronously through an `UpstreamSender` (a port: the warehouse may not import
the Animana connector; `connectors.animana.writeback.write_through` implements it with the dispatcher's own send
path). Animana's refusal raises `UpstreamRefused` with its field messages, an outage `UpstreamUnavailable`; either
rolls the whole transaction back, so nothing is saved here that Animana did not take. On success the entries are
done and the rows carry the Animana id and version at once. A practice not linked to Animana captures nothing
(there is no Animana to tell), so it never reaches here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Row, event, text
from sqlalchemy.orm import Session

from warehouse.integration.errors import IntegrationError
from warehouse.integration.outbox import OutboxEntry, due_entries, mark_sent
from warehouse.integration.tables import MIRRORED


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


# The pending entries of modules in animana mode made by this very transaction (``written_in`` is the top-level
# transaction id, the same inside its savepoints). A transaction that wrote nothing has no id: nothing is read.
_MINE = """
SELECT o.id, o.practice_id, o.table_name, o.row_id, t.animana_practice_id
  FROM writeback_outbox o
  JOIN tenant t ON t.id = o.practice_id
  LEFT JOIN practice_module_mode m ON m.practice_id = o.practice_id AND m.module = o.module
 WHERE o.written_in = pg_current_xact_id_if_assigned()::text::bigint AND o.state = 'pending'
   AND coalesce(m.mode, 'animana') = 'animana'
 ORDER BY o.id
"""


def install_write_through(session: Session, sender: UpstreamSender, *, master_key: bytes) -> None:
    """Send this session's animana-mode outbox entries to Animana when it commits (see the module docstring)."""

    @event.listens_for(session, "before_commit")
    def _write_through(session: Session) -> None:
        # SQLAlchemy announces a savepoint's release as a commit too; Animana hears of the writes only when the
        # whole transaction commits (a later failure in it would otherwise leave them there and not here).
        if session.in_nested_transaction():
            return
        session.flush()  # the ORM's pending changes, so their triggers have left their entries
        write_through(session, sender, master_key=master_key)


def write_through(session: Session, sender: UpstreamSender, *, master_key: bytes) -> int:
    """Send this transaction's animana-mode entries now, in order; how many reached Animana."""
    mine = session.execute(text(_MINE)).all()
    sent = 0
    for practice_id in sorted({m.practice_id for m in mine}):
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
        f"An earlier change to {label} {row.row_id} has not reached Animana yet (see Integration); "
        "this change waits for it and was not saved."
    )
