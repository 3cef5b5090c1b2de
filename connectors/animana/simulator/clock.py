"""The simulator's notion of time on the wire: one UTC timestamp format whose string order is time order.

Apart from the generator so that the modules it calls (shifts, reminders) can share it without importing the
generator back.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def ts(moment: dt.datetime) -> str:
    """UTC timestamp in one fixed format, so string order equals time order (the store sorts on it)."""
    return moment.astimezone(UTC).strftime(TS_FORMAT)


def moment(stamp: str) -> dt.datetime:
    """The instant of a `ts` timestamp (fromisoformat reads the trailing Z; strptime is 30 times slower)."""
    return dt.datetime.fromisoformat(stamp)
