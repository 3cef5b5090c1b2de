"""Which linked practices have write-back work due now: the Dagster sensor's question, asked every minute, so it
stays one indexed query (the partial index on pending entries by ``next_attempt_at``).

An entry counts when the dispatcher would claim it (`outbox.due_entries`): pending, due, the oldest open entry of
its row, and not of a module gone native. A practice not linked to Animana has nothing to send to."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_DUE = text(
    """
    SELECT t.id, t.code, count(*) AS due, max(o.id) AS newest, sum(o.attempts) AS attempts
      FROM writeback_outbox o
      JOIN tenant t ON t.id = o.practice_id
     WHERE o.state = 'pending' AND o.next_attempt_at <= now()
       AND t.animana_practice_id IS NOT NULL AND t.offboarded_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM writeback_outbox earlier
                        WHERE earlier.practice_id = o.practice_id AND earlier.table_name = o.table_name
                          AND earlier.row_id = o.row_id AND earlier.id < o.id
                          AND earlier.state IN ('pending', 'held', 'dead'))
       AND coalesce((SELECT m.mode FROM practice_module_mode m
                      WHERE m.practice_id = o.practice_id AND m.module = o.module), 'animana') <> 'native'
     GROUP BY t.id, t.code
     ORDER BY t.code
    """
)


@dataclass(frozen=True)
class DuePractice:
    practice_id: int
    code: str
    due: int  # entries the dispatcher would claim now
    newest_entry: int
    attempts: int  # summed over the due entries: grows with every retry, so a retried batch reads as new work

    @property
    def signature(self) -> str:
        """Equal for the same due work: a sensor's run key, so one batch of work asks for one run."""
        return f"{self.code}:{self.newest_entry}:{self.attempts}"


def practices_with_due_entries(session: Session) -> list[DuePractice]:
    """Every linked practice with due entries (a cross-practice read: a system session, or a context holding
    the practices asked about)."""
    return [DuePractice(r.id, r.code, r.due, r.newest, int(r.attempts)) for r in session.execute(_DUE).all()]
