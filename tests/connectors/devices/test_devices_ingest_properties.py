"""Properties: the mapper fits any parsed result to the warehouse columns; any bytes through the DB path end as a
stored raw copy plus observations or an inbox entry, never an exception."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connectors.devices.ingest import map_message, to_device_outcome
from connectors.devices.model import (
    STATUS_CATEGORIES,
    CodedValue,
    LabMessage,
    Observation,
    Order,
    Patient,
    PatientIdentifier,
    ReferenceRange,
)
from connectors.devices.outcome import process_bytes
from tests.connectors.devices.devices_support import Clinic, ingest, make_clinic, sample_files, vet_oru
from warehouse.ingest.devices.inputs import (
    ACCESSION_MAX,
    CODE_MAX,
    CODE_SYSTEM_MAX,
    FLAG_MAX,
    NUMERIC_LIMIT,
    OBSERVATION_STATUSES,
    TEXT_MAX,
    UNIT_MAX,
)
from warehouse.schema.clinical import LabObservation
from warehouse.schema.ingestion import DeviceMessage

text = st.text(max_size=300)
opt_text = st.none() | text
decimals = (
    st.none()
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=3)
)
ranges = st.none() | st.builds(ReferenceRange, text=text, low=decimals, high=decimals)
coded = st.builds(CodedValue, code=opt_text, text=opt_text, system=opt_text)
observations = st.builds(
    Observation,
    set_id=st.none() | st.text(max_size=5),
    value_type=st.sampled_from(["NM", "SN", "ST", "CWE", "TX"]),
    code=coded,
    value_text=opt_text,
    numeric=decimals,
    comparator=st.none() | st.sampled_from(["<", ">", "<=", ">="]),
    numeric_2=decimals,
    unit=opt_text,
    reference_range=ranges,
    abnormal_flags=st.lists(st.text(max_size=12), max_size=8).map(tuple),
    result_status=st.none() | st.sampled_from([*STATUS_CATEGORIES, "?", ""]),
)
orders = st.builds(
    Order,
    placer_order_number=opt_text,
    filler_order_number=opt_text,
    service=st.none() | coded,
    result_status=st.none() | st.sampled_from(list(STATUS_CATEGORIES)),
    observations=st.lists(observations, max_size=4).map(tuple),
)
patients = st.builds(
    Patient,
    identifiers=st.lists(st.builds(PatientIdentifier, value=text), max_size=3).map(tuple),
    microchip=st.none() | st.from_regex(r"\d{15}", fullmatch=True),
    owner_name=opt_text,
)
messages = st.builds(
    LabMessage,
    source_format=st.just("hl7v2"),
    message_control_id=opt_text,
    message_type=st.just("ORU^R01"),
    sending_application=opt_text,
    sending_facility=opt_text,
    sent_at=st.none(),
    version=st.just("2.5.1"),
    patient=patients,
    orders=st.lists(orders, min_size=1, max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_mapper_fits_every_parsed_result_to_the_columns(msg: LabMessage) -> None:
    result = map_message(msg)
    assert len(result.orders) == len(msg.orders)
    for order, source in zip(result.orders, msg.orders, strict=True):
        assert len(order.observations) == len(source.observations)
        assert order.accession is None or 0 < len(order.accession) <= ACCESSION_MAX
        for obs, raw in zip(order.observations, source.observations, strict=True):
            assert 0 < len(obs.code) <= CODE_MAX  # never empty: the code, else its text, else OBX-<set id>
            if raw.code.code and raw.code.code.strip():
                assert obs.code == raw.code.code.strip().replace("\x00", "\ufffd")[:CODE_MAX]
            assert obs.status in OBSERVATION_STATUSES
            for value, limit in ((obs.code_system, CODE_SYSTEM_MAX), (obs.text, TEXT_MAX),
                                 (obs.unit, UNIT_MAX), (obs.abnormal_flag, FLAG_MAX)):  # fmt: skip
                assert value is None or 0 < len(value) <= limit
            for number in (obs.value_numeric, obs.ref_low, obs.ref_high):
                assert number is None or abs(number) < NUMERIC_LIMIT
            assert obs.ref_low is None or obs.ref_high is None or obs.ref_low <= obs.ref_high
            if raw.comparator or raw.numeric_2 is not None:
                assert obs.value_numeric is None  # "<2" is not the number 2
            flags = [f.strip() for f in raw.abnormal_flags if f.strip()]
            if flags and len("~".join(flags)) <= FLAG_MAX:
                assert obs.abnormal_flag == "~".join(flags).replace("\x00", "\ufffd") or "\x00" in "".join(
                    flags
                )
            for value in (obs.value_text, obs.ref_text, obs.text, obs.unit):
                assert value is None or "\x00" not in value


def _samples() -> list[bytes]:
    files = [p for p in sample_files() if p.suffix in (".hl7", ".txt")]
    return [p.read_bytes() for p in files] + [vet_oru("FUZZ-1"), vet_oru("FUZZ-2", status="C")]


SAMPLES = _samples()


@st.composite
def device_bytes(draw: st.DrawFn) -> bytes:
    """Real messages, cut, spliced, with bytes flipped or inserted; or plain random bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=400))
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["flip", "insert", "cut", "dup"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(
                st.sampled_from([b"|", b"^", b"\r", b"\x00", b"~", b"\\", b"OBX|1|NM|X||1e9999|"])
            )
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 200))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 120))]
    return bytes(data)


@pytest.mark.xdist_group("devices-db")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=device_bytes())
def test_any_input_through_the_db_is_stored_raw_and_decided(fuzz_clinic, raw: bytes) -> None:
    db, clinic = fuzz_clinic
    with db.as_app(clinic.context) as session:
        before = session.scalar(select(func.count()).select_from(DeviceMessage))
    result = ingest(db, clinic, raw, "fuzz", "fuzz.bin")  # must not raise
    with db.as_app(clinic.context) as session:
        msg = session.get(DeviceMessage, (clinic.practice_id, result.message_id))
        assert session.scalar(select(func.count()).select_from(DeviceMessage)) == before + 1
        assert bytes(msg.raw) == raw
        assert msg.status in ("ingested", "inbox", "duplicate")
        loaded = session.scalar(
            select(func.count()).select_from(LabObservation).where(LabObservation.device_message_id == msg.id)
        )
    if msg.status == "ingested":
        assert loaded == msg.observation_count > 0
    else:
        assert loaded == 0
        assert msg.status == "duplicate" or (msg.inbox_reason and msg.inbox_detail)
    assert process_bytes(raw, "fuzz").ok or msg.status != "ingested"
    assert to_device_outcome(process_bytes(raw, "fuzz"), raw) is not None


@pytest.fixture
def fuzz_clinic(fresh_db) -> tuple[object, Clinic]:
    return fresh_db, make_clinic(fresh_db, orders=("R-991133", "9700123", "1045813", "ACC-2024-0042"))
