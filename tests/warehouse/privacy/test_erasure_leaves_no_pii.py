"""The central erasure test: a client's data spread the way a real day spreads it — an Animana sync of a linked
practice (hybrid), a contact edit here, an Animana edit held against it, a relation Animana sent that did not
load, a booking's reason, a device message naming the owner, a search — then erased; afterwards no text, jsonb or
bytea column of any table (read from the catalogue, as the superuser) holds any of it, while the clinical and
financial rows are still there, linked to the pseudonymised client. Then the sync runs again and brings nothing
back, and the write-back sends Animana the pseudonym.

Real simulator over HTTP, real PostgreSQL, the real sync, dispatcher, services."""

from __future__ import annotations

import dataclasses
import re

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from connectors.animana.sync.service import sync_all
from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.conftest import _libpq
from tests.connectors.animana.writeback.writeback_support import as_app, set_modes
from warehouse.clients.registration import current_contact, edit_contact
from warehouse.kernel.audit import verify_chain
from warehouse.privacy.erasure import ErasureError, erase_client
from warehouse.search.service import search
from warehouse.security.permissions import Actor

# What the client's data is on the day, each string unique in the world (so a hit is this client's).
FROM_ANIMANA = {
    "first_name": "Wilhelmina", "last_name": "Zwartkruis-Oosterbeek", "street": "Zonnebloemstraat",
    "house_number": "77", "postcode": "9999ZZ", "city": "Lutjebroek", "email": "w.zwartkruis@voorbeeld.nl",
    "phone": "0612398745", "iban": "NL02ABNA0123456789",
}  # fmt: skip
EDITED_HERE = {"postcode": "9998 YY", "city": "Oudeschild", "email": "wilhelmina@zwartkruis.example"}
HELD_FROM_ANIMANA = {"city": "Hoogkarspel"}  # the city edited here too: a conflict
# A second relation typed in Animana for the same person, with an e-mail the mapping refuses: quarantined as raw.
NOT_LOADED = {"last_name": "Zwartkruis-Oosterbeek", "first_name": "Wilhelmina", "email": "kapot-adres-zwartkruis",
              "active": True}  # fmt: skip
NEEDLES = (
    "Wilhelmina", "Hoogkarspel", "Zwartkruis", "Oosterbeek", "Zonnebloemstraat", "9999ZZ", "9999 ZZ", "9998YY",
    "9998 YY", "Lutjebroek", "Oudeschild", "w.zwartkruis@voorbeeld.nl", "wilhelmina@zwartkruis.example",
    "612398745", "NL02ABNA0123456789", "kapot-adres-zwartkruis",
)  # fmt: skip
PATTERN = "|".join(re.escape(n) for n in NEEDLES)
TEXT_TYPES = ("text", "character varying", "character", "jsonb", "json", "text[]", "character varying[]")


def _hits(admin_url: str) -> list[tuple[str, str, int]]:
    """(table, column, rows) of every column holding one of the needles, as the superuser (past RLS, and every
    table, also those no application role reads). Partitions are read through their parent; bytea through
    ``encode(…, 'escape')`` (ASCII as it is: the needles are ASCII)."""
    found = []
    with psycopg.connect(_libpq(admin_url)) as conn:
        columns = conn.execute(
            """SELECT c.relname, a.attname, format_type(a.atttypid, NULL)
                 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND a.attnum > 0 AND NOT a.attisdropped
                  AND (format_type(a.atttypid, NULL) = ANY(%s) OR a.atttypid = 'bytea'::regtype)
                ORDER BY 1, 2""",
            (list(TEXT_TYPES),),
        ).fetchall()
        assert len(columns) > 100, "the catalogue scan found too few columns to prove anything"
        for table, column, kind in columns:
            value = (
                sql.SQL("encode({}, 'escape')").format(sql.Identifier(column))
                if kind == "bytea"
                else sql.SQL("CAST({} AS text)").format(sql.Identifier(column))
            )
            query = sql.SQL("SELECT count(*) FROM {} WHERE {} ~* %s").format(sql.Identifier(table), value)
            count = conn.execute(query, (PATTERN,)).fetchone()[0]
            if count:
                found.append((table, column, count))
    return found


