"""The Conflicts and Integration pages in Chromium: the manager of a1 resolves a conflict field by field (Animana's
surname, VetConnect's city), reloads and finds it gone and the client card showing the chosen values; then switches
the agenda to hybrid after the confirmation, reloads, and the agenda stays hybrid. Screenshots in
``test-artifacts/integration-*.png``."""

from __future__ import annotations

from sqlalchemy import text

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    choose,
    shot,
    sign_in_enrolling_totp,
)
from tests.dashboard.test_integration_pages_app import (
    MANAGER,
    add_manager,
    clients_in_hybrid,
    in_step_with_animana,
    make_client_conflict,
)

pytestmark = BROWSER


def test_manager_resolves_a_conflict_and_switches_the_agenda_to_hybrid_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1 = db.world.practices["a1"]
    in_step_with_animana(db)
    add_manager(db)
    clients_in_hybrid(db, a1)
    make_client_conflict(db, a1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in_enrolling_totp(page, MANAGER)

        page.get_by_role("link", name="Conflicts with Animana").click()
        heading = page.get_by_role("heading", name="Conflicts with Animana")
        expect(heading).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("client J. Lokaal")).to_be_visible()
        shot(page, "integration-01-conflict.png")
        page.get_by_role("radiogroup", name="Choice for surname").get_by_text("Animana").click()
        page.get_by_role("radiogroup", name="Choice for city").get_by_text("VetConnect").click()
        page.get_by_role("button", name="Resolve").click()
        expect(page.get_by_text("Conflict about client J. Lokaal resolved")).to_be_visible()
        shot(page, "integration-02-resolved.png")
        page.reload()
        expect(heading).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("No open conflicts")).to_be_visible()
        expect(page.get_by_text("client J. Lokaal")).to_have_count(0)

        page.get_by_role("link", name="Client card").click()
        search = page.get_by_placeholder("Name, phone, e-mail or postcode")
        search.fill("Animana")
        search.press("Enter")
        page.get_by_role("button", name="Animana, J.").first.click()
        expect(page.get_by_role("heading", name="J. Animana")).to_be_visible(timeout=FIRST_RENDER_MS)
        # VetConnect's city, Animana's surname.
        expect(page.get_by_text("Damrak 1, 1012AB Leiden")).to_be_visible()
        # The city goes back to Animana: the card says so until Animana has it.
        expect(page.get_by_text("⟳ being written to Animana")).to_be_visible()
        shot(page, "integration-03-client-card.png")

        page.get_by_role("link", name="Animana integration").click()
        expect(page.get_by_role("heading", name="Animana integration")).to_be_visible(timeout=FIRST_RENDER_MS)
        choose(page, "Module", "Agenda")
        choose(page, "New mode", "Hybrid")
        expect(
            page.get_by_text("Agenda at Praktijk a1 switches to Hybrid mode: VetConnect writes")
        ).to_be_visible()
        switch = page.get_by_role("button", name="Switch mode")
        expect(switch).to_be_disabled()
        page.get_by_text("I confirm this switch").click()
        expect(switch).to_be_enabled()
        shot(page, "integration-04-confirm-switch.png")
        switch.click()
        expect(page.get_by_text("Agenda at Praktijk a1 is now in Hybrid mode.")).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Animana integration")).to_be_visible(timeout=FIRST_RENDER_MS)
        choose(page, "Module", "Agenda")
        expect(page.get_by_text("Agenda at Praktijk a1 is in Hybrid mode")).to_be_visible()
        shot(page, "integration-05-after-reload.png")
        browser.close()
    with db.system() as session:
        mode = session.execute(
            text("SELECT mode FROM practice_module_mode WHERE practice_id = :p AND module = 'agenda'"),
            {"p": a1.practice_id},
        ).scalar_one()
        client = session.execute(
            text("SELECT last_name, city FROM client WHERE id = :c"), {"c": a1.client_id}
        ).one()
    assert mode == "hybrid" and tuple(client) == ("Animana", "Leiden")
