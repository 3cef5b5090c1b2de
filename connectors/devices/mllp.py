"""MLLP (Minimal Lower Layer Protocol) over TCP: an asyncio server for analysers and a small client.

Why our own instead of ``hl7.mllp``: that reader raises away the bytes of a frame that never ends and has no
bound on bytes outside a frame. Here nothing received is lost - a partial message goes to
``on_incomplete(raw, peer)`` when the sender disconnects or times out, bytes outside a frame go to
``on_garbage(raw, peer)`` (and get a NACK) - and memory per connection is bounded by
``MLLPConfig.max_message_bytes`` + ``max_garbage_bytes``.

Framing: ``<VT=0x0b> message <FS=0x1c><CR=0x0d>``. Messages on one connection are handled in order (a sender
waits for the ACK before the next message); connections are handled concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from connectors.devices.hl7_acks import build_ack, build_garbage_nack
from connectors.devices.model import FieldIssue

__all__ = [
    "END_BLOCK",
    "START_BLOCK",
    "BackgroundMLLPServer",
    "Frame",
    "Garbage",
    "Incomplete",
    "MLLPClient",
    "MLLPConfig",
    "MLLPFramer",
    "MLLPServer",
    "Oversize",
    "hl7_handler",
    "freeze_startup_heap",
    "serve_forever",
    "start_in_background",
]

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\r"
_FS = b"\x1c"

DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024  # a large HL7 with embedded PDF (ED) still fits
DEFAULT_MAX_GARBAGE = 64 * 1024

Handler = Callable[[bytes, str], Awaitable[bytes]]
Callback = Callable[[bytes, str], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class MLLPConfig:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    max_garbage_bytes: int = DEFAULT_MAX_GARBAGE
    idle_timeout: float = 300.0
    handler_timeout: float = 60.0
    read_size: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Garbage:
    data: bytes


@dataclass(frozen=True, slots=True)
class Oversize:
    """A frame longer than the limit: the first ``max_message_bytes`` are kept, the rest is skipped.

    Reported once when the limit is crossed (``prefix`` set, ``ended`` False) and once when its end arrives
    (``ended`` True, which is when the NACK goes out); a frame that arrives whole is one event with both.
    """

    prefix: bytes
    total: int
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A frame the sender abandoned by starting a new one (VT before FS CR)."""

    data: bytes


Event = Frame | Garbage | Oversize | Incomplete


