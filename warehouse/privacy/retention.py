"""Retention of erased clients' records: once an erasure's ``retention_until`` has passed, its clinical and
financial records are deleted and the erasure marked purged. A system job (daily Dagster schedule
``pipelines/privacy``, ``vetconnect gdpr purge``), in a system session: it works across every practice.

What goes: every row that refers to the erased client or to an animal only they owned — appointments, visits
with their diagnoses, vaccinations, prescriptions, lab orders and results, weights, invoices with their lines,
payments, reminders, documents and images, ownership links, the animals — and, transitively, every row that
refers to one of those. The references are read from the schema's foreign keys, so a table added later is
purged without a change here. An animal that also has an owner who was not erased stays with its records; only
the erased owner's link goes. The client row itself stays as a tombstone (pseudonymised, with its Animana id, so
the sync keeps skipping the relation); so does the ``client_erasure`` row, now with ``purged_at``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Table, text
from sqlalchemy.orm import Session

from warehouse.kernel.audit import record
from warehouse.kernel.errors import DomainError
from warehouse.schema import Base

# Rows that refer to an erased client but stay: the tombstone's own erasure row, and the client table itself
# (a duplicate merged into the erased client is erased with it and stays as a tombstone too).
KEPT = frozenset({"client", "client_erasure"})


@dataclass(frozen=True)
class PurgedErasure:
    practice_id: int
    client_id: int
    retention_until: dt.date
    rows: dict[str, int]


@dataclass
class PurgeReport:
    """What a purge deleted (or, dry run, would delete): per erasure, rows per table."""

    dry_run: bool
    erasures: list[PurgedErasure] = field(default_factory=list)

    @property
    def rows(self) -> dict[str, int]:
        total: dict[str, int] = defaultdict(int)
        for erasure in self.erasures:
            for table, count in erasure.rows.items():
                total[table] += count
        return dict(sorted(total.items()))


def purge_due(session: Session, now: dt.datetime, *, dry_run: bool = False) -> PurgeReport:
    """Purge every erasure whose retention ended before ``now``'s date (``retention_until`` is the last day the
    records are kept). ``session``: a system session (every practice). Dry run: counts only, nothing deleted."""
    due = session.execute(
        text(
            "SELECT practice_id, id, client_id, retention_until FROM client_erasure "
            "WHERE purged_at IS NULL AND retention_until < :today ORDER BY practice_id, id"
        ),
        {"today": now.date()},
    ).all()
    report = PurgeReport(dry_run=dry_run)
    for erasure in due:
        with session.begin_nested():
            rows = _purge_one(session, erasure.practice_id, erasure.client_id, dry_run=dry_run)
            if not dry_run:
                session.execute(
                    text("UPDATE client_erasure SET purged_at = :now WHERE practice_id = :p AND id = :id"),
                    {"now": now, "p": erasure.practice_id, "id": erasure.id},
                )
        report.erasures.append(
            PurgedErasure(erasure.practice_id, erasure.client_id, erasure.retention_until, rows)
        )
    return report


def _purge_one(session: Session, practice_id: int, client_id: int, *, dry_run: bool) -> dict[str, int]:
    tables = {t.name: t for t in Base.metadata.sorted_tables}
    group = list(
        session.execute(
            text(
                "WITH RECURSIVE g(id) AS (SELECT CAST(:c AS bigint) UNION SELECT c.id FROM client c JOIN g "
                "ON c.practice_id = :p AND c.merged_into_id = g.id) SELECT id FROM g"
            ),
            {"p": practice_id, "c": client_id},
        ).scalars()
    )
    # Animals none of whose owners is left un-erased.
    patients = list(
        session.execute(
            text(
                """SELECT DISTINCT cp.patient_id FROM client_patient cp
                    WHERE cp.practice_id = :p AND cp.client_id = ANY(:g)
                      AND NOT EXISTS (SELECT FROM client_patient o
                                       WHERE o.practice_id = cp.practice_id AND o.patient_id = cp.patient_id
                                         AND NOT EXISTS (SELECT FROM client_erasure e WHERE e.practice_id = o.practice_id
                                                          AND e.client_id = o.client_id))"""
            ),
            {"p": practice_id, "g": group},
        ).scalars()
    )
    doomed: dict[str, set[int]] = defaultdict(set)
    doomed["patient"].update(patients)
    frontier = {"client": set(group), "patient": set(patients)}
    while frontier:
        next_frontier: dict[str, set[int]] = defaultdict(set)
        for referred, ids in frontier.items():
            for table, column in _references_to(tables, referred):
                if table.name in KEPT or "id" not in table.c:
                    continue
                # A client's row about an animal that stays (an appointment of the co-owned dog) stays with it.
                of_kept_animal = (
                    " AND (patient_id IS NULL OR patient_id = ANY(:patients))"
                    if referred == "client" and "patient_id" in table.c
                    else ""
                )
                query = f"SELECT id FROM {table.name} WHERE practice_id = :p AND {column} = ANY(:ids)"  # noqa: S608
                values = {"p": practice_id, "ids": list(ids), "patients": patients}
                found = (
                    set(session.execute(text(query + of_kept_animal), values).scalars()) - doomed[table.name]
                )
                if found:
                    doomed[table.name] |= found
                    next_frontier[table.name] |= found
        frontier = dict(next_frontier)
    counts: dict[str, int] = {}
    # Children first (the reverse of the foreign keys' order); tables without an id of their own (ownership
    # links, a document's content) go by the reference that names a doomed row.
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in KEPT:
            continue
        conditions, values = [], {"p": practice_id}
        if doomed.get(table.name):
            conditions.append("id = ANY(:own)")
            values["own"] = sorted(doomed[table.name])
        if "id" not in table.c:
            for index, (referred, column) in enumerate(_references_from(table)):
                ids = set(group) if referred == "client" else doomed.get(referred, set())
                if ids:
                    conditions.append(f"{column} = ANY(:ref{index})")
                    values[f"ref{index}"] = sorted(ids)
        if not conditions:
            continue
        where = f"practice_id = :p AND ({' OR '.join(conditions)})"
        verb = "SELECT count(*) FROM" if dry_run else "WITH gone AS (DELETE FROM"
        tail = "" if dry_run else " RETURNING 1) SELECT count(*) FROM gone"
        count = session.execute(text(f"{verb} {table.name} WHERE {where}{tail}"), values).scalar_one()  # noqa: S608
        if count:
            counts[table.name] = int(count)
    return counts


def _references_to(tables: dict[str, Table], referred: str) -> list[tuple[Table, str]]:
    """(table, column) of every practice foreign key ``(practice_id, column) -> referred (practice_id, id)``."""
    return [
        (table, column)
        for table in tables.values()
        for to, column in _references_from(table)
        if to == referred
    ]


def _references_from(table: Table) -> list[tuple[str, str]]:
    """(referred table, column) of the table's practice foreign keys to another row's id."""
    found = []
    for fk in table.foreign_key_constraints:
        columns = [c.name for c in fk.columns]
        referred = [e.column.name for e in fk.elements]
        if len(columns) == 2 and columns[0] == "practice_id" and referred == ["practice_id", "id"]:
            found.append((fk.referred_table.name, columns[1]))
    return found


# The GDPR sets no number: a franchise keeps records as long as its duties ask (the Dutch tax rules: 7 years for
# the financial records, the default). Below a year an erasure's records would go before an unpaid dispute could
# end; above 30 is keeping them for good.
RETENTION_YEARS = range(1, 31)


def set_retention_years(session: Session, franchise_id: int, years: int) -> int:
    """How many years after the last activity an erased client's records are kept at the franchise's practices;
    erasures from now on get it (one already made keeps the ``retention_until`` it was given). Audited in every
    practice of the franchise. Returns the years it was before. A system write (the operator's CLI)."""
    if years not in RETENTION_YEARS:
        raise DomainError(
            "years", f"Keep records between {RETENTION_YEARS.start} and {RETENTION_YEARS.stop - 1} years."
        )
    before = session.execute(
        text("SELECT retention_years FROM tenant WHERE id = :f AND kind = 'franchise' FOR UPDATE"),
        {"f": franchise_id},
    ).scalar_one_or_none()
    if before is None:
        raise DomainError("franchise", "No such franchise.")
    session.execute(
        text("UPDATE tenant SET retention_years = :y WHERE id = :f"), {"y": years, "f": franchise_id}
    )
    practices = session.scalars(
        text("SELECT id FROM tenant WHERE franchise_id = :f AND kind = 'practice' ORDER BY id"),
        {"f": franchise_id},
    ).all()
    for practice_id in practices:
        record(session, practice_id=practice_id, action="update", entity="retention",
               entity_ids=[franchise_id], detail={"retention_years": {"old": before, "new": years}})  # fmt: skip
    return before
