"""Property tests: whatever bytes arrive, process_bytes returns results or an inbox reason - and it is the
parsers, not the last-resort ``except`` in process_bytes, that cope (``internal_error`` counts as a failure)."""

from __future__ import annotations

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.devices.hl7_acks import _plain_ack, build_ack
from connectors.devices.hl7_reader import FieldReader
from connectors.devices.hl7_text import normalise_hl7, parse_tree, split_hl7_messages
from connectors.devices.outcome import InboxReasonCode, ParseOutcome, hl7_ack_for, process_bytes
from tests.connectors.devices.devices_support import SAMPLES

HL7_SAMPLES = [p.read_bytes() for p in sorted((SAMPLES / "hl7").glob("*.hl7"))]
ASTM_SAMPLES = [p.read_bytes() for p in sorted((SAMPLES / "astm").iterdir())]

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_well_formed(outcome: ParseOutcome) -> None:
    assert isinstance(outcome, ParseOutcome)
    if outcome.inbox is None:
        assert outcome.messages or outcome.imaging is not None
        assert all(m.observations for m in outcome.messages)
    else:
        assert outcome.inbox.code is not InboxReasonCode.INTERNAL_ERROR, outcome.inbox.detail
        assert outcome.inbox.detail


def _mutations(segment_sep: bytes) -> st.SearchStrategy:
    junk = st.binary(min_size=0, max_size=12) | st.sampled_from(
        [
            b"abc",
            b"1e5",
            b"NaN",
            b"-",
            b"<",
            b"^",
            b"~",
            b"\\",
            b"&",
            b"|",
            b"\\.spX\\",
            b"\\X4\\",
            b"99999999999999",
        ]
    )
    return st.lists(
        st.tuples(
            st.sampled_from(["drop", "dup", "swap", "field", "truncate", "insert", "sep", "msh2"]),
            st.integers(min_value=0, max_value=10_000),
            junk,
        ),
        min_size=1,
        max_size=5,
    )


