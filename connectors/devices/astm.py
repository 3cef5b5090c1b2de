"""ASTM E1394 / CLSI LIS2-A2 results → :class:`~connectors.devices.model.LabMessage` (one per patient).

Why a parser of our own: the PyPI ``astm`` package (0.5.0, 2013) is unmaintained; ``astm-2025`` (one 1.0.0
upload, June 2025) and ``astmio`` (1.0.0a3, an alpha) are republications of that code with no adoption. The
record layer is small - a record type letter, four delimiters declared by the H record, fields - so we own
these ~300 lines rather than pin an abandoned dependency.

What is accepted:

* the record layer as analysers log it (``H|\\^&|...`` lines separated by CR, LF or CRLF);
* the E1381 / LIS2-A2 frame layer around it (``<STX>`` frame number, text, ``<ETB>``/``<ETX>``, two hex
  checksum digits, CR LF), with checksums verified and ETB-split records joined;
* low-level link bytes (ENQ, ACK, NAK, EOT) between frames, which a serial capture contains;
* ``#`` comment lines, which transcripts such as the shared Phadia sample carry (they are not records).

Results become the same :class:`~connectors.devices.model.Observation` type as HL7 OBX: test code, value
(Decimal when numeric, with ``<``/``>`` comparators), unit, reference range, abnormal flags, result status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from connectors.devices.model import (
    CodedValue,
    DeviceParseError,
    FieldIssue,
    LabMessage,
    Observation,
    Order,
    Patient,
    PatientIdentifier,
)
from connectors.devices.values import parse_date, parse_decimal, parse_reference_range, parse_timestamp

__all__ = ["ASTM_RESULT_STATUSES", "parse_astm", "strip_frames"]

STX, ETX, ETB, ENQ, ACK, NAK, EOT = b"\x02", b"\x03", b"\x17", b"\x05", b"\x06", b"\x15", b"\x04"
# LIS2-A2 table for R-9 (result status).
ASTM_RESULT_STATUSES = {
    "C": "correction",
    "P": "preliminary",
    "F": "final",
    "X": "cannot be done",
    "I": "pending",
    "S": "partial",
    "M": "MIC level",
    "R": "previously transmitted",
    "N": "new / added information",
    "Q": "response to query",
    "V": "operator verified",
    "W": "warning",
}
_KNOWN_RECORDS = frozenset("HPORCLQMS")
_FRAME_RE = re.compile(rb"\x02([0-7])([^\x02\x03\x17]*)([\x03\x17])([0-9A-Fa-f]{2})?\r?\n?")
# Delphi/Excel day zero: several analysers (the Phadia sample among them) send it for "no date".
_NULL_DATES = ("18991230", "18991231", "00000000")


def strip_frames(data: bytes) -> tuple[bytes, list[FieldIssue]]:
    """Remove the E1381 frame layer if present; return record-layer bytes and checksum/framing issues."""
    if STX not in data:
        return data, []
    issues: list[FieldIssue] = []
    out = bytearray()
    frames = 0
    expected_fn = 1
    for frames, match in enumerate(_FRAME_RE.finditer(data), start=1):
        fn, text, end, checksum = match.group(1), match.group(2), match.group(3), match.group(4)
        computed = f"{(sum(fn + text + end)) % 256:02X}"
        if checksum is None:
            issues.append(FieldIssue("frame", frames, "frame has no checksum after ETX/ETB"))
        elif checksum.decode("ascii").upper() != computed:
            issues.append(
                FieldIssue(
                    "frame", frames, f"checksum {checksum.decode('ascii')} does not match computed {computed}"
                )
            )
        if int(fn) != expected_fn % 8:
            issues.append(
                FieldIssue("frame", frames, f"frame number {fn.decode()} where {expected_fn % 8} expected")
            )
        expected_fn = int(fn) + 1
        out += text
        if end == ETX and not text.endswith(b"\r"):
            out += b"\r"  # a record that ends a frame ends with CR; tolerate senders that leave it out
    if frames == 0:
        issues.append(
            FieldIssue("frame", None, "STX present but no complete frame (STX n ... ETX/ETB cs CR LF)")
        )
    return bytes(out), issues


@dataclass
class _Delims:
    field: str = "|"
    repeat: str = "\\"
    component: str = "^"
    escape: str = "&"

    def unescape(self, text: str) -> str:
        if self.escape not in text:
            return text
        e = self.escape
        for code, char in (("F", self.field), ("S", self.component), ("R", self.repeat), ("E", e)):
            text = text.replace(f"{e}{code}{e}", char)
        return text


@dataclass
class _Record:
    kind: str
    fields: list[str]
    line: int
    delims: _Delims

    def get(self, n: int) -> str:
        """ASTM field n (1-based, field 1 is the record type) as raw text."""
        return self.fields[n - 1] if 0 < n <= len(self.fields) else ""

    def comps(self, n: int, repeat: int = 0) -> list[str]:
        reps = self.get(n).split(self.delims.repeat)
        chosen = reps[repeat] if repeat < len(reps) else ""
        return [self.delims.unescape(c).strip() for c in chosen.split(self.delims.component)]

    def comp(self, n: int, c: int = 1, repeat: int = 0) -> str:
        parts = self.comps(n, repeat)
        return parts[c - 1] if c <= len(parts) else ""

    def repeats(self, n: int) -> list[str]:
        return [self.delims.unescape(r).strip() for r in self.get(n).split(self.delims.repeat) if r.strip()]


@dataclass
class _OrderB:
    placer: str | None
    filler: str | None
    service: CodedValue | None
    observed_at: datetime | None
    status: str | None
    specimen: str | None
    observations: list[Observation] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


@dataclass
class _PatientB:
    patient: Patient
    orders: list[_OrderB] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


def _records(text: str, issues: list[FieldIssue]) -> list[_Record]:
    records: list[_Record] = []
    delims = _Delims()
    for line_no, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        line = line.strip(" \t\x05\x06\x15\x04\x00")
        if not line or line.startswith("#"):
            continue
        kind = line[0].upper()
        if kind == "H":
            if (
                len(line) < 5
                or any(ch.isalnum() or ch.isspace() for ch in line[1:5])
                or len(set(line[1:5])) != 4
            ):
                issues.append(
                    FieldIssue(
                        "H-2", line_no, f"delimiter definition {line[1:5]!r} must be 4 distinct symbols"
                    )
                )
                continue
            delims = _Delims(line[1], line[2], line[3], line[4])
            # H-2 holds the delimiters themselves, so it must not be split on them.
            rest = line[5:].split(delims.field)[1:] if line[5:6] == delims.field else []
            records.append(_Record("H", ["H", line[2:5], *rest], line_no, delims))
            continue
        if kind not in _KNOWN_RECORDS:
            issues.append(FieldIssue(f"{kind}-1", line_no, f"unknown record type {line[:12]!r}"))
            continue
        if len(line) > 1 and line[1] != delims.field:
            issues.append(
                FieldIssue(
                    f"{kind}-1",
                    line_no,
                    f"record type must be followed by {delims.field!r}, found {line[1]!r}",
                )
            )
            continue
        records.append(_Record(kind, line.split(delims.field), line_no, delims))
    return records


def parse_astm(raw: bytes | str) -> tuple[LabMessage, ...]:
    """Parse an ASTM transcript or capture. One :class:`LabMessage` per P record (an analyser may send
    several patients in one session). Raises :class:`DeviceParseError` listing every problem found."""
    issues: list[FieldIssue] = []
    data = raw.encode("latin-1", "replace") if isinstance(raw, str) else raw
    data, frame_issues = strip_frames(data)
    issues += frame_issues
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # ASTM is 8-bit; European analysers send latin-1 names
    records = _records(text.lstrip("\ufeff"), issues)
    if not records:
        issues.append(FieldIssue("H", None, "no ASTM records found (expected an H record first)"))
        raise DeviceParseError(issues)
    if records[0].kind != "H":
        issues.append(
            FieldIssue(f"{records[0].kind}-1", records[0].line, "first record must be the H header")
        )

    warnings: list[str] = []
    messages: list[LabMessage] = []
    header: _Record | None = None
    patients: list[_PatientB] = []
    last: str | None = None  # what a following C record comments on

    def flush() -> None:
        if header is None:
            return
        for pb in patients or [_PatientB(Patient())]:
            messages.append(_message(header, pb, warnings, issues))

    for rec in records:
        if rec.kind == "H":
            flush()
            header, patients, last = rec, [], "H"
        elif rec.kind == "P":
            patients.append(_PatientB(_patient(rec, issues, warnings)))
            last = "P"
        elif rec.kind == "O":
            if not patients:
                warnings.append(str(FieldIssue("O", rec.line, "order before any P record; patient unknown")))
                patients.append(_PatientB(Patient()))
            patients[-1].orders.append(_order(rec, issues))
            last = "O"
        elif rec.kind == "R":
            if not patients or not patients[-1].orders:
                warnings.append(str(FieldIssue("R", rec.line, "result before any O record; order unknown")))
                if not patients:
                    patients.append(_PatientB(Patient()))
                patients[-1].orders.append(_OrderB(None, None, None, None, None, None))
            obs = _result(rec, issues, warnings)
            if obs is not None:
                patients[-1].orders[-1].observations.append(obs)
            last = "R" if obs is not None else "R-skipped"
        elif rec.kind == "C":
            note = " ".join(p for p in rec.comps(4) if p)
            if not note:
                continue
            if last == "R" and patients:
                order = patients[-1].orders[-1]
                prev = order.observations[-1]
                order.observations[-1] = replace(prev, comments=(*prev.comments, note))
            elif last == "O" and patients:
                patients[-1].orders[-1].comments.append(note)
            elif patients:
                patients[-1].comments.append(note)
        elif rec.kind == "L":
            flush()
            header, patients, last = None, [], "L"
        # Q (query), M (manufacturer) and S (scientific) records carry no results for a patient record.

    if header is not None:
        warnings.append("transcript ends without an L terminator record; it may be incomplete")
        flush()
    if issues:
        raise DeviceParseError(issues)
    return tuple(messages)


def _stamp(rec: _Record, n: int, issues: list[FieldIssue]) -> datetime | None:
    value = rec.comp(n)
    if not value or value.startswith(_NULL_DATES):
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        issues.append(FieldIssue(f"{rec.kind}-{n}", rec.line, str(exc)))
        return None


def _message(header: _Record, pb: _PatientB, warnings: list[str], issues: list[FieldIssue]) -> LabMessage:
    orders = tuple(
        Order(
            placer_order_number=o.placer,
            filler_order_number=o.filler,
            service=o.service,
            observed_at=o.observed_at,
            result_status=o.status,
            specimen_id=o.specimen,
            observations=tuple(o.observations),
            comments=tuple(o.comments),
        )
        for o in pb.orders
    )
    return LabMessage(
        source_format="astm",
        message_control_id=header.comp(3) or None,
        message_type="ASTM",
        sending_application=header.comp(5) or None,
        sending_facility=None,
        sent_at=_stamp(header, 14, issues),
        version=header.comp(13) or None,
        patient=pb.patient,
        orders=orders,
        comments=tuple(pb.comments),
        warnings=tuple(warnings),
        receiving_application=header.comp(10) or None,
    )


def _patient(rec: _Record, issues: list[FieldIssue], warnings: list[str]) -> Patient:
    identifiers = [
        PatientIdentifier(rec.comp(n), type_code)
        for n, type_code in ((3, "PRACTICE"), (4, "LAB"), (5, "ID3"))
        if rec.comp(n)
    ]
    microchip = next((i.value for i in identifiers if re.fullmatch(r"\d{15}", i.value)), None)
    last, first, middle = rec.comp(6, 1), rec.comp(6, 2), rec.comp(6, 3)
    name = " ".join(p for p in (first, middle, last) if p) or None
    birth = None
    if rec.comp(8) and not rec.comp(8).startswith(_NULL_DATES):
        try:
            birth = parse_date(rec.comp(8))
        except ValueError as exc:
            warnings.append(str(FieldIssue("P-8", rec.line, f"birth date ignored: {exc}")))
    return Patient(
        identifiers=tuple(identifiers),
        microchip=microchip,
        name=name,
        sex=rec.comp(9) or None,
        birth_date=birth,
    )


def _test_id(rec: _Record, n: int) -> CodedValue | None:
    parts = rec.comps(n) + ["", "", "", ""]
    if parts[0]:
        return CodedValue(parts[0], parts[1] or None, parts[2] or None)
    local = [p for p in parts[3:] if p]
    if not local:
        return None
    # Manufacturer's local code (component 4) identifies the test; the rest (e.g. "sIgE^1") qualifies it.
    return CodedValue(local[0], " ".join(local[1:]) or None, None)


def _order(rec: _Record, issues: list[FieldIssue]) -> _OrderB:
    specimen = rec.comp(3) or None
    return _OrderB(
        placer=specimen,
        filler=rec.comp(4) or None,
        service=_test_id(rec, 5),
        observed_at=_stamp(rec, 8, issues),
        status=rec.comp(26) or None,
        specimen=specimen,
    )


def _result(rec: _Record, issues: list[FieldIssue], warnings: list[str]) -> Observation | None:
    before = len(issues)
    code = _test_id(rec, 3)
    if code is None:
        issues.append(FieldIssue("R-3", rec.line, "universal test id is empty"))
    value = rec.comp(4)
    numeric = comparator = None
    value_type = "ST"
    if value:
        number = parse_decimal(value)
        match = re.fullmatch(r"\s*(<=|>=|<|>)\s*(\S+)\s*", value) if number is None else None
        if number is not None:
            numeric, value_type = number, "NM"
        elif match and (number := parse_decimal(match.group(2))) is not None:
            numeric, comparator, value_type = number, match.group(1), "SN"
    status = rec.comp(9).upper() or None
    if status is not None and status not in ASTM_RESULT_STATUSES:
        issues.append(
            FieldIssue(
                "R-9", rec.line, f"result status {status!r} is not one of {''.join(ASTM_RESULT_STATUSES)}"
            )
        )
    if status is None:
        warnings.append(str(FieldIssue("R-9", rec.line, "result status is empty")))
    range_parts = rec.comps(6)
    if len(range_parts) >= 2 and all(parse_decimal(p) is not None for p in range_parts[:2]):
        ref_text = f"{range_parts[0]}-{range_parts[1]}"
    else:
        ref_text = rec.delims.unescape(rec.get(6)).strip()
    reference = parse_reference_range(ref_text)
    flags = tuple(f.upper() for f in rec.repeats(7))
    observed_at = _stamp(rec, 13, issues) or _stamp(rec, 12, issues)
    if len(issues) > before or code is None:
        return None
    return Observation(
        set_id=rec.comp(2) or None,
        value_type=value_type,
        code=code,
        value_text=value or None,
        numeric=numeric,
        comparator=comparator,
        unit=rec.comp(5) or None,
        reference_range=reference,
        abnormal_flags=flags,
        result_status=status,
        observed_at=observed_at,
    )
