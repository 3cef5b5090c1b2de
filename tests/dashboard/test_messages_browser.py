"""Messages in Chromium: the receptionist finds Alfa, reads on the card a delivered SMS and a bounced mail with its
reason, opens Messages and reads the report's numbers and the problem list, reloads and reads them again.
Screenshots in ``test-artifacts/messages-*.png``."""

from __future__ import annotations

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
from tests.dashboard.test_messages_app import BOUNCE, NO_CONSENT, seed_messages
from tests.practice_world import RECEPTIONIST

pytestmark = BROWSER


def _tiles(page, count: int) -> dict[str, str]:  # noqa: ANN001
    """The page's tiles, once all ``count`` are drawn (under load the run's first elements are there before the
    rest: CI read 2 of 7)."""
    from playwright.sync_api import expect

    metrics = page.get_by_test_id("stMetric")
    expect(metrics).to_have_count(count)
    return {
        metrics.nth(i).get_by_test_id("stMetricLabel").inner_text().strip(): metrics.nth(i)
        .get_by_test_id("stMetricValue")
        .inner_text()
        .strip()
        for i in range(metrics.count())
    }


def test_the_card_and_the_messages_page_in_the_browser(running_app):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    url, db = running_app
    seed_messages(db)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1300}).new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        sign_in(page, RECEPTIONIST)

        page.get_by_role("link", name="Client card").click()
        page.get_by_placeholder("Name, phone, e-mail or postcode").fill("Alfa")
        page.get_by_placeholder("Name, phone, e-mail or postcode").press("Enter")
        page.get_by_role("button", name="Alfa, A.", exact=False).first.click()
        expect(page.get_by_role("heading", name="Messages")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        card = grid_text(page)
        assert "Delivered" in card and "Bounced" in card and BOUNCE in card, card
        assert "Overdue vaccination" in card and "SMS" in card, card
        assert "+00:00" not in card and (" dec " in card or " nov " in card), card  # Dutch dates, local time
        page.get_by_role("heading", name="Messages").scroll_into_view_if_needed()
        shot(page, "messages-01-client-card.png")

        page.get_by_role("link", name="Messages").click()
        expect(page.get_by_role("heading", name="Messages to owners")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        expected = {"Messages": "4", "Sent": "1", "Delivered": "1", "Bounced": "1", "Failed": "0", "Not sent": "1",
                    "Waiting": "0"}  # fmt: skip
        assert _tiles(page, len(expected)) == expected
        problems = grid_text(page)
        assert "A. Alfa" in problems and "0612345678" in problems and NO_CONSENT in problems, problems
        expect(page.get_by_test_id("stPlotlyChart")).to_be_visible()
        shot(page, "messages-02-report.png")

        page.reload()
        expect(page.get_by_role("heading", name="Messages to owners")).to_be_visible(timeout=FIRST_RENDER_MS)
        settle(page)
        assert _tiles(page, len(expected)) == expected
        shot(page, "messages-03-after-reload.png")
        browser.close()
