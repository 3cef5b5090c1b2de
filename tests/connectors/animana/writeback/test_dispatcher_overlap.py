"""The dispatcher claims the next batch while a full batch's writes are in flight (a transaction of its own): per-
record order still holds, and a parent the batch in flight creates is known to the next batch's child."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from connectors.animana.writeback.dispatcher import push
from connectors.animana.writeback.sender import Sender
from tests.animana_sync_support import MASTER_KEY, SyncWorld
from tests.connectors.animana.writeback.test_writeback_dispatcher import QUICK
from tests.connectors.animana.writeback.writeback_support import (
    as_app,
    booked_appointment,
    new_patient_with_appointment,
    outbox,
)


def test_successive_edits_of_two_records_arrive_in_order_when_every_batch_is_claimed_during_the_last(
    hybrid: SyncWorld,
):
    practice = hybrid.practices[0]
    first, first_aid = booked_appointment(hybrid, practice)
    with as_app(hybrid, practice) as session:
        second, second_aid = session.execute(
            text(
                "SELECT id, animana_id FROM appointment WHERE status = 'booked' AND animana_id IS NOT NULL "
                "AND id <> :a ORDER BY id LIMIT 1"
            ),
            {"a": first},
        ).one()
        for n in range(1, 4):  # interleaved: entries first-1, second-1, first-2, second-2, …
            for local_id in (first, second):
                session.execute(
                    text("UPDATE appointment SET reason = :r WHERE id = :a"),
                    {"r": f"reden {local_id}-{n}", "a": local_id},
                )
    sent: list[str] = []
    with hybrid.client() as client:
        report = push(
            hybrid.db.app_engine, client, practice, master_key=MASTER_KEY, batch_size=2,
            sender=Sender(client, backoff=QUICK), after_send=lambda entry: sent.append(entry.row["reason"]),
        )  # fmt: skip
    # Each batch is full (one entry of each record), so the next was claimed while it was sent, and found nothing:
    # the later edits wait behind the ones in flight, and are claimed once those are committed.
    assert (report.sent, report.batches, report.waiting) == (6, 3, 0)
    for local_id in (first, second):
        assert [r for r in sent if r.startswith(f"reden {local_id}-")] == [
            f"reden {local_id}-{n}" for n in (1, 2, 3)
        ]
    with hybrid.client() as client:
        assert client.get(practice.animana_id, "agenda", first_aid).reason == f"reden {first}-3"
        assert client.get(practice.animana_id, "agenda", int(second_aid)).reason == f"reden {second}-3"
    assert [e["state"] for e in outbox(hybrid, practice)] == ["done"] * 6


def test_a_child_claimed_while_its_parent_is_being_created_is_sent_with_the_parent_s_new_animana_id(
    hybrid: SyncWorld,
):
    practice = hybrid.practices[0]
    new_patient_with_appointment(hybrid, practice, "Kind-Later", "cat", "Na de patiënt")
    # A slow Animana: the patient's create takes long enough for the next claim to be made meanwhile.
    hybrid.sim.configure(faults=1.0, fault_kinds=["slow"], slow_seconds=1.0)
    with hybrid.client() as client:
        # One entry a batch: the appointment's batch is claimed, and its patient read (not yet in Animana), while
        # the patient's create is in flight.
        report = push(
            hybrid.db.app_engine, client, practice, master_key=MASTER_KEY, batch_size=1,
            sender=Sender(client, backoff=QUICK),
        )  # fmt: skip
    assert (report.sent, report.waiting, report.batches) == (2, 0, 2)  # it did not wait for its patient
    hybrid.sim.configure(faults=0.0)
    with as_app(hybrid, practice) as session:
        patient_aid, appointment_aid = session.execute(
            text(
                "SELECT p.animana_id, a.animana_id FROM appointment a JOIN patient p ON p.id = a.patient_id "
                "WHERE a.reason = 'Na de patiënt'"
            )
        ).one()
    with hybrid.client() as client:
        booked = client.get(practice.animana_id, "agenda", int(appointment_aid))
    assert str(booked.animal_id) == patient_aid


class _Crash(Exception):
    pass


def test_a_crash_while_a_batch_is_sent_still_records_the_batch_before_it(hybrid: SyncWorld):
    """The batch before is recorded on another thread while the next one is sent: a crash in that next batch
    leaves the one before done (Animana acknowledged it), and the crashed one pending again, never half."""
    practice = hybrid.practices[0]
    with as_app(hybrid, practice) as session:
        ids = session.execute(
            text("SELECT id FROM appointment WHERE status = 'booked' AND animana_id IS NOT NULL ORDER BY id LIMIT 3")
        ).scalars().all()  # fmt: skip
        assert len(ids) == 3
        for local_id in ids:
            session.execute(
                text("UPDATE appointment SET reason = :r WHERE id = :a"),
                {"r": f"reden {local_id}", "a": local_id},
            )
    sent: list[int] = []

    def crash_on_the_second_batch(entry) -> None:  # noqa: ANN001
        sent.append(entry.row_id)
        if len(sent) == 3:
            raise _Crash

    with hybrid.client() as client, pytest.raises(_Crash):
        push(
            hybrid.db.app_engine, client, practice, master_key=MASTER_KEY, batch_size=2, concurrency=1,
            sender=Sender(client, backoff=QUICK), after_send=crash_on_the_second_batch,
        )  # fmt: skip
    states = {e["row_id"]: (e["state"], e["attempts"]) for e in outbox(hybrid, practice)}
    assert [states[i] for i in sent[:2]] == [("done", 1)] * 2
    assert states[sent[2]] == ("pending", 0)  # sent, its answer never recorded: sent again with its key
    with as_app(hybrid, practice) as session:
        handed = set(
            session.execute(
                text(
                    "SELECT o.row_id FROM writeback_handed h "
                    "JOIN writeback_outbox o ON o.practice_id = h.practice_id AND o.id = h.entry_id"
                )
            ).scalars()
        )
    # Its hand-over was committed before it went out, so the settlement knows it may have arrived; the
    # acknowledged ones' were removed with their answer.
    assert handed == {sent[2]}
    with as_app(hybrid, practice) as session:
        pending = dict(
            session.execute(
                text("SELECT id, writeback_pending FROM appointment WHERE id = ANY(:ids)"), {"ids": list(ids)}
            ).all()
        )
    assert [pending[i] for i in sent[:2]] == [False, False]
