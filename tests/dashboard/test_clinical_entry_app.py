"""Clinical entry on the patient record under AppTest: a vet searches the coded list, adds a diagnosis and a
weight (errors at their field) and both show; a role that reads records but may not write sees the lists and no
entry forms; a receptionist has no records page at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.schema.clients import WeightMeasurement
from warehouse.schema.clinical import Diagnosis, DiagnosisCode


def _open_patient(at, rows):  # noqa: ANN001, ANN202
    at.switch_page("workspaces/records.py").run()
    ok(at)
    at.text_input(key="rec.query").input("Bello").run()
    at.selectbox(key="rec.patient").set_value(rows.patient_id).run()
    ok(at)
    return at


def test_vet_enters_a_coded_diagnosis_and_a_weight_and_they_show(app_env):
    a1 = app_env.world.practices["a1"]
    at = _open_patient(sign_in("vet-a1"), a1)
    click(at, "Add diagnoses")  # nothing chosen: the error sits at the picker
    ok(at)
    assert any("at least one diagnosis" in e.value for e in at.error)
    at.text_input(key="rec.dx.query").input("otitis ext").run()
    picker = at.multiselect(key="rec.dx.codes")
    assert picker.options == ["Otitis externa · VC-001"]  # as labelled; the value is the list row's id
    with app_env.system() as session:
        otitis = session.scalar(select(DiagnosisCode.id).where(DiagnosisCode.franchise_id == app_env.world.franchises["fa"],
                                                               DiagnosisCode.code == "VC-001"))  # fmt: skip
    picker.set_value([otitis]).run()
    at.radio(key="rec.dx.status").set_value("confirmed")
    click(at, "Add diagnoses")
    ok(at)
    assert any("Added (confirmed): Otitis externa" in s.value for s in at.success)
    shown = next(d.value for d in at.dataframe if "Diagnosis" in d.value.columns)
    assert ("Otitis externa", "VC-001", "Confirmed") in set(
        zip(shown["Diagnosis"], shown["Code"], shown["Status"], strict=True)
    )

    at.text_input(key="rec.w.kg").input("3245")
    click(at, "Record weight")
    ok(at)
    assert any("not plausible for a dog" in e.value for e in at.error)
    at.text_input(key="rec.w.kg").input("32,45")
    click(at, "Record weight")
    ok(at)
    assert any("Weight recorded: 32,45 kg." in s.value for s in at.success)
    table = next(d.value for d in at.dataframe if "weight" in d.value.columns)
    assert "32,45 kg" in list(table["weight"])
    with app_env.system() as session:
        assert session.scalar(select(Diagnosis.status).where(Diagnosis.practice_id == a1.practice_id,
                                                             Diagnosis.term == "Otitis externa")) == "confirmed"  # fmt: skip
        assert 32450 in session.scalars(select(WeightMeasurement.weight_grams).where(
            WeightMeasurement.practice_id == a1.practice_id)).all()  # fmt: skip


def test_a_reader_sees_diagnoses_weights_and_imaging_but_no_clinical_entry(app_env):
    a1 = app_env.world.practices["a1"]
    at = _open_patient(sign_in("fm-a"), a1)  # franchise manager: RECORDS_READ, no RECORDS_WRITE
    content = texts(at)
    assert "Gezond" in content  # the world's diagnosis, in the Diagnoses tab
    assert "Add diagnoses" not in [b.label for b in at.button]
    assert "Record weight" not in [b.label for b in at.button]
    for key in ("rec.dx.query", "rec.w.kg"):
        with pytest.raises(KeyError):
            at.text_input(key=key)


def test_receptionist_has_no_clinical_entry(app_env):
    at = sign_in(RECEPTIONIST)
    ok(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("workspaces/records.py")
