"""In a real browser: the franchise manager's search names each hit's practice and shows more on request; a
vet opens a patient from the waiting room. Screenshots in ``test-artifacts/search-*.png``."""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.factories import PASSWORD
from tests.workspaces.test_ws_browser import ARGS, CHROMIUM, FIRST_RENDER_MS, running_app, shot
from tests.workspaces.test_ws_browser_shell import _sign_in
from warehouse.schema.clients import Patient

__all__ = ["running_app"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install -y chromium)"
    ),
]


def _sign_in_enrolling_totp(page, username: str) -> None:  # noqa: ANN001
    """First sign-in of an account that must use two-step sign-in: the key shown on the page, then its code."""
    from playwright.sync_api import expect

    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    key = page.get_by_text("Enter this key by hand", exact=False)
    expect(key).to_be_visible(timeout=FIRST_RENDER_MS)
    secret = re.search(r"by hand: ([A-Z2-7]+)", key.inner_text()).group(1)
    page.get_by_role("textbox", name="6-digit code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=FIRST_RENDER_MS)


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
        _sign_in_enrolling_totp(page, "fm-a")
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
        _sign_in(vet, "vet-a1")
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
