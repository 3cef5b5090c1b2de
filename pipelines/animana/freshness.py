"""Freshness of the Animana mirror as a Dagster asset check, with the facts and thresholds of `warehouse.health`
(so the check, `vetconnect health` and /metrics never disagree): every module of a linked practice that Animana
still feeds was synced within an hour (warn: the 15-minute schedule missed four runs) and within 26 hours (fail:
the nightly full reconciliation missed too). A job evaluates it every 15 minutes, after the incremental syncs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetSelection,
    ScheduleDefinition,
    asset_check,
    define_asset_job,
)

from pipelines.animana.assets import asset_key
from pipelines.animana.resources import WarehouseResource
from warehouse.health.checks import Status, sync_lag
from warehouse.health.facts import Facts, read_database
from warehouse.health.thresholds import DEFAULT_THRESHOLDS


@asset_check(
    asset=asset_key("relations"),
    name="animana_mirror_fresh",
    description="Every module Animana still feeds was synced within 1 h (warn) and 26 h (error), per practice",
)
def animana_mirror_fresh(warehouse: WarehouseResource) -> AssetCheckResult:
    facts = Facts(
        now=dt.datetime.now(dt.UTC), database=read_database(warehouse.admin_engine), database_error=None,
        animana=None, mllp={}, backups_dir=Path(), backup=None,
    )  # fmt: skip
    check = sync_lag(facts, DEFAULT_THRESHOLDS)
    return AssetCheckResult(
        passed=check.status is Status.OK,
        severity=AssetCheckSeverity.ERROR if check.status is Status.FAIL else AssetCheckSeverity.WARN,
        metadata={"worst_lag_seconds": check.value or 0.0, "detail": check.detail},
        description=check.detail,
    )


animana_freshness_job = define_asset_job(
    "animana_freshness_job", selection=AssetSelection.checks(animana_mirror_fresh)
)
animana_freshness_schedule = ScheduleDefinition(
    job=animana_freshness_job, cron_schedule="5,20,35,50 * * * *", execution_timezone="Europe/Amsterdam"
)
