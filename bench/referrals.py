"""Benchmark: what the referral grant (migration 0480) costs the pages of the practices referred to.

Every table of a patient's history has a permissive SELECT policy ``referral_grant`` next to
``tenant_isolation``; each statement on it calls ``referred_patients()`` once (the active referrals addressed to
one of the caller's practices) and probes its hashed result per row the isolation policy does not admit. This
bench measures, on the world of ``bench/workspaces.py`` (200 practices, 1 M patients at full scale), through the
services the pages call, in tenant sessions as ``vetconnect_app`` under RLS:

- global search (``warehouse.search.service.search``) of a practice user and of a franchise manager (50
  practices);
- the patient record page's load (``patient_record`` and the record's ``referral_reports`` section);

in two arms: no referrals at all, and ~1,000 active referrals addressed to the practices that run the searches
(from practices of their own and of other franchises). The arms alternate every 10 cases (the order swapped
each time; the first round over the cases is a warm-up and not counted), and the report prints each call's p95
with referrals ÷ its p95 without (target ≤ 1.2), and how often those calls executed a grant function
(``track_functions``): the policies evaluate ``tenant_isolation`` first, so a page's own rows never reach the
grant, and the timings' difference is the machine's noise unless that count is above zero.

    python bench/referrals.py --scale 0.1            # builds the workspaces world at 10 % of the rows, measures
    python bench/referrals.py --reuse                # on the database of a previous run or of bench/workspaces.py
    python bench/referrals.py --reuse --explain      # with the plans of the grant function and a policed read

The bench empties ``referral`` and ``referral_report`` between arms (it owns them in its database) and leaves
them empty, so bench/workspaces.py measures the same database as before. Uses DATABASE_URL if set, else a
throw-away embedded server under ./.vetconnect/bench-pgdata.
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

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tenancy import libpq, percentile, server_url  # noqa: E402
from bench.workspaces import DB_NAME, MASTER_KEY, build, sample, timed  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.practice_time import practice_zone  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, tenant_session  # noqa: E402
from warehouse.migrations import runner as migrate  # noqa: E402
from warehouse.records.patient_record import patient_record  # noqa: E402
from warehouse.referrals.queries import referral_reports  # noqa: E402
from warehouse.search.service import search  # noqa: E402

RATIO_TARGET = 1.2
ARMS = ("no referrals", "with referrals")
CALLS = ("search: practice user", "search: franchise, 50 practices", "patient record (page load)")
GRANT_CALLS = "grant function executions"
# Cases measured between two switches of the arms: short stretches, so a change of the shared machine's load
# falls on both arms alike.
BLOCK = 10
# The bench's referring vet and consent recorder: the columns name a user but have no foreign key.
BENCH_USER = 0


def referral_rows(conn: psycopg.Connection, cases: list[dict], count: int, rng: random.Random) -> list[tuple]:
    """``count`` active referrals addressed to the cases' practices, each of a patient of another practice (every
    other one of another franchise), valid since yesterday for 90 days."""
    franchise_of = dict(
        conn.execute("SELECT id, franchise_id FROM tenant WHERE kind = 'practice'").fetchall()
    )
    span = {p: (lo, hi) for p, lo, hi in conn.execute(
        "SELECT practice_id, min(id), max(id) FROM patient GROUP BY practice_id")}  # fmt: skip
    targets = sorted({c["practice"] for c in cases})
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(count):
        to = targets[i % len(targets)]
        same = i % 2 == 0
        source = rng.choice([p for p in span if p != to and (franchise_of[p] == franchise_of[to]) == same])
        rows.append((source, rng.randint(*span[source]), to, now - dt.timedelta(days=1)))
    found = set(conn.execute(
        "SELECT practice_id, id FROM patient WHERE (practice_id, id) IN "
        "(SELECT * FROM unnest(%s::bigint[], %s::bigint[]))", ([r[0] for r in rows], [r[1] for r in rows]),
    ).fetchall())  # fmt: skip
    missing = [r for r in rows if (r[0], r[1]) not in found]
    if missing:
        raise SystemExit(f"{len(missing)} sampled patients do not exist (ids not contiguous?): {missing[:3]}")
    return rows


def set_arm(admin: str, arm: str, rows: list[tuple]) -> None:
    """Empty the referral tables, and for the arm with referrals insert ``rows`` (a bench fixture: not audited),
    then refresh the planner's statistics as autovacuum would."""
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute("TRUNCATE referral_report, referral")
        if arm == ARMS[1]:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(
                    """INSERT INTO referral (practice_id, patient_id, to_practice_id, reason, referring_vet_id,
                                             referring_vet_name, status, valid_from, valid_until,
                                             consent_recorded_at, consent_recorded_by, consent_how)
                       SELECT r.practice_id, r.patient_id, r.to_practice_id, 'Bench referral', %(u)s, 'Bench vet',
                              CASE WHEN r.n %% 3 = 0 THEN 'accepted' ELSE 'open' END, r.valid_from,
                              r.valid_from + interval '90 days', r.valid_from, %(u)s, 'in_person'
                       FROM unnest(%(p)s::bigint[], %(pat)s::bigint[], %(to)s::bigint[], %(from)s::timestamptz[])
                            WITH ORDINALITY AS r(practice_id, patient_id, to_practice_id, valid_from, n)""",
                    {"u": BENCH_USER, "p": [r[0] for r in rows], "pat": [r[1] for r in rows],
                     "to": [r[2] for r in rows], "from": [r[3] for r in rows]},
                )  # fmt: skip
        conn.execute("ANALYZE referral")


