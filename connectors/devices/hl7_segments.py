"""HL7 v2 segments → typed values: the patient (PID), one result (OBX, with its NM/SN values, reference range,
flags and status), notes (NTE) and people's names (PID/NK1/GT1), with the HL7 tables they are checked against.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

from hl7.containers import Segment

from connectors.devices.hl7_reader import FieldReader
from connectors.devices.model import Observation, Patient, PatientIdentifier
from connectors.devices.values import parse_date, parse_decimal, parse_reference_range

__all__ = ["RESULT_STATUSES", "person_name", "read_note", "read_observation", "read_patient"]

# HL7 table 0085 (observation result status).
RESULT_STATUSES: dict[str, str] = {
    "C": "corrected",
    "D": "deleted",
    "F": "final",
    "I": "pending",
    "N": "not asked",
    "O": "order detail",
    "P": "preliminary",
    "R": "not verified",
    "S": "partial",
    "U": "changed to final",
    "W": "wrong",
    "X": "cannot be obtained",
}
# HL7 table 0078 (abnormal flags) across 2.3-2.8; anything else is kept but warned about.
KNOWN_FLAGS = frozenset(
    "L H LL HH < > N A AA U D B W S R I MS VS NEG POS IND NR QCF TOX SN".split()
    + ["NULL", "RR", "CAR", "EX", "EXP", "HU", "LU", "AC", "ABN", "NA"]
)
# HL7 table 0125 (value types) - a value type outside it is read as text with a warning.
KNOWN_VALUE_TYPES = frozenset(
    "AD CE CF CK CN CNE CP CWE CX DR DT DTM ED FT ID IS MO NM PN RP SN ST TM TN TS TX XAD XCN XON XPN XTN".split()
)
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
_SN_COMPARATORS = frozenset({"", "<", ">", "<=", ">=", "=", "<>"})
_SN_SEPARATORS = frozenset({"", "-", "+", "/", ".", ":"})
_MICROCHIP_TYPES = frozenset({"MC", "MCN", "MICROCHIP", "CHIP", "RFID", "TRANSPONDER"})
_MICROCHIP_RE = re.compile(r"\d{15}")


def read_note(rd: FieldReader, seg: Segment, pos: int) -> str:
    lines = [rd.get(seg, pos, 3, r) for r in range(1, rd.repetitions(seg, 3) + 1)]
    return "\n".join(line for line in lines if line).replace("\r", "\n")


def person_name(rd: FieldReader, seg: Segment, pos: int, f: int, r: int = 1) -> str | None:
    family, given, middle = (rd.get(seg, pos, f, r, c) for c in (1, 2, 3))
    # Vet systems put "OwnerSurname^PetName" in PID-5; "given family" reads right for both that and people.
    name = " ".join(part for part in (given, middle, family) if part)
    return name or None


def read_patient(rd: FieldReader, seg: Segment, pos: int, owner: str | None) -> Patient:
    identifiers: list[PatientIdentifier] = []
    for f in (3, 2, 4):  # PID-3 is the list; PID-2/PID-4 still carry ids in v2.3-era vet systems
        for r in range(1, rd.repetitions(seg, f) + 1):
            value = rd.get(seg, pos, f, r, 1)
            if not value:
                continue
            authority = rd.get(seg, pos, f, r, 4, 1) or rd.get(seg, pos, f, r, 4, 2)
            identifiers.append(PatientIdentifier(value, rd.get(seg, pos, f, r, 5) or None, authority or None))
    microchip = next(
        (i.value for i in identifiers if (i.type_code or "").upper() in _MICROCHIP_TYPES),
        next((i.value for i in identifiers if _MICROCHIP_RE.fullmatch(i.value)), None),
    )
    if owner is None and rd.repetitions(seg, 5) > 1:
        owner = person_name(rd, seg, pos, 5, 2)
    birth: date | None = None
    try:
        birth = parse_date(rd.get(seg, pos, 7))
    except ValueError as exc:
        rd.warn("PID-7", pos, f"birth date ignored: {exc}")
    return Patient(
        identifiers=tuple(identifiers),
        microchip=microchip,
        name=person_name(rd, seg, pos, 5),
        owner_name=owner,
        species=rd.coded(seg, pos, 35),
        breed=rd.coded(seg, pos, 36),
        sex=rd.get(seg, pos, 8) or None,
        birth_date=birth,
    )


def read_observation(
    rd: FieldReader, seg: Segment, pos: int, order_time: datetime | None
) -> Observation | None:
    set_id = rd.get(seg, pos, 1)
    loc = f"(OBX {set_id or '?'})"
    value_type = rd.get(seg, pos, 2).upper()
    code = rd.coded(seg, pos, 3)
    n_issues = len(rd.issues)
    if code is None:
        rd.error("OBX-3", pos, f"observation identifier is empty {loc}")
    has_value = 5 < len(seg) and str(seg[5]).strip() != ""
    if has_value and not value_type:
        rd.error("OBX-2", pos, f"value type is empty but OBX-5 holds a value {loc}")
    elif value_type and value_type not in KNOWN_VALUE_TYPES:
        rd.warn("OBX-2", pos, f"unknown value type {value_type!r}; value kept as text {loc}")

    numeric = numeric_2 = None
    comparator = separator = None
    coded = None
    value_text: str | None = None
    if not has_value:
        pass
    elif value_type == "NM":
        value_text = rd.get(seg, pos, 5)
        numeric, comparator = _nm(rd, pos, value_text, loc)
    elif value_type == "SN":
        parts = rd.parts(seg, pos, 5, 4)
        value_text = "".join(parts)
        numeric, comparator, separator, numeric_2 = _sn(rd, pos, parts, loc)
    elif value_type in _CODED_TYPES:
        coded = rd.coded(seg, pos, 5)
        value_text = coded.text or coded.code if coded else None
    elif value_type in _TEXT_TYPES:
        lines = [rd.get(seg, pos, 5, r) for r in range(1, rd.repetitions(seg, 5) + 1)]
        value_text = "\n".join(lines).replace("\r", "\n") or None
    else:
        value_text = str(seg[5]).strip()

    status = rd.get(seg, pos, 11).upper() or None
    if status is None:
        rd.warn("OBX-11", pos, f"result status is empty {loc}")
    elif status not in RESULT_STATUSES:
        rd.error("OBX-11", pos, f"result status {status!r} is not one of {''.join(RESULT_STATUSES)} {loc}")
    if not has_value and status not in ("X", "D", "I", "N", "O", None):
        rd.warn("OBX-5", pos, f"empty value with status {status} {loc}")

    ref_text = rd.get(seg, pos, 7)
    reference = parse_reference_range(ref_text)
    if reference is not None and not reference.is_numeric and value_type in ("NM", "SN"):
        rd.warn("OBX-7", pos, f"reference range {ref_text!r} is not a numeric range; kept as text {loc}")

    flags = tuple(
        flag for r in range(1, rd.repetitions(seg, 8) + 1) if (flag := rd.get(seg, pos, 8, r).upper())
    )
    for flag in flags:
        if flag not in KNOWN_FLAGS:
            rd.warn("OBX-8", pos, f"unknown abnormal flag {flag!r} {loc}")

    observed_at = rd.stamp(seg, pos, 14) or order_time
    unit_code, unit_text, unit_system = rd.parts(seg, pos, 6, 3)
    if len(rd.issues) > n_issues or code is None:
        return None
    return Observation(
        set_id=set_id or None,
        value_type=value_type,
        code=code,
        value_text=value_text or None,
        numeric=numeric,
        comparator=comparator,
        separator=separator,
        numeric_2=numeric_2,
        coded=coded,
        unit=unit_code or None,
        unit_text=unit_text or None,
        unit_system=unit_system or None,
        reference_range=reference,
        abnormal_flags=flags,
        result_status=status,
        observed_at=observed_at,
        sub_id=rd.get(seg, pos, 4) or None,
    )


def _nm(rd: FieldReader, pos: int, text: str, loc: str) -> tuple[Decimal | None, str | None]:
    number = parse_decimal(text)
    if number is not None:
        return number, None
    # Many analysers put "<5" into an NM field (it should be SN). Read it, but say so.
    match = re.fullmatch(r"\s*(<=|>=|<|>)\s*(\S+)\s*", text)
    if match and (number := parse_decimal(match.group(2))) is not None:
        rd.warn("OBX-5", pos, f"NM value {text!r} carries a comparator; read as SN {loc}")
        return number, match.group(1)
    rd.error("OBX-5", pos, f"NM value {text!r} is not a number {loc}")
    return None, None


def _sn(
    rd: FieldReader, pos: int, parts: list[str], loc: str
) -> tuple[Decimal | None, str | None, str | None, Decimal | None]:
    comparator, first, separator, second = parts
    shown = "^".join(parts).rstrip("^")
    if comparator not in _SN_COMPARATORS:
        # A bare "182" or "<5" without components is still understandable; anything else is not.
        if not (first or separator or second):
            match = re.fullmatch(r"\s*(<=|>=|<>|<|>|=)?\s*(.+?)\s*", comparator)
            number = parse_decimal(match.group(2)) if match else None
            if match and number is not None:
                return number, match.group(1), None, None
        rd.error(
            "OBX-5", pos, f"SN comparator {comparator!r} in {shown!r} is not one of < > <= >= = <> {loc}"
        )
        return None, None, None, None
    number = parse_decimal(first)
    if number is None:
        rd.error("OBX-5", pos, f"SN value {shown!r}: {first!r} is not a number {loc}")
    if separator not in _SN_SEPARATORS:
        rd.error("OBX-5", pos, f"SN separator {separator!r} in {shown!r} is not one of - + / . : {loc}")
    number_2 = None
    if second:
        number_2 = parse_decimal(second)
        if number_2 is None:
            rd.error("OBX-5", pos, f"SN value {shown!r}: second number {second!r} is not a number {loc}")
    return number, comparator or None, separator or None, number_2
