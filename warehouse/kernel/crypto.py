"""Field-level encryption of client PII with per-practice data keys, and keyed-hash blind indexes.

- Each practice has a random 256-bit data key (DEK), stored only wrapped (AES-GCM) by the master key; the
  practice id is bound as associated data, so a wrapped key copied to another practice does not unwrap.
- Fields are AES-GCM encrypted with the DEK; associated data binds practice, table and column, so ciphertext
  moved to another row's column or another tenant fails to decrypt instead of leaking.
- Blind index: HMAC-SHA256 of the normalised value under a key derived (HKDF) from the DEK: exact lookup by
  email/phone within a practice without storing the value in clear.
- Document bytes (uploads of the patient record, DICOM files from devices) are AES-GCM encrypted with the DEK
  too, in one format whoever stores them; associated data binds practice and document id.

Every ciphertext here is: format byte ``0x01``, 12-byte nonce, AES-GCM ciphertext with its tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12


class DecryptionError(ValueError):
    """Ciphertext does not belong to this practice/column, or was altered."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_data_key(master_key: bytes, practice_id: int, data_key: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _FORMAT_V1 + nonce + AESGCM(master_key).encrypt(nonce, data_key, f"dek:{practice_id}".encode())


def unwrap_data_key(master_key: bytes, practice_id: int, wrapped: bytes) -> bytes:
    if wrapped[:1] != _FORMAT_V1:
        raise DecryptionError("unknown wrapped-key format")
    nonce, body = wrapped[1 : 1 + _NONCE_BYTES], wrapped[1 + _NONCE_BYTES :]
    try:
        return AESGCM(master_key).decrypt(nonce, body, f"dek:{practice_id}".encode())
    except InvalidTag as exc:
        raise DecryptionError(
            f"data key of practice {practice_id} does not unwrap with this master key"
        ) from exc


def _document_aad(practice_id: int, document_id: int) -> bytes:
    # Same shape as FieldCipher's "<practice>:<column>", plus the document id: bytes moved to another
    # document or practice fail to decrypt.
    return f"{practice_id}:document:{document_id}".encode()


def encrypt_document(data_key: bytes, practice_id: int, document_id: int, content: bytes) -> bytes:
    """The stored form of a document's bytes (``document_content.ciphertext``)."""
    nonce = os.urandom(_NONCE_BYTES)
    return (
        _FORMAT_V1 + nonce + AESGCM(data_key).encrypt(nonce, content, _document_aad(practice_id, document_id))
    )


def decrypt_document(data_key: bytes, practice_id: int, document_id: int, blob: bytes) -> bytes:
    blob = bytes(blob)
    if blob[:1] != _FORMAT_V1:
        raise DecryptionError("document: unknown ciphertext format")
    nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(data_key).decrypt(nonce, body, _document_aad(practice_id, document_id))
    except InvalidTag as exc:
        raise DecryptionError(f"document {document_id} does not belong to practice {practice_id}") from exc


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str) -> str:
    """Dutch numbers in one canonical form: ``06-1234 5678``, ``+31 6 12345678`` and ``0031612345678`` all
    become ``+31612345678``, so the blind index finds a client however the number was typed."""
    digits = re.sub(r"[^\d+]", "", value.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("0"):
        digits = "+31" + digits[1:]
    elif not digits.startswith("+"):
        digits = "+" + digits
    return digits


@dataclass
class FieldCipher:
    """Encrypts and indexes the PII columns of one practice with its data key."""

    practice_id: int
    data_key: bytes
    key_version: int = 1
    _index_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"vetconnect blind index v1"
        ).derive(self.data_key)

    def _aad(self, column: str) -> bytes:
        return f"{self.practice_id}:{column}".encode()

    def encrypt(self, column: str, plaintext: str | None) -> bytes | None:
        if plaintext is None or plaintext == "":
            return None
        nonce = os.urandom(_NONCE_BYTES)
        return (
            _FORMAT_V1 + nonce + AESGCM(self.data_key).encrypt(nonce, plaintext.encode(), self._aad(column))
        )

    def decrypt(self, column: str, ciphertext: bytes | None) -> str | None:
        if ciphertext is None:
            return None
        blob = bytes(ciphertext)
        if blob[:1] != _FORMAT_V1:
            raise DecryptionError(f"{column}: unknown ciphertext format")
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return AESGCM(self.data_key).decrypt(nonce, body, self._aad(column)).decode()
        except InvalidTag as exc:
            raise DecryptionError(
                f"{column}: ciphertext does not belong to practice {self.practice_id}"
            ) from exc

    def blind_index(self, kind: str, normalised: str | None) -> bytes | None:
        if not normalised:
            return None
        return hmac.new(self._index_key, f"{kind}:{normalised}".encode(), hashlib.sha256).digest()

    def email_index(self, email: str | None) -> bytes | None:
        return self.blind_index("email", normalise_email(email) if email else None)

    def phone_index(self, phone: str | None) -> bytes | None:
        return self.blind_index("phone", normalise_phone(phone) if phone else None)