def _history(world: SyncWorld, practice_id: int, client_id: int) -> dict[str, int]:
    with world.db.system("test: the client's records") as session:
        return dict(
            session.execute(
                text(
                    """SELECT 'invoice', count(*) FROM invoice WHERE practice_id = :p AND client_id = :c
                       UNION ALL SELECT 'payment', count(*) FROM payment WHERE practice_id = :p AND client_id = :c
                       UNION ALL SELECT 'appointment', count(*) FROM appointment
                                  WHERE practice_id = :p AND client_id = :c
                       UNION ALL SELECT 'visit', count(*) FROM visit v JOIN client_patient cp
                                  ON cp.practice_id = v.practice_id AND cp.patient_id = v.patient_id
                                  WHERE v.practice_id = :p AND cp.client_id = :c"""
                ),
                {"p": practice_id, "c": client_id},
            ).all()
        )


def _busiest_client(world: SyncWorld, practice_id: int) -> tuple[int, int]:
    with world.db.system("test: pick a client") as session:
        row = session.execute(
            text(
                """SELECT c.id, c.animana_id FROM client c JOIN client_patient cp
                     ON cp.practice_id = c.practice_id AND cp.client_id = c.id
                     JOIN visit v ON v.practice_id = c.practice_id AND v.patient_id = cp.patient_id
                    WHERE c.practice_id = :p AND EXISTS (SELECT FROM invoice i WHERE i.practice_id = c.practice_id
                                                          AND i.client_id = c.id)
                    GROUP BY c.id, c.animana_id ORDER BY count(*) DESC, c.id LIMIT 1"""
            ),
            {"p": practice_id},
        ).one()
    return row.id, int(row.animana_id)


def _settle_debts(world: SyncWorld, practice_id: int, client_id: int) -> None:
    """Pay what the client owes (a payment as Animana would have sent it), so the erasure is not refused."""
    with world.db.system("test: pay the client's invoices") as session:
        session.execute(
            text(
                """INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents)
                   SELECT i.practice_id, i.id, i.client_id, 'pin',
                          i.total_incl_cents - coalesce((SELECT sum(amount_cents) FROM payment y
                                                          WHERE y.practice_id = i.practice_id
                                                            AND y.invoice_id = i.id), 0)
                     FROM invoice i WHERE i.practice_id = :p AND i.client_id = :c
                      AND i.status IN ('issued', 'paid', 'credited') AND i.total_incl_cents > coalesce(
                          (SELECT sum(amount_cents) FROM payment y WHERE y.practice_id = i.practice_id
                            AND y.invoice_id = i.id), 0)"""
            ),
            {"p": practice_id, "c": client_id},
        )


def _device_message_naming_the_owner(world: SyncWorld, practice_id: int, client_id: int) -> None:
    """An HL7 result whose NK1 segment names the owner, as a lab analyser sends it (matched to the animal)."""
    raw = (
        b"MSH|^~\\&|VETSCAN|LAB|VETCONNECT|PRAKTIJK|20261201101500||ORU^R01|ERASE-1|P|2.5.1\r"
        b"PID|1||4711||Bello^^^^||20180101|M\r"
        b"NK1|1|ZWARTKRUIS-OOSTERBEEK^WILHELMINA|OWNER|Zonnebloemstraat 77^^LUTJEBROEK^^9999ZZ|0612398745\r"
    )
    with world.db.system("test: a device message") as session:
        patient = session.execute(
            text("SELECT patient_id FROM client_patient WHERE practice_id = :p AND client_id = :c LIMIT 1"),
            {"p": practice_id, "c": client_id},
        ).scalar_one()
        session.execute(
            text(
                "INSERT INTO device_message (practice_id, source, detected_format, raw, sha256, size_bytes, "
                "status, patient_id, parsed_outcome) VALUES (:p, 'mllp:10.0.0.5:51234', 'hl7v2', :raw, 'x', "
                ":size, 'ingested', :patient, CAST(:parsed AS json))"
            ),
            {
                "p": practice_id,
                "raw": raw,
                "size": len(raw),
                "patient": patient,
                "parsed": '{"owner": "Zwartkruis-Oosterbeek, Wilhelmina"}',
            },
        )


