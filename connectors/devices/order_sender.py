"""Send a practice's queued lab orders to their labs: claim (committed as ``sent``), build the HL7 order, send it
over MLLP, wait for the acknowledgement, record the outcome - each order in its own short transactions, so
no database transaction stays open while a lab takes its time to answer.

Used by ``vetconnect devices send-orders`` and the Dagster ``lab_order_sensor``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from connectors.devices.hl7_orders import LabRequest, OrderedTest, OrderPatient, build_order_message
from connectors.devices.mllp_client import Delivery, send_message
from warehouse.kernel.tenancy import AccessContext, tenant_session
from warehouse.records.lab_orders import OutgoingOrder, claim_queued, record_delivery

__all__ = ["SendSummary", "lab_request", "send_queued_orders"]

log = logging.getLogger(__name__)

Sender = Callable[[str, int, str, float], Delivery]


@dataclass
class SendSummary:
    counts: Counter[str] = field(default_factory=Counter)  # acknowledged / refused / timed_out
    lines: list[str] = field(default_factory=list)  # one per order, for the CLI and the run log

    @property
    def sent(self) -> int:
        return sum(self.counts.values())


def lab_request(order: OutgoingOrder) -> LabRequest:
    return LabRequest(
        message_type=order.message_type, control_id=order.control_id, accession=order.accession_number,
        patient=OrderPatient(order.patient_id, order.patient_name, order.owner_last_name, order.microchip,
                             order.species, order.breed, order.sex, order.date_of_birth),
        tests=(OrderedTest(order.test_code, order.test_name),), ordered_at=order.ordered_at,
        sending_facility=order.practice_code, receiving_application=order.receiving_application,
        receiving_facility=order.receiving_facility, visit_id=order.visit_id,
    )  # fmt: skip


def send_queued_orders(
    engine: Engine, practice_id: int, *, batch: int = 20, send: Sender = send_message
) -> SendSummary:
    """Send every queued order of the practice (batches of ``batch`` claimed at a time) until none is left."""
    context = AccessContext.for_practices([practice_id])
    summary = SendSummary()
    while True:
        with tenant_session(engine, context) as session:
            claimed = claim_queued(session, practice_id, limit=batch)
        if not claimed:
            return summary
        for order in claimed:
            delivery = send(order.host, order.port, build_order_message(lab_request(order)),
                            float(order.ack_timeout_seconds))  # fmt: skip
            with tenant_session(engine, context) as session:
                record_delivery(session, practice_id, order, state=delivery.state, code=delivery.code,
                                ack_text=delivery.text, error=delivery.error)  # fmt: skip
            summary.counts[delivery.state] += 1
            why = f": {delivery.error}" if delivery.error else ""
            line = f"{order.accession_number} {order.test_code} → {order.host}:{order.port} {delivery.state}{why}"
            summary.lines.append(line)
            log.info("lab order %s", line)
