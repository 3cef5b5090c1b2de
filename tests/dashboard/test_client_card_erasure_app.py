"""The client card's "Erase personal data" under AppTest: a practice manager is told why not while an invoice is
open, then — once it is settled — what the erasure does, confirms it, and the card shows the pseudonym. Roles
without PRIVACY_MANAGE do not get the action."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import RECEPTIONIST, sign_in
from warehouse.security.accounts import add_user

MANAGER = "manager-a1"


def _card(at, rows):  # noqa: ANN001, ANN202
    at.session_state["card.client"] = (rows.practice_id, rows.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    return at


def test_a_practice_manager_is_refused_while_unpaid_then_erases_after_confirming(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        add_user(session, username=MANAGER, full_name="Praktijkmanager A1", password="Kliniek-Test-2026!",
                 memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
        unpaid = session.execute(
            text("INSERT INTO invoice (practice_id, number, client_id, issued_on, status, total_excl_cents, "
                 "vat_cents, total_incl_cents) VALUES (:p, '2026-a1-0002', :c, current_date, 'issued', 2000, 420, "
                 "2420) RETURNING id"),
            {"p": a1.practice_id, "c": a1.client_id},
        ).scalar_one()  # fmt: skip
    key = f"erase.{a1.practice_id}.{a1.client_id}"
    at = _card(sign_in(MANAGER, "Kliniek-Test-2026!"), a1)
    assert "The client still owes € 24,20: invoice 2026-a1-0002 (€ 24,20 open)." in texts(at)
    assert not any(b.key == f"{key}.go" for b in at.button)

    with app_env.system() as session:
        session.execute(
            text("INSERT INTO payment (practice_id, invoice_id, client_id, method, amount_cents) "
                 "VALUES (:p, :i, :c, 'pin', 2420)"),
            {"p": a1.practice_id, "i": unpaid, "c": a1.client_id},
        )  # fmt: skip
    at = _card(at, a1)
    assert "Erasing removes **J. Jansen-a1**'s name, address" in texts(at)
    assert "Kept, under a pseudonym: 1 animal(s) with 1 visit(s) and 2 invoice(s), until **" in texts(at)
    go = at.button(key=f"{key}.go")
    assert go.disabled  # not before the confirmation is ticked
    at.checkbox(key=f"{key}.sure").check().run()
    at.button(key=f"{key}.go").click().run()
    ok(at)
    with app_env.system() as session:
        pseudonym = session.execute(
            text("SELECT pseudonym FROM client_erasure WHERE practice_id = :p AND client_id = :c"),
            {"p": a1.practice_id, "c": a1.client_id},
        ).scalar_one()
    assert [s.value for s in at.success][0].startswith(
        f"Personal data erased: the client is now “Erased client {pseudonym}”."
    )
    assert at.title[0].value == f"Erased client {pseudonym} (inactive)"
    assert "Jansen" not in texts(at)


def test_a_receptionist_gets_no_erase_action(app_env):
    a1 = app_env.world.practices["a1"]
    at = _card(sign_in(RECEPTIONIST), a1)
    assert "Erase personal data" not in [e.label for e in at.expander]
