"""The ``device_message`` row: the raw copy stored before anything is interpreted, its content dedup key, and
the columns every path writes the same way (the one-by-one ``record_outcome`` and the batch path both build
theirs here, so the two cannot store a message differently).

Duplicates are decided by the database, by content: the dedup key (format + the fingerprint of the content
without the transmission envelope, ``DeviceOutcome.fingerprint``) is claimed by the raw INSERT itself with
``ON CONFLICT DO NOTHING`` on the partial unique index. A concurrent transaction holding the same key makes
PostgreSQL wait for it; the loser stores its copy as ``duplicate`` pointing at the winner. A control id is not
a key: analysers reuse them, so the same sender + control id with other content is a new message, noted with
``same_control_id_as`` (:func:`note_shared_control_ids`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import DeviceOutcome
from warehouse.kernel.tenancy import AccessContext, apply_context
from warehouse.schema.ingestion import DeviceMessage


@contextmanager
def device_session(engine: Engine, practice_id: int) -> Iterator[Session]:
    """One transaction of a practice's device feed under row-level security (commits on success).

    ``tenant_session`` also attaches ``practice_id IN (…)`` loader criteria for every practice entity so ORM
    statements prune partitions at plan time; building them costs several milliseconds per session - more
    than the database work of a whole group-commit batch of the MLLP listener. Every statement of the ingest
    path in this package names its ``practice_id``, so partitions are pruned without them; the policies still
    decide what is visible.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        _replan_when_due(session)
        apply_context(session, AccessContext.for_practices([practice_id]))
        yield session


# A device connection's cached plans are dropped this often (seconds). Every stored result runs foreign-key
# checks (lab_observation -> lab_order, patient) whose plans PostgreSQL keeps for the connection's life. A plan
# made while lab_order was small or never analysed (a new installation or practice, a feed that just started)
# reads all of the practice's orders for every result row (108 µs a row at 2,000 orders against 3 µs) and is
# only replaced when autovacuum's next ANALYZE invalidates it: up to a minute, and then only after 10 % growth.
# The MLLP bench without that ANALYZE measured 279 msg/s against 603. Re-planning once a second costs a few ms.
REPLAN_SECONDS = 1.0


def _replan_when_due(session: Session) -> None:
    info = session.connection().info  # per database connection, kept across pool check-outs
    now = time.monotonic()
    planned_since = info.setdefault("device_plans_since", now)
    if now - planned_since >= REPLAN_SECONDS:
        session.execute(text("DISCARD PLANS"))
        info["device_plans_since"] = now


def safe_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a device can send one. Shown as U+FFFD, the rest is kept."""
    return value.replace("\x00", "\ufffd")


def clip(value: str | None, length: int) -> str | None:
    return safe_text(value)[:length] if value else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dedup_key_for(outcome: DeviceOutcome) -> str | None:
    """Format + content fingerprint; None without a fingerprint (then the message is never a duplicate).

    The sender is part of the fingerprinted content (MSH-3/4, H-5), so it needs no place of its own here."""
    if not outcome.fingerprint:
        return None
    return f"{safe_text(outcome.detected_format)[:16]}|sha256:{outcome.fingerprint}"


def content_dedup_key(raw: bytes) -> str:
    """The dedup key of a file that carries no control id: its content. The same bytes dropped again (an
    import that stopped between its commit and moving the file, or a re-sent file) are then a duplicate."""
    return f"content|sha256:{sha256_hex(raw)}"


def raw_columns(raw: bytes, source: str, filename: str | None) -> dict[str, object]:
    """The columns of the bytes as received."""
    return {
        "source": safe_text(source)[:200],
        "filename": clip(filename, 255),
        "raw": raw,
        "sha256": sha256_hex(raw),
        "size_bytes": len(raw),
    }


def header_columns(outcome: DeviceOutcome) -> dict[str, object]:
    """The columns that say what the bytes were read as, whatever became of them."""
    return {
        "detected_format": clip(outcome.detected_format, 16),
        "sender": clip(outcome.sender, 200),
        "control_id": clip(outcome.control_id, 200),
    }


def store_raw(
    session: Session,
    practice_id: int,
    raw: bytes,
    source: str,
    filename: str | None = None,
    *,
    dedup_key: str | None = None,
) -> int:
    """Store the bytes as received (status ``received``) and return the message id.

    With ``dedup_key`` the insert also claims the key; if another message holds it (committed, or in a
    concurrent transaction that then commits) this copy is stored as ``duplicate`` pointing at the original.
    """
    values = {"practice_id": practice_id, **raw_columns(raw, source, filename), "status": "received"}
    if dedup_key is not None:
        claimed = session.execute(
            pg_insert(DeviceMessage)
            .values(**values, dedup_key=dedup_key)
            .on_conflict_do_nothing(
                index_elements=["practice_id", "dedup_key"], index_where=text("dedup_key IS NOT NULL")
            )
            .returning(DeviceMessage.id)
        ).scalar_one_or_none()
        if claimed is not None:
            return claimed
        original = session.scalar(
            select(DeviceMessage.id).where(
                DeviceMessage.practice_id == practice_id, DeviceMessage.dedup_key == dedup_key
            )
        )
        values |= {"status": "duplicate", "duplicate_of": original, "processed_at": utc_now()}
    return session.execute(insert(DeviceMessage).values(**values).returning(DeviceMessage.id)).scalar_one()


def set_message(session: Session, practice_id: int, message_id: int, **values: object) -> None:
    session.execute(
        update(DeviceMessage)
        .where(DeviceMessage.practice_id == practice_id, DeviceMessage.id == message_id)
        .values(**values)
    )


def claim_dedup_key(session: Session, practice_id: int, message_id: int, key: str) -> int | None:
    """Claim ``key`` for a stored message; the id of the message that already holds it, else None."""
    savepoint = session.begin_nested()
    try:
        set_message(session, practice_id, message_id, dedup_key=key)
        savepoint.commit()
        return None
    except IntegrityError:
        savepoint.rollback()
    return session.scalar(
        select(DeviceMessage.id).where(
            DeviceMessage.practice_id == practice_id, DeviceMessage.dedup_key == key
        )
    )


# The first other message of the same format and sender with the same control id (duplicates aside: they
# point at their original already), set on the messages of ``ids`` that have one. One statement for a batch;
# it sees the batch's own rows, so an analyser that sends one control id for everything is noted within a batch.
_NOTE_SHARED_CONTROL_IDS = text(
    """
    UPDATE device_message d SET same_control_id_as = f.first
    FROM (
        SELECT m.id,
               (SELECT min(o.id) FROM device_message o
                 WHERE o.practice_id = :practice_id AND o.sender = m.sender AND o.control_id = m.control_id
                   AND o.detected_format = m.detected_format AND o.id < m.id AND o.status <> 'duplicate'
               ) AS first
          FROM device_message m
         WHERE m.practice_id = :practice_id AND m.id = ANY(CAST(:ids AS bigint[])) AND m.control_id IS NOT NULL
    ) f
    WHERE d.practice_id = :practice_id AND d.id = f.id AND f.first IS NOT NULL
    RETURNING d.id, d.same_control_id_as
    """
)


def note_shared_control_ids(session: Session, practice_id: int, ids: list[int]) -> dict[int, int]:
    """{message id: the earlier message with its sender's control id} for those of ``ids`` that share one."""
    rows = session.execute(_NOTE_SHARED_CONTROL_IDS, {"practice_id": practice_id, "ids": ids})
    return {row.id: row.same_control_id_as for row in rows}
