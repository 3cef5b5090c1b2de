"""The issue-16 figures of ``bench/workspaces.py``: the duplicate check before a registration, registering a client
and a patient, merging two clients or two patients with their history, and undoing a merge.

Every call runs through the real service in a tenant session (``vetconnect_app`` under RLS) inside a savepoint
that is rolled back, so each round works on the same rows and a repeated run measures the same thing. Each call
has a baseline measured in the same session of the same round, the least the database must do for it:

- duplicate check: the client read by primary key;
- register client / patient: the row (and the owner link) inserted by a plain ``INSERT``;
- merge (and its undo): the duplicate's rows of the tables where it has any moved by plain ``UPDATE`` statements,
  written by hand for the bench's data (which a merge finds from the catalogue instead).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from warehouse.clients import duplicates
from warehouse.clients.merge import RecordRef, merge_clients, merge_patients, quoted
from warehouse.clients.merge_references import references_to
from warehouse.clients.merge_undo import undo_merge
from warehouse.clients.registration import Contact, NewClient, duplicates_before_registering, register_client
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.records.registration import NewPatient, register_patient
from warehouse.security.permissions import Actor

DUPLICATE_TARGET_MS = 50
WRITE_TARGET_MS = 200
RECEPTION, MANAGER = frozenset({"receptionist"}), frozenset({"practice_manager"})
# (call, its baseline): the report prints p95 call / p95 baseline for each pair.
BASELINES = (
    ("duplicate check: hit", "baseline: client by primary key"),
    ("duplicate check: miss", "baseline: client by primary key"),
    ("register_client", "baseline: INSERT client"),
    ("register_patient", "baseline: INSERT patient + owner"),
    ("merge_clients", "baseline: UPDATEs moving a client"),
    ("undo_merge (clients)", "baseline: UPDATEs moving a client"),
    ("merge_patients", "baseline: UPDATEs moving a patient"),
    ("undo_merge (patients)", "baseline: UPDATEs moving a patient"),
)
# The tables where the bench's clients and patients have rows, for the hand-written baselines.
NEW_CHIP = "528999999999999"  # no bench patient has it (theirs are 528 + 0 + practice + number)
T = TypeVar("T")
CLIENT_ROWS = ("appointment", "invoice", "payment", "reminder", "client_patient")
PATIENT_ROWS = ("appointment", "visit", "reminder", "client_patient")


@dataclass(frozen=True)
class WriteCase:
    practice: int
    client: int  # a client with a real blind index (the build gives 50 per practice one)
    kind: str  # what the duplicate check should find: phone, email, name, or miss
    new_client: NewClient
    surviving_client: int
    duplicate_client: int  # both clients have appointments, invoices and payments
    surviving_patient: int
    duplicate_patient: int  # of the same species; the duplicate has a visit (and mostly appointments)
    species: str
    breed: str | None


def _pick(conn: psycopg.Connection, sql: str, params: tuple) -> list[int]:
    return [r[0] for r in conn.execute(sql, params)]


_CLIENT_WITH_HISTORY = """
    SELECT c.id FROM client c WHERE c.practice_id = %s
       AND EXISTS (SELECT FROM appointment a WHERE a.practice_id = c.practice_id AND a.client_id = c.id)
       AND EXISTS (SELECT FROM payment p WHERE p.practice_id = c.practice_id AND p.client_id = c.id)
     ORDER BY random() LIMIT 2"""
_PATIENT_WITH_VISIT = """
    SELECT p.id, p.species FROM patient p WHERE p.practice_id = %s
       AND EXISTS (SELECT FROM visit v WHERE v.practice_id = p.practice_id AND v.patient_id = p.id)
     ORDER BY EXISTS (SELECT FROM appointment a WHERE a.practice_id = p.practice_id AND a.patient_id = p.id) DESC,
              random() LIMIT 1"""
_PATIENT_LIKE = """
    SELECT p.id FROM patient p WHERE p.practice_id = %s AND p.species = %s AND p.id <> %s
       AND EXISTS (SELECT FROM appointment a WHERE a.practice_id = p.practice_id AND a.patient_id = p.id)
     ORDER BY random() LIMIT 1"""


def sample_write_cases(conn: psycopg.Connection, rng: random.Random, n: int) -> list[WriteCase]:
    practices = _pick(conn, "SELECT id FROM tenant WHERE kind = 'practice' ORDER BY id", ())
    conn.execute("SELECT setseed(0.7)")
    cases = []
    for k in range(n):
        pid = rng.choice(practices)
        cid, last_name, postcode = conn.execute(
            "SELECT id, last_name, postcode FROM client WHERE practice_id = %s AND id IN "
            "(SELECT id FROM client WHERE practice_id = %s ORDER BY id LIMIT 50) ORDER BY random() LIMIT 1",
            (pid, pid),
        ).fetchone()
        kind = ("phone", "email", "name", "miss")[k % 4]
        contact = {
            "phone": Contact(phone=f"06-1{pid:03d}{cid % 10000:04d}"),  # as the build indexed it
            "email": Contact(email=f"c{cid}@example.nl"),
            "name": Contact(street="Kerkstraat", house_number="1", postcode=postcode, city="Stad"),
            "miss": Contact(
                street="Dorpsweg",
                house_number="2",
                postcode="9999 ZZ",
                city="Stad",
                phone="+31651234567",
                email="niemand@example.nl",
            ),  # fmt: skip
        }[kind]
        word = max(last_name.split(), key=len)
        new = NewClient(last_name=word + "s" if kind == "name" else word, contact=contact)
        survivor, duplicate = _pick(conn, _CLIENT_WITH_HISTORY, (pid,))
        patient, species = conn.execute(_PATIENT_WITH_VISIT, (pid,)).fetchone()
        (other,) = _pick(conn, _PATIENT_LIKE, (pid, species, patient))
        breed = conn.execute(
            "SELECT name FROM breed WHERE species = %s ORDER BY name LIMIT 1", (species,)
        ).fetchone()
        cases.append(WriteCase(pid, cid, kind, new, survivor, duplicate, other, patient, species,
                               breed[0] if breed else None))  # fmt: skip
    return cases


@contextmanager
def rolled_back(session: Session) -> Iterator[None]:
    """A savepoint undone afterwards, so every round writes into the same rows."""
    savepoint = session.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()


def timed(fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[float, T]:
    """Milliseconds the call took, and what it returned."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


