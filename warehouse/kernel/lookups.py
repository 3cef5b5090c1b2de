"""Finding a tenant by its code: the one query behind every ``--practice CODE``, partition key and notebook
that names a franchise, practice or department by code."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.schema.tenancy import Tenant


def tenant_id_by_code(session: Session, code: str, kind: str | None = None) -> int | None:
    """The id of the tenant with ``code`` (of ``kind`` — franchise, practice, department — when given), or
    None when there is none the session can see."""
    query = select(Tenant.id).where(Tenant.code == code)
    if kind is not None:
        query = query.where(Tenant.kind == kind)
    return session.scalar(query)
