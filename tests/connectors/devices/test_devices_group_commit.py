"""The MLLP listener's group commit over real sockets and PostgreSQL: what one batch (one transaction) does
with a bad message, a duplicate, and a commit that never happens.

To put several messages into one batch on purpose, a test holds the practice's audit-chain head locked (as a
concurrent audited writer would): the first batch blocks at its first audited INSERT, the next messages queue
up behind it, and releasing the lock lets the first batch commit and the queued ones form the next batch.
``DeviceStore.batches`` / ``batched_messages`` (counted after each commit) show how the messages were grouped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from connectors.devices.ingest import DeviceStore
from connectors.devices.mllp import (
    END_BLOCK,
    START_BLOCK,
    BackgroundMLLPServer,
    MLLPClient,
    hl7_handler,
    start_in_background,
)
from tests.conftest import MASTER_KEY
from tests.connectors.devices.devices_support import (
    Clinic,
    make_clinic,
    messages,
    msa,
    observations,
    vet_oru,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("devices-db")


@pytest.fixture
def listener(fresh_db) -> Iterator[tuple[BackgroundMLLPServer, DeviceStore, Clinic]]:
    clinic = make_clinic(fresh_db)
    store = DeviceStore(fresh_db.app_engine, clinic.practice_id, MASTER_KEY)
    server = start_in_background(hl7_handler(store.store))
    yield server, store, clinic
    server.stop()


@contextlib.contextmanager
def audit_chain_locked(db, clinic: Clinic) -> Iterator[None]:
    """Hold the practice's audit-chain head row lock until the block ends (then roll back)."""
    with db.admin_engine.connect() as conn:
        conn.execute(
            text("SELECT 1 FROM audit_chain_head WHERE practice_id = :p FOR UPDATE"),
            {"p": clinic.practice_id},
        )
        yield


def lock_waiters(db) -> int:
    with db.admin_engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


async def send_unacked(server: BackgroundMLLPServer, payload: bytes) -> MLLPClient:
    client = await MLLPClient.connect(server.host, server.port)
    await client.send_raw(START_BLOCK + payload + END_BLOCK)
    return client


async def queue_one_batch(
    db, server: BackgroundMLLPServer, store: DeviceStore, clinic: Clinic, payloads: list[bytes]
) -> tuple[bytes, list[bytes]]:
    """Send a plug message, block its batch on the audit lock, queue ``payloads`` (in this order, each on its
    own connection) behind it, release: the ACK of the plug and the ACKs of the payloads' batch."""
    with audit_chain_locked(db, clinic):
        plug = await send_unacked(server, vet_oru("PLUG", accession="ACC-PLUG"))
        wait_for(lambda: lock_waiters(db) == 1)
        clients = []
        for n, payload in enumerate(payloads, start=1):
            clients.append(await send_unacked(server, payload))
            wait_for(lambda n=n: store.queued == n)  # noqa: B023 - waited for right here
    plug_ack = await plug.read_ack()
    acks = [await client.read_ack() for client in clients]
    for client in (plug, *clients):
        await client.close()
    return plug_ack, acks


