"""The parsed outcome kept with an inbox message, and resolving from it without a parser (the inbox page).

The codec writes what the input dataclasses hold and reads back equal values (hypothesis, and every sample);
through PostgreSQL's ``json`` a NUL a device sent is kept. A message resolved from the kept outcome is loaded
as re-parsing would load it; a message that went to the inbox before outcomes were kept is resolvable once
the retry has read it again."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from connectors.devices.ingest import parse_raw
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import (
    SAMPLES,
    ingest,
    make_clinic,
    messages,
    observations,
    sample_files,
    vet_oru,
)
from warehouse.ingest.devices.inbox import reprocess_inbox, resolve_inbox
from warehouse.ingest.devices.inputs import (
    DeviceOutcome,
    ImagingInput,
    InboxError,
    LabOrderInput,
    LabResultInput,
    ObservationInput,
    PatientKeys,
)
from warehouse.ingest.devices.raw import sha256_hex
from warehouse.ingest.devices.stored_outcome import decode_outcome, encode_outcome
from warehouse.schema.ingestion import DeviceMessage, ImagingStudy

pytestmark = pytest.mark.xdist_group("devices-db")

UNKNOWN_CHIP = "528140000999999"

texts = st.none() | st.text(max_size=12)  # any code point, NUL and lone surrogates aside (JSON text is UTF-8)
decimals = st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=6)
# The parsers give fixed UTC offsets (a zone name is not kept: a time reads back with its offset).
offsets = st.integers(-1439, 1439).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)))
times = st.none() | st.datetimes(timezones=st.none() | offsets)
observation = st.builds(ObservationInput, code=st.text(min_size=1, max_size=8), status=st.sampled_from(
    ("preliminary", "final", "corrected", "cancelled")), code_system=texts, text=texts, value_numeric=decimals,
    value_text=texts, unit=texts, ref_low=decimals, ref_high=decimals, ref_text=texts, abnormal_flag=texts,
    observed_at=times)  # fmt: skip
patient = st.builds(PatientKeys, microchip=texts, identifiers=st.tuples(st.text(max_size=6)), owner_name=texts,
                    name=texts)  # fmt: skip
order = st.builds(LabOrderInput, accession=texts, placer_number=texts, test_code=texts, test_name=texts,
                  observed_at=times, observations=st.lists(observation, max_size=3).map(tuple))  # fmt: skip
result = st.builds(LabResultInput, patient=patient, orders=st.lists(order, max_size=2).map(tuple), sent_at=times,
                   lab=texts)  # fmt: skip
imaging = st.builds(ImagingInput, patient=patient, accession=texts, content=st.binary(max_size=16),
                    study_date=st.none() | st.dates(), modality=texts, preview_png=st.none() | st.binary(max_size=8))  # fmt: skip
outcomes = st.builds(DeviceOutcome, detected_format=st.sampled_from(("hl7v2", "astm", "dicom", "unknown")),
                     sender=texts, control_id=texts, results=st.lists(result, max_size=2).map(tuple),
                     imaging=st.none() | imaging, inbox_reason=texts, inbox_detail=texts, fingerprint=texts)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(outcome=outcomes, raw=st.binary(max_size=16))
def test_any_outcome_reads_back_equal_after_a_trip_through_json_text(outcome: DeviceOutcome, raw: bytes):
    kept = json.loads(json.dumps(encode_outcome(outcome, sha256_hex(raw))))
    assert decode_outcome(kept, raw) == outcome


def test_a_dicom_file_is_kept_once_as_the_raw_copy():
    raw = (SAMPLES / "dicom/CR_tiny_16x16_pydicom_6154.dcm").read_bytes()
    outcome = parse_raw(raw, "file-drop", "6154.dcm")
    kept = encode_outcome(outcome, sha256_hex(raw))
    assert kept["imaging"]["content"] is None
    assert decode_outcome(kept, raw) == outcome


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_every_sample_reads_back_as_parsed(path):
    raw = path.read_bytes()
    outcome = parse_raw(raw, "file-drop", path.name)
    assert decode_outcome(json.loads(json.dumps(encode_outcome(outcome, sha256_hex(raw)))), raw) == outcome


def test_an_inbox_message_keeps_its_outcome_until_it_is_loaded(fresh_db):
    clinic = make_clinic(fresh_db)
    raw = vet_oru("KEPT-1", chip=UNKNOWN_CHIP, owner="Onbekend^Piet\x00X", accession="NONE-1")
    sent = ingest(fresh_db, clinic, raw, "mllp:hm5")
    assert sent.status == "inbox"
    (stored,) = messages(fresh_db, clinic)
    # NUL kept through PostgreSQL's json (jsonb would refuse it and lose the message)
    assert decode_outcome(stored.parsed_outcome, bytes(stored.raw)) == parse_raw(raw, "mllp:hm5")
    with fresh_db.as_app(clinic.context) as session:
        result = resolve_inbox(session, sent.message_id, clinic.patients["bello"], None)
    assert (result.status, result.observation_count) == ("resolved", 2)
    (stored,) = messages(fresh_db, clinic)
    assert (stored.status, stored.parsed_outcome) == ("resolved", None)
    assert {o.patient_id for o in observations(fresh_db, clinic)} == {clinic.patients["bello"]}


def test_resolving_from_the_kept_outcome_loads_what_re_parsing_loads(fresh_db):
    kept, parsed = make_clinic(fresh_db, "k1"), make_clinic(fresh_db, "k2")
    raw = (SAMPLES / "hl7/lri_nist_cbc_typical.hl7").read_bytes()  # its order is unknown: no patient match
    loaded = {}
    for clinic, parser in ((kept, None), (parsed, parse_raw)):
        sent = ingest(fresh_db, clinic, raw, "file-drop", "cbc.hl7")
        assert sent.status == "inbox"
        with fresh_db.as_app(clinic.context) as session:
            resolve_inbox(session, sent.message_id, clinic.patients["minoes"], None, parser=parser)
        loaded[parser] = [
            (o.code, o.value_numeric, o.value_text, o.unit, o.ref_low, o.ref_high, o.abnormal_flag, o.status,
             o.observed_at) for o in observations(fresh_db, clinic)
        ]  # fmt: skip
    assert len(loaded[None]) == 28
    assert loaded[None] == loaded[parse_raw]


def test_a_dicom_study_is_resolved_from_the_kept_outcome(fresh_db):
    clinic = make_clinic(fresh_db)
    raw = (SAMPLES / "dicom/CR_tiny_16x16_pydicom_6154.dcm").read_bytes()
    sent = ingest(fresh_db, clinic, raw, "file-drop", "6154.dcm")
    with fresh_db.as_app(clinic.context) as session:
        result = resolve_inbox(
            session, sent.message_id, clinic.patients["bello"], None, master_key=MASTER_KEY
        )
        study = session.scalars(select(ImagingStudy)).one()
    assert (result.status, study.modality, study.patient_id) == ("resolved", "CR", clinic.patients["bello"])


def test_a_message_from_before_outcomes_were_kept_is_resolvable_after_the_retry(fresh_db):
    clinic = make_clinic(fresh_db)
    sent = ingest(
        fresh_db, clinic, vet_oru("OLD-1", chip=UNKNOWN_CHIP, owner="Onbekend^Piet", accession="N-1")
    )
    with fresh_db.as_app(clinic.context) as session:  # as a row stored before migration 0360 is
        session.execute(update(DeviceMessage).values(parsed_outcome=None))
    with (
        fresh_db.as_app(clinic.context) as session,
        pytest.raises(InboxError, match="vetconnect devices retry"),
    ):
        resolve_inbox(session, sent.message_id, clinic.patients["bello"], None)
    with fresh_db.as_app(clinic.context) as session:
        assert reprocess_inbox(session, parser=parse_raw).still_inbox == 1
    with fresh_db.as_app(clinic.context) as session:
        result = resolve_inbox(session, sent.message_id, clinic.patients["bello"], None)
    assert (result.status, result.observation_count) == ("resolved", 2)


def test_a_message_that_names_no_patient_at_all_is_refused_from_the_kept_outcome_too(fresh_db):
    clinic = make_clinic(fresh_db)
    garbage = ingest(fresh_db, clinic, b"not a lab result", "file-drop", "junk.txt")
    with fresh_db.as_app(clinic.context) as session, pytest.raises(InboxError, match="for any patient"):
        resolve_inbox(session, garbage.message_id, clinic.patients["bello"], None)
