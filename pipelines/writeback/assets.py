"""The write-back to Animana as an asset per practice: materialising a partition pushes the practice's due
outbox entries (`connectors.animana.writeback.dispatcher.push`, the same code as `vetconnect integration push`),
so each push is recorded with what it sent, retried and parked.

Its check looks past this push: a dead letter or an open conflict older than a day means a person has not acted
on it, and Animana is still without that change — a warning, with the problems in its metadata.
"""

import datetime as dt
from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Backoff,
    MaterializeResult,
    RetryPolicy,
    asset,
)

from connectors.animana.sync.links import linked_practices
from connectors.animana.writeback.dispatcher import push
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import AnimanaResource, WarehouseResource
from warehouse.integration.status import integration_status, stale_problems
from warehouse.kernel.tenancy import AccessContext, tenant_session

WRITEBACK = AssetKey(["writeback", "animana"])  # not under "animana": those are the mirrored resources
STUCK_AFTER = dt.timedelta(days=1)
# One push handles at most this many entries; the sensor asks again for what is left.
MAX_ENTRIES_PER_RUN = 5000


@asset(
    key=WRITEBACK,
    group_name="writeback",
    partitions_def=animana_practices,
    check_specs=[
        AssetCheckSpec(
            "writeback_not_stuck",
            asset=WRITEBACK,
            description="No dead letter or open conflict older than a day",
        )
    ],
    # The push keeps its own per-entry backoff in the outbox; this covers the database or Animana being away.
    retry_policy=RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL),
    description="VetConnect's local changes of a practice, written back to Animana (hybrid and animana modules)",
    compute_kind="python",
)
def animana_writeback(
    context: AssetExecutionContext, warehouse: WarehouseResource, animana: AnimanaResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    (practice,) = linked_practices(warehouse.admin_engine, [context.partition_key])
    report = push(
        warehouse.app_engine,
        animana.client,
        practice,
        master_key=warehouse.key(),
        max_entries=MAX_ENTRIES_PER_RUN,
    )
    with tenant_session(warehouse.app_engine, AccessContext.for_practices([practice.practice_id])) as session:
        statuses = integration_status(session, [practice.practice_id])
    problems = stale_problems(statuses, older_than=STUCK_AFTER)
    yield MaterializeResult(
        metadata={
            "sent": report.sent,
            "retried": report.retried,
            "waiting_on_parent": report.waiting,
            "stale": report.stale,
            "dead": report.dead,
            "synced_because_stale": ", ".join(report.synced),
            "outbox_depth": sum(s.outbox_depth for s in statuses),
            "dead_letters": sum(s.dead_letters for s in statuses),
            "open_conflicts": sum(s.open_conflicts for s in statuses),
        }
    )
    yield AssetCheckResult(
        check_name="writeback_not_stuck",
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        metadata={"problems": problems},
    )
