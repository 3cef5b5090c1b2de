"""The staff side of bench/writeback.py: a realistic mix of local writes made as raw SQL by the application role
(captured by the triggers like any write path), noting the last value each write gave each compared field, and
Animana read back over plain HTTP (the reckoning of both is `writeback_reckon`).

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
    """What the writers did: every (practice, table, row) touched, the inserts, the last value written to each
    compared field, and counts per kind."""

    rows: set[tuple[int, str, int]] = field(default_factory=set)
    inserted: set[tuple[int, str, int]] = field(default_factory=set)
    # (practice, table, row, column) → the value the last local write gave it
    last: dict[tuple[int, str, int, str], Any] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(
        default_factory=Counter
    )  # local writes the database refused (rolled back), by error
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, practice_id: int, kind: str, table: str, row_id: int | None, values: dict[str, Any], insert: bool = False) -> None:  # fmt: skip
        if row_id is None:  # e.g. a cancel that found the appointment cancelled already: nothing was written
            return
        with self.lock:
            self.rows.add((practice_id, table, row_id))
            if insert:
                self.inserted.add((practice_id, table, row_id))
            for column, value in values.items():
                self.last[(practice_id, table, row_id, column)] = value
            self.kinds[kind] += 1

    @property
    def total(self) -> int:
        return sum(self.kinds.values())


def write_one(
    app_engine: Engine, pool: Pool, rng: random.Random, written: Written, kind: str | None = None
) -> None:
    """One staff write (of `kind`, else one drawn from `MIX`), committed in its own transaction. Noted with the
    values it gave the compared columns only when the database changed a row."""
    kind = kind or rng.choices(list(MIX), weights=list(MIX.values()))[0]
    if kind in ("reschedule", "cancel", "reason") and not pool.booked:
        kind = "book"
    with tenant_session(app_engine, AccessContext.for_practices([pool.practice_id])) as s:
        table, values, sql = _statement(pool, rng, kind)
        row = s.execute(text(sql), {"practice": pool.practice_id, **values}).scalar_one_or_none()
    if kind == "book" and row is not None:
        pool.booked.append(row)
    written.note(
        pool.practice_id, kind, table, row, _compared(table, values), insert=kind in ("book", "vaccinate")
    )


def _compared(table: str, values: dict[str, Any]) -> dict[str, Any]:
    return {column: values[column] for column in COMPARED[table] if column in values}


def _statement(pool: Pool, rng: random.Random, kind: str) -> tuple[str, dict[str, Any], str]:
    """(table, bound values named after their columns, SQL returning the changed row's id) for one write."""
    if kind == "client city":
        sql = "UPDATE client SET city = :city WHERE id = :id RETURNING id"
        return "client", {"city": rng.choice(TOWNS), "id": rng.choice(pool.clients)}, sql
    if kind == "client surname":
        sql = "UPDATE client SET last_name = :last_name WHERE id = :id RETURNING id"
        return "client", {"last_name": rng.choice(SURNAMES), "id": rng.choice(pool.clients)}, sql
    if kind == "book":
        patient, client = rng.choice(pool.owners)
        start, end = pool.slot()
        values = {"r": pool.resource_id, "f": pool.appointment_type[0], "t": pool.appointment_type[1],
                  "patient": patient, "client": client, "starts_at": start, "ends_at": end, "status": "booked",
                  "reason": rng.choice(REASONS)}  # fmt: skip
        sql = (
            "INSERT INTO appointment (practice_id, resource_id, franchise_id, appointment_type_id, patient_id, "
            "client_id, starts_at, ends_at, status, reason) VALUES (:practice, :r, :f, :t, :patient, :client, "
            ":starts_at, :ends_at, :status, :reason) RETURNING id"
        )
        return "appointment", values, sql
    if kind == "reschedule":
        start, end = pool.slot()
        sql = (
            "UPDATE appointment SET starts_at = :starts_at, ends_at = :ends_at WHERE id = :id "
            "AND status = 'booked' RETURNING id"
        )
        return "appointment", {"starts_at": start, "ends_at": end, "id": rng.choice(pool.booked)}, sql
    if kind == "cancel":
        sql = (
            "UPDATE appointment SET status = :status, cancelled_at = now(), cancel_reason = 'afgemeld door "
            "eigenaar' WHERE id = :id AND status = 'booked' RETURNING id"
        )
        return (
            "appointment",
            {"status": "cancelled", "id": pool.booked.pop(rng.randrange(len(pool.booked)))},
            sql,
        )
    if kind == "reason":
        sql = "UPDATE appointment SET reason = :reason WHERE id = :id RETURNING id"
        return "appointment", {"reason": rng.choice(REASONS), "id": rng.choice(pool.booked)}, sql
    patient, _ = rng.choice(pool.owners)
    given = dt.date(2026, 11, 2) - dt.timedelta(days=rng.randrange(30))
    values = {"patient": patient, "vaccine_name": rng.choice(pool.vaccines),
              "batch_number": f"B{rng.randint(100000, 999999)}", "given_on": given,
              "d": given + dt.timedelta(days=365)}  # fmt: skip
    sql = (
        "INSERT INTO vaccination (practice_id, patient_id, vaccine_name, batch_number, given_on, due_on) "
        "VALUES (:practice, :patient, :vaccine_name, :batch_number, :given_on, :d) RETURNING id"
    )
    return "vaccination", values, sql


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

    def edits(self, practice: int) -> list[dict[str, Any]]:
        """Animana users' edits of the practice, oldest first (`POST /_sim/edit` and the concurrent editor's)."""
        response = self.http.get("/_sim/edits", params={"practice": practice})
        response.raise_for_status()
        return response.json()["edits"]


class EditWatcher(threading.Thread):
    """Notes when each Animana-side edit was first seen (wall clock), polling `/_sim/edits` every `every_s`: the
    simulator stamps edits with its own clock (a version), and an overlap is judged against local write times."""

    def __init__(self, reader: AnimanaReader, practices: list[int], every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.reader, self.practices, self.every_s = reader, practices, every_s
        self.seen: dict[int, list[tuple[dt.datetime, dict[str, Any]]]] = {p: [] for p in practices}
        self.stop = threading.Event()

    def poll(self) -> None:
        for practice in self.practices:
            edits = self.reader.edits(practice)
            now = dt.datetime.now(dt.UTC)
            known = self.seen[practice]
            known += [(now, edit) for edit in edits[len(known) :]]

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(self.every_s)
