"""The marts of one practice, partitioned like the Animana assets (by practice code) and downstream of them.

A materialisation recomputes the practice's dirty days (or everything with ``full``); the check compares mart
totals (revenue, visits, appointments, no-shows, receivables) with the source tables.
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Backoff,
    Config,
    MaterializeResult,
    RetryPolicy,
    multi_asset,
)

from connectors.animana.resources.registry import RESOURCE_ORDER
from pipelines.animana.assets import asset_key as animana_key
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from pipelines.marts.reminders import REMINDERS_KEY
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.marts.checks import reconcile
from warehouse.marts.refresh import refresh_practice

MARTS_KEY = AssetKey(["marts", "practice_marts"])


class MartsConfig(Config):
    full: bool = False  # rebuild every day of the practice instead of the dirty ones


def practice_id_for(admin_engine, code: str) -> int:  # noqa: ANN001
    with system_session(admin_engine, reason=f"marts: resolve practice {code}") as session:
        found = tenant_id_by_code(session, code, "practice")
    if found is None:
        raise LookupError(f"no practice with code {code!r}")
    return found


@multi_asset(
    specs=[
        AssetSpec(
            MARTS_KEY,
            group_name="marts",
            deps=[*(animana_key(r) for r in RESOURCE_ORDER), REMINDERS_KEY],
            description="Daily, monthly and receivables marts of one practice (warehouse.marts)",
        )
    ],
    check_specs=[
        AssetCheckSpec("marts_match_source", asset=MARTS_KEY, description="Mart totals = source table totals")
    ],
    partitions_def=animana_practices,
    retry_policy=RetryPolicy(max_retries=2, delay=10, backoff=Backoff.EXPONENTIAL),
    name="practice_marts",
    compute_kind="sql",
)
def practice_marts(
    context: AssetExecutionContext, config: MartsConfig, warehouse: WarehouseResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    practice_id = practice_id_for(warehouse.admin_engine, context.partition_key)
    with tenant_session(warehouse.app_engine, AccessContext.for_practices([practice_id])) as session:
        result = refresh_practice(session, practice_id, full=config.full)
    yield MaterializeResult(
        asset_key=MARTS_KEY,
        metadata={"practice_id": practice_id, "days_recomputed": result.days, "full": config.full},
    )
    with tenant_session(warehouse.app_engine, AccessContext.for_practices([practice_id])) as session:
        check = reconcile(session, practice_id)
    yield AssetCheckResult(
        asset_key=MARTS_KEY,
        check_name="marts_match_source",
        passed=not check.differences or check.pending_days > 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "differences": {k: list(v) for k, v in check.differences.items()},
            "totals": {k: list(v) for k, v in check.totals.items()},
            "pending_days": check.pending_days,
        },
    )
