"""ASTM E1394 / LIS2-A2: record layer, frame layer with checksums, delimiters, several patients."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.devices.astm import parse_astm, strip_frames
from connectors.devices.model import DeviceParseError
from connectors.devices.outcome import InboxReasonCode, process_bytes

RECORDS = [
    "H|\\^&|||VetLab Station^2.1|||||||P|LIS2-A2|20240314101500",
    "P|1|985112000123456|LAB-9||de Vries^Bello||20190301|M",
    "O|1|S-100||^^^CHEM10|R||20240314093000|||||||||||||||||||F",
    "R|1|^^^GLU^Glucose|5.4|mmol/L|3.5-5.0|H||F||||20240314100001",
    "R|2|^^^CREA^Creatinine|<18|umol/L|44^133|L||F",
    "C|1|I|Haemolysed sample|G",
    "R|3|^^^ALB^Albumin|31.2|g/L|25 to 40|N||C",
    "P|2||LAB-10||Jansen^Minoes",
    "O|1|S-101||^^^T4",
    "R|1|^^^T4|35.0|nmol/L|10-60|||P",
    "L|1|N",
]


def frame(records: list[str], max_text: int = 240) -> bytes:
    """Wrap records in E1381 frames (split long ones with ETB), checksums computed as the standard says."""
    out = b""
    number = 1
    for record in records:
        text = (record + "\r").encode()
        chunks = [text[i : i + max_text] for i in range(0, len(text), max_text)]
        for i, chunk in enumerate(chunks):
            end = b"\x03" if i == len(chunks) - 1 else b"\x17"
            body = str(number % 8).encode() + chunk + end
            out += b"\x02" + body + f"{sum(body) % 256:02X}".encode() + b"\r\n"
            number += 1
    return b"\x05" + out + b"\x04"


def test_record_layer_two_patients() -> None:
    first, second = parse_astm("\r\n".join(RECORDS).encode())
    assert first.sending_application == "VetLab Station"
    assert first.patient.microchip == "985112000123456"
    assert [i.value for i in first.patient.identifiers] == ["985112000123456", "LAB-9"]
    assert first.patient.name == "Bello de Vries"
    assert first.orders[0].specimen_id == "S-100"
    glu, crea, alb = first.observations
    assert (glu.code.code, glu.code.text, glu.numeric, glu.unit) == (
        "GLU",
        "Glucose",
        Decimal("5.4"),
        "mmol/L",
    )
    assert (glu.reference_range.low, glu.reference_range.high, glu.abnormal_flags) == (
        Decimal("3.5"),
        Decimal("5.0"),
        ("H",),
    )
    assert (crea.value_type, crea.comparator, crea.numeric) == ("SN", "<", Decimal("18"))
    assert (crea.reference_range.low, crea.reference_range.high) == (Decimal("44"), Decimal("133"))
    assert crea.comments == ("Haemolysed sample",)
    assert alb.reference_range.high == Decimal("40")
    assert alb.status_category == "corrected"
    assert second.patient.name == "Minoes Jansen"
    (t4,) = second.observations
    assert (t4.numeric, t4.result_status) == (Decimal("35.0"), "P")


def test_frame_layer_with_etb_split_records_gives_the_same_result() -> None:
    plain = parse_astm("\r".join(RECORDS).encode())
    framed = frame(RECORDS, max_text=20)
    assert framed.count(b"\x17") > 5
    assert parse_astm(framed) == plain
    assert process_bytes(framed, "serial").ok


def test_bad_checksum_is_reported_with_the_frame_number() -> None:
    framed = bytearray(frame(RECORDS))
    index = framed.index(b"GLU")
    framed[index] = ord("X")  # payload changed, checksum not
    outcome = process_bytes(bytes(framed), "serial")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.ASTM_INVALID
    assert "frame segment 4: checksum" in outcome.inbox.detail


def test_custom_delimiters_from_the_header() -> None:
    custom = [r.translate(str.maketrans({"|": "!", "\\": "@", "^": "$", "&": "%"})) for r in RECORDS]
    assert custom[0].startswith("H!@$%!")
    assert parse_astm("\n".join(custom)) == parse_astm("\n".join(RECORDS))


@pytest.mark.parametrize(
    ("change", "by", "expected"),
    [
        ("||F||||20240314100001", "||Z||||20240314100001", "R-9 segment 4: result status 'Z'"),
        ("|20240314100001", "|2024-03-14", "R-13 segment 4: '2024-03-14' is not a timestamp"),
        ("R|1|^^^GLU^Glucose|", "R|1||", "R-3 segment 4: universal test id is empty"),
        ("H|\\^&|", "H|\\^^|", "H-2 segment 1: delimiter definition"),
        ("L|1|N", "X|1|N", "X-1 segment 11: unknown record type"),
    ],
)
def test_errors_are_precise(change: str, by: str, expected: str) -> None:
    text = "\n".join(RECORDS).replace(change, by, 1)
    with pytest.raises(DeviceParseError) as caught:
        parse_astm(text)
    assert expected in str(caught.value)


def test_results_without_order_or_terminator_are_kept_with_warnings() -> None:
    (msg,) = parse_astm("H|\\^&\nR|1|^^^GLU|5.4|mmol/L||||F")
    assert msg.observations[0].numeric == Decimal("5.4")
    assert any("result before any O record" in w for w in msg.warnings)
    assert any("without an L terminator" in w for w in msg.warnings)


def test_strip_frames_passes_plain_text_through() -> None:
    assert strip_frames(b"H|\\^&\r") == (b"H|\\^&\r", [])


def test_query_only_session_has_no_results() -> None:
    outcome = process_bytes(b"H|\\^&\rQ|1|^S-100||ALL\rL|1|N\r", "serial")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.NO_OBSERVATIONS