def _mutate(raw: bytes, ops: list[tuple[str, int, bytes]], sep: bytes) -> bytes:
    lines = (
        raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r").split(b"\r") if sep == b"\r" else raw.split(b"\n")
    )
    for op, n, junk in ops:
        if not lines:
            lines = [junk]
        i = n % len(lines)
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = (n // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "field":
            fields = lines[i].split(b"|")
            fields[n % len(fields)] = junk
            lines[i] = b"|".join(fields)
        elif op == "truncate":
            lines[i] = lines[i][: n % (len(lines[i]) + 1)]
        elif op == "insert":
            pos = n % (len(lines[i]) + 1)
            lines[i] = lines[i][:pos] + junk + lines[i][pos:]
        elif op == "sep":
            sep = [b"\r", b"\n", b"\r\n", b"\n\r", b"|"][n % 5]
        elif op == "msh2" and lines[0][:3] in (b"MSH", b"H|\\"):
            lines[0] = lines[0][:3] + junk[:5] + lines[0][8:]
    return sep.join(lines)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(raw: bytes) -> None:
    outcome = process_bytes(raw, "fuzz")
    assert_well_formed(outcome)
    ack = hl7_ack_for(raw, outcome)
    assert b"MSA|" in ack or b"MSA" in ack


@FUZZ
@given(
    prefix=st.sampled_from([b"MSH|^~\\&|", b"H|\\^&|", b"\x0bMSH|", b"\xef\xbb\xbfMSH|^~\\&", b"MSH"]),
    body=st.text(alphabet="MSHOBXPIDNTE|^~\\&\r\n0123456789.<>-_ FR", max_size=300),
)
def test_header_shaped_noise_never_raises(prefix: bytes, body: str) -> None:
    raw = prefix + body.encode()
    outcome = process_bytes(raw, "fuzz")
    assert_well_formed(outcome)
    hl7_ack_for(raw, outcome)


@FUZZ
@given(sample=st.sampled_from(HL7_SAMPLES), ops=_mutations(b"\r"))
def test_mutated_hl7_messages_parse_or_go_to_inbox(sample: bytes, ops: list) -> None:
    raw = _mutate(sample, ops, b"\r")
    outcome = process_bytes(raw, "fuzz")
    assert_well_formed(outcome)
    ack = hl7_ack_for(raw, outcome)
    assert ack.endswith(b"\r")
    if outcome.ok:
        assert ack.split(b"\r")[1].startswith(b"MSA|AA")


@FUZZ
@given(
    sample=st.sampled_from(HL7_SAMPLES), junk=st.sampled_from(["abc", "1.2.3", "NaN", "1e5", "--1", "0x1F"])
)
def test_a_non_number_in_an_nm_value_is_always_caught(sample: bytes, junk: str) -> None:
    text = sample.decode("utf-8-sig")
    segments = text.split("\r")
    nm = [i for i, s in enumerate(segments) if s.startswith("OBX|") and s.split("|")[2] == "NM"]
    if not nm:
        return
    fields = segments[nm[0]].split("|")
    fields[5] = junk
    segments[nm[0]] = "|".join(fields)
    outcome = process_bytes("\r".join(segments).encode(), "fuzz")
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.HL7_INVALID
    assert f"OBX-5 segment {nm[0] + 1}: NM value '{junk}' is not a number" in outcome.inbox.detail


@FUZZ
@given(sample=st.sampled_from(ASTM_SAMPLES), ops=_mutations(b"\n"))
def test_mutated_astm_transcripts_parse_or_go_to_inbox(sample: bytes, ops: list) -> None:
    outcome = process_bytes(_mutate(sample, ops, b"\n"), "fuzz")
    assert_well_formed(outcome)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_framed_noise_never_raises(chunks: list[bytes]) -> None:
    raw = b"H|\\^&\r" + b"".join(
        b"\x02" + str(i % 8).encode() + c + b"\x03" + b"ZZ\r\n" for i, c in enumerate(chunks)
    )
    assert_well_formed(process_bytes(raw, "fuzz"))


@pytest.mark.parametrize("code", ["AA", "AE", "AR"])
def test_ack_builder_survives_every_sample(code: str) -> None:
    for sample in HL7_SAMPLES:
        assert b"MSA" in build_ack(sample, code, "x|y^z").encode()


def _library_ack(padded_header: str, code: str) -> str | None:
    """What build_ack makes through hl7's create_ack (its timestamp, MSH-7, blanked); None if that fails."""
    try:
        ack = parse_tree(padded_header).create_ack(ack_code=code, message_id="C-1")
    except Exception:
        return None
    return _blank_timestamp(str(ack).rstrip("\r") + "\r")


def _blank_timestamp(ack: str) -> str:
    fields = ack.split(ack[3])
    return ack[3].join(fields[:6] + [""] + fields[7:])


def _padded(header: str) -> str:
    return header + header[3] * max(13 - len(header.split(header[3])), 0)


def test_plain_ack_is_the_librarys_for_every_sample() -> None:
    plain = 0
    for sample in HL7_SAMPLES:
        text, _ = normalise_hl7(sample)
        for chunk in split_hl7_messages(text):
            header = _padded(chunk.split("\r", 1)[0])
            got = _plain_ack(header, "AA", "C-1")
            if got is not None:
                plain += 1
                assert _blank_timestamp(got) == _library_ack(header, "AA"), header
    assert plain >= min(len(HL7_SAMPLES), 3)  # the plain path is the one real messages take


@given(
    encoding=st.sampled_from(["^~\\&", "^~\\", "#*!%", "^~", "^^\\&"]),
    lead=st.sampled_from(["MSH", " MSH", "MSx"]),
    fields=st.lists(st.text(alphabet="ab1 ^~&\\#*!%", max_size=12), max_size=12),
    code=st.sampled_from(["AA", "AE", "AR"]),
)
@settings(max_examples=400, deadline=None)
def test_plain_ack_is_the_librarys(encoding: str, lead: str, fields: list[str], code: str) -> None:
    """The ACK written out from the header's text is, byte for byte, what hl7's create_ack builds; when the
    header is not plain enough to be sure of that, it declines and the library's way is taken."""
    header = "|".join([f"{lead}|{encoding}", *fields])
    got = _plain_ack(_padded(header), code, "C-1")
    if got is not None:
        assert _blank_timestamp(got) == _library_ack(_padded(header), code)
        assert build_ack(header.encode(), code, control_id="C-1")[:20] == got[:20]


_FIELD_TEXT = st.text(alphabet="ab1 ^~&\\.HXE", max_size=14)


@given(
    fields=st.lists(_FIELD_TEXT, min_size=1, max_size=6),
    path=st.tuples(*(st.integers(1, 4) for _ in range(4))),
)
@settings(max_examples=200, deadline=None)
def test_field_reader_answers_as_extract_field(fields, path):
    """The reader walks the parsed tree itself (for speed); it must agree with the library's extract_field."""
    message = hl7.parse("MSH|^~\\&|A|B|||20240101||ORU^R01|1|P|2.5.1\rOBX|" + "|".join(fields))
    segment = message[1]
    f, r, c, s = path
    reader = FieldReader()
    got = reader.get(segment, 2, f, r, c, s)
    try:
        expected = str(segment.extract_field(1, f, r, c, s)).strip()
    except IndexError:
        expected = ""
    except (ValueError, TypeError):
        assert got == "" and reader.issues
        return
    assert got == expected
    assert not reader.issues


def _same_tree(ours: object, library: object) -> bool:
    """Equal values, node for node of the same class with the same separators and escape character."""
    if type(ours) is not type(library):
        return False
    if isinstance(library, str):
        return ours == library
    if (ours.separator, ours.esc, ours.separators) != (library.separator, library.esc, library.separators):
        return False
    return len(ours) == len(library) and all(_same_tree(a, b) for a, b in zip(ours, library, strict=True))


def test_parse_tree_is_the_librarys_for_every_sample() -> None:
    for sample in HL7_SAMPLES:
        text, _ = normalise_hl7(sample)
        for chunk in split_hl7_messages(text):
            if chunk.startswith("MSH"):
                assert _same_tree(parse_tree(chunk), hl7.parse(chunk)), chunk[:60]


@given(
    encoding=st.sampled_from(["^~\\&", "^~\\", "#*!%$", "^~"]),
    fields=st.lists(st.text(alphabet="ab1 ^~&\\#*!%$|\r", max_size=20), max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_parse_tree_is_the_librarys(encoding: str, fields: list[str]) -> None:
    """``parse_tree`` only memoises ``hl7``'s parse plan: whatever the text, it builds the library's tree."""
    text = f"MSH|{encoding}|A|B|||20240101||ORU^R01|1|P|2.5.1\r" + "|".join(fields)
    try:
        expected = hl7.parse(text)
    except Exception as exc:  # the library's own failures must stay the same failures
        with pytest.raises(type(exc)):
            parse_tree(text)
        return
    assert _same_tree(parse_tree(text), expected)


@given(
    fields=st.lists(_FIELD_TEXT, min_size=1, max_size=6),
    f=st.integers(1, 7),
    r=st.integers(1, 3),
    count=st.integers(1, 9),
)
@settings(max_examples=200, deadline=None)
def test_field_parts_answer_as_get(fields, f, r, count):
    """``parts`` (several components in one walk) gives what ``get`` gives for each of them."""
    segment = hl7.parse("MSH|^~\\&|A|B|||20240101||ORU^R01|1|P|2.5.1\rOBX|" + "|".join(fields))[1]
    one, many = FieldReader(), FieldReader()
    assert many.parts(segment, 2, f, count, r) == [one.get(segment, 2, f, r, c) for c in range(1, count + 1)]
    assert [str(i) for i in many.issues] == [str(i) for i in one.issues]
