"""The practice being generated: its clock, its records so far and the hidden state that shapes behaviour.

Every part of the generator (population, agenda, consults, billing) writes into one ``PracticeWorld``, so the
records reference each other by the ids it hands out, and each part draws from its own named RNG stream.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from connectors.animana.resources.registry import RESOURCE_ORDER

from .catalog.places import PRACTICE_TOWNS
from .clock import AMSTERDAM
from .config import SCALES, GeneratorConfig

Record = dict[str, Any]


class PracticeWorld:
    def __init__(self, config: GeneratorConfig, practice_id: int) -> None:
        self.config = config
        self.pid = practice_id
        self.scale = SCALES[config.scale]
        # The anchor is "now": it decides what has happened yet (booked, seen, paid). Everything else hangs off
        # the start of the anchor day, so a given day's world is the same whatever time the demo starts.
        self.anchor = config.anchor
        self.anchor_day = config.anchor.astimezone(AMSTERDAM).date()
        self.day_start = dt.datetime.combine(self.anchor_day, dt.time(0), AMSTERDAM)
        self.start = self.day_start - dt.timedelta(days=round(365.25 * config.history_years))
        info_rng = random.Random(f"{config.seed}:{practice_id}:practice")
        self.town, self.pc2 = info_rng.choice(PRACTICE_TOWNS)
        # A list for every resource the specs declare: the simulator serves each (empty until generated here).
        self.out: dict[str, list[Record]] = {name: [] for name in RESOURCE_ORDER}
        # Hidden state that shapes behaviour but is not part of any payload.
        self.no_show_propensity: dict[int, float] = {}
        self.adult_weight: dict[int, float] = {}
        # Looked up by the agenda and billing once the population exists.
        self.vets: list[Record] = []
        self.operating_room: Record = {}
        self.product_ids: dict[str, int] = {}

    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.config.seed}:{self.pid}:{stream}")

    def add(self, resource: str, record: Record) -> Record:
        record = {"id": len(self.out[resource]) + 1, **record, "deleted": False}
        self.out[resource].append(record)
        return record

    def opening_weekday(self, day: dt.date) -> int | None:
        """The weekday whose opening hours the practice keeps on `day` (0 = Monday … 5 = Saturday), None when
        closed. The anchor day is always a full weekday, even on a weekend: the demo is started on any day and
        must show a practice at work."""
        if day == self.anchor_day:
            return min(day.weekday(), 4)
        return None if day.weekday() == 6 else day.weekday()
