"""Lab orders out in Dagster: the sensor asks for a run per practice with queued orders (once per backlog), and
the job, run in process with the real warehouse resource, sends them to the lab simulator over TCP."""

from __future__ import annotations

import base64

import pytest
from dagster import RunRequest, SkipReason, build_sensor_context

from connectors.devices.lab_simulator import LabSimulator
from pipelines.animana.resources import WarehouseResource
from pipelines.definitions import defs
from pipelines.devices.lab_orders import LabOrderSendConfig, lab_order_send_job, lab_order_sensor
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import make_clinic
from warehouse.records import lab_destinations, lab_orders
from warehouse.records.lab_orders import TestChoice
from warehouse.security.permissions import Actor

pytestmark = pytest.mark.xdist_group("devices-db")


def test_the_sensor_requests_a_send_run_per_practice_and_the_run_sends_the_orders(fresh_db):
    warehouse = WarehouseResource(
        database_url=fresh_db.admin_url, master_key=base64.b64encode(MASTER_KEY).decode()
    )
    clinic = make_clinic(fresh_db, "p1")
    with build_sensor_context(resources={"warehouse": warehouse}) as context:
        assert isinstance(lab_order_sensor(context), SkipReason)
    with LabSimulator() as simulator:
        with fresh_db.as_app(clinic.context) as session:
            destination = lab_destinations.add_destination(
                session, Actor.at(None, clinic.practice_id, {"practice_manager"}), practice_id=clinic.practice_id,
                name="Lab", host="127.0.0.1", port=simulator.port,
                message_type="ORM^O01", tests=[TestChoice("T4", "Total T4")])  # fmt: skip
            order = lab_orders.place_order(
                session, Actor.at(None, clinic.practice_id, {"veterinarian"}), practice_id=clinic.practice_id,
                patient_id=clinic.patients["bello"], destination_id=destination.id, test_code="T4")  # fmt: skip
        with build_sensor_context(resources={"warehouse": warehouse}) as context:
            [request] = lab_order_sensor(context)
        assert isinstance(request, RunRequest)
        assert request.run_key == f"lab-orders:p1:{order.id}" and request.tags["queued"] == "1"

        result = lab_order_send_job.execute_in_process(
            run_config={"ops": {"send_lab_orders": {"config": LabOrderSendConfig(practice_code="p1").model_dump()}}},
            resources={"warehouse": warehouse},
        )  # fmt: skip
        assert result.success
        assert result.output_for_node("send_lab_orders") == {"sent": 1, "acknowledged": 1}
        assert [o.orders[0].placer_order_number for o in simulator.orders] == [order.accession_number]
    with build_sensor_context(resources={"warehouse": warehouse}) as context:
        assert isinstance(lab_order_sensor(context), SkipReason)


def test_the_definitions_hold_the_lab_order_sensor_and_job():
    repository = defs.get_repository_def()
    assert repository.get_job("lab_order_send_job")
    assert "lab_order_sensor" in {s.name for s in repository.sensor_defs}
