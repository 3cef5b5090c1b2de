"""Every other place an erased client's personal data was copied to, besides their own row.

Where the warehouse keeps a copy (found by reading every text, jsonb and bytea column of the schema; the erasure
test scans all of them after an erasure, so a place added later without being listed here fails it):

- the search index: ``search_term`` rows of the client (its name words are removed by the client's own trigger;
  its postcode entries are deleted here, whatever postcode the erased row keeps), and through the trigger the
  practice's ``search_word`` and the warehouse's ``search_vocabulary`` for words no one else has;
- the write-back: ``writeback_outbox`` changes/bases (values of the client row as it was), ``writeback_incoming``
  (Animana's version of the row, held), ``writeback_conflict`` fields (both sides' values);
- ``record_merge.duplicate_before``: the duplicate's row as it was before a merge;
- ``audit_log`` details that name the client (a contact edit's old postcode, a merge's labels): rewritten by
  ``audit_redact`` so the chain still verifies;
- raw source text: ``ingest_quarantine`` (an Animana relation that did not load), ``device_message.raw`` and
  ``inbox_detail`` and ``parsed_outcome`` (HL7 PID/NK1 segments may carry the owner's name, address and phone);
- free text typed about the client: appointment reasons, reminder descriptions, invoice line descriptions, and
  the clinical notes of their animals' visits (a note may name the owner; the note stays, the name goes).

Strings are replaced case-insensitively by ``[erased]``. Patient documents and images are clinical and kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

ERASED = "[erased]"
# Client columns holding personal data (the rest are ids, flags and timestamps).
PII_COLUMNS = (
    "title", "initials", "first_name", "last_name", "postcode", "city", "email_enc", "phone_enc", "address_enc",
    "iban_enc", "email_bidx", "phone_bidx", "preferred_channel",
)  # fmt: skip
# Strings shorter than this are not searched for on their own (an initial "J." would erase every "j.").
MIN_NEEDLE = 3


def needle_pattern(strings: Iterable[str | None], *, as_bytes: bool = False) -> str | None:
    """A case-insensitive PostgreSQL pattern matching any of the strings literally (None: nothing to find).

    ``as_bytes``: the pattern for a bytea column read as ``encode(column, 'escape')`` (``_scrub_bytes``): each
    string's UTF-8 bytes as that encoding writes them (a byte above 127 as an octal escape)."""
    needles: set[str] = set()
    for value in strings:
        value = (value or "").strip()
        if len(value) >= MIN_NEEDLE:
            needles.add(_escape_encoded(value.encode("utf-8")) if as_bytes else value)
    if not needles:
        return None
    # Longest first: "Jansen-Smit" before "Jansen". ``re.escape`` puts a backslash before punctuation only, which
    # PostgreSQL's regular expressions read as the character itself too (a backslash before a letter they would not).
    escaped = (re.escape(n) for n in sorted(needles, key=len, reverse=True))
    return "(?:" + "|".join(escaped) + ")"


def _escape_encoded(data: bytes) -> str:
    """``encode(data, 'escape')`` of PostgreSQL: a backslash doubled, NUL and bytes above 127 as octal escapes."""
    return "".join("\\\\" if b == 0x5C else f"\\{b:03o}" if b == 0 or b > 0x7F else chr(b) for b in data)


