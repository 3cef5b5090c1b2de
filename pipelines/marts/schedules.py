"""Every 15 minutes (after the Animana sync) the practice's due vaccination reminders, then an incremental marts
refresh of every practice; nightly a full rebuild."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import AssetSelection, RunRequest, ScheduleEvaluationContext, define_asset_job, schedule

from pipelines.marts.assets import practice_marts
from pipelines.marts.reminders import vaccination_reminders
from pipelines.practice_runs import per_practice_requests

marts_refresh_job = define_asset_job(
    "marts_refresh_job",
    selection=AssetSelection.assets(vaccination_reminders, practice_marts),
    tags={"dagster/max_retries": "2"},
)


@schedule(cron_schedule="5-59/15 * * * *", job=marts_refresh_job, execution_timezone="Europe/Amsterdam")
def marts_incremental_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from per_practice_requests(context, domain="marts", op="practice_marts", full=False)


@schedule(cron_schedule="30 4 * * *", job=marts_refresh_job, execution_timezone="Europe/Amsterdam")
def marts_full_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    yield from per_practice_requests(context, domain="marts", op="practice_marts", full=True)
