"""Lab orders out: an order placed in the record travels to its lab destination over MLLP (the sender in
``connectors.devices.order_sender``), and its result comes back through the device ingest, matched by the
accession number this module gives it.

Delivery (``lab_order.delivery_state``)::

    queued ──claim──▶ sent ──AA──▶ acknowledged ──ORU──▶ (status resulted / partial: "result in")
                        ├──AE/AR──▶ refused ─┐
                        └─timeout──▶ timed_out ┴─retry (a person)──▶ queued

"Result in" is not a delivery state: it is read from ``lab_order.status``, which the result ingest sets
(``warehouse.ingest.devices.lab_results``), so a result that arrives before the ACK is still shown.
A claimed order is ``sent`` (committed) before the message goes out, so two senders never send it twice; if
a sender dies while waiting, the order is marked ``timed_out`` once its acknowledgement is overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text, require_patient
from warehouse.schema.clinical import LabDestination, LabObservation, LabOrder, Visit
from warehouse.security.permissions import RECORDS_WRITE, Actor, require

RETRYABLE = ("refused", "timed_out")
# How long past its ACK timeout a ``sent`` order may wait before it counts as unanswered (the sender died).
UNANSWERED_GRACE = dt.timedelta(seconds=60)
_CODE_MAX = LabOrder.__table__.c.test_code.type.length
_NAME_MAX = LabOrder.__table__.c.test_name.type.length


@dataclass(frozen=True)
class TestChoice:
    code: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})"


@dataclass(frozen=True)
class DestinationView:
    id: int
    name: str
    message_type: str
    tests: tuple[TestChoice, ...]


@dataclass(frozen=True)
class ResultValue:
    code: str
    text: str | None
    value: str | None
    unit: str | None
    flag: str | None


@dataclass(frozen=True)
class LabOrderView:
    id: int
    accession_number: str
    test_code: str | None
    test_name: str | None
    destination: str | None
    ordered_at: dt.datetime
    status: str
    delivery_state: str | None
    attempts: int
    sent_at: dt.datetime | None
    acked_at: dt.datetime | None
    ack_code: str | None
    ack_text: str | None
    delivery_error: str | None
    results: tuple[ResultValue, ...]

    @property
    def result_in(self) -> bool:
        return self.status in ("resulted", "partial", "reviewed")

    @property
    def retryable(self) -> bool:
        return self.delivery_state in RETRYABLE and not self.result_in

    @property
    def shown_state(self) -> str:
        """What the record shows: the result once it is in, else where the order is on its way."""
        if self.status == "partial":
            return "partial result in"
        if self.result_in:
            return "result in"
        if self.status == "cancelled":
            return "cancelled"
        return (self.delivery_state or "ordered").replace("_", " ")

    @property
    def why(self) -> str | None:
        """Why a refused or timed-out order did not arrive, in the lab's words where it gave any."""
        if self.delivery_state not in RETRYABLE:
            return None
        return self.delivery_error or self.ack_text


@dataclass(frozen=True)
class OutgoingOrder:
    """A claimed order with what its message needs (plain values: the connector builds the HL7)."""

    id: int
    accession_number: str
    control_id: str
    test_code: str
    test_name: str | None
    ordered_at: dt.datetime
    visit_id: int | None
    patient_id: int
    patient_name: str
    owner_last_name: str | None
    microchip: str | None
    species: str | None
    breed: str | None
    sex: str | None
    date_of_birth: dt.date | None
    practice_code: str
    host: str
    port: int
    message_type: str
    receiving_application: str | None
    receiving_facility: str | None
    ack_timeout_seconds: int


def offered_tests(raw: list[dict[str, str]] | None) -> tuple[TestChoice, ...]:
    """The tests a destination offers, from its ``tests`` column (entries without a code are skipped)."""
    return tuple(TestChoice(t["code"], t.get("name") or t["code"]) for t in raw or () if t.get("code"))


def destinations(session: Session, practice_id: int) -> list[DestinationView]:
    """The practice's active lab destinations with the tests each offers."""
    rows = session.scalars(
        select(LabDestination)
        .where(LabDestination.practice_id == practice_id, LabDestination.active)
        .order_by(LabDestination.name)
    )
    return [DestinationView(d.id, d.name, d.message_type, offered_tests(d.tests)) for d in rows]


