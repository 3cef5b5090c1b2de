"""Attachments of the patient record: uploaded files checked (size, type by content, not by name alone) and
stored AES-GCM encrypted with the practice's data key in ``document_content``.

The bytes are encrypted by ``warehouse.kernel.crypto.encrypt_document``, as the device loader's DICOM studies
are: one format for every stored document, bound to its practice and document id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.kernel.audit import record
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import decrypt_document, encrypt_document
from warehouse.records.errors import RecordsError
from warehouse.records.patients import require_patient
from warehouse.schema.clinical import Document
from warehouse.schema.ingestion import DocumentContent
from warehouse.security.permissions import RECORDS_READ, RECORDS_WRITE, Actor, require

MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class FileType:
    content_type: str
    extensions: tuple[str, ...]
    label: str


ALLOWED: tuple[FileType, ...] = (
    FileType("application/pdf", ("pdf",), "PDF"),
    FileType("image/png", ("png",), "PNG image"),
    FileType("image/jpeg", ("jpg", "jpeg"), "JPEG image"),
    FileType("application/dicom", ("dcm", "dicom"), "DICOM image"),
    FileType("text/plain", ("txt",), "text file"),
)
ALLOWED_EXTENSIONS = tuple(ext for t in ALLOWED for ext in t.extensions)


def detect_type(content: bytes) -> FileType | None:
    """The file's type from its first bytes (magic numbers); text only when it decodes as UTF-8."""
    by_type = {t.content_type: t for t in ALLOWED}
    if content.startswith(b"%PDF-"):
        return by_type["application/pdf"]
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return by_type["image/png"]
    if content.startswith(b"\xff\xd8\xff"):
        return by_type["image/jpeg"]
    if content[128:132] == b"DICM":
        return by_type["application/dicom"]
    try:
        content[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return by_type["text/plain"] if b"\x00" not in content[:65536] else None


def check_upload(filename: str, content: bytes) -> FileType:
    """Refuse what may not be stored, with a message for the user: empty, too large, a type that is not
    allowed, or a name whose extension does not match the content."""
    name = (filename or "").strip()
    if not name:
        raise RecordsError("file", "Choose a file to upload.")
    if len(name) > 255:
        raise RecordsError("file", "The file name is longer than 255 characters; rename the file.")
    if not content:
        raise RecordsError("file", f"{name} is empty.")
    if len(content) > MAX_BYTES:
        raise RecordsError("file", f"{name} is {len(content) / 1024 / 1024:.1f} MB; the limit is "
                                   f"{MAX_BYTES // 1024 // 1024} MB.")  # fmt: skip
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in ALLOWED_EXTENSIONS:
        raise RecordsError("file", f"{name}: only {', '.join(ALLOWED_EXTENSIONS)} files can be attached.")
    kind = detect_type(content)
    if kind is None or extension not in kind.extensions:
        expected = next(t.label for t in ALLOWED if extension in t.extensions)
        found = f"a {kind.label}" if kind else "not a file type that can be attached"
        raise RecordsError("file", f"{name} is named like a {expected} but its content is {found}.")
    return kind


def upload_document(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, filename: str, content: bytes,
    master_key: bytes, title: str | None = None,
) -> Document:  # fmt: skip
    """Check and store an attachment of the patient; the bytes only encrypted."""
    require(actor, RECORDS_WRITE, practice_id)
    require_patient(session, practice_id, patient_id)
    kind = check_upload(filename, content)
    name = re.sub(r"[\\/\x00-\x1f]", "_", filename.strip())
    label = (title or "").strip() or name.rsplit(".", 1)[0]
    if len(label) > 200:
        raise RecordsError("title", "A title is at most 200 characters.")
    fc = practice_cipher(session, practice_id, master_key)
    digest = hashlib.sha256(content).hexdigest()
    document = Document(practice_id=practice_id, patient_id=patient_id, title=label, filename=name,
                        content_type=kind.content_type, size_bytes=len(content), sha256=digest,
                        storage_key=f"document_content/{digest}", source="upload", uploaded_by=actor.user_id)  # fmt: skip
    session.add(document)
    session.flush()
    session.add(DocumentContent(practice_id=practice_id, document_id=document.id, key_version=fc.key_version,
                                ciphertext=encrypt_document(fc.data_key, practice_id, document.id, content)))  # fmt: skip
    session.flush()
    return document


@dataclass(frozen=True)
class StoredDocument:
    id: int
    title: str
    filename: str
    content_type: str
    content: bytes


def read_document(
    session: Session, actor: Actor, *, practice_id: int, document_id: int, master_key: bytes
) -> StoredDocument:
    """The decrypted attachment (an audited read of the clinical record)."""
    require(actor, RECORDS_READ, practice_id)
    row = session.execute(
        select(Document, DocumentContent.ciphertext, DocumentContent.key_version)
        .join(DocumentContent, (DocumentContent.practice_id == Document.practice_id)
              & (DocumentContent.document_id == Document.id))
        .where(Document.practice_id == practice_id, Document.id == document_id)
    ).first()  # fmt: skip
    if row is None:
        raise RecordsError("document", "This document has no stored content.")
    document, blob, key_version = row
    record(session, practice_id=practice_id, action="read", entity="document", entity_ids=[document_id],
           detail={"view": "records.document", "patient_id": document.patient_id})  # fmt: skip
    fc = practice_cipher(session, practice_id, master_key, key_version)
    content = decrypt_document(fc.data_key, practice_id, document_id, blob)
    return StoredDocument(document.id, document.title, document.filename, document.content_type, content)