@dataclass
class MLLPFramer:
    """Incremental MLLP de-framer: feed it whatever ``read()`` returned, get complete events back."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE
    max_garbage_bytes: int = DEFAULT_MAX_GARBAGE
    _buf: bytearray = field(default_factory=bytearray)
    _garbage: bytearray = field(default_factory=bytearray)
    _inside: bool = False
    _skipped: int = 0  # > 0 while discarding the tail of an oversize frame

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        # A loop, not recursion: one read can hold thousands of tiny frames.
        while data:
            if not self._inside:
                start = data.find(START_BLOCK)
                if start == -1:
                    self._add_garbage(data, events)
                    break
                self._add_garbage(data[:start], events)
                self._flush_garbage(events)
                self._inside, data = True, data[start + 1 :]
                continue
            if self._skipped:
                # Discarding an oversize frame: keep one byte so an FS split from its CR is still seen.
                self._buf = self._buf[-1:]
                search_from = 0
            else:
                search_from = max(len(self._buf) - 1, 0)
            self._buf += data
            data = b""
            end = self._buf.find(END_BLOCK, search_from)
            restart = self._buf.find(START_BLOCK, search_from)
            if restart != -1 and (end == -1 or restart < end):
                # A new VT before the end: the sender abandoned that message and started another one.
                events.append(
                    Oversize(b"", self._skipped, ended=True)
                    if self._skipped
                    else Incomplete(bytes(self._buf[:restart]))
                )
                data = bytes(self._buf[restart + 1 :])
                self._buf, self._skipped = bytearray(), 0
                continue
            if end == -1:
                if self._skipped:
                    self._skipped += len(self._buf) - 1
                elif len(self._buf) > self.max_message_bytes:
                    self._skipped = len(self._buf)
                    events.append(Oversize(bytes(self._buf[: self.max_message_bytes]), len(self._buf)))
                break
            if self._skipped:
                events.append(Oversize(b"", self._skipped + end, ended=True))
            elif end > self.max_message_bytes:
                events.append(Oversize(bytes(self._buf[: self.max_message_bytes]), end, ended=True))
            else:
                events.append(Frame(bytes(self._buf[:end])))
            data = bytes(self._buf[end + len(END_BLOCK) :])
            self._buf, self._inside, self._skipped = bytearray(), False, 0
        return events

    def _add_garbage(self, chunk: bytes, events: list[Event]) -> None:
        if not chunk:
            return
        room = self.max_garbage_bytes - len(self._garbage)
        self._garbage += chunk[:room]
        if len(self._garbage) >= self.max_garbage_bytes:
            self._flush_garbage(events)
            if len(chunk) > room:
                self._add_garbage(chunk[room:], events)

    def _flush_garbage(self, events: list[Event]) -> None:
        data = bytes(self._garbage)
        self._garbage.clear()
        if data.strip(b" \t\r\n\x00"):  # blank lines between frames are common and harmless
            events.append(Garbage(data))

    def close(self) -> tuple[bytes | None, bytes | None]:
        """End of stream: return (partial frame content, unreported garbage), each None if there is none."""
        partial = bytes(self._buf) if self._inside and not self._skipped else None
        garbage = bytes(self._garbage) if self._garbage.strip(b" \t\r\n\x00") else None
        self._buf, self._garbage, self._inside, self._skipped = bytearray(), bytearray(), False, 0
        return partial, garbage


async def _call(callback: Callback | None, raw: bytes, peer: str) -> None:
    if callback is None:
        return
    try:
        result = callback(raw, peer)
        if inspect.isawaitable(result):
            await result
    except Exception:  # a failing callback must not take the listener down; the log has the trace
        log.exception("MLLP callback %s failed for %s", getattr(callback, "__name__", callback), peer)


@dataclass
class MLLPStats:
    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    incomplete: int = 0
    garbage: int = 0
    oversize: int = 0
    idle_timeouts: int = 0
    handler_errors: int = 0


class MLLPServer:
    """Accepts MLLP connections and calls ``handler(raw, peer) -> ack`` for each framed message."""

    def __init__(
        self,
        handler: Handler,
        *,
        on_incomplete: Callback | None = None,
        on_garbage: Callback | None = None,
        config: MLLPConfig | None = None,
    ) -> None:
        self.handler = handler
        self.on_incomplete = on_incomplete
        self.on_garbage = on_garbage
        self.config = config or MLLPConfig()
        self.stats = MLLPStats()
        self._server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._connection, host, port, limit=self.config.read_size)
        sockname = self._server.sockets[0].getsockname()
        log.info("MLLP listening on %s:%s", sockname[0], sockname[1])
        return sockname[0], sockname[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            raise RuntimeError("call start() first")
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = writer.get_extra_info("peername")
        peer = f"{info[0]}:{info[1]}" if isinstance(info, tuple) else str(info)
        framer = MLLPFramer(self.config.max_message_bytes, self.config.max_garbage_bytes)
        self.stats.connections += 1
        self.stats.open_connections += 1
        try:
            while True:
                try:
                    data = await asyncio.wait_for(
                        reader.read(self.config.read_size), self.config.idle_timeout
                    )
                except TimeoutError:
                    self.stats.idle_timeouts += 1
                    log.info("MLLP %s idle for %.0f s; closing", peer, self.config.idle_timeout)
                    break
                if not data:
                    break
                for event in framer.feed(data):
                    await self._event(event, peer, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("MLLP %s dropped: %s", peer, exc)
        finally:
            self.stats.open_connections -= 1
            partial, garbage = framer.close()
            if partial is not None:
                self.stats.incomplete += 1
                log.warning(
                    "MLLP %s closed mid-message; %d bytes handed to on_incomplete", peer, len(partial)
                )
                await _call(self.on_incomplete, partial, peer)
            if garbage is not None:
                self.stats.garbage += 1
                await _call(self.on_garbage, garbage, peer)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=2)

    async def _event(self, event: Event, peer: str, writer: asyncio.StreamWriter) -> None:
        if isinstance(event, Frame):
            self.stats.messages += 1
            try:
                ack = await asyncio.wait_for(self.handler(event.payload, peer), self.config.handler_timeout)
            except Exception as exc:  # handler bug or timeout: the sender gets AE and may resend; we go on
                self.stats.handler_errors += 1
                log.exception("MLLP handler failed for a message from %s", peer)
                issue = FieldIssue("MSH", 1, f"receiver error: {type(exc).__name__}")
                ack = build_ack(
                    event.payload, "AE", "receiver error", [issue], error_code="internal"
                ).encode()
        elif isinstance(event, Incomplete):
            self.stats.incomplete += 1
            await _call(self.on_incomplete, event.data, peer)
            return  # not a message: nothing to acknowledge
        elif isinstance(event, Garbage):
            self.stats.garbage += 1
            await _call(self.on_garbage, event.data, peer)
            ack = build_garbage_nack(
                event.data, f"{len(event.data)} bytes outside an MLLP frame (expected 0x0B ... 0x1C 0x0D)"
            ).encode()
        else:
            if event.prefix:
                self.stats.oversize += 1
                await _call(self.on_incomplete, event.prefix, peer)
            if not event.ended:
                return  # the NACK goes out once the oversize frame has ended
            ack = build_garbage_nack(
                b"", f"message of {event.total} bytes exceeds {self.config.max_message_bytes}"
            ).encode()
        writer.write(START_BLOCK + ack + END_BLOCK)
        await writer.drain()


def freeze_startup_heap() -> None:
    """Take everything a listener process loaded before serving (modules, the SQLAlchemy metadata, the engine)
    out of the cyclic garbage collector's scans.

    Parsing a 20-result HL7 panel allocates ~400 ``hl7`` containers, so collections run every message or two,
    and every older-generation collection walks the whole startup heap (~130 k objects) again: ~30 % of the
    parse CPU in a loaded listener process. Nothing is disabled - objects allocated later are collected as
    usual; the frozen startup objects were going to live as long as the process anyway.
    """
    gc.collect()
    gc.freeze()


async def serve_forever(
    host: str,
    port: int,
    handler: Handler,
    *,
    on_incomplete: Callback | None = None,
    on_garbage: Callback | None = None,
    config: MLLPConfig | None = None,
) -> None:
    """Run an MLLP listener until cancelled (the production entry point)."""
    server = MLLPServer(handler, on_incomplete=on_incomplete, on_garbage=on_garbage, config=config)
    await server.start(host, port)
    freeze_startup_heap()
    try:
        await server.serve_forever()
    finally:
        await server.close()


class BackgroundMLLPServer:
    """An :class:`MLLPServer` on its own event loop in a daemon thread - for tests and benchmarks."""

    def __init__(self, server: MLLPServer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> BackgroundMLLPServer:
        self._thread = threading.Thread(target=self._run, name="mllp-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("MLLP server did not start")
        if self._error is not None:
            raise RuntimeError("MLLP server failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self.host, self.port = loop.run_until_complete(self.server.start(self.host, self.port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.server.close())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundMLLPServer:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_background(
    handler: Handler,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_incomplete: Callback | None = None,
    on_garbage: Callback | None = None,
    config: MLLPConfig | None = None,
) -> BackgroundMLLPServer:
    """Start a server on a free port (``port=0``) in a background thread; read ``.port``, call ``.stop()``."""
    server = MLLPServer(handler, on_incomplete=on_incomplete, on_garbage=on_garbage, config=config)
    return BackgroundMLLPServer(server, host, port).start()


def hl7_handler(
    store: Callable[[bytes, str, Any], Awaitable[None] | None] | None = None,
    *,
    executor: Executor | None = None,
) -> Handler:
    """The standard handler: ``process_bytes``, ``store(raw, peer, outcome)``, then the ACK.

    ``store`` is where the loader writes the raw message and its outcome; it runs before the ACK is sent so
    an ``AA`` means "safely stored" (if it raises, the server answers AE and the sender retries).

    ``executor`` runs the parsing; by default it runs on the event loop itself. A 20-result panel parses in
    well under a millisecond, and parsing is pure Python that holds the GIL wherever it runs: handing it to a
    thread only added a wake-up of the loop per message and GIL hand-overs with the database thread. A
    ``ProcessPoolExecutor`` moves it to other cores when there are cores to spare (bench/devices.py
    ``--parse-processes``).
    """
    from connectors.devices.outcome import hl7_ack_for, process_bytes

    async def handle(raw: bytes, peer: str) -> bytes:
        source = f"mllp:{peer}"
        if executor is None:
            outcome = process_bytes(raw, source)
        else:
            outcome = await asyncio.get_running_loop().run_in_executor(executor, process_bytes, raw, source)
        if store is not None:
            result = store(raw, peer, outcome)
            if inspect.isawaitable(result):
                await result
        return hl7_ack_for(raw, outcome)

    return handle


class MLLPClient:
    """A minimal async MLLP sender: ``send(message) -> ack payload``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 10.0) -> MLLPClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer, timeout)

    async def send(self, message: bytes | str) -> bytes:
        data = message.encode("utf-8") if isinstance(message, str) else message
        await self.send_raw(START_BLOCK + data + END_BLOCK)
        return await self.read_ack()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_ack(self) -> bytes:
        frame = await asyncio.wait_for(self.reader.readuntil(END_BLOCK), self.timeout)
        start = frame.find(START_BLOCK)
        return frame[start + 1 : -len(END_BLOCK)] if start != -1 else frame[: -len(END_BLOCK)]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def __aenter__(self) -> MLLPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
