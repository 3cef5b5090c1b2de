"""Benchmark: the services behind the clinical workspaces at 1 M patients / 700 k clients / 200 practices.

Measures, through the real services in real tenant sessions (``vetconnect_app`` under RLS):
- global search (``warehouse.search.service.search``) p50/p95 for a practice user and a franchise manager (50
  practices), against a naive ``ILIKE '%…%'`` baseline over the same columns in the same run;
- the free-slot finder (``find_free_slots``) p95;
- the service calls behind each page (hub today, day/week agenda, waiting room, patient card, patient picker,
  client card, patient record with its timeline, invoice from a visit (a draft, rolled back), the billing
  page's invoice list, visits to invoice and outstanding balances), each against the 200 ms target;
- the record writes of issue 16 (``bench/record_writes.py``): the duplicate check before a registration (hits and
  misses, p95 < 50 ms), register client and register patient, merge two clients and two patients with their
  history, and undo a merge (p95 < 200 ms), each rolled back and each against a baseline of the same run.

    python bench/workspaces.py               # full scale: 200 practices × 5,000 patients, 3,500 clients
    python bench/workspaces.py --scale 0.05  # a quick run (same 200 practices, 5 % of the rows)
    python bench/workspaces.py --reuse       # measure again on the database of the previous run (migrated first)
    python bench/workspaces.py --reuse --part writes --explain   # only the record writes, with their plans

Uses DATABASE_URL if set, else a throw-away embedded server under ./.vetconnect/bench-pgdata.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.record_writes import (  # noqa: E402
    BASELINES,
    DUPLICATE_TARGET_MS,
    WRITE_TARGET_MS,
    explain_duplicates,
    explain_merge,
    measure_writes,
    sample_write_cases,
)
from bench.tenancy import add_bench_franchise, add_bench_practice, libpq, percentile, progress, server_url  # noqa: E402
from warehouse.billing import invoice_views  # noqa: E402
from warehouse.billing.balances import client_balances  # noqa: E402
from warehouse.billing.drafts import draft_from_visit  # noqa: E402
from warehouse.clients.card import client_card  # noqa: E402
from warehouse.hub.service import open_patient, today_for_user  # noqa: E402
from warehouse.kernel.crypto import FieldCipher, unwrap_data_key  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.practice_time import practice_zone  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, tenant_session  # noqa: E402
from warehouse.migrations import runner as migrate
from warehouse.records.patient_record import patient_record  # noqa: E402
from warehouse.scheduling.day import schedule  # noqa: E402
from warehouse.scheduling.patients import patient_choices  # noqa: E402
from warehouse.scheduling.slots import SlotQuery, appointment_types, find_free_slots  # noqa: E402
from warehouse.scheduling.waiting_room import waiting_room  # noqa: E402
from warehouse.search.service import naive_search, search  # noqa: E402
from warehouse.security.permissions import Actor  # noqa: E402

DB_NAME = "vc_bench_workspaces"
PRACTICES = 200
PRACTICES_PER_FRANCHISE = 50
PATIENTS_PER_PRACTICE = 5000
CLIENTS_PER_PRACTICE = 3500
STAFF = 4
MASTER_KEY = bytes(32)
VET, MANAGER = frozenset({"veterinarian"}), frozenset({"franchise_manager"})
PAGE_TARGET_MS = 200
# The franchise price list invoicing reads: the consult (which every draft from a visit gets) and some items.
PRODUCTS = (("C-CONS", "Consult", "service", 4500, 2100), ("M-VACC", "Vaccin", "medicine", 2450, 900),
            ("F-KIBBLE", "Dieetvoer 2 kg", "food", 3195, 900), ("L-BLOOD", "Bloedonderzoek", "lab", 6500, 2100))  # fmt: skip
SURNAMES = (
    "Jansen de Vries van den Berg van Dijk Bakker Janssen Visser Smit Meijer de Boer Mulder de Groot Bos Vos "
    "Peters Hendriks van Leeuwen Dekker Brouwer de Wit Dijkstra Smits de Graaf van der Meer van der Linden "
    "Kok Jacobs de Haan Vermeulen van den Heuvel van der Veen van den Broek de Bruijn de Jong van Beek "
    "Willems Hoekstra Koster Prins Maas Verhoeven Kuipers Postma Huisman Boer Peeters Schouten Wouters "
    "Timmermans Gerritsen Kramer van Vliet Molenaar Sanders Martens Lammers Veenstra Evers"
).split()  # single words; multi-word names come from the prefix list
PREFIXES = ("", "", "", "van ", "de ", "van der ", "ter ", "op den ")
SUFFIXES = ("", "", "", "s", "ma", "ink", "man", "inga", "stra", "huis", "kamp", "veld", "berg", "hof")
PETS = (
    "Bello Max Luna Bobby Guus Pip Sam Lola Milo Lucky Tommy Simba Nala Loki Rocky Bruno Kira Saar Sammy Tijger "
    "Bliksem Snuf Pluis Joep Diesel Storm Boris Fien Noor Moos Olivier Pien Sjors Dribbel Flip Tobi Kees Dikkie "
    "Balou Coco Mimi Poekie Snoopy Bongo Tara Nova Jip Janneke Otto Bommel Dotje Nijn Stip Vlekje Sneeuw"
).split()
PET_SUFFIXES = ("", "", "", "tje", "y", "ie", "o", "je")
SPECIES = ("dog", "dog", "dog", "cat", "cat", "cat", "rabbit", "guinea_pig", "bird", "horse")


def _build_practice(conn: psycopg.Connection, pid: int, fid: int, n_patients: int, n_clients: int) -> None:
    conn.execute(
        "INSERT INTO resource (practice_id, kind, name) SELECT %s, 'staff', 'Dierenarts ' || g "
        "FROM generate_series(1, %s) g UNION ALL SELECT %s, 'room', 'Spreekkamer ' || g FROM generate_series(1, 2) g",
        (pid, STAFF, pid),
    )
    conn.execute(
        """INSERT INTO client (practice_id, last_name, first_name, postcode, city, phone_bidx, email_bidx)
           SELECT %(p)s, (%(pre)s::text[])[1 + floor(random() * %(npre)s)::int] || (%(sur)s::text[])[1 + floor(random() * %(nsur)s)::int]
                  || (%(suf)s::text[])[1 + floor(random() * %(nsuf)s)::int],
                  NULL, (1000 + floor(random() * 8999))::int::text || chr(65 + (g %% 26)) || chr(65 + (g / 26 %% 26)),
                  'Stad', sha256(('phone' || %(p)s || ':' || g)::bytea), sha256(('email' || %(p)s || ':' || g)::bytea)
           FROM generate_series(1, %(n)s) g""",
        {"p": pid, "pre": list(PREFIXES), "npre": len(PREFIXES), "sur": SURNAMES, "nsur": len(SURNAMES),
         "suf": list(SUFFIXES), "nsuf": len(SUFFIXES), "n": n_clients},
    )  # fmt: skip
    conn.execute(
        """INSERT INTO patient (practice_id, name, species, microchip, date_of_birth)
           SELECT %(p)s, (%(pets)s::text[])[1 + floor(random() * %(npets)s)::int] || (%(suf)s::text[])[1 + floor(random() * %(nsuf)s)::int],
                  (%(species)s::text[])[1 + floor(random() * %(nsp)s)::int],
                  '528' || lpad((%(p)s::bigint * 100000000 + g)::text, 12, '0'),
                  date '2010-01-01' + floor(random() * 5000)::int
           FROM generate_series(1, %(n)s) g""",
        {"p": pid, "pets": PETS, "npets": len(PETS), "suf": list(PET_SUFFIXES), "nsuf": len(PET_SUFFIXES),
         "species": list(SPECIES), "nsp": len(SPECIES), "n": n_patients},
    )  # fmt: skip
    conn.execute(
        """WITH pt AS (SELECT array_agg(id ORDER BY id) ids FROM patient WHERE practice_id = %(p)s),
                cl AS (SELECT array_agg(id ORDER BY id) ids FROM client WHERE practice_id = %(p)s)
           INSERT INTO client_patient (practice_id, client_id, patient_id)
           SELECT %(p)s, cl.ids[1 + (i - 1) %% %(nc)s], pt.ids[i] FROM pt, cl, generate_series(1, %(np)s) i""",
        {"p": pid, "nc": n_clients, "np": n_patients},
    )
    # Shifts 08:00–17:30 on weekdays from 30 days ago to 14 days ahead; ~60 % of 30-minute slots booked.
    conn.execute(
        """INSERT INTO staff_shift (practice_id, resource_id, starts_at, ends_at)
           SELECT %(p)s, r.id, d + time '08:00', d + time '17:30'
           FROM resource r, generate_series(current_date - 30, current_date + 14, interval '1 day') d
           WHERE r.practice_id = %(p)s AND r.kind = 'staff' AND extract(isodow FROM d) < 6""",
        {"p": pid},
    )
    conn.execute(
        """WITH pt AS (SELECT array_agg(id ORDER BY id) ids FROM patient WHERE practice_id = %(p)s),
                cl AS (SELECT array_agg(id ORDER BY id) ids FROM client WHERE practice_id = %(p)s),
                types AS (SELECT array_agg(id ORDER BY id) ids FROM appointment_type WHERE franchise_id = %(f)s),
                slots AS (SELECT s.resource_id, s.starts_at + slot * interval '30 minutes' AS starts_at,
                                 1 + floor(random() * %(np)s)::int AS k
                          FROM staff_shift s CROSS JOIN generate_series(0, 18) slot
                          WHERE s.practice_id = %(p)s AND random() < 0.6)
           INSERT INTO appointment (practice_id, resource_id, patient_id, client_id, franchise_id,
                                    appointment_type_id, starts_at, ends_at, status, source)
           SELECT %(p)s, x.resource_id, pt.ids[x.k], cl.ids[1 + (x.k - 1) %% %(nc)s], %(f)s, types.ids[1 + x.k %% 4],
                  x.starts_at, x.starts_at + interval '20 minutes',
                  CASE WHEN x.starts_at > now() THEN 'booked'
                       WHEN x.k %% 17 = 0 THEN 'no_show' WHEN x.k %% 13 = 0 THEN 'cancelled' ELSE 'done' END, 'native'
           FROM slots x, pt, cl, types""",
        {"p": pid, "f": fid, "np": n_patients, "nc": n_clients},
    )  # fmt: skip
    conn.execute(
        """WITH cl AS (SELECT array_agg(id ORDER BY id) ids FROM client WHERE practice_id = %(p)s)
           INSERT INTO invoice (practice_id, number, client_id, issued_on, status, total_excl_cents, vat_cents,
                                total_incl_cents)
           SELECT %(p)s, '2026-' || %(p)s || '-' || lpad(g::text, 5, '0'), cl.ids[1 + floor(random() * %(nc)s)::int],
                  current_date - (g %% 90)::int, CASE WHEN g %% 5 = 0 THEN 'issued' ELSE 'paid' END, 4500, 945, 5445
           FROM cl, generate_series(1, %(ni)s) g""",
        {"p": pid, "nc": n_clients, "ni": max(50, n_patients // 5)},
    )  # fmt: skip
    conn.execute(
        """INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents, paid_at)
           SELECT practice_id, id, client_id, 'pin', total_incl_cents, issued_on + time '12:00' FROM invoice
           WHERE practice_id = %(p)s AND status = 'paid'""",
        {"p": pid},
    )
    conn.execute(
        """INSERT INTO visit (practice_id, patient_id, started_at, reason)
           SELECT %(p)s, id, now() - (id %% 5) * interval '1 day', 'Consult' FROM patient
           WHERE practice_id = %(p)s ORDER BY id LIMIT 20""",
        {"p": pid},
    )
    conn.execute(
        """INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on)
           SELECT %(p)s, cp.patient_id, cp.client_id, 'vaccination', current_date + (cp.patient_id %% 30)::int
           FROM client_patient cp WHERE cp.practice_id = %(p)s ORDER BY cp.patient_id DESC LIMIT 100""",
        {"p": pid},
    )
    # Blind indexes for a sample of clients (computing them for every row adds nothing to the measurement).
    wrapped = conn.execute(
        "SELECT wrapped_key FROM tenant_data_key WHERE practice_id = %s", (pid,)
    ).fetchone()[0]
    cipher = FieldCipher(pid, unwrap_data_key(MASTER_KEY, pid, bytes(wrapped)))
    sample = conn.execute(
        "SELECT id FROM client WHERE practice_id = %s ORDER BY id LIMIT 50", (pid,)
    ).fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE client SET phone_bidx = %s, email_bidx = %s WHERE practice_id = %s AND id = %s",
            [(cipher.phone_index(f"06-1{pid:03d}{cid % 10000:04d}"), cipher.email_index(f"c{cid}@example.nl"), pid, cid)
             for (cid,) in sample],
        )  # fmt: skip


def build(admin: str, scale: float) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    migrate.upgrade(url)
    n_patients, n_clients = int(PATIENTS_PER_PRACTICE * scale), int(CLIENTS_PER_PRACTICE * scale)
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        conn.execute("SET session_replication_role = replica")  # reads are measured, not the bulk-load audit
        conn.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        done = 0
        for f in range(PRACTICES // PRACTICES_PER_FRANCHISE):
            fid = add_bench_franchise(conn, f)
            for code, name, minutes in (("consult", "Consult", 15), ("vacc", "Vaccinatie", 15),
                                        ("checkup", "Gezondheidscheck", 20), ("surgery", "Operatie", 60)):  # fmt: skip
                conn.execute("INSERT INTO appointment_type (franchise_id, code, name, duration_minutes) "
                             "VALUES (%s, %s, %s, %s)", (fid, code, name, minutes))  # fmt: skip
            for _ in range(PRACTICES_PER_FRANCHISE):
                pid = add_bench_practice(conn, fid, MASTER_KEY)
                _build_practice(conn, pid, fid, n_patients, n_clients)
                conn.execute("SELECT search_reindex(%s)", (pid,))  # its triggers are off during the bulk load
                conn.commit()
                done += 1
                progress("practices", done, PRACTICES, started)
        print()
        conn.execute("SET session_replication_role = origin")
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1 :]  # one letter dropped


def sample(conn: psycopg.Connection, rng: random.Random) -> tuple[list[dict], list[list[int]]]:
    franchises = [r[0] for r in conn.execute(
        "SELECT array_agg(id ORDER BY id) FROM tenant WHERE kind = 'practice' GROUP BY franchise_id")]  # fmt: skip
    cases = []
    for i in range(120):
        practices = rng.choice(franchises)
        pid = rng.choice(practices)
        kind = i % 6
        if kind in (0, 1):  # client last name, half with a typo
            (name,) = conn.execute("SELECT last_name FROM client WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                   (pid,)).fetchone()  # fmt: skip
            word = max(name.split(), key=len)
            term = _typo(word, rng) if kind == 1 else word
        elif kind in (2, 3):  # patient name, half with a typo
            (name,) = conn.execute("SELECT name FROM patient WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                   (pid,)).fetchone()  # fmt: skip
            term = _typo(name, rng) if kind == 3 else name
        elif kind == 4:  # chip, phone or postcode
            choice = rng.randrange(3)
            if choice == 0:
                term = conn.execute("SELECT microchip FROM patient WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                    (pid,)).fetchone()[0]  # fmt: skip
            elif choice == 1:
                cid = conn.execute("SELECT id FROM client WHERE practice_id = %s AND phone_bidx IS NOT NULL "
                                   "ORDER BY random() LIMIT 1", (pid,)).fetchone()[0]  # fmt: skip
                term = f"06 1{pid:03d} {cid % 10000:04d}"
            else:
                code = conn.execute("SELECT postcode FROM client WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                    (pid,)).fetchone()[0]  # fmt: skip
                term = f"{code[:4]} {code[4:].lower()}"
        else:  # invoice number prefix
            term = conn.execute("SELECT number FROM invoice WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                (pid,)).fetchone()[0][:-1]  # fmt: skip
        patient, client = conn.execute(
            "SELECT cp.patient_id, cp.client_id FROM client_patient cp WHERE cp.practice_id = %s "
            "ORDER BY random() LIMIT 1", (pid,)).fetchone()  # fmt: skip
        (visit,) = conn.execute("SELECT id FROM visit WHERE practice_id = %s ORDER BY random() LIMIT 1",
                                (pid,)).fetchone()  # fmt: skip
        cases.append({"practice": pid, "franchise": practices, "term": term, "kind": kind, "patient": patient,
                      "client": client, "visit": visit})  # fmt: skip
    return cases, franchises


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def _billing_lists(session: Session, practice_id: int, client_id: int) -> None:
    """What the billing page lists besides balances: the client's invoices and the visits not yet invoiced."""
    invoice_views.invoices(session, practice_id, client_id=client_id)
    invoice_views.uninvoiced_visits(session, practice_id)


