"""Lab orders on the patient record under AppTest: a vet orders a test (a missing test is refused at the field),
the sender takes it to a lab that refuses it, the record shows why, Retry queues it again; the other practice's
orders are never listed."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from connectors.devices.lab_simulator import LabSimulator
from connectors.devices.order_sender import send_queued_orders
from tests.dashboard.test_ws_app import ok, texts
from tests.practice_world import sign_in
from warehouse.schema.clinical import LabDestination, LabOrder


def _orders_table(at):  # noqa: ANN001, ANN202
    return next(d.value for d in at.dataframe if "Accession" in d.value.columns)


def _open_lab_orders(rows):  # noqa: ANN001, ANN202
    at = sign_in("vet-a1")
    at.switch_page("workspaces/records.py").run()
    at.text_input(key="rec.query").input("Bello").run()
    at.selectbox(key="rec.patient").set_value(rows.patient_id).run()
    ok(at)
    return at


def test_a_vet_orders_a_test_sees_the_refusal_and_retries(app_env):
    a1 = app_env.world.practices["a1"]
    at = _open_lab_orders(a1)
    assert "Lab orders" in [s.value for s in at.subheader]
    assert "ACC-b1" not in texts(at)
    at.button(key="rec.lab.submit").click().run()
    ok(at)
    assert [e.value for e in at.error] == ["Choose a test or type its code."]

    at.selectbox(key="rec.lab.test").set_value("CBC").run()
    at.button(key="rec.lab.submit").click().run()
    ok(at)
    with app_env.system() as session:
        order = session.scalars(select(LabOrder).where(LabOrder.practice_id == a1.practice_id,
                                                       LabOrder.delivery_state == "queued")).one()  # fmt: skip
    assert at.success[0].value == f"Order {order.accession_number} is queued for Lab."
    assert (order.test_code, order.test_name, order.ordered_by) == ("CBC", "Haematology", a1.user_id)
    shown = _orders_table(at)
    mine = shown[shown["Accession"] == order.accession_number]
    assert mine["State"].tolist() == ["⏳ queued"] and mine["Test"].tolist() == ["Haematology (CBC)"]

    with LabSimulator(fault="nack") as lab:
        with app_env.system() as session:
            session.execute(update(LabDestination).where(LabDestination.practice_id == a1.practice_id)
                            .values(port=lab.port))  # fmt: skip
        send_queued_orders(app_env.app_engine, a1.practice_id)
    at.run()
    ok(at)
    shown = _orders_table(at)
    mine = shown[shown["Accession"] == order.accession_number]
    assert mine["State"].tolist() == ["⛔ refused"]
    assert mine["Why"].tolist() == ["the lab refused the order (AR): analyser offline for maintenance"]
    assert re.fullmatch(r"\d{1,2} [a-z]{3} \d{4} \d{2}:\d{2}", mine["Sent"].tolist()[0])  # "4 dec 2026 06:52"

    at.button(key=f"rec.lab.retry.{order.id}").click().run()
    ok(at)
    assert at.success[0].value == f"Order {order.accession_number} is queued to be sent again."
    with app_env.system() as session:
        assert session.get(LabOrder, (a1.practice_id, order.id)).delivery_state == "queued"
    assert f"rec.lab.retry.{order.id}" not in [b.key for b in at.button]
