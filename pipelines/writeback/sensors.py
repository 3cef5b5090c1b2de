"""Runs the write-back of each practice that has outbox entries due, within a minute of their commit.

The run key is the due work's signature (newest entry, attempts so far): the same due entries ask for one run,
a new entry or a retry that has come due again asks for another. Practices not yet a partition (the Animana
sensor adds them) wait for it."""

from __future__ import annotations

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from pipelines.writeback.schedules import writeback_job
from warehouse.integration.due import practices_with_due_entries
from warehouse.kernel.tenancy import system_session


@sensor(job=writeback_job, minimum_interval_seconds=60)
def writeback_due_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    with system_session(warehouse.admin_engine, reason="writeback: practices with due entries") as session:
        due = practices_with_due_entries(session)
    known = set(animana_practices.get_partition_keys(dynamic_partitions_store=context.instance))
    requests = [
        RunRequest(
            partition_key=d.code, run_key=f"writeback:{d.signature}", tags={"writeback/due": str(d.due)}
        )
        for d in due
        if d.code in known
    ]
    if not requests:
        return SkipReason("no write-back entries due")
    return SensorResult(run_requests=requests)
