"""Benchmark: the duplicate check before a registration, and the registration itself, at 1 M clients.

200 practices × 5,000 clients (Dutch surnames, a few very common, random postcodes, a blind index on every
client). Through the real services in tenant sessions (``vetconnect_app`` under RLS):
- ``duplicates_before_registering`` p50/p95 (target p95 < 50 ms), cases that hit by phone, by e-mail, by a similar
  name at the postcode, and that hit nothing;
- ``register_client`` (rolled back) p95 (target < 200 ms);
and prints the duplicate query's plan (EXPLAIN ANALYZE), to show each branch on its index.

    python bench/client_registration.py               # 1 M clients
    python bench/client_registration.py --scale 0.05  # a quick run
    python bench/client_registration.py --reuse       # measure again on the previous run's database

Uses DATABASE_URL if set, else a throw-away embedded server under ./.vetconnect/bench-pgdata.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tenancy import add_bench_franchise, add_bench_practice, libpq, percentile, progress, server_url  # noqa: E402
from warehouse.clients import duplicates  # noqa: E402
from warehouse.clients.registration import Contact, NewClient, duplicates_before_registering, register_client  # noqa: E402
from warehouse.kernel.ciphers import cipher_of_wrapped_key, practice_cipher  # noqa: E402
from warehouse.kernel.crypto import FieldCipher  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, tenant_session  # noqa: E402
from warehouse.migrations import runner as migrate  # noqa: E402
from warehouse.security.permissions import Actor  # noqa: E402

DB_NAME = "vc_bench_clients"
MASTER_KEY = bytes(32)
PRACTICES, PER_FRANCHISE, CLIENTS_PER_PRACTICE = 200, 50, 5_000
SURNAMES = ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
            "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
            "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "Kok", "Jacobs", "de Haan"]  # fmt: skip


def build(admin: str, scale: float) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    migrate.upgrade(
        make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    )
    per_practice = int(CLIENTS_PER_PRACTICE * scale)
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        conn.execute(
            "SET session_replication_role = replica"
        )  # reads are measured, not the bulk-load triggers
        conn.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        for number in range(PRACTICES // PER_FRANCHISE):
            fid = add_bench_franchise(conn, number)
            for i in range(PER_FRANCHISE):
                pid = add_bench_practice(conn, fid, MASTER_KEY)
                # A suffix on most names keeps the name spread realistic; every tenth client has a bare common name.
                conn.execute(
                    """INSERT INTO client (practice_id, last_name, postcode, city, phone_bidx, email_bidx)
                       SELECT %(p)s, (%(names)s::text[])[1 + floor(random() * %(n)s)::int]
                                     || CASE WHEN g %% 10 = 0 THEN '' ELSE '-' || (g %% 997)::text END,
                              (1000 + floor(random() * 8999))::int::text || ' ' || chr(65 + floor(random() * 18)::int)
                                || chr(65 + floor(random() * 26)::int),
                              'Stad', sha256(('phone' || %(p)s || ':' || g)::bytea),
                              sha256(('email' || %(p)s || ':' || g)::bytea)
                       FROM generate_series(1, %(count)s) g""",
                    {"p": pid, "names": SURNAMES, "n": len(SURNAMES), "count": per_practice},
                )  # fmt: skip
                # The sample's clients get real blind indexes, so a phone or e-mail case finds them.
                cipher = practice_cipher_of(conn, pid)
                rows = conn.execute(
                    "SELECT id FROM client WHERE practice_id = %s ORDER BY id LIMIT 5", (pid,)
                ).fetchall()
                for (cid,) in rows:
                    conn.execute(
                        "UPDATE client SET phone_bidx = %s, email_bidx = %s WHERE practice_id = %s AND id = %s",
                        (cipher.phone_index(f"+3161{pid:03d}{cid % 10000:04d}"),
                         cipher.email_index(f"c{cid}@example.nl"), pid, cid),
                    )  # fmt: skip
                conn.commit()
                progress("practices", number * PER_FRANCHISE + i + 1, PRACTICES, started)
        print()
        conn.execute("SET session_replication_role = origin")
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE client")


def practice_cipher_of(conn: psycopg.Connection, pid: int) -> FieldCipher:
    wrapped, version = conn.execute(
        "SELECT wrapped_key, version FROM tenant_data_key WHERE practice_id = %s", (pid,)
    ).fetchone()
    return cipher_of_wrapped_key(MASTER_KEY, pid, bytes(wrapped), version)


def cases(conn: psycopg.Connection, rng: random.Random, n: int) -> list[tuple[int, NewClient]]:
    rows = conn.execute(
        "SELECT practice_id, id, last_name, postcode FROM client WHERE id IN "
        "(SELECT min(id) FROM client GROUP BY practice_id) ORDER BY practice_id"
    ).fetchall()
    out = []
    for k in range(n):
        pid, cid, last_name, postcode = rows[rng.randrange(len(rows))]
        kind = k % 4
        contact = [Contact(phone=f"+3161{pid:03d}{cid % 10000:04d}"), Contact(email=f"c{cid}@example.nl"),
                   Contact(street="Kerkstraat", house_number="1", postcode=postcode, city="Stad"),
                   Contact(phone="+31651234567", email="niemand@example.nl")][kind]  # fmt: skip
        name = last_name.split("-")[0] + ("s" if kind == 2 else "")
        out.append((pid, NewClient(last_name=name, contact=contact)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 5,000 clients per practice")
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--reuse", action="store_true", help="reuse the database of a previous run")
    args = parser.parse_args()
    admin = libpq(server_url())
    if not args.reuse:
        t0 = time.perf_counter()
        build(admin, args.scale)
        print(f"built in {time.perf_counter() - t0:,.0f}s")
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        print(f"clients: {conn.execute('SELECT count(*) FROM client').fetchone()[0]:,}")
        sample = cases(conn, random.Random(7), args.cases)
    engine = make_engine(app_url(url), pool_size=2)
    timings: dict[str, list[float]] = {"duplicate check": [], "register (rolled back)": []}
    hits = 0
    for round_no, (pid, new) in enumerate(sample):
        with tenant_session(engine, AccessContext.for_practices([pid])) as session:
            t0 = time.perf_counter()
            found = duplicates_before_registering(session, pid, new, master_key=MASTER_KEY)
            elapsed = (time.perf_counter() - t0) * 1000
            hits += bool(found)
            t0 = time.perf_counter()
            register_client(session, Actor.at(None, pid, {"receptionist"}), practice_id=pid, new=new,
                            master_key=MASTER_KEY)  # fmt: skip
            registered = (time.perf_counter() - t0) * 1000
            session.rollback()
        if round_no >= 20:  # the first ones warm the caches
            timings["duplicate check"].append(elapsed)
            timings["register (rolled back)"].append(registered)
    print(f"{hits} of {len(sample)} cases found a candidate")
    for name, values in timings.items():
        target = 50 if name == "duplicate check" else 200
        p95 = percentile(values, 0.95)
        print(f"{name:<26} n={len(values)} p50 {percentile(values, 0.5):.2f} ms  p95 {p95:.2f} ms  "
              f"max {max(values):.1f} ms  target p95 < {target} ms {'ok' if p95 < target else 'MISSED'}")  # fmt: skip
    pid, new = sample[2]
    with tenant_session(engine, AccessContext.for_practices([pid])) as session:
        cipher = practice_cipher(session, pid, MASTER_KEY)
        plan = session.execute(
            text("EXPLAIN (ANALYZE, COSTS OFF) " + duplicates.CANDIDATES.text),
            {"p": pid, "phones": [cipher.phone_index("+31611111111")], "emails": [cipher.email_index("a@b.nl")],
             "postcodes": [new.contact.postcode], "last_name": new.last_name,
             "threshold": duplicates.NAME_SIMILARITY, "limit": 10},
        )  # fmt: skip
        print("\n".join(r[0] for r in plan))
    engine.dispose()


if __name__ == "__main__":
    main()
