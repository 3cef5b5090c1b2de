"""The practice's field cipher: its data key, unwrapped by the master key, as a ``FieldCipher``.

The one place that reads ``tenant_data_key`` for the services. Unwrapping a key and deriving its blind-index key
cost tens of microseconds, so a cipher is kept per wrapped key (the wrapped bytes name the key exactly: a
rotated key is a new entry, never a stale one); the row is read each time, inside the caller's tenant session.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.kernel.crypto import FieldCipher, unwrap_data_key
from warehouse.schema.tenancy import TenantDataKey


@lru_cache(maxsize=4096)
def cipher_of_wrapped_key(
    master_key: bytes, practice_id: int, wrapped_key: bytes, version: int
) -> FieldCipher:
    """The cipher of one wrapped data key (cached; a key that does not unwrap raises every time)."""
    return FieldCipher(practice_id, unwrap_data_key(master_key, practice_id, wrapped_key), version)


def practice_cipher(
    session: Session, practice_id: int, master_key: bytes, version: int | None = None
) -> FieldCipher:
    """The practice's field cipher: the data key of ``version``, or the newest."""
    row = session.execute(
        select(TenantDataKey.wrapped_key, TenantDataKey.version)
        .where(TenantDataKey.practice_id == practice_id)
        .where(TenantDataKey.version == version if version is not None else True)
        .order_by(TenantDataKey.version.desc())
        .limit(1)
    ).one()
    return cipher_of_wrapped_key(master_key, practice_id, bytes(row.wrapped_key), row.version)


def every_practice_cipher(session: Session, practice_ids: list[int], master_key: bytes) -> list[FieldCipher]:
    """A cipher for every data key (each version) of these practices, in one query: a blind index written
    under an older key version is found too."""
    rows = session.execute(
        text("SELECT practice_id, wrapped_key, version FROM tenant_data_key WHERE practice_id = ANY(:p)"),
        {"p": practice_ids},
    )
    return [cipher_of_wrapped_key(master_key, p, bytes(wrapped), version) for p, wrapped, version in rows]
