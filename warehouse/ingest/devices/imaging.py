"""Imaging studies into the record: the DICOM file as an encrypted document of the patient, its study row.

The bytes are encrypted like every stored document (``warehouse.kernel.crypto.encrypt_document``) with the
practice's data key; without a master key the study waits in the inbox (``encryption_unavailable``) rather
than being stored in clear.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import INBOX_NO_KEY, ImagingInput
from warehouse.ingest.devices.matching import PatientMatch, match_patient, require_patient
from warehouse.ingest.devices.raw import clip, sha256_hex
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import decrypt_document, encrypt_document
from warehouse.schema.clinical import Document
from warehouse.schema.ingestion import DocumentContent, ImagingStudy


def load_imaging(
    session: Session,
    practice_id: int,
    message_id: int,
    study: ImagingInput,
    master_key: bytes | None,
    chosen_patient_id: int | None,
) -> tuple[int, int] | PatientMatch:
    """Store the study for its patient: (patient id, 0 observations), or the failed match (nothing written)."""
    if chosen_patient_id is not None:
        require_patient(session, practice_id, chosen_patient_id)
        match = PatientMatch(chosen_patient_id, how="chosen")
    else:
        match = match_patient(
            session, practice_id, study.patient, [study.accession] if study.accession else []
        )
    if match.patient_id is None:
        return match
    if master_key is None:
        return PatientMatch(None, reason=INBOX_NO_KEY,
                            detail="no master key configured: the DICOM file cannot be stored encrypted")  # fmt: skip
    practice_key = practice_cipher(session, practice_id, master_key)
    data_key, key_version = practice_key.data_key, practice_key.key_version
    title = (
        " ".join(p for p in (study.modality, study.description or study.body_part) if p) or "Imaging study"
    )
    document = Document(
        practice_id=practice_id,
        patient_id=match.patient_id,
        title=title[:200],
        filename=f"{study.instance_uid or message_id}.dcm"[:255],
        content_type=study.content_type,
        size_bytes=len(study.content),
        sha256=sha256_hex(study.content),
        storage_key=f"device_message/{message_id}",
        source="device",
    )
    session.add(document)
    session.flush()
    session.add(
        DocumentContent(
            practice_id=practice_id,
            document_id=document.id,
            ciphertext=encrypt_document(data_key, practice_id, document.id, study.content),
            key_version=key_version,
        )
    )
    session.add(
        ImagingStudy(
            practice_id=practice_id,
            patient_id=match.patient_id,
            device_message_id=message_id,
            document_id=document.id,
            study_uid=clip(study.study_uid, 64),
            series_uid=clip(study.series_uid, 64),
            modality=clip(study.modality, 16),
            body_part=clip(study.body_part, 64),
            study_date=study.study_date,
            description=clip(study.description, 200),
            animal_id_text=clip(study.animal_id_text, 64),
            animal_name=clip(study.animal_name, 100),
            species=clip(study.species, 64),
            breed=clip(study.breed, 64),
            preview_png=study.preview_png,
        )
    )
    session.flush()
    return match.patient_id, 0


def document_bytes(session: Session, practice_id: int, document_id: int, master_key: bytes) -> bytes:
    """The decrypted bytes of a document stored by the device loader."""
    blob, key_version = session.execute(
        select(DocumentContent.ciphertext, DocumentContent.key_version).where(
            DocumentContent.practice_id == practice_id, DocumentContent.document_id == document_id
        )
    ).one()
    data_key = practice_cipher(session, practice_id, master_key, key_version).data_key
    return decrypt_document(data_key, practice_id, document_id, blob)
