"""MLLP over real sockets: concurrency, split frames, disconnects, garbage, limits, timeouts."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import hl7
import pytest

from connectors.devices.mllp import (
    END_BLOCK,
    START_BLOCK,
    BackgroundMLLPServer,
    MLLPClient,
    MLLPConfig,
    hl7_handler,
    start_in_background,
)
from tests.connectors.devices.devices_support import ack_fields, wait_for

MESSAGE = (
    "MSH|^~\\&|VetScan|Lab|VetConnect|P12|20240314101500||ORU^R01|{cid}|P|2.5.1\r"
    "PID|1||985112000123456^^^ISO^MC||de Vries^Bello\r"
    "OBR|1|PL-1|ACC-1|CBC^CBC^L\r"
    "OBX|1|NM|WBC^White blood cells^L||18.2|10*9/L|6.0-17.0|H|||F"
)


class Recorder:
    def __init__(self) -> None:
        self.stored: list[tuple[bytes, str, object]] = []
        self.incomplete: list[tuple[bytes, str]] = []
        self.garbage: list[tuple[bytes, str]] = []
        self._lock = threading.Lock()

    def store(self, raw: bytes, peer: str, outcome: object) -> None:
        with self._lock:
            self.stored.append((raw, peer, outcome))

    async def on_incomplete(self, raw: bytes, peer: str) -> None:
        with self._lock:
            self.incomplete.append((raw, peer))

    def on_garbage(self, raw: bytes, peer: str) -> None:
        with self._lock:
            self.garbage.append((raw, peer))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder) -> Iterator[BackgroundMLLPServer]:
    bg = start_in_background(
        hl7_handler(recorder.store),
        on_incomplete=recorder.on_incomplete,
        on_garbage=recorder.on_garbage,
        config=MLLPConfig(max_garbage_bytes=1024, max_message_bytes=64 * 1024, idle_timeout=10),
    )
    yield bg
    bg.stop()


def test_many_concurrent_senders(server: BackgroundMLLPServer, recorder: Recorder) -> None:
    senders, per_sender = 12, 5

    async def sender(n: int) -> list[tuple[str, str, str]]:
        async with await MLLPClient.connect(server.host, server.port) as client:
            return [
                ack_fields(await client.send(MESSAGE.format(cid=f"S{n}-M{m}"))) for m in range(per_sender)
            ]

    async def main() -> list[list[tuple[str, str, str]]]:
        return await asyncio.gather(*(sender(n) for n in range(senders)))

    results = asyncio.run(main())
    for n, acks in enumerate(results):
        assert [a[:2] for a in acks] == [("AA", f"S{n}-M{m}") for m in range(per_sender)]
    assert len(recorder.stored) == senders * per_sender
    assert len({peer for _, peer, _ in recorder.stored}) == senders
    assert server.server.stats.messages == senders * per_sender


def test_frame_split_across_many_writes(server: BackgroundMLLPServer, recorder: Recorder) -> None:
    frame = START_BLOCK + MESSAGE.format(cid="SPLIT-1").encode() + END_BLOCK
    cuts = [1, 5, 60, 61, 200, len(frame) - 1]  # ... including between FS and CR

    async def main() -> bytes:
        async with await MLLPClient.connect(server.host, server.port) as client:
            last = 0
            for cut in [*cuts, len(frame)]:
                await client.send_raw(frame[last:cut])
                await asyncio.sleep(0.02)
                last = cut
            return await client.read_ack()

    assert ack_fields(asyncio.run(main()))[:2] == ("AA", "SPLIT-1")
    assert recorder.stored[0][0] == MESSAGE.format(cid="SPLIT-1").encode()


def test_disconnect_mid_message_hands_bytes_to_on_incomplete(
    server: BackgroundMLLPServer, recorder: Recorder
) -> None:
    half = MESSAGE.format(cid="HALF-1").encode()[:90]

    async def main() -> None:
        client = await MLLPClient.connect(server.host, server.port)
        await client.send_raw(START_BLOCK + half)
        await asyncio.sleep(0.05)
        await client.close()

    asyncio.run(main())
    wait_for(lambda: bool(recorder.incomplete))
    assert recorder.incomplete[0][0] == half
    assert recorder.stored == []  # not processed, not acknowledged
    # ... and the listener is still fine
    ack = asyncio.run(_send_one(server, MESSAGE.format(cid="AFTER-1")))
    assert ack_fields(ack)[:2] == ("AA", "AFTER-1")


async def _send_one(server: BackgroundMLLPServer, message: str) -> bytes:
    async with await MLLPClient.connect(server.host, server.port) as client:
        return await client.send(message)


def test_unframed_garbage_is_nacked_reported_and_bounded(
    server: BackgroundMLLPServer, recorder: Recorder
) -> None:
    async def main() -> tuple[bytes, list[bytes], bytes]:
        async with await MLLPClient.connect(server.host, server.port) as client:
            await client.send_raw(b"MSH|^~\\&|unframed sender\r")
            await client.send_raw(START_BLOCK)  # a frame start flushes the garbage before it
            first = await client.read_ack()
            await client.send_raw(b"x" * 10 + END_BLOCK)  # finishes that frame: a non-HL7 payload
            not_hl7 = await client.read_ack()
            await client.send_raw(b"\x00\xff" * 2500)  # 5000 bytes > 1024 garbage limit
            bounded = [await client.read_ack() for _ in range(4)]  # reported as each 1024 bytes fill up
            await client.send_raw(START_BLOCK + MESSAGE.format(cid="AFTER-GARBAGE").encode() + END_BLOCK)
            rest = await client.read_ack()  # the last 904 bytes, flushed by the frame start
            ok = await client.read_ack()
            return first, [not_hl7, *bounded, rest], ok

    first, nacks, ok = asyncio.run(main())
    code, _, text = ack_fields(first)
    assert code == "AR"
    assert "outside an MLLP frame" in text
    assert all(ack_fields(n)[0] == "AR" for n in nacks)
    assert ack_fields(ok)[:2] == ("AA", "AFTER-GARBAGE")
    assert recorder.garbage[0][0] == b"MSH|^~\\&|unframed sender\r"
    assert all(len(g) <= 1024 for g, _ in recorder.garbage)
    assert sum(len(g) for g, _ in recorder.garbage[1:]) == 5000


def test_oversize_frame_is_cut_reported_and_nacked(recorder: Recorder) -> None:
    with start_in_background(
        hl7_handler(recorder.store),
        on_incomplete=recorder.on_incomplete,
        config=MLLPConfig(max_message_bytes=1000),
    ) as bg:
        big = MESSAGE.format(cid="BIG").encode() + b"\rNTE|1||" + b"y" * 5000
        ack = asyncio.run(_send_one(bg, big.decode()))
        code, _, text = ack_fields(ack)
        assert code == "AR"
        assert "exceeds 1000" in text
        assert recorder.incomplete[0][0] == big[:1000]
        assert recorder.stored == []
        assert ack_fields(asyncio.run(_send_one(bg, MESSAGE.format(cid="SMALL"))))[:2] == ("AA", "SMALL")


def test_idle_connection_is_closed() -> None:
    async def noop(raw: bytes, peer: str) -> bytes:
        return b""

    with start_in_background(noop, config=MLLPConfig(idle_timeout=0.3)) as bg:

        async def main() -> float:
            reader, writer = await asyncio.open_connection(bg.host, bg.port)
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""
            writer.close()
            return time.monotonic() - started

        assert 0.2 < asyncio.run(main()) < 3
        wait_for(lambda: bg.server.stats.idle_timeouts == 1)


def test_handler_failure_answers_ae_and_keeps_serving() -> None:
    calls: list[bytes] = []

    async def flaky(raw: bytes, peer: str) -> bytes:
        calls.append(raw)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return b"MSH|^~\\&|X||||20240101||ACK|1|P|2.5.1\rMSA|AA|OK"

    with start_in_background(flaky) as bg:
        first = asyncio.run(_send_one(bg, MESSAGE.format(cid="FAIL-1")))
        assert ack_fields(first)[:2] == ("AE", "FAIL-1")
        assert str(hl7.parse(first.decode()).segment("ERR")(3)(1)(1)) == "207"
        second = asyncio.run(_send_one(bg, MESSAGE.format(cid="OK-2")))
        assert ack_fields(second)[0] == "AA"
        assert bg.server.stats.handler_errors == 1
