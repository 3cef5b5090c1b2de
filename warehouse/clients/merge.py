"""Merging a duplicate client or patient into the one that survives, and undoing it the same day.

Every row that refers to the duplicate (``merge_references``: read from the catalogue) is moved to the survivor;
a row the survivor already has (the same owner link on both) is removed instead. The duplicate is soft-deleted
and points at the survivor (``merged_into_id``; a duplicate client is also made inactive, which is how Animana
hears of it). ``record_merge`` keeps, per moved row, its key, the values the merge changed and a fingerprint of
the row as the merge left it, so an undo puts back exactly what was there — and refuses, with the reason, when
a moved row changed since (its fingerprint differs), or when the practice's day of the merge has closed.

The writes are ordinary statements of the application role: the audit triggers, the change capture of the
write-back (a moved appointment of a linked practice in hybrid mode becomes an outbox entry), and the mart and
search triggers see them like any other write. The merge and its undo are audited here as one entry each too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.clients.merge_references import BOOKKEEPING, Kind, Reference, references_to
from warehouse.kernel import audit
from warehouse.kernel.errors import DomainError
from warehouse.kernel.practice_time import practice_today
from warehouse.security.permissions import CLIENTS_MERGE, Actor, require

MAX_REASONS = 3  # an undo refusal names this many blocking rows, then counts the rest


class MergeError(DomainError):
    """A merge or an undo the rules refuse; ``field`` is ``survivor``, ``duplicate`` or ``merge``."""


class RecordRef(NamedTuple):
    """A client or patient: the practice it belongs to and its id there."""

    practice_id: int
    id: int


@dataclass(frozen=True)
class MergeOutcome:
    merge_id: int
    kind: Kind
    survivor_id: int
    duplicate_id: int
    moved: dict[str, int]  # table -> rows moved (or moved back)
    removed: dict[str, int]  # table -> rows removed (or put back) because the survivor had them already


def merge_clients(
    session: Session,
    actor: Actor,
    survivor: RecordRef,
    duplicate: RecordRef,
    *,
    now: dt.datetime | None = None,
) -> MergeOutcome:
    """Move everything of ``duplicate`` to ``survivor`` (two clients of one practice)."""
    return _merge(session, actor, "client", survivor, duplicate, now)


def merge_patients(
    session: Session,
    actor: Actor,
    survivor: RecordRef,
    duplicate: RecordRef,
    *,
    now: dt.datetime | None = None,
) -> MergeOutcome:
    """Move everything of ``duplicate`` to ``survivor`` (two patients of one practice, the same species)."""
    return _merge(session, actor, "patient", survivor, duplicate, now)


def quoted(session: Session, name: str) -> str:
    """An identifier from the catalogue, quoted by the dialect (never a value: those are bound)."""
    return session.get_bind().dialect.identifier_preparer.quote(name)


def record_label(kind: str, row: dict[str, Any]) -> str:
    if kind == "client":
        return " ".join(p for p in (row.get("initials") or row.get("first_name"), row["last_name"]) if p)
    return f"{row['name']} ({row['species'].replace('_', ' ')})"


def _lock_records(
    session: Session, kind: Kind, practice_id: int, ids: list[int]
) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        text(f"SELECT to_jsonb(r) AS row FROM {quoted(session, kind)} r "  # noqa: S608 - identifier is the kind
             "WHERE r.practice_id = :p AND r.id = ANY(:ids) ORDER BY r.id FOR UPDATE"),
        {"p": practice_id, "ids": ids},
    ).scalars()  # fmt: skip
    return {row["id"]: row for row in rows}


def _check_pair(
    session: Session, kind: Kind, survivor: RecordRef, duplicate: RecordRef
) -> tuple[dict[str, Any], dict[str, Any]]:
    word = kind
    if survivor.id == duplicate.id:
        raise MergeError("duplicate", f"A {word} cannot be merged with itself: choose two different {word}s.")
    rows = _lock_records(session, kind, survivor.practice_id, [survivor.id, duplicate.id])
    for field, ref in (("survivor", survivor), ("duplicate", duplicate)):
        row = rows.get(ref.id)
        if row is None:
            raise MergeError(field, f"{word.capitalize()} {ref.id} does not exist at this practice.")
        if row["deleted_at"] is not None:
            into = f" (merged into {word} {row['merged_into_id']})" if row["merged_into_id"] else ""
            raise MergeError(
                field, f"{record_label(kind, row)} was deleted{into}: only current {word}s can be merged."
            )
        if kind == "client" and _erased(session, ref):
            raise MergeError(field, f"{record_label(kind, row)}: this client's personal data was erased, so it is "
                                    "not merged with another.")  # fmt: skip
    kept, gone = rows[survivor.id], rows[duplicate.id]
    if kind == "patient" and kept["species"] != gone["species"]:
        raise MergeError(
            "duplicate",
            f"{record_label(kind, gone)} and {record_label(kind, kept)} are different species: only records of the same "
            "animal can be merged.",
        )
    return kept, gone


def _erased(session: Session, ref: RecordRef) -> bool:
    """The client's personal data was erased (``warehouse.privacy.erasure``): its records stay apart."""
    return bool(session.execute(
        text("SELECT EXISTS (SELECT FROM client_erasure WHERE practice_id = :p AND client_id = :c)"),
        {"p": ref.practice_id, "c": ref.id},
    ).scalar_one())  # fmt: skip


