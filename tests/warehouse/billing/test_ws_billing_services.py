"""Billing services against real PostgreSQL under RLS: invoice from a visit with the practice's prices, VAT per
line and rate, discounts, gap-free numbering under concurrent issuers, payments, credit notes and balances,
and the PDF."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from tests.conftest import MASTER_KEY
from warehouse.billing import invoice_lines, invoice_views, issuing, payments
from warehouse.billing.balances import client_balances, client_outstanding
from warehouse.billing.drafts import create_draft, draft_from_visit
from warehouse.billing.invoices import BillingError, parse_amount, price_list
from warehouse.billing.pdf import invoice_pdf
from warehouse.billing.vat import line_amounts
from warehouse.schema.billing import Invoice, InvoiceLine, Product
from warehouse.schema.clinical import Prescription, Visit
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor, NotPermitted

DESK = frozenset({"receptionist"})
DAY = dt.date(2026, 12, 1)


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def _medicine_visit(db, code):
    """A second visit of the practice's patient with a 9 % medicine prescribed (2.5 units à 3.33)."""
    rows = db.world.practices[code]
    with db.system() as session:
        product = Product(franchise_id=rows.franchise_id, code=f"M-{code}", name="Meloxicam 1,5 mg/ml",
                          kind="medicine", price_cents=333, vat_rate_bp=900, dispensing_category="UDA")  # fmt: skip
        session.add(product)
        visit = Visit(practice_id=rows.practice_id, patient_id=rows.patient_id, vet_user_id=rows.user_id,
                      started_at=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), reason="Kreupel")  # fmt: skip
        session.add(visit)
        session.flush()
        session.add(Prescription(practice_id=rows.practice_id, patient_id=rows.patient_id, visit_id=visit.id,
                                 franchise_id=rows.franchise_id, product_id=product.id, product_name=product.name,
                                 quantity=Decimal("2.5"), dispensing_category="UDA"))  # fmt: skip
        return visit.id, product.id


def test_invoice_from_a_visit_vat_per_rate_discount_issue_pay_credit_and_balance(ws_db):
    a1 = ws_db.world.practices["a1"]
    visit_id, product_id = _medicine_visit(ws_db, "a1")
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = draft_from_visit(session, actor, practice_id=a1.practice_id, visit_id=visit_id)
        view = invoice_views.invoice_view(session, a1.practice_id, draft.id)
        # The consult at a1's own price (4700, franchise 4500) and the prescribed medicine at 9 %.
        assert [(r["description"], r["unit_price_cents"], r["vat_rate_bp"]) for r in view.lines.iter_rows(named=True)] == [
            ("Consult", 4700, 2100), ("Meloxicam 1,5 mg/ml", 333, 900)]  # fmt: skip
        invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                               quantity="1", discount_percent="10")  # fmt: skip
        with pytest.raises(BillingError) as bad:
            invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                                   quantity="1", discount_percent="150")  # fmt: skip
        assert bad.value.field == "discount"
        with pytest.raises(BillingError, match="already on invoice"):
            draft_from_visit(session, actor, practice_id=a1.practice_id, visit_id=visit_id)
        issued = issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        view = invoice_views.invoice_view(session, a1.practice_id, draft.id)
    lines = [line_amounts(Decimal("1"), 4700, 2100), line_amounts(Decimal("2.5"), 333, 900),
             line_amounts(Decimal("1"), 333, 900, 33)]  # fmt: skip
    # 2.5 × 3.33 = 8.325 → 8.33; 9 % of 833 = 74.97 → 75; the 10 % discount on 3.33 is 0.33.
    assert [ln.excl_cents for ln in lines] == [4700, 833, 300] and [ln.vat_cents for ln in lines] == [
        987,
        75,
        27,
    ]
    assert view.total_excl_cents == sum(ln.excl_cents for ln in lines) == 5833
    assert view.vat_cents == sum(ln.vat_cents for ln in lines) and view.vat_by_rate == {2100: 987, 900: 102}
    assert view.total_incl_cents == 5833 + 987 + 102
    assert issued.number == "2026-a1-0002" and issued.due_on == DAY + dt.timedelta(days=14)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        with pytest.raises(BillingError, match="only a draft"):
            invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                                   quantity="1")  # fmt: skip
        with pytest.raises(BillingError, match="is open"):
            payments.record_payment(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, method="pin",
                                    amount_cents=view.total_incl_cents + 1)  # fmt: skip
        payments.record_payment(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, method="cash",
                                amount_cents=2000)  # fmt: skip
        assert client_outstanding(session, a1.practice_id, a1.client_id) == view.total_incl_cents - 2000
        payments.record_payment(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, method="pin",
                                amount_cents=parse_amount(f"{(view.total_incl_cents - 2000) / 100:.2f}".replace(".", ",")))  # fmt: skip
        assert invoice_views.invoice_view(session, a1.practice_id, draft.id).status == "paid"
        note = issuing.credit(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        balances = client_balances(session)
    assert note.number == "2026-a1-0003" and note.credit_of_id == draft.id
    assert note.total_incl_cents == -view.total_incl_cents
    # Paid in full and then credited: the practice owes the client the whole amount back.
    row = balances.filter(balances["client_id"] == a1.client_id).row(0, named=True)
    assert row["outstanding_cents"] == -view.total_incl_cents
    with ws_db.system() as session:
        assert session.get(Invoice, (a1.practice_id, draft.id)).status == "credited"
        credit_lines = session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == note.id)).all()
        assert sum(ln.line_vat_cents for ln in credit_lines) == -view.vat_cents


