"""Franchise inheritance with practice overrides, and client balances, read under RLS."""

from __future__ import annotations

from sqlalchemy import delete, update

from warehouse.billing.balances import client_balances
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.billing import Payment, ProductPriceOverride
from warehouse.schema.scheduling import AppointmentTypeOverride
from warehouse.tenants.shared_resources import effective_appointment_types, effective_prices


def test_practice_overrides_replace_franchise_values_and_others_inherit(world_db):
    world = world_db.world
    a1, a2 = world.practices["a1"], world.practices["a2"]
    with world_db.as_app(AccessContext.for_practices([a1.practice_id, a2.practice_id])) as session:
        (a1_type,) = effective_appointment_types(session, a1.practice_id)
        prices = {p.code: p for p in effective_prices(session, a1.practice_id)}
        session.rollback()
    assert (a1_type.duration_minutes, a1_type.overridden) == (20, True)  # franchise says 15
    assert set(prices) == {"C-CONS", "V-CHP"}
    consult, vaccination = prices["C-CONS"], prices["V-CHP"]
    assert (consult.price_cents, consult.franchise_price_cents, consult.overridden) == (4700, 4500, True)
    assert vaccination.overridden is False  # no practice override: the franchise's price


def test_without_an_override_the_franchise_value_applies(world_db):
    a1 = world_db.world.practices["a1"]
    with world_db.as_app(AccessContext.for_practices([a1.practice_id])) as session:
        session.execute(delete(AppointmentTypeOverride))
        session.execute(delete(ProductPriceOverride))
        (a1_type,) = effective_appointment_types(session, a1.practice_id)
        prices = {p.code: p for p in effective_prices(session, a1.practice_id)}
        session.rollback()
    assert (a1_type.duration_minutes, a1_type.overridden) == (15, False)
    assert (prices["C-CONS"].price_cents, prices["C-CONS"].overridden) == (4500, False)


def test_balances_are_invoices_minus_payments_per_client_of_visible_practices(world_db):
    world = world_db.world
    a1 = world.practices["a1"]
    with world_db.as_app(AccessContext.for_practices([a1.practice_id])) as session:
        settled = client_balances(session, only_outstanding=False)
        assert set(settled["practice_id"]) == {a1.practice_id}
        mine = settled.filter(settled["client_id"] == a1.client_id)
        assert mine["outstanding_cents"].to_list() == [0]  # the factory's invoice is paid in full
        assert client_balances(session).height == 0
        session.execute(update(Payment).values(amount_cents=Payment.amount_cents - 1000))
        owing = client_balances(session)
        session.rollback()
    assert owing.row(0, named=True)["outstanding_cents"] == 1000
    assert owing.row(0, named=True)["invoiced_cents"] == mine.row(0, named=True)["invoiced_cents"]
