"""Compaction after erasures: the erased values leave the database's files, not only its rows.

An erasure rewrites rows (the client's own, and every copy ``copies.scrub_copies`` finds), and PostgreSQL keeps the
old version of a rewritten row in the table's pages until they are reused; plain VACUUM marks the space free but
does not overwrite it, and an index keeps its entries' bytes until it is rebuilt. A base backup copies those pages:
a backup taken after an erasure would still hold the erased name, and its generation's key would only be destroyed
by a later erasure (``vetconnect.backup_forget``). ``VACUUM FULL`` writes each table and its indexes anew, without
the dead versions, and drops the old files.

So a full backup first compacts the tables erasures rewrote since the previous full backup: of a partitioned table
only the erased practices' partitions. VACUUM FULL holds an exclusive lock on each table while it rewrites it (a
practice's partition, or a shared table like ``client``, for seconds at a medium practice) — backups run at night.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, text

# Every table an erasure rewrites or deletes from: the client row, its search entries and those the client's
# trigger changes (``search_word``, ``search_vocabulary``), and the copies of ``copies.scrub_copies``.
REWRITTEN_TABLES = (
    "client", "client_consent", "search_term", "search_word", "search_vocabulary", "writeback_outbox",
    "writeback_incoming", "writeback_conflict", "ingest_quarantine", "record_merge", "audit_log", "device_message",
    "appointment", "reminder", "invoice_line", "visit", "referral", "referral_report", "message_outbox",
)  # fmt: skip


def tables_to_compact(admin_engine: Engine, since: dt.datetime | None) -> list[str]:
    """The tables (or partitions) holding dead versions of rows erased after ``since`` (None: ever)."""
    with admin_engine.connect() as conn:
        practices = conn.scalars(
            text(
                "SELECT DISTINCT practice_id FROM client_erasure "
                "WHERE CAST(:since AS timestamptz) IS NULL OR erased_at > :since ORDER BY 1"
            ),
            {"since": since},
        ).all()
        if not practices:
            return []
        partitioned = set(conn.scalars(text("SELECT practice_partitioned_tables()")))
    return [
        name
        for table in REWRITTEN_TABLES
        for name in ([f"{table}_p{p}" for p in practices] if table in partitioned else [table])
    ]


def compact(admin_engine: Engine, tables: list[str]) -> None:
    """``VACUUM FULL`` each table (outside a transaction, as VACUUM must run)."""
    with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f'VACUUM (FULL) "{table}"'))