def track_functions(admin: str, *, on: bool) -> None:
    """Count function executions in the bench database's new connections (a superuser setting, so set for the
    database; reset afterwards)."""
    with psycopg.connect(libpq(admin, DB_NAME), autocommit=True) as conn:
        conn.execute(
            f'ALTER DATABASE "{DB_NAME}" '
            + ("SET track_functions = 'all'" if on else "RESET track_functions")
        )


def _record_page(
    session: Session, practice_id: int, patient_id: int, today: dt.date, now: dt.datetime
) -> None:
    """What the records page loads for a patient: the record with its timeline and the referral reports."""
    patient_record(session, practice_id, patient_id, today=today, now=now)
    referral_reports(session, practice_id, patient_id)


def _grant_calls(session: Session) -> int:
    """The executions of the grant functions in this connection so far (``track_functions`` is on in the bench
    database; SECURITY DEFINER functions are never inlined, so every execution counts)."""
    return int(session.execute(text(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname LIKE 'referred\\_%'"
    )).scalar_one())  # fmt: skip


def measure_arm(engine: Engine, cases: list[dict], out: dict[str, list[float]] | None) -> None:
    """Each call once per case; with ``out`` None (the warm-up) nothing is kept. Besides the times, ``out`` gets
    how often the calls executed a grant function."""
    now = dt.datetime.now(dt.UTC)

    def add(call: str, value: float) -> None:
        if out is not None:
            out.setdefault(call, []).append(value)

    def timed_counted(
        session: Session, call: str, fn: Callable[..., object], *args: object, **kw: object
    ) -> None:
        before = _grant_calls(session)
        add(call, timed(fn, session, *args, **kw))
        add(GRANT_CALLS, _grant_calls(session) - before)

    for case in cases:
        pid, term = case["practice"], case["term"]
        with tenant_session(engine, AccessContext.for_practices([pid])) as s:
            today = now.astimezone(practice_zone(s, pid)).date()
            timed_counted(s, CALLS[0], search, term, master_key=MASTER_KEY)
            timed_counted(s, CALLS[2], _record_page, pid, case["patient"], today, now)
        with tenant_session(engine, AccessContext.for_practices(case["franchise"])) as s:
            timed_counted(s, CALLS[1], search, term, master_key=MASTER_KEY)


def explain(engine: Engine, case: dict) -> None:
    """The plans behind the grant as a practice referred to runs them: the body of ``referred_patients()`` (the
    function itself shows as one Function Scan) and a read of the patient record under both policies."""
    pid, patient = case["practice"], case["patient"]
    with tenant_session(engine, AccessContext.for_practices([pid])) as s:
        body = s.execute(text("SELECT prosrc FROM pg_proc WHERE proname = 'referred_patients'")).scalar_one()
        for title, sql in (
            ("referred_patients() body", body),
            ("referred_patients() call", "SELECT * FROM referred_patients()"),
            ("a patient's visits (tenant_isolation OR referral_grant)",
             f"SELECT * FROM visit WHERE practice_id = {pid:d} AND patient_id = {patient:d}"),
        ):  # fmt: skip
            plan = s.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")).scalars().all()
            print(f"\n-- {title}\n" + "\n".join(plan))


