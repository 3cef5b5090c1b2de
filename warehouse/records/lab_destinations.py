"""Lab destinations: the labs and analysers a practice sends its orders to (``warehouse.records.lab_orders``),
kept on the practice settings page by whoever keeps the practice's settings. A destination is switched off,
never deleted: its orders keep pointing at it. The ``lab_destination`` table's triggers audit every change.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.records.errors import RecordsError
from warehouse.records.lab_orders import TestChoice, offered_tests
from warehouse.records.patients import optional_text
from warehouse.schema.clinical import ORDER_MESSAGE_TYPES, LabDestination, LabOrder
from warehouse.security.permissions import PRACTICE_SETTINGS, Actor, require

_columns = LabDestination.__table__.c
NAME_MAX = _columns.name.type.length
HOST_MAX = _columns.host.type.length
PARTY_MAX = _columns.receiving_application.type.length
# A test's code and name are copied onto each order, so they fit the order's columns.
TEST_CODE_MAX = LabOrder.__table__.c.test_code.type.length
TEST_NAME_MAX = LabOrder.__table__.c.test_name.type.length
ACK_TIMEOUT_RANGE = (1, 300)
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class DestinationSetup:
    """A destination as the settings page lists it."""

    id: int
    name: str
    host: str
    port: int
    message_type: str
    receiving_application: str | None
    receiving_facility: str | None
    ack_timeout_seconds: int
    tests: tuple[TestChoice, ...]
    active: bool

    @property
    def address(self) -> str:
        """``host:port``, an IPv6 address in brackets (as in a URL) so its colons are not read as the port's."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _is_host(host: str) -> bool:
    """An IP address or a DNS host name (RFC 1123 labels, an optional final dot)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
    return True


def _test_problem(code: str, name: str) -> str | None:
    if not code or not code.isprintable() or " " in code:
        return "a test code is printable characters without spaces"
    if len(code) > TEST_CODE_MAX:
        return f"a test code is at most {TEST_CODE_MAX} characters"
    if not name.isprintable():
        return "a test name is printable characters"
    if len(name) > TEST_NAME_MAX:
        return f"a test name is at most {TEST_NAME_MAX} characters"
    return None


def parse_tests(text: str) -> tuple[TestChoice, ...]:
    """The tests a lab offers, one a line: its code, white space, its name (``CBC Haematology``; runs of white
    space in the name become one space, as pasted lists bring tabs and non-breaking spaces); a line of only a
    code names the test by its code. Blank lines are skipped. A code may be listed once (the order form matches
    codes without regard to case, so ``cbc`` and ``CBC`` are the same test)."""
    tests: list[TestChoice] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        code, *words = line.split()
        name = " ".join(words) or code
        if problem := _test_problem(code, name):
            raise RecordsError("tests", f"Line {number}: {problem}.")
        if code.casefold() in seen:
            raise RecordsError("tests", f"Line {number}: {code} is listed already.")
        seen.add(code.casefold())
        tests.append(TestChoice(code, name))
    return tuple(tests)


def add_destination(
    session: Session, actor: Actor, *, practice_id: int, name: str, host: str, port: int | None,
    message_type: str, tests: Sequence[TestChoice] = (), receiving_application: str | None = None,
    receiving_facility: str | None = None, ack_timeout_seconds: int = 10,
) -> LabDestination:  # fmt: skip
    """A lab the practice sends orders to. Each field is checked before anything is written; a refusal names
    its field (``name``, ``host``, ``port``, ``message_type``, ``receiving_application``,
    ``receiving_facility``, ``ack_timeout_seconds`` or ``tests``)."""
    require(actor, PRACTICE_SETTINGS, practice_id)
    lab_name = optional_text(name)
    if lab_name is None:
        raise RecordsError("name", "Name the lab.")
    if len(lab_name) > NAME_MAX:
        raise RecordsError("name", f"A lab's name is at most {NAME_MAX} characters.")
    lab_host = optional_text(host)
    if lab_host is None:
        raise RecordsError("host", "Give the lab's host name or address.")
    if len(lab_host) > HOST_MAX or not _is_host(lab_host):
        raise RecordsError("host", f"{lab_host} is not a host name (lab.example.nl) or an IP address.")
    if port is None or not 1 <= port <= 65535:
        raise RecordsError("port", "A port is a number from 1 to 65535.")
    if message_type not in ORDER_MESSAGE_TYPES:
        raise RecordsError("message_type", f"The message type is one of {', '.join(ORDER_MESSAGE_TYPES)}.")
    parties = {"receiving_application": optional_text(receiving_application),
               "receiving_facility": optional_text(receiving_facility)}  # fmt: skip
    for field, value in parties.items():
        if value is not None and (len(value) > PARTY_MAX or not value.isprintable()):
            raise RecordsError(field, f"At most {PARTY_MAX} printable characters.")
    low, high = ACK_TIMEOUT_RANGE
    if not low <= ack_timeout_seconds <= high:
        raise RecordsError("ack_timeout_seconds", f"Wait {low} to {high} seconds for the acknowledgement.")
    codes = [t.code.casefold() for t in tests]
    for test in tests:
        if problem := _test_problem(test.code, test.name) or (
            f"{test.code} is listed twice" if codes.count(test.code.casefold()) > 1 else None
        ):
            raise RecordsError("tests", f"{test.code}: {problem}.")
    same = session.scalar(
        select(LabDestination.name).where(
            LabDestination.practice_id == practice_id, func.lower(LabDestination.name) == lab_name.lower()
        )
    )
    if same is not None:
        raise RecordsError("name", f"The practice has a lab named {same} already (switched off ones count).")
    destination = LabDestination(
        practice_id=practice_id, name=lab_name, host=lab_host, port=port, message_type=message_type,
        ack_timeout_seconds=ack_timeout_seconds, tests=[{"code": t.code, "name": t.name} for t in tests],
        **parties,
    )  # fmt: skip
    session.add(destination)
    session.flush()
    return destination


def practice_destinations(session: Session, practice_id: int) -> list[DestinationSetup]:
    """Every destination of the practice, the active ones first, by name."""
    rows = session.scalars(
        select(LabDestination)
        .where(LabDestination.practice_id == practice_id)
        .order_by(LabDestination.active.desc(), func.lower(LabDestination.name))
    )
    return [
        DestinationSetup(
            d.id,
            d.name,
            d.host,
            d.port,
            d.message_type,
            d.receiving_application,
            d.receiving_facility,
            d.ack_timeout_seconds,
            offered_tests(d.tests),
            d.active,
        )  # fmt: skip
        for d in rows
    ]


def switch_off_destination(session: Session, actor: Actor, *, practice_id: int, destination_id: int) -> None:
    """No new orders go to this lab (orders already queued for it are still sent)."""
    require(actor, PRACTICE_SETTINGS, practice_id)
    destination = session.scalar(
        select(LabDestination)
        .where(LabDestination.practice_id == practice_id, LabDestination.id == destination_id)
        .with_for_update()
    )
    if destination is None:
        raise RecordsError("destination", "Choose a lab of this practice.")
    if not destination.active:
        raise RecordsError("destination", f"{destination.name} is switched off already.")
    destination.active = False
    session.flush()
