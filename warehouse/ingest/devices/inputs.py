"""What the device loader is given and what it answers: plain frozen dataclasses, shaped for the warehouse.

This package knows nothing about HL7, ASTM or DICOM: ``connectors.devices.ingest`` maps parser output onto
these types, fitting values to the column limits below. Re-processing a stored raw copy needs a parser, which
is passed in as a ``RawParser`` callable for the same reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from warehouse.schema.clinical import LabObservation, LabOrder

# Column limits the mapper must respect (read from the schema, so they cannot drift).
CODE_MAX = LabObservation.__table__.c.code.type.length
CODE_SYSTEM_MAX = LabObservation.__table__.c.code_system.type.length
TEXT_MAX = LabObservation.__table__.c.text.type.length
UNIT_MAX = LabObservation.__table__.c.unit.type.length
FLAG_MAX = LabObservation.__table__.c.abnormal_flag.type.length
ACCESSION_MAX = LabOrder.__table__.c.accession_number.type.length
NUMERIC_LIMIT = Decimal(10) ** 12  # Numeric(18, 6): twelve digits before the point
OBSERVATION_STATUSES = ("preliminary", "final", "corrected", "cancelled")

# Why a message waits in the inbox (besides the parser's own reasons, which it passes on).
INBOX_NO_MATCH = "no_patient_match"
INBOX_AMBIGUOUS = "ambiguous_patient"
INBOX_CONFLICT = "patient_conflict"
INBOX_LOAD_FAILED = "load_failed"
INBOX_NO_KEY = "encryption_unavailable"


@dataclass(frozen=True, slots=True)
class ObservationInput:
    """One result, already shaped for ``lab_observation`` (lengths within the column limits)."""

    code: str
    status: str
    code_system: str | None = None
    text: str | None = None
    value_numeric: Decimal | None = None
    value_text: str | None = None
    unit: str | None = None
    ref_low: Decimal | None = None
    ref_high: Decimal | None = None
    ref_text: str | None = None
    abnormal_flag: str | None = None
    observed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LabOrderInput:
    accession: str | None
    placer_number: str | None = None
    test_code: str | None = None
    test_name: str | None = None
    observed_at: dt.datetime | None = None
    observations: tuple[ObservationInput, ...] = ()

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(n for n in (self.accession, self.placer_number) if n)


@dataclass(frozen=True, slots=True)
class PatientKeys:
    """What a device tells about the animal: exact keys only (no name guessing)."""

    microchip: str | None = None
    identifiers: tuple[str, ...] = ()
    owner_name: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class LabResultInput:
    patient: PatientKeys
    orders: tuple[LabOrderInput, ...]
    sent_at: dt.datetime | None = None
    lab: str | None = None


@dataclass(frozen=True, slots=True)
class ImagingInput:
    patient: PatientKeys
    accession: str | None
    content: bytes
    content_type: str = "application/dicom"
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    modality: str | None = None
    body_part: str | None = None
    study_date: dt.date | None = None
    description: str | None = None
    animal_id_text: str | None = None
    animal_name: str | None = None
    species: str | None = None
    breed: str | None = None
    preview_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """What one received blob means for the record: lab results, an imaging study, or an inbox reason."""

    detected_format: str
    sender: str | None = None
    control_id: str | None = None
    results: tuple[LabResultInput, ...] = ()
    imaging: ImagingInput | None = None
    inbox_reason: str | None = None
    inbox_detail: str | None = None
    # SHA-256 of the content without what a resend may change (connectors.devices.fingerprint): the same
    # fingerprint from the same format is the same message. None: nothing to compare, never a duplicate.
    fingerprint: str | None = None


RawParser = Callable[[bytes, str, str | None], DeviceOutcome]


@dataclass(frozen=True, slots=True)
class RawItem:
    """One received blob and what it means, for ``ingest_many``."""

    raw: bytes
    source: str
    outcome: DeviceOutcome
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class RecordResult:
    message_id: int
    status: str
    observation_count: int = 0
    patient_id: int | None = None
    inbox_reason: str | None = None
    inbox_detail: str | None = None
    duplicate_of: int | None = None
    same_control_id_as: int | None = None  # loaded although this sender's control id was seen (other content)


class InboxError(ValueError):
    """An inbox action that cannot be done (unknown message, not in the inbox, unreadable raw copy)."""
