"""The loader's first-load path (`warehouse.ingest.animana.statements.write` with ``new=True``): a batch whose
keys are all new is written with a plain INSERT instead of the upsert. These tests show the outcome is the upsert's: the same rows,
counts, audit entries, search index and mart queue, and, when a key turns out to exist after all (a concurrent
load of the same practice), the upsert still decides."""

from __future__ import annotations

import datetime as dt
import threading
import time

import psycopg
from sqlalchemy import text

from connectors.animana.resources import animals
from warehouse.ingest.animana import load, statements
from warehouse.ingest.animana.handlers.billing import STG_INVOICE
from warehouse.ingest.animana.handlers.directory import STG_CLIENT, encrypt_clients
from warehouse.ingest.animana.rows import Batch, ClientRow, InvoiceRow, LoadTarget, PatientRow
from warehouse.ingest.animana.staging import stage
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.tenancy import AccessContext
from warehouse.tenants.admin import add_franchise, add_practice

MASTER_KEY = bytes(range(32))
VERSION = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)  # the records' updated_at

CLIENTS = [
    ClientRow(f"c{i}", "dhr.", "J.", f"Jan{i}", f"Bakker{i % 3}", "1234AB", "Utrecht", f"jan{i}@example.nl",
              None, f"Straat {i}", None, i % 5 != 0, VERSION)
    for i in range(40)
]  # fmt: skip
INVOICES = [
    InvoiceRow(f"i{i}", f"c{i % 40}", f"F-{1000 + i}", dt.date(2025, 1 + i % 12, 1 + i % 28), "issued", 1000, 210, 1210, VERSION)
    for i in range(60)
]  # fmt: skip
PATIENTS = [
    PatientRow(f"p{i}", f"Max{i}", "dog", None, "male", dt.date(2020, 1, 1), None, None, False, None, VERSION)
    for i in range(40)
]


def _practices(db) -> list[LoadTarget]:  # noqa: ANN001
    with db.system() as session:
        franchise = add_franchise(session, code="fr-load", name="Load Franchise")
        practices = [
            add_practice(session, franchise_id=franchise.id, code=f"load-{n}", name=f"Load {n}", master_key=MASTER_KEY)
            for n in (1, 2)
        ]  # fmt: skip
        return [LoadTarget(p.id, franchise.id) for p in practices]


def _write_clients_and_invoices(db, target: LoadTarget, *, new: bool) -> list[tuple[int, int]]:  # noqa: ANN001
    """Stage the module's clients and invoices and write them with `statements.write` (``new`` as given)."""
    with db.as_app(AccessContext.for_practices([target.practice_id])) as session:
        cipher = practice_cipher(session, target.practice_id, MASTER_KEY)
        cur = statements.driver_connection(session).cursor()
        cur.execute(load.LOAD_SETTINGS)
        rows = encrypt_clients(cur, target, cipher, list(CLIENTS))
        stage(cur, STG_CLIENT, rows)
        params = statements.params(target)
        counts = [
            statements.write(
                cur, "client", ["first_name", "last_name", "email_enc", "email_bidx", "active"],
                "SELECT %(pid)s, s.animana_id, s.first_name, s.last_name, s.email_enc, s.email_bidx, s.active "
                "FROM stg_client s", params, new=new, touch=True,
            )
        ]  # fmt: skip
        stage(cur, STG_INVOICE, INVOICES)
        counts.append(
            statements.write(
                cur, "invoice", ["number", "client_id", "issued_on", "status", "total_excl_cents", "vat_cents",
                                 "total_incl_cents"],
                "SELECT %(pid)s, s.animana_id, s.number, c.id, s.issued_on, s.status, s.total_excl_cents, "
                "s.vat_cents, s.total_incl_cents FROM stg_invoice s "
                "JOIN client c ON c.practice_id = %(pid)s AND c.animana_id = s.client_animana_id",
                params, new=new,
            )
        )  # fmt: skip
    return counts


