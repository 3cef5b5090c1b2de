"""Verification of the hash-chained audit log, done in the database so millions of rows never leave it.

An entry an erasure redacted (``audit_redaction``, migration 0470) is checked against the hash of its redacted
text kept there; its own ``hash`` still links it to the next entry, so the chain stays whole."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

_VERIFY = text(
    """
    WITH chain AS (
      SELECT practice_id, seq, prev_hash, a.hash,
             encode(sha256(convert_to(prev_hash || audit_payload(practice_id, seq, occurred_at, actor_user_id,
                    action, entity, entity_ids, detail, session_id), 'UTF8')), 'hex') AS recomputed,
             coalesce(r.hash, a.hash) AS expected,
             lag(a.hash) OVER w AS previous_hash,
             lag(seq) OVER w AS previous_seq
      FROM audit_log a
      LEFT JOIN audit_redaction r USING (practice_id, seq)
      WHERE CAST(:practice AS bigint) IS NULL OR practice_id = :practice
      WINDOW w AS (PARTITION BY practice_id ORDER BY seq)
    )
    SELECT practice_id, seq,
           CASE
             WHEN recomputed <> expected THEN 'entry was altered after it was written'
             WHEN seq <> coalesce(previous_seq, 0) + 1 THEN
               format('entries %s..%s are missing', coalesce(previous_seq, 0) + 1, seq - 1)
             WHEN prev_hash <> coalesce(previous_hash, repeat('0', 64)) THEN 'link to the previous entry is broken'
           END AS problem
    FROM chain
    WHERE recomputed <> expected
       OR seq <> coalesce(previous_seq, 0) + 1
       OR prev_hash <> coalesce(previous_hash, repeat('0', 64))
    UNION ALL
    SELECT h.practice_id, h.seq, format('newest entries up to %s are missing (chain head says %s)',
                                       h.seq, coalesce(last.seq, 0))
    FROM audit_chain_head h
    LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log a WHERE a.practice_id = h.practice_id
                       ORDER BY seq DESC LIMIT 1) last ON true
    WHERE (coalesce(last.seq, 0) <> h.seq OR coalesce(last.hash, repeat('0', 64)) <> h.hash)
      AND (CAST(:practice AS bigint) IS NULL OR h.practice_id = :practice)
    ORDER BY 1, 2
    """
)


@dataclass(frozen=True)
class ChainProblem:
    practice_id: int
    seq: int
    problem: str


@dataclass(frozen=True)
class ChainReport:
    entries_checked: int
    practices_checked: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(session: Session, practice_id: int | None = None) -> ChainReport:
    """Check every visible practice's chain (or only ``practice_id``'s): each hash recomputes, seqs have no
    gaps, links match, and the chain head matches the last entry (so deleting the newest entries is caught
    too)."""
    params = {"practice": practice_id}
    problems = [ChainProblem(p, s, msg) for p, s, msg in session.execute(_VERIFY, params)]
    entries, practices = session.execute(
        text(
            "SELECT count(*), count(DISTINCT practice_id) FROM audit_log "
            "WHERE CAST(:practice AS bigint) IS NULL OR practice_id = :practice"
        ),
        params,
    ).one()
    return ChainReport(entries_checked=entries, practices_checked=practices, problems=problems)


def record(
    session: Session,
    *,
    practice_id: int,
    action: str,
    entity: str,
    entity_ids: list[int] | None = None,
    detail: dict | None = None,
) -> None:
    """Write an audit entry the triggers cannot see, such as reading a clinical record or a system bypass."""
    session.execute(
        text(
            "INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash) "
            "VALUES (:p, :action, :entity, :ids, CAST(:detail AS jsonb), '', '')"
        ),
        {
            "p": practice_id,
            "action": action,
            "entity": entity,
            "ids": entity_ids,
            "detail": json.dumps(detail or {}),
        },
    )
