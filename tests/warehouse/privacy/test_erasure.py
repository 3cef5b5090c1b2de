"""Erasure and retention on the factories' world (practices not linked to Animana): who may erase, refusal while
money is owed, what the erasure leaves, the purge at the retention boundary, and the audit chain afterwards."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import text

from tests.conftest import MASTER_KEY, Database
from warehouse.kernel.audit import verify_chain
from warehouse.kernel.tenancy import AccessContext
from warehouse.privacy.erasure import ErasureError, erase_client, erasure_preview
from warehouse.privacy.retention import purge_due
from warehouse.search.service import search
from warehouse.security.permissions import Actor, NotPermitted

NOW = dt.datetime.now(dt.UTC)
# The world's client was last seen today (the work week's appointment, the payment made when the world was built);
# the franchise keeps 7 years.
KEPT_UNTIL = (
    NOW.date().replace(year=NOW.year + 7) if (NOW.month, NOW.day) != (2, 29) else dt.date(NOW.year + 7, 2, 28)
)


def _a1(db: Database):  # noqa: ANN202
    """Practice a1's rows, and a function opening a session of its vet."""
    rows = db.world.practices["a1"]
    return rows, lambda: db.as_app(AccessContext.for_practices([rows.practice_id], user_id=rows.user_id))


def _manager(practice_id: int) -> Actor:
    return Actor.at(None, practice_id, {"practice_manager"})


def _erase(db: Database, **kwargs):  # noqa: ANN003, ANN202
    rows, session_cm = _a1(db)
    with session_cm() as session:
        return erase_client(
            session, _manager(rows.practice_id), rows.practice_id, rows.client_id, master_key=MASTER_KEY,
            now=NOW, **kwargs,
        )  # fmt: skip


def _count(db: Database, query: str, **params: object) -> int:
    with db.system("test: count") as session:
        return session.execute(text(query), params).scalar_one()


def test_refused_with_the_unpaid_invoice_and_its_amount_and_nothing_changes(ws_db: Database):
    rows, session_cm = _a1(ws_db)
    with ws_db.system("test: an unpaid invoice") as session:
        session.execute(
            text(
                "INSERT INTO invoice (practice_id, number, client_id, issued_on, status, total_excl_cents, "
                "vat_cents, total_incl_cents) VALUES (:p, '2026-a1-0002', :c, '2026-11-20', 'issued', 10000, "
                "2100, 12100)"
            ),
            {"p": rows.practice_id, "c": rows.client_id},
        )
    with session_cm() as session:
        preview = erasure_preview(session, rows.practice_id, rows.client_id)
    assert preview.refusal == (
        "The client still owes € 121,00: invoice 2026-a1-0002 (€ 121,00 open). "
        "Personal data can be erased once everything is paid."
    )
    with pytest.raises(ErasureError) as refused:
        _erase(ws_db)
    assert refused.value.field == "client" and str(refused.value) == preview.refusal
    assert _count(ws_db, "SELECT count(*) FROM client_erasure WHERE client_id = :c", c=rows.client_id) == 0
    assert _count(
        ws_db, "SELECT count(*) FROM client WHERE id = :c AND last_name = 'Jansen-a1'", c=rows.client_id
    )


def test_only_privacy_managers_erase(ws_db: Database):
    rows, session_cm = _a1(ws_db)
    with session_cm() as session, pytest.raises(NotPermitted):
        erase_client(session, Actor.at(None, rows.practice_id, {"receptionist"}), rows.practice_id,
                     rows.client_id, master_key=MASTER_KEY)  # fmt: skip


def test_erasure_pseudonymises_the_client_keeps_the_records_and_the_chain_verifies(ws_db: Database):
    rows, session_cm = _a1(ws_db)
    with session_cm() as session:
        preview = erasure_preview(session, rows.practice_id, rows.client_id, now=NOW)
    assert (preview.name, preview.animals, preview.visits, preview.invoices, preview.refusal) == (
        "J. Jansen-a1", 1, 1, 1, None,
    )  # fmt: skip
    assert preview.retention_until == KEPT_UNTIL

    result = _erase(ws_db, reason="Verzoek per e-mail")

    assert result.retention_until == KEPT_UNTIL and re.fullmatch("[A-HJ-NP-Z]{8}", result.pseudonym)
    with ws_db.system("test: the erased client") as session:
        client = session.execute(
            text("SELECT * FROM client WHERE id = :c"), {"c": rows.client_id}
        ).mappings().one()  # fmt: skip
        erasure = session.execute(
            text("SELECT * FROM client_erasure WHERE client_id = :c"), {"c": rows.client_id}
        ).mappings().one()  # fmt: skip
        audit = session.execute(
            text("SELECT detail FROM audit_log WHERE practice_id = :p AND action = 'erase'"),
            {"p": rows.practice_id},
        ).scalar_one()
    assert client["last_name"] == f"Erased client {result.pseudonym}"
    assert [client[c] for c in ("initials", "postcode", "city", "email_enc", "phone_enc", "address_enc",
                                "email_bidx", "phone_bidx", "active")] == [None] * 8 + [False]  # fmt: skip
    assert (erasure["pseudonym"], erasure["reason"], erasure["retention_until"], erasure["purged_at"]) == (
        result.pseudonym, "Verzoek per e-mail", KEPT_UNTIL, None,
    )  # fmt: skip
    assert "Jansen" not in str(audit) and audit["erasure_id"] == result.erasure_id
    for table in ("visit", "invoice", "payment", "appointment", "vaccination", "reminder", "document"):
        assert _count(ws_db, f"SELECT count(*) FROM {table} WHERE practice_id = :p", p=rows.practice_id) >= 1
    with session_cm() as session:
        assert [h.kind for h in search(session, "Jansen-a1", master_key=MASTER_KEY).hits] == []
        assert [h.id for h in search(session, result.pseudonym, master_key=MASTER_KEY).group("client")] == [
            rows.client_id
        ]
        assert verify_chain(session).ok