def _balances(session: Session, practice_id: int) -> None:
    client_balances(session).filter(pl.col("practice_id") == practice_id)  # as the billing page asks


def _draft_rolled_back(session: Session, practice_id: int, visit_id: int) -> None:
    """The invoice a receptionist makes from a visit (lines from the price list), undone so every round
    drafts from the same visits."""
    savepoint = session.begin_nested()
    reception = Actor.at(None, practice_id, {"receptionist"})
    draft_from_visit(session, reception, practice_id=practice_id, visit_id=visit_id)
    savepoint.rollback()


def ensure_price_lists(conn: psycopg.Connection) -> None:
    """Every franchise's price list (idempotent, so a reused database from before this existed gets it too)."""
    conn.execute("SET session_replication_role = replica")  # a bench fixture, not audited
    for code, name, kind, cents, vat in PRODUCTS:
        conn.execute(
            "INSERT INTO product (franchise_id, code, name, kind, price_cents, vat_rate_bp) "
            "SELECT id, %s, %s, %s, %s, %s FROM tenant WHERE kind = 'franchise' ON CONFLICT DO NOTHING",
            (code, name, kind, cents, vat),
        )
    conn.execute("SET session_replication_role = origin")
    conn.commit()


def measure(url: str, cases: list[dict], rounds: int) -> dict[str, list[float]]:
    engine = make_engine(app_url(url), pool_size=2)
    now = dt.datetime.now(dt.UTC)
    out: dict[str, list[float]] = {}

    def add(name: str, value: float, warm: bool) -> None:
        if not warm:
            out.setdefault(name, []).append(value)

    for round_no in range(rounds):
        warm = round_no == 0
        for case in cases:
            pid, term = case["practice"], case["term"]
            practice = AccessContext.for_practices([pid])
            franchise = AccessContext.for_practices(case["franchise"])
            names = case["kind"] < 4
            with tenant_session(engine, practice) as s:
                add("search: practice user (all kinds)", timed(search, s, term, master_key=MASTER_KEY), warm)
                if names:
                    add("search: practice user (names)", timed(search, s, term, master_key=MASTER_KEY), warm)
                    add("naive ILIKE: practice user (names)", timed(naive_search, s, term), warm)
            with tenant_session(engine, franchise) as s:
                add(
                    "search: franchise, 50 practices (all kinds)",
                    timed(search, s, term, master_key=MASTER_KEY),
                    warm,
                )
                if names:
                    add(
                        "search: franchise, 50 practices (names)",
                        timed(search, s, term, master_key=MASTER_KEY),
                        warm,
                    )
                    add("naive ILIKE: franchise (names)", timed(naive_search, s, term), warm)
            with tenant_session(engine, practice) as s:
                zone = practice_zone(s, pid)  # the franchise's hub below reads its day in this zone too
                today = now.astimezone(zone).date()
                monday = today - dt.timedelta(days=today.weekday())
                type_id = appointment_types(s, pid)[0].id
                not_before = now + dt.timedelta(days=case["patient"] % 7, minutes=case["patient"] % 600)
                add(
                    "free-slot finder (7 days, 4 vets)",
                    timed(find_free_slots, s, SlotQuery(pid, type_id, not_before)),
                    warm,
                )
                add(
                    "hub: today_for_user (practice)",
                    timed(today_for_user, s, user_id=None, roles=VET, now=now, tz=zone),
                    warm,
                )
                add(
                    "hub: patient card (audited read)",
                    timed(open_patient, s, pid, case["patient"], now=now),
                    warm,
                )
                add("scheduling: appointment types", timed(appointment_types, s, pid), warm)
                add("scheduling: day agenda", timed(schedule, s, pid, today), warm)
                add("scheduling: week agenda", timed(schedule, s, pid, monday, days=7), warm)
                add("scheduling: patient picker", timed(patient_choices, s, pid, query=term[:5]), warm)
                add("waiting room: board", timed(waiting_room, s, pid, now), warm)
                add(
                    "records: client card",
                    timed(client_card, s, pid, case["client"], master_key=MASTER_KEY),
                    warm,
                )
                add("records: patient record + timeline",
                    timed(patient_record, s, pid, case["patient"], today=today, now=now), warm)  # fmt: skip
                add(
                    "billing: invoices + visits to invoice",
                    timed(_billing_lists, s, pid, case["client"]),
                    warm,
                )
                add("billing: outstanding balances", timed(_balances, s, pid), warm)
                add(
                    "billing: invoice from visit (draft)",
                    timed(_draft_rolled_back, s, pid, case["visit"]),
                    warm,
                )
            with tenant_session(engine, franchise) as s:
                add(
                    "hub: today_for_user (franchise)",
                    timed(today_for_user, s, user_id=None, roles=MANAGER, now=now, tz=zone),
                    warm,
                )
    engine.dispose()
    return out


