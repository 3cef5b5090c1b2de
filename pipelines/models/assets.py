"""The models of one franchise, trained from the warehouse: next action on patient care episodes, next action
on user work sessions (``models.work_sessions``) and no-show risk — one asset each (``models.training.KINDS``).

Materialising stores a *candidate* artefact per model (``model_artifact``, with data window, metrics and code
version). The blocking check ``beats_current_and_baseline`` then re-scores the candidate and the promoted
model on the latest holdout and promotes the candidate only if it is not worse than either the current model
or the baseline (Markov for next-action, history-only for no-show); otherwise it is marked ``rejected`` and
the current model stays in use.
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
    MaterializeResult,
    RetryPolicy,
    multi_asset,
)
from sqlalchemy import select

from models.training import KINDS, decide, train
from pipelines.animana.resources import WarehouseResource
from pipelines.models.partitions import franchises
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext, system_session, tenant_session
from warehouse.schema.tenancy import Tenant

MODEL_KEYS = {kind: AssetKey(["models", f"{kind}_model"]) for kind in KINDS}
CHECK = "beats_current_and_baseline"


def franchise_practices(admin_engine, code: str) -> tuple[int, list[int]]:  # noqa: ANN001
    with system_session(admin_engine, reason=f"models: practices of franchise {code}") as session:
        franchise_id = tenant_id_by_code(session, code, "franchise")
        practice_ids = list(
            session.scalars(
                select(Tenant.id)
                .where(Tenant.parent_id == franchise_id, Tenant.kind == "practice")
                .order_by(Tenant.id)
            )
        )
    if franchise_id is None or not practice_ids:
        raise LookupError(f"no franchise with code {code!r} (or it has no practices)")
    return franchise_id, practice_ids


@multi_asset(
    specs=[
        AssetSpec(
            key,
            group_name="models",
            description=f"{kind} model of one franchise (candidate → promoted)",
            skippable=True,
        )
        for kind, key in MODEL_KEYS.items()
    ],  # fmt: skip
    check_specs=[
        AssetCheckSpec(
            CHECK,
            asset=key,
            blocking=True,
            description="Not worse than the current model or the baseline on the latest holdout",
        )
        for key in MODEL_KEYS.values()
    ],  # fmt: skip
    partitions_def=franchises,
    retry_policy=RetryPolicy(max_retries=1, delay=30, backoff=Backoff.EXPONENTIAL),
    name="franchise_models",
    compute_kind="scikit-learn",
    can_subset=True,
)
def franchise_models(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[MaterializeResult | AssetCheckResult]:
    franchise_id, practice_ids = franchise_practices(warehouse.admin_engine, context.partition_key)
    access = AccessContext.for_practices(practice_ids)
    for kind, key in MODEL_KEYS.items():
        if key not in context.selected_asset_keys:
            continue
        try:
            with tenant_session(warehouse.app_engine, access) as session:
                result = train(session, franchise_id, kind, practice_ids)
        except ValueError as exc:  # too little data: nothing to promote, say why
            context.log.warning(f"{kind}: {exc}")
            continue
        artifact = result.artifact
        yield MaterializeResult(
            asset_key=key,
            metadata={
                "artifact_id": artifact.id,
                "version": artifact.version,
                "sha256": artifact.sha256,
                **{k: v for k, v in artifact.metrics.items() if isinstance(v, int | float)},
            },  # fmt: skip
        )
        with tenant_session(warehouse.app_engine, access) as session:
            decision = decide(session, franchise_id, artifact.id)
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK,
            passed=bool(decision["passed"]),
            severity=AssetCheckSeverity.ERROR,
            metadata={k: v for k, v in decision.items() if isinstance(v, int | float | str | bool)}
            | {"reasons": "; ".join(decision["reasons"]) or "none", "artifact_id": artifact.id},
        )
