"""Imaging studies in the patient record: what the device loader stored (``warehouse.ingest.devices.imaging``),
with the study's metadata, the device that sent it and the PNG preview rendered on arrival.

The preview is kept with the study (``imaging_study.preview_png``, under the practice's row-level security);
the DICOM file itself is an encrypted document of the patient, opened like any other document.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

MODALITIES = {
    "CR": "X-ray (CR)", "DX": "X-ray (DX)", "US": "Ultrasound", "CT": "CT", "MR": "MRI", "XA": "Fluoroscopy",
    "ES": "Endoscopy", "OT": "Other",
}  # fmt: skip


@dataclass(frozen=True)
class StudyView:
    id: int
    study_date: dt.date | None
    modality: str | None
    body_part: str | None
    description: str | None
    device: str | None  # the sender of the device message, or where it came in
    received_at: dt.datetime
    document_id: int | None
    preview_png: bytes | None

    @property
    def modality_name(self) -> str | None:
        return MODALITIES.get(self.modality or "", self.modality)

    @property
    def title(self) -> str:
        parts = (self.modality_name, self.body_part and self.body_part.title(), self.description)
        return " · ".join(p for p in parts if p) or "Imaging study"


def patient_studies(session: Session, practice_id: int, patient_id: int) -> list[StudyView]:
    """The patient's imaging studies, newest first (by study date, else arrival), with their previews."""
    rows = session.execute(
        text(
            """SELECT s.id, s.study_date, s.modality, s.body_part, s.description,
                      coalesce(m.sender, m.source), coalesce(m.received_at, s.created_at), s.document_id,
                      s.preview_png
               FROM imaging_study s
               LEFT JOIN device_message m ON m.practice_id = s.practice_id AND m.id = s.device_message_id
               WHERE s.practice_id = :p AND s.patient_id = :pat
               ORDER BY coalesce(s.study_date, s.created_at::date) DESC, s.id DESC"""
        ),
        {"p": practice_id, "pat": patient_id},
    )
    return [StudyView(*row[:8], bytes(row[8]) if row[8] is not None else None) for row in rows]
