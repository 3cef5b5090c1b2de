"""Franchise-level shared resources as a practice sees them: the franchise definition, overridden where the
practice set its own value. (Every change to either level is versioned by a trigger into
``shared_resource_change``.)"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from warehouse.schema.billing import Product, ProductPriceOverride
from warehouse.schema.scheduling import AppointmentType, AppointmentTypeOverride
from warehouse.schema.tenancy import Tenant


@dataclass(frozen=True)
class EffectiveAppointmentType:
    id: int
    franchise_id: int
    code: str
    name: str
    duration_minutes: int
    colour: str
    species: tuple[str, ...] | None
    requires_vet: bool
    overridden: bool


@dataclass(frozen=True)
class EffectivePrice:
    product_id: int
    franchise_id: int
    code: str
    name: str
    kind: str
    price_cents: int
    vat_rate_bp: int
    franchise_price_cents: int
    overridden: bool


def _franchise_of(session: Session, practice_id: int) -> int:
    franchise_id = session.scalar(select(Tenant.franchise_id).where(Tenant.id == practice_id))
    if franchise_id is None:
        raise LookupError(f"practice {practice_id} is not visible in this session")
    return franchise_id


def effective_appointment_types(session: Session, practice_id: int) -> list[EffectiveAppointmentType]:
    """Active appointment types of the practice's franchise with the practice's overrides applied."""
    franchise_id = _franchise_of(session, practice_id)
    o = AppointmentTypeOverride
    rows = session.execute(
        select(AppointmentType, o)
        .outerjoin(o, and_(o.appointment_type_id == AppointmentType.id, o.practice_id == practice_id))
        .where(AppointmentType.franchise_id == franchise_id, AppointmentType.active)
        .where(func.coalesce(o.active, True))
        .order_by(AppointmentType.name)
    ).all()
    return [
        EffectiveAppointmentType(
            id=t.id,
            franchise_id=t.franchise_id,
            code=t.code,
            name=t.name,
            duration_minutes=(ov.duration_minutes if ov and ov.duration_minutes else t.duration_minutes),
            colour=(ov.colour if ov and ov.colour else t.colour),
            species=tuple(t.species) if t.species else None,
            requires_vet=t.requires_vet,
            overridden=ov is not None,
        )  # fmt: skip
        for t, ov in rows
    ]


def effective_prices(session: Session, practice_id: int) -> list[EffectivePrice]:
    """The practice's price list: franchise prices, replaced by the practice's own where it has one."""
    franchise_id = _franchise_of(session, practice_id)
    o = ProductPriceOverride
    rows = session.execute(
        select(Product, o)
        .outerjoin(o, and_(o.product_id == Product.id, o.practice_id == practice_id))
        .where(Product.franchise_id == franchise_id, Product.active)
        .where(func.coalesce(o.active, True))
        .order_by(Product.code)
    ).all()
    return [
        EffectivePrice(
            product_id=p.id,
            franchise_id=p.franchise_id,
            code=p.code,
            name=p.name,
            kind=p.kind,
            price_cents=ov.price_cents if ov and ov.price_cents is not None else p.price_cents,
            vat_rate_bp=p.vat_rate_bp,
            franchise_price_cents=p.price_cents,
            overridden=ov is not None and ov.price_cents is not None,
        )  # fmt: skip
        for p, ov in rows
    ]
