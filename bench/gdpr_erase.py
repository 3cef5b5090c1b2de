"""Erasure of a client with history (issue 17): ``warehouse.privacy.erasure.erase_client`` p50/p95 over clients
registered and edited through the services, each with years of history, in practices with a background of other
clients; against a contact edit of the same client in the same run (``edit_contact``, the baseline: one client
write with its audit entry and search-index update). Target: erasure p95 < 1 s.

    python bench/gdpr_erase.py                 # 4 practices x 2,000 background clients, 60 erased clients
    python bench/gdpr_erase.py --clients 100   # more cases

Each case: register the client (``register_client``), add ten years of history in bulk (an animal, 40 appointments
and 40 visits a year, 2 invoices a year each paid, 10 reminders), edit the contact once (so the audit and the
search index hold old values), then time a contact edit (baseline) and the erasure, each in its own committed
transaction under ``vetconnect_app`` (RLS), as the app runs them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tenancy import add_bench_franchise, add_bench_practice, libpq, percentile, progress, server_url  # noqa: E402
from warehouse.clients.registration import Contact, NewClient, edit_contact, register_client  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, tenant_session  # noqa: E402
from warehouse.migrations import runner as migrate  # noqa: E402
from warehouse.privacy.erasure import erase_client  # noqa: E402
from warehouse.security.permissions import Actor  # noqa: E402

DB_NAME = "vc_bench_gdpr_erase"
MASTER_KEY = bytes(32)
TARGET_MS = 1000
YEARS = 10

# Ten years of one client's history, generated in the server (the services are measured, not the seeding).
HISTORY = """
WITH animal AS (
  INSERT INTO patient (practice_id, name, species) VALUES (%(p)s, 'Bello ' || %(c)s, 'dog') RETURNING id),
link AS (INSERT INTO client_patient (practice_id, client_id, patient_id) SELECT %(p)s, %(c)s, id FROM animal),
days AS (SELECT now() - make_interval(days => d * 9) AS at FROM generate_series(1, 40 * %(years)s) d),
booked AS (
  INSERT INTO appointment (practice_id, resource_id, patient_id, client_id, franchise_id, starts_at, ends_at,
                           status, reason)
  SELECT %(p)s, %(r)s, a.id, %(c)s, %(f)s, d.at, d.at + interval '15 minutes', 'done', 'Controle'
    FROM days d, animal a RETURNING id, patient_id, starts_at),
visits AS (
  INSERT INTO visit (practice_id, patient_id, appointment_id, started_at, reason, subjective)
  SELECT %(p)s, patient_id, id, starts_at, 'Controle', 'Eigenaar meldt niets bijzonders' FROM booked),
bills AS (
  INSERT INTO invoice (practice_id, number, client_id, issued_on, status, total_excl_cents, vat_cents,
                       total_incl_cents)
  SELECT %(p)s, 'B' || %(c)s || '-' || n, %(c)s, (now() - make_interval(days => n * 180))::date, 'paid', 10000,
         2100, 12100 FROM generate_series(1, 2 * %(years)s) n RETURNING id),
paid AS (
  INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents)
  SELECT %(p)s, id, %(c)s, 'pin', 12100 FROM bills)
INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on)
SELECT %(p)s, a.id, %(c)s, 'vaccination', (now() + make_interval(days => n * 30))::date
  FROM animal a, generate_series(1, 10) n
