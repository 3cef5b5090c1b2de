"""A local catch-all SMTP server (aiosmtpd): every mail is kept as ``<message id>.eml`` in a directory
(``VETCONNECT_HOME/mail`` for ``vetconnect messages smtp-server`` and ``make demo``), once per Message-ID — a mail
resent after a lost answer replaces nothing and is counted as a duplicate, so tests and the bench can show that
no owner got a mail twice.

Faults for the tests and the bench: an address at ``bounce.invalid`` is refused at RCPT (550), and a ``script`` of
faults the next mails meet in order: ``4xx`` (451 at DATA, nothing kept), ``5xx`` (554 at DATA: a bounce), ``lost``
(kept, then the answer stalls past the client's timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

BOUNCE_DOMAIN = "bounce.invalid"
_ID = re.compile(r"<([0-9a-fA-F-]{36})@")


@dataclass
class Mailbox:
    """The mails kept, by message id; ``deliveries`` counts every accepted DATA (duplicates included)."""

    directory: Path
    script: list[str] = field(default_factory=list)
    stall_seconds: float = 1.0
    deliveries: int = 0
    duplicates: int = 0
    faults_injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kept(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"))

    def _next_fault(self) -> str | None:
        with self.lock:
            fault = self.script.pop(0) if self.script else None
            self.faults_injected += fault is not None and fault != "none"
            return None if fault == "none" else fault

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:  # noqa: N802 - aiosmtpd's hook name
        if address.lower().endswith("@" + BOUNCE_DOMAIN):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        fault = self._next_fault()
        if fault == "4xx":
            return "451 4.3.0 Try again later"
        if fault == "5xx":
            return "554 5.7.1 Message rejected"
        content: bytes = envelope.content
        mail = BytesParser(policy=policy.default).parsebytes(content)
        found = _ID.search(str(mail.get("Message-ID", "")))
        name = found.group(1) if found else f"no-id-{self.deliveries}"
        path = self.directory / f"{name}.eml"
        with self.lock:
            self.deliveries += 1
            if path.exists():
                self.duplicates += 1
            else:
                partial = path.with_suffix(".part")
                partial.write_bytes(content)
                partial.replace(path)  # atomic: a reader never sees half a mail
        if fault == "lost":
            await asyncio.sleep(self.stall_seconds)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class RunningSmtpServer:
    host: str
    port: int
    mailbox: Mailbox


@contextlib.contextmanager
def running_smtp_server(
    directory: Path, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSmtpServer]:
    """A catch-all SMTP server on a free port (or ``port``) in aiosmtpd's thread; stopped on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    mailbox = Mailbox(directory)
    controller = Controller(mailbox, hostname=host, port=port or _free_port(host))
    controller.start()
    try:
        yield RunningSmtpServer(host, controller.port, mailbox)
    finally:
        controller.stop()
