"""Vaccination reminders of one practice, generated from its vaccinations after each Animana sync.

Animana's API has no reminders; VetConnect creates them (``warehouse.records.reminders``). Partitioned by practice like
the Animana assets, downstream of their vaccinations and animals, upstream of the practice marts (reminder
compliance reads the reminders). Idempotent, so every marts run can include it.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Backoff,
    MaterializeResult,
    RetryPolicy,
    asset,
)

from pipelines.animana.assets import asset_key as animana_key
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.practice_time import practice_today
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.records.reminders import generate_vaccination_reminders

REMINDERS_KEY = AssetKey(["marts", "vaccination_reminders"])


@asset(
    key=REMINDERS_KEY,
    group_name="marts",
    deps=[animana_key("animals"), animana_key("vaccinations")],
    partitions_def=animana_practices,
    retry_policy=RetryPolicy(max_retries=2, delay=10, backoff=Backoff.EXPONENTIAL),
    description="Vaccination reminders due from the practice's vaccinations (warehouse.records.reminders)",
    compute_kind="sql",
)
def vaccination_reminders(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    with system_session(
        warehouse.admin_engine, reason=f"reminders: resolve practice {context.partition_key}"
    ) as s:
        practice_id = tenant_id_by_code(s, context.partition_key, "practice")
    if practice_id is None:
        raise LookupError(f"no practice with code {context.partition_key!r}")
    with tenant_session(warehouse.app_engine, AccessContext.for_practices([practice_id])) as session:
        today = practice_today(session, practice_id)  # the practice's today, not the server's
        run = generate_vaccination_reminders(session, practice_id, today=today)
    return MaterializeResult(
        metadata={
            "practice_id": practice_id,
            "created": run.created,
            "closed": run.closed,
            "today": str(today),
        }
    )
