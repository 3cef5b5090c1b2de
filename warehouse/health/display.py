"""The checks as people read them (the page and the CLI's table): Dutch numbers, ages in words, local times."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from warehouse.health.checks import Check, duration
from warehouse.health.report import HealthReport
from warehouse.kernel import formatting as fmt


def amount(value: float | None, unit: str) -> str:
    if value is None:
        return fmt.EMPTY
    if unit == "seconds":
        return f"{fmt.number(value)} s ({duration(value)})" if value >= 60 else f"{fmt.number(value)} s"
    return fmt.number(value)


def threshold(check: Check) -> str:
    levels = (("warn", check.threshold.warn), ("fail", check.threshold.fail))
    parts = [f"{level} from {amount(v, check.unit)}" for level, v in levels if v is not None]
    return ", ".join(parts) or fmt.EMPTY


def rows(report: HealthReport) -> list[dict[str, str]]:
    return [
        {
            "Check": c.name.replace("_", " "),
            "Status": c.status.label,
            "Value": amount(c.value, c.unit),
            "Threshold": threshold(c),
            "Detail": c.detail,
        }  # fmt: skip
        for c in report.checks
    ]


def checked_at(report: HealthReport, zone: ZoneInfo) -> str:
    return fmt.date_time(report.facts.now, zone)
