"""A day at the practice in a real Chromium, on one running app: reception searches, books several appointments
in a row and checks a patient in; the vet consults, writes a note with a diagnosis, records a vaccination and
two different prescriptions one after the other; the nurse tries a UDD medicine; billing makes the invoice
from the visit, removes a line with a reason and takes a payment; the practice manager and the franchise
manager read today's work on their dashboards; a reload and a shared page address open the same record; bad
input at every form is refused at its field.

Each step asserts what the user sees (and, where it saves, the saved row). The time of each step, from the
user's action to settled content, is printed and written to ``test-artifacts/day-timings.txt``; screenshots
of every step go to ``test-artifacts/day-*.png``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    ARTIFACTS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    DayClock,
    choose,
    enter_totp_enrolment,
    free_port,
    settle,
    streamlit_app,
)
from tests.factories import PASSWORD, TZ
from tests.practice_world import RECEPTIONIST
from tests.warehouse.records.test_ws_records_prescribing import add_medicines
from warehouse.schema.billing import Invoice, InvoiceLine, InvoiceLineRemoval, Payment
from warehouse.schema.clinical import Diagnosis, Prescription, Vaccination, Visit
from warehouse.schema.scheduling import Appointment
from warehouse.security.accounts import add_user

pytestmark = BROWSER

NURSE = "nurse-a1"
MANAGER = "manager-a1"
NO_TRACE = ("Traceback", "invalid input syntax", "psycopg", "sqlalchemy")


def shot(page, name: str) -> None:  # noqa: ANN001
    settle(page)
    page.screenshot(path=ARTIFACTS / f"day-{name}.png", full_page=True)


def no_traceback(page) -> None:  # noqa: ANN001
    body = page.inner_text("body")
    for marker in NO_TRACE:
        assert marker not in body, f"the page shows {marker!r}"


def type_into(page, label: str, **parts: str) -> None:  # noqa: ANN001
    """Type a date or time into Streamlit's date/time input, one segment at a time as a keyboard user does."""
    for part, value in parts.items():
        page.get_by_role("spinbutton", name=f"{part}, {label}").press_sequentially(value)


def sign_in(page, clock: DayClock, url: str, username: str, greeting: str) -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    clock.step(page, f"sign in ({username})", page.get_by_role("button", name="Sign in").click, greeting)


def sign_in_with_totp(page, clock: DayClock, url: str, username: str, greeting: str) -> None:  # noqa: ANN001
    """A manager's first sign-in: password, then the enrolment with the key shown under the QR code."""
    page.goto(url)
    enter_totp_enrolment(page, username)
    clock.step(page, f"sign in ({username}, two-step)",
               page.get_by_role("button", name="Confirm and sign in").click, greeting)  # fmt: skip


def wait_for_session_cookie(page) -> None:  # noqa: ANN001
    """The sign-in page hands the browser its session cookie right after sign-in; a new page load before
    then would start signed out (as it would for a person who types an address within that moment)."""
    from dashboard.components.browser_session import COOKIE

    for _ in range(100):
        if any(c["name"] == COOKIE for c in page.context.cookies()):
            return
        page.wait_for_timeout(100)
    raise AssertionError("no session cookie after sign-in")


def sign_out(page) -> None:  # noqa: ANN001
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()


def open_tab(page, clock: DayClock, step: str, name: str, shows: str) -> None:  # noqa: ANN001
    """Open a tab; one already open (the browser remembers a keyed tab's choice) needs no click."""
    tab = page.get_by_role("tab", name=name, exact=True)
    if tab.get_attribute("aria-selected") == "true":
        assert shows in page.inner_text("body")
        return
    clock.step(page, step, tab.click, shows)


def search_and_open(page, clock: DayClock, who: str, query: str, hit: str, lands_on: str) -> None:  # noqa: ANN001
    search = page.get_by_placeholder("Search clients, patients", exact=False)
    search.fill(query)
    clock.step(page, f"{who}: search", lambda: search.press("Enter"), hit)
    clock.step(page, f"{who}: open {hit}", page.get_by_role("button", name=hit).first.click, lands_on)


