"""MLLP end to end into PostgreSQL over real sockets: an AA means the raw message and its outcome are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from connectors.devices.ingest import DeviceStore
from connectors.devices.mllp import (
    END_BLOCK,
    START_BLOCK,
    BackgroundMLLPServer,
    MLLPClient,
    MLLPConfig,
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
from warehouse.kernel.db import make_engine

pytestmark = pytest.mark.xdist_group("devices-db")


@pytest.fixture
def feed(fresh_db) -> Iterator[tuple[BackgroundMLLPServer, Clinic]]:
    clinic = make_clinic(fresh_db)
    store = DeviceStore(fresh_db.app_engine, clinic.practice_id, MASTER_KEY)
    server = start_in_background(
        hl7_handler(store.store),
        on_incomplete=store.on_incomplete,
        on_garbage=store.on_garbage,
        config=MLLPConfig(idle_timeout=10),
    )
    yield server, clinic
    server.stop()


async def _send(server: BackgroundMLLPServer, payloads: list[bytes]) -> list[bytes]:
    async with await MLLPClient.connect(server.host, server.port) as client:
        return [await client.send(p) for p in payloads]


def test_concurrent_senders_all_get_aa_and_every_message_is_loaded(fresh_db, feed):
    server, clinic = feed

    async def sender(n: int) -> list[bytes]:
        return await _send(server, [vet_oru(f"S{n}-{i}", accession=f"A{n}-{i}") for i in range(8)])

    async def main() -> list[list[bytes]]:
        return await asyncio.gather(*(sender(n) for n in range(6)))

    acks = [ack for per_sender in asyncio.run(main()) for ack in per_sender]
    assert [msa(a)[0] for a in acks] == ["AA"] * 48
    assert sorted(msa(a)[1] for a in acks) == sorted(f"S{n}-{i}" for n in range(6) for i in range(8))
    stored = messages(fresh_db, clinic)
    assert len(stored) == 48 and {m.status for m in stored} == {"ingested"}
    assert all(m.source.startswith("mllp:127.0.0.1:") for m in stored)
    assert len(observations(fresh_db, clinic)) == 96


def test_ack_is_sent_after_commit(fresh_db, feed):
    server, clinic = feed

    async def main() -> None:
        async with await MLLPClient.connect(server.host, server.port) as client:
            for i in range(5):
                ack = await client.send(vet_oru(f"V-{i}", accession=f"V-{i}"))
                assert msa(ack) == ("AA", f"V-{i}")
                # no waiting: the rows must already be there
                assert len(messages(fresh_db, clinic)) == i + 1
                assert len(observations(fresh_db, clinic)) == 2 * (i + 1)

    asyncio.run(main())


def test_disconnect_mid_message_keeps_the_partial_bytes_in_the_inbox(fresh_db, feed):
    server, clinic = feed
    half = vet_oru("HALF-1")[:120]

    async def main() -> None:
        client = await MLLPClient.connect(server.host, server.port)
        await client.send_raw(START_BLOCK + half)
        await asyncio.sleep(0.05)
        await client.close()

    asyncio.run(main())
    wait_for(lambda: len(messages(fresh_db, clinic)) == 1)
    (msg,) = messages(fresh_db, clinic)
    assert bytes(msg.raw) == half
    assert (msg.status, msg.inbox_reason) == ("inbox", "mllp_incomplete")
    assert "ended mid-message after 120 bytes" in msg.inbox_detail
    assert observations(fresh_db, clinic) == []
    # the sender resends the whole message later: it loads normally (the partial had no dedup key)
    (ack,) = asyncio.run(_send(server, [vet_oru("HALF-1")]))
    assert msa(ack) == ("AA", "HALF-1")
    assert len(observations(fresh_db, clinic)) == 2


def test_garbage_is_nacked_and_stored_raw(fresh_db, feed):
    server, clinic = feed

    async def main() -> tuple[bytes, bytes, bytes]:
        async with await MLLPClient.connect(server.host, server.port) as client:
            await client.send_raw(b"hello, is this the lab?\r")
            await client.send_raw(START_BLOCK)
            unframed = await client.read_ack()
            await client.send_raw(b"\x00\x01 not hl7 at all" + END_BLOCK)
            framed_junk = await client.read_ack()
            ok = await client.send(vet_oru("OK-1"))
            return unframed, framed_junk, ok

    unframed, framed_junk, ok = asyncio.run(main())
    assert msa(unframed)[0] == "AR" and msa(framed_junk)[0] == "AR" and msa(ok) == ("AA", "OK-1")
    wait_for(lambda: len(messages(fresh_db, clinic)) == 3)
    by_raw = {bytes(m.raw): m for m in messages(fresh_db, clinic)}
    assert by_raw[b"hello, is this the lab?\r"].inbox_reason == "mllp_garbage"
    assert by_raw[b"\x00\x01 not hl7 at all"].inbox_reason == "unrecognised_format"
    assert by_raw[vet_oru("OK-1")].status == "ingested"


def test_two_concurrent_identical_messages_over_mllp_load_once(fresh_db, feed):
    server, clinic = feed
    raw = vet_oru("TWIN-1", obx_count=20)

    async def main() -> list[list[bytes]]:
        return await asyncio.gather(*(_send(server, [raw]) for _ in range(3)))

    acks = [a for per in asyncio.run(main()) for a in per]
    assert [msa(a) for a in acks] == [("AA", "TWIN-1")] * 3  # the sender must not resend a duplicate
    assert sorted(m.status for m in messages(fresh_db, clinic)) == ["duplicate", "duplicate", "ingested"]
    assert len(observations(fresh_db, clinic)) == 20


def test_garbage_arriving_while_the_database_is_down_is_spooled_and_stored_when_it_is_back(
    fresh_db, tmp_path
):
    clinic = make_clinic(fresh_db)
    spool = tmp_path / "spool"
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
    try:
        offline = DeviceStore(down, clinic.practice_id, MASTER_KEY, spool_dir=spool)
        asyncio.run(offline.on_garbage(b"\x00\x01 line noise", "10.0.0.9:4000"))
        asyncio.run(offline.on_incomplete(b"MSH|^~\\&|HM5|", "10.0.0.9:4001"))
    finally:
        down.dispose()
    assert len(list(spool.glob("*.spool"))) == 2 and messages(fresh_db, clinic) == []

    back = DeviceStore(fresh_db.app_engine, clinic.practice_id, MASTER_KEY, spool_dir=spool)
    assert back.replay_spool() == 2
    assert list(spool.iterdir()) == []
    stored = messages(fresh_db, clinic)
    assert [(m.status, m.inbox_reason, bytes(m.raw)) for m in stored] == [
        ("inbox", "mllp_garbage", b"\x00\x01 line noise"),
        ("inbox", "mllp_incomplete", b"MSH|^~\\&|HM5|"),
    ]
    assert "the database was unreachable" in stored[0].inbox_detail
