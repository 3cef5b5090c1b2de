"""Onboarding the tenant hierarchy. These run in a system session: creating a practice is, by nature, an act
outside any one practice's access set."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.kernel.crypto import new_data_key, wrap_data_key
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.schema.tenancy import MODULES, PracticeModuleMode, Tenant, TenantDataKey


class TenantError(ValueError):
    """An onboarding request that cannot be carried out as asked (unknown parent, duplicate code…)."""


@dataclass(frozen=True)
class TenantRow:
    id: int
    kind: str
    code: str
    name: str
    parent_id: int | None
    franchise_id: int
    practice_id: int | None
    city: str | None


def _require(session: Session, tenant_id: int, kind: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.kind != kind:
        raise TenantError(f"no {kind} with id {tenant_id}")
    return tenant


def add_franchise(session: Session, *, code: str, name: str) -> Tenant:
    if tenant_id_by_code(session, code) is not None:
        raise TenantError(f"tenant code {code!r} is already taken")
    franchise_id = session.scalar(text("SELECT nextval(pg_get_serial_sequence('tenant', 'id'))"))
    tenant = Tenant(id=franchise_id, kind="franchise", franchise_id=franchise_id, code=code, name=name)
    session.add(tenant)
    session.flush()
    session.execute(text("SELECT seed_diagnosis_codes(:f)"), {"f": franchise_id})  # the coded diagnosis list
    return tenant


def add_practice(
    session: Session,
    *,
    franchise_id: int,
    code: str,
    name: str,
    city: str | None = None,
    master_key: bytes,
    animana_practice_id: str | None = None,
) -> Tenant:
    """Create the practice, its fact-table partitions, its audit chain, its data key and its module modes."""
    _require(session, franchise_id, "franchise")
    if tenant_id_by_code(session, code) is not None:
        raise TenantError(f"tenant code {code!r} is already taken")
    practice_id = session.scalar(text("SELECT nextval(pg_get_serial_sequence('tenant', 'id'))"))
    practice = Tenant(
        id=practice_id,
        kind="practice",
        parent_id=franchise_id,
        franchise_id=franchise_id,
        practice_id=practice_id,
        code=code,
        name=name,
        city=city,
        animana_practice_id=animana_practice_id,
    )
    session.add(practice)
    session.flush()
    session.execute(text("SELECT onboard_practice(:p)"), {"p": practice_id})
    session.add(
        TenantDataKey(
            practice_id=practice_id,
            version=1,
            wrapped_key=wrap_data_key(master_key, practice_id, new_data_key()),
        )
    )
    session.add_all(PracticeModuleMode(practice_id=practice_id, module=m, mode="animana") for m in MODULES)
    session.flush()
    return practice


def add_department(session: Session, *, practice_id: int, code: str, name: str) -> Tenant:
    practice = _require(session, practice_id, "practice")
    if tenant_id_by_code(session, code) is not None:
        raise TenantError(f"tenant code {code!r} is already taken")
    department = Tenant(
        kind="department",
        parent_id=practice_id,
        franchise_id=practice.franchise_id,
        practice_id=practice_id,
        code=code,
        name=name,
        city=practice.city,
    )
    session.add(department)
    session.flush()
    return department


def list_tenants(session: Session) -> list[TenantRow]:
    """Tenants visible to the session (all of them in a system session), franchise → practice → department."""
    rows = session.scalars(
        select(Tenant).order_by(Tenant.franchise_id, Tenant.practice_id.nulls_first(), Tenant.id)
    )
    return [
        TenantRow(t.id, t.kind, t.code, t.name, t.parent_id, t.franchise_id, t.practice_id, t.city)
        for t in rows
    ]
