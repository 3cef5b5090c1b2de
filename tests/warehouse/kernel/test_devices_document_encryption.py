"""One document encryption for uploads and device imaging, in the format stored before it was shared.

The format is written out here by hand - version byte 0x01, a 12-byte nonce, AES-GCM ciphertext and tag,
associated data ``"<practice>:document:<document id>"`` - as both ``warehouse/records/documents.py`` and the
device loader wrote it, so bytes stored before either moved to ``warehouse.kernel.crypto`` still decrypt."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warehouse.kernel.crypto import DecryptionError, decrypt_document, encrypt_document

DATA_KEY = bytes(range(32))
CONTENT = b"DICM" + bytes(range(256)) * 8


def stored_before(data_key: bytes, practice_id: int, document_id: int, content: bytes) -> bytes:
    nonce = os.urandom(12)
    aad = f"{practice_id}:document:{document_id}".encode()
    return b"\x01" + nonce + AESGCM(data_key).encrypt(nonce, content, aad)


def test_a_blob_stored_in_the_earlier_format_decrypts():
    assert decrypt_document(DATA_KEY, 7, 42, stored_before(DATA_KEY, 7, 42, CONTENT)) == CONTENT


def test_a_new_blob_is_in_the_earlier_format_byte_for_byte():
    blob = encrypt_document(DATA_KEY, 7, 42, CONTENT)
    assert blob[:1] == b"\x01" and len(blob) == 1 + 12 + len(CONTENT) + 16
    aad = b"7:document:42"
    assert AESGCM(DATA_KEY).decrypt(blob[1:13], blob[13:], aad) == CONTENT
    # the same nonce gives the same bytes as the earlier code wrote
    assert blob == b"\x01" + blob[1:13] + AESGCM(DATA_KEY).encrypt(blob[1:13], CONTENT, aad)


@pytest.mark.parametrize(("practice_id", "document_id"), [(8, 42), (7, 43)])
def test_bytes_moved_to_another_document_or_practice_do_not_decrypt(practice_id: int, document_id: int):
    blob = encrypt_document(DATA_KEY, 7, 42, CONTENT)
    with pytest.raises(DecryptionError, match="does not belong"):
        decrypt_document(DATA_KEY, practice_id, document_id, blob)


def test_an_unknown_format_is_refused():
    with pytest.raises(DecryptionError, match="unknown ciphertext format"):
        decrypt_document(DATA_KEY, 7, 42, b"\x02" + encrypt_document(DATA_KEY, 7, 42, CONTENT)[1:])