def target_of(call: str) -> float:
    if call.startswith("search"):
        return 50
    if call.startswith("free-slot"):
        return 100
    if call.startswith("duplicate check"):
        return DUPLICATE_TARGET_MS
    if call.startswith(("register_", "merge_", "undo_merge")):
        return WRITE_TARGET_MS
    return float("nan") if call.startswith(("naive", "baseline")) else PAGE_TARGET_MS


def report(timings: dict[str, list[float]], title: str) -> None:
    print(f"\n{title}\n{'call':<46}{'n':>5}{'p50':>10}{'p95':>10}{'max':>10}  target p95")
    for name, values in timings.items():
        target, p95 = target_of(name), percentile(values, 0.95)
        verdict = "" if target != target else f"  < {target:.0f} ms {'ok' if p95 < target else 'MISSED'}"
        print(f"{name:<46}{len(values):>5}{percentile(values, 0.5):>8.2f}ms{p95:>8.2f}ms"
              f"{max(values):>8.1f}ms{verdict}")  # fmt: skip
    pairs = (("search: practice user (names)", "naive ILIKE: practice user (names)"),
             ("search: franchise, 50 practices (names)", "naive ILIKE: franchise (names)"), *BASELINES)  # fmt: skip
    for call, baseline in pairs:
        if timings.get(call) and timings.get(baseline):
            print(f"{call} p95 / {baseline} p95 = "
                  f"{percentile(timings[call], 0.95) / percentile(timings[baseline], 0.95):.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of 5,000 patients / 3,500 clients per practice"
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes over 120 cases (the first is warm-up)")
    parser.add_argument("--reuse", action="store_true", help="reuse the database of a previous run")
    parser.add_argument("--part", choices=("all", "pages", "writes"), default="all",
                        help="pages: search and the page services; writes: registration, duplicates, merge")  # fmt: skip
    parser.add_argument("--write-cases", type=int, default=80, help="practices sampled for the record writes")
    parser.add_argument(
        "--explain", action="store_true", help="print the duplicate check's and a merge's plans"
    )
    args = parser.parse_args()
    admin = libpq(server_url())
    if not args.reuse:
        print(f"building 200 practices at scale {args.scale} …")
        t0 = time.perf_counter()
        build(admin, args.scale)
        print(f"built in {time.perf_counter() - t0:,.0f}s")
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    if args.reuse:
        migrate.upgrade(url)  # a database of an earlier run gets the indexes of later migrations
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        ensure_price_lists(conn)
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - constant names
                  for t in ("patient", "client", "appointment", "invoice", "payment", "visit")}  # fmt: skip
        cases, _ = sample(conn, random.Random(7))
        write_cases = sample_write_cases(conn, random.Random(11), args.write_cases)
    print(", ".join(f"{t}: {n:,}" for t, n in counts.items()))
    load_before = os.getloadavg()
    timings = measure(url, cases, args.rounds) if args.part != "writes" else {}
    if args.part != "pages":
        engine = make_engine(app_url(url), pool_size=2)
        written, merges = measure_writes(engine, write_cases, args.rounds, MASTER_KEY)
        timings |= written
        if args.explain:
            explain_duplicates(engine, write_cases[2], MASTER_KEY)
            explain_merge(engine, write_cases[0])
        engine.dispose()
    load_after = os.getloadavg()
    report(timings, "timings (vetconnect_app, RLS, through the services)")
    if args.part != "pages":
        print("per merge, mean: " + ", ".join(f"{name} {value:.1f}" for name, value in merges.items()))
    print(f"load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after: {'/'.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