def _effects(db, practice_id: int) -> dict[str, list[tuple]]:  # noqa: ANN001
    """What the rows and the triggers left for one practice, with warehouse ids replaced by source ids."""
    queries = {
        "client": "SELECT animana_id, first_name, last_name, email_bidx IS NOT NULL, active, deleted_at FROM client",
        "invoice": "SELECT i.animana_id, i.number, c.animana_id, i.issued_on, i.total_incl_cents FROM invoice i "
        "JOIN client c ON c.practice_id = i.practice_id AND c.id = i.client_id",
        "search_term": "SELECT t.kind, t.word, coalesce(c.animana_id, i.animana_id) FROM search_term t "
        "LEFT JOIN client c ON t.kind = 'client' AND c.practice_id = t.practice_id AND c.id = t.entity_id "
        "LEFT JOIN invoice i ON t.kind = 'invoice' AND i.practice_id = t.practice_id AND i.id = t.entity_id",
        "search_word": "SELECT kind, word FROM search_word",
        "mart_dirty_day": "SELECT day FROM mart_dirty_day",
        "audit_log": "SELECT action, entity, cardinality(entity_ids), detail FROM audit_log",
    }
    with db.as_app(AccessContext.for_practices([practice_id])) as session:
        return {
            name: sorted(tuple(map(str, row)) for row in session.execute(text(query)).all())
            for name, query in queries.items()
        }


def test_a_first_load_inserts_exactly_what_the_upsert_writes(fresh_db) -> None:  # noqa: ANN001
    inserted_path, upsert_path = _practices(fresh_db)

    assert _write_clients_and_invoices(fresh_db, inserted_path, new=True) == [(40, 0), (60, 0)]
    assert _write_clients_and_invoices(fresh_db, upsert_path, new=False) == [(40, 0), (60, 0)]

    by_insert, by_upsert = (
        _effects(fresh_db, inserted_path.practice_id),
        _effects(fresh_db, upsert_path.practice_id),
    )
    assert len(by_insert["client"]) == 40 and len(by_insert["invoice"]) == 60
    assert by_insert["search_term"] and by_insert["mart_dirty_day"] and by_insert["audit_log"]
    assert by_insert == by_upsert


def test_the_first_load_path_gives_way_to_the_upsert_when_a_key_exists(fresh_db) -> None:  # noqa: ANN001
    target, _ = _practices(fresh_db)
    assert _write_clients_and_invoices(fresh_db, target, new=False) == [(40, 0), (60, 0)]
    before = _effects(fresh_db, target.practice_id)

    # Told (wrongly) that the keys are new: the plain INSERT meets them, and the upsert decides instead.
    assert _write_clients_and_invoices(fresh_db, target, new=True) == [(0, 0), (0, 0)]

    assert _effects(fresh_db, target.practice_id) == before


def test_two_first_loads_of_the_same_page_at_once_leave_one_copy(fresh_db) -> None:  # noqa: ANN001
    """Both transactions see no existing key and take the INSERT path; the second waits on the first's keys,
    meets the unique violation once the first commits, and upserts: one copy, the second counts no change."""
    target, _ = _practices(fresh_db)
    context = AccessContext.for_practices([target.practice_id])
    batch = Batch("animals", rows=list(PATIENTS))

    second: dict[str, object] = {}

    def load_second() -> None:
        try:
            with fresh_db.as_app(context) as session:
                second["counts"] = load.load_batch(session, target, batch, animals.SPEC.load)
        except BaseException as exc:  # reported by the assertion below
            second["error"] = exc

    with fresh_db.as_app(context) as session:
        first = load.load_batch(session, target, batch, animals.SPEC.load)
        thread = threading.Thread(target=load_second)
        thread.start()
        _wait_until_blocked(fresh_db)
    thread.join(timeout=60)

    assert "error" not in second, second
    assert (first.inserted, first.updated) == (40, 0)
    counts = second["counts"]
    assert (counts.inserted, counts.updated, counts.quarantined) == (0, 0, 0)  # type: ignore[attr-defined]
    with fresh_db.as_app(context) as session:
        assert session.execute(text("SELECT count(*), count(DISTINCT animana_id) FROM patient")).one() == (
            40,
            40,
        )


def _wait_until_blocked(db) -> None:  # noqa: ANN001
    """Until another connection waits on a lock (the second load's INSERT waiting on the first's keys)."""
    deadline = time.monotonic() + 30
    with psycopg.connect(db.admin_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second load never waited on the first")
