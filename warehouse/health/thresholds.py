"""Every threshold of the health checks, in one place, with the reason for its value.

A check is ``warn`` from its warn threshold and ``fail`` from its fail threshold (both inclusive). Ages and lags
are in seconds, counts in entries. Change them here; the checks, the page and ``/metrics`` read them."""

from __future__ import annotations

from dataclasses import dataclass

MINUTE = 60.0
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@dataclass(frozen=True)
class Threshold:
    """From ``warn`` on a value is a warning, from ``fail`` on a failure; None: that level is never reached."""

    warn: float | None
    fail: float | None


@dataclass(frozen=True)
class Thresholds:
    # The incremental sync runs every 15 minutes: an hour is four missed runs. 26 h: the nightly full sync
    # (02:30) missed too, with two hours' slack for a slow night (the Dagster freshness checks use the same).
    sync_lag_s: Threshold = Threshold(warn=1 * HOUR, fail=26 * HOUR)
    # The hybrid dispatcher sends within seconds and retries with backoff for minutes: a pending entry older
    # than 15 minutes means Animana refuses or is away; after an hour staff see stale data in Animana.
    outbox_oldest_pending_s: Threshold = Threshold(warn=15 * MINUTE, fail=1 * HOUR)
    # Depth alone (bulk edits make bursts) only warns; its age is what fails.
    outbox_depth: Threshold = Threshold(warn=500, fail=None)
    # A dead letter is a write Animana never got: a person must look at it the same day.
    dead_letter_age_s: Threshold = Threshold(warn=0, fail=1 * DAY)
    # Conflicts and unmatched device results wait for a manager: normal for a day, a failure after a week.
    conflict_age_s: Threshold = Threshold(warn=1 * DAY, fail=7 * DAY)
    device_inbox_age_s: Threshold = Threshold(warn=1 * DAY, fail=7 * DAY)
    # Backups are nightly: one missed night warns, two fail.
    backup_age_s: Threshold = Threshold(warn=26 * HOUR, fail=50 * HOUR)
    # A listener on this machine or the LAN answers a TCP connect in milliseconds.
    tcp_connect_timeout_s: float = 2.0


DEFAULT_THRESHOLDS = Thresholds()
