"""Typed results of device parsing, shared by the HL7 v2, ASTM and DICOM readers.

Everything here is a frozen, slotted dataclass made of plain values (str, Decimal, datetime, tuples), so a
warehouse loader can write it without knowing which wire format it came from, and so that a parsed result
cannot be edited on its way between parser and loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

SourceFormat = Literal["hl7v2", "astm"]

# Result status codes of HL7 table 0085 and LIS2-A2 R-9 folded into the warehouse's four statuses.
STATUS_CATEGORIES: dict[str, str] = {
    "F": "final",
    "U": "final",
    "V": "final",
    "C": "corrected",
    "P": "preliminary",
    "S": "preliminary",
    "I": "preliminary",
    "R": "preliminary",
    "N": "preliminary",
    "O": "preliminary",
    "Q": "preliminary",
    "M": "preliminary",
    "D": "cancelled",
    "W": "cancelled",
    "X": "cancelled",
}


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One precise problem: where it is and what was expected.

    ``location`` is written the way HL7 people say it (``OBX-5``, ``R-4``, ``MSH-2``); ``segment`` is the 1-based
    position of the segment/record in the message, so the raw line can be found again.
    """

    location: str
    segment: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.location} segment {self.segment}" if self.segment is not None else self.location
        return f"{where}: {self.message}"


class DeviceParseError(ValueError):
    """Raised when a device message cannot be turned into trustworthy observations.

    Holds every issue found (not only the first) so the inbox entry tells the whole story in one go.
    """

    def __init__(self, issues: list[FieldIssue] | tuple[FieldIssue, ...]) -> None:
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues) or "unparseable message")

    @property
    def first(self) -> FieldIssue | None:
        return self.issues[0] if self.issues else None


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A code with its system and display text (HL7 CE/CWE, an ASTM universal test id, a species code)."""

    code: str | None
    text: str | None = None
    system: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceRange:
    """OBX-7 / ASTM R-6 as sent (``text``) and, when the text is a recognised form, its numeric bounds.

    ``low``/``high`` are None when that side is open (``<5`` has only ``high``) or when the text is prose.
    ``*_inclusive`` is False only for a strict comparator (``<5`` means values below 5 are normal).
    """

    text: str
    low: Decimal | None = None
    high: Decimal | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    @property
    def is_numeric(self) -> bool:
        return self.low is not None or self.high is not None


@dataclass(frozen=True, slots=True)
class Observation:
    """One result (an HL7 OBX or an ASTM R record).

    ``value_type`` is the HL7 data type (NM, SN, ST, TX, FT, CE, CWE, …); ASTM results are typed NM when the value
    is a number and ST otherwise. Numeric results fill ``numeric`` (and ``comparator`` for ``<5`` style values;
    ``numeric_2``/``separator`` for SN ratios and ranges such as ``1^:^128``); coded results fill ``coded``;
    ``value_text`` always holds the value as readable text (empty values are None).
    """

    set_id: str | None
    value_type: str
    code: CodedValue
    value_text: str | None
    numeric: Decimal | None = None
    comparator: str | None = None
    separator: str | None = None
    numeric_2: Decimal | None = None
    coded: CodedValue | None = None
    unit: str | None = None
    unit_text: str | None = None
    unit_system: str | None = None
    reference_range: ReferenceRange | None = None
    abnormal_flags: tuple[str, ...] = ()
    result_status: str | None = None
    observed_at: datetime | None = None
    sub_id: str | None = None
    comments: tuple[str, ...] = ()

    @property
    def status_category(self) -> str | None:
        """``final`` / ``corrected`` / ``preliminary`` / ``cancelled`` (the warehouse's vocabulary)."""
        return STATUS_CATEGORIES.get(self.result_status or "")


@dataclass(frozen=True, slots=True)
class Order:
    """An order / request (HL7 ORC+OBR, ASTM O) with its results.

    ``filler_order_number`` is the lab's accession number; ``placer_order_number`` the practice's own number.
    """

    placer_order_number: str | None
    filler_order_number: str | None
    service: CodedValue | None = None
    observed_at: datetime | None = None
    result_status: str | None = None
    specimen_id: str | None = None
    observations: tuple[Observation, ...] = ()
    comments: tuple[str, ...] = ()

    @property
    def accession(self) -> str | None:
        return self.filler_order_number


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    """One PID-3 repetition (or an ASTM P-3/P-4/P-5 id): the id, its type code (MR, AN, MC…) and authority."""

    value: str
    type_code: str | None = None
    assigning_authority: str | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """The animal (or, for human reference material, the person) the results belong to."""

    identifiers: tuple[PatientIdentifier, ...] = ()
    microchip: str | None = None
    name: str | None = None
    owner_name: str | None = None
    species: CodedValue | None = None
    breed: CodedValue | None = None
    sex: str | None = None
    birth_date: date | None = None


@dataclass(frozen=True, slots=True)
class LabMessage:
    """A parsed lab result message, whatever the wire format.

    ``message_control_id`` is MSH-10 for HL7 (the key an ACK refers to) and H-3 for ASTM when the analyser sends
    one. ``warnings`` lists things that did not stop parsing but a person may want to see (prose reference
    ranges, unknown flags, an empty numeric value).
    """

    source_format: SourceFormat
    message_control_id: str | None
    message_type: str | None
    sending_application: str | None
    sending_facility: str | None
    sent_at: datetime | None
    version: str | None
    patient: Patient
    orders: tuple[Order, ...]
    comments: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    receiving_application: str | None = None
    receiving_facility: str | None = None

    @property
    def observations(self) -> tuple[Observation, ...]:
        return tuple(obs for order in self.orders for obs in order.observations)
