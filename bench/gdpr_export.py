"""The right-of-access export of a client with ten years of history: p95 of ``export_client`` + ``to_json`` +
``to_pdf`` against the plain client card load (``client_card``) measured in the same run.

An embedded PostgreSQL in a temporary directory, migrated to head; one practice made by the real onboarding. The
client has 3+ animals and ~40 visits a year for ten years (each with a diagnosis), a vaccination per animal a year,
prescriptions, lab results, an invoice with three lines and its payment per visit, reminders, and the reads of
their card and records in the audit log. Around them the practice's other clients: ``--others`` animals with
``--visits`` visits each and their reads, so every query has to find this client's rows among many. The history
is generated inside the server (INSERT…SELECT) with triggers off; the measured calls run as ``vetconnect_app``
under RLS, each in its own transaction (the export writes its audit entry). Target: export p95 < 2 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vetconnect import pgserver  # noqa: E402
from warehouse.clients.card import client_card  # noqa: E402
from warehouse.kernel.ciphers import practice_cipher  # noqa: E402
from warehouse.kernel.db import app_url, make_engine  # noqa: E402
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session  # noqa: E402
from warehouse.migrations import runner as migrate  # noqa: E402
from warehouse.privacy.export import export_client, to_json  # noqa: E402
from warehouse.privacy.export_pdf import to_pdf  # noqa: E402
from warehouse.schema.clients import Client  # noqa: E402
from warehouse.security.accounts import add_user  # noqa: E402
from warehouse.tenants.admin import add_franchise, add_practice  # noqa: E402

MASTER_KEY = bytes(range(32))
TARGET_S = 2.0
YEARS = 10


def reads(entries: str) -> list[str]:
    """``entries`` (SELECT entity, entity_ids, detail, occurred_at) as read entries of the vet, with their own
    times and numbers (the chain's trigger is off: it would stamp them now), and the chain head moved past them so
    the export's own audit entry follows. The chain does not verify (not part of the figure)."""
    return [
        "INSERT INTO audit_log (practice_id, seq, actor_user_id, action, entity, entity_ids, detail, occurred_at, "
        "prev_hash, hash) SELECT %(p)s, (SELECT seq FROM audit_chain_head WHERE practice_id = %(p)s) + "
        "row_number() OVER (), %(vet)s, 'read', e.entity, e.ids, CAST(e.detail AS jsonb), e.at, '', '' "
        f"FROM ({entries}) AS e(entity, ids, detail, at)",
        "UPDATE audit_chain_head SET seq = (SELECT max(seq) FROM audit_log WHERE practice_id = %(p)s) "
        "WHERE practice_id = %(p)s",
    ]


# The client's ten years (%(c)s the client, %(p)s the practice, %(vet)s the vet, %(start)s ten years ago).
HISTORY = [
    "INSERT INTO patient (practice_id, name, species, breed, sex, date_of_birth) "
    "SELECT %(p)s, 'Dier ' || g, (ARRAY['dog', 'cat', 'rabbit', 'dog'])[g], 'Kruising', 'female', "
    "%(start)s::date - 365 * g FROM generate_series(1, %(animals)s) g",
    "INSERT INTO client_patient (practice_id, client_id, patient_id, is_primary) "
    "SELECT %(p)s, %(c)s, id, true FROM patient WHERE practice_id = %(p)s AND name LIKE 'Dier %%'",
    # ~40 visits a year over the animals
    "INSERT INTO visit (practice_id, patient_id, vet_user_id, started_at, reason, subjective, objective, assessment, "
    "plan) SELECT %(p)s, cp.patient_id, %(vet)s, %(start)s + (g * interval '9 days') + (cp.patient_id %% 7) * "
    "interval '1 hour', 'Controle ' || g, 'Eet goed, drinkt goed', 'T 38.5, hartslag 90', 'Gezond', 'Over een jaar' "
    "FROM client_patient cp CROSS JOIN generate_series(1, 400 / %(animals)s) g "
    "WHERE cp.practice_id = %(p)s AND cp.client_id = %(c)s",
    "INSERT INTO diagnosis (practice_id, visit_id, patient_id, term, diagnosed_at) "
    "SELECT practice_id, id, patient_id, 'Otitis externa', started_at FROM visit WHERE practice_id = %(p)s "
    "AND patient_id IN (SELECT patient_id FROM client_patient WHERE practice_id = %(p)s AND client_id = %(c)s)",
    "INSERT INTO vaccination (practice_id, patient_id, vaccine_name, batch_number, given_on, due_on) "
    "SELECT %(p)s, cp.patient_id, 'Nobivac DHP', 'B' || y, %(start)s::date + 365 * y, %(start)s::date + 365 * (y + 1) "
    "FROM client_patient cp CROSS JOIN generate_series(0, 9) y WHERE cp.practice_id = %(p)s AND cp.client_id = %(c)s",
    "INSERT INTO prescription (practice_id, patient_id, visit_id, product_name, quantity, dosage_instructions, "
    "dispensing_category, prescribed_by, prescribed_at) SELECT practice_id, patient_id, id, 'Meloxicam 1,5 mg/ml', "
    "10, '1x daags 1 ml', 'UDA', %(vet)s, started_at FROM visit WHERE practice_id = %(p)s AND id %% 4 = 0 "
    "AND patient_id IN (SELECT patient_id FROM client_patient WHERE practice_id = %(p)s AND client_id = %(c)s)",
    "INSERT INTO lab_order (practice_id, patient_id, visit_id, accession_number, test_name, status, ordered_at) "
    "SELECT practice_id, patient_id, id, 'ACC-' || id, 'Biochemie', 'reviewed', started_at FROM visit "
    "WHERE practice_id = %(p)s AND id %% 8 = 0 "
    "AND patient_id IN (SELECT patient_id FROM client_patient WHERE practice_id = %(p)s AND client_id = %(c)s)",
    "INSERT INTO lab_observation (practice_id, patient_id, lab_order_id, code, text, value_numeric, unit, ref_low, "
    "ref_high, status, observed_at) SELECT o.practice_id, o.patient_id, o.id, t.code, t.code, 5 + g, 'mmol/L', 3, 9, "
    "'final', o.ordered_at FROM lab_order o CROSS JOIN generate_series(1, 4) g "
    "CROSS JOIN LATERAL (SELECT (ARRAY['GLU', 'UREA', 'CREA', 'ALT'])[g] AS code) t WHERE o.practice_id = %(p)s",
    "INSERT INTO invoice (practice_id, number, client_id, visit_id, issued_on, status, total_excl_cents, vat_cents, "
    "total_incl_cents) SELECT practice_id, 'F-' || id, %(c)s, id, started_at::date, 'paid', 9000, 1890, 10890 "
    "FROM visit WHERE practice_id = %(p)s "
    "AND patient_id IN (SELECT patient_id FROM client_patient WHERE practice_id = %(p)s AND client_id = %(c)s)",
    "INSERT INTO invoice_line (practice_id, invoice_id, description, quantity, unit_price_cents, vat_rate_bp, "
    "line_excl_cents, line_vat_cents, line_incl_cents) SELECT i.practice_id, i.id, d.description, 1, 3000, 2100, "
    "3000, 630, 3630 FROM invoice i CROSS JOIN (VALUES ('Consult'), ('Oordruppels'), ('Nagels knippen')) "
    "d(description) WHERE i.practice_id = %(p)s",
    "INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents, paid_at) "
    "SELECT practice_id, id, client_id, 'pin', total_incl_cents, issued_on + time '12:00' FROM invoice "
    "WHERE practice_id = %(p)s",
    "INSERT INTO reminder (practice_id, patient_id, client_id, kind, due_on, status, channel, sent_at) "
    "SELECT practice_id, patient_id, %(c)s, 'vaccination', due_on - 14, 'sent', 'email', due_on - 14 + time '08:00' "
    "FROM vaccination WHERE practice_id = %(p)s",
    # Reads of the card and of each animal's record (several a visit)
    *reads(
        "SELECT 'patient', ARRAY[patient_id], '{\"view\": \"records.patient\"}', started_at + g * interval '1 minute' "
        "FROM visit CROSS JOIN generate_series(1, 4) g WHERE practice_id = %(p)s"
    ),
    *reads(
        "SELECT 'client', ARRAY[%(c)s::bigint], '{\"view\": \"records.client_card\"}', "
        "%(start)s + g * interval '7 days' FROM generate_series(1, 520) g"
    ),
]
# The practice's other animals, visits and reads (owned by other clients).
OTHERS = [
    "INSERT INTO patient (practice_id, name, species) SELECT %(p)s, 'Ander ' || g, 'cat' "
    "FROM generate_series(1, %(others)s) g",
    "INSERT INTO visit (practice_id, patient_id, vet_user_id, started_at, reason) "
    "SELECT %(p)s, p.id, %(vet)s, %(start)s + (g * interval '180 days') + (p.id %% 97) * interval '1 hour', 'Controle' "
    "FROM patient p CROSS JOIN generate_series(1, %(visits)s) g WHERE p.practice_id = %(p)s AND p.name LIKE 'Ander %%'",
    *reads(
        "SELECT 'patient', ARRAY[v.patient_id], '{}', v.started_at FROM visit v "
        "JOIN patient p ON p.practice_id = v.practice_id AND p.id = v.patient_id "
        "WHERE v.practice_id = %(p)s AND p.name LIKE 'Ander %%'"
    ),
]


def build(url: str, args: argparse.Namespace) -> tuple[int, int, int]:
    """The practice, its vet and the client (through the ORM, PII encrypted); the history in SQL."""
    migrate.upgrade(url)
    engine = make_engine(url)
    with system_session(engine, reason="bench gdpr_export: build") as session:
        franchise = add_franchise(session, code="bf", name="Bench franchise")
        practice = add_practice(session, franchise_id=franchise.id, code="bp", name="Dierenkliniek Bench",
                                master_key=MASTER_KEY)  # fmt: skip
        vet = add_user(session, username="bench-vet", full_name="Dr. Bench", password="Bench-Wachtwoord-2026",
                       memberships=[(practice.id, "veterinarian")])  # fmt: skip
        cipher = practice_cipher(session, practice.id, MASTER_KEY)
        client = Client(practice_id=practice.id, last_name="de Vries", first_name="Anna", postcode="3511 AB",
                        city="Utrecht", email_enc=cipher.encrypt("email", "anna@devries.nl"),
                        phone_enc=cipher.encrypt("phone", "+31623456789"),
                        address_enc=cipher.encrypt("address", "Kerkstraat 12"))  # fmt: skip
        session.add(client)
        session.flush()
        ids = practice.id, client.id, vet.id
    engine.dispose()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=365 * YEARS)
    params = {"p": ids[0], "c": ids[1], "vet": ids[2], "start": start, "animals": args.animals,
              "others": args.others, "visits": args.visits}  # fmt: skip
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("SET session_replication_role = replica")
        for sql in HISTORY + OTHERS:
            conn.execute(sql, params)  # type: ignore[arg-type]
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return ids


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs of each (after one warm-up)")
    parser.add_argument("--animals", type=int, default=4, help="the client's animals (at least 3)")
    parser.add_argument("--others", type=int, default=5000, help="the practice's other animals")
    parser.add_argument("--visits", type=int, default=20, help="visits of each other animal (10 years)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vetconnect-bench-gdpr-"))
    server = pgserver.start(workdir / "pgdata")
    try:
        with psycopg.connect(
            server.url().replace("postgresql+psycopg", "postgresql"), autocommit=True
        ) as conn:
            conn.execute('CREATE DATABASE "bench_gdpr"')
        url = server.url(database="bench_gdpr")
        started = time.perf_counter()
        practice_id, client_id, vet_id = build(url, args)
        print(f"built in {time.perf_counter() - started:.1f} s", flush=True)
        app = make_engine(app_url(url))
        context = AccessContext.for_practices([practice_id], user_id=vet_id)

        def card() -> None:
            with tenant_session(app, context) as session:
                client_card(session, practice_id, client_id, master_key=MASTER_KEY)

        sizes: dict[str, int] = {}
        phases: dict[str, list[float]] = {"gather (export_client)": [], "to_json": [], "to_pdf": []}

        def export() -> None:
            started = time.perf_counter()
            with tenant_session(app, context) as session:
                data = export_client(session, practice_id, client_id, MASTER_KEY)
            gathered = time.perf_counter()
            sizes["json"] = len(to_json(data))
            written = time.perf_counter()
            sizes["pdf"] = len(to_pdf(data))
            for phase, took in zip(phases.values(), (gathered - started, written - gathered,
                                                     time.perf_counter() - written), strict=True):  # fmt: skip
                phase.append(took)
            sizes["visits"] = sum(len(a.visits) for a in data.animals)
            sizes["reads"] = len(data.reads)

        card(), export()  # warm-up
        for phase in phases.values():
            phase.clear()
        baseline = [timed(card) for _ in range(args.runs)]
        measured = [timed(export) for _ in range(args.runs)]
        app.dispose()
    finally:
        pgserver.stop(workdir / "pgdata")
    print(f"client: {sizes['visits']} visits, {sizes['reads']} reads; JSON {sizes['json'] / 1e6:.1f} MB, "
          f"PDF {sizes['pdf'] / 1e6:.1f} MB")  # fmt: skip
    print(f"{'call':<34}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    rows = (("baseline: client card", baseline), ("export (JSON + PDF)", measured), *phases.items())
    for name, values in rows:
        print(f"{name:<34}{len(values):>4}{statistics.median(values) * 1e3:>10.0f}{p95(values) * 1e3:>10.0f}"
              f"{max(values) * 1e3:>10.0f}")  # fmt: skip
    verdict = "ok" if p95(measured) < TARGET_S else "MISSED"
    print(
        f"export p95 / card p95: {p95(measured) / p95(baseline):.1f}x; target p95 < {TARGET_S:.0f} s: {verdict}"
    )


if __name__ == "__main__":
    main()
