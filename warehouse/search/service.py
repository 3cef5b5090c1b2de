"""Global search of the hub: clients, patients, appointments and invoices in one typed box.

- Names and postcodes are looked up in the search's own word index (``search_term``, kept
  current by triggers, migration 0402): exact words first (newest first), then words the query is a prefix
  of, and only when those are fewer than the page shows, typos — pg_trgm ``word_similarity`` (``<%``)
  against the warehouse's distinct name words (``search_vocabulary``, migration 0404) through
  ``search_similar_words()``, which keeps the words one of the caller's practices has, ranked by it. Each step is an index range scan
  that stops at the page size, so a common name costs the same among 5,000 or 250,000 patients.
- Invoice numbers, exactly or as a prefix, from the invoice table's own index (``invoice.search_number``).
- E-mail and phone are stored only encrypted, so they are found by their blind index: the typed value is
  normalised and HMAC'd with each visible practice's index key, then matched exactly. Microchips (15 digits)
  are exact.
- Every query carries the visible practices as a literal filter (read from the transaction's own context, so
  the caller cannot widen it), which lets the planner use the per-practice indexes and prune partitions; RLS
  on the record and on the word index still decides what is visible.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.kernel.ciphers import every_practice_cipher
from warehouse.kernel.crypto import normalise_email, normalise_phone
from warehouse.kernel.practice_time import practice_zone

KINDS = ("client", "patient", "appointment", "invoice")
WORD_SIMILARITY_THRESHOLD = 0.5
# Shorter words share too few trigrams for a similarity to mean a typo ("max" is 0.5-similar to "maas"), and
# matching them against the vocabulary reads most of it: they are found as typed or as a prefix only.
MIN_TYPO_LENGTH = 4
SPECIES_WORDS = {
    "hond": "dog", "dog": "dog", "kat": "cat", "cat": "cat", "poes": "cat", "konijn": "rabbit",
    "rabbit": "rabbit", "cavia": "guinea_pig", "hamster": "hamster", "rat": "rat", "fret": "ferret",
    "ferret": "ferret", "vogel": "bird", "bird": "bird", "reptiel": "reptile", "reptile": "reptile",
    "paard": "horse", "horse": "horse", "geit": "goat", "schaap": "sheep", "varken": "pig", "koe": "cattle",
}  # fmt: skip
_POSTCODE = re.compile(r"^\s*(\d{4})\s?([A-Za-z]{2})\s*$")
_PHONE = re.compile(r"^\+?[\d\s\-().]{8,}$")


@dataclass(frozen=True)
class SearchHit:
    kind: str
    practice_id: int
    id: int
    title: str
    detail: str
    score: float
    # What opening the hit needs besides its id (e.g. the patient of an appointment, the day).
    patient_id: int | None = None
    client_id: int | None = None
    starts_at: dt.datetime | None = None


@dataclass(frozen=True)
class SearchResults:
    query: str
    hits: tuple[SearchHit, ...]
    elapsed_ms: float
    # The kinds that have more hits than shown (each kind's query fetched one row more than its page).
    more: frozenset[str] = frozenset()

    def group(self, kind: str) -> tuple[SearchHit, ...]:
        return tuple(h for h in self.hits if h.kind == kind)

    @property
    def groups(self) -> list[tuple[str, tuple[SearchHit, ...]]]:
        return [(kind, self.group(kind)) for kind in KINDS if self.group(kind)]


def _visible_practices(session: Session) -> list[int]:
    return list(session.execute(text("SELECT app_practice_ids()")).scalar_one() or [])


def _blind_indexes(
    session: Session, practices: list[int], master_key: bytes, kind: str, value: str
) -> list[bytes]:
    found = []
    for cipher in every_practice_cipher(session, practices, master_key):
        digest = cipher.blind_index(kind, value)
        if digest:
            found.append(digest)
    return found


# Hits of one kind from the word index, best first, at most :limit. The three branches run in order and the
# outer LIMIT stops the Append as soon as it has enough, so the typo branch runs only when exact and prefix
# matches are too few. Each branch reads at most :limit entries per visible practice (a primary-key range scan
# per practice, in (word, entity) order), so a word shared by 20,000 clients of other franchises, or of this one,
# costs 50 short scans, not a walk past all of them; the typo branch ranks the few distinct words similar to the
# query (search_similar_words over search_vocabulary) and only then reads their entries. Exact hits show newest
# first; a typo scores its word similarity, below any prefix hit. The kind is written into the statement (one
# statement per kind, from the constants below), so each kind's statement is planned for its own branches.
_TERMS = """
    (SELECT 1.0 AS score, t.practice_id, t.entity_id
       FROM unnest(CAST(:p AS bigint[])) AS v(practice_id)
       CROSS JOIN LATERAL (SELECT t.practice_id, t.entity_id FROM search_term t
                            WHERE t.practice_id = v.practice_id AND t.kind = '{kind}' AND t.word = :w
                            ORDER BY t.entity_id DESC LIMIT :limit) t
      ORDER BY t.entity_id DESC LIMIT :limit)
    UNION ALL
    (SELECT 0.9, t.practice_id, t.entity_id
       FROM unnest(CAST(:p AS bigint[])) AS v(practice_id)
       CROSS JOIN LATERAL (SELECT t.practice_id, t.word, t.entity_id FROM search_term t
                            WHERE t.practice_id = v.practice_id AND t.kind = '{kind}' AND t.word > :w
                              AND t.word < :w_end
                            ORDER BY t.word, t.entity_id LIMIT :limit) t
      ORDER BY t.word, t.entity_id LIMIT :limit)
    UNION ALL
    (SELECT least(v.score, 0.85), t.practice_id, t.entity_id
       FROM (SELECT s.word, s.score FROM search_similar_words('{kind}', :w, 10) s
              WHERE CAST(:typos AS boolean) AND NOT (s.word COLLATE "C" >= :w AND s.word COLLATE "C" < :w_end)
              ORDER BY s.score DESC, s.word LIMIT 5) v
       CROSS JOIN unnest(CAST(:p AS bigint[])) AS pr(practice_id)
       CROSS JOIN LATERAL (SELECT t.practice_id, t.entity_id FROM search_term t
                            WHERE t.practice_id = pr.practice_id AND t.kind = '{kind}' AND t.word = v.word
                            ORDER BY t.entity_id LIMIT :limit) t
      ORDER BY v.score DESC, v.word, t.entity_id LIMIT :limit)
    LIMIT :limit"""
# The term hits numbered in the order the branches produced them (exact, prefix, typo; each in its index order),
# so that the rows come back in that order: a page of N is then always the first N of a page of N + 8, and
# "show more" adds hits without dropping one already shown. (The CTE is materialized, so its scan returns the
# rows in the order they were produced, and an empty OVER () numbers them as read.)
_IN_FETCH_ORDER = "(SELECT hits.*, row_number() OVER () AS fetched FROM hits)"
# The rows of the hits are joined by primary key only: the hits come from the visible practices already, and an
# extra literal ``practice_id = ANY(…)`` here made the planner scan a practice's (practice_id, animana_id) index
# for each hit instead of the primary key (≈0.7 ms a hit at 50 practices).
_CLIENT_COLUMNS = """c.practice_id, c.id, c.last_name, c.first_name, c.initials, c.postcode, c.city,
    (SELECT string_agg(p.name, ', ' ORDER BY p.name) FROM client_patient cp
       JOIN patient p ON p.practice_id = cp.practice_id AND p.id = cp.patient_id AND p.deleted_at IS NULL
      WHERE cp.practice_id = c.practice_id AND cp.client_id = c.id) AS animals"""
_CLIENTS_BY_TERM = {kind: text(
    f"""WITH hits AS MATERIALIZED ({_TERMS.format(kind=kind)})
    SELECT {_CLIENT_COLUMNS}, max(h.score) AS score FROM {_IN_FETCH_ORDER} h
    JOIN client c ON c.practice_id = h.practice_id AND c.id = h.entity_id
    WHERE c.deleted_at IS NULL
    GROUP BY c.practice_id, c.id ORDER BY min(h.fetched)"""
) for kind in ("client", "postcode")}  # fmt: skip
_CLIENTS_BY_BIDX = text(
    f"""SELECT {_CLIENT_COLUMNS}, 1.0 AS score FROM client c
    WHERE c.practice_id = ANY(:p) AND c.deleted_at IS NULL AND (c.email_bidx = ANY(:b) OR c.phone_bidx = ANY(:b))
    ORDER BY c.last_name LIMIT :limit"""
)
_PATIENT_COLUMNS = """p.practice_id, p.id, p.name, p.species, p.breed, p.microchip, p.deceased, o.client_id,
    o.last_name AS owner"""
_OWNER = """LEFT JOIN LATERAL (SELECT cp.client_id, c.last_name FROM client_patient cp
      JOIN client c ON c.practice_id = cp.practice_id AND c.id = cp.client_id
     WHERE cp.practice_id = p.practice_id AND cp.patient_id = p.id ORDER BY cp.is_primary DESC LIMIT 1) o ON true"""
_PATIENTS_BY_TERM = text(
    f"""WITH hits AS MATERIALIZED ({_TERMS.format(kind="patient")})
    SELECT {_PATIENT_COLUMNS}, h.score FROM (SELECT practice_id, entity_id, max(score) AS score,
                                                    min(fetched) AS fetched
                                             FROM {_IN_FETCH_ORDER} n GROUP BY practice_id, entity_id) h
    JOIN patient p ON p.practice_id = h.practice_id AND p.id = h.entity_id {_OWNER}
    WHERE p.deleted_at IS NULL ORDER BY h.fetched"""
)
_PATIENTS_BY_CHIP = text(
    f"""SELECT {_PATIENT_COLUMNS}, 1.0 AS score FROM patient p {_OWNER}
    WHERE p.practice_id = ANY(:p) AND p.deleted_at IS NULL AND p.microchip = :chip LIMIT :limit"""
)
_PATIENTS_BY_SPECIES = text(
    f"""SELECT {_PATIENT_COLUMNS}, 0.5 AS score FROM patient p {_OWNER}
    WHERE p.practice_id = ANY(:p) AND p.deleted_at IS NULL AND NOT p.deceased AND p.species = :species
    ORDER BY p.updated_at DESC LIMIT :limit"""
)
# Appointments of the best-matching patients (found by the patient query), through ix_appointment_patient,
# with the practice filter narrowed to the practices of those patients: the planner then plans only their
# partitions instead of every visible practice's (planning dominated at 50 practices).
_APPOINTMENTS = text(
    """SELECT a.practice_id, a.id, a.starts_at, a.status, a.patient_id, a.client_id, r.name AS resource
    FROM appointment a
    JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
    WHERE a.practice_id = ANY(:hp) AND r.practice_id = ANY(:hp)
      AND (a.practice_id, a.patient_id) IN (SELECT * FROM unnest(CAST(:pp AS bigint[]), CAST(:pi AS bigint[])))
      AND a.status <> 'cancelled' AND a.starts_at >= :from AND a.starts_at < :to
    ORDER BY abs(extract(epoch FROM a.starts_at - :now)), a.id LIMIT 200"""
)
# Invoices by number, from the invoice table's own index (migration 0307): the exact number first (newest
# first), then numbers it is a prefix of, each branch a range scan of ix_invoice_number_search per visible
# practice, stopped at the page size. Numbers are identifiers: no typo branch.
_INVOICES_BY_NUMBER = text(
    """WITH hits AS MATERIALIZED (
      (SELECT 1.0 AS score, i.practice_id, i.id
         FROM unnest(CAST(:p AS bigint[])) AS v(practice_id)
         CROSS JOIN LATERAL (SELECT i.practice_id, i.id FROM invoice i
                              WHERE i.practice_id = v.practice_id AND i.search_number = :w
                              ORDER BY i.id DESC LIMIT :limit) i
        ORDER BY i.id DESC LIMIT :limit)
      UNION ALL
      (SELECT 0.9, i.practice_id, i.id
         FROM unnest(CAST(:p AS bigint[])) AS v(practice_id)
         CROSS JOIN LATERAL (SELECT i.practice_id, i.search_number, i.id FROM invoice i
                              WHERE i.practice_id = v.practice_id AND i.search_number > :w
                                AND i.search_number < :w_end
                              ORDER BY i.search_number, i.id LIMIT :limit) i
        ORDER BY i.search_number, i.id LIMIT :limit)
      LIMIT :limit)
    SELECT i.practice_id, i.id, i.number, i.issued_on, i.status, i.total_incl_cents, i.client_id,
           c.last_name AS client, h.score
    FROM hits h JOIN invoice i ON i.practice_id = h.practice_id AND i.id = h.id
    JOIN client c ON c.practice_id = i.practice_id AND c.id = i.client_id"""
)


def _client_hit(row) -> SearchHit:  # noqa: ANN001 - a result row
    name = ", ".join(x for x in (row.last_name, row.first_name or row.initials) if x)
    where = " ".join(x for x in (row.postcode, row.city) if x)
    detail = " · ".join(x for x in (where, row.animals) if x)
    return SearchHit("client", row.practice_id, row.id, name, detail, float(row.score), client_id=row.id)


def _patient_hit(row) -> SearchHit:  # noqa: ANN001
    detail = " · ".join(
        x for x in (row.species, row.breed, f"owner {row.owner}" if row.owner else None,
                    f"chip {row.microchip}" if row.microchip else None, "deceased" if row.deceased else None) if x
    )  # fmt: skip
    return SearchHit(
        "patient", row.practice_id, row.id, row.name, detail, float(row.score), patient_id=row.id,
        client_id=row.client_id,
    )  # fmt: skip


def _term_args(word: str) -> dict[str, str]:
    """Parameters of ``_TERMS``: the word, and the upper end of the range of words it is a prefix of (in the
    C collation of ``search_term.word``, every such word sorts between the word and word + U+10FFFF)."""
    return {"w": word, "w_end": word + "\U0010ffff", "typos": len(word) >= MIN_TYPO_LENGTH}


def _rank(hit: SearchHit) -> tuple[float, str, int, int]:
    return (-hit.score, hit.title.lower(), hit.practice_id, hit.id)


def search(
    session: Session, query: str, *, master_key: bytes, now: dt.datetime | None = None, limit: int = 8,
    limits: Mapping[str, int] | None = None,
) -> SearchResults:  # fmt: skip
    """Ranked hits of every kind for ``query`` among the practices of the session's access context: at most
    ``limit`` of each kind (``limits`` overrides it per kind, for "show more"), and in ``more`` the kinds that
    have further hits. Each query fetches one row more than its page to know that, never a count."""
    started = time.perf_counter()
    q = " ".join(query.split())[:100]
    if len(q) < 2:
        return SearchResults(q, (), 0.0)
    now = now or dt.datetime.now(dt.UTC)
    # One round trip for the practice set and two transaction-local settings: the trigram threshold, and custom
    # plans only. psycopg prepares a statement after its fifth run on a connection, and PostgreSQL may then switch
    # to a generic plan, which knows neither the practices (no partition pruning, no index choice by practice
    # count) nor the word: measured 2-10 ms -> ~100 ms per statement for a franchise manager.
    practices = list(session.execute(
        text("SELECT app_practice_ids(), set_config('pg_trgm.word_similarity_threshold', :t, true), "
             "set_config('plan_cache_mode', 'force_custom_plan', true)"),
        {"t": str(WORD_SIMILARITY_THRESHOLD)},
    ).one()[0] or [])  # fmt: skip
    page = {kind: (limits or {}).get(kind, limit) for kind in KINDS}
    args = {"p": practices, "limit": page["client"] + 1}
    hits: list[SearchHit] = []
    digits = re.sub(r"\D", "", q)
    chip = len(digits) == 15 and digits == q.replace(" ", "")
    postcode = _POSTCODE.match(q)
    if "@" in q:
        bidx = _blind_indexes(session, practices, master_key, "email", normalise_email(q))
        hits += [_client_hit(r) for r in session.execute(_CLIENTS_BY_BIDX, {**args, "b": bidx})]
    elif _PHONE.match(q) and len(digits) >= 8 and not chip:
        bidx = _blind_indexes(session, practices, master_key, "phone", normalise_phone(q))
        hits += [_client_hit(r) for r in session.execute(_CLIENTS_BY_BIDX, {**args, "b": bidx})]
    patient_args = {**args, "limit": page["patient"] + 1}
    if chip:
        hits += [
            _patient_hit(r) for r in session.execute(_PATIENTS_BY_CHIP, {**patient_args, "chip": digits})
        ]
    if postcode:
        code = _term_args((postcode.group(1) + postcode.group(2)).lower())
        hits += [_client_hit(r) for r in session.execute(_CLIENTS_BY_TERM["postcode"], {**args, **code})]
    if species := SPECIES_WORDS.get(q.lower()):
        species_args = {**patient_args, "species": species}
        hits += [_patient_hit(r) for r in session.execute(_PATIENTS_BY_SPECIES, species_args)]
    if digits and len(q) >= 3 and "@" not in q and not chip and not postcode:
        number = _term_args(q.lower().replace(" ", ""))
        for row in session.execute(_INVOICES_BY_NUMBER, {**args, **number, "limit": page["invoice"] + 1}):
            detail = f"{row.client} · {row.issued_on:%d-%m-%Y} · € {row.total_incl_cents / 100:,.2f} · {row.status}"
            hits.append(SearchHit("invoice", row.practice_id, row.id, row.number, detail, float(row.score),
                                  client_id=row.client_id))  # fmt: skip
    words = [w for w in re.split(r"[\W_]+", q.lower()) if w]
    if (
        any(ch.isalpha() for ch in q)
        and "@" not in q
        and not postcode
        and len(word := max(words, key=len)) >= 2
    ):
        hits += [
            _client_hit(r) for r in session.execute(_CLIENTS_BY_TERM["client"], {**args, **_term_args(word)})
        ]
        # Three index entries a patient (name words), so that a page of patients survives the grouping.
        term_args = {**args, **_term_args(word), "limit": 3 * (page["patient"] + 1)}
        patients = [_patient_hit(r) for r in session.execute(_PATIENTS_BY_TERM, term_args)]
        hits += patients
        hits += _appointments_of(session, patients, now, page["appointment"] + 1)
    # Hits in the order they were fetched (query by query, each in its own order); a hit found twice keeps its
    # best score. Each kind's page is its best hits by score, in fetch order within a score, so that a larger
    # page holds the smaller one; the page then shows them ranked by score and title.
    unique: dict[tuple[str, int, int], SearchHit] = {}
    for hit in hits:
        key = (hit.kind, hit.practice_id, hit.id)
        if key not in unique or unique[key].score < hit.score:
            unique[key] = hit
    shown: list[SearchHit] = []
    more = set()
    for kind in KINDS:
        found = sorted((h for h in unique.values() if h.kind == kind), key=lambda h: -h.score)
        shown += found[: page[kind]]
        if len(found) > page[kind]:
            more.add(kind)
    ranked = sorted(shown, key=lambda h: (KINDS.index(h.kind), *_rank(h)))
    return SearchResults(q, tuple(ranked), (time.perf_counter() - started) * 1000, frozenset(more))


def _appointments_of(
    session: Session, patients: list[SearchHit], now: dt.datetime, limit: int
) -> list[SearchHit]:
    if not patients:
        return []
    by_key = {(p.practice_id, p.id): p for p in patients}
    rows = session.execute(_APPOINTMENTS, {
        "hp": sorted({p.practice_id for p in patients}), "pp": [p.practice_id for p in patients],
        "pi": [p.id for p in patients], "from": now - dt.timedelta(days=7), "to": now + dt.timedelta(days=60),
        "now": now,
    })  # fmt: skip
    found = []
    for row in rows:
        patient = by_key[(row.practice_id, row.patient_id)]
        local = row.starts_at.astimezone(practice_zone(session, row.practice_id))
        detail = f"{local:%a %d-%m %H:%M} · {row.resource} · {row.status}"
        found.append(SearchHit("appointment", row.practice_id, row.id, patient.title, detail, patient.score,
                               patient_id=row.patient_id, client_id=row.client_id, starts_at=row.starts_at))  # fmt: skip
    # Best-matching patient first, then the appointment nearest to now (the rows come nearest-first).
    found.sort(key=lambda h: -h.score)
    return found[:limit]


def naive_search(session: Session, query: str, *, limit: int = 8) -> int:
    """The baseline the benchmark compares against: ``ILIKE '%…%'`` on the same name columns, no trigram
    operator. Returns the number of rows found."""
    practices = _visible_practices(session)
    found = 0
    for sql in (
        "SELECT id FROM client WHERE practice_id = ANY(:p) AND last_name ILIKE '%' || :q || '%' LIMIT :limit",
        "SELECT id FROM patient WHERE practice_id = ANY(:p) AND name ILIKE '%' || :q || '%' LIMIT :limit",
        "SELECT a.id FROM patient p JOIN appointment a ON a.practice_id = p.practice_id AND a.patient_id = p.id "
        "WHERE p.practice_id = ANY(:p) AND p.name ILIKE '%' || :q || '%' LIMIT :limit",
    ):
        found += len(session.execute(text(sql), {"p": practices, "q": query, "limit": limit}).all())
    return found


def record_hit(session: Session, kind: str, practice_id: int, record_id: int) -> SearchHit | None:
    """The hit that opens one record named by a page address (``?practice=…&patient=…``), or None when the
    record does not exist or is not visible to the caller (RLS and the literal practice filter decide)."""
    if practice_id not in _visible_practices(session):
        return None
    args = {"p": practice_id, "id": record_id}
    if kind == "patient":
        row = session.execute(
            text(
                "SELECT name, species FROM patient WHERE practice_id = :p AND id = :id AND deleted_at IS NULL"
            ),
            args,
        ).first()
        return (
            SearchHit("patient", practice_id, record_id, row.name, row.species, 1.0, record_id)
            if row
            else None
        )
    if kind == "appointment":
        row = session.execute(
            text(
                "SELECT starts_at, patient_id, client_id FROM appointment WHERE practice_id = :p AND id = :id"
            ),
            args,
        ).first()
        if row is None:
            return None
        title = f"{row.starts_at.astimezone(practice_zone(session, practice_id)):%d-%m-%Y %H:%M}"
        return SearchHit("appointment", practice_id, record_id, title, "", 1.0, row.patient_id, row.client_id,
                         row.starts_at)  # fmt: skip
    if kind == "invoice":
        row = session.execute(
            text("SELECT number, client_id FROM invoice WHERE practice_id = :p AND id = :id"), args
        ).first()
        return (
            SearchHit("invoice", practice_id, record_id, row.number, "", 1.0, None, row.client_id)
            if row
            else None
        )
    return None
