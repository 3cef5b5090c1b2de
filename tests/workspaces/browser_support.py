"""What the browser tests share: the running app, Chromium, and a clock for "click to settled content".

A step's time runs from the user's action (click, Enter) to the moment the expected content is on the page
and the app's script run has finished (``stApp``'s ``data-test-script-state``), polled every animation frame:
what a person waits for, not Playwright's coarser retry interval.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

# Counts the app's script runs: installed before an action, so a step waits for the run the action started
# (not for a page that merely has not begun to rerun yet).
_WATCH_RUNS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__vcRuns = 0;
  if (window.__vcObserver) window.__vcObserver.disconnect();
  window.__vcObserver = new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__vcRuns += 1;
  });
  window.__vcObserver.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}
"""
_SETTLED_WITH_TEXT = """
(text) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || window.__vcRuns === 0 || app.getAttribute('data-test-script-state') === 'running') return false;
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
