"""What the scheduling services refuse, worded for the staff member whose request it was."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from warehouse.kernel import formatting


class SchedulingError(ValueError):
    """A request the scheduling rules refuse; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BookingConflict(Exception):
    """The resource is already booked for an overlapping time; names the appointment in the way."""

    def __init__(
        self, resource_id: int, existing_appointment_id: int, existing_starts_at: dt.datetime,
        existing_ends_at: dt.datetime, resource_name: str | None = None, *, zone: ZoneInfo,
    ) -> None:  # fmt: skip
        self.resource_id = resource_id
        self.resource_name = resource_name
        self.existing_appointment_id = existing_appointment_id
        self.existing_starts_at = existing_starts_at
        self.existing_ends_at = existing_ends_at
        # Staff read this: the vet or room by name, the time in the practice's local time, Dutch format.
        who = resource_name or f"resource {resource_id}"
        start = formatting.date_time(existing_starts_at, zone)
        end = formatting.time(existing_ends_at, zone)
        super().__init__(
            f"{who} is already booked from {start} to {end} (appointment {existing_appointment_id})"
        )
