"""The write-back in Dagster with real resources (the simulator over HTTP, PostgreSQL): the sensor asks for a run
of each practice with due entries (once per batch of work), a materialised partition pushes them to Animana, and
the check warns once a dead letter has waited more than a day."""

from __future__ import annotations

import base64
import datetime as dt

from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    SensorResult,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import text

from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import AnimanaResource, WarehouseResource
from pipelines.definitions import defs
from pipelines.writeback.assets import animana_writeback
from pipelines.writeback.schedules import writeback_hourly_schedule
from pipelines.writeback.sensors import writeback_due_sensor
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.integration.modes import set_mode
from warehouse.kernel.tenancy import AccessContext
from warehouse.security.permissions import Actor


def _resources(world: SyncWorld) -> dict:
    return {
        "warehouse": WarehouseResource(
            database_url=world.db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
        ),
        "animana": AnimanaResource(
            url=world.sim.base_url, client_id=world.sim.client_id, client_secret=world.sim.client_secret
        ),
    }


def _hybrid_clients(world: SyncWorld) -> tuple[int, int]:
    """Practice 1's clients in hybrid; (local id, Animana id) of one of its synced clients."""
    practice = world.practices[0].practice_id
    with world.db.as_app(AccessContext.for_practices([practice])) as session:
        manager = Actor.at(None, practice, {"practice_manager"})
        set_mode(session, manager, practice_id=practice, module="clients", mode="hybrid", confirmed=True)
        row = session.execute(
            text("SELECT id, animana_id FROM client WHERE practice_id = :p AND animana_id IS NOT NULL ORDER BY id LIMIT 1"),
            {"p": practice},
        ).one()  # fmt: skip
    return row.id, int(row.animana_id)


def _rename(world: SyncWorld, client_id: int, last_name: str) -> None:
    practice = world.practices[0].practice_id
    with world.db.as_app(AccessContext.for_practices([practice])) as session:
        session.execute(
            text("UPDATE client SET last_name = :n WHERE practice_id = :p AND id = :id"),
            {"n": last_name, "p": practice, "id": client_id},
        )


def _sense(world: SyncWorld, instance: DagsterInstance) -> SensorResult | None:
    resources = {"warehouse": _resources(world)["warehouse"]}
    with build_sensor_context(instance=instance, resources=resources) as context:
        result = writeback_due_sensor(context)
    return result if isinstance(result, SensorResult) else None


def _push(world: SyncWorld, instance: DagsterInstance):  # noqa: ANN202
    result = materialize(
        [animana_writeback],
        partition_key=world.practices[0].code,
        resources=_resources(world),
        instance=instance,
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("writeback__animana")
    (check,) = result.get_asset_check_evaluations()
    return {k: v.value for k, v in materialization.metadata.items()}, check


def test_the_definitions_hold_the_writeback_job_sensor_and_schedule():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert repository.get_job("animana_writeback_job").partitions_def == animana_practices
    assert "writeback_due_sensor" in {s.name for s in repository.sensor_defs}
    assert "writeback_hourly_schedule" in {s.name for s in repository.schedule_defs}


def test_the_sensor_runs_a_practice_with_due_entries_and_the_push_reaches_animana(synced_world: SyncWorld):
    world = synced_world
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(animana_practices.name, [p.code for p in world.practices])
    assert _sense(world, instance) is None  # a fresh sync leaves nothing to write back
    client_id, animana_id = _hybrid_clients(world)
    _rename(world, client_id, "Via-Dagster")

    first = _sense(world, instance)
    assert first is not None
    assert [(r.partition_key, r.tags["writeback/due"]) for r in first.run_requests] == [
        (world.practices[0].code, "1")
    ]
    again = _sense(world, instance)
    assert (
        again is not None and again.run_requests[0].run_key == first.run_requests[0].run_key
    )  # one run per work

    metadata, check = _push(world, instance)
    assert (metadata["sent"], metadata["dead"], metadata["outbox_depth"]) == (1, 0, 0)
    assert check.passed
    with world.client() as client:
        assert client.get(world.practices[0].animana_id, "relations", animana_id).last_name == "Via-Dagster"  # type: ignore[union-attr]
    assert _sense(world, instance) is None

    tick = dt.datetime(2026, 11, 23, 10, 7, tzinfo=dt.UTC)
    with instance_for_test() as scheduler:
        scheduler.add_dynamic_partitions(animana_practices.name, [p.code for p in world.practices])
        with build_schedule_context(instance=scheduler, scheduled_execution_time=tick) as context:
            hourly = list(writeback_hourly_schedule(context))
    assert [r.partition_key for r in hourly] == [p.code for p in world.practices]


def test_the_check_warns_when_a_dead_letter_is_older_than_a_day(synced_world: SyncWorld):
    world = synced_world
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(animana_practices.name, [world.practices[0].code])
    client_id, _ = _hybrid_clients(world)
    world.sim.configure(refuse_writes=1.0)  # Animana refuses the write: a dead letter, with its reason
    _rename(world, client_id, "Geweigerd")
    metadata, check = _push(world, instance)
    assert (metadata["sent"], metadata["dead"], metadata["dead_letters"]) == (0, 1, 1)
    assert check.passed  # fresh: a person has had no time to act on it yet

    with world.db.admin_engine.begin() as conn:  # two days pass
        conn.execute(
            text(
                "UPDATE writeback_outbox SET created_at = created_at - interval '2 days' WHERE state = 'dead'"
            )
        )
    metadata, check = _push(world, instance)
    assert metadata["dead"] == 0 and metadata["dead_letters"] == 1  # not retried by itself
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    (problem,) = check.metadata["problems"].value
    assert problem.startswith(f"{world.practices[0].code}/clients: 1 dead letter(s), oldest ")
