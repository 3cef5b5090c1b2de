"""TOTP second factor (RFC 6238 via pyotp): secrets encrypted at rest, enrolment with a QR code.

The secret is AES-GCM encrypted with the master key; the user id is bound as associated data, so a secret
copied onto another account does not decrypt (and so cannot be used to pass that account's second factor).
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import os
from dataclasses import dataclass

import pyotp
import qrcode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warehouse.kernel.crypto import DecryptionError

ISSUER = "VetConnect"
_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12
# Accept the previous and next 30-second step too: phone clocks drift.
VALID_WINDOW = 1


def _aad(user_id: int) -> bytes:
    return f"totp:{user_id}".encode()


def encrypt_secret(master_key: bytes, user_id: int, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _FORMAT_V1 + nonce + AESGCM(master_key).encrypt(nonce, secret.encode(), _aad(user_id))


def decrypt_secret(master_key: bytes, user_id: int, blob: bytes) -> str:
    blob = bytes(blob)
    if blob[:1] != _FORMAT_V1:
        raise DecryptionError("unknown TOTP secret format")
    nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(master_key).decrypt(nonce, body, _aad(user_id)).decode()
    except InvalidTag as exc:
        raise DecryptionError(f"TOTP secret does not belong to user {user_id}") from exc


def accepted_step(
    secret: str, code: str, *, last_step: int | None = None, at: dt.datetime | None = None
) -> int | None:
    """The time step (unix time // 30) a code belongs to when it is valid at ``at`` (± ``VALID_WINDOW``
    steps) and later than ``last_step``, the step accepted last time; None otherwise.

    Storing the returned step and passing it back next time makes every code single-use (RFC 6238 §5.2):
    a code seen over a shoulder or replayed cannot be used again while it is still inside its window.
    """
    cleaned = "".join(ch for ch in code if ch.isdigit())
    if len(cleaned) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(at or dt.datetime.now(dt.UTC))
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.generate_otp(step), cleaned):
            return step
    return None


@dataclass(frozen=True)
class Enrolment:
    """A proposed secret, shown to the user as a QR code until they confirm it with a first code."""

    secret: str
    provisioning_uri: str
    qr_png: bytes


def new_enrolment(username: str, secret: str | None = None) -> Enrolment:
    secret = secret or pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
    buffer = io.BytesIO()
    qrcode.make(uri, box_size=6, border=2).save(buffer)
    return Enrolment(secret, uri, buffer.getvalue())
