"""Adds a partition for every practice linked to Animana (and removes offboarded ones)."""

from __future__ import annotations

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from connectors.animana.sync.links import linked_practices
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from pipelines.animana.schedules import animana_sync_job


@sensor(job=animana_sync_job, minimum_interval_seconds=300)
def animana_practices_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    """The cursor is the sorted list of linked codes; a change adds/removes partitions and syncs new ones."""
    codes = sorted(p.code for p in linked_practices(warehouse.admin_engine))
    cursor = ",".join(codes)
    if cursor == (context.cursor or ""):
        return SkipReason("no change in linked practices")
    known = set(animana_practices.get_partition_keys(dynamic_partitions_store=context.instance))
    added = [c for c in codes if c not in known]
    removed = sorted(known - set(codes))
    requests = []
    if added:
        requests.append(animana_practices.build_add_request(added))
    if removed:
        requests.append(animana_practices.build_delete_request(removed))

    return SensorResult(
        run_requests=[RunRequest(partition_key=c, run_key=f"onboard:{c}") for c in added],
        dynamic_partitions_requests=requests,
        cursor=cursor,
    )