def test_purge_keeps_the_records_through_the_last_day_and_deletes_them_after(ws_db: Database):
    rows = ws_db.world.practices["a1"]
    other = ws_db.world.practices["a2"]
    _erase(ws_db)
    records = (
        "SELECT (SELECT count(*) FROM visit WHERE practice_id = :p) + (SELECT count(*) FROM invoice "
        "WHERE practice_id = :p) + (SELECT count(*) FROM patient WHERE practice_id = :p)"
    )
    before = _count(ws_db, records, p=rows.practice_id)
    last_day = dt.datetime.combine(KEPT_UNTIL, dt.time(23, 0), dt.UTC)

    with ws_db.system("test: purge") as session:
        assert purge_due(session, last_day).erasures == []
        dry = purge_due(session, last_day + dt.timedelta(days=1), dry_run=True)
    assert _count(ws_db, records, p=rows.practice_id) == before == 3
    assert dry.rows["visit"] == 1 and dry.rows["patient"] == 1 and dry.rows["invoice"] == 1

    with ws_db.system("test: purge") as session:
        report = purge_due(session, last_day + dt.timedelta(days=1))
    assert [e.client_id for e in report.erasures] == [rows.client_id]
    assert report.rows == dry.rows
    assert _count(ws_db, records, p=rows.practice_id) == 0
    # The tombstone stays, purged; the other practice's records are untouched.
    assert _count(ws_db, "SELECT count(*) FROM client WHERE id = :c AND last_name LIKE 'Erased client %'",
                  c=rows.client_id) == 1  # fmt: skip
    assert _count(ws_db, "SELECT count(*) FROM client_erasure WHERE client_id = :c AND purged_at IS NOT NULL",
                  c=rows.client_id) == 1  # fmt: skip
    assert _count(ws_db, records, p=other.practice_id) == 3
    with ws_db.system("test: purge again") as session:
        assert purge_due(session, last_day + dt.timedelta(days=2)).erasures == []


def test_an_animal_with_another_owner_stays_with_its_records(ws_db: Database):
    rows = ws_db.world.practices["a1"]
    with ws_db.system("test: a second owner") as session:
        partner = session.execute(
            text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Partner') RETURNING id"),
            {"p": rows.practice_id},
        ).scalar_one()
        session.execute(
            text("INSERT INTO client_patient (practice_id, client_id, patient_id, is_primary) "
                 "VALUES (:p, :c, :patient, false)"),
            {"p": rows.practice_id, "c": partner, "patient": rows.patient_id},
        )  # fmt: skip
    _erase(ws_db)
    with ws_db.system("test: purge") as session:
        report = purge_due(session, dt.datetime.combine(KEPT_UNTIL, dt.time(), dt.UTC) + dt.timedelta(days=1))
    assert "patient" not in report.rows and "visit" not in report.rows
    assert report.rows["invoice"] == 1 and report.rows["client_patient"] == 1
    assert _count(ws_db, "SELECT count(*) FROM visit WHERE patient_id = :x", x=rows.patient_id) == 1


def test_an_erased_client_is_not_merged(ws_db: Database):
    from warehouse.clients.merge import MergeError, RecordRef, merge_clients

    rows, session_cm = _a1(ws_db)
    _erase(ws_db)
    with ws_db.system("test: a live client") as session:
        live = session.execute(
            text("INSERT INTO client (practice_id, last_name) VALUES (:p, 'Levend') RETURNING id"),
            {"p": rows.practice_id},
        ).scalar_one()
    with session_cm() as session, pytest.raises(MergeError, match="personal data was erased") as refused:
        merge_clients(session, _manager(rows.practice_id), survivor=RecordRef(rows.practice_id, live),
                      duplicate=RecordRef(rows.practice_id, rows.client_id))  # fmt: skip
    assert refused.value.field == "duplicate"
