"""What makes two device messages "the same": a hash of their content without the envelope of a transmission.

A control id (HL7 MSH-10, ASTM H-3, a DICOM SOP Instance UID) does not tell messages apart: analysers reuse
them (some send the same one for every message) and public sample sets share one across patients. So a
message is a duplicate only when its *content* is the same as an earlier one's. A resend may change only what
describes the transmission itself, and those fields are left out of the hash:

- HL7 v2: MSH-7 (date/time of the message) and MSH-10 (its control id), and the same two fields of a batch's
  FHS/BHS headers (FHS-7/FHS-11, BHS-7/BHS-11). An engine that resends restamps the time, and some (a
  "resubmit" in an interface engine) give the copy a fresh control id; neither says anything about the
  result. Every other field counts - also the routing fields (MSH-3 to MSH-6) and anything in the body
  (ORC-9 included), because wrongly calling a new result a duplicate loses it, while wrongly calling a resend
  new only loads rows that are already there.
- ASTM E1394: H-3 (control id) and H-14 (date/time of the message); the E1381 framing (frame numbers and
  checksums, which a re-framed resend changes) and the `#` comment lines of a transcript are not content.
- DICOM: the file meta group (0002,xxxx) - transfer syntax aside, it names the application that wrote the
  file (source AE title, implementation version), which a re-export changes; the dataset itself is hashed.

The wire layer never counts either: MLLP framing, a UTF-8 BOM, blank lines, `\\r` / `\\n` / `\\r\\n` as
segment ends, blanks at the end of a segment and empty trailing fields (an absent field is an empty one).

It runs once per message on the MLLP listener's event loop, so it works on bytes (no decoding, no parse):
about 10 µs for a 20-result panel.
"""

from __future__ import annotations

import hashlib
import re

from connectors.devices.astm import strip_frames

__all__ = ["content_fingerprint"]

_SEGMENT_END = re.compile(rb"\r\n|\r|\n")
# HL7 envelope fields per header segment, as indexes into segment.split(field separator): MSH-n is at n - 1
# (MSH-1 is the separator itself), FHS-n and BHS-n likewise.
_HL7_ENVELOPE = {b"MSH": (6, 9), b"FHS": (6, 10), b"BHS": (6, 10)}
# ASTM H-3 and H-14 as indexes into the H record's text after "H" + the four delimiters, split on the field
# delimiter: that text starts with the delimiter that ends H-2, so H-n is at n - 2.
_ASTM_ENVELOPE = (1, 12)
_DICOM_META_LENGTH = b"\x02\x00\x00\x00UL\x04\x00"  # tag (0002,0000), explicit VR "UL", 4 bytes


def content_fingerprint(raw: bytes, detected_format: str) -> str | None:
    """SHA-256 (hex) of the message's content without its transmission envelope; None for a format that has
    no known envelope (then only identical bytes are the same, decided elsewhere)."""
    if detected_format == "hl7v2":
        normalised = _hl7(raw)
    elif detected_format == "astm":
        normalised = _astm(raw)
    elif detected_format == "dicom":
        normalised = _dicom(raw)
    else:
        return None
    return hashlib.sha256(normalised).hexdigest()


def _hl7(raw: bytes) -> bytes:
    text = raw.strip(b"\x0b\x1c\r\n\t \x00")
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:].lstrip(b"\x0b\r\n\t ")
    separator = text[3:4] or b"|"
    kept: list[bytes] = []
    for segment in _SEGMENT_END.split(text):
        segment = segment.rstrip(b" \t\x00")
        envelope = _HL7_ENVELOPE.get(segment[:3])
        if envelope is not None and len(segment) > 3:
            fields = segment.split(segment[3:4])
            for index in envelope:
                if index < len(fields):
                    fields[index] = b""
            segment = segment[3:4].join(fields)
        segment = segment.rstrip(separator)
        if segment.strip():
            kept.append(segment)
    return b"\r".join(kept)


def _astm(raw: bytes) -> bytes:
    data, _ = strip_frames(raw.removeprefix(b"\xef\xbb\xbf"))
    kept: list[bytes] = []
    field = b"|"  # the H record declares the delimiters of the records after it
    for line in _SEGMENT_END.split(data):
        record = line.strip(b" \t\x05\x06\x15\x04\x00")
        if not record or record.startswith(b"#"):
            continue
        if record[:1] in (b"H", b"h") and len(record) > 5:
            field = record[1:2]
            fields = record[5:].split(field)
            for index in _ASTM_ENVELOPE:
                if index < len(fields):
                    fields[index] = b""
            record = record[:5] + field.join(fields).rstrip(field)
        else:
            record = record.rstrip(field)
        kept.append(record)
    return b"\r".join(kept)


def _dicom(raw: bytes) -> bytes:
    if raw[128:132] != b"DICM" or raw[132:140] != _DICOM_META_LENGTH:
        return raw  # no Part 10 meta group (a bare dataset): the bytes are the content
    meta_length = int.from_bytes(raw[140:144], "little")
    return raw[144 + meta_length :]
