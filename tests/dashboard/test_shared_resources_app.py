"""The shared-resource pages under AppTest: the franchise admin adds a price list item (a price typed the English
way is refused at its field, nothing saved), edits it, and reads its value per practice and its history; the
practice manager sets the practice's own price and goes back to the franchise's; each role is offered only its
own page, and a receptionist neither."""

from __future__ import annotations

from sqlalchemy import select

from tests.dashboard.test_ws_app import ok
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST, sign_in
from warehouse.schema.billing import Product, ProductPriceOverride
from warehouse.security.accounts import add_user

SHARED = "workspaces/franchise_resources.py"
OVERRIDES = "workspaces/practice_overrides.py"


def _user(db, username, full_name, tenant_id, role) -> None:
    with db.system() as session:
        add_user(session, username=username, full_name=full_name, password=PASSWORD,
                 memberships=[(tenant_id, role)])  # fmt: skip


def _product(db, franchise_id, code):
    with db.system() as session:
        return session.scalar(
            select(Product).where(Product.franchise_id == franchise_id, Product.code == code)
        )


def _tables(at, tab=0):
    """The tables of a tab, in page order (AppTest does not expose a dataframe's key)."""
    return [df.value for df in at.tabs[tab].dataframe]


def _submit(at, form_key):
    next(
        b for b in at.button if b.key is not None and b.key.startswith(f"FormSubmitter:{form_key}")
    ).click().run()
    ok(at)


def _errors_under(at, key):
    """The error shown right under the widget ``key`` in its form (its ``st.empty`` slot follows it)."""
    form = next(f for f in at.get("form") if any(getattr(w, "key", None) == key for w in f.children.values()))
    children = list(form.children.values())
    index = next(i for i, w in enumerate(children) if getattr(w, "key", None) == key)
    following = children[index + 1]
    return (
        [e.value for e in following.children.values()]
        if hasattr(following, "children")
        else [following.value]
    )


def test_franchise_admin_adds_edits_and_reads_an_item_per_practice_and_its_history(app_env):
    world = app_env.world
    fa = world.franchises["fa"]
    _user(app_env, "fa-admin", "Admin Franchise A", fa, "franchise_admin")
    at = sign_in("fa-admin")
    ok(at)
    assert not offered(at, OVERRIDES)  # overrides are the practice manager's
    at.switch_page(SHARED).run()
    ok(at)
    assert at.title[0].value == "Shared resources"
    assert [t.label for t in at.tabs] == [
        "Price list",
        "Appointment types",
        "Vaccine protocols",
        "Reminder templates",
        "Diagnosis list",
    ]
    prices = _tables(at)[0]
    assert list(prices.columns) == ["Code", "Name", "Kind", "Price excl. VAT", "VAT category", "Offered"]
    assert "€ 45,00" in prices["Price excl. VAT"].to_list()

    at.text_input(key="shared.prices.f.code").input("L-BLOED")
    at.text_input(key="shared.prices.f.name").input("Bloedonderzoek")
    at.selectbox(key="shared.prices.f.kind").set_value("lab")
    at.text_input(key="shared.prices.f.price_cents").input("12.50")  # the English way: refused, not guessed
    _submit(at, "shared.prices.form")
    assert any("Nothing was saved" in e.value for e in at.error)
    assert any("Dutch way" in m for m in _errors_under(at, "shared.prices.f.price_cents"))
    assert _product(app_env, fa, "L-BLOED") is None
    at.text_input(key="shared.prices.f.price_cents").input("1.250,50")
    at.selectbox(key="shared.prices.f.vat_rate_bp").set_value(900)
    _submit(at, "shared.prices.form")
    assert "Price list item L-BLOED added." in at.success[0].value
    added = _product(app_env, fa, "L-BLOED")
    assert (added.price_cents, added.vat_rate_bp, added.kind) == (125050, 900, "lab")

    at.selectbox(key="shared.prices.item").set_value(added.id).run()
    ok(at)
    assert at.text_input(key="shared.prices.f.price_cents").value == "1.250,50"  # the form starts from it
    at.text_input(key="shared.prices.f.price_cents").input("13")
    _submit(at, "shared.prices.form")
    assert "saved" in at.success[0].value
    assert _product(app_env, fa, "L-BLOED").price_cents == 1300
    per_practice = _tables(at)[1]
    assert per_practice.to_dict("records") == [
        {"Practice": "Praktijk a1", "Price excl. VAT": "€ 13,00", "Offered": "yes", "Own values": "none"},
        {"Practice": "Praktijk a2", "Price excl. VAT": "€ 13,00", "Offered": "yes", "Own values": "none"},
    ]
    versions = _tables(at)[2]
    assert versions["By"].to_list() == ["Admin Franchise A", "Admin Franchise A"]
    assert versions["Change"][0] == "Price excl. VAT € 1.250,50 → € 13,00"
    assert versions["When"][0][-3] == ":"  # "10 dec 2026 14:05": Dutch local time

    at.button(key="shared.prices.active").click().run()
    ok(at)
    assert "switched off" in at.success[0].value
    assert _product(app_env, fa, "L-BLOED").active is False


def test_practice_manager_sets_the_practice_price_and_goes_back_to_the_franchise(app_env):
    world = app_env.world
    a1, fa = world.practices["a1"], world.franchises["fa"]
    _user(app_env, "pm-a1", "Manager A1", a1.practice_id, "practice_manager")
    vaccination = _product(app_env, fa, "V-CHP")
    at = sign_in("pm-a1")
    ok(at)
    assert not offered(at, SHARED)  # the franchise's list is the franchise admin's
    at.switch_page(OVERRIDES).run()
    ok(at)
    assert at.title[0].value == "Practice overrides"
    at.selectbox(key="overrides.prices.item").set_value(vaccination.id).run()
    at.text_input(key="overrides.prices.f.price_cents").input("-5")
    _submit(at, "overrides.prices.form")
    assert any("negative" in m for m in _errors_under(at, "overrides.prices.f.price_cents"))
    at.text_input(key="overrides.prices.f.price_cents").input("55,00")
    _submit(at, "overrides.prices.form")
    assert "own values saved" in at.success[0].value
    row = _tables(at)[0].set_index("Code").loc["V-CHP"]
    assert (row["Price excl. VAT (franchise)"], row["Price excl. VAT (here)"], row["Own values"]) == (
        "€ 52,00", "€ 55,00", "yes")  # fmt: skip
    versions = _tables(at)[1]
    assert (versions["By"][0], versions["Where"][0]) == ("Manager A1", "Praktijk a1")
    assert versions["Change"][0] == "own values set: Price excl. VAT € 55,00"

    at.button(key="overrides.prices.clear").click().run()
    ok(at)
    assert "the franchise values apply again" in at.success[0].value
    with app_env.system() as session:
        assert session.scalar(select(ProductPriceOverride).where(
            ProductPriceOverride.practice_id == a1.practice_id, ProductPriceOverride.product_id == vaccination.id,
        )) is None  # fmt: skip


def test_a_receptionist_is_offered_neither_page(app_env):
    at = sign_in(RECEPTIONIST)
    ok(at)
    assert not offered(at, SHARED) and not offered(at, OVERRIDES)
