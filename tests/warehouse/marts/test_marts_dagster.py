"""Dagster: the marts asset materialises a practice partition with real resources and its check reconciles."""

from __future__ import annotations

import base64

from dagster import DagsterInstance, Definitions, materialize
from sqlalchemy import text

from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.marts.assets import MARTS_KEY, practice_marts
from pipelines.marts.reminders import REMINDERS_KEY, vaccination_reminders
from tests.animana_sync_support import MASTER_KEY


def test_the_definitions_hold_the_marts_asset_its_check_and_schedules():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert {MARTS_KEY, REMINDERS_KEY} <= repository.asset_graph.get_all_asset_keys()
    assert REMINDERS_KEY in repository.asset_graph.get(MARTS_KEY).parent_keys  # reminders before the marts
    assert {"marts_incremental_schedule", "marts_full_schedule"} <= {s.name for s in repository.schedule_defs}
    assert repository.get_job("marts_refresh_job")


def test_materialising_a_practice_refreshes_its_marts_and_the_check_passes(mart_world):
    world = mart_world
    instance = DagsterInstance.ephemeral()
    practice = world.practices[0]
    instance.add_dynamic_partitions(animana_practices.name, [practice.code])
    resources = {
        "warehouse": WarehouseResource(
            database_url=world.db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
        )
    }
    result = materialize(
        [practice_marts], partition_key=practice.code, resources=resources, instance=instance
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("practice_marts")
    assert materialization.metadata["days_recomputed"].value > 0
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.metadata
    with world.db.system() as session:  # a mart row altered behind the refresh's back fails the check
        session.execute(
            text("UPDATE mart_practice_day SET visits = visits + 1 WHERE practice_id = :p AND day = "
                 "(SELECT max(day) FROM mart_practice_day WHERE practice_id = :p)"),
            {"p": practice.practice_id},
        )  # fmt: skip
    again = materialize([practice_marts], partition_key=practice.code, resources=resources, instance=instance)
    (check,) = again.get_asset_check_evaluations()
    assert not check.passed
    assert set(check.metadata["differences"].value) == {"visits"}


def test_the_reminders_asset_generates_a_synced_practices_reminders_before_its_marts(mart_world):
    world = mart_world
    practice = world.practices[1]
    with world.db.system() as session:  # as straight after a sync: no reminders yet
        session.execute(text("DELETE FROM reminder WHERE practice_id = :p"), {"p": practice.practice_id})
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(animana_practices.name, [practice.code])
    resources = {
        "warehouse": WarehouseResource(
            database_url=world.db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
        )
    }
    result = materialize(
        [vaccination_reminders, practice_marts], partition_key=practice.code, resources=resources,
        instance=instance,
    )  # fmt: skip
    assert result.success
    (made,) = result.asset_materializations_for_node(vaccination_reminders.op.name)
    assert made.metadata["created"].value > 0
    with world.db.system() as session:
        reminders, in_mart = session.execute(
            text("SELECT (SELECT count(*) FROM reminder WHERE practice_id = :p AND status <> 'cancelled'), "
                 "(SELECT sum(reminders_due) FROM mart_practice_day WHERE practice_id = :p)"),
            {"p": practice.practice_id},
        ).one()  # fmt: skip
    assert reminders == made.metadata["created"].value == in_mart
    again = materialize([vaccination_reminders], partition_key=practice.code, resources=resources,
                        instance=instance)  # fmt: skip
    (remade,) = again.asset_materializations_for_node(vaccination_reminders.op.name)
    assert remade.metadata["created"].value == 0
