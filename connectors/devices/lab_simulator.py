"""A lab (or analyser) over real TCP, for tests and the demo: it takes ORM^O01 / OML^O21 orders over MLLP,
answers each with an ACK and, a moment later, sends the result as an ORU^R01 to our MLLP listener.

- A known test code → ``AA``; the result carries the order's accession number as the placer order number
  (ORC-2/OBR-2), the lab's own number as the filler number (OBR-3) and the order's PID, as real labs do.
- An unknown test code → ``AR`` with an ERR naming the code (no result follows).
- ``fault`` (changeable while it runs): ``"nack"`` answers every order ``AR`` ("analyser offline"),
  ``"no_answer"`` reads the order and never answers (the sender's timeout).

Run it: ``vetconnect devices lab-simulator --port 2576 --results-to 127.0.0.1:2575``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from itertools import count

from connectors.devices.hl7_acks import build_ack
from connectors.devices.hl7_parse import parse_hl7
from connectors.devices.hl7_text import normalise_hl7
from connectors.devices.mllp import BackgroundMLLPServer, MLLPClient, MLLPConfig, MLLPServer
from connectors.devices.model import DeviceParseError, FieldIssue, LabMessage

__all__ = ["CATALOGUE", "Analyte", "LabSimulator"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Analyte:
    code: str
    name: str
    value: str
    unit: str
    reference: str
    flag: str = "N"


# What the simulated lab offers: test code → (name, the analytes its result holds).
CATALOGUE: dict[str, tuple[str, tuple[Analyte, ...]]] = {
    "CBC": ("Haematology", (
        Analyte("WBC", "White blood cells", "18.2", "10*9/L", "6.0-17.0", "H"),
        Analyte("HCT", "Haematocrit", "0.45", "L/L", "0.37-0.55"),
        Analyte("PLT", "Platelets", "310", "10*9/L", "200-500"),
    )),
    "CHEM": ("Biochemistry", (
        Analyte("GLU", "Glucose", "5.4", "mmol/L", "3.5-7.0"),
        Analyte("CREA", "Creatinine", "160", "umol/L", "40-130", "H"),
    )),
    "T4": ("Total T4", (Analyte("T4", "Thyroxine", "32", "nmol/L", "13-51"),)),
}  # fmt: skip


@dataclass
class LabSimulator:
    """``start()`` listens on ``host:port`` (0: a free port, read ``.port``); ``stop()`` ends it."""

    results_to: tuple[str, int] | None = None
    result_delay: float = 0.1
    fault: str | None = None  # None | "nack" | "no_answer"
    host: str = "127.0.0.1"
    port: int = 0
    orders: list[LabMessage] = field(default_factory=list)  # every order it accepted
    result_acks: list[bytes] = field(default_factory=list)  # our listener's answers to its results
    _server: BackgroundMLLPServer | None = None
    _numbers: count = field(default_factory=lambda: count(1))
    _tasks: set[asyncio.Task] = field(default_factory=set)

    def start(self) -> LabSimulator:
        # No handler timeout to speak of: "no_answer" must stay silent for longer than any sender waits.
        server = MLLPServer(self.handle, config=MLLPConfig(handler_timeout=3600, idle_timeout=3600))
        self._server = BackgroundMLLPServer(server, self.host, self.port).start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> LabSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def handle(self, raw: bytes, peer: str) -> bytes:
        if self.fault == "no_answer":
            await asyncio.sleep(3600)
        if self.fault == "nack":
            return build_ack(raw, "AR", "analyser offline for maintenance").encode()
        try:
            order = parse_hl7(raw)
        except DeviceParseError as exc:
            return build_ack(raw, "AR", "order could not be read", exc.issues).encode()
        unknown = [
            FieldIssue("OBR-4", None, f"test code {code!r} is not offered by this lab")
            for code in (o.service.code if o.service else None for o in order.orders)
            if code not in CATALOGUE
        ]
        if unknown or not order.orders:
            issues = unknown or [FieldIssue("OBR", None, "the order names no test")]
            return build_ack(raw, "AR", "unknown test code", issues, error_code="table").encode()
        self.orders.append(order)
        if self.results_to is not None:
            result = self.result_for(raw, order)
            task = asyncio.get_running_loop().create_task(self._send_result(result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return build_ack(raw, "AA").encode()

    def result_for(self, raw: bytes, order: LabMessage) -> str:
        """The ORU^R01 for an accepted order: its PID copied, per test an ORC/OBR with the accession and the
        lab's number, the test's analytes as final OBX results."""
        text, _ = normalise_hl7(raw)
        pid = next(s for s in text.split("\r") if s.startswith("PID"))
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
        number = next(self._numbers)
        segments = [
            f"MSH|^~\\&|LabSim|Lab|{order.sending_application or ''}|{order.sending_facility or ''}|{stamp}||"
            f"ORU^R01^ORU_R01|LS{number:06d}|P|2.5.1",
            pid,
        ]
        for index, requested in enumerate(order.orders, start=1):
            code = requested.service.code if requested.service else ""
            name, analytes = CATALOGUE[code or ""]
            filler = f"L{number:06d}-{index}"
            segments += [
                f"ORC|RE|{requested.placer_order_number}|{filler}",
                f"OBR|{index}|{requested.placer_order_number}|{filler}|{code}^{name}^L|||{stamp}"
                + "|" * 18
                + "F",
            ]
            segments += [
                f"OBX|{n}|NM|{a.code}^{a.name}^L||{a.value}|{a.unit}|{a.reference}|{a.flag}|||F"
                for n, a in enumerate(analytes, start=1)
            ]
        return "\r".join(segments) + "\r"

    async def _send_result(self, result: str) -> None:
        assert self.results_to is not None
        await asyncio.sleep(self.result_delay)
        try:
            async with await MLLPClient.connect(*self.results_to) as client:
                self.result_acks.append(await client.send(result))
        except (OSError, TimeoutError):
            log.exception("lab simulator: the result could not be delivered to %s:%s", *self.results_to)
