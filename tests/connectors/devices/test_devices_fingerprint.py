"""When two device messages are "the same" (a duplicate): by content without the transmission envelope, never by
control id alone. Pure: parse + map + key, no database (the database side is test_devices_duplicates.py)."""

from __future__ import annotations

import io

import pydicom
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.devices.fingerprint import content_fingerprint
from connectors.devices.ingest import parse_raw
from tests.connectors.devices.devices_support import SAMPLES
from warehouse.ingest.devices.raw import dedup_key_for


def key(raw: bytes) -> str | None:
    return dedup_key_for(parse_raw(raw, "test"))


# --- HL7: a generated ORU^R01 and its variations --------------------------------------------------------------

field = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789 .-", min_size=1, max_size=12
)
stamp = st.datetimes().map(lambda d: d.strftime("%Y%m%d%H%M%S"))
observation = st.fixed_dictionaries(
    {"code": field, "value": field, "unit": field, "flag": st.sampled_from(["N", "H", "L", ""]), "at": stamp}
)
message = st.fixed_dictionaries(
    {
        "sender": field,
        "control_id": field,
        "sent": stamp,
        "patient_id": field,
        "chip": st.from_regex(r"[0-9]{15}", fullmatch=True),
        "name": field,
        "owner": field,
        "accession": field,
        "observations": st.lists(observation, min_size=1, max_size=4),
    }
)


def oru(m: dict, *, line_end: str = "\r", framed: bool = False) -> bytes:
    segments = [
        f"MSH|^~\\&|{m['sender']}|Kliniek|VetConnect|Praktijk|{m['sent']}||ORU^R01^ORU_R01|{m['control_id']}|P|2.5.1",
        f"PID|1||{m['chip']}^^^ISO^MC~{m['patient_id']}^^^PRAKTIJK^PI||{m['name']}^Dier||20190301|M",
        f"NK1|1|{m['owner']}^Anna|OWN^Owner^HL70063",
        f"ORC|RE|PL-77|{m['accession']}",
        f"OBR|1|PL-77|{m['accession']}|CBC^Complete blood count^L|||{m['sent']}|||||||||||||||||F",
        *(
            f"OBX|{n}|ST|{o['code']}^{o['code']}^L||{o['value']}|{o['unit']}||{o['flag']}|||F|||{o['at']}"
            for n, o in enumerate(m["observations"], start=1)
        ),
    ]
    raw = line_end.join(segments).encode()
    return b"\x0b" + raw + b"\x1c\r" if framed else raw


# Fields of the content: a change in any of them makes another message (a patient's, or another result).
CONTENT_FIELDS = ("sender", "patient_id", "chip", "name", "owner", "accession")
OBSERVATION_FIELDS = ("code", "value", "unit", "flag", "at")


@settings(max_examples=200, deadline=None)
@given(message, st.data())
def test_messages_that_differ_in_a_patient_or_observation_field_are_never_duplicates(m, data):
    other = dict(m)
    if data.draw(st.booleans(), label="change an observation"):
        n = data.draw(st.integers(0, len(m["observations"]) - 1), label="which")
        name = data.draw(st.sampled_from(OBSERVATION_FIELDS), label="field")
        changed = dict(m["observations"][n])
        changed[name] = data.draw(field.filter(lambda v: v.rstrip() != changed[name].rstrip()), label="value")
        other["observations"] = [*m["observations"][:n], changed, *m["observations"][n + 1 :]]
    else:
        name = data.draw(st.sampled_from(CONTENT_FIELDS), label="field")
        strategy = st.from_regex(r"[0-9]{15}", fullmatch=True) if name == "chip" else field
        other[name] = data.draw(strategy.filter(lambda v: v.rstrip() != m[name].rstrip()), label="value")
    # The same control id (and time) on purpose: what analysers that reuse control ids send.
    assert key(oru(m)) is not None
    assert key(oru(other)) != key(oru(m))


@settings(max_examples=200, deadline=None)
@given(message, stamp, field, st.sampled_from(["\r", "\n", "\r\n"]), st.booleans())
def test_messages_that_differ_only_in_what_a_resend_changes_are_always_duplicates(
    m, resent_at, new_control_id, line_end, framed
):
    resent = m | {"sent": resent_at, "control_id": new_control_id}
    # The OBR carries the original time as observation time: only MSH-7 is restamped by a resend.
    original = oru(m)
    again = oru(resent, line_end=line_end, framed=framed).replace(
        f"|{resent_at}|||||||||||||||||F".encode(), f"|{m['sent']}|||||||||||||||||F".encode()
    )
    assert key(again) == key(original) is not None


def test_a_real_sample_restamped_and_given_a_new_control_id_is_the_same_message():
    raw = (SAMPLES / "hl7/lri_nist_cbc_typical.hl7").read_bytes()
    resent = raw.replace(b"|20110531140551-0500|", b"|20260301090000+0100|").replace(
        b"|NIST-LRI-NG-002.00|", b"|RESEND-0001|"
    )
    assert resent != raw
    assert key(resent) == key(raw)
    # ... while the same control id on another patient's message is another message
    other_patient = raw.replace(
        b"PATID1234^^^NIST MPI^MR||Jones^William^A", b"PATID9999^^^NIST MPI^MR||Smit^Jan"
    )
    assert other_patient != raw and key(other_patient) != key(raw)


# --- ASTM and DICOM --------------------------------------------------------------------------------------------


def test_astm_resend_with_a_new_time_and_framing_is_the_same_but_another_value_is_not():
    raw = (SAMPLES / "astm/phadia_immunocap_lis2_sample.astm.txt").read_bytes()
    restamped = raw.replace(b"|P|1|20120522101251", b"|P|1|20260301090000")
    assert restamped != raw and key(restamped) == key(raw)
    # framed as E1381 (STX, frame number, ETX, checksum), without the transcript's comment lines
    records = [r for r in raw.replace(b"\r\n", b"\n").split(b"\n") if r and not r.startswith(b"#")]
    frames = b""
    for n, record in enumerate(records, start=1):
        body = str(n % 8).encode() + record + b"\r\x03"
        frames += b"\x02" + body + f"{sum(body) % 256:02X}".encode() + b"\r\n"
    assert key(frames) == key(raw)
    other_value = raw.replace(b"|9.34^^^^|", b"|12.1^^^^|")
    assert other_value != raw and key(other_value) != key(raw)


def _dicom(**changes: str) -> bytes:
    ds = pydicom.dcmread(SAMPLES / "dicom/CR_tiny_16x16_pydicom_6154.dcm")
    for name, value in changes.items():
        target = ds.file_meta if name.startswith("meta_") else ds
        setattr(target, name.removeprefix("meta_"), value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_dicom_reexported_by_another_application_is_the_same_but_another_animal_is_not():
    original = _dicom()
    reexported = _dicom(meta_SourceApplicationEntityTitle="OTHER_AE", meta_ImplementationVersionName="X_2")
    assert reexported != original and key(reexported) == key(original) is not None
    # the same SOP Instance UID (the DICOM control id) on another animal's image: another message
    other = _dicom(PatientName="Minoes^Jansen", PatientID="A-2002")
    assert parse_raw(other, "test").control_id == parse_raw(original, "test").control_id
    assert key(other) != key(original)


def test_unknown_bytes_have_no_fingerprint():
    assert content_fingerprint(b"\x00\x01 not a message", "unknown") is None
    assert key(b"\x00\x01 not a message") is None
