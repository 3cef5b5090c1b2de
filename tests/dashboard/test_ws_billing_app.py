"""The billing workspace under AppTest: a receptionist invoices a visit, issues it, takes a pin payment (with a
field error first); practice A never sees practice B."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import RECEPTIONIST, click, sign_in
from warehouse.schema.billing import Invoice, Payment
from warehouse.schema.clinical import Visit


def test_receptionist_invoices_a_visit_issues_and_takes_a_payment(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        visit = Visit(practice_id=a1.practice_id, patient_id=a1.patient_id, vet_user_id=a1.user_id,
                      started_at=dt.datetime.now(dt.UTC), reason="Oorontsteking")  # fmt: skip
        session.add(visit)
        session.flush()
        visit_id = visit.id
    at = sign_in(RECEPTIONIST)
    at.switch_page("workspaces/billing.py").run()
    ok(at)
    assert at.title[0].value == "Billing" and "2026-b1" not in texts(at)
    at.button(key=f"bill.from_visit.{visit_id}").click().run()
    ok(at)
    assert "Draft invoice created" in at.success[0].value
    with app_env.system() as session:
        draft = session.scalar(select(Invoice).where(Invoice.visit_id == visit_id))
    assert draft.status == "draft" and draft.total_incl_cents == 5687  # a1's consult price 47,00 + 21 %
    # A bad discount stays on its field, the typed quantity is kept.
    at.selectbox(key="bill.l.product").set_value(None)
    at.text_input(key="bill.l.quantity").input("2")
    at.text_input(key="bill.l.discount").input("150")
    click(at, "Add line")
    ok(at)
    assert any("Choose an item" in e.value for e in at.error)
    assert at.text_input(key="bill.l.quantity").value == "2"
    click(at, "Issue invoice")
    ok(at)
    assert "issued" in at.success[0].value
    with app_env.system() as session:
        issued = session.get(Invoice, (a1.practice_id, draft.id))
    assert issued.status == "issued" and issued.number == "2026-a1-0002"
    amount_key = f"bill.p.amount.{draft.id}"
    assert at.text_input(key=amount_key).value == "56,87"
    at.text_input(key=amount_key).input("100,00")
    click(at, "Record payment")
    ok(at)
    assert "is open" in at.error[0].value and at.text_input(key=amount_key).value == "100,00"
    at.text_input(key=amount_key).input("56,87")
    at.selectbox(key="bill.p.method").set_value("pin")
    click(at, "Record payment")
    ok(at)
    with app_env.system() as session:
        payment = session.scalar(select(Payment).where(Payment.invoice_id == draft.id))
        assert payment.method == "pin" and payment.amount_cents == 5687
        assert session.get(Invoice, (a1.practice_id, draft.id)).status == "paid"


def test_vet_of_a1_sees_only_a1_invoices_and_balances(app_env):
    at = sign_in("vet-a1")
    at.switch_page("workspaces/billing.py").run()
    ok(at)
    content = texts(at)
    assert "2026-a1-0001" in str([s.options for s in at.selectbox]) and "b1" not in content.replace(
        "vet-a1", ""
    )


def test_a_negative_quantity_is_refused_at_its_field_and_the_draft_stays_issuable(app_env):
    a1 = app_env.world.practices["a1"]
    with app_env.system() as session:
        visit = Visit(practice_id=a1.practice_id, patient_id=a1.patient_id, vet_user_id=a1.user_id,
                      started_at=dt.datetime.now(dt.UTC), reason="Controle")  # fmt: skip
        session.add(visit)
        session.flush()
        visit_id = visit.id
    at = sign_in(RECEPTIONIST)
    at.switch_page("workspaces/billing.py").run()
    at.button(key=f"bill.from_visit.{visit_id}").click().run()
    ok(at)
    assert at.tabs[0].label == "Invoices"  # the new draft is shown, not the tab of visits
    with app_env.system() as session:
        draft = session.scalar(select(Invoice).where(Invoice.visit_id == visit_id))
    at.selectbox(key="bill.l.product").select_index(0)
    at.text_input(key="bill.l.quantity").input("-2")
    click(at, "Add line")
    ok(at)  # no traceback
    assert any("more than 0" in e.value for e in at.error)
    assert at.text_input(key="bill.l.quantity").value == "-2"  # kept for correcting
    assert at.button(key="bill.issue")  # the page stays usable
    with app_env.system() as session:
        assert session.get(Invoice, (a1.practice_id, draft.id)).total_incl_cents == 5687  # nothing added
    # A removal without a reason is refused at the reason; with one it is kept and shown.
    click(at, "Remove line")
    ok(at)
    assert any("Say why" in e.value for e in at.error)
    at.text_input(key="bill.rm.reason").input("Gratis controle")
    click(at, "Remove line")
    ok(at)
    assert "reason is kept" in at.success[0].value
    assert "Gratis controle" in texts(at) or any("Gratis controle" in str(df.value) for df in at.dataframe)
