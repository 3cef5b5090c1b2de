"""Franchise partitions follow the tenant registry; a large sync (many rows changed) triggers retraining."""

from __future__ import annotations

import json

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor
from sqlalchemy import text

from pipelines.animana.resources import WarehouseResource
from pipelines.models.partitions import franchises
from pipelines.models.schedules import models_train_job
from warehouse.kernel.tenancy import system_session

LARGE_SYNC_ROWS = 5000  # rows inserted+updated+deleted by finished syncs of one franchise since the last look
# The werkrooster and Animana's reminders feed no model: a month of shifts synced is no reason to retrain.
NOT_LEARNT_FROM = frozenset({"shifts", "reminders"})


@sensor(job=models_train_job, minimum_interval_seconds=600)
def models_franchises_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    with system_session(warehouse.admin_engine, reason="models: list franchises for partitions") as session:
        codes = sorted(session.scalars(text("SELECT code FROM tenant WHERE kind = 'franchise'")))
    cursor = ",".join(codes)
    if cursor == (context.cursor or ""):
        return SkipReason("no change in franchises")
    known = set(franchises.get_partition_keys(dynamic_partitions_store=context.instance))
    added, removed = [c for c in codes if c not in known], sorted(known - set(codes))
    requests = [r for r in (franchises.build_add_request(added) if added else None,
                            franchises.build_delete_request(removed) if removed else None) if r]  # fmt: skip
    return SensorResult(dynamic_partitions_requests=requests, cursor=cursor)


def changed_rows_by_franchise(admin_engine, since_id: int) -> tuple[dict[str, int], int]:  # noqa: ANN001
    """Rows changed by syncs finished after ``sync_run.id`` ``since_id``, per franchise code; and the new cursor."""
    with system_session(admin_engine, reason="models: size of recent syncs") as session:
        rows = session.execute(
            text(
                "SELECT f.code, r.id, r.counts FROM sync_run r JOIN tenant p ON p.id = r.practice_id "
                "JOIN tenant f ON f.id = p.parent_id WHERE r.id > :since AND r.finished_at IS NOT NULL ORDER BY r.id"
            ),
            {"since": since_id},
        ).all()
    changed: dict[str, int] = {}
    last = since_id
    for code, run_id, counts in rows:
        last = max(last, run_id)
        counts = counts if isinstance(counts, dict) else json.loads(counts or "{}")
        learnt = {resource: c for resource, c in counts.items() if resource not in NOT_LEARNT_FROM}
        changed[code] = changed.get(code, 0) + _total(learnt)
    return changed, last


def _total(value: object) -> int:
    if isinstance(value, dict):
        return sum(_total(v) if isinstance(v, dict) else (int(v) if k in ("inserted", "updated", "deleted")
                   and isinstance(v, int) else 0) for k, v in value.items())  # fmt: skip
    return 0


@sensor(job=models_train_job, minimum_interval_seconds=900)
def models_after_large_sync_sensor(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    changed, last = changed_rows_by_franchise(warehouse.admin_engine, int(context.cursor or 0))
    large = sorted(code for code, n in changed.items() if n >= LARGE_SYNC_ROWS)
    if not large:
        return SensorResult(
            skip_reason=f"no franchise with >= {LARGE_SYNC_ROWS} synced rows", cursor=str(last)
        )
    return SensorResult(
        run_requests=[RunRequest(partition_key=c, run_key=f"models:sync:{c}:{last}") for c in large],
        cursor=str(last),
    )
