"""The planner's statistics after a bulk write, refreshed now rather than at autovacuum's next look.

A table just filled by a sync has none until autovacuum gets to it (up to a minute, and only past its threshold),
and until then the planner takes a partition of thousands of rows for one row: a settlement's UPDATE of 41 held
appointments by id scanned its whole partition (178 ms instead of under 1 ms). The application role may not
ANALYZE; ``refresh_practice_statistics`` (migrations 0570, 0590) does it for the practice's own tables. Only after
a bulk change (never analysed, or more rows changed than the table had): ordinary growth is autovacuum's, and
analysing a shared table past autovacuum's 10 % cost an incremental sync up to 266 ms now and then.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def refresh_practice_statistics(session: Session, practice_id: int) -> list[str]:
    """ANALYZE the practice's partitions and the tenant tables never analysed or changed by more than their size
    (+ autovacuum's 50 rows) since, in this transaction; the tables analysed. The practice must be in the session's context."""
    return list(session.execute(text("SELECT refresh_practice_statistics(:p)"), {"p": practice_id}).scalars())
