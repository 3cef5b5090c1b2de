"""Shared resources changed without SQL, under RLS: the franchise admin creates, edits and switches off the
franchise's items (each bad field refused at the field, nothing half-saved), a practice manager sets and clears
the practice's own values; each version reads back who, when and old -> new, and each practice's effective value.
The database refuses what the roles' tenants do not cover: another franchise's items, another practice's
overrides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import ProgrammingError

from tests.conftest import Database
from tests.factories import PASSWORD
from warehouse.kernel.tenancy import AccessContext
from warehouse.schema.billing import Product, ProductPriceOverride
from warehouse.schema.clinical import ReminderTemplate
from warehouse.schema.operations import AuditLog
from warehouse.security.accounts import access_context_for_user, add_user, roles_by_practice
from warehouse.security.permissions import Actor, NotPermitted
from warehouse.tenants import shared_edits as edits
from warehouse.tenants.shared_fields import SharedResourceError, SharedResourceInvalid
from warehouse.tenants.shared_history import effective_per_practice, item_history, item_list, practice_values
from warehouse.tenants.shared_resources import effective_prices

NEW_PRICE = {"code": "L-BLOED", "name": "Bloedonderzoek", "kind": "lab", "price_cents": "1.250,50",
             "vat_rate_bp": 2100}  # fmt: skip


@dataclass(frozen=True)
class Person:
    actor: Actor
    context: AccessContext


def _person(db: Database, username: str, full_name: str, tenant_id: int, role: str) -> Person:
    with db.system() as session:
        user = add_user(session, username=username, full_name=full_name, password=PASSWORD,
                        memberships=[(tenant_id, role)])  # fmt: skip
        return Person(Actor(user.id, roles_by_practice(session, user.id)),
                      access_context_for_user(session, user.id))  # fmt: skip


def _people(db: Database) -> dict[str, Person]:
    world = db.world
    return {
        "admin": _person(db, "fa-admin", "Admin Franchise A", world.franchises["fa"], "franchise_admin"),
        "manager": _person(db, "pm-a1", "Manager A1", world.practices["a1"].practice_id, "practice_manager"),
        "admin_b": _person(db, "fb-admin", "Admin Franchise B", world.franchises["fb"], "franchise_admin"),
    }  # fmt: skip


@pytest.fixture(scope="module")
def people(world_db):
    return _people(world_db)


def _product(session, franchise_id, code):
    return session.scalar(select(Product).where(Product.franchise_id == franchise_id, Product.code == code))


def test_admin_adds_an_item_edits_it_and_its_history_says_who_when_old_to_new(world_db, people):
    fa, admin = world_db.world.franchises["fa"], people["admin"]
    a1, a2 = world_db.world.practices["a1"], world_db.world.practices["a2"]
    with world_db.as_app(admin.context) as session:
        assert edits.managed_franchises(session, admin.actor) == {fa: "Franchise fa"}
        item_id = edits.create_item(session, admin.actor, "prices", franchise_id=fa, values=NEW_PRICE)
        created = session.get(Product, (fa, item_id))
        assert (created.price_cents, created.vat_rate_bp, created.updated_by) == (
            125050,
            2100,
            admin.actor.user_id,
        )
        assert edits.item_form(session, "prices", fa, item_id)["price_cents"] == "1.250,50"
        changed = edits.edit_item(session, admin.actor, "prices", franchise_id=fa, item_id=item_id,
                                  values={**NEW_PRICE, "price_cents": "13,00", "vat_rate_bp": 900})  # fmt: skip
        assert changed == {"price_cents": (125050, 1300), "vat_rate_bp": (2100, 900)}
        # Every practice of the franchise now offers it at the franchise's price.
        for practice in (a1, a2):
            price = next(p for p in effective_prices(session, practice.practice_id) if p.code == "L-BLOED")
            assert (price.price_cents, price.vat_rate_bp, price.overridden) == (1300, 900, False)
        edits.set_item_active(session, admin.actor, "prices", franchise_id=fa, item_id=item_id, active=False)
        assert all(p.code != "L-BLOED" for p in effective_prices(session, a1.practice_id))
        listed = item_list(session, "prices", fa).filter(id=item_id).row(0, named=True)
        assert (listed["Price excl. VAT"], listed["VAT category"], listed["Offered"]) == (
            "€ 13,00",
            "9 %",
            "no",
        )
        history = item_history(session, "prices", fa, item_id)
        session.rollback()
    assert history["by"].to_list() == ["Admin Franchise A"] * 3
    assert history["where"].to_list() == ["Franchise"] * 3
    assert history["change"].to_list() == [
        "Offered yes → no",
        "Price excl. VAT € 1.250,50 → € 13,00; VAT category 21 % → 9 %",
        "created: Code L-BLOED; Name Bloedonderzoek; Kind lab; Price excl. VAT € 1.250,50; VAT category 21 %; "
        "Offered yes",
    ]
    assert history["at"].is_sorted(descending=True)


def test_every_bad_field_is_refused_at_its_field_and_nothing_is_saved(world_db, people):
    fa, admin = world_db.world.franchises["fa"], people["admin"]
    bad = {"code": "C-CONS", "name": " ", "kind": "toys", "price_cents": "12.50", "vat_rate_bp": 600}
    with world_db.as_app(admin.context) as session:
        before = session.scalar(text("SELECT count(*) FROM product"))
        with pytest.raises(SharedResourceInvalid) as refused:
            edits.create_item(session, admin.actor, "prices", franchise_id=fa, values=bad)
        assert set(refused.value.errors) == {"name", "kind", "price_cents", "vat_rate_bp"}
        assert "Did you mean" in refused.value.errors["price_cents"]  # 12.50: 1.250 or 12,5?
        # The fields right, the code taken (regardless of case): refused at the code.
        with pytest.raises(SharedResourceInvalid) as taken:
            edits.create_item(
                session, admin.actor, "prices", franchise_id=fa, values={**NEW_PRICE, "code": "c-cons"}
            )
        assert taken.value.errors == {"code": "Code c-cons is already used for Consult."}
        assert session.scalar(text("SELECT count(*) FROM product")) == before
        type_id = session.scalar(text("SELECT id FROM appointment_type WHERE franchise_id = :f AND code = 'consult'"),
                                 {"f": fa})  # fmt: skip
        with pytest.raises(SharedResourceInvalid) as short:
            edits.edit_item(session, admin.actor, "appointment_types", franchise_id=fa, item_id=type_id,
                            values={"code": "consult", "name": "Consult", "duration_minutes": "0",
                                    "colour": "blue", "requires_vet": True})  # fmt: skip
        assert set(short.value.errors) == {"duration_minutes", "colour"}
        template_id = session.scalar(select(ReminderTemplate.id).where(ReminderTemplate.franchise_id == fa))
        with pytest.raises(SharedResourceInvalid) as placeholder:
            edits.edit_item(session, admin.actor, "reminder_templates", franchise_id=fa, item_id=template_id,
                            values={"code": "vacc", "channel": "email", "subject": "Vaccinatie {dier}",
                                    "body": "Beste {client", "days_before_due": "14"})  # fmt: skip
        assert "{dier} is not a placeholder" in placeholder.value.errors["subject"]
        assert "brace" in placeholder.value.errors["body"]
        session.rollback()


def test_manager_sets_and_clears_the_practice_price_and_each_practice_shows_its_own(world_db, people):
    world, manager, admin = world_db.world, people["manager"], people["admin"]
    fa, a1, a2 = world.franchises["fa"], world.practices["a1"], world.practices["a2"]
    with world_db.as_app(manager.context) as session:
        product_id = _product(session, fa, "V-CHP").id
        assert edits.set_override(session, manager.actor, "prices", practice_id=a1.practice_id,
                                  item_id=product_id, values={"price_cents": "55", "active": True}) is True  # fmt: skip
        assert (
            next(p for p in effective_prices(session, a1.practice_id) if p.code == "V-CHP").price_cents
            == 5500
        )
        assert edits.override_form(session, "prices", a1.practice_id, product_id) == {
            "price_cents": "55,00", "active": True}  # fmt: skip
        mine = practice_values(session, "prices", a1.practice_id).filter(Code="V-CHP").row(0, named=True)
        assert (mine["Price excl. VAT (franchise)"], mine["Price excl. VAT (here)"]) == ("€ 52,00", "€ 55,00")
        # Another practice is not the manager's: refused before anything is written.
        with pytest.raises(NotPermitted, match="Praktijk a2|practice"):
            edits.set_override(session, manager.actor, "prices", practice_id=a2.practice_id, item_id=product_id,
                               values={"price_cents": "1"})  # fmt: skip
        # Nor may a practice manager change the franchise's list.
        with pytest.raises(NotPermitted):
            edits.edit_item(session, manager.actor, "prices", franchise_id=fa, item_id=product_id,
                            values={**NEW_PRICE, "code": "V-CHP"})  # fmt: skip
        session.commit()
    audit = _latest_audit(world_db, a1.practice_id, "product_price_override")
    assert audit.actor_user_id == manager.actor.user_id  # the override is in the practice's audit chain
    with world_db.as_app(admin.context) as session:
        per_practice = effective_per_practice(session, "prices", fa, product_id)
        history = item_history(session, "prices", fa, product_id)
    assert per_practice.to_dicts() == [
        {
            "Practice": "Praktijk a1",
            "Price excl. VAT": "€ 55,00",
            "Offered": "yes",
            "Own values": "Price excl. VAT",
        },
        {"Practice": "Praktijk a2", "Price excl. VAT": "€ 52,00", "Offered": "yes", "Own values": "none"},
    ]
    assert history.row(0, named=True)["by"] == "Manager A1"
    assert history.row(0, named=True)["where"] == "Praktijk a1"
    assert history.row(0, named=True)["change"] == "own values set: Price excl. VAT € 55,00"
    with world_db.as_app(manager.context) as session:
        # Switched off here, and back to the franchise's price: the override keeps only "not offered".
        edits.set_override(session, manager.actor, "prices", practice_id=a1.practice_id, item_id=product_id,
                           values={"price_cents": "", "active": False})  # fmt: skip
        assert all(p.code != "V-CHP" for p in effective_prices(session, a1.practice_id))
        assert edits.clear_override(session, manager.actor, "prices", practice_id=a1.practice_id,
                                    item_id=product_id) is True  # fmt: skip
        assert edits.clear_override(session, manager.actor, "prices", practice_id=a1.practice_id,
                                    item_id=product_id) is False  # fmt: skip
        history = item_history(session, "prices", fa, product_id, practice_id=a1.practice_id)
        session.commit()
    assert history["change"].to_list()[:2] == [
        "own values removed: the franchise's apply again",
        "Price excl. VAT € 55,00 → franchise value; Offered franchise value → no",
    ]


def test_rls_lets_each_role_write_only_its_own_tenants(world_db, people):
    world = world_db.world
    fa, fb = world.franchises["fa"], world.franchises["fb"]
    a1, a2 = world.practices["a1"], world.practices["a2"]
    # The franchise admin writes the franchise's rows (every practice of it is in their context).
    assert set(people["admin"].context.practice_ids) == {a1.practice_id, a2.practice_id}
    with world_db.as_app(people["admin"].context) as session:
        assert (
            session.execute(update(Product).where(Product.franchise_id == fa).values(name="X")).rowcount == 2
        )
        # Franchise B's items are not theirs: not even visible, so nothing is changed …
        assert (
            session.execute(update(Product).where(Product.franchise_id == fb).values(name="X")).rowcount == 0
        )
        session.rollback()
    with (
        world_db.as_app(people["admin"].context) as session,
        pytest.raises(ProgrammingError, match="row-level"),
    ):
        # … and a row for franchise B cannot be added.
        _insert(session, Product(franchise_id=fb, code="SNEAK", name="Sneak", kind="goods", price_cents=1,
                                 vat_rate_bp=2100))  # fmt: skip
    # The practice manager writes their practice's override; another practice's is refused by the database.
    with world_db.as_app(people["manager"].context) as session:
        product_id = _product(session, fa, "V-CHP").id
        session.add(ProductPriceOverride(practice_id=a1.practice_id, product_id=product_id, franchise_id=fa,
                                         price_cents=100))  # fmt: skip
        session.flush()
        session.rollback()
    with (
        world_db.as_app(people["manager"].context) as session,
        pytest.raises(ProgrammingError, match="row-level"),
    ):
        _insert(session, ProductPriceOverride(practice_id=a2.practice_id, product_id=product_id, franchise_id=fa,
                                              price_cents=100))  # fmt: skip
    # The service refuses the franchise admin of B at franchise A: A's practices are not in their context.
    with (
        world_db.as_app(people["admin_b"].context) as session,
        pytest.raises(SharedResourceError, match="No practice"),
    ):
        edits.create_item(session, people["admin_b"].actor, "prices", franchise_id=fa, values=NEW_PRICE)


def _insert(session, row) -> None:
    session.add(row)
    session.flush()


def _latest_audit(db, practice_id, entity):
    with db.system() as session:
        return session.scalars(select(AuditLog).where(AuditLog.practice_id == practice_id, AuditLog.entity == entity)
                               .order_by(AuditLog.seq.desc())).first()  # fmt: skip


def test_the_other_three_resources_are_kept_the_same_way(ws_db):
    world_db = ws_db  # a world of its own: this test commits
    people = _people(ws_db)
    world, admin, manager = world_db.world, people["admin"], people["manager"]
    fa, a1 = world.franchises["fa"], world.practices["a1"]
    with world_db.as_app(admin.context) as session:
        protocol_id = edits.create_item(session, admin.actor, "vaccine_protocols", franchise_id=fa, values={
            "code": "cat-core", "name": "Kat basis", "species": "cat", "booster_interval_days": "1.095"})  # fmt: skip
        template_id = edits.create_item(session, admin.actor, "reminder_templates", franchise_id=fa, values={
            "code": "vacc-sms", "channel": "sms", "subject": "Vaccinatie {patient}",
            "body": "{patient} moet op {due_date} gevaccineerd worden. Bel {practice}.", "days_before_due": "7"})  # fmt: skip
        # A reminder template is switched off like the others (migration 0440), not deleted.
        edits.set_item_active(session, admin.actor, "reminder_templates", franchise_id=fa, item_id=template_id,
                              active=False)  # fmt: skip
        assert session.get(ReminderTemplate, (fa, template_id)).active is False
        type_id = session.scalar(text("SELECT id FROM appointment_type WHERE franchise_id = :f AND code = 'consult'"),
                                 {"f": fa})  # fmt: skip
        edits.edit_item(session, admin.actor, "appointment_types", franchise_id=fa, item_id=type_id, values={
            "code": "consult", "name": "Consult", "duration_minutes": "25", "colour": "#aa0000",
            "requires_vet": True})  # fmt: skip
        session.commit()
    with world_db.as_app(manager.context) as session:
        edits.set_override(session, manager.actor, "vaccine_protocols", practice_id=a1.practice_id,
                           item_id=protocol_id, values={"booster_interval_days": "365", "active": True})  # fmt: skip
        with pytest.raises(SharedResourceInvalid) as refused:
            edits.set_override(session, manager.actor, "appointment_types", practice_id=a1.practice_id,
                               item_id=type_id, values={"duration_minutes": "600", "colour": "", "active": True})  # fmt: skip
        assert set(refused.value.errors) == {"duration_minutes"}
        here = (
            practice_values(session, "vaccine_protocols", a1.practice_id)
            .filter(Code="cat-core")
            .row(0, named=True)
        )
        session.commit()
    assert (here["Booster interval (franchise)"], here["Booster interval (here)"]) == (
        "1.095 days",
        "365 days",
    )
    with world_db.as_app(admin.context) as session:
        per_practice = effective_per_practice(session, "appointment_types", fa, type_id).to_dicts()
        type_history = item_history(session, "appointment_types", fa, type_id)
    # Both practices keep their own 20 minutes (the factories' overrides) and follow the franchise's new colour.
    assert [(r["Practice"], r["Duration"], r["Colour"], r["Own values"]) for r in per_practice] == [
        ("Praktijk a1", "20 min", "#AA0000", "Duration"), ("Praktijk a2", "20 min", "#AA0000", "Duration")]  # fmt: skip
    assert type_history["change"][0] == "Duration 15 min → 25 min; Colour #4C78A8 → #AA0000"


def test_a_practice_whose_prices_come_from_animana_is_told_so_and_keeps_them_once_billing_is_native(
    world_db, people
):
    """The sync writes a linked practice's Animana prices as its own values: one set here would silently be put
    back by the next sync, so it is refused with the reason until billing is native."""
    world, manager = world_db.world, people["manager"]
    fa, a1 = world.franchises["fa"], world.practices["a1"].practice_id
    with world_db.system() as session:
        session.execute(text("UPDATE tenant SET animana_practice_id = 4711 WHERE id = :p"), {"p": a1})
        session.execute(
            text(
                "INSERT INTO practice_module_mode (practice_id, module, mode) VALUES (:p, 'invoices', 'hybrid') "
                "ON CONFLICT (practice_id, module) DO UPDATE SET mode = 'hybrid'"
            ),
            {"p": a1},
        )
    try:
        with world_db.as_app(manager.context) as session:
            product_id = _product(session, fa, "V-CHP").id
            with pytest.raises(SharedResourceError, match="come from Animana") as refused:
                edits.set_override(session, manager.actor, "prices", practice_id=a1, item_id=product_id,
                                   values={"price_cents": "60"})  # fmt: skip
            assert refused.value.field == "price_cents"
        with world_db.system() as session:
            session.execute(
                text(
                    "UPDATE practice_module_mode SET mode = 'native' WHERE practice_id = :p AND module = 'invoices'"
                ),
                {"p": a1},
            )
        with world_db.as_app(manager.context) as session:
            assert edits.set_override(session, manager.actor, "prices", practice_id=a1, item_id=product_id,
                                      values={"price_cents": "60"}) is True  # fmt: skip
            assert next(p for p in effective_prices(session, a1) if p.code == "V-CHP").price_cents == 6000
            edits.clear_override(session, manager.actor, "prices", practice_id=a1, item_id=product_id)
            session.commit()
    finally:
        with world_db.system() as session:
            session.execute(
                text(
                    "UPDATE practice_module_mode SET mode = 'animana' WHERE practice_id = :p AND module = 'invoices'"
                ),
                {"p": a1},
            )
            session.execute(text("UPDATE tenant SET animana_practice_id = NULL WHERE id = :p"), {"p": a1})