"""


def build(admin: str, practices: int, background: int) -> list[int]:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    migrate.upgrade(
        make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    )
    ids = []
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        franchise = add_bench_franchise(conn, 1)
        for _ in range(practices):
            pid = add_bench_practice(conn, franchise, MASTER_KEY)
            conn.execute(
                "INSERT INTO resource (practice_id, kind, name) VALUES (%s, 'staff', 'Dierenarts')", (pid,)
            )
            # Other clients, so the erasure's lookups run in tables of a practice's size, not an empty one.
            conn.execute(
                "INSERT INTO client (practice_id, last_name, postcode, city) SELECT %s, 'Achternaam ' || n, "
                "'1234AB', 'Utrecht' FROM generate_series(1, %s) n",
                (pid, background),
            )
            ids.append(pid)
        conn.commit()
    return ids


def seed_case(url: str, admin: str, practice_id: int, n: int) -> int:
    """One client through the services, with history in bulk; returns the client's id."""
    engine = make_engine(app_url(url), pool_size=1)
    manager = Actor.at(None, practice_id, {"practice_manager"})
    context = AccessContext.for_practices([practice_id])
    with tenant_session(engine, context) as session:
        client_id = register_client(
            session, manager, practice_id=practice_id, master_key=MASTER_KEY,
            new=NewClient(last_name=f"Verwijderbaar-{n}", first_name="Anna",
                          contact=Contact(street="Dorpsstraat", house_number=str(n + 1), postcode="1234 AB",
                                          city="Utrecht", phone=f"06{12000000 + n}", email=f"anna{n}@example.nl")),
        )  # fmt: skip
    with tenant_session(engine, context) as session:
        edit_contact(session, manager, practice_id=practice_id, client_id=client_id, master_key=MASTER_KEY,
                     contact=Contact(street="Kerkstraat", house_number="2", postcode="3511 AA", city="Amersfoort",
                                     phone=f"06{12000000 + n}", email=f"anna{n}@example.nl"))  # fmt: skip
    engine.dispose()
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        franchise, resource = conn.execute(
            "SELECT t.franchise_id, r.id FROM tenant t JOIN resource r ON r.practice_id = t.id WHERE t.id = %s",
            (practice_id,),
        ).fetchone()
        conn.execute(
            HISTORY, {"p": practice_id, "c": client_id, "f": franchise, "r": resource, "years": YEARS}
        )
    return client_id


def measure(url: str, cases: list[tuple[int, int]]) -> dict[str, list[float]]:
    engine = make_engine(app_url(url), pool_size=2)
    got: dict[str, list[float]] = {"contact edit (baseline)": [], "erase_client": []}
    started = time.perf_counter()
    for done, (practice_id, client_id) in enumerate(cases, 1):
        manager = Actor.at(None, practice_id, {"practice_manager"})
        context = AccessContext.for_practices([practice_id])
        t0 = time.perf_counter()
        with tenant_session(engine, context) as session:
            edit_contact(session, manager, practice_id=practice_id, client_id=client_id, master_key=MASTER_KEY,
                         contact=Contact(street="Kerkstraat", house_number="3", postcode="3511 AB",
                                         city="Amersfoort", phone="0612999999", email="anders@example.nl"))  # fmt: skip
        got["contact edit (baseline)"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        with tenant_session(engine, context) as session:
            erase_client(session, manager, practice_id, client_id, master_key=MASTER_KEY)
        got["erase_client"].append((time.perf_counter() - t0) * 1000)
        progress("measuring", done, len(cases), started)
    print()
    engine.dispose()
    return got


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--practices", type=int, default=4)
    parser.add_argument("--background", type=int, default=2000, help="other clients per practice")
    parser.add_argument(
        "--clients", type=int, default=60, help="clients erased (>= 50 for the issue's figure)"
    )
    args = parser.parse_args()
    admin = libpq(server_url())
    print(f"building {args.practices} practices with {args.background:,} clients each …")
    practices = build(admin, args.practices, args.background)
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    cases, started = [], time.perf_counter()
    for n in range(args.clients):
        practice_id = practices[n % len(practices)]
        cases.append((practice_id, seed_case(url, admin, practice_id, n)))
        progress("seeding clients with history", n + 1, args.clients, started)
    print()
    load = os.getloadavg()
    got = measure(url, cases)
    print(f"load average during the run: {load[0]:.1f} -> {os.getloadavg()[0]:.1f} (2 cores shared)")
    print(f"{'call':<26}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, values in got.items():
        print(f"{name:<26}{len(values):>5}{percentile(values, 0.5):>10.1f}{percentile(values, 0.95):>10.1f}"
              f"{max(values):>10.1f}")  # fmt: skip
    ratio = percentile(got["erase_client"], 0.95) / percentile(got["contact edit (baseline)"], 0.95)
    p95 = percentile(got["erase_client"], 0.95)
    verdict = "met" if p95 < TARGET_MS else "MISSED"
    print(f"erase_client p95 / contact edit p95: {ratio:.1f}x; target p95 < {TARGET_MS} ms: {verdict}")


if __name__ == "__main__":
    main()
