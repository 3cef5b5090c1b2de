"""Every 15 minutes (after the Animana sync) an incremental refresh of every practice; nightly a full rebuild."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import AssetSelection, RunRequest, ScheduleEvaluationContext, define_asset_job, schedule

from pipelines.animana.partitions import animana_practices
from pipelines.marts.assets import practice_marts

marts_refresh_job = define_asset_job(
    "marts_refresh_job", selection=AssetSelection.assets(practice_marts), tags={"dagster/max_retries": "2"}
)


def _requests(context: ScheduleEvaluationContext, *, full: bool) -> Iterator[RunRequest]:
    mode = "full" if full else "incremental"
    for code in animana_practices.get_partition_keys(dynamic_partitions_store=context.instance):
        yield RunRequest(
            partition_key=code,
            run_key=f"marts:{mode}:{code}:{context.scheduled_execution_time.isoformat()}",
            run_config={"ops": {"practice_marts": {"config": {"full": full}}}},
            tags={"marts/mode": mode},
        )


@schedule(cron_schedule="5-59/15 * * * *", job=marts_refresh_job, execution_timezone="Europe/Amsterdam")
def marts_incremental_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from _requests(context, full=False)


@schedule(cron_schedule="30 4 * * *", job=marts_refresh_job, execution_timezone="Europe/Amsterdam")
def marts_full_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from _requests(context, full=True)
