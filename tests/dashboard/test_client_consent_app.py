"""The client card's consent section and "Export personal data" under AppTest: the receptionist sees each purpose
with who/when/how, records a grant (and a note too long is refused at its field); the practice manager exports
(audited), the receptionist has no export button."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.test_ws_app import ok, texts
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.privacy.consent import Purpose, consent_history, has_consent
from warehouse.security.accounts import add_user


def _card(at, rows):  # noqa: ANN001, ANN202
    at.session_state["card.client"] = (rows.practice_id, rows.client_id)
    at.switch_page("workspaces/client_card.py").run()
    ok(at)
    return at


def test_the_receptionist_reads_and_records_consent_on_the_card(app_env):
    a1 = app_env.world.practices["a1"]
    at = _card(sign_in(RECEPTIONIST), a1)
    content = texts(at)
    assert "Reminders by e-mail: given" in content and "Use in analytics: not given" in content
    assert "Vet a1 · in person" in content  # who and how of the factories' grant
    assert "never asked" in content
    key = f"card.consent.{a1.client_id}.0"
    at.selectbox(key=f"{key}.purpose").set_value(Purpose.REMINDERS_SMS)
    at.selectbox(key=f"{key}.how").set_value("phone")
    at.text_input(key=f"{key}.note").input("x" * 501)
    click(at, "Record consent given")
    ok(at)
    assert [e.value for e in at.error] == ["At most 500 characters (501 typed)."]
    with app_env.system() as session:
        assert not has_consent(session, a1.practice_id, a1.client_id, Purpose.REMINDERS_SMS)
    at.text_input(key=f"{key}.note").input("Belde zelf")
    click(at, "Record consent given")
    ok(at)
    assert at.success[0].value == "Reminders by SMS: given (was not given)."
    assert "Reminders by SMS: given" in texts(at) and "Balie A1 · by phone" in texts(at)
    with app_env.system() as session:
        assert has_consent(session, a1.practice_id, a1.client_id, Purpose.REMINDERS_SMS)
        newest = consent_history(session, a1.practice_id, a1.client_id)[0]
    assert (newest.recorded_by, newest.how, newest.note) == ("Balie A1", "phone", "Belde zelf")
    assert "Export personal data" not in texts(at)  # the front desk does not export


def test_the_practice_manager_exports_the_clients_personal_data(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        add_user(session, username="pm-a1", full_name="Praktijkmanager A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
    at = _card(sign_in("pm-a1"), a1)
    click(at, "Export personal data")
    ok(at)
    assert "The export is recorded in the audit log. Hand it to the client only." in texts(at)
    json_file, pdf_file = at.session_state[f"card.export.{a1.practice_id}.{a1.client_id}"]
    assert b'"email": "jansen.a1@example.nl"' in json_file and pdf_file.startswith(b"%PDF")
    with app_env.system() as session:
        exports = session.execute(
            text("SELECT count(*) FROM audit_log WHERE practice_id = :p AND action = 'export' "
                 "AND entity_ids = ARRAY[CAST(:c AS bigint)]"), {"p": a1.practice_id, "c": a1.client_id},
        ).scalar_one()  # fmt: skip
    assert exports == 1
