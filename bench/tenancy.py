"""Benchmark: what row-level security costs, at 500 practices and ~5 M appointments.

Runs a fixed query mix as superuser with an explicit WHERE (the baseline) and as ``vetconnect_app`` under RLS
in two forms: ``rls`` (the policy alone) and ``rls+where`` (the policy plus the ``practice_id IN (…)`` filter
that ``tenant_session`` adds to every ORM statement, which is how the application queries). Prints p50/p95 per
query and arm, the ratio to the baseline, and planning times with every practice's partitions present.

    python bench/tenancy.py                       # 500 practices, 10,000 appointments each (5 M)
    python bench/tenancy.py --practices 50 --per-practice 2000   # a quick run

Uses DATABASE_URL if set, else a throw-away embedded server under ./.vetconnect/bench-pgdata.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vetconnect import pgserver  # noqa: E402
from warehouse.kernel.crypto import new_data_key, wrap_data_key  # noqa: E402
from warehouse.migrations import runner as migrate

DB_NAME = "vc_bench_tenancy"
RESOURCES_PER_PRACTICE = 6
PATIENTS_PER_PRACTICE = 1000
PRACTICES_PER_FRANCHISE = 50
SLOTS_PER_DAY = 16


def libpq(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def server_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    home = Path(os.environ.get("VETCONNECT_HOME", ".vetconnect")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return pgserver.start(home / "bench-pgdata").url(database="postgres")


def progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    eta = (total - done) / rate if rate else 0
    print(f"\r  {label}: {done}/{total} ({rate:,.0f}/s, ETA {eta:,.0f}s)   ", end="", flush=True)


def add_bench_franchise(conn: psycopg.Connection, number: int) -> int:
    """A franchise ``f<number>``; returns its id. The bench builders share it with ``add_bench_practice``."""
    fid = conn.execute("SELECT nextval(pg_get_serial_sequence('tenant', 'id'))").fetchone()[0]
    conn.execute(
        "INSERT INTO tenant (id, kind, franchise_id, code, name) VALUES (%s, 'franchise', %s, %s, %s)",
        (fid, fid, f"f{number}", f"Franchise {number}"),
    )
    return fid


def add_bench_practice(conn: psycopg.Connection, franchise_id: int, master_key: bytes) -> int:
    """A practice of ``franchise_id``, onboarded (partitions) with its data key; returns its id."""
    pid = conn.execute("SELECT nextval(pg_get_serial_sequence('tenant', 'id'))").fetchone()[0]
    conn.execute(
        "INSERT INTO tenant (id, kind, parent_id, franchise_id, practice_id, code, name) "
        "VALUES (%s, 'practice', %s, %s, %s, %s, %s)",
        (pid, franchise_id, franchise_id, pid, f"p{pid}", f"Praktijk {pid}"),
    )
    conn.execute("SELECT onboard_practice(%s)", (pid,))
    conn.execute(
        "INSERT INTO tenant_data_key (practice_id, version, wrapped_key) VALUES (%s, 1, %s)",
        (pid, wrap_data_key(master_key, pid, new_data_key())),
    )
    return pid


def build(admin: str, practices: int, per_practice: int) -> None:
    """Tenants through the real onboarding function; bulk rows generated inside the server (INSERT…SELECT),
    with triggers off (session_replication_role) because we measure reads, not the audit of a bulk load."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    migrate.upgrade(url)
    master = bytes(32)
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        conn.execute("SET session_replication_role = replica")
        franchises = (practices + PRACTICES_PER_FRANCHISE - 1) // PRACTICES_PER_FRANCHISE
        started = time.perf_counter()
        for f in range(franchises):
            fid = add_bench_franchise(conn, f)
            for _ in range(min(PRACTICES_PER_FRANCHISE, practices - f * PRACTICES_PER_FRANCHISE)):
                add_bench_practice(conn, fid, master)
            conn.commit()
            progress("practices", min((f + 1) * PRACTICES_PER_FRANCHISE, practices), practices, started)
        print()
        practice_ids = [
            r[0] for r in conn.execute("SELECT id FROM tenant WHERE kind = 'practice' ORDER BY id")
        ]
        start = dt.datetime.now(dt.UTC).replace(hour=7, minute=0, second=0, microsecond=0) - dt.timedelta(
            days=60
        )
        started = time.perf_counter()
        for n, pid in enumerate(practice_ids, 1):
            conn.execute(
                "INSERT INTO resource (practice_id, kind, name) "
                "SELECT %s, CASE WHEN g <= 4 THEN 'staff' ELSE 'room' END, 'Resource ' || g "
                "FROM generate_series(1, %s) g",
                (pid, RESOURCES_PER_PRACTICE),
            )
            conn.execute(
                "INSERT INTO client (practice_id, last_name, postcode) "
                "SELECT %s, 'Client ' || g, lpad((1000 + g %% 8999)::text, 4, '0') || 'AB' "
                "FROM generate_series(1, %s) g",
                (pid, PATIENTS_PER_PRACTICE),
            )
            conn.execute(
                "INSERT INTO patient (practice_id, name, species) "
                "SELECT %s, 'Patient ' || g, CASE WHEN g %% 3 = 0 THEN 'cat' ELSE 'dog' END "
                "FROM generate_series(1, %s) g",
                (pid, PATIENTS_PER_PRACTICE),
            )
            conn.execute(
                """
                WITH r AS (SELECT array_agg(id ORDER BY id) ids FROM resource WHERE practice_id = %(p)s),
                     pt AS (SELECT array_agg(id ORDER BY id) ids FROM patient WHERE practice_id = %(p)s),
                     cl AS (SELECT array_agg(id ORDER BY id) ids FROM client WHERE practice_id = %(p)s)
                INSERT INTO appointment (practice_id, resource_id, patient_id, client_id, starts_at, ends_at,
                                         status, booked_at, source)
                SELECT %(p)s, r.ids[1 + i %% %(nres)s], pt.ids[1 + (i * 7919) %% %(npat)s],
                       cl.ids[1 + (i * 7919) %% %(npat)s], s, s + interval '20 minutes',
                       CASE WHEN s > now() THEN 'booked'
                            WHEN i %% 17 = 0 THEN 'no_show' WHEN i %% 13 = 0 THEN 'cancelled' ELSE 'done' END,
                       s - interval '9 days', 'native'
                FROM r, pt, cl, generate_series(0, %(n)s - 1) i,
                     LATERAL (SELECT %(start)s::timestamptz
                                     + ((i / %(nres)s) / %(slots)s) * interval '1 day'
                                     + ((i / %(nres)s) %% %(slots)s) * interval '30 minutes' AS s) t
                """,
                {"p": pid, "n": per_practice, "nres": RESOURCES_PER_PRACTICE, "npat": PATIENTS_PER_PRACTICE,
                 "start": start, "slots": SLOTS_PER_DAY},
            )  # fmt: skip
            conn.commit()
            if n % 10 == 0 or n == len(practice_ids):
                progress("practice data", n, len(practice_ids), started)
        print()
        conn.execute("SET session_replication_role = origin")
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


