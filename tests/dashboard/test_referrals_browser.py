"""A referral across franchises in Chromium, two users at two browsers: a1's vet refers Bello from his record to
b1 (the owner's consent given by phone); b1's vet opens Incoming, reads the shared history (owner, visits, lab
values) and sends findings back; a1's vet sees them in Bello's record; a1 revokes, and b1's reloaded page no
longer shows the patient or the history. Screenshots in ``test-artifacts/referral-*.png``."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.dashboard.browser_support import (
    ARGS,
    BROWSER,
    CHROMIUM,
    FIRST_RENDER_MS,
    grid_text,
    settle,
    shot,
    sign_in,
)
from warehouse.schema.referrals import Referral, ReferralReport

pytestmark = BROWSER
FINDINGS = "Mild mitral valve disease, no treatment yet."


def _open_tab(page, name: str) -> None:  # noqa: ANN001
    page.get_by_role("tab", name=name).click()
    settle(page)


def _choose(page, label: str, option: str) -> None:  # noqa: ANN001
    """A selectbox inside a form: open it and click the option (browser_support.choose waits for a script run,
    which a widget in a form does not start)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=False).first.click()


def test_a_referral_round_trip_and_revocation_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    a1, b1 = db.world.practices["a1"], db.world.practices["b1"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        vet_a = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        vet_b = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
        for page in (vet_a, vet_b):
            page.set_default_timeout(30_000)
            page.goto(url)

        # a1's vet refers Bello from his record.
        sign_in(vet_a, "vet-a1")
        search = vet_a.get_by_placeholder("Search clients, patients", exact=False)
        search.fill("Bello")
        search.press("Enter")
        vet_a.get_by_role("button", name="Bello-a1").first.click()
        expect(vet_a.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible(timeout=FIRST_RENDER_MS)
        vet_a.get_by_role("button", name="Refer to another practice").click()
        expect(vet_a.get_by_role("heading", name="Referrals")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(vet_a)
        # The record's patient is chosen already.
        expect(vet_a.get_by_role("combobox", name="Patient", exact=True)).to_have_value(
            re.compile(r"^Bello-a1 \(dog, Jansen-a1\)")
        )
        _choose(vet_a, "Refer to practice", "Praktijk b1")
        vet_a.get_by_role("textbox", name="Reason for referral").fill("Cardiology work-up: heart murmur")
        _choose(vet_a, "Owner's consent to share the record, given", "phone")
        shot(vet_a, "referral-01-refer-form.png")
        vet_a.get_by_role("button", name="Refer", exact=True).click()
        expect(vet_a.get_by_text("Referred to Praktijk b1", exact=False)).to_be_visible()
        shot(vet_a, "referral-02-referred.png")
        with db.system() as session:
            referral = session.scalar(select(Referral).where(Referral.to_practice_id == b1.practice_id))
        assert (referral.practice_id, referral.patient_id, referral.consent_how, referral.status) == (
            a1.practice_id, a1.patient_id, "phone", "open",
        )  # fmt: skip

        # b1's vet reads the shared history and sends findings back.
        sign_in(vet_b, "vet-b1")
        vet_b.get_by_role("link", name="Referrals").click()
        expect(vet_b.get_by_role("heading", name="Referrals")).to_be_visible(timeout=FIRST_RENDER_MS)
        _open_tab(vet_b, "Incoming")
        incoming = vet_b.get_by_test_id("stExpander").filter(has_text="Bello-a1 from Praktijk a1 · open")
        expect(incoming).to_be_visible()
        expect(incoming.get_by_text("Cardiology work-up: heart murmur")).to_be_visible()
        incoming.get_by_role("button", name="Read the history").click()
        expect(vet_b.get_by_text("J. Jansen-a1 · 06-12345678")).to_be_visible()
        settle(vet_b)
        history = grid_text(vet_b)
        assert "Jaarlijkse controle" in history and "Gezond" in history, history  # the visit, its diagnosis
        assert "GLU" in history and "5,4" in history, history  # the lab value, decimal comma
        assert "+00:00" not in history, history  # every moment in the practice's local time, Dutch
        assert "Meloxicam" in history, history
        shot(vet_b, "referral-03-incoming-history.png")
        vet_b.get_by_role("textbox", name="Findings").fill(FINDINGS)
        vet_b.get_by_role("textbox", name="Diagnosis").fill("Mitral valve disease")
        vet_b.get_by_role("textbox", name="Letter to the referring vet").fill("Recheck in 6 months.")
        vet_b.get_by_role("button", name="Send findings").click()
        expect(vet_b.get_by_text("Findings sent to Praktijk a1.")).to_be_visible()
        shot(vet_b, "referral-04-findings-sent.png")

        # a1's vet sees the report on Bello's record.
        vet_a.goto(f"{url}/records?practice={a1.practice_id}&patient={a1.patient_id}")
        expect(vet_a.get_by_role("heading", name="Bello-a1 · dog")).to_be_visible(timeout=FIRST_RENDER_MS)
        expect(vet_a.get_by_role("heading", name="Referral reports")).to_be_visible()
        report = vet_a.get_by_test_id("stExpander").filter(has_text="Praktijk b1 · Cardiology work-up")
        report.get_by_text("Praktijk b1 · Cardiology work-up", exact=False).click()
        expect(report.get_by_text(FINDINGS)).to_be_visible()
        expect(report.get_by_text("Mitral valve disease", exact=False).first).to_be_visible()
        expect(report.get_by_text("Recheck in 6 months.")).to_be_visible()
        report.scroll_into_view_if_needed()
        shot(vet_a, "referral-05-report-on-record.png")

        # a1 revokes; b1's page, reloaded, no longer shows Bello or his history.
        vet_a.get_by_role("link", name="Referrals").click()
        expect(vet_a.get_by_role("heading", name="Referrals")).to_be_visible(timeout=FIRST_RENDER_MS)
        _open_tab(vet_a, "Outgoing")
        outgoing = vet_a.get_by_test_id("stExpander").filter(has_text="Bello-a1 → Praktijk b1 · open")
        outgoing.get_by_text("Bello-a1 → Praktijk b1", exact=False).click()
        expect(outgoing.get_by_text("Findings received: 1", exact=False)).to_be_visible()
        outgoing.get_by_role("textbox", name="Why revoke").fill("Owner moved to another practice")
        outgoing.get_by_role("textbox", name="Why revoke").press("Enter")
        settle(vet_a)
        outgoing.get_by_role("button", name="Revoke").click()
        expect(
            vet_a.get_by_text("Referral revoked: the other practice no longer sees the record.")
        ).to_be_visible()
        shot(vet_a, "referral-06-revoked.png")

        vet_b.reload()
        expect(vet_b.get_by_role("heading", name="Referrals")).to_be_visible(timeout=FIRST_RENDER_MS)
        _open_tab(vet_b, "Incoming")
        ended = vet_b.get_by_test_id("stExpander").filter(has_text="from Praktijk a1 · revoked")
        expect(ended).to_be_visible()
        expect(ended.get_by_text("(no longer shared) from Praktijk a1 · revoked")).to_be_visible()
        expect(vet_b.get_by_role("button", name="Read the history")).to_have_count(0)
        expect(vet_b.get_by_text("J. Jansen-a1")).to_have_count(0)
        expect(vet_b.get_by_text("Bello-a1")).to_have_count(0)
        shot(vet_b, "referral-07-after-revoke.png")
        browser.close()
    with db.system() as session:
        reports = session.scalars(
            select(ReferralReport.findings).where(
                ReferralReport.practice_id == a1.practice_id, ReferralReport.referral_id == referral.id
            )
        ).all()
        status = session.scalar(select(Referral.status).where(Referral.id == referral.id))
    assert reports == [FINDINGS]
    assert status == "revoked"
