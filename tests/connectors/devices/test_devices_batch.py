"""``ingest_many`` (the MLLP store's group commit) decides every message exactly as ``ingest_raw`` one by one."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from connectors.devices.ingest import parse_raw
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import Clinic, ingest, make_clinic, messages, vet_oru
from warehouse.ingest.devices import batch as batch_path
from warehouse.ingest.devices.batch import ingest_many
from warehouse.ingest.devices.inputs import DeviceOutcome, RawItem, RecordResult
from warehouse.ingest.devices.lab_results import order_columns
from warehouse.ingest.devices.raw import header_columns, raw_columns
from warehouse.ingest.devices.recording import ingest_raw
from warehouse.schema.clinical import LabObservation, LabOrder

pytestmark = pytest.mark.xdist_group("devices-db")


def mixed_batch() -> list[bytes]:
    """Common-case messages interleaved with every case the batch path must leave to the one-by-one path."""
    prelim = vet_oru("B-1", accession="ACC-B1", status="P", wbc="9.0")
    return [
        vet_oru("A-1", accession="ACC-A1", obx_count=5),  # common: new accession, chip match
        prelim,  # common
        vet_oru("B-2", accession="ACC-B1", status="F", wbc="9.5"),  # same accession in the batch: supersedes
        vet_oru("A-1", accession="ACC-A1", obx_count=5),  # duplicate of the first, in the same batch
        vet_oru("K-1", accession="ACC-KNOWN"),  # an order the practice already has
        vet_oru("C-1", chip="999999999999999", accession="ACC-C1"),  # unknown chip, id + owner match
        vet_oru("C-2", chip="999999999999999", owner="Jansen^Piet", accession="ACC-C2"),  # inbox
        b"not a message at all",  # inbox, no dedup key
        vet_oru("D-1", accession="ACC-D1", when=dt.datetime(2024, 5, 1, 8, 0)),  # common
        vet_oru("A-1", sender="Other analyser", accession="ACC-E1"),  # same control id, other sender
        vet_oru("N-1", accession="ACC-N1").replace(b"+0100", b""),  # times without an offset
        vet_oru("A-1", accession="ACC-F1", wbc="7.0"),  # the first one's control id, other content: common
    ]


def by_one(db, clinic: Clinic, batch: list[bytes]) -> list[RecordResult]:
    return [ingest(db, clinic, raw, "mllp:test") for raw in batch]


def by_batch(db, clinic: Clinic, batch: list[bytes]) -> list[RecordResult | Exception]:
    items = [RawItem(raw, "mllp:test", parse_raw(raw, "mllp:test")) for raw in batch]
    with db.as_app(clinic.context) as session:
        return ingest_many(session, clinic.practice_id, items, master_key=MASTER_KEY)


def shape(db, clinic: Clinic) -> tuple[list, list]:
    """What a vet sees, with ids replaced by what identifies a message (the batch path stores the messages it
    decides first, so ids are in another order) - two practices can then be compared."""
    msgs = messages(db, clinic)
    name = {m.id: (m.raw, m.status) for m in msgs}
    with db.as_app(clinic.context) as session:
        orders = {o.id: o.accession_number for o in session.scalars(select(LabOrder))}
        obs = list(session.scalars(select(LabObservation)))
        obs_name = {o.id: (name[o.device_message_id], o.code) for o in obs}
        observed = sorted(
            (name[o.device_message_id], orders.get(o.lab_order_id), o.code, o.value_numeric, o.unit,
             o.ref_low, o.ref_high, o.abnormal_flag, o.status, o.observed_at,
             obs_name.get(o.superseded_by) if o.superseded_by else None)
            for o in obs
        )  # fmt: skip
    stored = sorted(
        (m.raw, m.status, m.inbox_reason or "", m.observation_count, m.detected_format or "", m.sender or "",
         m.control_id or "", name[m.duplicate_of] if m.duplicate_of else (b"", ""), m.sha256, m.size_bytes,
         m.patient_id is not None, name[m.same_control_id_as] if m.same_control_id_as else (b"", ""))
        for m in msgs
    )  # fmt: skip
    return stored, observed


def test_a_mixed_batch_is_decided_exactly_as_one_by_one(fresh_db, monkeypatch):
    one = make_clinic(fresh_db, "b1", orders=("ACC-KNOWN",))
    many = make_clinic(fresh_db, "b2", orders=("ACC-KNOWN",))
    batch = mixed_batch()
    expected = by_one(fresh_db, one, batch)
    common: list[int] = []
    real = batch_path._ingest_common

    def spy(*args, **kwargs):
        done = real(*args, **kwargs)
        common.extend(done)
        return done

    monkeypatch.setattr(batch_path, "_ingest_common", spy)
    got = by_batch(fresh_db, many, batch)
    assert sorted(common) == [0, 1, 8, 9, 11]  # the rest were left to the one-by-one path
    assert not [r for r in got if isinstance(r, Exception)]
    assert [(r.status, r.observation_count, r.inbox_reason) for r in got] == [
        (r.status, r.observation_count, r.inbox_reason) for r in expected
    ]
    assert [r.status for r in got] == ["ingested", "ingested", "ingested", "duplicate", "ingested", "ingested",
                                       "inbox", "inbox", "ingested", "ingested", "ingested", "ingested"]  # fmt: skip
    # both paths note the reused control id on the same message, pointing at the first one
    assert [r.same_control_id_as for r in got] == [None] * 11 + [got[0].message_id]  # type: ignore[union-attr]
    assert [r.same_control_id_as for r in expected] == [None] * 11 + [expected[0].message_id]
    assert shape(fresh_db, many) == shape(fresh_db, one)


def test_a_batch_racing_another_writer_for_an_accession_falls_back_and_still_loads_everything(
    fresh_db, monkeypatch
):
    clinic = make_clinic(fresh_db, "b3", orders=("ACC-R1",))
    batch = [vet_oru(f"R-{n}", accession=f"ACC-R{n}") for n in range(3)]
    items = [RawItem(raw, "mllp:test", parse_raw(raw, "mllp:test")) for raw in batch]
    # As if another transaction committed ACC-R1 between the lookup and the insert: the lookup misses it, the
    # batch INSERT of the orders returns fewer rows, the batch path gives up and one by one decides everything.
    monkeypatch.setattr(batch_path, "orders_by_number", lambda *_: [])
    with fresh_db.as_app(clinic.context) as session:
        results = ingest_many(session, clinic.practice_id, items, master_key=MASTER_KEY)
    assert [r.status for r in results] == ["ingested"] * 3
    assert [m.observation_count for m in messages(fresh_db, clinic)] == [2, 2, 2]
    with fresh_db.as_app(clinic.context) as session:
        known = session.scalar(select(LabOrder.id).where(LabOrder.accession_number == "ACC-R1"))
        assert (
            len(session.scalars(select(LabObservation).where(LabObservation.lab_order_id == known)).all())
            == 2
        )


def test_one_failing_message_does_not_take_the_batch_down(fresh_db, monkeypatch):
    clinic = make_clinic(fresh_db, "b4")
    good = [vet_oru(f"G-{n}", accession=f"ACC-G{n}") for n in range(2)]
    items = [RawItem(raw, "mllp:test", parse_raw(raw, "mllp:test")) for raw in good]
    bad = RawItem(b"x", "mllp:test", DeviceOutcome("hl7v2", "S", "C", inbox_reason="r" * 10))
    real = ingest_raw

    def failing(session, practice_id, raw, *args, **kwargs):
        if raw == b"x":
            session.execute(update(LabOrder).values(status="no such status"))  # a CHECK violation
        return real(session, practice_id, raw, *args, **kwargs)

    monkeypatch.setattr(batch_path, "ingest_raw", failing)
    with fresh_db.as_app(clinic.context) as session:
        results = ingest_many(session, clinic.practice_id, [items[0], bad, items[1]], master_key=MASTER_KEY)
    assert isinstance(results[1], Exception)
    assert [r.status for r in (results[0], results[2])] == ["ingested", "ingested"]
    assert [m.control_id for m in messages(fresh_db, clinic)] == ["G-0", "G-1"]


def test_the_batch_statements_bind_exactly_the_columns_the_one_by_one_path_writes():
    """The batch's set-based INSERTs take their arrays from raw_columns/header_columns and order_columns: a
    column added there and not to the statement would be dropped silently by the batch path alone."""
    outcome = parse_raw(vet_oru("COLS-1"), "mllp:test")
    result = outcome.results[0]
    message = set(raw_columns(b"x", "mllp:test", None)) | set(header_columns(outcome))
    assert set(batch_path._BATCH_MESSAGES.compile().params) == message | {
        "practice_id", "dedup_key", "patient_id", "observation_count"}  # fmt: skip
    order = set(order_columns(result, result.orders[0]))
    assert set(batch_path._BATCH_ORDERS.compile().params) == order | {"practice_id", "patient_id"}
