"""``/metrics``: a Prometheus collector that runs the health checks when scraped (cached for a few seconds, so
two scrapers or a fast scrape interval cost one run) and reports them as gauges in base units.

Labels are bounded: the practice code, the module, the outbox state, the check's name, a listener's address;
never a client or a record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from warehouse.health.report import HealthReport

CACHE_SECONDS = 5.0


class HealthCollector(Collector):
    def __init__(self, run: Callable[[], HealthReport], cache_seconds: float = CACHE_SECONDS) -> None:
        self._run = run
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[float, HealthReport] | None = None

    def report(self) -> HealthReport:
        with self._lock:  # concurrent scrapes wait for the one run instead of starting their own
            if self._cached is None or time.monotonic() - self._cached[0] >= self._cache_seconds:
                self._cached = (time.monotonic(), self._run())
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from families(self.report())


def families(report: HealthReport) -> Iterator[GaugeMetricFamily]:
    facts = report.facts
    status = GaugeMetricFamily(
        "vetconnect_check_status", "Health check status: 0 ok, 1 warn, 2 fail", labels=["check"]
    )
    for check in report.checks:
        status.add_metric([check.name], int(check.status))
    yield status
    yield GaugeMetricFamily("vetconnect_up", "1 when every check is ok or warns, 0 when one fails",
                            value=int(report.status < 2))  # fmt: skip
    if facts.backup is not None:
        age = (facts.now - facts.backup.finished_at).total_seconds()
        yield GaugeMetricFamily(
            "vetconnect_backup_age_seconds", "Age of the newest complete backup", value=age
        )
        yield GaugeMetricFamily("vetconnect_backup_size_bytes", "Size of the newest complete backup",
                                value=facts.backup.size_bytes)  # fmt: skip
    if facts.mllp:
        listener = GaugeMetricFamily(
            "vetconnect_mllp_listener_up", "MLLP listener accepts TCP", labels=["address"]
        )
        for address, why in facts.mllp.items():
            listener.add_metric([address], int(why is None))
        yield listener
    db = facts.database
    if db is None:
        return
    if facts.animana is not None:
        up = GaugeMetricFamily(
            "vetconnect_animana_up", "Animana answers with a valid token", labels=["practice"]
        )
        for code, why in facts.animana.items():
            up.add_metric([code], int(why is None))
        yield up
    lag = GaugeMetricFamily("vetconnect_sync_lag_seconds", "Seconds since the module's last Animana sync",
                            labels=["practice", "module"])  # fmt: skip
    for m in db.modules:
        if m.linked and m.mode != "native" and m.last_sync is not None:
            lag.add_metric([m.practice_code, m.module], (facts.now - m.last_sync).total_seconds())
    yield lag
    outbox = GaugeMetricFamily("vetconnect_writeback_outbox_entries", "Write-back entries not yet done",
                               labels=["practice", "state"])  # fmt: skip
    for q in db.outbox:
        outbox.add_metric([q.practice_code, q.kind], q.count)
    yield outbox
    pending = [q.oldest for q in db.outbox if q.kind == "pending" and q.oldest is not None]
    oldest = (facts.now - min(pending)).total_seconds() if pending else 0.0
    yield GaugeMetricFamily("vetconnect_writeback_oldest_pending_age_seconds",
                            "Age of the oldest pending write-back entry (0: none)", value=oldest)  # fmt: skip
    for name, doc, queues in (
        ("vetconnect_conflicts_open", "Open conflicts with Animana", db.conflicts),
        ("vetconnect_device_inbox_messages", "Device messages waiting in the inbox", db.device_inbox),
    ):
        family = GaugeMetricFamily(name, doc, labels=["practice"])
        for q in queues:
            family.add_metric([q.practice_code], q.count)
        yield family


def registry_for(collector: HealthCollector) -> CollectorRegistry:
    """A registry of its own (not the global one): the app's metrics are exactly what the checks read."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
