"""Dagster: the marts asset materialises a practice partition with real resources and its check reconciles."""

from __future__ import annotations

import base64

from animana_sync_support import MASTER_KEY
from dagster import DagsterInstance, Definitions, materialize
from sqlalchemy import text

from pipelines.animana.partitions import animana_practices
from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.marts.assets import MARTS_KEY, practice_marts


def test_the_definitions_hold_the_marts_asset_its_check_and_schedules():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert MARTS_KEY in repository.asset_graph.get_all_asset_keys()
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
