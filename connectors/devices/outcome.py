"""One entry point for everything a device sends: ``process_bytes(raw, source, filename) -> ParseOutcome``.

The format is detected from the content (an extension can lie: analysers write ``.txt`` for HL7 and ``.dat``
for ASTM), then parsed. The result is either parsed values for a loader, or an inbox reason a person can act
on. It never raises for bad input: the raw bytes must always reach the warehouse (architecture §6, "stored
raw first ... never dropped"), so an unexpected parser failure also becomes an inbox entry
(``internal_error``) rather than an exception that would lose the message.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from connectors.devices.model import DeviceParseError, FieldIssue, LabMessage

if TYPE_CHECKING:
    from connectors.devices.dicom import DicomStudy

__all__ = [
    "DetectedFormat",
    "InboxReason",
    "InboxReasonCode",
    "ParseOutcome",
    "detect_format",
    "hl7_ack_for",
    "process_bytes",
]

log = logging.getLogger(__name__)

DetectedFormat = Literal["hl7v2", "astm", "dicom", "unknown"]
# Lab results come as ORU (unsolicited results) or OUL (LAW/LRI results); anything else is not ours to load.
RESULT_MESSAGE_CODES = frozenset({"ORU", "OUL"})
_ASTM_HEADER = re.compile(rb"^\x02?[0-7]?H([^A-Za-z0-9\s])([^A-Za-z0-9\s])([^A-Za-z0-9\s])([^A-Za-z0-9\s])")


class InboxReasonCode(StrEnum):
    """Why a device message went to the inbox instead of the record."""

    EMPTY = "empty"
    UNRECOGNISED_FORMAT = "unrecognised_format"
    HL7_INVALID = "hl7_invalid"
    ASTM_INVALID = "astm_invalid"
    DICOM_INVALID = "dicom_invalid"
    UNSUPPORTED_MESSAGE_TYPE = "unsupported_message_type"
    NO_OBSERVATIONS = "no_observations"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class InboxReason:
    code: InboxReasonCode
    detail: str
    issues: tuple[FieldIssue, ...] = ()

    def __str__(self) -> str:
        return f"{self.code.value}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What one received blob turned into.

    Exactly one of these holds: ``inbox`` is None and ``messages`` (lab results) or ``imaging`` (DICOM) is
    filled - ready to load; or ``inbox`` says why a person must look. ``messages`` may be non-empty next to an
    inbox reason (e.g. ``no_observations``) so the inbox shows what was understood.
    """

    source: str
    filename: str | None
    detected_format: DetectedFormat
    sha256: str
    size: int
    messages: tuple[LabMessage, ...] = ()
    imaging: DicomStudy | None = None
    inbox: InboxReason | None = None

    @property
    def ok(self) -> bool:
        return self.inbox is None


def detect_format(raw: bytes, filename: str | None = None) -> DetectedFormat:
    """Tell HL7 v2, ASTM E1394 and DICOM apart by content; the extension only breaks a DICOM tie.

    DICOM files carry ``DICM`` at offset 128 (Part 10); a preamble-less dataset named ``.dcm`` is tried as
    DICOM too. HL7 starts with MSH/FHS/BHS once MLLP bytes, a BOM and blanks are removed. ASTM starts with an
    H record that declares its four delimiters, possibly inside a frame (STX + frame number) and after ``#``
    comment lines.
    """
    if len(raw) >= 132 and raw[128:132] == b"DICM":
        return "dicom"
    head = raw[:4096].lstrip(b"\xef\xbb\xbf\x0b\x00 \t\r\n")
    if head[:3] in (b"MSH", b"FHS", b"BHS"):
        return "hl7v2"
    for line in head.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        # ENQ/ACK/NAK/EOT are the E1381 link handshake a serial capture starts with.
        stripped = line.strip(b" \t\x00\x04\x05\x06\x15")
        if not stripped or stripped.startswith(b"#"):
            continue
        if _ASTM_HEADER.match(stripped):
            return "astm"
        break
    if filename and filename.lower().endswith((".dcm", ".dicom")):
        return "dicom"
    return "unknown"


