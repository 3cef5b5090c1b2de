"""What a person calls a mirrored record, for the conflict queue and the dead letters: the client's name, the
animal's name, the appointment's local time and animal, the invoice's number … rather than "appointment 4711".

One query per table among the records asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from warehouse.integration.tables import MIRRORED
from warehouse.kernel import formatting as fmt

RecordRef = tuple[str, int]  # (mirrored table, row id)


def _patient_of(alias: str) -> str:
    return f"LEFT JOIN patient p ON p.practice_id = {alias}.practice_id AND p.id = {alias}.patient_id"


# Per table: the columns a title is made of (every query returns ``id`` first).
_QUERIES: dict[str, TextClause] = {
    "client": text("SELECT id, coalesce(first_name, initials) AS first, last_name FROM client "
                   "WHERE practice_id = :p AND id = ANY(:ids)"),
    "patient": text("SELECT id, name, species FROM patient WHERE practice_id = :p AND id = ANY(:ids)"),
    "appointment": text(f"SELECT a.id, a.starts_at, p.name FROM appointment a {_patient_of('a')} "
                        "WHERE a.practice_id = :p AND a.id = ANY(:ids)"),
    "visit": text(f"SELECT v.id, v.started_at, p.name FROM visit v {_patient_of('v')} "
                  "WHERE v.practice_id = :p AND v.id = ANY(:ids)"),
    "vaccination": text(f"SELECT v.id, v.vaccine_name, p.name FROM vaccination v {_patient_of('v')} "
                        "WHERE v.practice_id = :p AND v.id = ANY(:ids)"),
    "prescription": text(f"SELECT r.id, r.product_name, p.name FROM prescription r {_patient_of('r')} "
                         "WHERE r.practice_id = :p AND r.id = ANY(:ids)"),
    "invoice": text("SELECT id, number FROM invoice WHERE practice_id = :p AND id = ANY(:ids)"),
    "payment": text("SELECT id, amount_cents, paid_at FROM payment WHERE practice_id = :p AND id = ANY(:ids)"),
}  # fmt: skip


def _names(*parts: Any) -> str:
    return " ".join(str(p) for p in parts if p)


_TITLES: dict[str, Callable[[Any, ZoneInfo], str]] = {
    "client": lambda r, _: _names(r.first, r.last_name),
    "patient": lambda r, _: f"{r.name} ({r.species})",
    "appointment": lambda r, z: _names(fmt.date(r.starts_at, weekday=True, tz=z), fmt.time(r.starts_at, z),
                                       r.name and f"· {r.name}"),
    "visit": lambda r, z: _names(fmt.date(r.started_at, tz=z), r.name and f"· {r.name}"),
    "vaccination": lambda r, _: _names(r.vaccine_name, r.name and f"· {r.name}"),
    "prescription": lambda r, _: _names(r.product_name, r.name and f"· {r.name}"),
    "invoice": lambda r, _: str(r.number),
    "payment": lambda r, z: f"{fmt.euros(r.amount_cents)} on {fmt.date(r.paid_at, tz=z)}",
}  # fmt: skip


def record_titles(
    session: Session, practice_id: int, records: Iterable[RecordRef], *, zone: ZoneInfo = fmt.DEFAULT_TZ
) -> dict[RecordRef, str]:
    """``"appointment do 3 dec 2026 09:00 · Bello"`` per record that still exists (times in ``zone``); a deleted
    record has no title (the caller says which record it was by its id)."""
    by_table: dict[str, list[int]] = {}
    for table, row_id in records:
        by_table.setdefault(table, []).append(row_id)
    titles = {}
    for table, ids in by_table.items():
        for row in session.execute(_QUERIES[table], {"p": practice_id, "ids": ids}):
            titles[(table, row.id)] = f"{MIRRORED[table].label} {_TITLES[table](row, zone)}"
    return titles
