"""The waiting-room board: today's appointments of a practice by where the patient is."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from warehouse.kernel.practice_time import practice_today
from warehouse.scheduling.day import schedule


@dataclass(frozen=True)
class WaitingEntry:
    appointment_id: int
    starts_at: dt.datetime
    patient: str | None
    client: str | None
    resource: str
    type: str
    status: str
    arrived_at: dt.datetime | None
    waited_minutes: int | None
    # What a card opens: the patient's record (or, for who may not read records, the client's card).
    patient_id: int | None = None
    client_id: int | None = None


@dataclass(frozen=True)
class WaitingRoom:
    expected: tuple[WaitingEntry, ...]
    waiting: tuple[WaitingEntry, ...]
    in_consult: tuple[WaitingEntry, ...]
    done: tuple[WaitingEntry, ...]


def waiting_room(session: Session, practice_id: int, now: dt.datetime) -> WaitingRoom:
    """Today's board (the practice's today): who is expected, who is waiting (and how long), who is in with
    the vet, who is done."""
    frame = schedule(session, practice_id, practice_today(session, practice_id, now))
    groups: dict[str, list[WaitingEntry]] = {"booked": [], "checked_in": [], "in_consult": [], "done": []}
    for row in frame.iter_rows(named=True):
        if row["status"] not in groups:
            continue
        arrived = row["checked_in_at"]
        until = now if row["status"] == "checked_in" else row["consult_started_at"]
        waited = int((until - arrived).total_seconds() // 60) if arrived and until else None
        groups[row["status"]].append(WaitingEntry(row["id"], row["starts_at"], row["patient"], row["client"],
                                                  row["resource"], row["type"], row["status"], arrived, waited,
                                                  row["patient_id"], row["client_id"]))  # fmt: skip
    groups["checked_in"].sort(key=lambda e: e.arrived_at or e.starts_at)
    return WaitingRoom(*(tuple(groups[k]) for k in ("booked", "checked_in", "in_consult", "done")))
