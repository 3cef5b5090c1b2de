"""Many device messages in one transaction (the MLLP listener's group commit), the common case set-based.

The common case - a lab result for a known patient (by microchip) on a new accession number - is written for
the whole batch at once: two lookups, then one INSERT each into device_message, lab_order and lab_observation,
whatever the batch size. It writes what ``record_outcome`` would write for those messages, built by the same
functions (``raw.raw_columns``/``header_columns``/``dedup_key_for``, ``matching.orders_by_number``/
``patients_by_chip``, ``lab_results.order_columns``/``observation_rows``, ``raw.note_shared_control_ids``),
so the two paths cannot store a message differently. Everything else goes through ``ingest_raw``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy import JSON, Insert, bindparam, cast, func, insert, literal_column, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import DeviceOutcome, RawItem, RecordResult
from warehouse.ingest.devices.lab_results import observation_rows, order_columns, stored_accession
from warehouse.ingest.devices.matching import orders_by_number, patients_by_chip
from warehouse.ingest.devices.raw import (
    dedup_key_for,
    header_columns,
    note_shared_control_ids,
    raw_columns,
    utc_now,
)
from warehouse.ingest.devices.recording import ingest_raw
from warehouse.schema.clinical import LabObservation


def ingest_many(
    session: Session, practice_id: int, items: Sequence[RawItem], *, master_key: bytes | None = None
) -> list[RecordResult | Exception]:
    """``ingest_raw`` for many messages in the caller's transaction, one result (or the exception) per item.

    The common case (:func:`_ingest_common`) is written for the whole batch inside one SAVEPOINT. Everything
    else, and the whole batch if that SAVEPOINT fails, goes through ``ingest_raw`` one message at a time, each
    in its own SAVEPOINT so one bad message cannot take the others down. Either way a message's raw copy and
    its outcome are written in the same transaction; the caller's commit makes them visible together.
    """
    results: list[RecordResult | Exception | None] = [None] * len(items)
    common: dict[int, RecordResult] = {}
    if any(_common_candidate(item.outcome) for item in items):
        savepoint = session.begin_nested()
        try:
            common = _ingest_common(session, practice_id, items)
        except (DBAPIError, _Declined):  # e.g. a concurrent writer created the same accession: one by one
            savepoint.rollback()
            common = {}
        else:
            savepoint.commit()
    for index, record in common.items():
        results[index] = record
    for index, item in enumerate(items):
        if results[index] is not None:
            continue
        savepoint = session.begin_nested()
        try:
            results[index] = ingest_raw(session, practice_id, item.raw, item.source, item.filename,
                                        item.outcome, master_key=master_key)  # fmt: skip
        except Exception as exc:  # this message only; the caller reports it (an MLLP sender gets AE)
            savepoint.rollback()
            results[index] = exc
        else:
            savepoint.commit()
    return [r for r in results if r is not None]


# Parameters are named after the columns of raw_columns + header_columns (and order_columns): one array each.
_BATCH_MESSAGES = text(
    """
    INSERT INTO device_message (practice_id, source, filename, detected_format, sender, control_id, dedup_key,
                                raw, sha256, size_bytes, status, patient_id, observation_count, processed_at)
    SELECT :practice_id, m.source, m.filename, m.detected_format, m.sender, m.control_id, m.dedup_key, m.raw,
           m.sha256, m.size_bytes, 'ingested', m.patient_id, m.observation_count, clock_timestamp()
    FROM unnest(CAST(:source AS text[]), CAST(:filename AS text[]), CAST(:detected_format AS text[]),
                CAST(:sender AS text[]), CAST(:control_id AS text[]), CAST(:dedup_key AS text[]),
                CAST(:raw AS bytea[]), CAST(:sha256 AS text[]), CAST(:size_bytes AS bigint[]),
                CAST(:patient_id AS bigint[]), CAST(:observation_count AS int[]))
         AS m(source, filename, detected_format, sender, control_id, dedup_key, raw, sha256, size_bytes,
              patient_id, observation_count)
    ON CONFLICT (practice_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
    RETURNING id, dedup_key
    """
)
_BATCH_ORDERS = text(
    """
    INSERT INTO lab_order (practice_id, patient_id, accession_number, test_code, test_name, lab, status)
    SELECT :practice_id, o.patient_id, o.accession_number, o.test_code, o.test_name, o.lab, o.status
    FROM unnest(CAST(:patient_id AS bigint[]), CAST(:accession_number AS text[]), CAST(:test_code AS text[]),
                CAST(:test_name AS text[]), CAST(:lab AS text[]), CAST(:status AS text[]))
         AS o(patient_id, accession_number, test_code, test_name, lab, status)
    ON CONFLICT (practice_id, accession_number) DO NOTHING
    RETURNING id, accession_number
    """
)


@lru_cache(maxsize=1)
def _observations_from_json(columns: tuple[str, ...]) -> Insert:
    """INSERT … SELECT of exactly ``columns`` (the keys of ``observation_rows``) from a JSON array of rows.

    The batch's observations travel as one JSON document (one json.dumps, in C), read with the table's own
    row type. As fifteen array parameters they cost more client CPU than the rest of the batch: psycopg dumps
    arrays element by element in Python (~0.5 ms per 20-result panel). COPY would be cheaper still but
    PostgreSQL refuses COPY FROM into a table with row-level security."""
    rows = func.json_populate_recordset(
        literal_column("NULL::lab_observation"), cast(bindparam("rows"), JSON)
    ).table_valued(*columns)
    return insert(LabObservation.__table__).from_select(columns, select(*(rows.c[c] for c in columns)))


def _json_scalar(value: object) -> str:
    # Decimal and datetime as the text PostgreSQL's numeric and timestamptz inputs read back exactly.
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


def _arrays(rows: list[dict[str, object]]) -> dict[str, list[object]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


class _Declined(Exception):
    """The common path cannot decide this batch the way the one-by-one path would (a race): redo it."""


def _common_candidate(outcome: DeviceOutcome) -> bool:
    return (
        outcome.inbox_reason is None
        and outcome.imaging is None
        and bool(outcome.results)
        and dedup_key_for(outcome) is not None
        and all(
            r.patient.microchip and all(o.accession for o in r.orders if o.observations)
            for r in outcome.results
        )
        and any(o.observations for r in outcome.results for o in r.orders)
        # naive times are left to the row-by-row INSERT, which lets PostgreSQL apply the session time zone
        and all(
            _aware(obs.observed_at or o.observed_at or r.sent_at)
            for r in outcome.results
            for o in r.orders
            for obs in o.observations
        )
    )


def _aware(value: dt.datetime | None) -> bool:
    return value is None or value.tzinfo is not None


def _ingest_common(session: Session, practice_id: int, items: Sequence[RawItem]) -> dict[int, RecordResult]:
    """Write the batch's common-case messages in a handful of statements; return {item index: result}.

    A message qualifies when automatic matching would find its patient by microchip alone and every order
    number it names is new - no order, earlier result or other message of the batch to reconcile with - so
    ``record_outcome`` would create its orders and insert its observations, nothing more. Every other case is
    left to the caller (``ingest_raw``), which decides it in full.
    """
    candidates = [i for i, item in enumerate(items) if _common_candidate(item.outcome)]
    if not candidates:
        return {}
    numbers = sorted(
        {n for i in candidates for r in items[i].outcome.results for o in r.orders for n in o.numbers}
    )
    chips = sorted(
        {r.patient.microchip for i in candidates for r in items[i].outcome.results if r.patient.microchip}
    )
    known_orders = {row.accession_number for row in orders_by_number(session, practice_id, numbers)}
    chip_patients = patients_by_chip(session, practice_id, chips)

    chosen: list[tuple[int, list[int], int]] = []  # (item index, patient per result, observation count)
    claimed_numbers: set[str] = set()
    claimed_keys: set[str | None] = set()
    candidate_set = set(candidates)
    for i, item in enumerate(items):
        # Batch order is arrival order: a message naming an order an earlier one of the batch may create (by
        # accession, as lab_results does) or sharing its dedup key is left to the one-by-one path, which runs
        # after this and sees the earlier one.
        outcome = item.outcome
        key = dedup_key_for(outcome)
        mine = {n for r in outcome.results for o in r.orders for n in o.numbers}
        patients = [chip_patients.get(r.patient.microchip or "") for r in outcome.results]
        taken = (key is not None and key in claimed_keys) or bool(mine & (known_orders | claimed_numbers))
        claimed_keys.add(key)
        claimed_numbers |= {o.accession for r in outcome.results for o in r.orders if o.accession}
        if i not in candidate_set or taken or None in patients:
            continue
        count = sum(len(o.observations) for r in outcome.results for o in r.orders)
        chosen.append((i, [p for p in patients if p is not None], count))
    if not chosen:
        return {}

    message_rows = [
        {
            **raw_columns(items[i].raw, items[i].source, items[i].filename),
            **header_columns(items[i].outcome),
            "dedup_key": dedup_key_for(items[i].outcome),
            "patient_id": patients[0],
            "observation_count": count,
        }
        for i, patients, count in chosen
    ]
    stored = session.execute(_BATCH_MESSAGES, {"practice_id": practice_id, **_arrays(message_rows)}).all()
    message_ids = {row.dedup_key: row.id for row in stored}
    # A message whose key another message already holds is left to ingest_raw (stored as a duplicate).
    chosen = [c for c in chosen if dedup_key_for(items[c[0]].outcome) in message_ids]
    if not chosen:
        return {}
    notes = note_shared_control_ids(session, practice_id, list(message_ids.values()))

    orders = [
        (patient_id, result, order)
        for i, patients, _ in chosen
        for patient_id, result in zip(patients, items[i].outcome.results, strict=True)
        for order in result.orders
        if order.observations
    ]
    order_rows = [{"patient_id": p, **order_columns(r, o)} for p, r, o in orders]
    created = session.execute(_BATCH_ORDERS, {"practice_id": practice_id, **_arrays(order_rows)}).all()
    order_ids = {row.accession_number: row.id for row in created}
    if len(order_ids) != len(orders):
        raise _Declined("a concurrent transaction created one of these lab orders")

    rows: list[dict[str, object]] = []
    now = utc_now()
    for i, patients, _ in chosen:
        message_id = message_ids[dedup_key_for(items[i].outcome)]
        for patient_id, result in zip(patients, items[i].outcome.results, strict=True):
            for order in result.orders:
                lab_order_id = order_ids.get(stored_accession(order))
                rows += observation_rows(
                    practice_id, patient_id, lab_order_id, message_id, result, order, now
                )
    session.execute(
        _observations_from_json(tuple(rows[0])),
        {"rows": json.dumps(rows, default=_json_scalar, separators=(",", ":"))},
    )
    results: dict[int, RecordResult] = {}
    for i, patients, count in chosen:
        message_id = message_ids[dedup_key_for(items[i].outcome)]
        results[i] = RecordResult(message_id, "ingested", count, patients[0],
                                  same_control_id_as=notes.get(message_id))  # fmt: skip
    return results
