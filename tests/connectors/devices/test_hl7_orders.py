"""Order messages parse back (with the result parser the ingest uses) to the same accession, patient and tests;
the ACK reader turns each acknowledgement into the delivery state a person sees."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.devices.hl7_acks import build_ack
from connectors.devices.hl7_orders import LabRequest, OrderedTest, OrderPatient, build_order_message
from connectors.devices.hl7_parse import parse_hl7
from connectors.devices.mllp_client import read_acknowledgement
from connectors.devices.model import FieldIssue

# Printable text including every HL7 delimiter; the builder turns runs of spaces into one.
words = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=30)
value = words.map(lambda v: " ".join(v.split())).filter(bool)
tests = st.lists(st.builds(OrderedTest, value, st.none() | value), min_size=1, max_size=4)
patients = st.builds(
    OrderPatient, st.integers(1, 10**12), value, st.none() | value,
    st.none() | st.text("0123456789", min_size=15, max_size=15), st.none() | value, st.none() | value,
    st.sampled_from(["male", "female_neutered", "unknown", None]),
    st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2030, 1, 1)),
)  # fmt: skip


@given(
    message_type=st.sampled_from(["ORM^O01", "OML^O21"]), accession=value, patient=patients, ordered=tests,
    visit=st.none() | st.integers(1, 10**9), control=st.text("ABCXYZ0123456789-", min_size=1, max_size=20),
)  # fmt: skip
def test_a_built_order_parses_back_to_the_same_accession_patient_and_tests(
    message_type, accession, patient, ordered, visit, control
):
    request = LabRequest(message_type, control, accession, patient, tuple(ordered),
                         dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC), "P1", "LIS", "Lab", visit)  # fmt: skip
    parsed = parse_hl7(build_order_message(request))
    assert (parsed.message_type, parsed.message_control_id) == (message_type, control)
    assert (parsed.receiving_application, parsed.receiving_facility) == ("LIS", "Lab")
    assert [o.placer_order_number for o in parsed.orders] == [accession] * len(ordered)
    assert [(o.service.code, o.service.text) for o in parsed.orders] == [(t.code, t.name) for t in ordered]
    assert parsed.patient.identifiers[0].value == str(patient.patient_id)
    assert parsed.patient.microchip == patient.microchip
    assert parsed.patient.birth_date == patient.birth_date
    expected_name = " ".join(p for p in (patient.name, patient.owner_last_name) if p)
    assert parsed.patient.name == expected_name
    assert (parsed.patient.species.code if parsed.patient.species else None) == patient.species


def _order(control: str = "VC1-000001-1") -> str:
    return build_order_message(LabRequest("ORM^O01", control, "VC1-000001", OrderPatient(1, "Bello"),
                                          (OrderedTest("CBC"),), dt.datetime.now(dt.UTC), "P1"))  # fmt: skip


@pytest.mark.parametrize(
    ("ack", "state", "shown"),
    [
        (build_ack(_order(), "AA"), "acknowledged", None),
        (build_ack(_order(), "AR", "unknown test", [FieldIssue("OBR-4", 1, "code 'X' not offered")]), "refused",
         "the lab refused the order (AR): unknown test; OBR-4 segment 1: code 'X' not offered"),
        (build_ack(_order(), "AE", "busy"), "refused", "the lab refused the order (AE): busy"),
        (build_ack(_order("OTHER-1"), "AA"), "refused", "the lab acknowledged message OTHER-1, not ours (VC1-000001-1)"),
        ("MSH|^~\\&|L|L|||20260101||ACK|1|P|2.5.1\r", "timed_out", "the lab's answer has no MSA segment (no acknowledgement)"),
    ],
)  # fmt: skip
def test_the_acknowledgement_decides_the_delivery_state(ack, state, shown):
    delivery = read_acknowledgement(ack.encode(), "VC1-000001-1")
    assert (delivery.state, delivery.error) == (state, shown)


def test_bytes_that_are_not_hl7_are_no_acknowledgement():
    delivery = read_acknowledgement(b"hello", "X")
    assert delivery.state == "timed_out" and delivery.error.startswith(
        "the lab answered with something that is not HL7"
    )
