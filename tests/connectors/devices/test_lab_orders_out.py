"""Lab orders out, end to end over real TCP: an order placed in the record is sent to the lab simulator as HL7,
acknowledged (or refused, or not answered), and the simulator's ORU result arrives at our real MLLP listener,
is ingested and matched back to the order by its accession number."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from connectors.devices.ingest import DeviceStore
from connectors.devices.lab_simulator import LabSimulator
from connectors.devices.mllp import MLLPConfig, hl7_handler, start_in_background
from connectors.devices.order_sender import send_queued_orders
from tests.conftest import MASTER_KEY, Database
from tests.connectors.devices.devices_support import CHIP, Clinic, make_clinic, messages, wait_for
from warehouse.records import lab_destinations, lab_orders
from warehouse.records.errors import RecordsError
from warehouse.records.lab_orders import TestChoice
from warehouse.security.permissions import Actor

pytestmark = pytest.mark.xdist_group("devices-db")


@pytest.fixture
def lab(fresh_db: Database) -> Iterator[tuple[Clinic, LabSimulator]]:
    """Our MLLP listener for the practice, and the lab simulator that sends its results there."""
    clinic = make_clinic(fresh_db)
    store = DeviceStore(fresh_db.app_engine, clinic.practice_id, MASTER_KEY)
    listener = start_in_background(hl7_handler(store.store), on_incomplete=store.on_incomplete,
                                   on_garbage=store.on_garbage, config=MLLPConfig(idle_timeout=10))  # fmt: skip
    simulator = LabSimulator(results_to=(listener.host, listener.port)).start()
    yield clinic, simulator
    simulator.stop()
    listener.stop()


def _vet(clinic: Clinic) -> Actor:
    return Actor.at(None, clinic.practice_id, {"veterinarian"})


def _destination(db: Database, clinic: Clinic, port: int, *, message_type: str = "OML^O21",
                 timeout: int = 5) -> int:  # fmt: skip
    with db.as_app(clinic.context) as session:
        return lab_destinations.add_destination(
            session, Actor.at(None, clinic.practice_id, {"practice_manager"}), practice_id=clinic.practice_id,
            name=f"Lab {port} {message_type}", host="127.0.0.1", port=port,
            message_type=message_type, tests=[TestChoice("CBC", "Haematology"), TestChoice("CHEM", "Biochemistry")],
            receiving_application="LabSim", receiving_facility="Lab", ack_timeout_seconds=timeout,
        ).id  # fmt: skip


def _order(db: Database, clinic: Clinic, destination_id: int, code: str = "cbc") -> int:
    with db.as_app(clinic.context) as session:
        return lab_orders.place_order(session, _vet(clinic), practice_id=clinic.practice_id,
                                      patient_id=clinic.patients["bello"], destination_id=destination_id,
                                      test_code=code).id  # fmt: skip


def _view(db: Database, clinic: Clinic, order_id: int) -> lab_orders.LabOrderView:
    with db.as_app(clinic.context) as session:
        views = lab_orders.lab_orders(session, clinic.practice_id, clinic.patients["bello"])
    return next(v for v in views if v.id == order_id)


def _send(db: Database, clinic: Clinic) -> dict[str, int]:
    return dict(send_queued_orders(db.app_engine, clinic.practice_id).counts)


@pytest.mark.parametrize("message_type", ["ORM^O01", "OML^O21"])
def test_an_order_is_acknowledged_and_its_result_comes_back_by_accession(fresh_db, lab, message_type):
    clinic, simulator = lab
    order_id = _order(
        fresh_db, clinic, _destination(fresh_db, clinic, simulator.port, message_type=message_type)
    )
    queued = _view(fresh_db, clinic, order_id)
    assert (queued.shown_state, queued.test_code, queued.test_name) == ("queued", "CBC", "Haematology")
    assert queued.accession_number == f"VC{clinic.practice_id}-{order_id:06d}"

    assert _send(fresh_db, clinic) == {"acknowledged": 1}
    acked = _view(fresh_db, clinic, order_id)
    assert (acked.delivery_state, acked.ack_code, acked.attempts) == ("acknowledged", "AA", 1)
    assert acked.sent_at is not None and acked.acked_at is not None
    [received] = simulator.orders
    assert received.message_type == message_type
    assert (
        received.patient.microchip == CHIP
        and received.orders[0].placer_order_number == queued.accession_number
    )

    wait_for(lambda: _view(fresh_db, clinic, order_id).result_in)
    done = _view(fresh_db, clinic, order_id)
    assert done.shown_state == "result in"
    assert {(r.code, r.value, r.flag) for r in done.results} == {("WBC", "18.2", "H"), ("HCT", "0.45", "N"),
                                                                 ("PLT", "310", "N")}  # fmt: skip
    [stored] = messages(fresh_db, clinic)
    assert stored.status == "ingested" and stored.patient_id == clinic.patients["bello"]


def test_a_refused_order_shows_why_and_is_sent_again_after_a_retry(fresh_db, lab):
    clinic, simulator = lab
    order_id = _order(fresh_db, clinic, _destination(fresh_db, clinic, simulator.port))
    simulator.fault = "nack"
    assert _send(fresh_db, clinic) == {"refused": 1}
    refused = _view(fresh_db, clinic, order_id)
    assert (refused.shown_state, refused.ack_code, refused.retryable) == ("refused", "AR", True)
    assert "analyser offline for maintenance" in refused.why

    simulator.fault = None
    with fresh_db.as_app(clinic.context) as session:
        lab_orders.retry_order(session, _vet(clinic), practice_id=clinic.practice_id, order_id=order_id)
    assert _view(fresh_db, clinic, order_id).shown_state == "queued"
    assert _send(fresh_db, clinic) == {"acknowledged": 1}
    again = _view(fresh_db, clinic, order_id)
    assert (again.delivery_state, again.attempts, again.why) == ("acknowledged", 2, None)
    wait_for(lambda: _view(fresh_db, clinic, order_id).result_in)


def test_a_test_the_lab_does_not_offer_is_refused_with_the_code(fresh_db, lab):
    clinic, simulator = lab
    order_id = _order(fresh_db, clinic, _destination(fresh_db, clinic, simulator.port), code="XYZ-1")
    assert _send(fresh_db, clinic) == {"refused": 1}
    refused = _view(fresh_db, clinic, order_id)
    assert "test code 'XYZ-1' is not offered by this lab" in refused.why
    assert simulator.orders == []


def test_no_answer_times_out_and_a_retry_succeeds(fresh_db, lab):
    clinic, simulator = lab
    order_id = _order(fresh_db, clinic, _destination(fresh_db, clinic, simulator.port, timeout=1))
    simulator.fault = "no_answer"
    assert _send(fresh_db, clinic) == {"timed_out": 1}
    timed_out = _view(fresh_db, clinic, order_id)
    assert timed_out.shown_state == "timed out"
    assert timed_out.why == f"no acknowledgement from 127.0.0.1:{simulator.port} within 1 s"

    simulator.fault = None
    with fresh_db.as_app(clinic.context) as session:
        lab_orders.retry_order(session, _vet(clinic), practice_id=clinic.practice_id, order_id=order_id)
    assert _send(fresh_db, clinic) == {"acknowledged": 1}
    wait_for(lambda: _view(fresh_db, clinic, order_id).result_in)


def test_a_lab_that_is_not_listening_is_a_timeout_that_says_so(fresh_db):
    clinic = make_clinic(fresh_db)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    order_id = _order(fresh_db, clinic, _destination(fresh_db, clinic, port))
    assert _send(fresh_db, clinic) == {"timed_out": 1}
    assert (
        _view(fresh_db, clinic, order_id).why
        == f"connection refused by 127.0.0.1:{port}: is the lab's receiver running?"
    )


def test_two_senders_never_claim_the_same_order(fresh_db):
    clinic = make_clinic(fresh_db)
    destination = _destination(fresh_db, clinic, 9)
    first, second = _order(fresh_db, clinic, destination), _order(fresh_db, clinic, destination)
    claimed_by_other: list[lab_orders.OutgoingOrder] = []

    def other_sender() -> None:
        with fresh_db.as_app(clinic.context) as other:
            claimed_by_other.extend(lab_orders.claim_queued(other, clinic.practice_id, limit=5))

    with fresh_db.as_app(clinic.context) as one:
        [claimed_by_one] = lab_orders.claim_queued(one, clinic.practice_id, limit=1)
        # The other sender claims while the first claim is not committed: it skips the locked order and then
        # waits for the practice's audit chain (every write of a practice is chained in commit order).
        thread = threading.Thread(target=other_sender)
        thread.start()
        wait_for(lambda: _waiting_for_a_lock(fresh_db))
    thread.join(10)
    assert claimed_by_one.id == first and [o.id for o in claimed_by_other] == [second]
    assert claimed_by_one.control_id == f"{claimed_by_one.accession_number}-1"


def _waiting_for_a_lock(db: Database) -> bool:
    with db.admin_engine.connect() as conn:
        return bool(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )))  # fmt: skip


def test_an_order_whose_sender_died_while_waiting_times_out(fresh_db):
    clinic = make_clinic(fresh_db)
    order_id = _order(fresh_db, clinic, _destination(fresh_db, clinic, 9, timeout=10))
    with fresh_db.as_app(clinic.context) as session:
        lab_orders.claim_queued(session, clinic.practice_id)
    with fresh_db.as_app(clinic.context) as session:  # 60 s later: within the timeout + grace, still waiting
        lab_orders.claim_queued(
            session, clinic.practice_id, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
        )
    assert _view(fresh_db, clinic, order_id).shown_state == "sent"
    with fresh_db.as_app(clinic.context) as session:
        lab_orders.claim_queued(
            session, clinic.practice_id, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=80)
        )
    late = _view(fresh_db, clinic, order_id)
    assert (late.shown_state, late.retryable) == ("timed out", True)
    assert "sender stopped while waiting" in late.why


def test_place_order_refuses_bad_input_at_the_field_and_retry_only_what_failed(fresh_db):
    clinic = make_clinic(fresh_db)
    destination = _destination(fresh_db, clinic, 9)
    vet, practice = _vet(clinic), clinic.practice_id
    bello = clinic.patients["bello"]
    cases = [
        ({"destination_id": None, "test_code": "CBC"}, "destination"),
        ({"destination_id": destination + 99, "test_code": "CBC"}, "destination"),
        ({"destination_id": destination, "test_code": "  "}, "test"),
        ({"destination_id": destination, "test_code": "X" * 65}, "test"),
        ({"destination_id": destination, "test_code": "CBC", "visit_id": 123456}, "visit"),
    ]
    for kwargs, field in cases:
        with fresh_db.as_app(clinic.context) as session, pytest.raises(RecordsError) as refused:
            lab_orders.place_order(session, vet, practice_id=practice, patient_id=bello, **kwargs)
        assert refused.value.field == field, kwargs
    order_id = _order(fresh_db, clinic, destination)
    with fresh_db.as_app(clinic.context) as session, pytest.raises(RecordsError, match="this one is queued"):
        lab_orders.retry_order(session, vet, practice_id=practice, order_id=order_id)
    receptionist = Actor.at(None, practice, {"receptionist"})
    with (
        fresh_db.as_app(clinic.context) as session,
        pytest.raises(Exception, match="may not write the clinical"),
    ):
        lab_orders.place_order(session, receptionist, practice_id=practice, patient_id=bello,
                               destination_id=destination, test_code="CBC")  # fmt: skip


def test_the_send_orders_command_prints_each_order_and_the_labs_answer(fresh_db, lab, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from vetconnect.cli import app
    from vetconnect.settings import get_settings

    clinic, simulator = lab
    monkeypatch.setenv("DATABASE_URL", fresh_db.admin_url)
    monkeypatch.setenv("VETCONNECT_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        acked = _order(fresh_db, clinic, _destination(fresh_db, clinic, simulator.port))
        unknown = _order(fresh_db, clinic, _destination(fresh_db, clinic, simulator.port, message_type="ORM^O01"),
                         code="NOPE")  # fmt: skip
        result = CliRunner().invoke(app, ["devices", "send-orders", "--practice", "p1"])
        assert result.exit_code == 0, result.output
        accession = {v.id: v.accession_number for v in (_view(fresh_db, clinic, i) for i in (acked, unknown))}
        assert result.output.splitlines() == [
            f"p1: {accession[acked]} CBC → 127.0.0.1:{simulator.port} acknowledged",
            f"p1: {accession[unknown]} NOPE → 127.0.0.1:{simulator.port} refused: the lab refused the order (AR): "
            "unknown test code; OBR-4: test code 'NOPE' is not offered by this lab",
            "2 order(s) sent",
        ]
        missing = CliRunner().invoke(app, ["devices", "send-orders", "--practice", "nope"])
        assert missing.exit_code != 0 and "no practice with code 'nope'" in missing.output
    finally:
        get_settings.cache_clear()
