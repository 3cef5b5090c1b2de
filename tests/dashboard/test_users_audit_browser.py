"""An administrator's work in Chromium: the manager of a1 adds a user, who sets a password through the one-time
link (in a browser of their own) and signs in; the manager grants the vet a role and deactivates the account,
then reads those actions, with their own session, in the audit trail. Screenshots in
``test-artifacts/admin-*.png``."""

from __future__ import annotations

from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    choose,
    grid_text,
    settle,
    shot,
    sign_in_enrolling_totp,
)
from tests.factories import PASSWORD
from warehouse.schema.tenancy import AppUser, Membership
from warehouse.security.accounts import add_user
from warehouse.security.signin import Rejected, begin_sign_in

pytestmark = BROWSER
NEW_PASSWORD = "Paard-Staart-Kliniek-42"


def test_administrator_adds_a_user_grants_a_role_deactivates_and_reads_the_audit_trail(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1 = db.world.practices["a1"]
    with db.system() as session:
        add_user(session, username="manager-a1", full_name="Manager A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in_enrolling_totp(page, "manager-a1")
        page.get_by_role("link", name="Users").click()
        expect(page.get_by_role("heading", name="Users")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        assert "vet-a1" in grid_text(page)

        page.get_by_text("Add a user").click()
        page.get_by_label("User name").fill("anna")
        page.get_by_label("Full name").fill("Anna de Vries")
        choose(page, "Role", "Nurse")
        page.get_by_role("button", name="Add user").click()
        expect(page.get_by_text("anna added as nurse")).to_be_visible()
        link = page.locator("code", has_text="invite=").inner_text().strip()
        shot(page, "admin-01-user-added.png")

        # Anna opens the link in her own browser, sets her password and signs in.
        own = browser.new_context().new_page()
        own.goto(link)
        expect(own.get_by_text("Choose the password for your account anna")).to_be_visible(
            timeout=FIRST_RENDER_MS
        )
        own.get_by_role("textbox", name="New password").fill(NEW_PASSWORD)
        own.get_by_label("Repeat the password").fill(NEW_PASSWORD)
        own.get_by_role("button", name="Set password").click()
        expect(own.get_by_text("Your password is set. Sign in as anna.")).to_be_visible()
        own.get_by_label("User name").fill("anna")
        own.get_by_role("textbox", name="Password").fill(NEW_PASSWORD)
        own.get_by_role("button", name="Sign in").click()
        expect(own.get_by_role("button", name="Sign out")).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(own, "admin-02-invited-user-signed-in.png")

        choose(page, "User", "Vet a1 (vet-a1)")
        choose(page, "Grant a role", "Nurse")
        page.get_by_role("button", name="Grant", exact=True).click()
        expect(page.get_by_text("Vet a1 is now nurse")).to_be_visible()
        page.get_by_role("button", name="Deactivate").click()
        expect(page.get_by_text("Vet a1 is deactivated and signed out everywhere")).to_be_visible()
        settle(page)
        assert "Deactivated" in grid_text(page)
        shot(page, "admin-03-vet-deactivated.png")
        assert isinstance(begin_sign_in(db.admin_engine, "vet-a1", PASSWORD), Rejected)
        with db.system() as session:
            assert not session.get(AppUser, a1.user_id).is_active
            assert "nurse" in set(
                session.scalars(select(Membership.role).where(Membership.user_id == a1.user_id))
            )

        page.get_by_role("link", name="Audit trail").click()
        expect(page.get_by_role("heading", name="Audit trail")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_text("Chain verified")).to_be_visible()
        choose(page, "User", "Manager A1")
        choose(page, "Kind of record", "app user")
        page.get_by_role("button", name="Show entries").click()
        settle(page)
        entries = grid_text(page)
        for action in ("add user", "grant role", "deactivate"):
            assert action in entries, entries
        assert "Manager A1" in entries
        shot(page, "admin-04-audit-trail.png")
        browser.close()
