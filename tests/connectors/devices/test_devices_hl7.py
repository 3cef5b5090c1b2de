"""HL7 v2 reader and ACK builder on hand-written veterinary messages and edge cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import hl7
import pytest

from connectors.devices.hl7_acks import build_ack, build_garbage_nack
from connectors.devices.hl7_parse import parse_hl7, parse_hl7_batch
from connectors.devices.model import DeviceParseError, FieldIssue
from connectors.devices.outcome import InboxReasonCode, hl7_ack_for, process_bytes
from connectors.devices.values import parse_reference_range, parse_timestamp


def _pid(**fields: str) -> str:
    parts = ["PID"] + [""] * 36
    for key, value in fields.items():
        parts[int(key[1:])] = value
    return "|".join(parts).rstrip("|")


VET_ORU = "\r".join(
    [
        "MSH|^~\\&|VetScan HM5|Kliniek Zuid|VetConnect|Praktijk 12|20240314101500+0100||ORU^R01^ORU_R01|HM5-0001|P|2.5.1",
        _pid(
            f1="1",
            f3="985112000123456^^^ISO^MC~A-1001^^^PRAKTIJK12^PI",
            f5="de Vries^Bello",
            f7="20190301",
            f8="M",
            f35="448771007^Canis lupus familiaris^SCT",
            f36="132395005^Labrador retriever^SCT",
        ),
        "NK1|1|de Vries^Anna|OWN^Owner^HL70063",
        "ORC|RE|PL-77|ACC-2024-0042",
        "OBR|1|PL-77|ACC-2024-0042|CBC^Complete blood count^L|||20240314100000+0100|||||||||||||||||F",
        "OBX|1|NM|WBC^White blood cells^L||18.2|10*9/L^^UCUM|6.0-17.0|H|||F|||20240314100500+0100",
        "NTE|1|L|Sample slightly lipaemic",
        "OBX|2|SN|GLU^Glucose^L||<^2.0|mmol/L|3.5 - 5.0|L~A|||P",
        "OBX|3|SN|TITER^Leptospira titer^L||^1^:^128|||N|||C",
        "OBX|4|CWE|MORPH^Morphology^L||NEG^Negative^L||||||F",
        "OBX|5|TX|REMARK^Remark^L||Line one~Line two with \\T\\ and \\F\\||||||F",
        "OBX|6|NM|HCT^Haematocrit^L||0.45|L/L|>0.37||||F",
    ]
)


def test_veterinary_message_fields() -> None:
    msg = parse_hl7(VET_ORU)
    pat = msg.patient
    assert pat.microchip == "985112000123456"
    assert [(i.value, i.type_code, i.assigning_authority) for i in pat.identifiers] == [
        ("985112000123456", "MC", "ISO"),
        ("A-1001", "PI", "PRAKTIJK12"),
    ]
    assert pat.name == "Bello de Vries"
    assert pat.owner_name == "Anna de Vries"
    assert pat.species is not None
    assert (pat.species.code, pat.species.text) == ("448771007", "Canis lupus familiaris")
    assert pat.breed is not None
    assert pat.breed.text == "Labrador retriever"
    assert pat.birth_date == date(2019, 3, 1)
    assert msg.orders[0].accession == "ACC-2024-0042"

    wbc, glu, titer, morph, remark, hct = msg.observations
    assert wbc.numeric == Decimal("18.2")
    assert wbc.comments == ("Sample slightly lipaemic",)
    assert (wbc.reference_range.low, wbc.reference_range.high) == (Decimal("6.0"), Decimal("17.0"))
    assert (glu.comparator, glu.numeric, glu.abnormal_flags) == ("<", Decimal("2.0"), ("L", "A"))
    assert (glu.reference_range.low, glu.reference_range.high) == (Decimal("3.5"), Decimal("5.0"))
    assert glu.status_category == "preliminary"
    assert (titer.numeric, titer.separator, titer.numeric_2) == (Decimal("1"), ":", Decimal("128"))
    assert titer.status_category == "corrected"
    assert morph.coded is not None
    assert (morph.coded.code, morph.value_text) == ("NEG", "Negative")
    assert remark.value_text == "Line one\nLine two with & and |"
    assert (hct.reference_range.low, hct.reference_range.high_inclusive) == (Decimal("0.37"), True)
    assert hct.reference_range.low_inclusive is False


def test_owner_from_second_pid5_repetition_when_no_nk1() -> None:
    text = VET_ORU.replace("NK1|1|de Vries^Anna|OWN^Owner^HL70063\r", "").replace(
        "de Vries^Bello", "de Vries^Bello~de Vries^Anna"
    )
    assert parse_hl7(text).patient.owner_name == "Anna de Vries"


@pytest.mark.parametrize(
    "wire",
    [
        VET_ORU,
        VET_ORU.replace("\r", "\n"),
        VET_ORU.replace("\r", "\r\n"),
        "\ufeff" + VET_ORU + "\r\r",
        "\x0b" + VET_ORU + "\x1c\r",
    ],
    ids=["cr", "lf", "crlf", "bom-and-trailing-blank-lines", "mllp-framed"],
)
def test_segment_separators_bom_and_mllp_bytes_all_parse_the_same(wire: str) -> None:
    reference = parse_hl7(VET_ORU)
    assert parse_hl7(wire.encode("utf-8")) == reference


def test_custom_encoding_characters_from_msh2() -> None:
    custom = VET_ORU.translate(str.maketrans({"|": "!", "^": "$", "~": "@", "&": "%"}))
    assert custom.startswith("MSH!$@\\%!")
    parsed = parse_hl7(custom)
    reference = parse_hl7(VET_ORU).observations
    assert parsed.observations[:4] + parsed.observations[5:] == reference[:4] + reference[5:]
    # \T\ and \F\ stand for this message's own sub-component and field separators.
    assert parsed.observations[4].value_text == "Line one\nLine two with % and !"
    issue = FieldIssue("OBX-5", 7, "NM value 'abc' is not a number")
    ack = build_ack(custom, "AE", "a|b", [issue])
    segments = ack.rstrip("\r").split("\r")
    assert segments[0].startswith("MSH!$@\\%!")
    assert segments[1].startswith("MSA!AE!HM5-0001!a|b")  # '|' is not a delimiter in this message
    assert segments[2].startswith("ERR!!OBX$7$5!102$Data type error$HL70357!E")


def test_latin1_bytes_are_decoded() -> None:
    raw = VET_ORU.replace("Bello", "Bellé").encode("latin-1")
    msg = parse_hl7(raw)
    assert msg.patient.name == "Bellé de Vries"
    assert any("ISO 8859-1" in w for w in msg.warnings)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("|18.2|", "|abc|", "OBX-5 segment 6: NM value 'abc' is not a number (OBX 1)"),
        ("<^2.0", "<^two", "OBX-5 segment 8: SN value '<^two': 'two' is not a number (OBX 2)"),
        ("<^2.0", "=<^2.0", "OBX-5 segment 8: SN comparator '=<'"),
        ("|||F|||20240314100500+0100", "|||Z|||20240314100500+0100", "OBX-11 segment 6: result status 'Z'"),
        ("20240314100500+0100", "20241314", "OBX-14 segment 6: '20241314' is not a valid date/time"),
        ("|HM5-0001|", "||", "MSH-10 segment 1: message control id is empty"),
        ("WBC^White blood cells^L", "", "OBX-3 segment 6: observation identifier is empty (OBX 1)"),
        ("OBX|6|NM", "OBX|6|", "OBX-2 segment 12: value type is empty but OBX-5 holds a value (OBX 6)"),
        ("MSH|^~\\&|", "MSH|^^\\&|", "MSH-2"),
        ("NTE|1|L|", "nte|1|L|", "'nte' is not a segment id"),
    ],
)
def test_errors_name_segment_field_and_expectation(replace: str, by: str, expected: str) -> None:
    bad = VET_ORU.replace(replace, by, 1)
    assert bad != VET_ORU
    with pytest.raises(DeviceParseError) as caught:
        parse_hl7(bad)
    assert expected in str(caught.value)
    outcome = process_bytes(bad.encode(), "test")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.HL7_INVALID
    assert expected in outcome.inbox.detail


def test_all_errors_are_reported_together() -> None:
    bad = VET_ORU.replace("|18.2|", "|abc|").replace("<^2.0", "<^x")
    with pytest.raises(DeviceParseError) as caught:
        parse_hl7(bad)
    assert [i.location for i in caught.value.issues] == ["OBX-5", "OBX-5"]
    assert [i.segment for i in caught.value.issues] == [6, 8]


def test_nm_with_comparator_is_read_with_a_warning() -> None:
    msg = parse_hl7(VET_ORU.replace("|18.2|", "|<0.5|"))
    wbc = msg.observations[0]
    assert (wbc.comparator, wbc.numeric) == ("<", Decimal("0.5"))
    assert any("carries a comparator" in w for w in msg.warnings)


def test_bad_escape_sequence_is_an_error_not_a_crash() -> None:
    with pytest.raises(DeviceParseError, match=r"OBX-5 segment 11: invalid escape sequence"):
        parse_hl7(VET_ORU.replace("Line one", "Line \\.spX\\ one"))


def test_batch_file_with_two_messages_and_envelopes() -> None:
    second = VET_ORU.replace("HM5-0001", "HM5-0002")
    text = "FHS|^~\\&|VetScan\rBHS|^~\\&\r" + VET_ORU + "\r" + second + "\rBTS|2\rFTS|1"
    messages = parse_hl7_batch(text)
    assert [m.message_control_id for m in messages] == ["HM5-0001", "HM5-0002"]
    outcome = process_bytes(text.encode(), "file-drop", "batch.hl7")
    assert outcome.ok
    assert len(outcome.messages) == 2
    broken = text.replace("|18.2|", "|x|", 1)
    with pytest.raises(DeviceParseError, match=r"message 1 of 2: NM value 'x'"):
        parse_hl7_batch(broken)


def test_unsupported_message_type_goes_to_inbox_and_is_rejected() -> None:
    adt = VET_ORU.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")
    outcome = process_bytes(adt.encode(), "mllp")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.UNSUPPORTED_MESSAGE_TYPE
    ack = hl7.parse(hl7_ack_for(adt.encode(), outcome).decode())
    assert str(ack.segment("MSA")(1)) == "AR"
    assert str(ack.segment("ERR")(3)(1)(1)) == "200"


def test_ack_accept_echoes_control_id_and_swaps_applications() -> None:
    outcome = process_bytes(VET_ORU.encode(), "mllp")
    ack = hl7.parse(hl7_ack_for(VET_ORU.encode(), outcome).decode())
    msh, msa = ack.segment("MSH"), ack.segment("MSA")
    assert str(msh(9)) == "ACK^R01^ACK"
    assert str(msh(3)) == "VetConnect"
    assert str(msh(5)) == "VetScan HM5"
    assert (str(msa(1)), str(msa(2))) == ("AA", "HM5-0001")


def test_ack_error_lists_every_issue_in_err_segments() -> None:
    bad = VET_ORU.replace("|18.2|", "|abc|").replace("<^2.0", "<^x").encode()
    outcome = process_bytes(bad, "mllp")
    ack = hl7.parse(hl7_ack_for(bad, outcome).decode())
    assert str(ack.segment("MSA")(1)) == "AE"
    assert "NM value 'abc' is not a number" in ack.unescape(str(ack.segment("MSA")(3)))
    errs = ack.segments("ERR")
    assert [str(e(2)) for e in errs] == ["OBX^6^5", "OBX^8^5"]
    assert all(str(e(4)) == "E" for e in errs)


def test_garbage_gets_a_parseable_nack() -> None:
    for raw in (b"\x00\xffhello", b"MSH|^^^|broken|||||||CTRL-9|P", b""):
        outcome = process_bytes(raw, "mllp")
        nack = hl7.parse(hl7_ack_for(raw, outcome).decode())
        assert str(nack.segment("MSA")(1)) in ("AR", "AE")
    echoed = hl7.parse(build_garbage_nack(b"MSH|^^^|broken|||||||CTRL-9|P", "bad MSH-2"))
    assert str(echoed.segment("MSA")(2)) == "CTRL-9"
    assert str(echoed.segment("MSA")(3)) == "bad MSH-2"


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("70-105", "70", "105"),
        ("70_105", "70", "105"),
        ("3.5 - 5.0", "3.5", "5.0"),
        ("4.3 to 6.2", "4.3", "6.2"),
        ("-2 - 2", "-2", "2"),
        ("<5", None, "5"),
        ("<= 5", None, "5"),
        (">10", "10", None),
        ("70-105 mg/dL", "70", "105"),
        ("negative", None, None),
        ("1-2 weeks: 50-100", None, None),
        ("105-70", None, None),
    ],
)
def test_reference_range_forms(text: str, low: str | None, high: str | None) -> None:
    rng = parse_reference_range(text)
    assert rng is not None
    assert rng.low == (Decimal(low) if low else None)
    assert rng.high == (Decimal(high) if high else None)
    assert rng.text == text


def test_timestamps() -> None:
    assert parse_timestamp("2024") is not None
    assert parse_timestamp("20240314101500.123+0100").microsecond == 123000
    assert parse_timestamp("") is None
    for bad in ("2024-03-14", "20240230", "2024031410150+2500", "abc"):
        with pytest.raises(ValueError, match="'"):
            parse_timestamp(bad)


def test_an_accepted_message_whose_header_the_library_cannot_answer_is_still_acknowledged_aa() -> None:
    # Found by the fuzz test: junk inside MSH-9 left "ORU" without trigger event; the message loaded, yet the
    # answer was a reject (AR), which makes a sender resend results that are already stored.
    raw = b"MSH|^~\\&|LAB|LAB|VC|VC|20240101||ORU|\x00^R01|P|2.5.1\rPID|||1\r"
    ack = build_ack(raw, "AA").split("\r")
    assert ack[1].startswith("MSA|AA")
    assert build_ack(b"not hl7 at all", "AE", "bad").split("\r")[1].startswith("MSA|AE")
