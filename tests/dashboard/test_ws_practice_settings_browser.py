"""The practice settings page in Chromium: the manager of a1 signs in (enrolling the authenticator), a bad IBAN is
refused at its field, the corrected details are saved, a new invoice series is previewed, confirmed and set up,
and billing numbers the next invoice with it. Screenshots in ``test-artifacts/settings-*.png``."""

from __future__ import annotations

import datetime as dt

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    settle,
    shot,
    sign_in_enrolling_totp,
)
from tests.factories import PASSWORD, TZ
from warehouse.billing.drafts import create_draft
from warehouse.schema.tenancy import Tenant
from warehouse.security.accounts import access_context_for_user, add_user
from warehouse.security.permissions import Actor

pytestmark = BROWSER


def test_manager_keeps_the_invoice_details_and_sets_up_a_series_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1 = db.world.practices["a1"]
    with db.system() as session:
        add_user(session, username="manager-a1", full_name="Manager A1", password=PASSWORD,
                 memberships=[(a1.practice_id, "practice_manager")])  # fmt: skip
        context = access_context_for_user(session, a1.user_id)
    with db.as_app(context) as session:
        create_draft(session, Actor.at(a1.user_id, a1.practice_id, {"receptionist"}),
                     practice_id=a1.practice_id, client_id=a1.client_id)  # fmt: skip
    first = f"VC{dt.datetime.now(TZ).year}-00001"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in_enrolling_totp(page, "manager-a1")
        page.get_by_role("link", name="Practice settings").click()
        expect(page.get_by_role("heading", name="Practice settings")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(page.get_by_label("City")).to_have_value("Amsterdam")
        shot(page, "settings-01-opened.png")

        page.get_by_label("City").fill("Utrecht")
        page.get_by_label("IBAN").fill("NL00 ABNA 0417 1643 00")
        page.get_by_role("button", name="Save details").click()
        expect(page.get_by_text("This is not a valid IBAN")).to_be_visible()
        expect(page.get_by_text("Nothing was saved")).to_be_visible()
        shot(page, "settings-02-bad-iban.png")
        with db.system() as session:
            assert session.get(Tenant, a1.practice_id).city == "Amsterdam"

        page.get_by_label("IBAN").fill("NL91 ABNA 0417 1643 00")
        page.get_by_role("button", name="Save details").click()
        expect(page.get_by_text("Details saved")).to_be_visible()
        expect(page.get_by_label("IBAN")).to_have_value("NL91ABNA0417164300")
        with db.system() as session:
            assert session.get(Tenant, a1.practice_id).city == "Utrecht"

        page.get_by_text("Set up a new series").click()
        prefix = page.get_by_role("textbox", name="Prefix")
        prefix.fill("VC")
        prefix.press("Enter")
        expect(page.get_by_text(f"would get number {first}")).to_be_visible()
        set_up = page.get_by_role("button", name="Set up this series")
        expect(set_up).to_be_disabled()
        page.get_by_text("I confirm: the next invoice is numbered").click()
        expect(set_up).to_be_enabled()
        shot(page, "settings-03-new-series-preview.png")
        set_up.click()
        expect(page.get_by_text(f"New series set up: the next invoice is numbered {first}")).to_be_visible()
        page.get_by_text("Changes", exact=True).click()
        expect(page.get_by_text("Set up a new series")).to_be_visible()
        shot(page, "settings-04-series-set-up.png")  # with the changes: who, when, old -> new

        page.get_by_role("link", name="Billing").click()
        expect(page.get_by_role("heading", name="Billing")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        expect(page.get_by_text(f"Issuing gives number {first}")).to_be_visible()
        shot(page, "settings-05-billing-next-number.png")
        browser.close()