@pytest.mark.slow
def test_erasure_leaves_no_personal_data_anywhere_and_keeps_the_records(synced_world: SyncWorld):
    world, practice = synced_world, synced_world.practices[0]
    set_modes(world, practice, "hybrid", ("clients", "agenda"))
    client_id, relation = _busiest_client(world, practice.practice_id)
    manager = Actor.at(None, practice.practice_id, {"practice_manager"})
    with world.client() as animana:
        # The day: Animana's data arrives by the sync, is corrected here (captured for write-back), changed in
        # Animana again (held against the local change), once with a value the mapping refuses (quarantined).
        world.sim.edit(practice.animana_id, "relations", relation, FROM_ANIMANA)
        sync_all(world.db.app_engine, animana, world.practices, master_key=MASTER_KEY, full=True)
        with as_app(world, practice) as session:
            contact = current_contact(session, practice.practice_id, client_id, master_key=MASTER_KEY)
            contact = dataclasses.replace(contact, **EDITED_HERE)
            edit_contact(session, manager, practice_id=practice.practice_id, client_id=client_id,
                         contact=contact, master_key=MASTER_KEY)  # fmt: skip
            session.execute(
                text("UPDATE appointment SET reason = 'Mw. Zwartkruis belt terug over de uitslag' "
                     "WHERE practice_id = :p AND client_id = :c"),
                {"p": practice.practice_id, "c": client_id},
            )  # fmt: skip
            assert search(session, "Zwartkruis", master_key=MASTER_KEY).hits
        world.sim.edit(practice.animana_id, "relations", relation, HELD_FROM_ANIMANA)
        sync_all(world.db.app_engine, animana, world.practices, master_key=MASTER_KEY, full=True)
        world.sim.inject(practice.animana_id, "relations", [NOT_LOADED])
        sync_all(world.db.app_engine, animana, world.practices, master_key=MASTER_KEY, full=True)
        _device_message_naming_the_owner(world, practice.practice_id, client_id)
        _settle_debts(world, practice.practice_id, client_id)
        before = _history(world, practice.practice_id, client_id)
        seeded = {table for table, _, _ in _hits(world.db.admin_url)}
        # The day really spread the data: a scan that found nothing here would prove nothing afterwards.
        assert {
            "client",
            "search_term",
            "writeback_outbox",
            "writeback_conflict",
            "audit_log",
            "device_message",
            "appointment",
            "ingest_quarantine",
        } <= seeded, seeded

        with as_app(world, practice) as session:
            result = erase_client(session, manager, practice.practice_id, client_id, master_key=MASTER_KEY)

        left = _hits(world.db.admin_url)
        assert not left, f"{left} {result.copies_removed}"
        assert _history(world, practice.practice_id, client_id) == before
        assert before["visit"] > 0 and before["invoice"] > 0
        with as_app(world, practice) as session:
            name = session.execute(
                text("SELECT last_name FROM client WHERE practice_id = :p AND id = :c"),
                {"p": practice.practice_id, "c": client_id},
            ).scalar_one()
            assert name == f"Erased client {result.pseudonym}"
            # The erasure's own outbox entry sends the pseudonym and keeps nothing from before it.
            erasure_entry = session.execute(
                text("SELECT changes, base FROM writeback_outbox WHERE table_name = 'client' AND row_id = :c "
                     "AND state = 'pending' ORDER BY id DESC LIMIT 1"),
                {"c": client_id},
            ).one()  # fmt: skip
            assert erasure_entry.base == {} and erasure_entry.changes["last_name"] == name
            assert not search(session, "Zwartkruis", master_key=MASTER_KEY).hits
            assert verify_chain(session).ok
            with pytest.raises(ErasureError, match="already erased"):
                erase_client(session, manager, practice.practice_id, client_id, master_key=MASTER_KEY)

        # Animana still has the data until the write-back: the sync must not bring it back meanwhile.
        sync_all(world.db.app_engine, animana, world.practices, master_key=MASTER_KEY, full=True)
        assert _hits(world.db.admin_url) == []
        report = push(world.db.app_engine, animana, practice, master_key=MASTER_KEY)
        assert report.dead == 0
        in_animana = animana.get(practice.animana_id, "relations", relation)
        assert in_animana.last_name == f"Erased client {result.pseudonym}"
        assert (in_animana.first_name, in_animana.email, in_animana.postcode) == (None, None, None)
        # Nor afterwards, when someone types the name into Animana's relation again.
        world.sim.edit(practice.animana_id, "relations", relation, {"last_name": "Zwartkruis"})
        sync_all(world.db.app_engine, animana, world.practices, master_key=MASTER_KEY, full=True)
        assert _hits(world.db.admin_url) == []
