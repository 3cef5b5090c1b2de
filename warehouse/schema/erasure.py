"""GDPR erasure: erased clients and the audit entries an erasure redacted (migration 0470, ``warehouse.privacy``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKeyConstraint, Identity, Index, String, Text, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table


class ClientErasure(Base):
    """A client whose personal data was erased: the pseudonym their row now carries, who erased it and why, and
    until when their pseudonymised clinical and financial records are kept (then purged: ``purged_at``)."""

    __tablename__ = "client_erasure"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        UniqueConstraint("practice_id", "client_id"),
        Index("ix_client_erasure_due", "retention_until", postgresql_where=text("purged_at IS NULL")),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    client_id: Mapped[int]  # no foreign key: a merge would move it (migration 0470)
    pseudonym: Mapped[str] = mapped_column(String(16))
    erased_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    erased_by: Mapped[int | None]
    reason: Mapped[str] = mapped_column(Text)
    retention_until: Mapped[dt.date] = mapped_column(Date)
    purged_at: Mapped[dt.datetime | None]


class AuditRedaction(Base):
    """An audit entry an erasure rewrote without the client's data, with the hash of its rewritten text
    (``warehouse.kernel.audit.verify_chain`` checks the entry against it)."""

    __tablename__ = "audit_redaction"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    erasure_id: Mapped[int]
    redacted_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    hash: Mapped[str] = mapped_column(Text)