def report(timings: dict[str, dict[str, list[float]]]) -> None:
    print(f"\n{'call':<34}{'arm':<16}{'n':>5}{'p50':>10}{'p95':>10}{'max':>10}")
    for call in CALLS:
        for arm in ARMS:
            values = timings[arm][call]
            print(f"{call:<34}{arm:<16}{len(values):>5}{percentile(values, 0.5):>8.2f}ms"
                  f"{percentile(values, 0.95):>8.2f}ms{max(values):>8.1f}ms")  # fmt: skip
    print()
    for call in CALLS:
        with_, without = (percentile(timings[arm][call], 0.95) for arm in (ARMS[1], ARMS[0]))
        ratio = with_ / without
        print(f"{call}: p95 with ÷ without referrals = {ratio:.2f} "
              f"(target ≤ {RATIO_TARGET}) {'ok' if ratio <= RATIO_TARGET else 'MISSED'}")  # fmt: skip
    print(f"{GRANT_CALLS} in those calls: " + ", ".join(
        f"{arm} {sum(timings[arm][GRANT_CALLS]):.0f}" for arm in ARMS))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of 5,000 patients / 3,500 clients per practice (when building)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds over 120 cases, the arms alternating every 10 cases (first round: warm-up)")  # fmt: skip
    parser.add_argument("--referrals", type=int, default=1000, help="active referrals in the arm with them")
    parser.add_argument("--reuse", action="store_true", help="reuse the database of a previous run")
    parser.add_argument(
        "--explain", action="store_true", help="print the grant's plans with referrals present"
    )
    args = parser.parse_args()
    admin = libpq(server_url())
    if not args.reuse:
        print(f"building 200 practices at scale {args.scale} …")
        t0 = time.perf_counter()
        build(admin, args.scale)
        print(f"built in {time.perf_counter() - t0:,.0f}s")
    url = make_url(admin).set(drivername="postgresql+psycopg", database=DB_NAME).render_as_string(False)
    migrate.upgrade(url)  # a database of an earlier run gets the referral tables and later indexes
    with psycopg.connect(libpq(admin, DB_NAME)) as conn:
        patients = conn.execute("SELECT count(*) FROM patient").fetchone()[0]
        cases, _ = sample(conn, random.Random(7))
        rows = referral_rows(conn, cases, args.referrals, random.Random(13))
    print(f"patients: {patients:,}; {len(cases)} cases at {len({c['practice'] for c in cases})} practices; "
          f"{len(rows):,} referrals to them")  # fmt: skip
    track_functions(admin, on=True)
    engine = make_engine(app_url(url), pool_size=2)  # connections opened after: they count executions
    timings: dict[str, dict[str, list[float]]] = {arm: {} for arm in ARMS}
    load_before = os.getloadavg()
    try:
        for round_no in range(args.rounds):
            t0 = time.perf_counter()
            for block_no, start in enumerate(range(0, len(cases), BLOCK)):
                for arm in ARMS if (round_no + block_no) % 2 == 0 else ARMS[::-1]:
                    set_arm(admin, arm, rows)
                    measure_arm(engine, cases[start : start + BLOCK], timings[arm] if round_no else None)
            print(f"  round {round_no + 1}/{args.rounds}: {time.perf_counter() - t0:,.1f}s", flush=True)
        if args.explain:
            set_arm(admin, ARMS[1], rows)
            explain(engine, cases[0])
    finally:
        set_arm(admin, ARMS[0], rows)
        engine.dispose()
        track_functions(admin, on=False)
    load_after = os.getloadavg()
    report(timings)
    print(f"load average (1/5/15 min) before: {'/'.join(f'{x:.2f}' for x in load_before)}, "
          f"after: {'/'.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
