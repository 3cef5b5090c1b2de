"""The staff side of bench/writeback.py: a realistic mix of local writes made as raw SQL by the application role
(captured by the triggers like any write path), Animana read back over plain HTTP, and the final reckoning —
every locally written row is in Animana, in the conflict queue, or a dead letter with its reason.

Rows written: clients (city, surname), appointments (book, reschedule, cancel, reason) and vaccinations (add).
New appointments get a slot of their own (`Slots`), so neither the warehouse's exclusion constraint nor
Animana's double-booking check refuses a booking the bench meant to be valid.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from warehouse.kernel.tenancy import AccessContext, tenant_session

TOWNS = ("Utrecht", "Amersfoort", "Zeist", "Houten", "Nieuwegein", "Bunnik", "Woerden", "Culemborg", "Baarn")
SURNAMES = (
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
)
REASONS = ("controle", "jeuk", "hoest", "kreupel", "gebitscontrole", "oorontsteking", "braken", "hechtingen")
# What a write changed, compared with Animana's record: warehouse column → wire field, per table.
COMPARED = {
    "client": {"city": "city", "last_name": "last_name"},
    "appointment": {"starts_at": "start", "ends_at": "end", "status": "status", "reason": "reason"},
    "vaccination": {"vaccine_name": "vaccine", "batch_number": "batch_number", "given_on": "given_on"},
}
RESOURCE_OF = {"client": "relations", "appointment": "agenda", "vaccination": "vaccinations"}
# Kinds of write and how often staff make them.
MIX = {
    "client city": 18,
    "client surname": 10,
    "book": 20,
    "reschedule": 14,
    "cancel": 10,
    "reason": 10,
    "vaccinate": 18,
}


@dataclass
class Pool:
    """A practice's rows the bench writes to (local ids), and the appointments it booked that are still open."""

    practice_id: int
    clients: list[int]
    owners: list[tuple[int, int]]  # (patient, client) pairs
    resource_id: int
    appointment_type: tuple[int, int]  # (franchise, type): one Animana knows (its agenda requires a type)
    vaccines: list[str]  # names Animana knows as the practice's products (a write needs no vaccine code then)
    booked: list[int] = field(default_factory=list)
    next_slot: int = 0

    def slot(self) -> tuple[dt.datetime, dt.datetime]:
        """A free 20-minute slot in February 2027, after everything the simulator generated."""
        start = dt.datetime(2027, 2, 1, 7, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=30 * self.next_slot)
        self.next_slot += 1
        return start, start + dt.timedelta(minutes=20)


def load_pools(app_engine: Engine, practice_ids: list[int]) -> list[Pool]:
    pools = []
    for pid in practice_ids:
        with tenant_session(app_engine, AccessContext.for_practices([pid])) as s:
            clients = s.execute(
                text("SELECT id FROM client WHERE animana_id IS NOT NULL ORDER BY id")
            ).scalars()
            owners = s.execute(
                text(
                    "SELECT cp.patient_id, cp.client_id FROM client_patient cp JOIN patient p "
                    "ON p.practice_id = cp.practice_id AND p.id = cp.patient_id "
                    "WHERE p.animana_id IS NOT NULL AND NOT p.deceased ORDER BY 1"
                )
            ).all()
            resource = s.execute(
                text("SELECT id FROM resource WHERE animana_id IS NOT NULL AND active ORDER BY id LIMIT 1")
            ).scalar_one()
            vaccines = s.execute(text("SELECT DISTINCT vaccine_name FROM vaccination ORDER BY 1")).scalars()
            kind = s.execute(
                text(
                    "SELECT franchise_id, appointment_type_id FROM appointment "
                    "WHERE appointment_type_id IS NOT NULL LIMIT 1"
                )
            ).one()
            pools.append(
                Pool(
                    pid,
                    list(clients),
                    [tuple(o) for o in owners],
                    resource,
                    (kind[0], kind[1]),
                    list(vaccines),
                )
            )
    return pools