class StatementCount:
    """Statements the engine sends (the merge's round trips), counted while ``counting``."""

    def __init__(self, engine: Engine) -> None:
        self.n = 0
        self.counting = False
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_: object) -> None:
        self.n += self.counting


def _plain_insert_client(session: Session, case: WriteCase) -> None:
    session.execute(
        text("INSERT INTO client (practice_id, last_name, postcode, city, phone_bidx) "
             "VALUES (:p, :name, :postcode, 'Stad', :bidx)"),
        {"p": case.practice, "name": case.new_client.last_name, "postcode": "1234 AB", "bidx": b"x" * 32},
    )  # fmt: skip


def _plain_insert_patient(session: Session, case: WriteCase) -> None:
    patient_id = session.execute(
        text("INSERT INTO patient (practice_id, name, species, microchip) "
             "VALUES (:p, 'Bello', :species, :chip) RETURNING id"),
        {"p": case.practice, "species": case.species, "chip": NEW_CHIP},
    ).scalar_one()  # fmt: skip
    session.execute(
        text("INSERT INTO client_patient (practice_id, client_id, patient_id) VALUES (:p, :c, :pt)"),
        {"p": case.practice, "c": case.client, "pt": patient_id},
    )


def _plain_move(
    session: Session, kind: str, tables: tuple[str, ...], p: int, survivor: int, duplicate: int
) -> None:
    column = f"{kind}_id"
    for table in tables:
        session.execute(
            text(f"UPDATE {table} SET {column} = :s WHERE practice_id = :p AND {column} = :d"),  # noqa: S608 - constants
            {"p": p, "s": survivor, "d": duplicate},
        )
    session.execute(
        text(f"UPDATE {kind} SET deleted_at = now(), merged_into_id = :s WHERE practice_id = :p AND id = :d"),  # noqa: S608
        {"p": p, "s": survivor, "d": duplicate},
    )


def _client_cases(s: Session, case: WriteCase, master_key: bytes, got: dict[str, float]) -> None:
    pid, reception = case.practice, Actor.at(None, case.practice, RECEPTION)
    got["baseline: client by primary key"], _ = timed(
        s.execute,
        text("SELECT * FROM client WHERE practice_id = :p AND id = :id"),
        {"p": pid, "id": case.client},
    )
    ms, found = timed(duplicates_before_registering, s, pid, case.new_client, master_key=master_key)
    if bool(found) != (case.kind != "miss"):  # the cases must hit and miss as they claim, or the figure lies
        raise AssertionError(f"the duplicate check of a {case.kind} case found {found}")
    got[f"duplicate check: {'miss' if case.kind == 'miss' else 'hit'}"] = ms
    with rolled_back(s):
        got["baseline: INSERT client"], _ = timed(_plain_insert_client, s, case)
    with rolled_back(s):
        got["register_client"], _ = timed(
            register_client, s, reception, practice_id=pid, new=case.new_client, master_key=master_key
        )
    new_patient = NewPatient(name="Bello", species=case.species, sex="female", neutered=True,
                             owner_ids=[case.client], breed=case.breed, born=dt.date(2020, 5, 1),
                             microchip=NEW_CHIP)  # fmt: skip
    with rolled_back(s):
        got["baseline: INSERT patient + owner"], _ = timed(_plain_insert_patient, s, case)
    with rolled_back(s):
        got["register_patient"], _ = timed(
            register_patient, s, reception, practice_id=pid, patient=new_patient, today=dt.date.today()
        )