def test_a_bad_message_in_the_middle_of_a_batch_is_inboxed_and_the_others_are_stored(fresh_db, listener):
    server, store, clinic = listener
    unreadable = vet_oru("BAD-1", accession="ACC-BAD").replace(b"||0.45|", b"||zero point four|")
    unmatched = vet_oru("NOMATCH-1", chip="999999999999999", owner="Nobody^Known", accession="ACC-NM")
    batch = [
        vet_oru("GOOD-1", accession="ACC-G1"),
        unreadable,
        unmatched,
        vet_oru("GOOD-2", accession="ACC-G2"),
    ]

    plug_ack, acks = asyncio.run(queue_one_batch(fresh_db, server, store, clinic, batch))

    assert msa(plug_ack) == ("AA", "PLUG")
    assert [msa(a) for a in acks] == [
        ("AA", "GOOD-1"),
        ("AE", "BAD-1"),
        ("AA", "NOMATCH-1"),
        ("AA", "GOOD-2"),
    ]
    assert b"OBX-5" in acks[1] and b"zero point four" in acks[1]  # the NACK says what is wrong, and where
    stored = {bytes(m.raw): m for m in messages(fresh_db, clinic)}
    assert [(stored[raw].status, stored[raw].inbox_reason) for raw in batch] == [
        ("ingested", None),
        ("inbox", "hl7_invalid"),
        ("inbox", "no_patient_match"),
        ("ingested", None),
    ]
    assert "NM value 'zero point four' is not a number" in stored[unreadable].inbox_detail
    assert (store.batches, store.batched_messages) == (2, 5)
    assert len(observations(fresh_db, clinic)) == 2 * 3  # PLUG, GOOD-1, GOOD-2


def test_duplicates_within_one_batch_are_stored_once(fresh_db, listener):
    server, store, clinic = listener
    twin = vet_oru("TWIN-1", accession="ACC-T1", obx_count=5)
    batch = [twin, vet_oru("OTHER-1", accession="ACC-O1"), twin, twin]

    _, acks = asyncio.run(queue_one_batch(fresh_db, server, store, clinic, batch))

    assert [msa(a) for a in acks] == [("AA", "TWIN-1"), ("AA", "OTHER-1"), ("AA", "TWIN-1"), ("AA", "TWIN-1")]
    twins = [m for m in messages(fresh_db, clinic) if m.control_id == "TWIN-1"]
    assert sorted(m.status for m in twins) == ["duplicate", "duplicate", "ingested"]
    (original,) = [m for m in twins if m.status == "ingested"]
    assert {m.duplicate_of for m in twins if m.status == "duplicate"} == {original.id}
    assert len(observations(fresh_db, clinic, device_message_id=original.id)) == 5
    assert len(observations(fresh_db, clinic)) == 5 + 2 + 2  # twin once, OTHER-1, PLUG
    assert (store.batches, store.batched_messages) == (2, 5)  # the plug's, and one for all four

    # and across batches: the same message sent again later is a duplicate too
    async def again() -> bytes:
        async with await MLLPClient.connect(server.host, server.port) as client:
            return await client.send(twin)

    assert msa(asyncio.run(again())) == ("AA", "TWIN-1")
    assert len(observations(fresh_db, clinic, device_message_id=original.id)) == 5
    assert [m.status for m in messages(fresh_db, clinic) if m.control_id == "TWIN-1"].count("duplicate") == 3


def test_no_ack_goes_out_before_the_commit_and_no_aa_when_the_commit_fails(fresh_db, listener):
    server, store, clinic = listener

    async def main() -> None:
        with audit_chain_locked(fresh_db, clinic):
            client = await send_unacked(server, vet_oru("HELD-1", accession="ACC-H1"))
            wait_for(lambda: lock_waiters(fresh_db) == 1)
            # stored up to the audited INSERT, not committed: no ACK, and nothing visible
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.reader.readuntil(END_BLOCK), 0.5)
            assert messages(fresh_db, clinic) == []
            # the database path dies before the commit (its backend is terminated while it waits)
            with fresh_db.admin_engine.connect() as conn:
                killed = conn.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            assert killed == 1
            ack = await client.read_ack()
            assert msa(ack)[0] == "AE"  # never AA: the sender keeps the message and resends it
            assert messages(fresh_db, clinic) == []
        ack = await client.send(vet_oru("HELD-1", accession="ACC-H1"))  # the resend
        assert msa(ack) == ("AA", "HELD-1")
        await client.close()

    asyncio.run(main())
    assert [(m.control_id, m.status) for m in messages(fresh_db, clinic)] == [("HELD-1", "ingested")]
    assert len(observations(fresh_db, clinic)) == 2