def process_bytes(raw: bytes, source: str, filename: str | None = None) -> ParseOutcome:
    """Detect, parse and classify one received blob. Never raises for bad input."""
    digest = hashlib.sha256(raw).hexdigest()
    base = {"source": source, "filename": filename, "sha256": digest, "size": len(raw)}
    fmt: DetectedFormat = "unknown"
    try:
        if not raw.strip(b"\x0b\x1c\x00 \t\r\n\xef\xbb\xbf"):
            return ParseOutcome(
                detected_format="unknown",
                inbox=InboxReason(InboxReasonCode.EMPTY, f"received {len(raw)} bytes with no content"),
                **base,
            )
        fmt = detect_format(raw, filename)
        if fmt == "hl7v2":
            return _hl7(raw, base)
        if fmt == "astm":
            return _astm(raw, base)
        if fmt == "dicom":
            return _dicom(raw, base)
        snippet = raw[:40].decode("latin-1").encode("unicode_escape").decode("ascii")
        return ParseOutcome(
            detected_format="unknown",
            inbox=InboxReason(
                InboxReasonCode.UNRECOGNISED_FORMAT,
                f"not HL7 v2 (no MSH), ASTM (no H record) or DICOM (no DICM marker); starts with '{snippet}'",
            ),
            **base,
        )
    except Exception as exc:  # a parser bug must not lose the message: it goes to the inbox with the trace
        log.exception("device parser failed on %s (%s)", filename or "<stream>", source)
        return ParseOutcome(
            detected_format=fmt,
            inbox=InboxReason(InboxReasonCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"),
            **base,
        )


def _hl7(raw: bytes, base: dict) -> ParseOutcome:
    from connectors.devices.hl7_parse import parse_hl7_batch

    try:
        messages = parse_hl7_batch(raw)
    except DeviceParseError as exc:
        return ParseOutcome(
            detected_format="hl7v2",
            inbox=InboxReason(InboxReasonCode.HL7_INVALID, str(exc), exc.issues),
            **base,
        )
    return _classify_results("hl7v2", messages, base)


def _astm(raw: bytes, base: dict) -> ParseOutcome:
    from connectors.devices.astm import parse_astm

    try:
        messages = parse_astm(raw)
    except DeviceParseError as exc:
        return ParseOutcome(
            detected_format="astm",
            inbox=InboxReason(InboxReasonCode.ASTM_INVALID, str(exc), exc.issues),
            **base,
        )
    return _classify_results("astm", messages, base)


def _classify_results(fmt: DetectedFormat, messages: tuple[LabMessage, ...], base: dict) -> ParseOutcome:
    for number, msg in enumerate(messages, start=1):
        which = f"message {msg.message_control_id or number}"
        code = (msg.message_type or "").split("^", 1)[0]
        if fmt == "hl7v2" and code not in RESULT_MESSAGE_CODES:
            return ParseOutcome(
                detected_format=fmt,
                messages=messages,
                inbox=InboxReason(
                    InboxReasonCode.UNSUPPORTED_MESSAGE_TYPE,
                    f"{which} is {msg.message_type}; only ORU/OUL result messages are loaded",
                ),
                **base,
            )
        if not msg.observations:
            return ParseOutcome(
                detected_format=fmt,
                messages=messages,
                inbox=InboxReason(
                    InboxReasonCode.NO_OBSERVATIONS,
                    f"{which} has {len(msg.orders)} order(s) but no result "
                    f"({'OBX' if fmt == 'hl7v2' else 'R'} records)",
                ),
                **base,
            )
    return ParseOutcome(detected_format=fmt, messages=messages, **base)


def _dicom(raw: bytes, base: dict) -> ParseOutcome:
    from connectors.devices.dicom import DicomError, read_dicom

    try:
        study = read_dicom(raw)
    except DicomError as exc:
        return ParseOutcome(
            detected_format="dicom",
            inbox=InboxReason(InboxReasonCode.DICOM_INVALID, str(exc)),
            **base,
        )
    return ParseOutcome(detected_format="dicom", imaging=study, **base)


def hl7_ack_for(raw: bytes, outcome: ParseOutcome) -> bytes:
    """The HL7 acknowledgement to send back over MLLP for a processed message.

    ``AA`` once the message is stored and parsed - also when it went to the inbox for a person to match
    (``no_observations``): the sender did its job and must not resend. ``AE`` with ERR segments when the
    message could not be read, so the lab sees which field is wrong. ``AR`` when it is not a result message
    or not HL7 at all (a best-effort NACK for garbage).
    """
    from connectors.devices.hl7_acks import build_ack, build_garbage_nack

    reason = outcome.inbox
    if outcome.detected_format != "hl7v2":
        text = str(reason) if reason else f"{outcome.detected_format} content is not accepted on an HL7 link"
        return build_garbage_nack(raw, text).encode("utf-8")
    if reason is None:
        return build_ack(raw, "AA").encode("utf-8")
    if reason.code is InboxReasonCode.NO_OBSERVATIONS:
        return build_ack(raw, "AA", f"stored for review: {reason.detail}").encode("utf-8")
    if reason.code is InboxReasonCode.UNSUPPORTED_MESSAGE_TYPE:
        issue = FieldIssue("MSH-9", 1, reason.detail)
        return build_ack(raw, "AR", reason.detail, [issue], error_code="unsupported").encode("utf-8")
    error_code = "internal" if reason.code is InboxReasonCode.INTERNAL_ERROR else "datatype"
    return build_ack(raw, "AE", reason.detail, reason.issues, error_code=error_code).encode("utf-8")
