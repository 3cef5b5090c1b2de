"""Choosing the patient to book for (or to open): by name, chip, owner or id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PatientChoice:
    id: int
    name: str
    species: str
    owner: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.species}{', ' + self.owner if self.owner else ''})"


def patient_choices(
    session: Session, practice_id: int, *, query: str | None = None, client_id: int | None = None,
    patient_id: int | None = None, limit: int = 20, include_deceased: bool = False,
) -> list[PatientChoice]:  # fmt: skip
    """Patients to book for: by name (typo-tolerant) or chip, the animals of one client, or one patient.
    ``include_deceased``: deceased patients too (their record is still read; nobody books for them)."""
    q = (query or "").strip()
    rows = session.execute(
        text(
            """SELECT p.id, p.name, p.species, o.last_name AS owner FROM patient p
               LEFT JOIN LATERAL (SELECT c.last_name FROM client_patient cp JOIN client c
                                    ON c.practice_id = cp.practice_id AND c.id = cp.client_id
                                  WHERE cp.practice_id = p.practice_id AND cp.patient_id = p.id
                                  ORDER BY cp.is_primary DESC LIMIT 1) o ON true
               WHERE p.practice_id = :practice AND p.deleted_at IS NULL AND (:deceased OR NOT p.deceased)
                 AND (p.id = :patient
                      OR (:q <> '' AND (p.microchip = :q OR :q <% p.name))
                      OR p.id IN (SELECT patient_id FROM client_patient
                                  WHERE practice_id = :practice AND client_id = :client))
               ORDER BY p.id = :patient DESC, word_similarity(:q, p.name) DESC, p.name LIMIT :limit"""
        ),
        {
            "practice": practice_id,
            "q": q,
            "patient": patient_id or -1,
            "client": client_id or -1,
            "limit": limit,
            "deceased": include_deceased,
        },
    )
    return [PatientChoice(*row) for row in rows]