def _merge_cases(s: Session, case: WriteCase, statements: StatementCount, got: dict[str, float],
                 counts: dict[str, list[int]]) -> None:  # fmt: skip
    pid, manager = case.practice, Actor.at(None, case.practice, MANAGER)
    for kind, survivor, duplicate, tables, merge in (
        ("client", case.surviving_client, case.duplicate_client, CLIENT_ROWS, merge_clients),
        ("patient", case.surviving_patient, case.duplicate_patient, PATIENT_ROWS, merge_patients),
    ):
        with rolled_back(s):
            got[f"baseline: UPDATEs moving a {kind}"], _ = timed(
                _plain_move, s, kind, tables, pid, survivor, duplicate
            )
        with rolled_back(s):
            statements.counting, statements.n = True, 0
            got[f"merge_{kind}s"], merged = timed(
                merge, s, manager, RecordRef(pid, survivor), RecordRef(pid, duplicate)
            )
            statements.counting = False
            counts.setdefault(f"merge_{kind}s: statements", []).append(statements.n)
            counts.setdefault(f"merge_{kind}s: rows moved", []).append(sum(merged.moved.values()))
            got[f"undo_merge ({kind}s)"], _ = timed(
                undo_merge, s, manager, practice_id=pid, merge_id=merged.merge_id
            )


def measure_writes(
    engine: Engine, cases: list[WriteCase], rounds: int, master_key: bytes
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Timings per call (the first round warms up), and per merge kind the mean statements sent and rows moved."""
    out: dict[str, list[float]] = {}
    statements = StatementCount(engine)
    counts: dict[str, list[int]] = {}
    for round_no in range(rounds):
        for case in cases:
            got: dict[str, float] = {}
            with tenant_session(engine, AccessContext.for_practices([case.practice])) as s:
                _client_cases(s, case, master_key, got)
                _merge_cases(s, case, statements, got, counts)
            if round_no:  # the first round warms the caches
                for name, value in got.items():
                    out.setdefault(name, []).append(value)
    return out, {name: sum(v) / len(v) for name, v in counts.items()}


def explain_merge(engine: Engine, case: WriteCase) -> None:
    """How a merge finds the duplicate's rows in each referring table, under RLS: the scan and its time."""
    with tenant_session(engine, AccessContext.for_practices([case.practice])) as s:
        for kind, duplicate in (("client", case.duplicate_client), ("patient", case.duplicate_patient)):
            print(f"\nEXPLAIN ANALYZE under RLS, the rows of {kind} {duplicate} per referring column:")
            for ref in references_to(s, kind):
                plan = [r[0] for r in s.execute(
                    text(f"EXPLAIN (ANALYZE, COSTS OFF, SUMMARY ON) SELECT * FROM {quoted(s, ref.table)} "  # noqa: S608
                         f"WHERE practice_id = :p AND {quoted(s, ref.column)} = :d FOR UPDATE"),
                    {"p": case.practice, "d": duplicate})]  # fmt: skip
                scans = [line.strip().removeprefix("->  ") for line in plan if "Scan" in line]
                ms = next(line.split(":")[1].strip() for line in plan if line.startswith("Execution Time"))
                print(f"  {ref.table + '.' + ref.column:<30} {ms:>10}  {scans[0] if scans else plan[0]}")


def explain_duplicates(engine: Engine, case: WriteCase, master_key: bytes) -> None:
    """The duplicate query's plan: each branch on its index."""
    with tenant_session(engine, AccessContext.for_practices([case.practice])) as s:
        cipher = practice_cipher(s, case.practice, master_key)
        plan = s.execute(
            text("EXPLAIN (ANALYZE, COSTS OFF) " + duplicates.CANDIDATES.text),
            {"p": case.practice, "phones": [cipher.phone_index("+31611111111")],
             "emails": [cipher.email_index("a@b.nl")], "postcodes": ["1234AB", "1234 AB"],
             "last_name": case.new_client.last_name, "threshold": duplicates.NAME_SIMILARITY, "limit": 10},
        )  # fmt: skip
        print("\nthe duplicate check's plan (EXPLAIN ANALYZE under RLS):")
        print("\n".join(r[0] for r in plan))
