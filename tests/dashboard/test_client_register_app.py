"""The "Register client" page and the client card's contact edit under AppTest: a receptionist registers a client
(errors at their fields first, then likely duplicates to choose from), the card opens; a role without
CLIENTS_WRITE has neither the page nor the edit."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import MASTER_KEY
from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.kernel.ciphers import practice_cipher
from warehouse.privacy.consent import Purpose, has_consent
from warehouse.schema.clients import Client

PAGE = "workspaces/client_register.py"


def _fill(at, **values) -> None:  # noqa: ANN001, ANN003
    for name, value in values.items():
        at.text_input(key=f"reg.{name}").input(value)


def _field_errors(at) -> list[str]:  # noqa: ANN001
    return [e.value for e in at.error]


def _bakkers(db) -> list[Client]:  # noqa: ANN001
    with db.system() as session:
        return list(session.scalars(select(Client).where(Client.last_name == "Bakker")))


def test_receptionist_registers_a_client_after_fixing_the_fields_and_the_card_opens(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    ok(at)
    assert at.title[0].value == "Register client"
    _fill(at, last_name="Bakker", street="Kerkstraat", house_number="3", postcode="1234 A", city="Utrecht",
          phone="06-1234", email="joost@bakker")  # fmt: skip
    click(at, "Register")
    ok(at)
    errors = _field_errors(at)
    assert len(errors) == 3
    assert any("four digits and two letters" in e for e in errors)
    assert any("not a valid Dutch number" in e for e in errors)
    assert any("is not a domain name" in e for e in errors)
    assert at.text_input(key="reg.last_name").value == "Bakker"  # nothing typed is lost
    assert _bakkers(app_env) == []
    _fill(at, postcode="3511ab", phone="06 2233 4455", email="joost@bakker.nl")
    at.checkbox(key="reg.consent_reminders_email").check()
    click(at, "Register")
    ok(at)
    assert not at.error
    assert at.title[0].value == "Bakker"  # the client card of the new client
    assert "Bakker is registered." in at.success[0].value
    content = texts(at)
    assert "joost@bakker.nl" in content and "+31622334455" in content and "Kerkstraat 3" in content
    [row] = _bakkers(app_env)
    assert (row.practice_id, row.postcode) == (a1.practice_id, "3511 AB")
    with app_env.system() as session:
        assert has_consent(session, a1.practice_id, row.id, Purpose.REMINDERS_EMAIL)
        assert not has_consent(session, a1.practice_id, row.id, Purpose.REMINDERS_SMS)


def test_likely_duplicates_are_shown_first_and_the_user_chooses(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.switch_page(PAGE).run()
    _fill(at, last_name="Bakker", phone="06-12345678")  # the factories' Jansen-a1 has this number
    click(at, "Register")
    ok(at)
    content = texts(at)
    assert "This may be a client you already have" in content and "same phone number" in content
    assert "J. Jansen-a1" in content
    assert _bakkers(app_env) == []  # nothing saved until the user chooses
    click(at, "Open client card")
    ok(at)
    assert at.title[0].value == "J. Jansen-a1"
    assert _bakkers(app_env) == []
    at.switch_page(PAGE).run()
    _fill(at, last_name="Bakker", phone="06-12345678")
    click(at, "Register")
    click(at, "Register anyway")
    ok(at)
    assert at.title[0].value == "Bakker"
    [row] = _bakkers(app_env)
    assert row.practice_id == a1.practice_id


def test_receptionist_edits_the_contact_on_the_card_with_errors_at_the_field(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in(RECEPTIONIST)
    at.session_state["card.client"] = (a1.practice_id, a1.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    key = f"card.edit.{a1.client_id}.0"
    at.text_input(key=f"{key}.postcode").input("0123 AB")
    at.text_input(key=f"{key}.phone").input("06 8765 4321")
    click(at, "Save contact details")
    ok(at)
    assert [e.value for e in at.error] == [
        "Postcode '0123 AB' cannot start with 0 (Dutch postcodes run 1000–9999)."
    ]
    with app_env.system() as session:
        assert session.get(Client, (a1.practice_id, a1.client_id)).postcode == "1012AB"  # nothing half-saved
    at.text_input(key=f"{key}.postcode").input("1012 AB")
    click(at, "Save contact details")
    ok(at)
    assert at.success[0].value == "Saved: phone, postcode."
    assert "+31687654321" in texts(at)
    assert at.text_input(key=f"card.edit.{a1.client_id}.1.phone").value == "+31687654321"
    with app_env.system() as session:
        row = session.get(Client, (a1.practice_id, a1.client_id))
        assert (
            practice_cipher(session, a1.practice_id, MASTER_KEY).decrypt("phone", row.phone_enc)
            == "+31687654321"
        )


def test_a_role_without_clients_write_has_no_register_page_and_no_contact_edit(app_env):
    a1 = app_env.world.practices["a1"]
    at = sign_in("fm-a")  # franchise manager: reads client cards, registers nobody
    ok(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
    at.session_state["card.client"] = (a1.practice_id, a1.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    assert "Jansen-a1" in at.title[0].value
    assert "Save contact details" not in texts(at)