def place_order(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, destination_id: int | None,
    test_code: str | None, test_name: str | None = None, visit_id: int | None = None,
) -> LabOrder:  # fmt: skip
    """A new order, queued for its destination, with a unique accession number (``VC<practice>-<order id>``:
    unique across practices, because a lab receives the orders of many). A code from the destination's
    catalogue takes the catalogue's name; another code is sent as typed (the lab may refuse it)."""
    require(actor, RECORDS_WRITE, practice_id)
    require_patient(session, practice_id, patient_id)
    if destination_id is None:
        raise RecordsError("destination", "Choose the lab to send the order to.")
    destination = session.scalar(
        select(LabDestination).where(
            LabDestination.practice_id == practice_id,
            LabDestination.id == destination_id,
            LabDestination.active,
        )
    )
    if destination is None:
        raise RecordsError("destination", "This lab is not one of the practice's active lab destinations.")
    code = optional_text(test_code)
    if code is None:
        raise RecordsError("test", "Choose a test or type its code.")
    if len(code) > _CODE_MAX or not code.isprintable():
        raise RecordsError("test", f"A test code is at most {_CODE_MAX} printable characters.")
    listed = {t.code.casefold(): t for t in offered_tests(destination.tests)}.get(code.casefold())
    name = listed.name if listed else optional_text(test_name)
    if listed:
        code = listed.code
    if name is not None and len(name) > _NAME_MAX:
        raise RecordsError("test_name", f"A test name is at most {_NAME_MAX} characters.")
    if visit_id is not None and session.scalar(
        select(Visit.id).where(Visit.practice_id == practice_id, Visit.id == visit_id, Visit.patient_id == patient_id)
    ) is None:  # fmt: skip
        raise RecordsError("visit", "This visit is not one of the patient's.")
    order_id = session.scalar(text("SELECT nextval(pg_get_serial_sequence('lab_order', 'id'))"))
    order = LabOrder(practice_id=practice_id, id=order_id, patient_id=patient_id, visit_id=visit_id,
                     accession_number=f"VC{practice_id}-{order_id:06d}", test_code=code, test_name=name,
                     lab=destination.name[:120], status="ordered", ordered_by=actor.user_id,
                     destination_id=destination.id, delivery_state="queued")  # fmt: skip
    session.add(order)
    session.flush()
    return order


def retry_order(session: Session, actor: Actor, *, practice_id: int, order_id: int) -> None:
    """Queue a refused or timed-out order again (the last error stays until the next answer replaces it)."""
    require(actor, RECORDS_WRITE, practice_id)
    state = session.scalar(
        select(LabOrder.delivery_state).where(LabOrder.practice_id == practice_id, LabOrder.id == order_id)
    )
    if state not in RETRYABLE:
        shown = (state or "not sent by VetConnect").replace("_", " ")
        raise RecordsError(
            "order", f"Only a refused or timed-out order can be sent again; this one is {shown}."
        )
    session.execute(
        update(LabOrder)
        .where(LabOrder.practice_id == practice_id, LabOrder.id == order_id, LabOrder.delivery_state == state)
        .values(delivery_state="queued")
    )


def lab_orders(session: Session, practice_id: int, patient_id: int) -> list[LabOrderView]:
    """The patient's lab orders, newest first, with their current results."""
    orders = session.execute(
        select(LabOrder, LabDestination.name)
        .outerjoin(LabDestination, (LabDestination.practice_id == LabOrder.practice_id)
                   & (LabDestination.id == LabOrder.destination_id))
        .where(LabOrder.practice_id == practice_id, LabOrder.patient_id == patient_id)
        .order_by(LabOrder.ordered_at.desc(), LabOrder.id.desc())
    ).all()  # fmt: skip
    results: dict[int, list[ResultValue]] = {}
    ids = [o.id for o, _ in orders]
    if ids:
        for r in session.scalars(
            select(LabObservation)
            .where(LabObservation.practice_id == practice_id, LabObservation.lab_order_id.in_(ids),
                   LabObservation.superseded_by.is_(None))
            .order_by(LabObservation.id)
        ):  # fmt: skip
            value = r.value_text if r.value_numeric is None else f"{r.value_numeric.normalize():f}"
            results.setdefault(r.lab_order_id, []).append(
                ResultValue(r.code, r.text, value, r.unit, r.abnormal_flag)
            )
    return [
        LabOrderView(
            o.id,
            o.accession_number,
            o.test_code,
            o.test_name,
            name or o.lab,
            o.ordered_at,
            o.status,
            o.delivery_state,
            o.delivery_attempts,
            o.sent_at,
            o.acked_at,
            o.ack_code,
            o.ack_text,
            o.delivery_error,
            tuple(results.get(o.id, ())),
        )  # fmt: skip
        for o, name in orders
    ]


