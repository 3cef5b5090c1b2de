"""Every 15 minutes an incremental sync of every practice partition; nightly a full reconciliation."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from pipelines.animana.assets import animana_sync
from pipelines.practice_runs import per_practice_requests

animana_sync_job = define_asset_job(
    "animana_sync_job",
    selection=AssetSelection.assets(animana_sync),
    tags={"dagster/max_retries": "2"},
)


@schedule(cron_schedule="*/15 * * * *", job=animana_sync_job, execution_timezone="Europe/Amsterdam")
def animana_incremental_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from per_practice_requests(context, domain="animana", op="animana_sync", full=False)


@schedule(cron_schedule="30 2 * * *", job=animana_sync_job, execution_timezone="Europe/Amsterdam")
def animana_nightly_full_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    """Full reconciliation: re-read everything; rows it changes are drift, reported in the check metadata."""
    yield from per_practice_requests(context, domain="animana", op="animana_sync", full=True)
