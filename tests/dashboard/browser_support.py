"""What the browser tests share: Chromium and how to skip without it, the running app (``streamlit run
dashboard/asgi.py`` against a test database), what a person does (sign in, choose in a selectbox) and a clock
for "click to settled content".

A step's time runs from the user's action (click, Enter) to the moment the expected content is on the page
and the app's script run has finished (``stApp``'s ``data-test-script-state``), polled every animation frame:
what a person waits for, not Playwright's coarser retry interval.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
import pytest

from tests.conftest import MASTER_KEY
from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# The marks of every browser test module: skipped, with the reason, where Chromium is missing.
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install -y chromium)"
    ),
]

# The first render after sign-in imports the hub's libraries (plotly, scikit-learn) in the server process;
# with other work on a 2-core machine that has taken over 30 s.
FIRST_RENDER_MS = 90_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_app(db, port: int, *extra_args: str, log_name: str = "streamlit.log") -> Iterator[str]:  # noqa: ANN001
    """``streamlit run dashboard/asgi.py`` against ``db`` on ``port``; yields its URL once it is healthy."""
    env = {**os.environ, "DATABASE_URL": db.admin_url,
           "VETCONNECT_MASTER_KEY": base64.b64encode(MASTER_KEY).decode()}  # fmt: skip
    env.pop("VETCONNECT_DEMO", None)
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / log_name).open("wb")  # a file, not a pipe: a full pipe would block the server
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "asgi.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         *extra_args],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start within 60 s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def settle(page) -> None:  # noqa: ANN001
    """Wait until the script run an action started has finished (the status widget is gone): the elements are
    there to be read and clicked (what is read is awaited with ``expect``, which retries)."""
    from playwright.sync_api import expect

    page.wait_for_timeout(300)  # the run the action asked for has begun
    expect(page.get_by_role("button", name="Stop")).to_have_count(0, timeout=30_000)
    page.wait_for_timeout(150)


def grid_text(page) -> str:  # noqa: ANN001
    """The text of the data grids on the page, once every grid has written it. They are drawn on a canvas; the
    grid keeps its header and visible cells in an accessible table beside it, which is what a screen reader reads
    (and what this returns). Each grid writes that table a moment after drawing, one after the other: read
    early, the last grids are missing (seen in CI: 2 of a referral history's 3 grids)."""
    from playwright.sync_api import expect

    settle(page)
    grids = page.locator('[data-testid="stDataFrame"]:visible')
    written = grids.filter(has=page.locator('[role="columnheader"]'))
    expect(grids.first).to_be_attached(timeout=15_000)
    expect(written).to_have_count(grids.count(), timeout=15_000)
    return "\n".join(page.locator('[data-testid="stDataFrame"]').all_text_contents())


def shot(page, name: str) -> None:  # noqa: ANN001
    """A screenshot once the run has finished and the grids (drawn on a canvas after the run) have painted."""
    settle(page)
    page.wait_for_timeout(350)
    page.screenshot(path=ARTIFACTS / name, full_page=True)


def choose(page, label: str, option: str, attempts: int = 3) -> None:  # noqa: ANN001
    """Pick ``option`` in the Streamlit selectbox labelled ``label``, as a person does: open, click. A list that
    closes again before the click (a rerun redraws the box under load: seen in CI, the list shut with the typed
    name in the box) is opened again, as a person would."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("combobox", name=label, exact=True)
    options = page.get_by_role("option", name=option, exact=False)
    try:
        for attempt in range(1, attempts + 1):
            box.click()
            if not options.count():  # a list that did not open on the click opens as one types
                page.keyboard.press("Control+A")
                page.keyboard.type(option)
            try:
                options.first.click(timeout=10_000)
                break
            except PlaywrightTimeout:
                if attempt == attempts:
                    raise
                page.keyboard.press("Escape")
                settle(page)
    except Exception:
        page.screenshot(path=ARTIFACTS / "failed-choice.png", full_page=True)
        raise
    settle(page)


def sign_in(page, username: str) -> None:  # noqa: ANN001
    """Password sign-in on the page shown; returns once the signed-in app is there."""
    from playwright.sync_api import expect

    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=FIRST_RENDER_MS)


def enter_totp_enrolment(page, username: str) -> None:  # noqa: ANN001
    """The first sign-in of an account that must use two-step sign-in, up to its code: the password, then the
    key shown under the QR code typed into an authenticator (pyotp), as a person would. The caller confirms."""
    from playwright.sync_api import expect

    page.get_by_label("User name").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    key = page.get_by_text("Enter this key by hand", exact=False)
    expect(key).to_be_visible(timeout=FIRST_RENDER_MS)
    secret = re.search(r"by hand:\s*([A-Z2-7]+)", key.inner_text()).group(1)
    page.get_by_role("textbox", name="6-digit code").fill(pyotp.TOTP(secret).now())


def sign_in_enrolling_totp(page, username: str) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    enter_totp_enrolment(page, username)
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=FIRST_RENDER_MS)


# Counts the app's script runs: installed before an action, so a step waits for the run the action started
# (not for a page that merely has not begun to rerun yet).
_WATCH_RUNS = """
() => {
  window.__vcRuns = 0;
  window.__vcSince = performance.now();
  if (window.__vcObserver) window.__vcObserver.disconnect();
  // Every change of the state counts: a fast run can start and end before the callback reads the attribute
  // (a fragment's rerun often does), so the current value alone would miss it. The whole document is watched,
  // so a re-mounted app element is watched too.
  window.__vcObserver = new MutationObserver((records) => { window.__vcRuns += records.length; });
  window.__vcObserver.observe(document.body,
    {attributes: true, subtree: true, attributeFilter: ['data-test-script-state']});
}
"""
# Settled: the run the action started is over and the text is there. A run too short to be seen at all (none
# observed after 3 s) with the text there counts as settled too, at that late time: the figure errs slow.
_SETTLED_WITH_TEXT = """
(text) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') === 'running') return false;
  if (window.__vcRuns === 0 && performance.now() - window.__vcSince < 3000) return false;
  return text === null || document.body.innerText.includes(text);
}
"""


@dataclass
class DayClock:
    """Times each step of the scripted day; prints and writes the table at the end."""

    rows: list[tuple[str, float]] = field(default_factory=list)

    def step(self, page, name: str, action: Callable[[], object], expect_text: str | None) -> float:  # noqa: ANN001
        page.evaluate(_WATCH_RUNS)
        started = time.perf_counter()
        try:
            action()
            page.wait_for_function(_SETTLED_WITH_TEXT, arg=expect_text, polling="raf", timeout=90_000)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / "day-failed-step.png", full_page=True)
            # The app scrolls inside its own container, so the screenshot may miss the top: keep the page's text.
            (ARTIFACTS / "day-failed-step.txt").write_text(page.inner_text("body"))
            raise
        seconds = time.perf_counter() - started
        self.rows.append((name, seconds))
        return seconds

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        lines = [f"{'step':<{width}}  seconds"]
        lines += [f"{name:<{width}}  {seconds:7.2f}" for name, seconds in self.rows]
        times = sorted(s for _, s in self.rows)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        lines.append(f"{'median':<{width}}  {statistics.median(times):7.2f}")
        lines.append(f"{'p95':<{width}}  {p95:7.2f}")
        return "\n".join(lines)

    def report(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        text = self.table()
        (ARTIFACTS / name).write_text(text + "\n")
        print(f"\n{text}")  # noqa: T201 - the figure the issue asks the browser day to print
