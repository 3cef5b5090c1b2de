"""The devices domain in Dagster: the drop-folder sensor (cursor), the drop job and the inbox retry job run
in process with real resources against PostgreSQL, and the one Definitions loads with them."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from dagster import Definitions, SensorResult, SkipReason, build_sensor_context

from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.devices.jobs import device_drop_job, device_inbox_retry_job
from pipelines.devices.resources import DropFoldersResource
from pipelines.devices.sensors import device_drop_sensor
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import (
    add_patient,
    ingest,
    make_clinic,
    messages,
    observations,
    vet_oru,
)

pytestmark = pytest.mark.xdist_group("devices-db")

OTHER_CHIP = "528140000999999"


def _warehouse(db) -> WarehouseResource:  # noqa: ANN001
    return WarehouseResource(database_url=db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode())


def _tick(drops: DropFoldersResource, cursor: str | None) -> SensorResult | SkipReason:
    with build_sensor_context(resources={"drop_folders": drops}, cursor=cursor) as context:
        return device_drop_sensor(context)


def test_the_whole_definitions_object_loads_with_the_devices_domain():
    Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assert repository.get_job("device_drop_job") and repository.get_job("device_inbox_retry_job")
    assert "device_drop_sensor" in {s.name for s in repository.sensor_defs}
    assert "device_inbox_retry_job_schedule" in {s.name for s in repository.schedule_defs}


def test_a_new_drop_file_requests_one_run_which_stores_and_moves_it_and_the_next_tick_does_nothing(
    fresh_db, tmp_path: Path
):
    clinic = make_clinic(fresh_db, "p1")
    drops = DropFoldersResource(home=str(tmp_path), min_age_seconds=0)
    folder = drops.root / "p1"
    folder.mkdir(parents=True)
    assert isinstance(_tick(drops, None), SkipReason)  # empty folders: nothing to do

    (folder / "cbc.hl7").write_bytes(vet_oru("DROP-1"))
    (folder / "upload.hl7.part").write_bytes(b"still being written")
    first = _tick(drops, None)
    assert isinstance(first, SensorResult)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.tags["practice"] == "p1" and request.tags["files"] == "1"
    assert first.cursor is not None and "p1/cbc.hl7:" in first.cursor

    # The same file still waiting (its run has not happened yet): no second request.
    waiting = _tick(drops, first.cursor)
    assert isinstance(waiting, SkipReason)

    result = device_drop_job.execute_in_process(
        run_config=request.run_config, resources={"warehouse": _warehouse(fresh_db), "drop_folders": drops}
    )
    assert result.success
    assert result.output_for_node("process_drop_folder") == {
        "files": 1, "ingested": 1, "duplicate": 0, "inbox": 0, "observations": 2,
    }  # fmt: skip
    assert not (folder / "cbc.hl7").exists()
    assert [p.name.split("-", 1)[1] for p in (folder / "processed").iterdir()] == ["cbc.hl7"]
    assert [(m.status, m.filename) for m in messages(fresh_db, clinic)] == [("ingested", "cbc.hl7")]
    assert len(observations(fresh_db, clinic)) == 2

    # After the run the folder holds nothing new: the cursor shrinks to the backlog and no run is requested.
    after = _tick(drops, first.cursor)
    assert isinstance(after, SensorResult) and not after.run_requests and after.cursor == "[]"
    assert isinstance(_tick(drops, after.cursor), SkipReason)

    # The same file name dropped again (another analyser run) is new; its content is a duplicate, not lost.
    shutil.copy(next((folder / "processed").iterdir()), folder / "cbc.hl7")
    again = _tick(drops, after.cursor)
    assert isinstance(again, SensorResult) and len(again.run_requests) == 1


def test_the_inbox_retry_job_loads_a_message_once_its_patient_exists(fresh_db):
    clinic = make_clinic(fresh_db, "p1")
    drops = DropFoldersResource(home="/nonexistent", min_age_seconds=0)
    resources = {"warehouse": _warehouse(fresh_db), "drop_folders": drops}
    record = ingest(fresh_db, clinic, vet_oru("RETRY-1", chip=OTHER_CHIP, owner="Pietersen^Jan"))
    assert record.status == "inbox" and record.inbox_reason == "no_patient_match"

    nothing = device_inbox_retry_job.execute_in_process(resources=resources)
    assert nothing.output_for_node("retry_device_inbox") == {"retried": 1, "ingested": 0, "still_inbox": 1}

    with fresh_db.system() as session:
        add_patient(session, clinic.practice_id, "Rex", "Pietersen", OTHER_CHIP)
    result = device_inbox_retry_job.execute_in_process(
        resources=resources,
        run_config={"ops": {"retry_device_inbox": {"config": {"practice_codes": ["p1"]}}}},
    )
    assert result.output_for_node("retry_device_inbox") == {"retried": 1, "ingested": 1, "still_inbox": 0}
    assert [(m.status, m.observation_count) for m in messages(fresh_db, clinic)] == [("ingested", 2)]
