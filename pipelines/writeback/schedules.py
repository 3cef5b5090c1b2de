"""The write-back job, and an hourly push of every practice partition: the sensor asks only when entries are
due, so this is what re-evaluates the check (a dead letter ageing past a day is not new work) and what catches
up should the sensor be off."""

from __future__ import annotations

from collections.abc import Iterator

from dagster import AssetSelection, RunRequest, ScheduleEvaluationContext, define_asset_job, schedule

from pipelines.animana.partitions import animana_practices
from pipelines.writeback.assets import animana_writeback

writeback_job = define_asset_job(
    "animana_writeback_job",
    selection=AssetSelection.assets(animana_writeback),
)


@schedule(cron_schedule="7 * * * *", job=writeback_job, execution_timezone="Europe/Amsterdam")
def writeback_hourly_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    tick = context.scheduled_execution_time.isoformat()
    for code in animana_practices.get_partition_keys(dynamic_partitions_store=context.instance):
        yield RunRequest(partition_key=code, run_key=f"writeback:hourly:{code}:{tick}")