def test_receptionist_may_bill_an_analyst_may_not(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session, pytest.raises(NotPermitted):
        create_draft(session, Actor.at(a1.user_id, a1.practice_id, frozenset({"analyst"})), practice_id=a1.practice_id,
                     client_id=a1.client_id)  # fmt: skip


def test_a_draft_is_issued_on_the_practice_s_date_not_the_server_s(ws_db):
    """A practice whose local date differs from UTC's right now (Kiritimati is UTC+14, Pago Pago UTC-11; one of them
    always does): the draft carries the practice's date."""
    a1 = ws_db.world.practices["a1"]
    zone = "Pacific/Kiritimati" if dt.datetime.now(dt.UTC).hour >= 10 else "Pacific/Pago_Pago"
    with ws_db.system() as session:
        session.execute(
            text("UPDATE tenant SET timezone = :z WHERE id = :p"), {"z": zone, "p": a1.practice_id}
        )
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = create_draft(session, Actor.at(a1.user_id, a1.practice_id, DESK), practice_id=a1.practice_id,
                             client_id=a1.client_id)  # fmt: skip
        local_today = dt.datetime.now(ZoneInfo(zone)).date()
        assert local_today != dt.datetime.now(dt.UTC).date()
        assert draft.issued_on == local_today


def test_numbering_is_gap_free_under_ten_concurrent_issuers_and_per_practice(ws_db):
    a1, a2 = ws_db.world.practices["a1"], ws_db.world.practices["a2"]
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    context = _ctx(ws_db, "a1")
    product_id = None
    drafts = []
    with ws_db.as_app(context) as session:
        product_id = next(p.product_id for p in price_list(session, a1.practice_id) if p.code == "C-CONS")
        for _ in range(10):
            draft = create_draft(session, actor, practice_id=a1.practice_id, client_id=a1.client_id)
            invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                                   quantity="1")  # fmt: skip
            drafts.append(draft.id)
    barrier = threading.Barrier(10)
    numbers: list[str] = []
    errors: list[BaseException] = []

    def issue(invoice_id: int, fail: bool) -> None:
        try:
            with ws_db.as_app(context) as session:
                barrier.wait(timeout=30)
                issued = issuing.issue(
                    session, actor, practice_id=a1.practice_id, invoice_id=invoice_id, issued_on=DAY
                )
                if fail:  # rolled back after taking a number: must leave no gap
                    raise RuntimeError("simulated failure after numbering")
                numbers.append(issued.number)
        except RuntimeError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(d, i == 3)) for i, d in enumerate(drafts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(numbers) == [f"2026-a1-{n:04d}" for n in range(2, 11)]
    with ws_db.as_app(_ctx(ws_db, "a2")) as session:  # another practice starts its own series
        draft = create_draft(
            session,
            Actor.at(a2.user_id, a2.practice_id, DESK),
            practice_id=a2.practice_id,
            client_id=a2.client_id,
        )
        invoice_lines.add_line(session, Actor.at(a2.user_id, a2.practice_id, DESK), practice_id=a2.practice_id, invoice_id=draft.id,
                               product_id=product_id, quantity="1")  # fmt: skip
        assert issuing.issue(session, Actor.at(a2.user_id, a2.practice_id, DESK), practice_id=a2.practice_id, invoice_id=draft.id,
                             issued_on=DAY).number == "2026-a2-0002"  # fmt: skip


def test_pdf_shows_number_lines_vat_and_totals(ws_db, tmp_path):
    a1 = ws_db.world.practices["a1"]
    visit_id, _ = _medicine_visit(ws_db, "a1")
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = draft_from_visit(session, actor, practice_id=a1.practice_id, visit_id=visit_id)
        issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        raw = invoice_pdf(session, a1.practice_id, draft.id, master_key=MASTER_KEY, compress=False)
        pdf = invoice_pdf(session, a1.practice_id, draft.id, master_key=MASTER_KEY)
    assert pdf.startswith(b"%PDF-") and len(pdf) < len(raw)
    content = raw.decode("latin-1")
    for expected in ("FACTUUR", "2026-a1-0002", "Damrak 1", "Meloxicam 1,5 mg/ml", "BTW 21% over EUR 47,00",
                     "BTW 9% over EUR 8,33", "EUR 65,95"):  # fmt: skip
        assert expected in content, expected
    if shutil.which("pdftotext"):  # the rendered text, where poppler is installed
        path = tmp_path / "invoice.pdf"
        path.write_bytes(pdf)
        text = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert re.search(r"Totaal incl\. BTW\s+EUR 65,95", text)