QUERIES = {
    # name: (RLS query, explicit-WHERE baseline query)
    "day agenda": (
        "SELECT a.id, a.starts_at, a.ends_at, a.status, r.name FROM appointment a "
        "JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id "
        "WHERE a.starts_at >= %(day)s AND a.starts_at < %(day)s + interval '1 day' ORDER BY a.starts_at",
        "SELECT a.id, a.starts_at, a.ends_at, a.status, r.name FROM appointment a "
        "JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id "
        "WHERE a.practice_id = %(practice)s AND r.practice_id = %(practice)s "
        "AND a.starts_at >= %(day)s AND a.starts_at < %(day)s + interval '1 day' ORDER BY a.starts_at",
    ),
    "patient history": (
        "SELECT id, starts_at, status FROM appointment WHERE patient_id = %(patient)s ORDER BY starts_at DESC",
        "SELECT id, starts_at, status FROM appointment WHERE practice_id = %(practice)s "
        "AND patient_id = %(patient)s ORDER BY starts_at DESC",
    ),
    "franchise monthly counts": (
        "SELECT date_trunc('month', starts_at) AS month, status, count(*) FROM appointment GROUP BY 1, 2",
        "SELECT date_trunc('month', starts_at) AS month, status, count(*) FROM appointment "
        "WHERE practice_id = ANY(%(franchise_practices)s) GROUP BY 1, 2",
    ),
}


def sample_params(conn: psycopg.Connection, rng: random.Random) -> list[dict]:
    franchises = conn.execute(
        "SELECT franchise_id, array_agg(id ORDER BY id) FROM tenant WHERE kind = 'practice' GROUP BY 1"
    ).fetchall()
    lo, hi = conn.execute("SELECT min(starts_at), max(starts_at) FROM appointment").fetchone()
    params = []
    for _ in range(200):
        _, practices = rng.choice(franchises)
        practice = rng.choice(practices)
        patient = conn.execute(
            "SELECT id FROM patient WHERE practice_id = %s OFFSET %s LIMIT 1", (practice, rng.randrange(1000))
        ).fetchone()[0]
        day = (lo + (hi - lo) * rng.random()).replace(hour=0, minute=0, second=0, microsecond=0)
        params.append(
            {"practice": practice, "patient": patient, "day": day, "franchise_practices": practices}
        )
    return params


