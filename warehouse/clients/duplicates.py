"""Likely duplicates of a client about to be registered: the same phone number or e-mail address (through the blind
index, the values themselves are stored only encrypted) or a similar last name at the same postcode.

One query of three branches, each on an index of its own (checked with EXPLAIN on a million clients; branches, not
one OR, with which the planner read all of a practice's clients): ``ix_client_phone_bidx`` and
``ix_client_email_bidx`` (practice, keyed hash), and
``ix_client_postcode`` (practice, postcode) for the names. The name is compared with pg_trgm's
``similarity`` only among the practice's clients at that postcode — a handful — rather than through the trigram
index, whose matches for a common name (Jansen, de Vries) run into the thousands across the franchise's practices.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel.ciphers import every_practice_cipher

# pg_trgm's own default threshold for "similar" (its % operator): Jansen ~ Janssen (0.67), Vries ~ de Vries.
NAME_SIMILARITY = 0.3

# Each branch reads its few rows with what the answer shows (no join back: the planner would read the whole
# practice for it). Every condition is leakproof, so each is an index condition under RLS.
CANDIDATES = text(
    """
    WITH hit AS (
      SELECT id, title, initials, first_name, last_name, postcode, city, 'phone' AS why FROM client
       WHERE practice_id = :p AND phone_bidx = ANY (CAST(:phones AS bytea[])) AND deleted_at IS NULL
      UNION ALL
      SELECT id, title, initials, first_name, last_name, postcode, city, 'email' FROM client
       WHERE practice_id = :p AND email_bidx = ANY (CAST(:emails AS bytea[])) AND deleted_at IS NULL
      UNION ALL
      SELECT id, title, initials, first_name, last_name, postcode, city, 'name' FROM client
       WHERE practice_id = :p AND postcode = ANY (CAST(:postcodes AS text[])) AND deleted_at IS NULL
         AND similarity(last_name, :last_name) >= :threshold
    )
    SELECT id, title, initials, first_name, last_name, postcode, city,
           bool_or(why = 'phone') AS same_phone, bool_or(why = 'email') AS same_email,
           bool_or(why = 'name') AS similar_name
      FROM hit
     GROUP BY id, title, initials, first_name, last_name, postcode, city
     ORDER BY bool_or(why <> 'name') DESC, similarity(last_name, :last_name) DESC, id
     LIMIT :limit
    """
)


def _spellings(postcode: str | None) -> list[str]:
    """Both ways a postcode is stored: Animana sends ``1234AB`` and ``1234 AB`` alike, registration the latter."""
    if not postcode:
        return []
    compact = postcode.replace(" ", "")
    return [compact, f"{compact[:4]} {compact[4:]}"]


@dataclass(frozen=True)
class DuplicateCandidate:
    client_id: int
    name: str
    postcode: str | None
    city: str | None
    reasons: tuple[str, ...]  # why it may be the same person, e.g. ("same phone number",)


def likely_duplicates(
    session: Session,
    practice_id: int,
    *,
    last_name: str,
    postcode: str | None,
    phone: str | None,
    email: str | None,
    master_key: bytes,
    limit: int = 10,
) -> list[DuplicateCandidate]:
    """The practice's clients that may be this person, exact matches (phone, e-mail) first, then by how similar
    the name is. ``phone``, ``email`` and ``postcode`` are expected normalised (as registration stores them)."""
    ciphers = every_practice_cipher(
        session, [practice_id], master_key
    )  # an index written under an older key too
    phones = [i for i in (c.phone_index(phone) for c in ciphers) if i is not None]
    emails = [i for i in (c.email_index(email) for c in ciphers) if i is not None]
    rows = session.execute(
        CANDIDATES,
        {"p": practice_id, "phones": phones, "emails": emails, "last_name": last_name, "threshold": NAME_SIMILARITY,
         "postcodes": _spellings(postcode), "limit": limit},
    )  # fmt: skip
    candidates = []
    for row in rows:
        reasons = [label for label, hit in (("same phone number", row.same_phone),
                                            ("same e-mail address", row.same_email)) if hit]  # fmt: skip
        if row.similar_name:
            reasons.append(f"similar name at {row.postcode}")
        given = row.first_name or row.initials
        name = " ".join(p for p in (row.title, given, row.last_name) if p)
        candidates.append(DuplicateCandidate(row.id, name, row.postcode, row.city, tuple(reasons)))
    return candidates
