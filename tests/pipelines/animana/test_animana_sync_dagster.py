"""The Dagster side: the whole Definitions loads; a practice partition materialises with real resources (the
simulator over HTTP, PostgreSQL); the checks pass, and fail when the mirror is damaged; sensor and schedules."""

from __future__ import annotations

import base64
import datetime as dt

from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    Definitions,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import text

from connectors.animana.resources.registry import RESOURCE_ORDER
from pipelines.animana.assets import animana_sync
from pipelines.animana.freshness import animana_freshness_job, animana_mirror_fresh
from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import AnimanaResource, WarehouseResource
from pipelines.animana.schedules import animana_incremental_schedule, animana_nightly_full_schedule
from pipelines.animana.sensors import animana_practices_sensor
from pipelines.definitions import defs
from tests.animana_sync_support import MASTER_KEY, SyncWorld


def _resources(world: SyncWorld) -> dict:
    return {
        "warehouse": WarehouseResource(
            database_url=world.db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
        ),
        "animana": AnimanaResource(
            url=world.sim.base_url, client_id=world.sim.client_id, client_secret=world.sim.client_secret
        ),
    }


def _checks(result) -> dict[str, bool]:  # noqa: ANN001
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_the_whole_definitions_object_loads():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    animana = {k for k in repository.asset_graph.get_all_asset_keys() if k.path[0] == "animana"}
    assert animana == {AssetKey(["animana", r]) for r in RESOURCE_ORDER}  # one asset per resource spec
    assert {"animana_incremental_schedule", "animana_nightly_full_schedule"} <= {
        s.name for s in repository.schedule_defs
    }
    assert repository.get_job("animana_sync_job")


def test_materialising_a_practice_partition_syncs_it_and_the_checks_pass_then_fail(animana_world: SyncWorld):
    world = animana_world
    instance = DagsterInstance.ephemeral()
    code = world.practices[0].code
    instance.add_dynamic_partitions(animana_practices.name, [code])
    result = materialize([animana_sync], partition_key=code, resources=_resources(world), instance=instance)
    assert result.success
    assert _checks(result) == dict.fromkeys(
        ["counts_match_api", "patients_have_a_client", "appointments_have_a_known_resource"], True
    )
    relations = result.asset_materializations_for_node("animana_sync")[3]
    assert relations.metadata["inserted"].value > 0
    with world.db.system() as session:  # damage the mirror behind the sync's back
        session.execute(
            text("DELETE FROM client_patient WHERE practice_id = :p"), {"p": world.practices[0].practice_id}
        )
        session.execute(
            text(
                "DELETE FROM lab_observation WHERE practice_id = :p AND id = (SELECT min(id) FROM lab_observation WHERE practice_id = :p)"
            ),
            {"p": world.practices[0].practice_id},
        )
    again = materialize([animana_sync], partition_key=code, resources=_resources(world), instance=instance)
    assert again.success  # incremental: nothing new upstream, so the damage stays and the checks see it
    assert _checks(again) == {
        "counts_match_api": False,
        "patients_have_a_client": False,
        "appointments_have_a_known_resource": True,
    }
    full = materialize(
        [animana_sync],
        partition_key=code,
        resources=_resources(world),
        instance=instance,
        run_config={"ops": {"animana_sync": {"config": {"full": True}}}},
    )
    assert _checks(full)["counts_match_api"] and _checks(full)["patients_have_a_client"]  # reconciled


def test_the_sensor_adds_linked_practices_as_partitions_and_the_schedules_request_them(
    animana_world: SyncWorld,
):
    world = animana_world
    with instance_for_test() as instance:
        _sensor_and_schedules(world, instance)


def _sensor_and_schedules(world: SyncWorld, instance: DagsterInstance) -> None:
    resources = {"warehouse": _resources(world)["warehouse"]}
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = animana_practices_sensor(context)
    assert isinstance(result, SensorResult)
    assert result.cursor == "sync-1001,sync-1002"
    assert [r.partition_key for r in result.run_requests] == ["sync-1001", "sync-1002"]
    instance.add_dynamic_partitions(animana_practices.name, ["sync-1001", "sync-1002"])
    with build_sensor_context(instance=instance, resources=resources, cursor=result.cursor) as context:
        unchanged = animana_practices_sensor(context)
    assert not isinstance(unchanged, SensorResult)  # SkipReason
    for schedule, full in ((animana_incremental_schedule, False), (animana_nightly_full_schedule, True)):
        when = dt.datetime(2026, 11, 23, 2, 30, tzinfo=dt.UTC)
        with build_schedule_context(instance=instance, scheduled_execution_time=when) as context:
            requests = list(schedule(context))
        assert [r.partition_key for r in requests] == ["sync-1001", "sync-1002"]
        assert all(r.run_config["ops"]["animana_sync"]["config"]["full"] is full for r in requests)


def test_the_freshness_check_passes_after_a_sync_and_warns_then_errs_as_the_mirror_ages(
    animana_world: SyncWorld,
):
    world = animana_world
    instance = DagsterInstance.ephemeral()
    codes = [p.code for p in world.practices]
    instance.add_dynamic_partitions(animana_practices.name, codes)
    for code in codes:  # every linked practice: one never synced is behind by definition
        assert materialize(
            [animana_sync], partition_key=code, resources=_resources(world), instance=instance
        ).success
    job = Definitions(
        assets=[animana_sync], asset_checks=[animana_mirror_fresh], jobs=[animana_freshness_job],
        resources=_resources(world),
    ).resolve_job_def("animana_freshness_job")  # fmt: skip

    def evaluate() -> tuple[bool, AssetCheckSeverity, str]:
        (evaluation,) = job.execute_in_process(instance=instance).get_asset_check_evaluations()
        return evaluation.passed, evaluation.severity, str(evaluation.metadata["detail"].value)

    assert evaluate()[0]
    for hours, severity in ((2, AssetCheckSeverity.WARN), (30, AssetCheckSeverity.ERROR)):
        with world.db.system() as session:  # every resource of every practice last synced that long ago
            session.execute(
                text("UPDATE sync_state SET last_incremental_at = now() - make_interval(hours => :h), "
                     "last_full_at = now() - make_interval(hours => :h)"),
                {"h": hours},
            )  # fmt: skip
        passed, got, detail = evaluate()
        assert (passed, got) == (False, severity)
        assert f"{codes[0]}/" in detail  # names the practice and module behind
