"""Prescribing in a real browser: a vet prescribes a listed medicine for another species (confirming the
warning) and then a typed one, one after the other, on the Write tab; after each save the page stays on that
tab with the message naming what was saved, and the form is empty. Screenshots in ``test-artifacts/``."""

from __future__ import annotations

from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    ARTIFACTS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    choose,
    free_port,
    settle,
    shot,
    streamlit_app,
)
from tests.factories import PASSWORD
from tests.warehouse.records.test_ws_records_prescribing import add_medicines
from warehouse.schema.clinical import Prescription

pytestmark = BROWSER


def test_a_vet_prescribes_two_different_medicines_in_a_row_in_the_browser(ws_db):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    a1 = ws_db.world.practices["a1"]
    add_medicines(ws_db)
    with ws_db.system() as session:
        before = session.scalar(select(Prescription.id).order_by(Prescription.id.desc()).limit(1)) or 0
    with streamlit_app(ws_db, free_port(), log_name="streamlit-records.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.set_default_timeout(30_000)
        page.goto(url)
        page.get_by_label("User name").fill("vet-a1")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Goedendag, Vet")).to_be_visible(timeout=FIRST_RENDER_MS)
        search = page.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Bello")
        search.press("Enter")
        page.get_by_role("button", name="Bello-a1").first.click()
        expect(page.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        page.screenshot(path=ARTIFACTS / "rx-00-record.png", full_page=True)
        page.get_by_role("tab", name="Write").click()
        settle(page)
        page.get_by_role("tab", name="Prescription", exact=True).click()
        settle(page)

        # 1. Equilis from the price list: a horse vaccine, so the dog needs the vet's confirmation.
        choose(page, "Medicine from the price list", "Equilis Prequenza Te")
        expect(page.get_by_text("registered for horse, not for dog", exact=False)).to_be_visible()
        page.get_by_label("Quantity").fill("1")
        page.get_by_role("button", name="Prescribe").click()
        settle(page)
        expect(page.get_by_text("registered for horse, not for dog", exact=False)).to_have_count(
            2
        )  # + at field
        page.get_by_text("I prescribe it for this dog anyway").click()
        page.get_by_label("Dosage instructions").fill("Eenmalig i.m.")
        page.get_by_role("button", name="Prescribe").click()
        success = page.get_by_text("Prescribed Equilis Prequenza Te (UDD), quantity 1 · Eenmalig i.m.")
        expect(success).to_be_visible()  # still on the Write › Prescription tab
        shot(page, "rx-01-first-prescription-saved.png")
        expect(page.get_by_label("Quantity")).to_have_value("")

        # 2. A typed name, on the list as UDA: VRIJ is refused at the field, UDA is saved.
        page.get_by_text("Type a name").click()
        settle(page)
        name = page.get_by_label("The medicine's name")
        name.fill("Surolan oordruppels 15 ml")
        name.press("Enter")
        settle(page)
        choose(page, "Dispensing category", "VRIJ")
        page.get_by_label("Quantity").fill("1")
        page.get_by_label("Dosage instructions").fill("2x daags 3 druppels in het oor")
        page.get_by_role("button", name="Prescribe").click()
        settle(page)
        expect(page.get_by_text("is UDA in the price list", exact=False)).to_be_visible()
        shot(page, "rx-02-typed-name-refused.png")
        choose(page, "Dispensing category", "UDA")
        page.get_by_role("button", name="Prescribe").click()
        expect(
            page.get_by_text(
                "Prescribed Surolan oordruppels 15 ml (UDA), quantity 1 · 2x daags 3 druppels in het oor"
            )
        ).to_be_visible()
        shot(page, "rx-03-second-prescription-saved.png")
        page.get_by_role("tab", name="Prescriptions", exact=True).click()
        settle(page)
        shot(page, "rx-04-prescriptions-tab.png")
        browser.close()
    with ws_db.system() as session:
        saved = session.execute(
            select(
                Prescription.product_name, Prescription.dispensing_category, Prescription.dosage_instructions
            )
            .where(Prescription.practice_id == a1.practice_id, Prescription.id > before)
            .order_by(Prescription.id)
        ).all()
    assert saved == [
        ("Equilis Prequenza Te", "UDD", "Eenmalig i.m."),
        ("Surolan oordruppels 15 ml", "UDA", "2x daags 3 druppels in het oor"),
    ]
