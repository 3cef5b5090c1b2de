"""A health run: gather the facts once, judge every check, and the report's overall status and JSON."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from warehouse.health.checks import Check, Status, all_checks
from warehouse.health.facts import (
    AnimanaProbe,
    DatabaseFacts,
    Facts,
    newest_backup,
    read_database,
    tcp_refusal,
)
from warehouse.health.thresholds import DEFAULT_THRESHOLDS, Thresholds


@dataclass(frozen=True)
class HealthSources:
    """Where the facts come from; the shell (``vetconnect``) assembles it from its settings."""

    admin_engine: Engine | None  # None: the database cannot be reached at all (``database_error`` says why)
    backups_dir: Path
    animana_probe: AnimanaProbe | None = None  # None: Animana is not configured
    mllp_addresses: tuple[str, ...] = ()
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    database_error: str = "no database configured"


@dataclass(frozen=True)
class HealthReport:
    facts: Facts
    checks: list[Check] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), default=Status.OK)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status.label,
            "checked_at": self.facts.now.isoformat(),
            "checks": [
                {
                    "name": c.name,
                    "status": c.status.label,
                    "value": c.value,
                    "unit": c.unit,
                    "threshold": {"warn": c.threshold.warn, "fail": c.threshold.fail},
                    "detail": c.detail,
                }
                for c in self.checks
            ],
        }


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def gather(sources: HealthSources, now: dt.datetime | None = None) -> Facts:
    database: DatabaseFacts | None = None
    error = sources.database_error
    if sources.admin_engine is not None:
        try:
            database = read_database(sources.admin_engine)
        except SQLAlchemyError as exc:
            error = _first_line(exc)
    animana = None
    if database is not None and sources.animana_probe is not None:
        # After the session: no transaction stays open while Animana answers.
        animana = {p.code: sources.animana_probe(p.animana_practice_id) for p in database.linked}
    timeout = sources.thresholds.tcp_connect_timeout_s
    return Facts(
        now=now or dt.datetime.now(dt.UTC),
        database=database,
        database_error=None if database is not None else error,
        animana=animana,
        mllp={address: tcp_refusal(address, timeout) for address in sources.mllp_addresses},
        backups_dir=sources.backups_dir,
        backup=newest_backup(sources.backups_dir),
    )


def run_health(sources: HealthSources, now: dt.datetime | None = None) -> HealthReport:
    facts = gather(sources, now)
    return HealthReport(facts, all_checks(facts, sources.thresholds))
