"""The running app in a real browser: Playwright drives Debian's Chromium against ``streamlit run``.

Signs in as a receptionist, searches, opens a patient, books the first free slot, opens an invoice, signs
out; signs in as a vet and opens the patient record. Saves a screenshot of every workspace to
``test-artifacts/``. Skipped (with the reason) only when Chromium is not installed.
"""

from __future__ import annotations

from sqlalchemy import func, select

from tests.dashboard.browser_support import ARGS, ARTIFACTS, BROWSER, CHROMIUM, FIRST_RENDER_MS, shot
from tests.factories import PASSWORD
from tests.practice_world import RECEPTIONIST
from warehouse.schema.scheduling import Appointment

pytestmark = BROWSER


def test_receptionist_signs_in_searches_and_books_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    # The first render of a page imports its libraries (plotly, scikit-learn for suggestions): on a loaded
    # 2-core CI machine that can take longer than Playwright's 5 s default.
    expect.set_options(timeout=30_000)

    url, db = running_app
    a1 = db.world.practices["a1"]
    with db.system() as session:
        before = session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.practice_id == a1.practice_id)
        )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(url)
        page.get_by_label("User name").fill(RECEPTIONIST)
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        shot(page, "01-sign-in.png")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Goedendag, Balie")).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(page, "02-hub.png")

        search = page.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Belo")
        search.press("Enter")
        hit = page.get_by_role("button", name="Bello-a1").first
        expect(hit).to_be_visible()
        shot(page, "03-search.png")
        hit.click()
        expect(page.get_by_role("button", name="Book an appointment")).to_be_visible()
        shot(page, "04-patient-card.png")
        page.get_by_role("button", name="Book an appointment").click()

        expect(page.get_by_role("heading", name="Scheduling")).to_be_visible()
        page.get_by_role("button", name="Find free slots").click()
        first_slot = page.get_by_role("button", name="Dierenarts a1").first
        expect(first_slot).to_be_visible()
        shot(page, "05-free-slots.png")
        first_slot.click()
        expect(page.get_by_text("Booked Bello-a1")).to_be_visible()
        shot(page, "06-scheduling-booked.png")

        page.get_by_role("link", name="Waiting room").click()
        expect(page.get_by_role("heading", name="Waiting room")).to_be_visible()
        shot(page, "07-waiting-room.png")
        page.get_by_role("link", name="My account").click()
        expect(page.get_by_role("heading", name="My account")).to_be_visible()
        shot(page, "08-account.png")
        page.get_by_role("link", name="Billing").click()
        expect(page.get_by_role("heading", name="Invoice 2026-a1-0001", exact=False)).to_be_visible()
        shot(page, "09-billing-invoice.png")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()

        # A vet of the same practice: the hub with the day's agenda, and the clinical patient record.
        page.get_by_label("User name").fill("vet-a1")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Goedendag, Vet")).to_be_visible()
        shot(page, "10-hub-vet.png")
        search = page.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Bello")
        search.press("Enter")
        page.get_by_role("button", name="Bello-a1").first.click()
        expect(page.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(page, "11-patient-record.png")
        browser.close()
    with db.system() as session:
        after = session.scalar(
            select(func.count()).select_from(Appointment).where(Appointment.practice_id == a1.practice_id)
        )
    assert after == before + 1
