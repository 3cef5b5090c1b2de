"""Weekly retraining of every franchise's models (Sunday night, after the nightly full sync and marts)."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import AssetSelection, RunRequest, ScheduleEvaluationContext, define_asset_job, schedule

from pipelines.models.assets import franchise_models
from pipelines.models.partitions import franchises

models_train_job = define_asset_job("models_train_job", selection=AssetSelection.assets(franchise_models))


@schedule(cron_schedule="0 5 * * 0", job=models_train_job, execution_timezone="Europe/Amsterdam")
def models_weekly_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    for code in franchises.get_partition_keys(dynamic_partitions_store=context.instance):
        yield RunRequest(
            partition_key=code, run_key=f"models:weekly:{code}:{context.scheduled_execution_time.isoformat()}"
        )
