"""In a real browser: the franchise manager's search names each hit's practice and shows more on request; a
vet opens a patient from the waiting room. Screenshots in ``test-artifacts/search-*.png``."""

from __future__ import annotations

import re

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    shot,
    sign_in,
    sign_in_enrolling_totp,
)
from warehouse.schema.clients import Patient

pytestmark = BROWSER


def test_search_names_the_practice_shows_more_and_a_waiting_card_opens_the_patient(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1, a2 = db.world.practices["a1"], db.world.practices["a2"]
    with db.system() as session:
        session.add_all(
            Patient(practice_id=rows.practice_id, name=f"Pluis {code}-{n}", species="cat")
            for code, rows in (("a1", a1), ("a2", a2))
            for n in range(6)
        )  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in_enrolling_totp(page, "fm-a")
        search = page.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Pluis")
        search.press("Enter")
        hits = page.get_by_role("button", name=re.compile(r"Pluis a\d-\d"))
        expect(hits).to_have_count(8)
        for label in hits.all_inner_texts():  # every hit names its own practice
            code = re.search(r"Pluis (a\d)-", label).group(1)
            assert f"Praktijk {code}" in label, label
        expect(page.get_by_text("Patients · first 8")).to_be_visible()
        shot(page, "search-01-franchise-manager-first-page.png")
        page.get_by_role("button", name="Show more patients").click()
        expect(hits).to_have_count(12)
        expect(page.get_by_role("button", name="Show more patients")).to_have_count(0)
        shot(page, "search-02-franchise-manager-more.png")

        vet = browser.new_page(viewport={"width": 1400, "height": 1000})
        vet.set_default_timeout(30_000)
        vet.goto(url)
        sign_in(vet, "vet-a1")
        vet.get_by_role("link", name="Waiting room").click()
        expect(vet.get_by_text("Expected · 1")).to_be_visible()
        shot(vet, "search-03-waiting-room.png")
        vet.get_by_role("button", name="Open record").click()
        expect(vet.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(vet).to_have_url(re.compile(rf"/records\?practice={a1.practice_id}&patient={a1.patient_id}$"))
        # The record's patient picker holds the patient too.
        expect(vet.get_by_role("combobox", name="Patient")).to_have_value("Bello-a1 (dog, Jansen-a1)")
        shot(vet, "search-04-record-from-waiting-room.png")
        browser.close()
