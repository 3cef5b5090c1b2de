"""Every sample file (tests/connectors/devices/samples) goes through process_bytes; figures below were read off the files
by hand."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from PIL import Image

from connectors.devices.model import LabMessage
from connectors.devices.outcome import InboxReasonCode, ParseOutcome, process_bytes
from tests.connectors.devices.devices_support import SAMPLES, sample_files


def outcome_of(relative: str) -> ParseOutcome:
    path = SAMPLES / relative
    return process_bytes(path.read_bytes(), source="file-drop", filename=path.name)


def only_message(outcome: ParseOutcome) -> LabMessage:
    assert outcome.ok, outcome.inbox
    assert len(outcome.messages) == 1
    return outcome.messages[0]


def test_every_file_is_parsed_or_routed_with_a_reason() -> None:
    files = sample_files()
    assert len(files) >= 9
    for path in files:
        outcome = process_bytes(path.read_bytes(), source="file-drop", filename=path.name)
        assert outcome.detected_format in ("hl7v2", "astm", "dicom"), path.name
        assert outcome.ok or outcome.inbox is not None
        assert outcome.size == path.stat().st_size


def test_cbc_with_bom_has_28_results_with_loinc_ucum_ranges_and_flags() -> None:
    assert (SAMPLES / "hl7/lri_nist_cbc_typical.hl7").read_bytes().startswith(b"\xef\xbb\xbfMSH")
    msg = only_message(outcome_of("hl7/lri_nist_cbc_typical.hl7"))
    assert msg.message_control_id == "NIST-LRI-NG-002.00"
    assert msg.message_type == "ORU^R01"
    assert msg.sending_application == "NIST Test Lab APP"
    assert msg.sending_facility == "NIST Lab Facility"
    assert msg.sent_at == datetime(2011, 5, 31, 14, 5, 51, tzinfo=timezone(timedelta(hours=-5)))
    assert msg.version == "2.5.1"
    assert [(i.value, i.type_code, i.assigning_authority) for i in msg.patient.identifiers] == [
        ("PATID1234", "MR", "NIST MPI")
    ]
    assert msg.patient.name == "William A Jones"
    assert msg.patient.microchip is None

    (order,) = msg.orders
    assert (order.placer_order_number, order.accession) == ("ORD666555", "R-991133")
    assert order.service is not None
    assert order.service.code == "57021-8"

    obs = msg.observations
    assert len(obs) == 28
    assert [o.set_id for o in obs] == [str(n) for n in range(1, 29)]
    types = [o.value_type for o in obs]
    assert types == ["NM"] * 19 + ["CWE"] * 6 + ["TX"] * 3
    assert all(o.result_status == "F" and o.status_category == "final" for o in obs)
    assert all(o.code.system == "LN" for o in obs)

    rbc, hgb, _, wbc = obs[:4]
    assert (rbc.code.code, rbc.numeric, rbc.unit, rbc.unit_system) == (
        "26453-1",
        Decimal("4.41"),
        "10*6/uL",
        "UCUM",
    )
    assert (rbc.reference_range.low, rbc.reference_range.high) == (Decimal("4.3"), Decimal("6.2"))
    assert (hgb.numeric, hgb.unit, hgb.abnormal_flags) == (Decimal("12.5"), "g/mL", ("L",))
    assert (hgb.reference_range.low, hgb.reference_range.high) == (Decimal("13"), Decimal("18"))
    assert (wbc.numeric, wbc.unit, wbc.abnormal_flags) == (Decimal("105600"), "{cells}/uL", ("HH",))
    assert (wbc.reference_range.low, wbc.reference_range.high) == (Decimal("4300"), Decimal("10800"))
    eos = obs[13]
    assert (eos.code.code, eos.numeric, eos.reference_range.high) == (
        "26449-9",
        Decimal("2.1"),
        Decimal("0.45"),
    )

    flags = [o.abnormal_flags for o in obs]
    assert flags.count(("HH",)) == 4  # OBX 4, 14, 16, 18
    assert flags.count(("L",)) == 1
    assert flags.count(("A",)) == 4  # OBX 20 and the three morphology texts
    assert flags.count(("N",)) == 19
    assert all(o.reference_range is not None and o.reference_range.is_numeric for o in obs[:19])

    aniso = obs[19]
    assert aniso.coded is not None
    assert (aniso.coded.code, aniso.coded.text, aniso.coded.system) == (
        "260348001",
        "Present ++ out of ++++",
        "SCT",
    )
    assert obs[25].value_text == "Many spherocytes present."
    assert obs[0].observed_at == datetime(2011, 1, 3, 14, 34, 28, tzinfo=timezone(timedelta(hours=-8)))


def test_glucose_structured_numeric_182_with_underscore_range() -> None:
    msg = only_message(outcome_of("hl7/ringholm_glucose_sn.hl7"))
    assert (msg.message_control_id, msg.version, msg.sending_application) == ("CNTRL-3456", "2.4", "GHH LAB")
    assert msg.sent_at == datetime(2002, 2, 15, 9, 30, tzinfo=timezone(timedelta(hours=6)))
    assert [i.value for i in msg.patient.identifiers] == ["555-44-4444"]
    assert msg.patient.name == "EVE E EVERYWOMAN"
    (order,) = msg.orders
    assert (order.placer_order_number, order.filler_order_number) == ("845439", "1045813")
    (glucose,) = msg.observations
    assert glucose.value_type == "SN"
    assert glucose.code.code == "1554-5"
    assert glucose.code.text == "GLUCOSE"
    assert glucose.numeric == Decimal("182")
    assert glucose.comparator is None
    assert glucose.unit == "mg/dl"
    assert glucose.reference_range is not None
    assert glucose.reference_range.text == "70_105"
    assert (glucose.reference_range.low, glucose.reference_range.high) == (Decimal("70"), Decimal("105"))
    assert glucose.abnormal_flags == ("H",)
    assert glucose.result_status == "F"


def test_lead_numeric_result_with_upper_limit_in_prose() -> None:
    msg = only_message(outcome_of("hl7/elr_nist_lead_final.hl7"))
    assert msg.message_control_id == "NIST-100929110701660"
    assert msg.patient.identifiers[0].value == "9817566735"
    assert msg.patient.identifiers[0].assigning_authority == "MPI"
    (order,) = msg.orders
    assert order.accession == "9700123"
    assert order.placer_order_number is None
    (lead,) = msg.observations
    assert (lead.value_type, lead.numeric, lead.unit, lead.unit_system) == (
        "NM",
        Decimal("50"),
        "ug/dL",
        "UCUM",
    )
    rng = lead.reference_range
    assert rng is not None
    assert rng.text.startswith("<9 mcg/dL:")
    assert (rng.low, rng.high, rng.high_inclusive) == (None, Decimal("9"), False)
    assert lead.abnormal_flags == ("H",)
    assert lead.observed_at == datetime(2008, 8, 15, 10, 30, tzinfo=timezone(timedelta(hours=-7)))


def test_hcv_large_value_and_prose_range_is_kept_as_text_with_a_warning() -> None:
    msg = only_message(outcome_of("hl7/elr_nist_hcv_rna.hl7"))
    (hcv,) = msg.observations
    assert hcv.numeric == Decimal("850000")
    assert hcv.unit == "iU/mL"
    assert hcv.reference_range is not None
    assert hcv.reference_range.text == "High Viral Load > or = 850000iU/mL"
    assert not hcv.reference_range.is_numeric
    assert any(w.startswith("OBX-7 segment 5:") for w in msg.warnings)
    assert hcv.abnormal_flags == ("H",)


def test_anthrax_string_result() -> None:
    msg = only_message(outcome_of("hl7/elr_nist_anthrax_st.hl7"))
    (obs,) = msg.observations
    assert (obs.value_type, obs.value_text, obs.numeric) == ("ST", "Isolated", None)
    assert (obs.code.code, obs.code.text, obs.code.system) == (
        "11469-4",
        "Bacillus Anthracis Identified",
        "LN",
    )
    assert obs.unit is None
    assert obs.reference_range is None
    assert msg.orders[0].accession == "8778324"
    assert obs.observed_at == datetime(2008, 8, 2, 15, 0)


def test_stool_culture_three_results_share_set_id_1() -> None:
    msg = only_message(outcome_of("hl7/elr_nist_stool_culture_multi_obx.hl7"))
    obs = msg.observations
    assert [o.set_id for o in obs] == ["1", "1", "1"]
    assert [o.code.code for o in obs] == ["6331-3", "20995-1", "17576-0"]
    assert [o.value_text for o in obs] == ["Isolated", "Isolated", "Not Isolated"]


def test_athena_amylase_has_an_order_but_no_obx_so_it_goes_to_the_inbox() -> None:
    outcome = outcome_of("hl7/athena_amylase_lri.hl7")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.NO_OBSERVATIONS
    assert outcome.inbox.detail == "message 20087.3 has 1 order(s) but no result (OBX records)"
    (msg,) = outcome.messages  # what was understood is kept for the person who triages it
    assert [(i.value, i.type_code) for i in msg.patient.identifiers] == [
        ("V001047", "MR"),
        ("T00001059", "XX"),
        ("V00018739", "AN"),
    ]
    assert msg.comments == ("testing",)  # NTE right after PID
    (order,) = msg.orders
    assert (order.placer_order_number, order.accession, order.result_status) == (
        "1618-1",
        "1023:RC00001R-1",
        "C",
    )
    assert order.service is not None
    assert (order.service.code, order.service.text) == ("AMY", "AMYLASE")


def test_phadia_astm_transcript_three_results() -> None:
    outcome = outcome_of("astm/phadia_immunocap_lis2_sample.astm.txt")
    assert outcome.detected_format == "astm"
    msg = only_message(outcome)
    assert msg.source_format == "astm"
    assert msg.sending_application == "Phadia.Prime"
    assert msg.sent_at == datetime(2012, 5, 22, 10, 12, 51)
    assert len(msg.orders) == 3
    assert {o.specimen_id for o in msg.orders} == {"B7650020"}
    obs = msg.observations
    assert len(obs) == 3
    assert [o.code.code for o in obs] == ["t2", "t3", "a-IgE"]
    assert [o.numeric for o in obs] == [Decimal("9.34"), None, Decimal("199")]
    assert [o.value_type for o in obs] == ["NM", "ST", "NM"]
    assert obs[1].value_text == "Examine"
    assert [o.unit for o in obs] == ["kUA/l", "kUA/l", "kU/l"]
    assert all(o.reference_range is None and o.abnormal_flags == () for o in obs)
    assert [o.result_status for o in obs] == ["F", "F", "F"]
    assert [o.comments for o in obs] == [
        ("Response value in RU 2140",),
        ("Response value in RU 576",),
        ("Response value in RU 1575",),
    ]
    assert obs[0].observed_at == datetime(2003, 5, 3, 12, 47, 4)
    assert msg.patient.birth_date is None  # 18991230 is the analyser's "no date"


def test_dicom_sample_metadata_and_preview() -> None:
    outcome = outcome_of("dicom/CR_tiny_16x16_pydicom_6154.dcm")
    assert outcome.ok
    assert outcome.detected_format == "dicom"
    study = outcome.imaging
    assert study is not None
    assert (study.patient_id, study.patient_name) == ("77654033", "Doe^Archibald")
    assert (study.modality, study.body_part) == ("CR", "CSPINE")
    assert study.study_instance_uid == "1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.1"
    assert study.series_instance_uid == "1.3.6.1.4.1.5962.1.1.0.0.0.1196527414.5534.0.10"
    assert study.study_date == date(2001, 1, 1)
    assert study.photometric_interpretation == "MONOCHROME1"
    assert study.species is None
    assert study.responsible_person is None
    assert study.preview_png is not None
    assert study.preview_png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(study.preview_png))
    assert image.size == (16, 16)
    assert image.mode == "L"


def test_sha256_identifies_the_raw_bytes() -> None:
    raw = (SAMPLES / "hl7/ringholm_glucose_sn.hl7").read_bytes()
    a = process_bytes(raw, "mllp:1.2.3.4")
    b = process_bytes(raw + b"\r", "mllp:1.2.3.4")
    assert len(a.sha256) == 64
    assert a.sha256 != b.sha256
