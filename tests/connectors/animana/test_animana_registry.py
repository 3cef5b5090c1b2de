"""The resource specs are the one list of Animana resources: the load order puts parents first, and the Dagster
assets, the sync, the simulator and the CLI all take their resources from the registry."""

from __future__ import annotations

import dataclasses
import typing

import pytest

import vetconnect.animana_cli
from connectors.animana.resources import registry
from connectors.animana.resources.registry import PARENTS, RESOURCE_ORDER, SPECS, load_order
from connectors.animana.simulator import GeneratorConfig, generate_practice
from connectors.animana.sync.practice import sync_practice
from pipelines.animana.assets import animana_sync
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from warehouse.ingest.animana.plan import TableLoad


def test_every_parent_loads_before_its_children():
    assert sorted(RESOURCE_ORDER) == sorted(s.name for s in SPECS)
    for spec in SPECS:
        for parent in spec.parents:
            assert RESOURCE_ORDER.index(parent) < RESOURCE_ORDER.index(spec.name), (parent, spec.name)


def test_the_load_order_keeps_the_listed_order_where_the_parents_allow_and_refuses_what_cannot_load():
    a, b, c = (dataclasses.replace(SPECS[0], name=n, parents=()) for n in "abc")
    assert load_order([a, b, c]) == ("a", "b", "c")
    assert load_order([dataclasses.replace(a, parents=("c",)), b, c]) == ("b", "c", "a")
    with pytest.raises(ValueError, match="cycle"):
        load_order([dataclasses.replace(a, parents=("b",)), dataclasses.replace(b, parents=("a",))])
    with pytest.raises(ValueError, match="not resources"):
        load_order([dataclasses.replace(a, parents=("nope",))])
    with pytest.raises(ValueError, match="twice"):
        load_order([a, a])


def test_the_dagster_assets_are_the_registrys_resources_with_its_parents_as_deps():
    deps = {key.path[1]: {d.path[1] for d in parents} for key, parents in animana_sync.asset_deps.items()}
    assert deps == {r: set(PARENTS[r]) for r in RESOURCE_ORDER}


def test_the_simulator_and_the_cli_list_the_registrys_resources():
    generated = generate_practice(GeneratorConfig(seed=3), 1001)
    assert tuple(generated) == RESOURCE_ORDER
    assert vetconnect.animana_cli.RESOURCE_ORDER is registry.RESOURCE_ORDER


def test_a_plan_loaded_resource_maps_to_rows_shaped_like_its_staging_table():
    planned = [s for s in SPECS if isinstance(s.load, TableLoad)]
    assert planned, "no resource is loaded by a declarative plan"
    for spec in planned:
        row_type = typing.get_type_hints(spec.read_row)["return"]
        assert list(row_type._fields) == spec.load.staging.names, spec.name


def test_the_sync_loads_the_resources_in_the_registrys_order(animana_world: SyncWorld):
    loaded: list[str] = []

    def progress(_code: str, resource: str, _records: int) -> None:
        if resource not in loaded:
            loaded.append(resource)

    with animana_world.client() as client:
        sync_practice(
            animana_world.db.app_engine, client, animana_world.practices[0], master_key=MASTER_KEY,
            progress=progress,
        )  # fmt: skip
    assert loaded == list(RESOURCE_ORDER)