@pytest.fixture
def day_app(ws_db):  # noqa: ANN001, ANN201
    a1 = ws_db.world.practices["a1"].practice_id
    with ws_db.system() as session:
        for username, name, role in ((RECEPTIONIST, "Balie A1", "receptionist"), (NURSE, "Nora Verpleeg", "nurse"),
                                     (MANAGER, "Mieke Manager", "practice_manager")):  # fmt: skip
            add_user(session, username=username, full_name=name, password=PASSWORD, memberships=[(a1, role)])
    add_medicines(ws_db)
    with ws_db.system() as session:  # the practice's coded list: a VeNom-coded diagnosis from its history
        rows = ws_db.world.practices["a1"]
        visit_id = session.scalar(select(Visit.id).where(Visit.practice_id == a1).limit(1))
        session.add(Diagnosis(practice_id=a1, visit_id=visit_id, patient_id=rows.patient_id,
                              term="Otitis externa", venom_code="1081"))  # fmt: skip
    with streamlit_app(ws_db, free_port(), log_name="day-streamlit.log") as url:
        yield url, ws_db


def test_a_day_at_the_practice(day_app):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    url, db = day_app
    clock = DayClock()
    try:
        _the_day(url, db, clock)
    finally:
        clock.report("day-timings.txt")


def _the_day(url: str, db, clock: DayClock) -> None:  # noqa: ANN001, C901
    from playwright.sync_api import expect, sync_playwright

    a1 = db.world.practices["a1"]
    today = dt.datetime.now(TZ).date()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(FIRST_RENDER_MS)

        # --- reception: search, the patient card, three bookings in a row, a double booking, check-in ----------
        sign_in(page, clock, url, RECEPTIONIST, "Goedendag, Balie")
        shot(page, "01-hub-reception")
        search_and_open(page, clock, "reception", "Bello", "Bello-a1", "Book an appointment")
        shot(page, "02-patient-card")
        clock.step(page, "reception: open scheduling", page.get_by_role("button", name="Book an appointment").click,
                   "Find free slots")  # fmt: skip
        booked_before = _count(db, Appointment, a1.practice_id)
        for n in range(1, 4):
            if n > 1:  # the form is empty after a booking: find the patient again, as the receptionist does
                page.get_by_label("Find patient").fill("Bello")
                page.get_by_label("Find patient").press("Enter")
                settle(page)
                choose(page, "Patient", "Bello-a1")
            clock.step(page, f"reception: free slots #{n}", page.get_by_role("button", name="Find free slots").click,
                       "Dierenarts a1")  # fmt: skip
            clock.step(page, f"reception: book #{n}",
                       page.get_by_role("button", name=re.compile("Dierenarts a1")).first.click, "Booked Bello-a1")  # fmt: skip
            no_traceback(page)
            shot(page, f"03-booked-{n}")
        assert _count(db, Appointment, a1.practice_id) == booked_before + 3
        # The slot of the first booking again, for the same vet: refused, naming the vet and the time.
        with db.system() as session:
            taken = session.scalar(select(Appointment.starts_at).where(Appointment.practice_id == a1.practice_id)
                                   .order_by(Appointment.id.desc()).limit(1).offset(2)).astimezone(TZ)  # fmt: skip
        page.get_by_label("Find patient").fill("Bello")
        page.get_by_label("Find patient").press("Enter")
        settle(page)
        choose(page, "Patient", "Bello-a1")
        choose(page, "Vet / nurse", "Dierenarts a1")
        type_into(
            page, "Day", day=taken.strftime("%d"), month=taken.strftime("%m"), year=taken.strftime("%Y")
        )
        type_into(page, "Time", hour=taken.strftime("%H"), minute=taken.strftime("%M"))
        settle(page)
        clock.step(page, "reception: double booking refused", page.get_by_role("button", name="Book", exact=True).click,
                   "Dierenarts a1 is already booked")  # fmt: skip
        shot(page, "04-double-booking")
        assert _count(db, Appointment, a1.practice_id) == booked_before + 3
        clock.step(
            page, "reception: waiting room", page.get_by_role("link", name="Waiting room").click, "Expected"
        )
        clock.step(
            page, "reception: check in", page.get_by_role("button", name="Check in").first.click, "waiting"
        )
        shot(page, "05-checked-in")
        no_traceback(page)
        sign_out(page)

        # --- the vet: consult, note with a diagnosis, vaccination, two prescriptions, a reload -------------------
        sign_in(page, clock, url, "vet-a1", "Goedendag, Vet")
        clock.step(
            page, "vet: waiting room", page.get_by_role("link", name="Waiting room").click, "Start consult"
        )
        clock.step(page, "vet: start consult", page.get_by_role("button", name="Start consult").first.click,
                   "Finish")  # fmt: skip
        clock.step(page, "vet: open the record from the card", page.get_by_role("button", name="Open record").first.click,
                   "Bello-a1 · dog")  # fmt: skip
        shot(page, "06-record")
        record_url = page.url
        assert "patient=" in record_url, record_url
        open_tab(page, clock, "vet: Write tab", "Write", "Consult note")
        # Bad input first: a note with nothing in it is refused at its field and saves nothing.
        clock.step(page, "vet: empty note refused", page.get_by_role("button", name="Save note").click,
                   "Write at least one part of the SOAP note.")  # fmt: skip
        no_traceback(page)
        page.get_by_label("S — Subjective (history)").fill("Schudt met de kop, krabt aan het linkeroor.")
        page.get_by_label("O — Objective (examination)").fill("Linkeroor rood, bruin exsudaat.")
        choose(page, "Diagnoses", "Otitis externa")  # from the practice's coded list
        page.keyboard.press("Escape")  # a multiselect stays open for the next choice
        expect(page.get_by_role("listbox")).to_have_count(
            0
        )  # closed before the next click, as a person sees it
        clock.step(
            page, "vet: save note", page.get_by_role("button", name="Save note").click, "Consult note saved"
        )
        shot(page, "07-note-saved")
        expect(page.get_by_label("S — Subjective (history)")).to_have_value("")  # the form is empty again
        open_tab(page, clock, "vet: vaccination tab", "Vaccination", "Record vaccination")
        clock.step(page, "vet: record vaccination", page.get_by_role("button", name="Record vaccination").click,
                   "Vaccination recorded")  # fmt: skip
        expect(page.get_by_text("Vaccination recorded")).to_be_visible()  # still on the Vaccination tab
        open_tab(page, clock, "vet: prescription tab", "Prescription", "Prescribe")
        choose(page, "Medicine from the price list", "Milbemax ontworming")
        page.get_by_label("Quantity").fill("-1")
        clock.step(
            page, "vet: bad quantity refused", page.get_by_role("button", name="Prescribe").click, "Quantity"
        )
        no_traceback(page)
        page.get_by_label("Quantity").fill("1")
        page.get_by_label("Dosage instructions").fill("Eenmalig 1 tablet")
        clock.step(page, "vet: prescribe from the list", page.get_by_role("button", name="Prescribe").click,
                   "Prescribed Milbemax ontworming (URA)")  # fmt: skip
        expect(page.get_by_label("Quantity")).to_have_value("")  # the form is empty for the next one
        page.get_by_text("Type a name").click()
        settle(page)
        name = page.get_by_label("The medicine's name")
        name.fill("Surolan oordruppels 15 ml")
        name.press("Enter")
        settle(page)
        choose(page, "Dispensing category", "UDA")
        page.get_by_label("Quantity").fill("1")
        page.get_by_label("Dosage instructions").fill("2x daags 3 druppels in het linkeroor")
        clock.step(page, "vet: prescribe a typed name", page.get_by_role("button", name="Prescribe").click,
                   "Prescribed Surolan oordruppels 15 ml (UDA)")  # fmt: skip
        shot(page, "08-two-prescriptions")
        with db.system() as session:
            rx = session.execute(
                select(Prescription.product_name, Prescription.dispensing_category)
                .where(Prescription.practice_id == a1.practice_id, Prescription.patient_id == a1.patient_id)
                .order_by(Prescription.id.desc())
                .limit(2)
            ).all()
            vaccinations = session.scalars(
                select(Vaccination.vaccine_name).where(
                    Vaccination.practice_id == a1.practice_id, Vaccination.given_on == today
                )
            ).all()
        assert [tuple(r) for r in reversed(rx)] == [
            ("Milbemax ontworming", "URA"),
            ("Surolan oordruppels 15 ml", "UDA"),
        ]
        assert vaccinations, "the vaccination is saved"
        with db.system() as session:
            coded = session.execute(select(Diagnosis.term, Diagnosis.venom_code).where(
                Diagnosis.practice_id == a1.practice_id, Diagnosis.patient_id == a1.patient_id)
                .order_by(Diagnosis.id.desc()).limit(1)).one()  # fmt: skip
        assert tuple(coded) == ("Otitis externa", "1081")
        # A reload keeps the session and opens the same record.
        clock.step(page, "vet: reload the record", page.reload, "Bello-a1 · dog")
        expect(page.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible()
        no_traceback(page)
        sign_out(page)

        # --- the nurse: a UDD medicine is refused, whatever she types as its category ---------------------------
        sign_in(page, clock, url, NURSE, "Goedendag, Nora")
        wait_for_session_cookie(page)
        page.goto(record_url)  # the address a colleague shared
        expect(page.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible()
        settle(page)
        open_tab(page, clock, "nurse: Write tab", "Write", "Consult note")
        open_tab(page, clock, "nurse: prescription tab", "Prescription", "Prescribe")
        page.get_by_text("Type a name").click()
        settle(page)
        name = page.get_by_label("The medicine's name")
        name.fill("Equilis Prequenza Te")
        name.press("Enter")
        settle(page)
        choose(page, "Dispensing category", "VRIJ")
        page.get_by_label("Quantity").fill("1")
        clock.step(page, "nurse: UDD as VRIJ refused", page.get_by_role("button", name="Prescribe").click,
                   "is UDD in the price list")  # fmt: skip
        shot(page, "09-nurse-refused")
        with db.system() as session:
            assert not session.scalars(
                select(Prescription.id).where(Prescription.product_name.ilike("%equilis%"))
            ).all()
        sign_out(page)

        # --- billing: the invoice from the visit holds every item; a line removed with its reason; payment ----
        sign_in(page, clock, url, RECEPTIONIST, "Goedendag, Balie")
        clock.step(page, "billing: open", page.get_by_role("link", name="Billing").click, "To invoice")
        open_tab(page, clock, "billing: to invoice", "To invoice", "Create invoice")
        clock.step(page, "billing: invoice from visit", page.get_by_role("button", name="Create invoice").first.click,
                   "Draft invoice created")  # fmt: skip
        shot(page, "10-draft")
        # The lines are in a grid (drawn on a canvas): read the draft the page shows from the database.
        with db.system() as session:
            draft_id = session.scalar(select(Invoice.id).where(Invoice.practice_id == a1.practice_id)
                                      .order_by(Invoice.id.desc()).limit(1))  # fmt: skip
            drafted = session.scalars(select(InvoiceLine.description).where(
                InvoiceLine.practice_id == a1.practice_id, InvoiceLine.invoice_id == draft_id)).all()  # fmt: skip
        for item in ("Consult", "Vaccinatie hond (CHP)", "Milbemax ontworming", "Surolan"):
            assert any(item in line for line in drafted), f"{item} is not on the draft: {drafted}"
        choose(page, "Item", "Consult")
        page.get_by_label("Quantity").fill("-2")
        clock.step(page, "billing: negative quantity refused", page.get_by_role("button", name="Add line").click,
                   "Issue invoice")  # fmt: skip
        expect(page.get_by_text("more than 0", exact=False)).to_be_visible()
        no_traceback(page)
        expect(page.get_by_role("button", name="Issue invoice")).to_be_visible()
        choose(page, "Line", "Surolan")
        page.get_by_label("Reason (kept with the invoice)").fill("Eigen voorraad van de eigenaar")
        clock.step(page, "billing: remove a line", page.get_by_role("button", name="Remove line").click,
                   "Line removed")  # fmt: skip
        clock.step(page, "billing: issue", page.get_by_role("button", name="Issue invoice").click, "issued")
        shot(page, "11-issued")
        clock.step(page, "billing: payment", page.get_by_role("button", name="Record payment").click,
                   "recorded")  # fmt: skip
        shot(page, "12-paid")
        with db.system() as session:
            invoice = session.scalars(
                select(Invoice)
                .where(Invoice.practice_id == a1.practice_id)
                .order_by(Invoice.id.desc())
                .limit(1)
            ).one()
            lines = session.scalars(select(InvoiceLine.description).where(
                InvoiceLine.practice_id == a1.practice_id, InvoiceLine.invoice_id == invoice.id)).all()  # fmt: skip
            removed = session.scalars(select(InvoiceLineRemoval.reason).where(
                InvoiceLineRemoval.practice_id == a1.practice_id, InvoiceLineRemoval.invoice_id == invoice.id)).all()  # fmt: skip
            paid = session.scalars(select(Payment.amount_cents).where(
                Payment.practice_id == a1.practice_id, Payment.invoice_id == invoice.id)).all()  # fmt: skip
        assert invoice.number.startswith("2026-a1-"), invoice.number  # continues the practice's series
        assert any("Milbemax" in d for d in lines) and not any("Surolan" in d for d in lines), lines
        assert removed == ["Eigen voorraad van de eigenaar"]
        assert sum(paid) == invoice.total_incl_cents
        sign_out(page)

        # --- the practice manager: today's work on the practice dashboard ----------------------------------------
        sign_in_with_totp(page, clock, url, MANAGER, "Goedendag, Mieke")
        clock.step(page, "manager: practice dashboard", page.get_by_role("link", name="Practice dashboard").click,
                   "as of")  # fmt: skip
        shot(page, "13-practice-dashboard")
        body = page.inner_text("body")
        assert "unit_price_cents" not in body and "None" not in body
        sign_out(page)

        # --- the franchise manager: the franchise dashboard -------------------------------------------------------
        sign_in_with_totp(page, clock, url, "fm-a", "Goedendag, Manager")
        clock.step(page, "franchise: dashboard", page.get_by_role("link", name="Franchise dashboard").click,
                   "as of")  # fmt: skip
        shot(page, "14-franchise-dashboard")
        sign_out(page)

        # --- a shared address, opened in a fresh browser: sign in, then that record -------------------------------
        other = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        other.set_default_timeout(FIRST_RENDER_MS)
        other.goto(record_url)
        other.get_by_label("User name").fill("vet-a1")
        other.get_by_role("textbox", name="Password").fill(PASSWORD)
        clock.step(other, "shared address: sign in to the record",
                   other.get_by_role("button", name="Sign in").click, "Bello-a1 · dog")  # fmt: skip
        shot(other, "15-shared-address")
        browser.close()


def _count(db, table, practice_id: int) -> int:  # noqa: ANN001
    from sqlalchemy import func

    with db.system() as session:
        return session.scalar(select(func.count()).select_from(table).where(table.practice_id == practice_id))
