"""Issue 13, billing: an invoice from a visit bills everything the visit recorded (nothing dropped unseen, a
removed line keeps its reason), numbers continue the practice's own series gaplessly under concurrent
issuers, and an invoice carries the practice's registrations and the patient."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
import time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from tests.conftest import MASTER_KEY
from tests.factories import TZ
from warehouse.billing import invoice_lines, invoice_views, issuing, numbering
from warehouse.billing.drafts import create_draft, draft_from_visit
from warehouse.billing.invoices import BillingError, price_list
from warehouse.billing.pdf import invoice_pdf
from warehouse.schema.billing import Invoice, InvoiceLineRemoval, InvoiceSeries, Product
from warehouse.schema.clinical import LabOrder, Prescription, Vaccination, VaccineProtocol, Visit
from warehouse.schema.tenancy import Tenant
from warehouse.security.accounts import access_context_for_user
from warehouse.security.permissions import Actor

DESK = frozenset({"receptionist"})
DAY = dt.date(2026, 12, 1)


def _ctx(db, code):
    with db.system() as session:
        return access_context_for_user(session, db.world.practices[code].user_id)


def _visit_with_vaccination_and_two_medicines(db, code: str) -> int:
    """A visit with a CHP vaccination, two medicines (one chosen from the list, one typed by its name) and a
    lab test the practice has no price for."""
    rows = db.world.practices[code]
    with db.system() as session:
        protocol_id = session.scalar(select(VaccineProtocol.id).where(
            VaccineProtocol.franchise_id == rows.franchise_id, VaccineProtocol.code == "dog-chp"))  # fmt: skip
        melox = Product(franchise_id=rows.franchise_id, code=f"M-MX-{code}", name="Meloxicam 1,5 mg/ml",
                        kind="medicine", price_cents=1350, vat_rate_bp=900, dispensing_category="UDA")  # fmt: skip
        amox = Product(franchise_id=rows.franchise_id, code=f"M-AM-{code}", name="Amoxicilline 250 mg",
                       kind="medicine", price_cents=1600, vat_rate_bp=900, dispensing_category="UDA")  # fmt: skip
        session.add_all([melox, amox])
        visit = Visit(practice_id=rows.practice_id, patient_id=rows.patient_id, vet_user_id=rows.user_id,
                      started_at=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), reason="Vaccinatie en oren")  # fmt: skip
        session.add(visit)
        session.flush()
        session.add_all([
            Vaccination(practice_id=rows.practice_id, patient_id=rows.patient_id, visit_id=visit.id,
                        franchise_id=rows.franchise_id, protocol_id=protocol_id, vaccine_name="CHP",
                        given_on=DAY),
            Prescription(practice_id=rows.practice_id, patient_id=rows.patient_id, visit_id=visit.id,
                         franchise_id=rows.franchise_id, product_id=melox.id, product_name=melox.name,
                         quantity=Decimal("2"), dispensing_category="UDA"),
            Prescription(practice_id=rows.practice_id, patient_id=rows.patient_id, visit_id=visit.id,
                         product_name="amoxicilline 250 MG", quantity=Decimal("1.5"), dispensing_category="UDA"),
            LabOrder(practice_id=rows.practice_id, patient_id=rows.patient_id, visit_id=visit.id,
                     accession_number=f"ACC-{code}-2", test_name="Cortisol"),
        ])  # fmt: skip
        return visit.id


def _lines(view: invoice_views.InvoiceView) -> list[tuple[str, str | None, float, int, int, bool]]:
    return [(r["description"], r["source"], r["quantity"], r["unit_price_cents"], r["vat_rate_bp"], r["needs_price"])
            for r in view.lines.iter_rows(named=True)]  # fmt: skip


def test_a_visit_is_billed_whole_unpriced_items_wait_and_a_removed_line_keeps_its_reason(ws_db):
    a1 = ws_db.world.practices["a1"]
    visit_id = _visit_with_vaccination_and_two_medicines(ws_db, "a1")
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = draft_from_visit(session, actor, practice_id=a1.practice_id, visit_id=visit_id)
        view = invoice_views.invoice_view(session, a1.practice_id, draft.id)
        assert _lines(view) == [
            ("Consult", "consult", 1.0, 4700, 2100, False),  # a1's own price over the franchise's 4500
            ("Vaccinatie hond (CHP)", "vaccination", 1.0, 5200, 2100, False),
            ("Meloxicam 1,5 mg/ml", "prescription", 2.0, 1350, 900, False),
            ("Amoxicilline 250 mg", "prescription", 1.5, 1600, 900, False),  # typed name, found in the list
            ("Labonderzoek Cortisol", "lab_order", 1.0, 0, 2100, True),  # no price: shown, not dropped
        ]
        with pytest.raises(BillingError, match="Labonderzoek Cortisol: give a price") as unpriced:
            issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        assert unpriced.value.field == "lines"
        lab_line = view.lines.filter(view.lines["needs_price"])["id"][0]
        with pytest.raises(BillingError) as no_reason:
            invoice_lines.remove_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, line_id=lab_line,
                                      reason="   ")  # fmt: skip
        assert no_reason.value.field == "reason"
        with pytest.raises(BillingError) as bad_price:
            invoice_lines.price_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, line_id=lab_line,
                                     price="-5")  # fmt: skip
        assert bad_price.value.field == "price"
        invoice_lines.price_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, line_id=lab_line,
                                 price="38,50")  # fmt: skip
        melox_line = view.lines.filter(view.lines["description"] == "Meloxicam 1,5 mg/ml")["id"][0]
        invoice_lines.remove_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, line_id=melox_line,
                                  reason="Eigen voorraad van de eigenaar")  # fmt: skip
        issued = issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        view = invoice_views.invoice_view(session, a1.practice_id, draft.id)
    assert issued.status == "issued"
    assert [d for d, *_ in _lines(view)] == [
        "Consult", "Vaccinatie hond (CHP)", "Amoxicilline 250 mg", "Labonderzoek Cortisol"]  # fmt: skip
    # 4700 + 5200 + 3850 at 21 %, 1.5 × 1600 = 2400 at 9 %
    assert view.total_excl_cents == 4700 + 5200 + 2400 + 3850
    assert view.removals.select("description", "reason").rows() == [
        ("Meloxicam 1,5 mg/ml", "Eigen voorraad van de eigenaar")]  # fmt: skip
    assert view.removals["removed_by"][0] == "Vet a1"
    with ws_db.system() as session:
        kept = session.scalars(
            select(InvoiceLineRemoval).where(InvoiceLineRemoval.invoice_id == draft.id)
        ).one()
        assert (kept.source, kept.unit_price_cents, kept.quantity) == ("prescription", 1350, Decimal("2.000"))


def _issue_one(db, code: str, day: dt.date = DAY) -> str:
    rows = db.world.practices[code]
    actor = Actor.at(rows.user_id, rows.practice_id, DESK)
    with db.as_app(_ctx(db, code)) as session:
        product_id = next(p.product_id for p in price_list(session, rows.practice_id) if p.code == "C-CONS")
        draft = create_draft(session, actor, practice_id=rows.practice_id, client_id=rows.client_id)
        invoice_lines.add_line(session, actor, practice_id=rows.practice_id, invoice_id=draft.id, product_id=product_id,
                               quantity="1")  # fmt: skip
        return issuing.issue(
            session, actor, practice_id=rows.practice_id, invoice_id=draft.id, issued_on=day
        ).number


def _synced_invoices(db, code: str, numbers: list[str]) -> None:
    """Invoices as the Animana sync loads them, and no series yet (the practice never issued here)."""
    rows = db.world.practices[code]
    with db.system() as session:
        session.execute(delete(InvoiceSeries).where(InvoiceSeries.practice_id == rows.practice_id))
        for n, number in enumerate(numbers):
            session.add(Invoice(practice_id=rows.practice_id, animana_id=f"sync-{number}", number=number,
                                client_id=rows.client_id, issued_on=dt.date(2026, 11, 1) + dt.timedelta(days=n),
                                status="issued"))  # fmt: skip


def test_numbers_continue_the_practices_synced_series_after_its_highest_number(ws_db):
    # The latest synced invoice sets the pattern; the highest of that series (not the latest) is continued.
    _synced_invoices(
        ws_db, "a1", ["1001-2026-00883", "1001-2026-00885", "1001-2025-00990", "1001-2026-00884"]
    )
    assert _issue_one(ws_db, "a1") == "1001-2026-00886"
    assert _issue_one(ws_db, "a1") == "1001-2026-00887"
    assert _issue_one(ws_db, "a1", dt.date(2027, 1, 4)) == "1001-2027-00001"  # a new year, its own numbers
    with pytest.raises(BillingError, match="in 2027 already"):  # no invoice back into a closed year
        _issue_one(ws_db, "a1", DAY)
    # A practice that never issued anything starts the default series; a2's factory series goes on by itself.
    _synced_invoices(ws_db, "b1", [])
    with ws_db.system() as session:
        for invoice in session.scalars(
            select(Invoice).where(Invoice.practice_id == ws_db.world.practices["b1"].practice_id)
        ):
            invoice.status = "draft"  # fmt: skip
    assert _issue_one(ws_db, "b1") == "2026-000001"
    assert _issue_one(ws_db, "a2") == "2026-a2-0002"


def test_a_series_set_up_deliberately_starts_after_its_own_numbers(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        with pytest.raises(numbering.SeriesError) as bad:
            numbering.set_up_series(session, a1.practice_id, prefix="F 1", per_year=True, width=5, today=DAY,
                                    user_id=a1.user_id)  # fmt: skip
        assert bad.value.field == "prefix"
        numbering.set_up_series(session, a1.practice_id, prefix="VC-", per_year=True, width=5, today=DAY,
                                user_id=a1.user_id)  # fmt: skip
    assert _issue_one(ws_db, "a1") == "VC-2026-00001"
    assert _issue_one(ws_db, "a1") == "VC-2026-00002"


def test_two_issuers_on_two_connections_take_turns_on_the_series_row(ws_db):
    """The first issuer holds the series row until it commits; the second waits, then takes the next number."""
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    context = _ctx(ws_db, "a1")
    with ws_db.as_app(context) as session:
        product_id = next(p.product_id for p in price_list(session, a1.practice_id) if p.code == "C-CONS")
        drafts = []
        for _ in range(2):
            draft = create_draft(session, actor, practice_id=a1.practice_id, client_id=a1.client_id)
            invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                                   quantity="1")  # fmt: skip
            drafts.append(draft.id)
    first_has_number = threading.Event()
    second_done = threading.Event()
    second: list[str] = []

    def issue_second() -> None:
        first_has_number.wait(30)
        with ws_db.as_app(context) as other:
            second.append(issuing.issue(other, actor, practice_id=a1.practice_id, invoice_id=drafts[1],
                                        issued_on=DAY).number)  # fmt: skip
        second_done.set()

    thread = threading.Thread(target=issue_second)
    thread.start()
    with ws_db.as_app(context) as session:
        first = issuing.issue(
            session, actor, practice_id=a1.practice_id, invoice_id=drafts[0], issued_on=DAY
        ).number
        first_has_number.set()
        time.sleep(1.0)
        assert not second_done.is_set()  # blocked on the series row while the first is not committed
    thread.join(30)
    assert (first, second) == ("2026-a1-0002", ["2026-a1-0003"])


@given(st.lists(st.booleans(), min_size=1, max_size=8))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_run_of_issues_and_failed_issues_leaves_a_gapless_unique_series(ws_db, outcomes):
    """``True`` commits an issue, ``False`` rolls one back after it took its number: the committed numbers are
    always the next ones of the series, without a gap."""
    a1 = ws_db.world.practices["a1"]
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    context = _ctx(ws_db, "a1")
    with ws_db.system() as session:
        start = session.scalar(
            select(InvoiceSeries.last_number).where(InvoiceSeries.practice_id == a1.practice_id)
        )
    issued = []
    for commit in outcomes:
        try:
            with ws_db.as_app(context) as session:
                draft = create_draft(session, actor, practice_id=a1.practice_id, client_id=a1.client_id)
                product_id = next(p.product_id for p in price_list(session, a1.practice_id))
                invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id,
                                       product_id=product_id, quantity="1")  # fmt: skip
                number = issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id,
                                       issued_on=DAY).number  # fmt: skip
                if not commit:
                    raise RuntimeError("failed after numbering")
                issued.append(number)
        except RuntimeError:
            pass
    assert issued == [f"2026-a1-{n:04d}" for n in range(start + 1, start + 1 + sum(outcomes))]


@given(
    prefix=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-/", max_size=numbering.MAX_PREFIX),
    per_year=st.booleans(),
    width=st.integers(3, 10),
    year=st.integers(1990, 2099),
    seq=st.integers(1, 10**9),
)
def test_a_number_of_any_series_is_read_back_as_that_series(prefix, per_year, width, year, seq):
    series = numbering.Series(prefix, per_year, width)
    number = series.format(year, seq)
    assert series.parse(number) == ((year if per_year else None), seq)
    detected = numbering.detect(number)
    assert detected is not None and detected.prefix == prefix and detected.per_year == per_year
    assert numbering.highest([number], detected, year) == seq


def test_issuing_refuses_while_the_practice_lacks_what_a_dutch_invoice_must_carry(ws_db):
    a1 = ws_db.world.practices["a1"]
    with ws_db.system() as session:
        practice = session.get(Tenant, a1.practice_id)
        practice.vat_number, practice.iban = None, "NL00ABNA0417164300"  # missing, and a wrong check sum
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = create_draft(session, actor, practice_id=a1.practice_id, client_id=a1.client_id)
        product_id = next(p.product_id for p in price_list(session, a1.practice_id))
        invoice_lines.add_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, product_id=product_id,
                               quantity="1")  # fmt: skip
        with pytest.raises(BillingError, match=r"VAT number missing; IBAN NL00ABNA0417164300 is not") as no:
            issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        assert no.value.field == "practice"
        assert session.get(Invoice, (a1.practice_id, draft.id)).status == "draft"


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")
def test_the_pdf_carries_the_practices_registrations_and_the_patient(ws_db, tmp_path):
    a1 = ws_db.world.practices["a1"]
    visit_id = _visit_with_vaccination_and_two_medicines(ws_db, "a1")
    actor = Actor.at(a1.user_id, a1.practice_id, DESK)
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        draft = draft_from_visit(session, actor, practice_id=a1.practice_id, visit_id=visit_id)
        lab = next(r["id"] for r in invoice_views.invoice_view(session, a1.practice_id, draft.id).lines.iter_rows(named=True)
                   if r["needs_price"])  # fmt: skip
        invoice_lines.remove_line(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, line_id=lab,
                                  reason="Extern lab factureert zelf")  # fmt: skip
        issuing.issue(session, actor, practice_id=a1.practice_id, invoice_id=draft.id, issued_on=DAY)
        pdf = invoice_pdf(session, a1.practice_id, draft.id, master_key=MASTER_KEY)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    for expected in ("Praktijk a1", "Prinsengracht 263", "1016GV Amsterdam", "BTW-nr. NL859876543B01",
                     "KvK 12345678", "IBAN NL91ABNA0417164300", "Bello-a1 (hond)", "2026-a1-0002",
                     "Vaccinatie hond (CHP)", "Amoxicilline 250 mg"):  # fmt: skip
        assert expected in text, expected
    assert "Cortisol" not in text


def test_what_the_vet_records_during_the_consult_is_on_the_invoice_made_from_the_visit(ws_db):
    """Through the services the pages call: the vaccination and prescriptions recorded while the patient is in
    consult (no visit named by the page) belong to today's visit, so its invoice holds them."""
    from warehouse.records import consults, prescriptions, vaccinations
    from warehouse.scheduling import transitions

    a1 = ws_db.world.practices["a1"]
    appointment_id = ws_db.week.today_appointment["a1"]
    vet = Actor.at(a1.user_id, a1.practice_id, {"veterinarian"})
    today = dt.datetime.now(TZ).date()  # the practice's (factories' practices are in Amsterdam)
    with ws_db.system() as session:
        protocol_id = session.scalar(select(VaccineProtocol.id).where(
            VaccineProtocol.franchise_id == a1.franchise_id, VaccineProtocol.code == "dog-chp"))  # fmt: skip
        session.add(Product(franchise_id=a1.franchise_id, code="M-SUR", name="Surolan oordruppels 15 ml",
                            kind="medicine", price_cents=1750, vat_rate_bp=2100, dispensing_category="UDA"))  # fmt: skip
    with ws_db.as_app(_ctx(ws_db, "a1")) as session:
        transitions.check_in(session, vet, practice_id=a1.practice_id, appointment_id=appointment_id)
        transitions.start_consult(session, vet, practice_id=a1.practice_id, appointment_id=appointment_id)
        visit = consults.write_consult(session, vet, practice_id=a1.practice_id, appointment_id=appointment_id,
                                       note=consults.ConsultNote(subjective="Krabt aan de oren"))  # fmt: skip
        vaccinations.record_vaccination(session, vet, practice_id=a1.practice_id, patient_id=a1.patient_id,
                                        protocol_id=protocol_id, given_on=today, today=today)  # fmt: skip
        prescriptions.prescribe(session, vet, practice_id=a1.practice_id, patient_id=a1.patient_id, quantity="1",
                                product_name="Surolan oordruppels 15 ml", dispensing_category="UDA")  # fmt: skip
        prescriptions.prescribe(session, vet, practice_id=a1.practice_id, patient_id=a1.patient_id, quantity="2",
                                product_name="Carprofen 50 mg", dispensing_category="UDA")  # fmt: skip
        draft = draft_from_visit(session, Actor.at(a1.user_id, a1.practice_id, DESK),
                                 practice_id=a1.practice_id, visit_id=visit.id)  # fmt: skip
        lines = _lines(invoice_views.invoice_view(session, a1.practice_id, draft.id))
    assert [(d, s) for d, s, *_ in lines] == [
        ("Consult", "consult"),
        ("Vaccinatie hond (CHP)", "vaccination"),
        ("Surolan oordruppels 15 ml", "prescription"),
        ("Carprofen 50 mg", "prescription"),  # not on the price list: it waits for a price, it is not dropped
    ]
    assert [needs for *_, needs in lines] == [False, False, False, True]
