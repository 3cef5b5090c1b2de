"""The app shell in a real browser: a reload keeps the session and the record, a shared address goes through
sign-in to its record, sign-out and revocation end the cookie's session at once, bookings in a row, and an
unexpected error shows an error id, not a traceback. Screenshots in ``test-artifacts/shell-*.png``."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select, text

from tests.factories import PASSWORD
from tests.workspaces.conftest import RECEPTIONIST
from tests.workspaces.test_ws_browser import ARGS, ARTIFACTS, CHROMIUM, FIRST_RENDER_MS, running_app, shot
from warehouse.schema.scheduling import Appointment
from warehouse.schema.tenancy import AppUser
from warehouse.security.sessions import revoke_sessions

__all__ = ["running_app"]  # the fixture, shared with the workspace walk

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install -y chromium)"
    ),
]


def _sign_in(page, username: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=FIRST_RENDER_MS)


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
        _sign_in(page, "vet-a1")
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
        _sign_in(other, "vet-a1")
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


def test_four_bookings_in_a_row_check_in_and_an_error_shows_only_its_id(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1 = db.world.practices["a1"]
    timings: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/scheduling")
        _sign_in(page, RECEPTIONIST)
        expect(page.get_by_role("heading", name="Scheduling")).to_be_visible(timeout=FIRST_RENDER_MS)
        # No developer menu, no Deploy button.
        expect(page.get_by_role("button", name="Deploy")).to_have_count(0)
        for n in range(1, 5):
            page.get_by_label("Find patient").fill("Bello")
            page.get_by_label("Find patient").press("Enter")
            page.get_by_label("Patient", exact=True).click()
            page.get_by_role("option", name=re.compile("Bello-a1")).click()
            page.get_by_label("Reason").fill(f"Controle {n}")
            page.get_by_role("button", name="Find free slots").click()
            first_slot = page.locator("[class*='st-key-slot-']").get_by_role("button").first
            expect(first_slot).to_be_visible()
            started = time.monotonic()
            first_slot.click()
            expect(page.get_by_text("Booked Bello-a1")).to_be_visible()
            timings.append(time.monotonic() - started)
            shot(page, f"shell-1{n}-booked.png")
            expect(page.get_by_text("invalid input syntax")).to_have_count(0)
            expect(page.get_by_label("Find patient")).to_have_value("")
        # Check the first one in, on the Appointment tab (which stays open after the action).
        page.get_by_role("tab", name="Appointment").click()
        page.get_by_role("button", name="Check in").click()
        expect(page.get_by_text("Check in: done.")).to_be_visible()
        expect(page.get_by_role("tab", name="Appointment", selected=True)).to_be_visible()
        shot(page, "shell-15-checked-in.png")
        print("booking, click to content (s):", ", ".join(f"{t:.2f}" for t in timings))  # noqa: T201

        # An unexpected error (a table the page reads is gone): a short message with an id, no SQL; the log
        # has the details under that id.
        with db.system() as session:
            session.execute(text("ALTER TABLE resource RENAME TO resource_gone"))
        page.reload()
        message = page.get_by_text("Something went wrong")
        expect(message).to_be_visible(timeout=FIRST_RENDER_MS)
        shot(page, "shell-16-error-id.png")
        error_id = re.search(r"error id ([0-9a-f]{8})", message.inner_text()).group(1)
        expect(page.get_by_text("resource_gone")).to_have_count(0)
        expect(page.get_by_text("Traceback")).to_have_count(0)
        with db.system() as session:
            session.execute(text("ALTER TABLE resource_gone RENAME TO resource"))
        browser.close()
    with db.system() as session:
        reasons = session.scalars(
            select(Appointment.reason).where(Appointment.practice_id == a1.practice_id,
                                             Appointment.reason.like("Controle %"))
        ).all()  # fmt: skip
    assert sorted(reasons) == ["Controle 1", "Controle 2", "Controle 3", "Controle 4"]
    log = (ARTIFACTS / "streamlit.log").read_text()
    assert f"unexpected error {error_id}" in log and "resource_gone" in log
