"""One asset per Animana resource, partitioned by practice, materialised together by one multi-asset that runs
the sync service (`connectors.animana.sync`) — the same code as `vetconnect sync animana`. The assets, their
order and their deps are the resource specs' (`connectors.animana.resources.registry`).

Checks evaluated with every materialisation of a practice: row counts equal the API totals (quarantined
records counted as accounted for), no live patient without a client, no appointment with an unknown resource.
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

from connectors.animana.resources.registry import PARENTS, RESOURCE_ORDER
from connectors.animana.sync.links import linked_practices
from connectors.animana.sync.practice import sync_practice
from connectors.animana.sync.service import drift, integrity
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import AnimanaResource, WarehouseResource

GROUP = "animana"


def asset_key(resource: str) -> AssetKey:
    return AssetKey(["animana", resource])


SPECS = [
    AssetSpec(
        asset_key(r),
        group_name=GROUP,
        deps=[asset_key(p) for p in PARENTS[r]],
        description=f"Animana {r}, mirrored into the warehouse per practice",
        skippable=True,
    )
    for r in RESOURCE_ORDER
]
CHECKS = [
    AssetCheckSpec(
        "counts_match_api", asset=asset_key("relations"), description="Warehouse rows = API totals"
    ),
    AssetCheckSpec("patients_have_a_client", asset=asset_key("animals")),
    AssetCheckSpec("appointments_have_a_known_resource", asset=asset_key("agenda")),
]


class AnimanaSyncConfig(Config):
    full: bool = False  # re-read everything (nightly reconciliation); the counts are the drift


@multi_asset(
    specs=SPECS,
    check_specs=CHECKS,
    partitions_def=animana_practices,
    can_subset=True,
    retry_policy=RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL),
    name="animana_sync",
    compute_kind="python",
)
def animana_sync(
    context: AssetExecutionContext,
    config: AnimanaSyncConfig,
    warehouse: WarehouseResource,
    animana: AnimanaResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Sync the selected resources of one practice, then check it."""
    code = context.partition_key
    (practice,) = linked_practices(warehouse.admin_engine, [code])
    selected = [r for r in RESOURCE_ORDER if asset_key(r) in context.selected_asset_keys]
    result = sync_practice(
        warehouse.app_engine, animana.client, practice, master_key=warehouse.key(), full=config.full,
        resources=selected,
    )  # fmt: skip
    for resource in selected:
        counts = result.counts[resource]
        yield MaterializeResult(
            asset_key=asset_key(resource),
            metadata={
                **counts.as_dict(),
                "mode": "full" if config.full else "incremental",
                "run_id": result.run_id,
            },
        )
    selected_checks = {key.name for key in context.selected_asset_check_keys}
    if "counts_match_api" in selected_checks:
        report = drift(warehouse.app_engine, animana.client, practice)
        differences = {r: d for r, d in report.differences.items() if r in selected}
        changed = sum(c.inserted + c.updated + c.deleted for c in result.counts.values())
        yield AssetCheckResult(
            asset_key=asset_key("relations"),
            check_name="counts_match_api",
            passed=not differences,
            severity=AssetCheckSeverity.ERROR,
            metadata={"differences": differences, "api": report.api, "warehouse": report.warehouse,
                      "quarantined": report.quarantined, "drift_repaired": changed if config.full else 0},
        )  # fmt: skip
    problems = integrity(warehouse.app_engine, practice)
    if "patients_have_a_client" in selected_checks:
        yield AssetCheckResult(
            asset_key=asset_key("animals"),
            check_name="patients_have_a_client",
            passed=problems["patients_without_client"] == 0,
            metadata={"patients_without_client": problems["patients_without_client"]},
        )
    if "appointments_have_a_known_resource" in selected_checks:
        yield AssetCheckResult(
            asset_key=asset_key("agenda"),
            check_name="appointments_have_a_known_resource",
            passed=problems["appointments_with_unknown_resource"] == 0,
            metadata={"appointments_with_unknown_resource": problems["appointments_with_unknown_resource"]},
        )