def fingerprint_of(alias: str) -> str:
    """The row as a merge compares it: everything but the write-back's bookkeeping, in jsonb's canonical text."""
    return f"md5((to_jsonb({alias}) - CAST(:bookkeeping AS text[]))::text)"


def _remove_clashes(session: Session, ref: Reference, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Delete the duplicate's rows the survivor already has (by a unique key over the column); their values."""
    if not ref.clashes_on:
        return []
    t, col = quoted(session, ref.table), quoted(session, ref.column)
    same = " OR ".join(
        "EXISTS (SELECT FROM {t} s WHERE s.practice_id = d.practice_id AND s.{col} = :survivor{cols})".format(
            t=t,
            col=col,
            cols="".join(f" AND s.{quoted(session, c)} = d.{quoted(session, c)}" for c in others),
        )
        for others in ref.clashes_on
    )
    return list(
        session.execute(
            text(f"DELETE FROM {t} d WHERE d.practice_id = :p AND d.{col} = :duplicate AND ({same}) "  # noqa: S608
                 "RETURNING to_jsonb(d)"),
            params,
        ).scalars()
    )  # fmt: skip


# A patient has one primary owner: an owner link moved from the duplicate stays primary only when the survivor
# has no primary owner yet (the undo restores the flag with the rest).
_EXTRA_SET = {
    ("patient", "client_patient"): "is_primary = t.is_primary AND NOT EXISTS (SELECT FROM client_patient s "
    "WHERE s.practice_id = t.practice_id AND s.patient_id = :survivor AND s.is_primary)"
}


def _move(session: Session, kind: Kind, ref: Reference, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Point the duplicate's rows at the survivor; per row its key now, the values it had, its fingerprint."""
    t, col = quoted(session, ref.table), quoted(session, ref.column)
    sets = ", ".join([f"{col} = :survivor", *filter(None, [_EXTRA_SET.get((kind, ref.table))])])
    key_match = " AND ".join(f"t.{quoted(session, c)} = b.{quoted(session, c)}" for c in ref.key)
    key_columns = ", ".join(quoted(session, c) for c in ref.key)
    rows = session.execute(
        text(
            f"WITH b AS (SELECT {key_columns}, to_jsonb(r) AS old FROM {t} r "  # noqa: S608
            f"WHERE r.practice_id = :p AND r.{col} = :duplicate FOR UPDATE) "
            f"UPDATE {t} t SET {sets} FROM b WHERE t.practice_id = :p AND {key_match} "
            f"RETURNING b.old, to_jsonb(t) AS new, {fingerprint_of('t')} AS fingerprint"
        ),
        params,
    ).all()
    moved = []
    for old, new, fingerprint in rows:
        changed = {c: old[c] for c in new if c not in BOOKKEEPING and old.get(c) != new[c]}
        moved.append({"table": ref.table, "key": {c: new[c] for c in ref.key}, "old": changed,
                      "fingerprint": fingerprint})  # fmt: skip
    return moved


def _retire_duplicate(
    session: Session, kind: Kind, practice_id: int, duplicate_id: int, survivor_id: int
) -> dict:
    t = quoted(session, kind)
    inactive = ", active = false" if kind == "client" else ""
    old, new = session.execute(
        text(
            f"WITH b AS (SELECT id, to_jsonb(r) AS old FROM {t} r WHERE r.practice_id = :p AND r.id = :duplicate) "  # noqa: S608
            f"UPDATE {t} t SET deleted_at = now(), merged_into_id = :survivor{inactive} FROM b "
            "WHERE t.practice_id = :p AND t.id = b.id RETURNING b.old, to_jsonb(t)"
        ),
        {"p": practice_id, "duplicate": duplicate_id, "survivor": survivor_id},
    ).one()
    return {c: old[c] for c in new if c not in BOOKKEEPING and old.get(c) != new[c]}


def count_by_table(entries: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        counts[entry["table"]] += 1
    return dict(counts)


def _merge(
    session: Session,
    actor: Actor,
    kind: Kind,
    survivor: RecordRef,
    duplicate: RecordRef,
    now: dt.datetime | None,
) -> MergeOutcome:
    if survivor.practice_id != duplicate.practice_id:  # an input error, whatever the actor may do where
        raise MergeError(
            "duplicate", f"Both {kind}s must belong to the same practice: choose two of one practice."
        )
    require(actor, CLIENTS_MERGE, duplicate.practice_id)
    kept, gone = _check_pair(session, kind, survivor, duplicate)
    practice_id = survivor.practice_id
    params = {"p": practice_id, "survivor": survivor.id, "duplicate": duplicate.id,
              "bookkeeping": list(BOOKKEEPING)}  # fmt: skip
    moved: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for ref in references_to(session, kind):
        removed += [{"table": ref.table, "row": row} for row in _remove_clashes(session, ref, params)]
        moved += _move(session, kind, ref, params)
    before = _retire_duplicate(session, kind, practice_id, duplicate.id, survivor.id)
    merge_id = session.execute(
        text(
            "INSERT INTO record_merge (practice_id, kind, survivor_id, duplicate_id, merged_on, merged_by, moved, "
            "removed, duplicate_before) VALUES (:p, :kind, :survivor, :duplicate, :day, :by, CAST(:moved AS jsonb), "
            "CAST(:removed AS jsonb), CAST(:before AS jsonb)) RETURNING id"
        ),
        {**params, "kind": kind, "day": practice_today(session, practice_id, now), "by": actor.user_id,
         "moved": json.dumps(moved), "removed": json.dumps(removed), "before": json.dumps(before)},
    ).scalar_one()  # fmt: skip
    outcome = MergeOutcome(
        merge_id, kind, survivor.id, duplicate.id, count_by_table(moved), count_by_table(removed)
    )
    audit.record(
        session, practice_id=practice_id, action="merge", entity=kind, entity_ids=[survivor.id, duplicate.id],
        detail={"merge_id": merge_id, "survivor": record_label(kind, kept), "duplicate": record_label(kind, gone),
                "moved": outcome.moved, "removed": outcome.removed},
    )  # fmt: skip
    return outcome


@dataclass(frozen=True)
class RecordOverview:
    """What a client or patient has, for choosing which of two survives: rows per referring table."""

    ref: RecordRef
    label: str
    counts: dict[str, int]  # table -> rows referring to the record (tables with none left out)


def record_overview(session: Session, kind: Kind, ref: RecordRef) -> RecordOverview:
    """The record's name and how many rows of each kind refer to it (its animals, appointments, invoices …)."""
    row = session.execute(
        text(f"SELECT to_jsonb(r) FROM {quoted(session, kind)} r WHERE r.practice_id = :p AND r.id = :id"),  # noqa: S608
        {"p": ref.practice_id, "id": ref.id},
    ).scalar_one_or_none()
    if row is None:
        raise MergeError("survivor", f"{kind.capitalize()} {ref.id} does not exist at this practice.")
    counts: dict[str, int] = {}
    for reference in references_to(session, kind):
        count = session.execute(
            text(f"SELECT count(*) FROM {quoted(session, reference.table)} "  # noqa: S608
                 f"WHERE practice_id = :p AND {quoted(session, reference.column)} = :id"),
            {"p": ref.practice_id, "id": ref.id},
        ).scalar_one()  # fmt: skip
        if count:
            counts[reference.table] = counts.get(reference.table, 0) + count
    return RecordOverview(ref, record_label(kind, row), counts)


@dataclass(frozen=True)
class RecordChoice:
    ref: RecordRef
    label: str


def find_records(
    session: Session, practice_id: int, kind: Kind, query: str, limit: int = 20
) -> list[RecordChoice]:
    """Current (not deleted) clients or patients of the practice whose name contains ``query`` (or whose number is
    it), by name."""
    needle = query.strip()
    if not needle:
        return []
    name = quoted(session, "last_name" if kind == "client" else "name")
    rows = session.scalars(
        text(f"SELECT to_jsonb(r) FROM {quoted(session, kind)} r WHERE r.practice_id = :p AND r.deleted_at IS NULL "  # noqa: S608
             f"AND (r.{name} ILIKE :like OR CAST(r.id AS text) = :exact) ORDER BY r.{name}, r.id LIMIT :limit"),
        {"p": practice_id, "like": f"%{needle}%", "exact": needle, "limit": limit},
    ).all()  # fmt: skip
    return [RecordChoice(RecordRef(practice_id, row["id"]), record_label(kind, row)) for row in rows]
