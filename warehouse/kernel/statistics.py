"""The planner's statistics after a bulk write: what autovacuum's next look would refresh, refreshed now.

A table just filled by a sync has none until autovacuum gets to it (up to a minute, and only past its threshold),
and until then the planner takes a partition of thousands of rows for one row: a settlement's UPDATE of 41 held
appointments by id scanned its whole partition (178 ms instead of under 1 ms). The application role may not
ANALYZE; ``refresh_practice_statistics`` (migration 0570) does it for the practice's own tables.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def refresh_practice_statistics(session: Session, practice_id: int) -> list[str]:
    """ANALYZE the practice's partitions and the tenant tables that changed past autovacuum's threshold (or were
    never analysed), in this transaction; the tables analysed. The practice must be in the session's context."""
    return list(session.execute(text("SELECT refresh_practice_statistics(:p)"), {"p": practice_id}).scalars())