def scrub_copies(
    session: Session,
    practice_id: int,
    client_ids: Sequence[int],
    patient_ids: Sequence[int],
    animana_ids: Sequence[str],
    strings: Sequence[str | None],
    erased_row: dict[str, Any],
    erasure_id: int,
) -> dict[str, int]:
    """Remove the clients' data from every copy listed in the module docstring; returns rows changed per place.

    ``erased_row``: the client row's PII columns as the erasure left them (what an outbox entry or a conflict
    shows in place of the old values)."""
    pattern = needle_pattern(strings)
    p = {"p": practice_id, "clients": list(client_ids), "patients": list(patient_ids)}
    done: dict[str, int] = {}
    done["search_term"] = session.execute(
        text(
            "DELETE FROM search_term WHERE practice_id = :p AND kind = 'postcode' AND entity_id = ANY(:clients)"
        ),
        p,
    ).rowcount
    done.update(_scrub_writeback(session, p, erased_row))
    done["ingest_quarantine"] = session.execute(
        text(
            "DELETE FROM ingest_quarantine WHERE practice_id = :p AND resource = 'relations' "
            "AND external_id = ANY(:animana)"
        ),
        {**p, "animana": list(animana_ids)},
    ).rowcount
    done["client_consent"] = session.execute(
        text("SELECT erase_consent_notes(:p, :clients)"), {**p, "clients": list(client_ids)}
    ).scalar_one()
    if pattern is None:
        return done
    done["audit_log"] = session.execute(
        text("SELECT audit_redact(:p, ARRAY['client', 'patient'], :ids, :pattern, :erasure)"),
        {**p, "ids": [*client_ids, *patient_ids], "pattern": pattern, "erasure": erasure_id},
    ).scalar_one()
    texts = (
        ("record_merge", ("duplicate_before", "moved", "removed"), "kind = 'client' AND "
         "(survivor_id = ANY(:clients) OR duplicate_id = ANY(:clients))"),
        ("ingest_quarantine", ("raw", "reason"), "true"),
        ("device_message", ("inbox_detail", "parsed_outcome"), "(patient_id = ANY(:patients) OR patient_id IS NULL)"),
        ("appointment", ("reason", "cancel_reason"), "(client_id = ANY(:clients) OR patient_id = ANY(:patients))"),
        ("reminder", ("description",), "(client_id = ANY(:clients) OR patient_id = ANY(:patients))"),
        ("invoice_line", ("description",), "invoice_id IN (SELECT id FROM invoice WHERE practice_id = :p "
         "AND client_id = ANY(:clients))"),
        ("visit", ("reason", "subjective", "objective", "assessment", "plan"), "patient_id = ANY(:patients)"),
        ("referral", ("reason",), "patient_id = ANY(:patients)"),
        ("referral_report", ("findings", "letter"), "referral_id IN (SELECT id FROM referral WHERE practice_id = :p "
         "AND patient_id = ANY(:patients))"),
        # The write-back's copies of the rows above (their changes and bases), and what Animana answered.
        ("writeback_outbox", ("changes", "base", "last_error"), OUTBOX_SCOPE),
        # The messages sent to the client (issue 18): their rendered text names the client and the animal.
        ("message_outbox", ("subject", "body", "reason", "last_error"),
         "(client_id = ANY(:clients) OR patient_id = ANY(:patients))"),
    )  # fmt: skip
    for table, columns, scope in texts:
        done[table] = done.get(table, 0) + _scrub_text(
            session, table, columns, scope, {**p, "pattern": pattern}
        )
    done["device_message"] += _scrub_bytes(
        session, "device_message", "raw", "(patient_id = ANY(:patients) OR patient_id IS NULL)",
        {**p, "pattern": needle_pattern(strings, as_bytes=True)},
    )  # fmt: skip
    return done


# The outbox entries of the client's rows, their animals and the records about either (by table and row id).
OUTBOX_SCOPE = """(
  (table_name = 'client' AND row_id = ANY(:clients)) OR (table_name = 'patient' AND row_id = ANY(:patients))
  OR (table_name = 'appointment' AND row_id IN (SELECT id FROM appointment WHERE practice_id = :p
                                                  AND (client_id = ANY(:clients) OR patient_id = ANY(:patients))))
  OR (table_name = 'visit' AND row_id IN (SELECT id FROM visit WHERE practice_id = :p AND patient_id = ANY(:patients)))
  OR (table_name = 'vaccination' AND row_id IN (SELECT id FROM vaccination WHERE practice_id = :p
                                                  AND patient_id = ANY(:patients)))
  OR (table_name = 'prescription' AND row_id IN (SELECT id FROM prescription WHERE practice_id = :p
                                                   AND patient_id = ANY(:patients)))
  OR (table_name IN ('invoice', 'payment') AND row_id IN (SELECT id FROM invoice WHERE practice_id = :p
                                                            AND client_id = ANY(:clients)
                                                          UNION ALL SELECT id FROM payment WHERE practice_id = :p
                                                            AND client_id = ANY(:clients))))"""


