"""Records services against real PostgreSQL under RLS: client card, patient record (audited reads), consult
notes from an appointment, vaccinations with their booster reminder, prescriptions (UDD only by a vet),
attachments (limits, encryption, round trip)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from tests.conftest import MASTER_KEY
from tests.factories import TZ
from warehouse.clients.card import client_card
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import DecryptionError, decrypt_document
from warehouse.records import consults, documents, prescriptions, vaccinations
from warehouse.records.consults import ConsultNote
from warehouse.records.errors import RecordsError
from warehouse.records.patient_record import patient_record
from warehouse.schema.clinical import Diagnosis, LabObservation, Reminder, Vaccination, Visit
from warehouse.schema.ingestion import DocumentContent
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

VET = frozenset({"veterinarian"})
NURSE = frozenset({"nurse"})
RECEPTION = frozenset({"receptionist"})
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n%test\n"


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def _audit_reads(db, practice_id, entity):
    with db.system() as session:
        return session.execute(
            text("SELECT count(*) FROM audit_log WHERE practice_id = :p AND action = 'read' AND entity = :e"),
            {"p": practice_id, "e": entity},
        ).scalar_one()


def test_client_card_and_patient_record_are_decrypted_flagged_and_audited(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.system() as session:
        session.add(LabObservation(practice_id=a1.practice_id, patient_id=a1.patient_id, code="ALT",
                                   value_numeric=Decimal("120"), unit="U/L", ref_low=Decimal("10"),
                                   ref_high=Decimal("100"), status="final",
                                   observed_at=dt.datetime(2026, 11, 10, 10, tzinfo=TZ)))  # fmt: skip
    before = _audit_reads(ws_db, a1.practice_id, "patient"), _audit_reads(ws_db, a1.practice_id, "client")
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        card = client_card(session, a1.practice_id, a1.client_id, master_key=MASTER_KEY)
        rec = patient_record(session, a1.practice_id, a1.patient_id, today=dt.date(2029, 12, 1))
        # Another practice's patient does not exist in this session.
        b1 = ws_db.world.practices["b1"]
        assert patient_record(session, b1.practice_id, b1.patient_id, today=dt.date(2026, 1, 1)) is None
        assert client_card(session, b1.practice_id, b1.client_id, master_key=MASTER_KEY) is None
    assert card.email == "jansen.a1@example.nl" and card.phone == "06-12345678" and card.address == "Damrak 1"
    assert card.patients["name"].to_list() == ["Bello-a1"]
    assert card.balance.outstanding_cents == 0 and card.balance.invoiced_cents == 5687
    assert rec.visits["subjective"][0] == "Eet goed" and rec.visits["diagnoses"][0] == "Gezond"
    # Given 2026-11-10, booster after 1095 days: overdue by 2029-12-01.
    assert rec.vaccinations["status"].to_list() == ["overdue"]
    flags = dict(zip(rec.lab_results["code"], rec.lab_results["flag"], strict=True))
    assert flags == {"ALT": "H", "GLU": ""}
    assert rec.weights["weight_kg"].to_list() == [31.5]
    assert set(rec.timeline["kind"]) >= {"visit", "vaccination", "prescription", "lab", "document"}
    assert _audit_reads(ws_db, a1.practice_id, "patient") == before[0] + 1
    assert _audit_reads(ws_db, a1.practice_id, "client") == before[1] + 1


def test_consult_note_moves_the_appointment_and_receptionist_cannot_write(ws_db):
    a1, week = ws_db.world.practices["a1"], ws_db.week
    appointment_id = week.today_appointment["a1"]
    note = ConsultNote(subjective="Hoest sinds 3 dagen", objective="T 39.1", assessment="Kennelhoest",
                       plan="Rust", diagnoses=("Kennelhoest",))  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        with pytest.raises(NotPermitted):
            consults.write_consult(session, Actor.at(a1.user_id, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
                                   appointment_id=appointment_id, note=note)  # fmt: skip
        with pytest.raises(RecordsError) as empty:
            consults.write_consult(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id,
                                   appointment_id=appointment_id, note=ConsultNote())  # fmt: skip
        assert empty.value.field == "subjective"
        visit = consults.write_consult(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id,
                                       appointment_id=appointment_id, note=note)  # fmt: skip
        assert session.get(Appointment, (a1.practice_id, appointment_id)).status == "in_consult"
        again = consults.write_consult(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id,
                                       appointment_id=appointment_id, note=note, sign=True, finish=True)  # fmt: skip
        assert again.id == visit.id
    with ws_db.system() as session:
        row = session.get(Visit, (a1.practice_id, visit.id))
        assert row.assessment == "Kennelhoest" and row.signed_at is not None and row.vet_user_id == a1.user_id
        assert session.get(Appointment, (a1.practice_id, appointment_id)).status == "done"
        assert session.scalars(select(Diagnosis.term).where(Diagnosis.visit_id == visit.id)).all() == [
            "Kennelhoest"
        ]
        audited = session.execute(text("SELECT count(*) FROM audit_log WHERE entity = 'visit' AND :v = ANY(entity_ids)"),
                                  {"v": visit.id}).scalar_one()  # fmt: skip
    assert audited >= 1
    with ws_db.as_app(_ctx(ws_db, "a1")) as session, pytest.raises(RecordsError, match="signed"):
        consults.write_consult(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id,
                               appointment_id=appointment_id, note=note)  # fmt: skip


def test_vaccination_sets_the_booster_from_the_practice_interval_and_closes_the_old_reminder(ws_db):
    a1 = ws_db.world.practices["a1"]
    today = dt.date(2027, 3, 1)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        protocols = vaccinations.vaccine_protocols(session, a1.practice_id, "dog")
        assert [(p.booster_interval_days, p.overridden) for p in protocols] == [(365, True)]  # a1 override
        first, _ = vaccinations.record_vaccination(session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id,
                                                   patient_id=a1.patient_id, protocol_id=protocols[0].id,
                                                   given_on=dt.date(2027, 2, 1), today=today)  # fmt: skip
        second, reminder = vaccinations.record_vaccination(
            session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id, patient_id=a1.patient_id,
            protocol_id=protocols[0].id, given_on=today, today=today, batch_number="B123")  # fmt: skip
        with pytest.raises(RecordsError) as future:
            vaccinations.record_vaccination(session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id,
                                            patient_id=a1.patient_id, protocol_id=protocols[0].id,
                                            given_on=today + dt.timedelta(days=1), today=today)  # fmt: skip
        assert future.value.field == "given_on"
        with pytest.raises(NotPermitted):
            vaccinations.record_vaccination(session, Actor.at(a1.user_id, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
                                            patient_id=a1.patient_id, protocol_id=protocols[0].id, given_on=today,
                                            today=today)  # fmt: skip
    assert second.due_on == dt.date(2028, 2, 29) == reminder.due_on  # 365 days (2028 is a leap year)
    with ws_db.system() as session:
        statuses = dict(session.execute(select(Reminder.vaccination_id, Reminder.status).where(
            Reminder.vaccination_id.in_([first.id, second.id]))).all())  # fmt: skip
        assert statuses == {first.id: "done", second.id: "pending"}
        assert session.get(Reminder, (a1.practice_id, reminder.id)).template_id is not None
        assert session.get(Vaccination, (a1.practice_id, second.id)).batch_number == "B123"
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        rec = patient_record(session, a1.practice_id, a1.patient_id, today=today)
    assert rec.vaccinations["status"].to_list()[:2] == ["ok", "renewed"]


def test_udd_only_by_a_vet_and_quantities_are_validated(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        with pytest.raises(NotPermitted, match="veterinarian"):
            prescriptions.prescribe(session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id, patient_id=a1.patient_id,
                                    product_name="Ketamine", dispensing_category="UDD", quantity="1")  # fmt: skip
        with pytest.raises(RecordsError) as bad:
            prescriptions.prescribe(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id, patient_id=a1.patient_id,
                                    product_name="Ketamine", dispensing_category="UDD", quantity="-2")  # fmt: skip
        assert bad.value.field == "quantity"
        ok = prescriptions.prescribe(session, Actor.at(a1.user_id, a1.practice_id, VET), practice_id=a1.practice_id, patient_id=a1.patient_id,
                                     product_name="Ketamine", dispensing_category="UDD", quantity="0,5",
                                     dosage_instructions="Eenmalig")  # fmt: skip
        nurse = prescriptions.prescribe(session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id,
                                        patient_id=a1.patient_id, product_name="Ontwormer", dispensing_category="URA",
                                        quantity="2")  # fmt: skip
    assert ok.quantity == Decimal("0.5") and nurse.dispensing_category == "URA"


def test_upload_limits_and_encrypted_round_trip(ws_db, monkeypatch):
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(a1.user_id, a1.practice_id, NURSE)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        for name, content, message in (
            ("scan.pdf", b"", "empty"),
            ("scan.exe", b"MZ\x90\x00", "only pdf"),
            ("scan.pdf", PNG, "named like a PDF but its content is a PNG image"),
            ("foto.png", b"\x00\x01garbage\xff\xfe", "not a file type that can be attached"),
        ):
            with pytest.raises(RecordsError, match=message) as refused:
                documents.upload_document(session, actor, practice_id=a1.practice_id, patient_id=a1.patient_id,
                                          filename=name, content=content, master_key=MASTER_KEY)  # fmt: skip
            assert refused.value.field == "file"
        monkeypatch.setattr(documents, "MAX_BYTES", 1024)
        with pytest.raises(RecordsError, match="the limit is"):
            documents.upload_document(session, actor, practice_id=a1.practice_id, patient_id=a1.patient_id,
                                      filename="big.pdf", content=PDF + b"0" * 2000, master_key=MASTER_KEY)  # fmt: skip
        with pytest.raises(NotPermitted):
            documents.upload_document(session, Actor.at(a1.user_id, a1.practice_id, RECEPTION), practice_id=a1.practice_id,
                                      patient_id=a1.patient_id, filename="x.pdf", content=PDF, master_key=MASTER_KEY)  # fmt: skip
        doc = documents.upload_document(session, actor, practice_id=a1.practice_id, patient_id=a1.patient_id,
                                        filename="bloed.pdf", content=PDF, master_key=MASTER_KEY, title="Uitslag")  # fmt: skip
    with ws_db.system() as session:
        stored = session.get(DocumentContent, (a1.practice_id, doc.id))
        assert PDF not in bytes(stored.ciphertext) and b"%PDF" not in bytes(stored.ciphertext)
        # Bytes moved to another document do not decrypt.
        key = practice_cipher(session, a1.practice_id, MASTER_KEY).data_key
        with pytest.raises(DecryptionError):
            decrypt_document(key, a1.practice_id, doc.id + 1, stored.ciphertext)
    before = _audit_reads(ws_db, a1.practice_id, "document")
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        read = documents.read_document(session, actor, practice_id=a1.practice_id, document_id=doc.id,
                                       master_key=MASTER_KEY)  # fmt: skip
    assert read.content == PDF and read.content_type == "application/pdf" and read.title == "Uitslag"
    assert _audit_reads(ws_db, a1.practice_id, "document") == before + 1


def test_a_vaccination_reminder_uses_a_per_channel_template_with_the_longest_lead(ws_db):
    """Franchises may keep one template per channel (the demo has vacc-email and vacc-sms): the booster
    reminder gets the one the reminder generator would pick, not none."""
    a1 = ws_db.world.practices["a1"]
    today = dt.date(2027, 3, 1)
    with ws_db.system() as session:
        franchise_id = session.execute(text("SELECT franchise_id FROM tenant WHERE id = :p"),
                                       {"p": a1.practice_id}).scalar_one()  # fmt: skip
        session.execute(text("UPDATE reminder_template SET code = 'vacc-email', days_before_due = 21 "
                             "WHERE franchise_id = :f AND code = 'vacc'"), {"f": franchise_id})  # fmt: skip
        sms = session.execute(text(
            "INSERT INTO reminder_template (franchise_id, code, channel, subject, body, days_before_due) "
            "VALUES (:f, 'vacc-sms', 'sms', 'Vaccinatie', '{patient}', 7) RETURNING id"), {"f": franchise_id}
        ).scalar_one()  # fmt: skip
        email = session.execute(text("SELECT id FROM reminder_template WHERE franchise_id = :f AND code = "
                                     "'vacc-email'"), {"f": franchise_id}).scalar_one()  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        protocol = vaccinations.vaccine_protocols(session, a1.practice_id, "dog")[0]
        _, reminder = vaccinations.record_vaccination(session, Actor.at(a1.user_id, a1.practice_id, NURSE), practice_id=a1.practice_id,
                                                      patient_id=a1.patient_id, protocol_id=protocol.id,
                                                      given_on=today, today=today)  # fmt: skip
    assert reminder.template_id == email != sms


def test_a_diagnosis_on_the_practices_coded_list_is_stored_with_its_venom_code(ws_db):
    """The consult form offers the terms the practice has used with a VeNom code (Animana's history); a term
    picked from it, in any case, keeps that code; a new term is stored as typed, without a code."""
    a1 = ws_db.world.practices["a1"]
    with ws_db.system() as session:
        visit_id = session.scalar(select(Visit.id).where(Visit.practice_id == a1.practice_id).limit(1))
        session.add(Diagnosis(practice_id=a1.practice_id, visit_id=visit_id, patient_id=a1.patient_id,
                              term="Otitis externa", venom_code="1081"))  # fmt: skip
    vet = Actor.at(a1.user_id, a1.practice_id, VET)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        assert ("Otitis externa", "1081") in consults.diagnosis_choices(session, a1.practice_id)
        assert "gezond" not in consults.coded_diagnoses(session, a1.practice_id)  # the factory's uncoded term
        visit = consults.write_consult(session, vet, practice_id=a1.practice_id,
                                       appointment_id=ws_db.week.today_appointment["a1"],
                                       note=ConsultNote(subjective="Krabt aan het oor",
                                                        diagnoses=("otitis externa", "Mijten verdacht")))  # fmt: skip
        stored = session.execute(select(Diagnosis.term, Diagnosis.venom_code).where(
            Diagnosis.practice_id == a1.practice_id, Diagnosis.visit_id == visit.id).order_by(Diagnosis.id)).all()  # fmt: skip
        shown = patient_record(session, a1.practice_id, a1.patient_id, today=dt.date.today())
    assert [tuple(r) for r in stored] == [("otitis externa", "1081"), ("Mijten verdacht", None)]
    row = shown.visits.filter(shown.visits["id"] == visit.id).row(0, named=True)
    assert row["diagnoses"] == "otitis externa (VeNom 1081); Mijten verdacht"
