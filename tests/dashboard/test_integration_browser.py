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
    make_client_conflict(db, a1)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in_enrolling_totp(page, MANAGER)

        page.get_by_role("link", name="Conflicten met Animana").click()
        heading = page.get_by_role("heading", name="Conflicten met Animana")
        expect(heading).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("cliënt J. Lokaal")).to_be_visible()
        shot(page, "integration-01-conflict.png")
        page.get_by_role("radiogroup", name="Keuze voor achternaam").get_by_text("Animana").click()
        page.get_by_role("radiogroup", name="Keuze voor plaats").get_by_text("VetConnect").click()
        page.get_by_role("button", name="Oplossen").click()
        expect(page.get_by_text("Conflict over cliënt J. Lokaal opgelost")).to_be_visible()
        shot(page, "integration-02-resolved.png")
        page.reload()
        expect(heading).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("Geen open conflicten")).to_be_visible()
        expect(page.get_by_text("cliënt J. Lokaal")).to_have_count(0)

        page.get_by_role("link", name="Client card").click()
        search = page.get_by_placeholder("Name, phone, e-mail or postcode")
        search.fill("Animana")
        search.press("Enter")
        page.get_by_role("button", name="Animana, J.").first.click()
        expect(page.get_by_role("heading", name="J. Animana")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("Damrak 1, 1012AB Leiden")).to_be_visible()  # VetConnect's city, Animana's surname
        # The city goes back to Animana: the card says so until Animana has it.
        expect(page.get_by_text("⟳ wordt naar Animana geschreven")).to_be_visible()
        shot(page, "integration-03-client-card.png")

        page.get_by_role("link", name="Koppeling met Animana").click()
        expect(page.get_by_role("heading", name="Koppeling met Animana")).to_be_visible(
            timeout=FIRST_RENDER_MS
        )
        choose(page, "Module", "Agenda")
        choose(page, "Nieuwe modus", "Hybride")
        expect(page.get_by_text("Agenda van Praktijk a1 wordt Hybride: VetConnect schrijft")).to_be_visible()
        switch = page.get_by_role("button", name="Modus omzetten")
        expect(switch).to_be_disabled()
        page.get_by_text("Ik bevestig deze omzetting").click()
        expect(switch).to_be_enabled()
        shot(page, "integration-04-confirm-switch.png")
        switch.click()
        expect(page.get_by_text("Agenda van Praktijk a1 is nu Hybride.")).to_be_visible()
        page.reload()
        expect(page.get_by_role("heading", name="Koppeling met Animana")).to_be_visible(
            timeout=FIRST_RENDER_MS
        )
        choose(page, "Module", "Agenda")
        expect(page.get_by_text("Agenda van Praktijk a1 staat op Hybride")).to_be_visible()
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
