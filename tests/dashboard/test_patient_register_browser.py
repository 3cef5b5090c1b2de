"""The "Register patient" page in Chromium: the receptionist of a1 finds the owner, a wrong chip is refused at its
field, a chip known at a2 is pointed out, a breed is added to the practice's list and chosen, an estimated age is
given, and the cat is saved with what was chosen; the owner's card lists it. Screenshots in
``test-artifacts/register-patient-*.png``."""

from __future__ import annotations

from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    choose,
    settle,
    shot,
    sign_in,
)
from tests.practice_world import RECEPTIONIST
from warehouse.schema.clients import Patient, PracticeBreed

pytestmark = BROWSER
CHIP = "528140000999001"


def test_a_receptionist_registers_a_cat_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1, a2 = db.world.practices["a1"], db.world.practices["a2"]
    with db.system() as session:
        session.add(Patient(practice_id=a2.practice_id, name="Pluis", species="cat", microchip=CHIP))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in(page, RECEPTIONIST)
        page.get_by_role("link", name="Register patient").click()
        expect(page.get_by_role("heading", name="Register patient")).to_be_visible(timeout=FIRST_RENDER_MS)

        search = page.get_by_role("textbox", name="Find the owner")
        search.fill("Jansen")
        search.press("Enter")
        page.get_by_role("button", name="Jansen-a1").click()
        expect(page.get_by_text("primary owner")).to_be_visible()

        name = page.get_by_role("textbox", name="Name", exact=True)
        name.fill("Minoes")
        name.press("Tab")
        choose(page, "Species", "cat")
        page.get_by_text("The breed is not on the cat list").click()
        new_breed = page.get_by_role("textbox", name="Breed to add to the practice's list")
        new_breed.fill("Kartuizer")
        new_breed.press("Tab")
        page.get_by_role("button", name="Add breed").click()
        expect(page.get_by_role("combobox", name="Breed", exact=True)).to_have_value("Kartuizer")
        page.get_by_text("Female", exact=True).click()
        page.get_by_text("Neutered", exact=True).click()
        page.get_by_text("Estimated age", exact=True).click()
        years = page.get_by_role("spinbutton", name="Years (about)")
        years.fill("2")
        years.press("Enter")

        chip = page.get_by_role("textbox", name="Microchip")
        chip.fill("528 140 000 999")
        chip.press("Enter")
        expect(page.get_by_text("Microchip must have 15 digits, got 12.")).to_be_visible()
        shot(page, "register-patient-01-bad-chip.png")
        chip.fill("528 140 000 999 001")
        chip.press("Enter")
        expect(page.get_by_text("This chip is known at Praktijk a2.")).to_be_visible()
        shot(page, "register-patient-02-known-in-franchise.png")

        page.get_by_role("button", name="Register patient").click()
        expect(
            page.get_by_test_id("stAlertContentSuccess").get_by_text("Minoes is registered.")
        ).to_be_visible()
        settle(page)
        shot(page, "register-patient-03-registered.png")
        with db.system() as session:
            cat = session.scalar(
                select(Patient).where(Patient.practice_id == a1.practice_id, Patient.name == "Minoes")
            )
            added = session.scalar(select(PracticeBreed.name).where(PracticeBreed.practice_id == a1.practice_id,
                                                                    PracticeBreed.name == "Kartuizer"))  # fmt: skip
        assert (cat.breed, cat.sex, cat.microchip, cat.date_of_birth_estimated) == (
            "Kartuizer", "female_neutered", CHIP, True,
        )  # fmt: skip
        assert added == "Kartuizer"

        page.get_by_role("button", name="Open client card").click()
        expect(page.get_by_text("Minoes", exact=False).first).to_be_visible(timeout=FIRST_RENDER_MS)
        browser.close()
