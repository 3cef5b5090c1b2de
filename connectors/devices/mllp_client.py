"""Send one HL7 message to a lab over MLLP and wait for its application acknowledgement.

Blocking, one connection per message: the order sender is synchronous (CLI, Dagster) and sends a few orders a
minute, and a fresh connection means a late answer to an earlier message can never be read as this one's.
(``connectors.devices.mllp.MLLPClient`` is the asyncio client the listener's tests and the bench use.)

What the answer means (:class:`Delivery`):
- ``AA`` (or ``CA``) acknowledging our MSH-10 → ``acknowledged``;
- ``AE``/``AR`` (``CE``/``CR``), or an answer about another message → ``refused``, with MSA-3 and the ERR texts;
- no answer within the timeout, the connection refused or dropped, an answer that is not HL7 → ``timed_out``.
The text says what happened in words a person at the practice can act on.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from connectors.devices.hl7_reader import FieldReader
from connectors.devices.hl7_text import check_msh, normalise_hl7, parse_tree
from connectors.devices.mllp import END_BLOCK, START_BLOCK, Frame, MLLPFramer
from connectors.devices.model import DeviceParseError

__all__ = ["Delivery", "read_acknowledgement", "send_message"]

_ACCEPTED = frozenset({"AA", "CA"})
_REFUSED = frozenset({"AE", "AR", "CE", "CR"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of sending one message: ``acknowledged``, ``refused`` or ``timed_out``; ``code`` and
    ``text`` are the acknowledgement's (MSA-1, MSA-3 + ERR), ``error`` says why it did not arrive."""

    state: str
    code: str | None = None
    text: str | None = None
    error: str | None = None


def read_acknowledgement(payload: bytes, control_id: str) -> Delivery:
    """What the lab's answer (ACK, ORR^O02 or ORL^O22: anything with an MSA) says about message ``control_id``."""
    try:
        text, _ = normalise_hl7(payload)
        check_msh(text)
        message = parse_tree(text)
    except (DeviceParseError, ValueError, IndexError) as exc:
        return Delivery("timed_out", error=f"the lab answered with something that is not HL7 ({exc})")
    rd = FieldReader()
    code = answered = None
    notes: list[str] = []
    for pos, seg in enumerate(message, start=1):
        sid = str(seg[0][0])
        if sid == "MSA" and code is None:
            code, answered = rd.get(seg, pos, 1).upper(), rd.get(seg, pos, 2)
            notes.append(rd.get(seg, pos, 3))
        elif sid == "ERR":
            # ERR-8 user message (v2.5), ERR-3 the coded condition's text, ERR-1 the v2.3 code and location.
            notes.append(rd.get(seg, pos, 8) or rd.get(seg, pos, 3, 1, 2) or rd.get(seg, pos, 1, 1, 4, 2))
    text = "; ".join(dict.fromkeys(n for n in notes if n)) or None
    if code is None:
        return Delivery("timed_out", error="the lab's answer has no MSA segment (no acknowledgement)")
    if answered != control_id:
        return Delivery("refused", code, text,
                        f"the lab acknowledged message {answered or '(none)'}, not ours ({control_id})")  # fmt: skip
    if code in _ACCEPTED:
        return Delivery("acknowledged", code, text)
    if code in _REFUSED:
        return Delivery(
            "refused", code, text, f"the lab refused the order ({code}): {text or 'no reason given'}"
        )
    return Delivery("refused", code, text, f"unknown acknowledgement code {code!r}")


def send_message(host: str, port: int, message: str, timeout: float) -> Delivery:
    """Connect, send ``message`` framed, wait up to ``timeout`` seconds (connecting included) for the answer."""
    control_id = _control_id(message)
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(START_BLOCK + message.encode("utf-8") + END_BLOCK)
            framer = MLLPFramer()
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                data = sock.recv(64 * 1024)
                if not data:
                    return Delivery("timed_out", error=f"{where} closed the connection without answering")
                for event in framer.feed(data):
                    if isinstance(event, Frame):
                        return read_acknowledgement(event.payload, control_id)
    except TimeoutError:
        pass
    except ConnectionRefusedError:
        return Delivery("timed_out", error=f"connection refused by {where}: is the lab's receiver running?")
    except OSError as exc:
        return Delivery("timed_out", error=f"cannot reach {where}: {exc.strerror or exc}")
    return Delivery("timed_out", error=f"no acknowledgement from {where} within {timeout:g} s")


def _control_id(message: str) -> str:
    header = message.split("\r", 1)[0]
    fields = header.split(header[3]) if len(header) > 3 else []
    return fields[9] if len(fields) > 9 else ""
