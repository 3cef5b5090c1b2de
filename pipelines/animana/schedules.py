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
from pipelines.animana.partitions import animana_practices

animana_sync_job = define_asset_job(
    "animana_sync_job",
    selection=AssetSelection.assets(animana_sync),
    tags={"dagster/max_retries": "2"},
)


def _requests(context: ScheduleEvaluationContext, *, full: bool) -> Iterator[RunRequest]:
    mode = "full" if full else "incremental"
    for code in animana_practices.get_partition_keys(dynamic_partitions_store=context.instance):
        yield RunRequest(
            partition_key=code,
            run_key=f"{mode}:{code}:{context.scheduled_execution_time.isoformat()}",
            run_config={"ops": {"animana_sync": {"config": {"full": full}}}},
            tags={"animana/mode": mode},
        )


@schedule(cron_schedule="*/15 * * * *", job=animana_sync_job, execution_timezone="Europe/Amsterdam")
def animana_incremental_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from _requests(context, full=False)


@schedule(cron_schedule="30 2 * * *", job=animana_sync_job, execution_timezone="Europe/Amsterdam")
def animana_nightly_full_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    """Full reconciliation: re-read everything; rows it changes are drift, reported in the check metadata."""
    yield from _requests(context, full=True)
