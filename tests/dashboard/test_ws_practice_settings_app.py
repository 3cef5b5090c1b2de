"""The practice settings page under AppTest: the manager of a1 corrects the invoice details (a bad IBAN is
refused at its field and nothing is saved), finds them saved after leaving the page, sets up a new invoice series
(a colliding one is refused at the prefix) and billing's next number follows it; a receptionist cannot."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.dashboard.test_ws_app import ok
from tests.dashboard.test_ws_permissions_nav import offered
from tests.factories import PASSWORD, TZ
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.billing.drafts import create_draft
from warehouse.schema.operations import AuditLog
from warehouse.schema.tenancy import Tenant
from warehouse.security.accounts import access_context_for_user, add_user
from warehouse.security.permissions import Actor

MANAGER = "manager-a1"
PAGE = "workspaces/practice_settings.py"


def _manager(app_env) -> None:
    with app_env.system() as session:
        add_user(session, username=MANAGER, full_name="Manager A1", password=PASSWORD,
                 memberships=[(app_env.world.practices["a1"].practice_id, "practice_manager")])  # fmt: skip


def _column_with(at, key):
    """The form column holding the widget ``key`` (where its error is shown)."""
    return next(c for c in at.columns if any(w.key == key for w in c.text_input))


def test_manager_corrects_the_invoice_details_at_their_fields(app_env):
    a1 = app_env.world.practices["a1"]
    _manager(app_env)
    at = sign_in(MANAGER)
    at.switch_page(PAGE).run()
    ok(at)
    assert at.title[0].value == "Practice settings"
    assert at.text_input(key="settings.d.city").value == "Amsterdam"  # prefilled with what is saved
    assert at.text_input(key="settings.d.iban").value == "NL91ABNA0417164300"
    at.text_input(key="settings.d.city").input("Utrecht")
    at.text_input(key="settings.d.iban").input("NL00 ABNA 0417 1643 00")  # a wrong check sum
    click(at, "Save details")
    ok(at)
    iban_errors = [e.value for e in _column_with(at, "settings.d.iban").error]
    assert len(iban_errors) == 1 and "not a valid IBAN" in iban_errors[0]
    assert not _column_with(at, "settings.d.city").error
    assert any("Nothing was saved" in e.value for e in at.error)
    assert at.text_input(key="settings.d.city").value == "Utrecht"  # kept for correcting
    with app_env.system() as session:
        assert session.get(Tenant, a1.practice_id).city == "Amsterdam"  # not half-saved
    at.text_input(key="settings.d.iban").input("nl91 abna 0417 1643 00")
    click(at, "Save details")
    ok(at)
    assert "Details saved" in at.success[0].value
    with app_env.system() as session:
        practice = session.get(Tenant, a1.practice_id)
        assert (practice.city, practice.iban) == ("Utrecht", "NL91ABNA0417164300")
        entry = session.scalars(select(AuditLog).where(AuditLog.practice_id == a1.practice_id,
                                                       AuditLog.entity == "practice_details")
                                .order_by(AuditLog.seq.desc())).first()  # fmt: skip
        # Only what changed (the postcode in its written form "1016 GV" as well; the IBAN did not change).
        assert entry.detail["changes"] == {"city": {"old": "Amsterdam", "new": "Utrecht"},
                                           "postcode": {"old": "1016GV", "new": "1016 GV"}}  # fmt: skip
    # Another page and back: the fields show what is saved (the IBAN as kept, without spaces).
    at.switch_page("workspaces/hub.py").run()
    at.switch_page(PAGE).run()
    ok(at)
    assert at.text_input(key="settings.d.city").value == "Utrecht"
    assert at.text_input(key="settings.d.iban").value == "NL91ABNA0417164300"
    history = [df.value for df in at.dataframe][-1]  # the changes, in the expander at the end (labs above)
    assert history["By"][0] == "Manager A1" and "city Amsterdam → Utrecht" in history["Change"][0]


def test_manager_sets_up_a_new_series_and_billing_numbers_with_it(app_env):
    a1 = app_env.world.practices["a1"]
    _manager(app_env)
    with app_env.system() as session:
        context = access_context_for_user(session, a1.user_id)
    with app_env.as_app(context) as session:
        draft_id = create_draft(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}),
                                practice_id=a1.practice_id, client_id=a1.client_id).id  # fmt: skip
    at = sign_in(MANAGER)
    at.switch_page(PAGE).run()
    ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Current series": "2026-a1-NNNN", "Last number issued": "2026-a1-0001",
                       "Next number": "2026-a1-0002"}  # fmt: skip
    # A series whose first number repeats one already issued is refused at the prefix, with no way to set it up.
    at.text_input(key="settings.s.prefix").input("2026-A1-").run()
    at.radio(key="settings.s.per_year").set_value("running on").run()
    at.number_input(key="settings.s.width").set_value(4).run()
    ok(at)
    assert any("would repeat number 2026-a1-0001" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "settings.s.set_up"]
    at.text_input(key="settings.s.prefix").input("VC").run()
    at.radio(key="settings.s.per_year").set_value("per year").run()
    at.number_input(key="settings.s.width").set_value(5).run()
    ok(at)
    first = f"VC{dt.datetime.now(TZ).year}-00001"
    assert any(first in i.value for i in at.info)
    assert at.button(key="settings.s.set_up").disabled  # not before the confirmation
    at.checkbox(key=f"settings.s.confirm.{first}").check().run()
    at.button(key="settings.s.set_up").click().run()
    ok(at)
    assert f"the next invoice is numbered {first}" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Current series"], metrics["Next number"]) == ("VCYYYY-NNNNN", first)
    assert "set up here" in " ".join(c.value for c in at.caption)
    # Billing says the draft will get the new series' first number.
    at.session_state["bill.goto"] = draft_id
    at.switch_page("workspaces/billing.py").run()
    ok(at)
    assert any(f"Issuing gives number {first}" in c.value for c in at.caption)


def test_the_settings_are_offered_to_the_manager_not_to_the_receptionist(app_env):
    _manager(app_env)
    assert offered(sign_in(MANAGER), PAGE)
    assert not offered(sign_in(RECEPTIONIST), PAGE)