@dataclass
class Written:
    """What the writers did: every (practice, table, row) touched, the inserts, and counts per kind."""

    rows: set[tuple[int, str, int]] = field(default_factory=set)
    inserted: set[tuple[int, str, int]] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(
        default_factory=Counter
    )  # local writes the database refused (rolled back), by error
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, practice_id: int, kind: str, table: str, row_id: int | None, insert: bool = False) -> None:
        if row_id is None:  # e.g. a cancel that found the appointment cancelled already
            return
        with self.lock:
            self.rows.add((practice_id, table, row_id))
            if insert:
                self.inserted.add((practice_id, table, row_id))
            self.kinds[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def write_one(
    app_engine: Engine, pool: Pool, rng: random.Random, written: Written, kind: str | None = None
) -> None:
    """One staff write (of `kind`, else one drawn from `MIX`), committed in its own transaction."""
    kind = kind or rng.choices(list(MIX), weights=list(MIX.values()))[0]
    if kind in ("reschedule", "cancel", "reason") and not pool.booked:
        kind = "book"
    with tenant_session(app_engine, AccessContext.for_practices([pool.practice_id])) as s:
        p = {"practice": pool.practice_id}
        if kind == "client city":
            row = rng.choice(pool.clients)
            s.execute(text("UPDATE client SET city = :v WHERE id = :id"), {"v": rng.choice(TOWNS), "id": row})
            table = "client"
        elif kind == "client surname":
            row = rng.choice(pool.clients)
            s.execute(
                text("UPDATE client SET last_name = :v WHERE id = :id"),
                {"v": rng.choice(SURNAMES), "id": row},
            )
            table = "client"
        elif kind == "book":
            patient, client = rng.choice(pool.owners)
            start, end = pool.slot()
            row = s.execute(
                text(
                    "INSERT INTO appointment (practice_id, resource_id, franchise_id, appointment_type_id, patient_id, "
                    "client_id, starts_at, ends_at, status, reason) "
                    "VALUES (:practice, :r, :f, :t, :patient, :client, :s, :e, 'booked', :reason) RETURNING id"
                ),
                {**p, "r": pool.resource_id, "f": pool.appointment_type[0], "t": pool.appointment_type[1], "patient": patient, "client": client, "s": start, "e": end,
                 "reason": rng.choice(REASONS)},
            ).scalar_one()  # fmt: skip
            pool.booked.append(row)
            written.note(pool.practice_id, kind, "appointment", row, insert=True)
            return
        elif kind == "reschedule":
            row = rng.choice(pool.booked)
            start, end = pool.slot()
            s.execute(
                text(
                    "UPDATE appointment SET starts_at = :s, ends_at = :e WHERE id = :id AND status = 'booked'"
                ),
                {"s": start, "e": end, "id": row},
            )
            table = "appointment"
        elif kind == "cancel":
            row = pool.booked.pop(rng.randrange(len(pool.booked)))
            s.execute(
                text(
                    "UPDATE appointment SET status = 'cancelled', cancelled_at = now(), "
                    "cancel_reason = 'afgemeld door eigenaar' WHERE id = :id AND status = 'booked'"
                ),
                {"id": row},
            )
            table = "appointment"
        elif kind == "reason":
            row = rng.choice(pool.booked)
            s.execute(
                text("UPDATE appointment SET reason = :v WHERE id = :id"),
                {"v": rng.choice(REASONS), "id": row},
            )
            table = "appointment"
        else:
            patient, _ = rng.choice(pool.owners)
            given = dt.date(2026, 11, 2) - dt.timedelta(days=rng.randrange(30))
            row = s.execute(
                text(
                    "INSERT INTO vaccination (practice_id, patient_id, vaccine_name, batch_number, given_on, due_on) "
                    "VALUES (:practice, :patient, :v, :b, :g, :d) RETURNING id"
                ),
                {**p, "patient": patient, "v": rng.choice(pool.vaccines), "b": f"B{rng.randint(100000, 999999)}",
                 "g": given, "d": given + dt.timedelta(days=365)},
            ).scalar_one()  # fmt: skip
            written.note(pool.practice_id, kind, "vaccination", row, insert=True)
            return
    written.note(pool.practice_id, kind, table, row)


class AnimanaReader:
    """Animana's records read over plain HTTP (no client library between the bench and what Animana holds)."""

    def __init__(self, base_url: str, client_id: str, secret: str) -> None:
        token = httpx.post(
            f"{base_url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            timeout=30,
        ).json()["access_token"]
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def close(self) -> None:
        self.http.close()

    def get(self, practice: int, resource: str, record_id: int | str) -> dict[str, Any] | None:
        response = self.http.get(f"/v1/practices/{practice}/{resource}/{record_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def all(self, practice: int, resource: str) -> list[dict[str, Any]]:
        records, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            response = self.http.get(f"/v1/practices/{practice}/{resource}", params=params)
            response.raise_for_status()
            body = response.json()
            records += body["data"]
            cursor = body["next_cursor"]
            if cursor is None:
                return records

    def max_ids(self, practice: int) -> dict[str, int]:
        return {r: max((x["id"] for x in self.all(practice, r)), default=0) for r in RESOURCE_OF.values()}


def same(local: Any, wire: Any) -> bool:
    """A warehouse value and the wire value Animana holds for it, compared as values (instants, days)."""
    if isinstance(local, dt.datetime):
        return wire is not None and dt.datetime.fromisoformat(wire) == local
    if isinstance(local, dt.date):
        return wire == local.isoformat()
    return local == wire or (local is None and wire == "")


@dataclass
class Reckoning:
    in_animana: int = 0
    in_conflict_queue: int = 0  # an open conflict of the row: a person decides
    dead_letters: int = 0  # with their reason
    dead_without_reason: int = 0
    still_pending: int = 0  # not settled when the bench stopped waiting
    lost: list[str] = field(default_factory=list)  # in none of the above
    animana_creates: int = 0
    local_inserts: int = 0
    duplicates: int = 0  # Animana records created in the run that no inserted row maps to
    shared_ids: int = 0  # two inserted rows mapped to one Animana record
    conflicts: Counter[str] = field(default_factory=Counter)  # by state
    rules: Counter[str] = field(default_factory=Counter)  # fields decided by a rule, by rule


def pairs(session: Session, sql: str) -> set[tuple[str, int]]:
    return {(r[0], r[1]) for r in session.execute(text(sql))}


def reckon(
    app_engine: Engine,
    reader: AnimanaReader,
    animana_ids: dict[int, int],
    written: Written,
    max_before: dict[int, dict[str, int]],
) -> Reckoning:
    """Compare every written row with Animana's record; `animana_ids`: warehouse practice → Animana practice."""
    result = Reckoning()
    for pid, aid in animana_ids.items():
        mine = [(t, r) for p, t, r in written.rows if p == pid]
        with tenant_session(app_engine, AccessContext.for_practices([pid])) as s:
            open_rows = pairs(s, "SELECT table_name, row_id FROM writeback_conflict WHERE state = 'open'")
            pending = pairs(
                s, "SELECT table_name, row_id FROM writeback_outbox WHERE state IN ('pending', 'held')"
            )
            dead = {
                (r.table_name, r.row_id): r.last_error
                for r in s.execute(
                    text("SELECT table_name, row_id, last_error FROM writeback_outbox WHERE state = 'dead'")
                )
            }
            for state, fields in s.execute(text("SELECT state, fields FROM writeback_conflict")):
                result.conflicts[state] += 1
                for decided in fields.values():
                    if decided.get("rule"):
                        result.rules[decided["rule"]] += 1
            rows = {}
            for table, columns in COMPARED.items():
                ids = [r for t, r in mine if t == table]
                query = f"SELECT id, animana_id, {', '.join(columns)} FROM {table} WHERE id = ANY(:ids)"
                rows.update({(table, m["id"]): m for m in s.execute(text(query), {"ids": ids}).mappings()})
        for table, row_id in sorted(mine):
            key = (table, row_id)
            if key in open_rows:
                result.in_conflict_queue += 1
            elif key in dead:
                if dead[key]:
                    result.dead_letters += 1
                else:
                    result.dead_without_reason += 1
            elif key in pending:
                result.still_pending += 1
            else:
                row = rows[key]
                record = reader.get(aid, RESOURCE_OF[table], row["animana_id"]) if row["animana_id"] else None
                differs = [
                    f"{column}: {row[column]!r} here, {None if record is None else record.get(wire)!r} in Animana"
                    for column, wire in COMPARED[table].items()
                    if record is None or not same(row[column], record.get(wire))
                ]
                if differs:
                    result.lost.append(f"practice {pid} {table} {row_id}: {'; '.join(differs)}")
                else:
                    result.in_animana += 1
        _count_creates(app_engine, reader, pid, aid, written, max_before[pid], result)
    return result


def _count_creates(
    app_engine: Engine,
    reader: AnimanaReader,
    pid: int,
    aid: int,
    written: Written,
    before: dict[str, int],
    result: Reckoning,
) -> None:
    """Duplicates: Animana records created during the run against the rows the bench inserted."""
    for table in ("appointment", "vaccination"):
        resource = RESOURCE_OF[table]
        created = {str(r["id"]) for r in reader.all(aid, resource) if r["id"] > before[resource]}
        inserted = [r for p, t, r in written.inserted if p == pid and t == table]
        with tenant_session(app_engine, AccessContext.for_practices([pid])) as s:
            mapped = s.execute(
                text(f"SELECT animana_id FROM {table} WHERE id = ANY(:ids) AND animana_id IS NOT NULL"),
                {"ids": inserted},
            ).scalars().all()  # fmt: skip
        result.animana_creates += len(created)
        result.local_inserts += len(inserted)
        result.duplicates += len(created - set(mapped))
        result.shared_ids += len(mapped) - len(set(mapped))
