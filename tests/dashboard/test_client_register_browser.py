"""Registering a client in Chromium: a receptionist types a bad postcode (refused at its field), fixes it, is shown
the existing client with the same phone number, registers anyway, and lands on the new client's card.
Screenshots in ``test-artifacts/register-*.png``."""

from __future__ import annotations

from sqlalchemy import select

from tests.dashboard.browser_support import ARGS, BROWSER, CHROMIUM, FIRST_RENDER_MS, shot, sign_in
from tests.practice_world import RECEPTIONIST
from warehouse.schema.clients import Client

pytestmark = BROWSER


def test_receptionist_registers_a_client_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in(page, RECEPTIONIST)
        page.get_by_role("link", name="Register client").click()
        expect(page.get_by_role("heading", name="Register client")).to_be_visible(timeout=FIRST_RENDER_MS)
        for label, value in (("Last name *", "Bakker"), ("Street", "Kerkstraat"), ("House number", "3"),
                             ("Postcode", "1234 A"), ("City", "Utrecht"), ("Phone", "06-1234 5678")):  # fmt: skip
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_role("button", name="Register", exact=True).click()
        expect(page.get_by_text("is not four digits and two letters, like 1234 AB")).to_be_visible()
        shot(page, "register-01-bad-postcode.png")

        page.get_by_label("Postcode", exact=True).fill("3511 AB")
        page.get_by_role("button", name="Register", exact=True).click()
        expect(page.get_by_text("This may be a client you already have")).to_be_visible()
        expect(page.get_by_text("same phone number")).to_be_visible()
        shot(page, "register-02-duplicates.png")
        with db.system() as session:
            assert session.scalars(select(Client).where(Client.last_name == "Bakker")).all() == []

        page.get_by_role("button", name="Register anyway").click()
        expect(page.get_by_text("Bakker is registered.")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_role("heading", name="Bakker")).to_be_visible()
        expect(page.get_by_text("+31612345678").first).to_be_visible()
        shot(page, "register-03-client-card.png")
        browser.close()
    with db.system() as session:
        [row] = session.scalars(select(Client).where(Client.last_name == "Bakker")).all()
    assert (row.postcode, row.city) == ("3511 AB", "Utrecht")