# --- the sender's side (no person: the listener's and sender's access context has no user) -------------------

_CLAIM = text(
    """
    WITH k AS (
      SELECT o.practice_id, o.id FROM lab_order o
      WHERE o.practice_id = :p AND o.delivery_state = 'queued'
      ORDER BY o.id LIMIT :limit
      FOR UPDATE SKIP LOCKED
    )
    UPDATE lab_order o
       SET delivery_state = 'sent', delivery_attempts = o.delivery_attempts + 1, sent_at = now(),
           message_control_id = o.accession_number || '-' || (o.delivery_attempts + 1)
      FROM k, lab_destination d, patient p, tenant t
     WHERE o.practice_id = k.practice_id AND o.id = k.id
       AND d.practice_id = o.practice_id AND d.id = o.destination_id
       AND p.practice_id = o.practice_id AND p.id = o.patient_id AND t.id = o.practice_id
    RETURNING o.id, o.accession_number, o.message_control_id AS control_id, o.test_code, o.test_name,
              o.ordered_at, o.visit_id, p.id AS patient_id, p.name AS patient_name,
              (SELECT c.last_name FROM client_patient cp JOIN client c
                  ON c.practice_id = cp.practice_id AND c.id = cp.client_id
                WHERE cp.practice_id = p.practice_id AND cp.patient_id = p.id
                ORDER BY cp.is_primary DESC, cp.client_id LIMIT 1) AS owner_last_name,
              p.microchip, p.species, p.breed, p.sex, p.date_of_birth, t.code AS practice_code,
              d.host, d.port, d.message_type, d.receiving_application, d.receiving_facility,
              d.ack_timeout_seconds
    """
)

_EXPIRE = text(
    """
    UPDATE lab_order o SET delivery_state = 'timed_out',
           delivery_error = 'no answer was recorded: the sender stopped while waiting for the acknowledgement'
      FROM lab_destination d
     WHERE o.practice_id = :p AND o.delivery_state = 'sent'
       AND d.practice_id = o.practice_id AND d.id = o.destination_id
       AND o.sent_at < :now - make_interval(secs => d.ack_timeout_seconds) - :grace
    """
)


def claim_queued(
    session: Session, practice_id: int, *, limit: int = 20, now: dt.datetime | None = None
) -> list[OutgoingOrder]:
    """Mark up to ``limit`` queued orders ``sent`` (locked rows another sender holds are skipped) and return
    them; first, orders whose acknowledgement is long overdue become ``timed_out``. Commit before sending."""
    session.execute(
        _EXPIRE, {"p": practice_id, "now": now or dt.datetime.now(dt.UTC), "grace": UNANSWERED_GRACE}
    )
    rows = session.execute(_CLAIM, {"p": practice_id, "limit": limit}).mappings().all()
    return sorted((OutgoingOrder(**row) for row in rows), key=lambda o: o.id)


def record_delivery(
    session: Session, practice_id: int, order: OutgoingOrder, *, state: str, code: str | None,
    ack_text: str | None, error: str | None,
) -> bool:  # fmt: skip
    """Store what became of one sent message; False if the order is no longer waiting for this message."""
    if state not in ("acknowledged", "refused", "timed_out"):
        raise ValueError(f"not an outcome of sending: {state!r}")
    values: dict[str, object] = {"delivery_state": state, "ack_code": code, "ack_text": ack_text,
                                 "delivery_error": error}  # fmt: skip
    if state == "acknowledged":
        values["acked_at"] = dt.datetime.now(dt.UTC)
    done = session.execute(
        update(LabOrder)
        .where(LabOrder.practice_id == practice_id, LabOrder.id == order.id, LabOrder.delivery_state == "sent",
               LabOrder.message_control_id == order.control_id)
        .values(**values)
    )  # fmt: skip
    return done.rowcount == 1  # type: ignore[attr-defined]