def _scrub_writeback(session: Session, p: dict[str, Any], erased_row: dict[str, Any]) -> dict[str, int]:
    """The outbox entries and conflicts of the client rows show the erased values in place of the old ones (an
    entry still to be sent sends the pseudonym); Animana's held version of the rows is dropped."""
    erased = {c: erased_row.get(c) for c in PII_COLUMNS}
    values = {**p, "erased": json.dumps(erased), "pii": list(PII_COLUMNS)}
    outbox = session.execute(
        text(
            """UPDATE writeback_outbox o
                  SET changes = o.changes || (SELECT coalesce(jsonb_object_agg(k, e.v -> k), '{}'::jsonb)
                                                FROM jsonb_object_keys(o.changes) k, (SELECT CAST(:erased AS jsonb) v) e
                                               WHERE k = ANY(:pii)),
                      base = o.base || (SELECT coalesce(jsonb_object_agg(k, e.v -> k), '{}'::jsonb)
                                          FROM jsonb_object_keys(o.base) k, (SELECT CAST(:erased AS jsonb) v) e
                                         WHERE k = ANY(:pii))
                WHERE o.practice_id = :p AND o.table_name = 'client' AND o.row_id = ANY(:clients)
                  AND (o.changes ?| CAST(:pii AS text[]) OR o.base ?| CAST(:pii AS text[]))"""
        ),
        values,
    ).rowcount
    incoming = session.execute(
        text(
            "DELETE FROM writeback_incoming WHERE practice_id = :p AND table_name = 'client' "
            "AND row_id = ANY(:clients)"
        ),
        p,
    ).rowcount
    # A field of a conflict keeps its rule and decision; its values become the erased one. An open conflict is
    # decided by the erasure (the pseudonym is what both sides get): closed, the row's waiting entries superseded
    # by the erasure's own entry.
    conflicts = session.execute(
        text(
            """UPDATE writeback_conflict c
                  SET fields = (SELECT jsonb_object_agg(f.key, CASE WHEN f.key = ANY(:pii) THEN f.value
                                       || jsonb_build_object('local', e.v -> f.key, 'animana', e.v -> f.key,
                                                             'base', e.v -> f.key)
                                       ELSE f.value END)
                                  FROM jsonb_each(c.fields) f, (SELECT CAST(:erased AS jsonb) v) e),
                      state = CASE WHEN c.state = 'open' THEN 'resolved' ELSE c.state END,
                      resolved_at = CASE WHEN c.state = 'open' THEN now() ELSE c.resolved_at END
                WHERE c.practice_id = :p AND c.table_name = 'client' AND c.row_id = ANY(:clients)"""
        ),
        values,
    ).rowcount
    session.execute(
        text(
            "UPDATE writeback_outbox SET state = 'superseded', last_error = 'replaced by the erasure of the client' "
            "WHERE practice_id = :p AND table_name = 'client' AND row_id = ANY(:clients) AND state = 'held'"
        ),
        p,
    )
    # A merge's record of the duplicate's row: its personal columns as the erasure left them.
    merges = session.execute(
        text(
            """UPDATE record_merge m
                  SET duplicate_before = m.duplicate_before || (
                        SELECT coalesce(jsonb_object_agg(k, e.v -> k), '{}'::jsonb)
                          FROM jsonb_object_keys(m.duplicate_before) k, (SELECT CAST(:erased AS jsonb) v) e
                         WHERE k = ANY(:pii))
                WHERE m.practice_id = :p AND m.kind = 'client' AND m.duplicate_id = ANY(:clients)"""
        ),
        values,
    ).rowcount
    return {"writeback_outbox": outbox, "writeback_incoming": incoming, "writeback_conflict": conflicts,
            "record_merge": merges}  # fmt: skip


def _scrub_text(session: Session, table: str, columns: Sequence[str], scope: str, p: dict[str, Any]) -> int:
    """Replace the pattern in these text or jsonb columns of the rows in scope (the table's and columns' names
    are this module's constants, never input)."""
    column_types = dict(
        session.execute(
            text(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
            ),
            {"t": table},
        ).all()
    )
    sets, hits = [], []
    for column in columns:
        kind = column_types[column]
        as_text = f"CAST({column} AS text)" if kind in ("json", "jsonb") else column
        replaced = f"regexp_replace({as_text}, :pattern, '{ERASED}', 'gi')"
        if kind in ("json", "jsonb"):
            replaced = f"CAST({replaced} AS {kind})"
        sets.append(f"{column} = CASE WHEN {as_text} ~* :pattern THEN {replaced} ELSE {column} END")
        hits.append(f"{as_text} ~* :pattern")
    statement = (
        f"UPDATE {table} SET {', '.join(sets)} "  # noqa: S608 - names are the module's constants
        f"WHERE practice_id = :p AND {scope} AND ({' OR '.join(hits)})"
    )
    return session.execute(text(statement), p).rowcount


def _scrub_bytes(session: Session, table: str, column: str, scope: str, p: dict[str, Any]) -> int:
    """Replace the pattern (``needle_pattern(as_bytes=True)``) in a bytea column, read through PostgreSQL's
    ``escape`` encoding, which ``decode(…, 'escape')`` turns back into exactly the bytes around each match (raw
    device data may hold NUL bytes, which no text type can)."""
    as_text = f"encode({column}, 'escape')"
    statement = (
        f"UPDATE {table} SET {column} = decode(regexp_replace({as_text}, :pattern, '{ERASED}', 'gi'), 'escape') "  # noqa: S608
        f"WHERE practice_id = :p AND {scope} AND {as_text} ~* :pattern"
    )
    return session.execute(text(statement), p).rowcount
