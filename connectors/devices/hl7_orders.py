r"""HL7 v2 lab orders out: ORM^O01 (v2.3.1, what most analysers and older lab systems take) and OML^O21 (v2.5.1,
the laboratory order message that replaced it).

One message carries one patient and one ORC + OBR pair per ordered test; every OBR carries the order's
accession number as the placer order number (ORC-2 and OBR-2), which the lab sends back in its ORU^R01 result so
the result finds the order (``warehouse.ingest.devices.matching``). PID names the animal the way vet systems do
(PID-3 our patient id and the microchip, PID-5 ``owner^animal``, PID-35/36 species and breed), so a result the
lab sends with a PID copied from the order matches by microchip as well.

Values are escaped here, not with the ``hl7`` library's ``escape``: that one writes every non-ASCII character
as a ``\X..\`` hex escape its own ``unescape`` reads back as other characters (``Ā`` → ``\x10\x00``), and
a newline as a malformed one. The message is UTF-8 (MSH-18), so only the delimiters are escaped (``\E\``
first, then ``\F\ \S\ \T\ \R\``); line breaks and other control characters become a space.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

__all__ = ["MESSAGE_TYPES", "LabRequest", "OrderPatient", "OrderedTest", "build_order_message"]

# Message type → (MSH-9, MSH-12).
MESSAGE_TYPES = {"ORM^O01": ("ORM^O01^ORM_O01", "2.3.1"), "OML^O21": ("OML^O21^OML_O21", "2.5.1")}
# HL7 table 0001 (administrative sex); the neutered state has no place in it.
_SEX = {"male": "M", "male_neutered": "M", "female": "F", "female_neutered": "F"}
_ESCAPES = str.maketrans({"|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"})


@dataclass(frozen=True, slots=True)
class OrderedTest:
    code: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class OrderPatient:
    patient_id: int
    name: str
    owner_last_name: str | None = None
    microchip: str | None = None
    species: str | None = None
    breed: str | None = None
    sex: str | None = None
    birth_date: dt.date | None = None


@dataclass(frozen=True, slots=True)
class LabRequest:
    """Everything one order message says. ``control_id`` is MSH-10, the id the lab's ACK refers to."""

    message_type: str
    control_id: str
    accession: str
    patient: OrderPatient
    tests: tuple[OrderedTest, ...]
    ordered_at: dt.datetime
    sending_facility: str
    receiving_application: str | None = None
    receiving_facility: str | None = None
    visit_id: int | None = None
    ordered_by: str | None = None
    sending_application: str = "VetConnect"


def _text(value: object | None) -> str:
    """One field value: control characters as spaces, runs of spaces as one, HL7 delimiters escaped."""
    if value is None:
        return ""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    return cleaned.replace("\\", "\\E\\").translate(_ESCAPES)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def _segment(*fields: str) -> str:
    return "|".join(fields).rstrip("|")


def build_order_message(request: LabRequest) -> str:
    """The ORM^O01 or OML^O21 text (segments ended by CR), ready to be framed for MLLP."""
    if request.message_type not in MESSAGE_TYPES:
        raise ValueError(f"unknown order message type {request.message_type!r} (ORM^O01 or OML^O21)")
    if not request.tests:
        raise ValueError("an order message needs at least one test")
    message_type, version = MESSAGE_TYPES[request.message_type]
    patient = request.patient
    stamp = _stamp(request.ordered_at)
    identifiers = [f"{patient.patient_id}^^^{_text(request.sending_application)}^PI"]
    if patient.microchip:
        identifiers.append(f"{_text(patient.microchip)}^^^^MC")
    segments = [
        "MSH|^~\\&|"
        + "|".join(
            (
                _text(request.sending_application),
                _text(request.sending_facility),
                _text(request.receiving_application),
                _text(request.receiving_facility),
                stamp,
                "",
                message_type,
                _text(request.control_id),
                "P",
                version,
            )
        ),  # fmt: skip
        _segment(
            "PID",
            "1",
            "",
            "~".join(identifiers),
            "",
            f"{_text(patient.owner_last_name)}^{_text(patient.name)}",
            "",
            patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
            _SEX.get(patient.sex or "", "U"),
            *[""] * 26,
            _text(patient.species),
            _text(patient.breed),
        ),  # fmt: skip
    ]
    if request.visit_id is not None:
        segments.append(_segment("PV1", "1", "O", *[""] * 16, str(request.visit_id)))
    accession = _text(request.accession)
    for number, test in enumerate(request.tests, start=1):
        segments.append(_segment("ORC", "NW", accession, "", "", "", "", "", "", stamp, "", "",
                                 _text(request.ordered_by)))  # fmt: skip
        segments.append(_segment("OBR", str(number), accession, "", f"{_text(test.code)}^{_text(test.name)}^L",
                                 "", stamp))  # fmt: skip
    return "\r".join(segments) + "\r"
