"""The app shell in a real browser: a reload keeps the session and the record, a shared address goes through
sign-in to its record, sign-out and revocation end the cookie's session at once. Screenshots in ``test-artifacts/shell-*.png``."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.dashboard.browser_support import ARGS, BROWSER, CHROMIUM, FIRST_RENDER_MS, shot, sign_in
from warehouse.schema.tenancy import AppUser
from warehouse.security.sessions import revoke_sessions

pytestmark = BROWSER


def test_reload_keeps_the_session_and_the_record_and_a_shared_address_opens_it_after_sign_in(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1 = db.world.practices["a1"]
    record_url = f"{url}/records?practice={a1.practice_id}&patient={a1.patient_id}"
    heading = "Bello-a1 · dog"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in(page, "vet-a1")
        search = page.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Bello")
        search.press("Enter")
        page.get_by_role("button", name="Bello-a1").first.click()
        expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=FIRST_RENDER_MS)
        # The address names the page and the record.
        expect(page).to_have_url(re.compile(rf"/records\?practice={a1.practice_id}&patient={a1.patient_id}$"))
        cookie = next(c for c in context.cookies() if c["name"] == "vetconnect_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie").find("vetconnect_session") == -1  # scripts cannot read it

        page.reload()
        expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page.get_by_text("Page not found")).to_have_count(0)
        shot(page, "shell-01-record-after-reload.png")

        # The same address in a fresh browser (nobody signed in): sign-in first, then that record.
        other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        other.set_default_timeout(30_000)
        other.goto(record_url)
        expect(other.get_by_role("button", name="Sign in")).to_be_visible()
        expect(other.get_by_text("Page not found")).to_have_count(0)
        shot(other, "shell-02-shared-address-sign-in.png")
        sign_in(other, "vet-a1")
        expect(other.get_by_role("heading", name=heading)).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(other, "shell-03-shared-address-record.png")

        # Revoking the sessions ends the first browser's at its next load; sign-out ends the other's.
        with db.system() as session:
            user_id = session.scalar(select(AppUser.id).where(AppUser.username == "vet-a1"))
        other.get_by_role("button", name="Sign out").click()
        expect(other.get_by_role("button", name="Sign in")).to_be_visible()
        other.reload()
        expect(other.get_by_role("button", name="Sign in")).to_be_visible()
        with db.system() as session:
            revoke_sessions(session, user_id, reason="revoked by an administrator")
        page.reload()
        expect(page.get_by_text("An administrator ended your session")).to_be_visible()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        shot(page, "shell-04-revoked.png")
        browser.close()
