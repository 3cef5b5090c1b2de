"""The Dagster models domain: the franchise asset trains, the blocking check promotes, sensors and schedule."""

from __future__ import annotations

import base64

import pytest
from dagster import DagsterInstance, build_sensor_context, materialize
from sqlalchemy import text

from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.models.assets import franchise_models
from pipelines.models.partitions import franchises
from pipelines.models.sensors import models_after_large_sync_sensor, models_franchises_sensor
from warehouse.kernel.lookups import tenant_id_by_code
from warehouse.kernel.tenancy import AccessContext
from warehouse.learning import model_store


@pytest.fixture
def warehouse_resource(model_world):
    return WarehouseResource(database_url=model_world.db.admin_url,
                             master_key=base64.b64encode(bytes(range(32))).decode())  # fmt: skip


def test_the_models_domain_is_in_the_one_definitions():
    assert defs.get_job_def("models_train_job") is not None
    assert defs.get_schedule_def("models_weekly_schedule").cron_schedule == "0 5 * * 0"


def test_sensor_adds_franchises_then_the_asset_trains_and_the_check_promotes(model_world, warehouse_resource):
    instance = DagsterInstance.ephemeral()
    with build_sensor_context(instance=instance, resources={"warehouse": warehouse_resource}) as context:
        result = models_franchises_sensor(context)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["fr-sync"]]
    instance.add_dynamic_partitions(franchises.name, ["fr-sync"])
    with build_sensor_context(instance=instance, resources={"warehouse": warehouse_resource}) as context:
        first = models_after_large_sync_sensor(context)
    assert first.run_requests == []  # the small world's sync is below the threshold
    # A blocking check that fails (a candidate worse than the baseline) fails the run: not raised here.
    run = materialize([franchise_models], partition_key="fr-sync", instance=instance,
                      resources={"warehouse": warehouse_resource}, raise_on_error=False)  # fmt: skip
    checks = {e.event_specific_data.asset_key.path[-1]: e.event_specific_data.passed
              for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}  # fmt: skip
    assert set(checks) == {"next_action_model", "next_action_work_session_model", "no_show_model"}
    assert run.success == all(checks.values())
    with model_world.db.system() as session:
        franchise_id = tenant_id_by_code(session, "fr-sync", "franchise")
        practices = list(
            session.scalars(text("SELECT id FROM tenant WHERE parent_id = :f"), {"f": franchise_id})
        )
    with model_world.db.as_app(AccessContext.for_practices(practices)) as session:
        for asset, passed in checks.items():
            kind = asset.removesuffix("_model")
            latest = model_store.history(session, franchise_id, kind)[-1]
            assert latest["status"] == ("promoted" if passed else "rejected")
