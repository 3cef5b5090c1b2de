"""Clinical entry against real PostgreSQL under RLS: coded diagnoses (the franchise list, several per visit,
status, removal with a reason, another franchise's codes unusable), weights (Dutch input, plausible per species,
practice local time) and imaging studies with their previews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from warehouse.records import diagnoses, imaging, weights
from warehouse.records.errors import RecordsError
from warehouse.schema.clinical import Diagnosis, DiagnosisCode, Visit
from warehouse.schema.ingestion import ImagingStudy
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

VET = frozenset({"veterinarian"})
RECEPTION = frozenset({"receptionist"})
ADMIN = frozenset({"franchise_admin"})  # the franchise's list is the franchise admin's
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def _visit_id(db, code):
    p = db.world.practices[code]
    with db.system() as session:
        return session.scalar(select(Visit.id).where(Visit.practice_id == p.practice_id,
                                                     Visit.patient_id == p.patient_id).limit(1))  # fmt: skip


def _code(session, practice_id, term):
    return next(c for c in diagnoses.diagnosis_codes(session, practice_id, query=term) if c.term == term)


def test_several_coded_diagnoses_per_visit_with_status_changes_and_removal(ws_db):
    a1 = ws_db.world.practices["a1"]
    vet = Actor.at(a1.user_id, a1.practice_id, VET)
    visit_id = _visit_id(ws_db, "a1")
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        otitis, obesity = (
            _code(session, a1.practice_id, "Otitis externa"),
            _code(session, a1.practice_id, "Obesity"),
        )
        assert otitis.code == "VC-001" and otitis.label == "Otitis externa · VC-001"
        # A cat-only term is not offered for a dog, and refused if asked for by id.
        assert not diagnoses.diagnosis_codes(session, a1.practice_id, query="Hyperthyroidism", species="dog")
        cat_only = _code(session, a1.practice_id, "Hyperthyroidism")
        with pytest.raises(RecordsError, match="for cats, not for a dog") as wrong_species:
            diagnoses.add_diagnoses(session, vet, practice_id=a1.practice_id, visit_id=visit_id,
                                    code_ids=[otitis.id, cat_only.id])  # fmt: skip
        assert wrong_species.value.field == "diagnosis_code"
        with pytest.raises(NotPermitted):
            diagnoses.add_diagnoses(session, Actor.at(a1.user_id, a1.practice_id, RECEPTION),
                                    practice_id=a1.practice_id, visit_id=visit_id, code_ids=[otitis.id])  # fmt: skip
        added = diagnoses.add_diagnoses(session, vet, practice_id=a1.practice_id, visit_id=visit_id,
                                        code_ids=[otitis.id, obesity.id])  # fmt: skip
        with pytest.raises(RecordsError, match="on this visit already"):
            diagnoses.add_diagnoses(session, vet, practice_id=a1.practice_id, visit_id=visit_id,
                                    code_ids=[otitis.id], status="confirmed")  # fmt: skip
        with pytest.raises(RecordsError) as no_status:
            diagnoses.add_diagnoses(session, vet, practice_id=a1.practice_id, visit_id=visit_id,
                                    code_ids=[otitis.id], status="likely")  # fmt: skip
        assert no_status.value.field == "status"
        diagnoses.set_status(
            session, vet, practice_id=a1.practice_id, diagnosis_id=added[0].id, status="confirmed"
        )
        with pytest.raises(RecordsError) as no_reason:
            diagnoses.remove_diagnosis(session, vet, practice_id=a1.practice_id, diagnosis_id=added[1].id,
                                       reason="  ")  # fmt: skip
        assert no_reason.value.field == "reason"
        diagnoses.remove_diagnosis(session, vet, practice_id=a1.practice_id, diagnosis_id=added[1].id,
                                   reason="Entered on the wrong patient")  # fmt: skip
        with pytest.raises(RecordsError, match="was removed"):
            diagnoses.set_status(session, vet, practice_id=a1.practice_id, diagnosis_id=added[1].id,
                                 status="confirmed")  # fmt: skip
        shown = diagnoses.patient_diagnoses(session, a1.practice_id, a1.patient_id)
        everything = diagnoses.patient_diagnoses(session, a1.practice_id, a1.patient_id, include_removed=True)
    # Animana's uncoded "Gezond" stays alongside, confirmed, without a list code.
    assert {(d.term, d.code, d.status) for d in shown} == {
        ("Otitis externa", "VC-001", "confirmed"), ("Gezond", None, "confirmed")}  # fmt: skip
    assert next(d for d in shown if d.term == "Otitis externa").diagnosed_by == "Vet a1"
    assert [d.removal_reason for d in everything if d.term == "Obesity"] == ["Entered on the wrong patient"]
    with ws_db.system() as session:
        row = session.get(Diagnosis, (a1.practice_id, added[0].id))
        assert (row.status_changed_by, row.diagnosed_by) == (a1.user_id, a1.user_id)
        audited = session.execute(text("SELECT count(*) FROM audit_log WHERE entity = 'diagnosis' "
                                       "AND :d = ANY(entity_ids)"), {"d": added[1].id}).scalar_one()  # fmt: skip
    assert audited == 2  # added, removed


def test_the_franchise_extends_its_list_and_another_franchise_neither_sees_nor_uses_it(ws_db):
    a1, a2, b1 = (ws_db.world.practices[c] for c in ("a1", "a2", "b1"))
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        own = diagnoses.add_franchise_code(session, Actor.at(a1.user_id, a1.practice_id, ADMIN),
                                           practice_id=a1.practice_id, term="Leishmaniosis", venom_id="4711",
                                           species="dog")  # fmt: skip
        with pytest.raises(RecordsError, match="on the list already") as twice:
            diagnoses.add_franchise_code(session, Actor.at(a1.user_id, a1.practice_id, ADMIN),
                                         practice_id=a1.practice_id, term="otitis EXTERNA")  # fmt: skip
        assert twice.value.field == "term"
        with pytest.raises(RecordsError) as bad_id:
            diagnoses.add_franchise_code(session, Actor.at(a1.user_id, a1.practice_id, ADMIN),
                                         practice_id=a1.practice_id, term="Giardiasis", venom_id="12a")  # fmt: skip
        assert bad_id.value.field == "venom_id"
        with pytest.raises(NotPermitted):  # a vet uses the list; extending it is the franchise admin's
            diagnoses.add_franchise_code(session, Actor.at(a1.user_id, a1.practice_id, VET),
                                         practice_id=a1.practice_id, term="Giardiasis")  # fmt: skip
    assert own.code == "F-001"
    with ws_db.as_app(_ctx(ws_db, "a2")) as session:  # the same franchise: on the list of every practice
        assert [c.label for c in diagnoses.diagnosis_codes(session, a2.practice_id, query="4711")] == [
            "Leishmaniosis · F-001 · VeNom 4711"
        ]
    b_visit = _visit_id(ws_db, "b1")
    with ws_db.as_app(_ctx(ws_db, "b1")) as session:
        assert not diagnoses.diagnosis_codes(session, b1.practice_id, query="Leishmaniosis")
        assert session.scalar(select(DiagnosisCode).where(DiagnosisCode.id == own.id)) is None
        with pytest.raises(RecordsError, match="coded list"):
            diagnoses.add_diagnoses(session, Actor.at(b1.user_id, b1.practice_id, VET), practice_id=b1.practice_id,
                                    visit_id=b_visit, code_ids=[own.id])  # fmt: skip


def test_a_coded_diagnosis_takes_the_venom_id_the_practices_animana_history_knows(ws_db):
    a1 = ws_db.world.practices["a1"]
    visit_id = _visit_id(ws_db, "a1")
    with ws_db.system() as session:
        session.add(Diagnosis(practice_id=a1.practice_id, visit_id=visit_id, patient_id=a1.patient_id,
                              term="Pancreatitis", venom_code="2205", animana_id="dx-hist"))  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        code = _code(session, a1.practice_id, "Pancreatitis")
        [added] = diagnoses.add_diagnoses(session, Actor.at(a1.user_id, a1.practice_id, VET),
                                          practice_id=a1.practice_id, visit_id=visit_id, code_ids=[code.id])  # fmt: skip
    assert (added.venom_code, added.status) == ("2205", "provisional")


def test_weights_in_dutch_checked_per_species_in_local_time_and_charted(ws_db):
    a1 = ws_db.world.practices["a1"]
    vet = Actor.at(a1.user_id, a1.practice_id, VET)
    now = dt.datetime(2026, 12, 4, 12, tzinfo=dt.UTC)
    kwargs = {"practice_id": a1.practice_id, "patient_id": a1.patient_id, "now": now}
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        saved = weights.record_weight(session, vet, weight="32,45", measured_on=dt.date(2026, 12, 4),
                                      measured_time=dt.time(9, 30), **kwargs)  # fmt: skip
        for typed, field, message in (("3245", "weight", "not plausible for a dog"), ("32,4,5", "weight", "one comma"),
                                      ("", "weight", "Type the weight")):  # fmt: skip
            with pytest.raises(RecordsError, match=message) as refused:
                weights.record_weight(session, vet, weight=typed, measured_on=dt.date(2026, 12, 4),
                                      measured_time=dt.time(9, 30), **kwargs)  # fmt: skip
            assert refused.value.field == field
        with pytest.raises(RecordsError) as future:
            weights.record_weight(session, vet, weight="32", measured_on=dt.date(2026, 12, 4),
                                  measured_time=dt.time(14, 0), **kwargs)  # 14:00 Amsterdam is 13:00 UTC  # fmt: skip
        assert future.value.field == "measured_at"
        with pytest.raises(NotPermitted):
            weights.record_weight(session, Actor.at(a1.user_id, a1.practice_id, RECEPTION), weight="32",
                                  measured_on=dt.date(2026, 12, 4), measured_time=dt.time(9, 0), **kwargs)  # fmt: skip
        series = weights.patient_weights(session, a1.practice_id, a1.patient_id)
    assert saved.weight_grams == 32450 and saved.measured_at == dt.datetime(2026, 12, 4, 8, 30, tzinfo=dt.UTC)
    last = series.row(-1, named=True)
    assert (last["when"], last["weight"], last["recorded_by"]) == ("4 dec 2026 09:30", "32,45 kg", "Vet a1")
    assert last["measured_at"] == dt.datetime(2026, 12, 4, 9, 30)  # the practice's wall clock on the chart


def test_imaging_studies_come_with_preview_metadata_and_device_and_stay_in_their_practice(ws_db):
    a1, b1 = ws_db.world.practices["a1"], ws_db.world.practices["b1"]
    with ws_db.system() as session:
        message_id = session.execute(
            text("INSERT INTO device_message (practice_id, source, sender, detected_format, raw, sha256, "
                 "size_bytes, status) VALUES (:p, 'mllp:10.0.0.5:5000', 'VetRay DR', 'dicom', '\\x00', "
                 "repeat('0', 64), 1, 'ingested') RETURNING id"), {"p": a1.practice_id}).scalar_one()  # fmt: skip
        session.add_all([
            ImagingStudy(practice_id=a1.practice_id, patient_id=a1.patient_id, device_message_id=message_id,
                         modality="DX", body_part="THORAX", study_date=dt.date(2026, 11, 20),
                         description="Thorax LL", preview_png=PNG),
            ImagingStudy(practice_id=a1.practice_id, patient_id=a1.patient_id, modality="US",
                         study_date=dt.date(2026, 10, 1), description="Abdomen"),
        ])  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        studies = imaging.patient_studies(session, a1.practice_id, a1.patient_id)
        assert imaging.patient_studies(session, b1.practice_id, b1.patient_id) == []
    mine = [s for s in studies if s.description in ("Thorax LL", "Abdomen")]  # the world has a study too
    assert [s.title for s in mine] == ["X-ray (DX) · Thorax · Thorax LL", "Ultrasound · Abdomen"]
    assert mine[0].preview_png == PNG and mine[0].device == "VetRay DR"
    assert mine[1].preview_png is None and mine[1].device is None


def test_a_new_franchise_starts_with_the_standard_list(ws_db):
    with ws_db.system() as session:
        terms = session.execute(text("SELECT count(*), count(DISTINCT code) FROM diagnosis_code "
                                     "WHERE franchise_id = :f"), {"f": ws_db.world.franchises["fb"]}).one()  # fmt: skip
    assert terms == (49, 49)


@pytest.mark.parametrize(
    ("typed", "kg"), [("4,35", "4.35"), ("4.35", "4.35"), (" 12 kg", "12"), ("0,5KG", "0.5")]
)
def test_weight_parser_examples(typed, kg):
    assert weights.parse_weight_kg(typed) == Decimal(kg)