def run_mix(admin: str, params: list[dict], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Three arms per query: superuser with explicit WHERE (baseline); the app role under RLS with no WHERE;
    the app role under RLS with the same explicit WHERE (what our services send: the filter lets the planner
    prune partitions, the policy is what guarantees isolation). The RLS arms send the context and the query in
    one pipelined round trip; the baseline's transaction is pipelined too, so only the database work differs."""
    arms = ("baseline", "rls", "rls+where")
    timings: dict[str, dict[str, list[float]]] = {q: {arm: [] for arm in arms} for q in QUERIES}
    app = make_url(admin).set(
        drivername="postgresql", username="vetconnect_app", password=None, database=DB_NAME
    )
    with psycopg.connect(app.render_as_string(False)) as rls, psycopg.connect(libpq(admin, DB_NAME)) as base:
        for r in range(rounds):
            for p in params:
                for name, (rls_sql, base_sql) in QUERIES.items():
                    scope = (
                        p["franchise_practices"] if name == "franchise monthly counts" else [p["practice"]]
                    )
                    context = ",".join(map(str, scope))
                    samples = {}
                    t0 = time.perf_counter()
                    with base.pipeline(), base.transaction():
                        cursor = base.execute(base_sql, p)
                    cursor.fetchall()
                    samples["baseline"] = time.perf_counter() - t0
                    for arm, query in (("rls", rls_sql), ("rls+where", base_sql)):
                        t0 = time.perf_counter()
                        with rls.pipeline(), rls.transaction():
                            rls.execute(
                                "SELECT set_config('app.user_id', '1', true), "
                                "set_config('app.practice_ids', %s, true)",
                                (context,),
                            )
                            cursor = rls.execute(query, p)
                        cursor.fetchall()
                        samples[arm] = time.perf_counter() - t0
                    if r > 0:  # the first round warms caches and plans
                        for arm, seconds in samples.items():
                            timings[name][arm].append(seconds * 1000)
    return timings


def planning_times(admin: str, params: dict) -> dict[str, dict[str, float]]:
    """Median planning time of each arm's query, with every practice's partitions present."""
    out: dict[str, dict[str, float]] = {}
    app = make_url(admin).set(
        drivername="postgresql", username="vetconnect_app", password=None, database=DB_NAME
    )
    with psycopg.connect(app.render_as_string(False)) as rls, psycopg.connect(libpq(admin, DB_NAME)) as base:
        for name, (rls_sql, base_sql) in QUERIES.items():
            scope = (
                params["franchise_practices"] if name == "franchise monthly counts" else [params["practice"]]
            )
            rls.execute("SELECT set_config('app.practice_ids', %s, false)", (",".join(map(str, scope)),))
            out[name] = {}
            for arm, conn, query in (
                ("baseline", base, base_sql),
                ("rls", rls, rls_sql),
                ("rls+where", rls, base_sql),
            ):
                samples = []
                for _ in range(20):
                    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (SUMMARY ON) " + query, params))
                    samples.append(float(plan.split("Planning Time: ")[1].split(" ms")[0]))
                out[name][arm] = statistics.median(samples)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--practices", type=int, default=500)
    parser.add_argument("--per-practice", type=int, default=10_000, help="appointments per practice")
    parser.add_argument(
        "--rounds", type=int, default=3, help="passes over 200 parameter sets (first is warm-up)"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse the database of a previous run")
    args = parser.parse_args()

    admin = libpq(server_url())
    total = args.practices * args.per_practice
    if not args.reuse:
        print(f"building {args.practices} practices, {total:,} appointments …")
        t0 = time.perf_counter()
        build(admin, args.practices, args.per_practice)
        print(f"built in {time.perf_counter() - t0:,.0f}s")
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        rows = conn.execute("SELECT count(*) FROM appointment").fetchone()[0]
        partitions = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relispartition AND relkind = 'r'"
        ).fetchone()[0]
        params = sample_params(conn, random.Random(7))
    print(f"appointments: {rows:,}; partitions: {partitions:,}")

    timings = run_mix(admin, params, args.rounds)
    print(f"\n{'query':<26}{'arm':<11}{'p50':>9}{'p95':>9}{'p95 vs baseline':>17}")
    for name, arms in timings.items():
        base95 = percentile(arms["baseline"], 0.95)
        for arm, values in arms.items():
            p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
            print(f"{name:<26}{arm:<11}{p50:>7.2f}ms{p95:>7.2f}ms{p95 / base95:>16.2f}x")
    print(f"\n{'planning time (median)':<26}{'baseline':>10}{'rls':>10}{'rls+where':>11}")
    for name, arms in planning_times(admin, params[0]).items():
        print(f"{name:<26}{arms['baseline']:>8.2f}ms{arms['rls']:>8.2f}ms{arms['rls+where']:>9.2f}ms")
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
